/* Web identity credentials: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+
 * AWS_ROLE_SESSION_NAME) exchanged at STS with AssumeRoleWithWebIdentity.
 * The token file is re-read on every refresh (it is rotated). Any thread. */
#include "aws/credentials_provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEB_IDENTITY_TOKEN_MAX (64u * 1024u)

struct web_identity {
    const struct aws_env *env;
    struct aws_http *http;
    char region[64];
};

int aws_web_identity_fetch(const struct aws_env *env, struct aws_http *http, const char *region,
                           const char *token_file, const char *role_arn, const char *session_name,
                           struct aws_credentials *out, struct aws_error *err)
{
    struct aws_sts_assume_role_params params;
    char default_session[64];
    char *token = aws_read_small_file(token_file, WEB_IDENTITY_TOKEN_MAX);
    int rc;

    if (token == NULL)
        return aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot read token file %s: %s", token_file,
                             strerror(errno));
    if (token[0] == '\0') {
        aws_secret_free(token);
        return aws_error_set(err, AWS_ERR_CREDENTIALS, "token file %s is empty", token_file);
    }
    if (session_name == NULL) {
        snprintf(default_session, sizeof(default_session), "aviary-%lld",
                 (long long)aws_env_now(env));
        session_name = default_session;
    }
    memset(&params, 0, sizeof(params));
    params.role_arn = role_arn;
    params.session_name = session_name;
    params.web_identity_token = token;
    rc = aws_sts_assume_role(env, http, region, NULL, &params, out, err);
    aws_secret_free(token);
    return rc == 0 ? AWS_CREDS_OK : AWS_CREDS_FAIL;
}

static int web_identity_provider_fetch(struct aws_credentials_provider *p,
                                       struct aws_credentials *out, struct aws_error *err)
{
    struct web_identity *w = p->impl;
    const char *file = aws_env_get(w->env, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role = aws_env_get(w->env, "AWS_ROLE_ARN");
    struct aws_error inner;
    int rc;

    if (file == NULL || role == NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s not set",
                      file == NULL ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN");
        return AWS_CREDS_SKIP;
    }
    aws_error_clear(&inner);
    rc = aws_web_identity_fetch(w->env, w->http, w->region, file, role,
                                aws_env_get(w->env, "AWS_ROLE_SESSION_NAME"), out, &inner);
    if (rc != AWS_CREDS_OK) {
        *err = inner;
        snprintf(err->message, sizeof(err->message), "AssumeRoleWithWebIdentity for %.200s: %.250s",
                 role, inner.message);
    }
    return rc;
}

static void web_identity_destroy(struct aws_credentials_provider *p)
{
    free(p->impl);
}

static const struct aws_credentials_provider_vtable web_identity_vtable = {
    "web-identity", web_identity_provider_fetch, web_identity_destroy};

struct aws_credentials_provider *
aws_credentials_provider_web_identity_new(const struct aws_env *env, struct aws_http *http,
                                          const char *region)
{
    struct web_identity *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->env = env != NULL ? env : aws_env_default();
    w->http = http;
    snprintf(w->region, sizeof(w->region), "%s", region != NULL ? region : "");
    return aws_credentials_provider_new(&web_identity_vtable, w);
}
