/* The credentials value type, the environment/clock abstraction and the
 * provider plumbing shared by every provider (see credentials_provider.h),
 * plus the static provider. Any thread. */
#include "aws/credentials_provider.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void aws_credentials_clear(struct aws_credentials *creds)
{
    if (creds != NULL)
        OPENSSL_cleanse(creds, sizeof(*creds));
}

void aws_secret_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static const char *process_getenv(void *arg, const char *name)
{
    (void)arg;
    return getenv(name);
}

static int64_t process_now(void *arg)
{
    (void)arg;
    return (int64_t)time(NULL);
}

static const struct aws_env default_env = {process_getenv, NULL, process_now};

const struct aws_env *aws_env_default(void)
{
    return &default_env;
}

const char *aws_env_get(const struct aws_env *env, const char *name)
{
    const char *v;

    if (env == NULL)
        env = &default_env;
    v = env->get != NULL ? env->get(env->arg, name) : NULL;
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int64_t aws_env_now(const struct aws_env *env)
{
    if (env == NULL || env->now == NULL)
        return (int64_t)time(NULL);
    return env->now(env->arg);
}

static bool fits(const char *s, size_t size)
{
    return strnlen(s, size) < size;
}

int aws_credentials_fill(struct aws_credentials *c, const char *access_key_id, const char *secret,
                         const char *token, int64_t expiration, const char *source)
{
    aws_credentials_clear(c);
    if (access_key_id == NULL || secret == NULL || access_key_id[0] == '\0' || secret[0] == '\0' ||
        !fits(access_key_id, sizeof(c->access_key_id)) ||
        !fits(secret, sizeof(c->secret_access_key)) ||
        (token != NULL && !fits(token, sizeof(c->session_token))))
        return -1;
    strcpy(c->access_key_id, access_key_id);
    strcpy(c->secret_access_key, secret);
    if (token != NULL)
        strcpy(c->session_token, token);
    c->expiration = expiration;
    snprintf(c->source, sizeof(c->source), "%s", source != NULL ? source : "");
    return 0;
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int aws_parse_iso8601(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;

    if (s == NULL || parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) ||
        *p++ != '-' || parse_digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi) || *p++ != ':' ||
        parse_digits(&p, 2, &sec))
        return -1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (parse_digits(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (parse_digits(&p, 2, &om))
            return -1;
    } else {
        return -1;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    *out =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
    return 0;
}

char *aws_read_small_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    size_t n;

    if (f == NULL)
        return NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size > max) {
        errno = EFBIG;
        goto out;
    }
    buf = malloc(max + 1);
    if (buf == NULL)
        goto out;
    n = fread(buf, 1, max + 1, f);
    if (ferror(f) || n > max) {
        OPENSSL_cleanse(buf, n < max + 1 ? n : max + 1);
        free(buf);
        buf = NULL;
        errno = EFBIG;
        goto out;
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
out:
    fclose(f);
    return buf;
}

struct aws_credentials_provider *
aws_credentials_provider_new(const struct aws_credentials_provider_vtable *vtable, void *impl)
{
    struct aws_credentials_provider *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        struct aws_credentials_provider tmp = {vtable, impl};

        vtable->destroy(&tmp);
        return NULL;
    }
    p->vtable = vtable;
    p->impl = impl;
    return p;
}

void aws_credentials_provider_free(struct aws_credentials_provider *provider)
{
    if (provider == NULL)
        return;
    provider->vtable->destroy(provider);
    free(provider);
}

int aws_credentials_provider_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                                   struct aws_error *err)
{
    int rc;

    aws_error_clear(err);
    aws_credentials_clear(out);
    rc = p->vtable->fetch(p, out, err);
    if (rc != AWS_CREDS_OK)
        aws_credentials_clear(out);
    return rc;
}

int aws_credentials_get(struct aws_credentials_provider *provider, struct aws_credentials *out,
                        struct aws_error *err)
{
    int rc;

    if (provider == NULL || out == NULL || err == NULL)
        return err != NULL ? aws_error_set(err, AWS_ERR_INVALID, "no credentials provider") : -1;
    rc = aws_credentials_provider_fetch(provider, out, err);
    if (rc == AWS_CREDS_OK)
        return 0;
    /* The kind says "no credentials"; code, status and retryability of the
     * underlying failure (e.g. STS's AccessDenied) are kept. */
    err->kind = AWS_ERR_CREDENTIALS;
    if (err->code[0] == '\0')
        snprintf(err->code, sizeof(err->code), "%s", aws_error_kind_name(AWS_ERR_CREDENTIALS));
    return -1;
}

/* The static provider: a copy of fixed credentials. */
static int static_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                        struct aws_error *err)
{
    (void)err;
    memcpy(out, p->impl, sizeof(*out));
    return AWS_CREDS_OK;
}

static void static_destroy(struct aws_credentials_provider *p)
{
    aws_credentials_clear(p->impl);
    free(p->impl);
}

static const struct aws_credentials_provider_vtable static_vtable = {"static", static_fetch,
                                                                     static_destroy};

struct aws_credentials_provider *
aws_credentials_provider_static_new(const struct aws_credentials *creds)
{
    struct aws_credentials *copy = malloc(sizeof(*copy));

    if (copy == NULL)
        return NULL;
    memcpy(copy, creds, sizeof(*copy));
    if (copy->source[0] == '\0')
        snprintf(copy->source, sizeof(copy->source), "static");
    return aws_credentials_provider_new(&static_vtable, copy);
}
