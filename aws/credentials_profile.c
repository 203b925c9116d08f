/* Credentials from the shared files (~/.aws/credentials, ~/.aws/config):
 * static keys, or role_arn assumed through STS with source_profile (chains,
 * with cycle detection), credential_source (Environment,
 * Ec2InstanceMetadata, EcsContainer) or web_identity_token_file. Also the
 * region lookup. Files are re-read at every fetch. Any thread. */
#include "aws/credentials_provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/config_file.h"

#define PROFILE_MAX_DEPTH 8
#define PROFILE_PATH_MAX  1024

struct profile_provider {
    const struct aws_env *env;
    struct aws_http *http;
    char region[64];
    char *profile; /* NULL: the active profile */
};

/* Both files of one fetch. */
struct profile_ctx {
    const struct aws_env *env;
    struct aws_http *http;
    const char *region;
    struct aws_config_file *config;
    struct aws_config_file *credentials;
    char config_path[PROFILE_PATH_MAX];
    char credentials_path[PROFILE_PATH_MAX];
};

/* A key of a profile: the credentials file wins over the config file. */
static const char *profile_get(const struct profile_ctx *ctx, const char *profile, const char *key)
{
    const char *v = aws_config_section_get(aws_config_file_profile(ctx->credentials, profile), key);

    if (v == NULL)
        v = aws_config_section_get(aws_config_file_profile(ctx->config, profile), key);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool profile_exists(const struct profile_ctx *ctx, const char *profile)
{
    return aws_config_file_profile(ctx->credentials, profile) != NULL ||
           aws_config_file_profile(ctx->config, profile) != NULL;
}

/* Static keys of a profile, taken together from one file. Returns
 * AWS_CREDS_OK, AWS_CREDS_SKIP when the profile has no aws_access_key_id,
 * or AWS_CREDS_FAIL. */
static int static_keys(const struct profile_ctx *ctx, const char *profile,
                       struct aws_credentials *out, struct aws_error *err)
{
    const struct aws_config_section *s = aws_config_file_profile(ctx->credentials, profile);
    const char *akid = aws_config_section_get(s, "aws_access_key_id");

    if (akid == NULL) {
        s = aws_config_file_profile(ctx->config, profile);
        akid = aws_config_section_get(s, "aws_access_key_id");
    }
    if (akid == NULL || akid[0] == '\0')
        return AWS_CREDS_SKIP;
    if (aws_credentials_fill(out, akid, aws_config_section_get(s, "aws_secret_access_key"),
                             aws_config_section_get(s, "aws_session_token"), 0, "profile") != 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "profile %s: aws_access_key_id without a usable aws_secret_access_key",
                      profile);
        return AWS_CREDS_FAIL;
    }
    return AWS_CREDS_OK;
}

/* Source credentials named by credential_source. */
static int credential_source(const struct profile_ctx *ctx, const char *profile, const char *src,
                             struct aws_credentials *out, struct aws_error *err)
{
    struct aws_credentials_provider *p = NULL;
    struct aws_error inner;
    int rc;

    if (strcmp(src, "Environment") == 0)
        p = aws_credentials_provider_environment_new(ctx->env);
    else if (strcmp(src, "Ec2InstanceMetadata") == 0)
        p = aws_credentials_provider_imds_new(ctx->env, ctx->http);
    else if (strcmp(src, "EcsContainer") == 0)
        p = aws_credentials_provider_ecs_new(ctx->env, ctx->http);
    else
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "profile %s: unknown credential_source %.64s", profile, src);
    if (p == NULL)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    rc = aws_credentials_provider_fetch(p, out, &inner);
    aws_credentials_provider_free(p);
    if (rc != AWS_CREDS_OK) {
        *err = inner;
        snprintf(err->message, sizeof(err->message), "profile %.64s: credential_source %s: %.300s",
                 profile, src, inner.message);
        return -1;
    }
    return 0;
}

static int resolve(struct profile_ctx *ctx, const char *profile, const char **visited, int depth,
                   bool top, struct aws_credentials *out, struct aws_error *err);

/* role_arn: the source credentials, then STS AssumeRole. */
static int assume_role(struct profile_ctx *ctx, const char *profile, const char *role_arn,
                       const char **visited, int depth, struct aws_credentials *out,
                       struct aws_error *err)
{
    const char *source_profile = profile_get(ctx, profile, "source_profile");
    const char *cred_source = profile_get(ctx, profile, "credential_source");
    const char *token_file = profile_get(ctx, profile, "web_identity_token_file");
    const char *session = profile_get(ctx, profile, "role_session_name");
    const char *duration = profile_get(ctx, profile, "duration_seconds");
    struct aws_sts_assume_role_params params;
    struct aws_credentials source;
    char default_session[64];
    int duration_s = 0, rc = -1;

