/* The default credentials chain in the AWS SDKs' order: environment, web
 * identity, shared files (profile), ECS container, EC2 instance metadata.
 * The first provider that answers is remembered and used for later
 * refreshes; the whole chain sits behind the cached provider, so fetches
 * here are serialized. Error messages name every provider tried and why it
 * was skipped. Any thread. */
#include "aws/credentials_provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_MAX 5

struct chain {
    struct aws_http *http;
    bool own_http;
    struct aws_credentials_provider *providers[CHAIN_MAX];
    size_t n;
    long resolved; /* index of the provider that answered, or -1 */
};

/* Appends "name: reason" to msg (bounded; truncates quietly). */
static void add_reason(char *msg, size_t size, const char *name, const char *reason)
{
    size_t len = strlen(msg);

    if (len + 1 >= size)
        return;
    snprintf(msg + len, size - len, "%s%s: %.110s", len > 0 ? "; " : "", name, reason);
}

static int chain_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                       struct aws_error *err)
{
    struct chain *c = p->impl;
    char reasons[sizeof(err->message)];
    struct aws_error inner;
    int rc;

    if (c->resolved >= 0) {
        struct aws_credentials_provider *r = c->providers[c->resolved];

        rc = aws_credentials_provider_fetch(r, out, &inner);
        if (rc == AWS_CREDS_OK)
            return rc;
        if (rc == AWS_CREDS_FAIL) {
            *err = inner;
            snprintf(err->message, sizeof(err->message), "%s: %.480s", r->vtable->name,
                     inner.message);
            return rc;
        }
        c->resolved = -1; /* no longer configured: walk the chain again */
    }
    reasons[0] = '\0';
    for (size_t i = 0; i < c->n; i++) {
        const char *name = c->providers[i]->vtable->name;

        rc = aws_credentials_provider_fetch(c->providers[i], out, &inner);
        if (rc == AWS_CREDS_OK) {
            c->resolved = (long)i;
            return rc;
        }
        if (rc == AWS_CREDS_FAIL) {
            /* Configured but failing: stop here rather than silently using
             * another identity (as botocore does). The failure comes first,
             * in full; the skipped providers after it. */
            *err = inner;
            snprintf(err->message, sizeof(err->message),
                     "no AWS credentials: %.16s: %.340s%s%.110s", name, inner.message,
                     reasons[0] != '\0' ? "; skipped: " : "", reasons);
            return rc;
        }
        add_reason(reasons, sizeof(reasons), name, inner.message);
    }
    aws_error_set(err, AWS_ERR_CREDENTIALS, "no AWS credentials: %.490s", reasons);
    return AWS_CREDS_FAIL;
}

static void chain_destroy(struct aws_credentials_provider *p)
{
    struct chain *c = p->impl;

    for (size_t i = 0; i < c->n; i++)
        aws_credentials_provider_free(c->providers[i]);
    if (c->own_http)
        aws_http_free(c->http);
    free(c);
}

static const struct aws_credentials_provider_vtable chain_vtable = {"chain", chain_fetch,
                                                                    chain_destroy};

struct aws_credentials_provider *aws_credentials_provider_chain_new(const struct aws_env *env,
                                                                    struct aws_http *http,
                                                                    const char *region)
{
    struct chain *c = calloc(1, sizeof(*c));
    struct aws_credentials_provider *chain;
    char resolved_region[64];

    if (c == NULL)
        return NULL;
    if (env == NULL)
        env = aws_env_default();
    c->resolved = -1;
    c->http = http;
    if (http == NULL) {
        c->http = aws_http_new(NULL);
        c->own_http = true;
        if (c->http == NULL) {
            free(c);
            return NULL;
        }
    }
    if (region == NULL && aws_region_resolve(env, resolved_region, sizeof(resolved_region)) == 0)
        region = resolved_region;
    c->providers[c->n++] = aws_credentials_provider_environment_new(env);
    c->providers[c->n++] = aws_credentials_provider_web_identity_new(env, c->http, region);
    c->providers[c->n++] = aws_credentials_provider_profile_new(env, c->http, region, NULL);
    c->providers[c->n++] = aws_credentials_provider_ecs_new(env, c->http);
    c->providers[c->n++] = aws_credentials_provider_imds_new(env, c->http);
    chain = aws_credentials_provider_new(&chain_vtable, c);
    if (chain == NULL)
        return NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (c->providers[i] == NULL) {
            aws_credentials_provider_free(chain);
            return NULL;
        }
    }
    return aws_credentials_provider_cached_new(env, chain);
}
