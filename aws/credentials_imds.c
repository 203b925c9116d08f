/* EC2 instance metadata credentials, IMDSv2 only: PUT /latest/api/token,
 * then GET /latest/meta-data/iam/security-credentials/ and .../<role> with
 * the session token. AWS_EC2_METADATA_DISABLED=true skips it;
 * AWS_EC2_METADATA_SERVICE_ENDPOINT (or _MODE=IPv6) changes the base URL.
 * Short timeouts: an instance without IMDS must not stall start-up. Any
 * thread. */
#include "aws/credentials_provider.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMDS_DEFAULT_V4      "http://169.254.169.254"
#define IMDS_DEFAULT_V6      "http://[fd00:ec2::254]"
#define IMDS_CONNECT_TIMEOUT 1000L
#define IMDS_TIMEOUT         2000L
#define IMDS_TOKEN_TTL       "21600"
#define IMDS_MAX_SMALL       (8u * 1024u)
#define IMDS_CREDS_PATH      "/latest/meta-data/iam/security-credentials/"

struct imds {
    const struct aws_env *env;
    struct aws_http *http;
};

/* One small request; returns 0 with *resp (status any), or -1 with *err. */
static int imds_request(struct aws_http *http, const char *method, const char *url,
                        const struct aws_http_header *headers, size_t n_headers,
                        struct aws_http_response *resp, struct aws_error *err)
{
    struct aws_http_request req;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.n_headers = n_headers;
    req.connect_timeout_ms = IMDS_CONNECT_TIMEOUT;
    req.timeout_ms = IMDS_TIMEOUT;
    req.max_response_bytes = IMDS_MAX_SMALL;
    memset(resp, 0, sizeof(*resp));
    return aws_http_perform(http, &req, resp, err);
}

static void trim_body(struct aws_http_response *resp)
{
    while (resp->body_len > 0 &&
           (resp->body[resp->body_len - 1] == '\n' || resp->body[resp->body_len - 1] == '\r' ||
            resp->body[resp->body_len - 1] == ' '))
        resp->body[--resp->body_len] = '\0';
}

static int imds_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                      struct aws_error *err)
{
    struct imds *m = p->impl;
    const char *disabled = aws_env_get(m->env, "AWS_EC2_METADATA_DISABLED");
    const char *base = aws_env_get(m->env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = aws_env_get(m->env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    char root[512], url[1024], token[256], role[256];
    struct aws_http_header headers[2];
    struct aws_http_response resp;
    size_t n;
    int rc = AWS_CREDS_FAIL;

    memset(&resp, 0, sizeof(resp));
    token[0] = '\0';
    if (disabled != NULL && strcasecmp(disabled, "true") == 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "disabled by AWS_EC2_METADATA_DISABLED");
        return AWS_CREDS_SKIP;
    }
    if (m->http == NULL) {
        aws_error_set(err, AWS_ERR_INVALID, "no HTTP transport");
        return AWS_CREDS_FAIL;
    }
    if (base == NULL)
        base = mode != NULL && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_V6 : IMDS_DEFAULT_V4;
    snprintf(root, sizeof(root), "%s", base);
    n = strlen(root);
    while (n > 0 && root[n - 1] == '/')
        root[--n] = '\0';

    /* 1. Session token. */
    snprintf(url, sizeof(url), "%s/latest/api/token", root);
    headers[0] = (struct aws_http_header){"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL};
    if (imds_request(m->http, "PUT", url, headers, 1, &resp, err) != 0)
        return AWS_CREDS_FAIL;
    trim_body(&resp);
    if (resp.status != 200 || resp.body_len == 0 || resp.body_len >= sizeof(token) ||
        strpbrk((const char *)resp.body, "\r\n") != NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "IMDSv2 token request answered HTTP %ld",
                      resp.status);
        err->http_status = resp.status;
        goto out;
    }
    memcpy(token, resp.body, resp.body_len + 1);
    OPENSSL_cleanse(resp.body, resp.body_len);
    aws_http_response_clear(&resp);
    headers[0] = (struct aws_http_header){"X-aws-ec2-metadata-token", token};

    /* 2. The instance profile's role name. */
    snprintf(url, sizeof(url), "%s" IMDS_CREDS_PATH, root);
    if (imds_request(m->http, "GET", url, headers, 1, &resp, err) != 0)
        goto out;
    trim_body(&resp);
    if (resp.status == 404) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "no IAM role attached to the instance");
        goto out;
    }
    n = resp.body != NULL ? strcspn((const char *)resp.body, "\r\n") : 0;
    if (resp.status != 200 || n == 0 || n >= sizeof(role) ||
        strpbrk((const char *)resp.body, "/?#%") != NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "IMDS role list answered HTTP %ld", resp.status);
        err->http_status = resp.status;
        goto out;
    }
    memcpy(role, resp.body, n);
    role[n] = '\0';
    aws_http_response_clear(&resp);

    /* 3. The role's credentials. */
    snprintf(url, sizeof(url), "%s" IMDS_CREDS_PATH "%s", root, role);
    if (aws_container_get_json(m->http, url, headers, 1, IMDS_CONNECT_TIMEOUT, IMDS_TIMEOUT, "imds",
                               out, err) != 0)
        goto out;
    rc = AWS_CREDS_OK;
out:
    if (resp.body != NULL)
        OPENSSL_cleanse(resp.body, resp.body_len);
    aws_http_response_clear(&resp);
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

static void imds_destroy(struct aws_credentials_provider *p)
{
    free(p->impl);
}

static const struct aws_credentials_provider_vtable imds_vtable = {"imds", imds_fetch,
                                                                   imds_destroy};

struct aws_credentials_provider *aws_credentials_provider_imds_new(const struct aws_env *env,
                                                                   struct aws_http *http)
{
    struct imds *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->env = env != NULL ? env : aws_env_default();
    m->http = http;
    return aws_credentials_provider_new(&imds_vtable, m);
}