    memset(&source, 0, sizeof(source));
    if (profile_get(ctx, profile, "mfa_serial") != NULL)
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "profile %s: mfa_serial is not supported (no interactive prompt)",
                             profile);
    if (source_profile != NULL && cred_source != NULL)
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "profile %s: both source_profile and credential_source are set",
                             profile);
    if (duration != NULL) {
        char *end;
        long d = strtol(duration, &end, 10);

        /* Checked before any source credentials are fetched. */
        if (*end != '\0' || d < 900 || d > 43200)
            return aws_error_set(err, AWS_ERR_CREDENTIALS,
                                 "profile %s: duration_seconds must be 900..43200", profile);
        duration_s = (int)d;
    }
    if (session == NULL) {
        snprintf(default_session, sizeof(default_session), "aviary-%lld",
                 (long long)aws_env_now(ctx->env));
        session = default_session;
    }
    if (source_profile == NULL && cred_source == NULL) {
        if (token_file != NULL)
            return aws_web_identity_fetch(ctx->env, ctx->http, ctx->region, token_file, role_arn,
                                          session, out, err) == AWS_CREDS_OK
                       ? 0
                       : -1;
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "profile %s: role_arn without source_profile or credential_source",
                             profile);
    }

    if (cred_source != NULL) {
        if (credential_source(ctx, profile, cred_source, &source, err) != 0)
            goto out;
    } else if (strcmp(source_profile, profile) == 0) {
        /* A profile may name itself to use its own static keys. */
        if (static_keys(ctx, profile, &source, err) != AWS_CREDS_OK) {
            if (err->message[0] == '\0')
                aws_error_set(err, AWS_ERR_CREDENTIALS,
                              "profile %s: source_profile is itself but it has no static keys",
                              profile);
            goto out;
        }
    } else {
        for (int i = 0; i <= depth; i++) {
            if (strcmp(visited[i], source_profile) == 0) {
                aws_error_set(err, AWS_ERR_CREDENTIALS,
                              "profile %s: source_profile cycle through %.64s", profile,
                              source_profile);
                goto out;
            }
        }
        if (resolve(ctx, source_profile, visited, depth + 1, false, &source, err) != AWS_CREDS_OK)
            goto out;
    }

    memset(&params, 0, sizeof(params));
    params.role_arn = role_arn;
    params.session_name = session;
    params.external_id = profile_get(ctx, profile, "external_id");
    params.duration_seconds = duration_s;
    if (aws_sts_assume_role(ctx->env, ctx->http, ctx->region, &source, &params, out, err) != 0) {
        char inner[sizeof(err->message)];

        snprintf(inner, sizeof(inner), "%s", err->message);
        snprintf(err->message, sizeof(err->message), "profile %.64s: AssumeRole %.160s: %.250s",
                 profile, role_arn, inner);
        goto out;
    }
    snprintf(out->source, sizeof(out->source), "profile");
    rc = 0;
out:
    aws_credentials_clear(&source);
    return rc;
}

static int resolve(struct profile_ctx *ctx, const char *profile, const char **visited, int depth,
                   bool top, struct aws_credentials *out, struct aws_error *err)
{
    const char *role_arn;
    int rc;

    if (depth >= PROFILE_MAX_DEPTH) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "source_profile chain longer than %d",
                      PROFILE_MAX_DEPTH);
        return AWS_CREDS_FAIL;
    }
    visited[depth] = profile;
    if (!profile_exists(ctx, profile)) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "profile %.64s not found in %.180s or %.180s",
                      profile, ctx->credentials_path, ctx->config_path);
        return top && !aws_config_profile_explicit(ctx->env) ? AWS_CREDS_SKIP : AWS_CREDS_FAIL;
    }
    role_arn = profile_get(ctx, profile, "role_arn");
    if (role_arn != NULL)
        return assume_role(ctx, profile, role_arn, visited, depth, out, err) == 0 ? AWS_CREDS_OK
                                                                                  : AWS_CREDS_FAIL;
    rc = static_keys(ctx, profile, out, err);
    if (rc != AWS_CREDS_SKIP)
        return rc;
    if (profile_get(ctx, profile, "credential_process") != NULL ||
        profile_get(ctx, profile, "sso_session") != NULL ||
        profile_get(ctx, profile, "sso_start_url") != NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "profile %s uses credential_process or SSO, which aviary does not support",
                      profile);
        return AWS_CREDS_FAIL;
    }
    aws_error_set(err, AWS_ERR_CREDENTIALS, "profile %.64s has no credentials", profile);
    return top ? AWS_CREDS_SKIP : AWS_CREDS_FAIL;
}

