/* AWS credentials and the provider chain the AWS SDKs use: environment, web
 * identity, shared config/credentials files (with role assumption), ECS
 * container endpoint, EC2 instance metadata (IMDSv2). Thread-safe. */
#ifndef AVIARY_AWS_CREDENTIALS_H
#define AVIARY_AWS_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/error.h"

struct aws_http;

#define AWS_ACCESS_KEY_MAX    128
#define AWS_SECRET_KEY_MAX    128
#define AWS_SESSION_TOKEN_MAX 4096

/* A set of credentials. Value type, copied by callers; holds secrets, so
 * every copy is wiped with aws_credentials_clear when done. */
struct aws_credentials {
    char access_key_id[AWS_ACCESS_KEY_MAX];
    char secret_access_key[AWS_SECRET_KEY_MAX];
    char session_token[AWS_SESSION_TOKEN_MAX]; /* "" when none */
    int64_t expiration;                        /* unix seconds; 0 = does not expire */
    char source[32];                           /* provider name, e.g. "environment" */
};

/* Wipes every byte (OPENSSL_cleanse). */
void aws_credentials_clear(struct aws_credentials *creds);

/* Where the chain reads its environment; tests inject their own. */
struct aws_env {
    /* Returns the value of an environment variable or NULL. */
    const char *(*get)(void *arg, const char *name);
    void *arg;
    /* Current unix time in seconds (injectable clock). */
    int64_t (*now)(void *arg);
};

/* The process environment and the real clock. */
const struct aws_env *aws_env_default(void);

/* A non-empty variable from env (NULL env: the process environment), or
 * NULL when unset or empty. Borrowed from the environment. */
const char *aws_env_get(const struct aws_env *env, const char *name);

/* env's clock (NULL env: the real clock), unix seconds. */
int64_t aws_env_now(const struct aws_env *env);

struct aws_credentials_provider;

/* The default chain, resolved lazily on first use, in the SDKs' order:
 * environment, web identity, shared files (AWS_PROFILE), ECS container
 * credentials, EC2 instance metadata. The first provider that answers is
 * kept for later refreshes; a provider that is configured but fails stops
 * the chain (no silent fall-through to another identity). `env` (NULL: the
 * process environment) and `http` are borrowed and must outlive the
 * provider; http NULL makes the chain create and own a transport. `region`
 * is used for STS (NULL: aws_region_resolve, else us-east-1). Returns NULL
 * on allocation failure. Free with aws_credentials_provider_free. */
struct aws_credentials_provider *aws_credentials_provider_chain_new(const struct aws_env *env,
                                                                    struct aws_http *http,
                                                                    const char *region);

/* A provider that always returns the given static credentials (copied). */
struct aws_credentials_provider *
aws_credentials_provider_static_new(const struct aws_credentials *creds);

void aws_credentials_provider_free(struct aws_credentials_provider *provider);

/* Copies current credentials into *out, refreshing temporary ones that expire
 * within 5 minutes. Safe from any thread; concurrent callers during a refresh
 * wait for it rather than all refreshing. Returns 0, or -1 with *err set
 * (kind AWS_ERR_CREDENTIALS, message naming every provider tried). The caller
 * wipes *out with aws_credentials_clear. */
int aws_credentials_get(struct aws_credentials_provider *provider, struct aws_credentials *out,
                        struct aws_error *err);

/* The region from AWS_REGION, AWS_DEFAULT_REGION or the profile's `region`
 * (AWS_PROFILE / default, in AWS_CONFIG_FILE or ~/.aws/config). Writes it to
 * out (NUL-terminated) and returns 0, or -1 when none is configured. */
int aws_region_resolve(const struct aws_env *env, char *out, size_t out_len);

#endif
