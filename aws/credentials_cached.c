/* A caching wrapper around a credentials provider: temporary credentials are
 * kept until AWS_CREDS_REFRESH_BEFORE_S before they expire; one thread
 * refreshes at a time while the others get the still-valid copy or wait for
 * the refresh; a failed refresh of still-valid credentials keeps them. Any
 * thread. */
#include "aws/credentials_provider.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* After a failed refresh of still-valid credentials, wait this long before
 * trying again. */
#define AWS_CREDS_RETRY_AFTER_FAILURE_S 10

struct cached {
    const struct aws_env *env;
    struct aws_credentials_provider *source;
    pthread_mutex_t lock;
    pthread_cond_t refreshed;
    bool have;
    bool refreshing;
    unsigned long generation; /* completed refreshes */
    struct aws_credentials creds;
    int64_t retry_at;          /* after a failed refresh: no new one before this */
    int last_rc;               /* of the last refresh */
    struct aws_error last_err; /* of the last failed refresh */
};

static bool still_valid(const struct cached *c, int64_t now)
{
    return c->have && (c->creds.expiration == 0 || c->creds.expiration > now);
}

static bool fresh(const struct cached *c, int64_t now)
{
    return c->have &&
           (c->creds.expiration == 0 || c->creds.expiration - now > AWS_CREDS_REFRESH_BEFORE_S);
}

static int cached_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                        struct aws_error *err)
{
    struct cached *c = p->impl;
    struct aws_credentials next;
    struct aws_error next_err;
    int64_t now;
    int rc;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        unsigned long waited_for;

        now = aws_env_now(c->env);
        if (fresh(c, now))
            goto copy;
        if (still_valid(c, now) && now < c->retry_at)
            goto copy; /* a refresh failed moments ago: do not hammer the source */
        if (!c->refreshing)
            break;
        if (still_valid(c, now))
            goto copy; /* someone else is refreshing; this copy is still good */
        waited_for = c->generation;
        while (c->refreshing && c->generation == waited_for)
            pthread_cond_wait(&c->refreshed, &c->lock);
        if (c->generation != waited_for && c->last_rc != AWS_CREDS_OK && !still_valid(c, now)) {
            /* The refresh this thread waited for failed: report it rather
             * than starting another one at once. */
            *err = c->last_err;
            rc = c->last_rc;
            pthread_mutex_unlock(&c->lock);
            return rc;
        }
    }
    c->refreshing = true;
    pthread_mutex_unlock(&c->lock);

    rc = aws_credentials_provider_fetch(c->source, &next, &next_err);

    pthread_mutex_lock(&c->lock);
    c->refreshing = false;
    c->generation++;
    c->last_rc = rc;
    if (rc == AWS_CREDS_OK) {
        aws_credentials_clear(&c->creds);
        memcpy(&c->creds, &next, sizeof(next));
        c->have = true;
        c->retry_at = 0;
    } else {
        c->last_err = next_err;
        c->retry_at = aws_env_now(c->env) + AWS_CREDS_RETRY_AFTER_FAILURE_S;
    }
    aws_credentials_clear(&next);
    pthread_cond_broadcast(&c->refreshed);
    now = aws_env_now(c->env);
    if (rc == AWS_CREDS_OK || still_valid(c, now))
        goto copy;
    *err = next_err;
    pthread_mutex_unlock(&c->lock);
    return rc;
copy:
    memcpy(out, &c->creds, sizeof(*out));
    pthread_mutex_unlock(&c->lock);
    return AWS_CREDS_OK;
}

static void cached_destroy(struct aws_credentials_provider *p)
{
    struct cached *c = p->impl;

    aws_credentials_provider_free(c->source);
    aws_credentials_clear(&c->creds);
    pthread_cond_destroy(&c->refreshed);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static const struct aws_credentials_provider_vtable cached_vtable = {"cached", cached_fetch,
                                                                     cached_destroy};

struct aws_credentials_provider *
aws_credentials_provider_cached_new(const struct aws_env *env,
                                    struct aws_credentials_provider *source)
{
    struct cached *c;

    if (source == NULL)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        aws_credentials_provider_free(source);
        return NULL;
    }
    c->env = env != NULL ? env : aws_env_default();
    c->source = source;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        aws_credentials_provider_free(source);
        free(c);
        return NULL;
    }
    if (pthread_cond_init(&c->refreshed, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        aws_credentials_provider_free(source);
        free(c);
        return NULL;
    }
    return aws_credentials_provider_new(&cached_vtable, c);
}