static int profile_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                         struct aws_error *err)
{
    struct profile_provider *pp = p->impl;
    struct profile_ctx ctx;
    const char *profile = pp->profile != NULL ? pp->profile : aws_config_profile_name(pp->env);
    const char *visited[PROFILE_MAX_DEPTH + 1];
    int rc = AWS_CREDS_FAIL;

    memset(&ctx, 0, sizeof(ctx));
    ctx.env = pp->env;
    ctx.http = pp->http;
    ctx.region = pp->region;
    if (aws_config_file_path(pp->env, AWS_CONFIG_KIND_CONFIG, ctx.config_path,
                             sizeof(ctx.config_path)) != 0 ||
        aws_config_file_path(pp->env, AWS_CONFIG_KIND_CREDENTIALS, ctx.credentials_path,
                             sizeof(ctx.credentials_path)) != 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "HOME not set and no AWS_CONFIG_FILE/"
                      "AWS_SHARED_CREDENTIALS_FILE");
        return AWS_CREDS_SKIP;
    }
    if (aws_config_file_load(ctx.config_path, AWS_CONFIG_KIND_CONFIG, &ctx.config) != 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot read %.200s: %s", ctx.config_path,
                      strerror(errno));
        goto out;
    }
    if (aws_config_file_load(ctx.credentials_path, AWS_CONFIG_KIND_CREDENTIALS, &ctx.credentials) !=
        0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot read %.200s: %s", ctx.credentials_path,
                      strerror(errno));
        goto out;
    }
    if (ctx.region[0] == '\0') {
        const char *r = profile_get(&ctx, profile, "region");

        ctx.region = r != NULL ? r : "us-east-1";
    }
    rc = resolve(&ctx, profile, visited, 0, true, out, err);
out:
    aws_config_file_free(ctx.config);
    aws_config_file_free(ctx.credentials);
    return rc;
}

static void profile_destroy(struct aws_credentials_provider *p)
{
    struct profile_provider *pp = p->impl;

    free(pp->profile);
    free(pp);
}

static const struct aws_credentials_provider_vtable profile_vtable = {"profile", profile_fetch,
                                                                      profile_destroy};

struct aws_credentials_provider *aws_credentials_provider_profile_new(const struct aws_env *env,
                                                                      struct aws_http *http,
                                                                      const char *region,
                                                                      const char *profile)
{
    struct profile_provider *pp = calloc(1, sizeof(*pp));

    if (pp == NULL)
        return NULL;
    pp->env = env != NULL ? env : aws_env_default();
    pp->http = http;
    snprintf(pp->region, sizeof(pp->region), "%s", region != NULL ? region : "");
    if (profile != NULL) {
        pp->profile = strdup(profile);
        if (pp->profile == NULL) {
            free(pp);
            return NULL;
        }
    }
    return aws_credentials_provider_new(&profile_vtable, pp);
}

int aws_region_resolve(const struct aws_env *env, char *out, size_t out_len)
{
    const char *region = aws_env_get(env, "AWS_REGION");
    char path[PROFILE_PATH_MAX];
    struct aws_config_file *config = NULL;
    int rc = -1, n;

    if (region == NULL)
        region = aws_env_get(env, "AWS_DEFAULT_REGION");
    if (region == NULL) {
        if (aws_config_file_path(env, AWS_CONFIG_KIND_CONFIG, path, sizeof(path)) != 0 ||
            aws_config_file_load(path, AWS_CONFIG_KIND_CONFIG, &config) != 0)
            return -1;
        region = aws_config_section_get(
            aws_config_file_profile(config, aws_config_profile_name(env)), "region");
    }
    if (region != NULL && region[0] != '\0') {
        n = snprintf(out, out_len, "%s", region);
        rc = n < 0 || (size_t)n >= out_len ? -1 : 0;
    }
    aws_config_file_free(config);
    return rc;
}
