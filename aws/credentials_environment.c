/* Credentials from the environment: AWS_ACCESS_KEY_ID (or the legacy
 * AWS_ACCESS_KEY), AWS_SECRET_ACCESS_KEY (or AWS_SECRET_KEY) and
 * AWS_SESSION_TOKEN. Any thread. */
#include "aws/credentials_provider.h"

#include <stdlib.h>

static int env_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                     struct aws_error *err)
{
    const struct aws_env *env = p->impl;
    const char *akid = aws_env_get(env, "AWS_ACCESS_KEY_ID");
    const char *secret = aws_env_get(env, "AWS_SECRET_ACCESS_KEY");

    if (akid == NULL)
        akid = aws_env_get(env, "AWS_ACCESS_KEY");
    if (secret == NULL)
        secret = aws_env_get(env, "AWS_SECRET_KEY");
    if (akid == NULL && secret == NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "AWS_ACCESS_KEY_ID not set");
        return AWS_CREDS_SKIP;
    }
    if (akid == NULL || secret == NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s set without %s",
                      akid != NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                      akid != NULL ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return AWS_CREDS_FAIL;
    }
    if (aws_credentials_fill(out, akid, secret, aws_env_get(env, "AWS_SESSION_TOKEN"), 0,
                             "environment") != 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "credentials in the environment are too long");
        return AWS_CREDS_FAIL;
    }
    return AWS_CREDS_OK;
}

static void env_destroy(struct aws_credentials_provider *p)
{
    (void)p; /* the environment is borrowed */
}

static const struct aws_credentials_provider_vtable env_vtable = {"environment", env_fetch,
                                                                  env_destroy};

struct aws_credentials_provider *aws_credentials_provider_environment_new(const struct aws_env *env)
{
    return aws_credentials_provider_new(&env_vtable,
                                        (void *)(env != NULL ? env : aws_env_default()));
}
