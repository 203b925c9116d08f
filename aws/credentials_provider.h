/* Internal interface shared by the credentials providers in
 * aws/credentials_*.c: the provider vtable, the individual providers, the
 * STS caller and small helpers. Not for use outside aws/. Any thread. */
#ifndef AVIARY_AWS_CREDENTIALS_PROVIDER_H
#define AVIARY_AWS_CREDENTIALS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "aws/error.h"
#include "aws/http.h"

/* What a provider's fetch returns. */
#define AWS_CREDS_OK   0  /* *out filled */
#define AWS_CREDS_SKIP 1  /* not configured here; err->message says why */
#define AWS_CREDS_FAIL -1 /* configured but failed; err says why */

/* Refresh temporary credentials this long before they expire. */
#define AWS_CREDS_REFRESH_BEFORE_S 300

struct aws_credentials_provider_vtable {
    const char *name; /* "environment", "web-identity", "profile", ... */
    /* Fetches fresh credentials (no caching). Returns AWS_CREDS_*. */
    int (*fetch)(struct aws_credentials_provider *p, struct aws_credentials *out,
                 struct aws_error *err);
    /* Frees impl (and wipes what it holds). */
    void (*destroy)(struct aws_credentials_provider *p);
};

struct aws_credentials_provider {
    const struct aws_credentials_provider_vtable *vtable;
    void *impl;
};

/* Wraps impl (owned from now on, even on failure: destroy is called).
 * Returns NULL on allocation failure. */
struct aws_credentials_provider *
aws_credentials_provider_new(const struct aws_credentials_provider_vtable *vtable, void *impl);

/* One uncached fetch through the vtable. Returns AWS_CREDS_*. */
int aws_credentials_provider_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                                   struct aws_error *err);

/* The providers. `env` and `http` are borrowed and must outlive them; every
 * constructor returns NULL on allocation failure. Configuration is read from
 * the environment and files at each fetch. */
struct aws_credentials_provider *
aws_credentials_provider_environment_new(const struct aws_env *env);
struct aws_credentials_provider *
aws_credentials_provider_web_identity_new(const struct aws_env *env, struct aws_http *http,
                                          const char *region);
/* profile NULL: the active profile (AWS_PROFILE, AWS_DEFAULT_PROFILE, default). */
struct aws_credentials_provider *aws_credentials_provider_profile_new(const struct aws_env *env,
                                                                      struct aws_http *http,
                                                                      const char *region,
                                                                      const char *profile);
struct aws_credentials_provider *aws_credentials_provider_ecs_new(const struct aws_env *env,
                                                                  struct aws_http *http);
struct aws_credentials_provider *aws_credentials_provider_imds_new(const struct aws_env *env,
                                                                   struct aws_http *http);
/* Caches `source` (owned) until 5 minutes before expiry; one refresh at a
 * time, the others get the still-valid copy or wait for the refresh. */
struct aws_credentials_provider *
aws_credentials_provider_cached_new(const struct aws_env *env,
                                    struct aws_credentials_provider *source);

/* STS AssumeRole (signed with `source`) or, when web_identity_token is set,
 * AssumeRoleWithWebIdentity (unsigned). */
struct aws_sts_assume_role_params {
    const char *role_arn;
    const char *session_name;
    const char *external_id;        /* optional */
    int duration_seconds;           /* 0: STS's default */
    const char *web_identity_token; /* optional, selects AssumeRoleWithWebIdentity */
};

/* Calls STS at AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL or
 * https://sts.REGION.amazonaws.com. Returns 0 with *out filled, or -1 with
 * *err (AWS_ERR_SERVICE with STS's code and message, a transport error, or
 * AWS_ERR_PARSE). Never puts a secret in *err. */
int aws_sts_assume_role(const struct aws_env *env, struct aws_http *http, const char *region,
                        const struct aws_credentials *source,
                        const struct aws_sts_assume_role_params *params,
                        struct aws_credentials *out, struct aws_error *err);

/* AssumeRoleWithWebIdentity with the token read from token_file (re-read on
 * every call). Returns AWS_CREDS_OK or AWS_CREDS_FAIL. */
int aws_web_identity_fetch(const struct aws_env *env, struct aws_http *http, const char *region,
                           const char *token_file, const char *role_arn, const char *session_name,
                           struct aws_credentials *out, struct aws_error *err);

/* GETs url (two attempts on transport errors and 5xx) and parses the JSON
 * credentials document of the ECS endpoint and IMDS (AccessKeyId,
 * SecretAccessKey, Token, Expiration, optional Code). Returns 0 with *out,
 * or -1 with *err. */
int aws_container_get_json(struct aws_http *http, const char *url,
                           const struct aws_http_header *headers, size_t n_headers,
                           long connect_timeout_ms, long timeout_ms, const char *source,
                           struct aws_credentials *out, struct aws_error *err);

/* Fills *c (wiped first). Returns 0, or -1 when a value does not fit or the
 * key id or secret is empty (*c then wiped). token may be NULL. */
int aws_credentials_fill(struct aws_credentials *c, const char *access_key_id, const char *secret,
                         const char *token, int64_t expiration, const char *source);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM)" into unix seconds. Returns 0
 * or -1. */
int aws_parse_iso8601(const char *s, int64_t *out);

/* Reads a small file (at most max bytes) into a NUL-terminated malloc'd
 * buffer with trailing white space removed. Returns it (caller wipes and
 * frees) or NULL with errno set. */
char *aws_read_small_file(const char *path, size_t max);

/* Wipes and frees a NUL-terminated secret. NULL is a no-op. */
void aws_secret_free(char *s);

#endif
