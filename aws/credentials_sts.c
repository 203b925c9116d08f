/* A small STS client for the credentials providers: AssumeRole (SigV4-signed
 * with the source credentials) and AssumeRoleWithWebIdentity (unsigned), AWS
 * Query protocol over aws_http_perform; answers read with the hardened
 * aws/xml.h reader (no network, no DTD, no entity), errors with the shared
 * protocol error parser. Secrets never reach *err or a log line, and every
 * copy aviary makes of them is wiped. Any thread. */
#include "aws/credentials_provider.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/buffer.h"
#include "aws/model.h"
#include "aws/protocol.h"
#include "aws/sigv4.h"
#include "aws/xml.h"

#define STS_VERSION         "2011-06-15"
#define STS_MAX_RESPONSE    (256u * 1024u)
#define STS_CONNECT_TIMEOUT 3000L
#define STS_TIMEOUT         10000L
#define STS_MAX_AUTHORITY   256
#define STS_MAX_URL         2048

/* The STS base URL (no trailing '/') for region. Returns 0 or -1. */
static int sts_base_url(const struct aws_env *env, const char *region, char *out, size_t len)
{
    const char *ignore = aws_env_get(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    const char *url = NULL;
    size_t n;
    int w;

    if (ignore == NULL || strcasecmp(ignore, "true") != 0) {
        url = aws_env_get(env, "AWS_ENDPOINT_URL_STS");
        if (url == NULL)
            url = aws_env_get(env, "AWS_ENDPOINT_URL");
    }
    if (url != NULL)
        w = snprintf(out, len, "%s", url);
    else if (strncmp(region, "cn-", 3) == 0)
        w = snprintf(out, len, "https://sts.%s.amazonaws.com.cn", region);
    else
        w = snprintf(out, len, "https://sts.%s.amazonaws.com", region);
    if (w < 0 || (size_t)w >= len)
        return -1;
    n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

/* Splits "scheme://authority/path" into the authority and the path (with a
 * leading '/'; "/" when absent). Returns 0 or -1. */
static int split_url(const char *url, char *authority, size_t alen, const char **path)
{
    const char *p = strstr(url, "://"), *slash;
    size_t n;

    if (p == NULL)
        return -1;
    p += 3;
    slash = strchr(p, '/');
    n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n >= alen)
        return -1;
    memcpy(authority, p, n);
    authority[n] = '\0';
    *path = slash != NULL ? slash : "/";
    return 0;
}

static int form_add(struct aws_buf *b, const char *name, const char *value)
{
    if (b->len > 0 && aws_buf_append_char(b, '&') != 0)
        return -1;
    if (aws_buf_append_str(b, name) != 0 || aws_buf_append_char(b, '=') != 0)
        return -1;
    return sigv4_uri_encode(b, value, strlen(value), false);
}

/* A buffer for one value read from the answer, sized once up front so that
 * appending never reallocates and leaves a partial copy of a secret in freed
 * memory. Release with aws_buf_free_secret. Returns 0 or -1. */
static int value_buf_init(struct aws_buf *b, size_t max)
{
    static const char zeros[AWS_SESSION_TOKEN_MAX];

    aws_buf_init(b, max);
    if (max > sizeof(zeros) || aws_buf_append(b, zeros, max) != 0)
        return -1;
    aws_buf_reset(b);
    return 0;
}

/* Appends the text of the element `name` under `parent` to *out, which must
 * come back non-empty. Text only: an element holding markup is refused.
 * Returns 0, or -1 with *err (AWS_ERR_PARSE, naming the element, never its
 * value). */
static int credential_field(const struct aws_xml_node *parent, const char *name,
                            struct aws_buf *out, struct aws_error *err)
{
    const struct aws_xml_node *n = aws_xml_child(parent, name);

    if (n == NULL)
        return aws_error_set(err, AWS_ERR_PARSE, "STS Credentials have no %s", name);
    if (aws_xml_has_children(n))
        return aws_error_set(err, AWS_ERR_PARSE, "STS Credentials: %s is not text", name);
    if (aws_xml_text(n, out) != 0)
        return aws_error_set(err, AWS_ERR_PARSE, "STS Credentials: %s too long", name);
    if (out->len == 0)
        return aws_error_set(err, AWS_ERR_PARSE, "STS Credentials: %s is empty", name);
    return 0;
}

/* Fills *err from an STS error answer (any non-200): the Query protocol's
 * <ErrorResponse>, read by the shared hardened parser (no DTD, no entity),
 * classified like any AWS error; "STS <code> (HTTP <status>): <message>" as
 * the message. */
static void parse_error(const struct aws_http_response *resp, const char *action,
                        struct aws_error *err)
{
    const struct aws_service_model *svc = aws_model_service("sts");
    const struct aws_operation *op = svc != NULL ? aws_model_operation(svc, action) : NULL;
    char message[sizeof(err->message)];

    aws_protocol_parse_error(svc, op, resp, err);
    snprintf(message, sizeof(message), "%s", err->message);
    snprintf(err->message, sizeof(err->message), "STS %.128s (HTTP %ld): %.360s", err->code,
             resp->status, message);
}

/* Parses <ActionResponse><ActionResult><Credentials> of a successful
 * answer into *out. The parsed document and every buffer that held a value
 * are wiped before they are released. Returns 0, or -1 with *err
 * (AWS_ERR_PARSE, AWS_ERR_TOO_LARGE, AWS_ERR_NO_MEMORY) and *out cleared. */
static int parse_credentials(const struct aws_http_response *resp, const char *action,
                             const char *source, struct aws_credentials *out, struct aws_error *err)
{
    struct aws_xml_doc *doc = NULL;
    const struct aws_xml_node *root, *result, *creds;
    struct aws_buf akid, secret, token, expiration;
    char wrapper[64];
    int64_t exp = 0;
    int rc = -1;

    memset(&akid, 0, sizeof(akid));
    memset(&secret, 0, sizeof(secret));
    memset(&token, 0, sizeof(token));
    memset(&expiration, 0, sizeof(expiration));
    if (aws_xml_parse(resp->body, resp->body_len, STS_MAX_RESPONSE, &doc, err) != 0) {
        char msg[sizeof(err->message)];
        char *detail;

        /* "invalid XML (line N): <libxml2's words>": libxml2 may quote a few
         * bytes of the input (encoding errors), which could be part of a
         * secret, so only the line is kept. */
        snprintf(msg, sizeof(msg), "%s", err->message);
        if (strncmp(msg, "invalid XML", 11) == 0 && (detail = strstr(msg, "): ")) != NULL)
            detail[1] = '\0';
        snprintf(err->message, sizeof(err->message), "STS answer refused: %.480s", msg);
        goto out;
    }
    root = aws_xml_root(doc);
    snprintf(wrapper, sizeof(wrapper), "%sResponse", action);
    if (strcmp(aws_xml_name(root), wrapper) != 0) {
        aws_error_set(err, AWS_ERR_PARSE, "STS answer is not a %s", wrapper);
        goto out;
    }
    snprintf(wrapper, sizeof(wrapper), "%sResult", action);
    if ((result = aws_xml_child(root, wrapper)) == NULL ||
        (creds = aws_xml_child(result, "Credentials")) == NULL) {
        aws_error_set(err, AWS_ERR_PARSE, "STS answer has no %s.Credentials", wrapper);
        goto out;
    }
    /* Each buffer holds at most what struct aws_credentials can take. */
    if (value_buf_init(&akid, AWS_ACCESS_KEY_MAX - 1) != 0 ||
        value_buf_init(&secret, AWS_SECRET_KEY_MAX - 1) != 0 ||
        value_buf_init(&token, AWS_SESSION_TOKEN_MAX - 1) != 0 ||
        value_buf_init(&expiration, 63) != 0) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (credential_field(creds, "AccessKeyId", &akid, err) != 0 ||
        credential_field(creds, "SecretAccessKey", &secret, err) != 0 ||
        credential_field(creds, "SessionToken", &token, err) != 0 ||
        credential_field(creds, "Expiration", &expiration, err) != 0)
        goto out;
    if (aws_parse_iso8601(expiration.data, &exp) != 0) {
        aws_error_set(err, AWS_ERR_PARSE, "STS Expiration not a timestamp");
        goto out;
    }
    if (aws_credentials_fill(out, akid.data, secret.data, token.data, exp, source) != 0) {
        aws_error_set(err, AWS_ERR_PARSE, "STS Credentials too long or empty");
        goto out;
    }
    rc = 0;
out:
    aws_buf_free_secret(&akid);
    aws_buf_free_secret(&secret);
    aws_buf_free_secret(&token);
    aws_buf_free(&expiration);
    aws_xml_wipe(doc);
    aws_xml_free(doc);
    if (rc != 0)
        aws_credentials_clear(out);
    return rc;
}

int aws_sts_assume_role(const struct aws_env *env, struct aws_http *http, const char *region,
                        const struct aws_credentials *source,
                        const struct aws_sts_assume_role_params *params,
                        struct aws_credentials *out, struct aws_error *err)
{
    char base[STS_MAX_URL], url[STS_MAX_URL + 2], sign_path[STS_MAX_URL + 2],
        authority[STS_MAX_AUTHORITY], duration[16];
    const char *path;
    bool web = params->web_identity_token != NULL;
    const char *action = web ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    struct aws_buf body;
    struct aws_http_header headers[5];
    struct aws_http_request req;
    struct aws_http_response resp;
    struct sigv4_result signed_hdrs;
    size_t n_headers = 0;
    int rc = -1;

    memset(&resp, 0, sizeof(resp));
    memset(&signed_hdrs, 0, sizeof(signed_hdrs));
    aws_buf_init(&body, 256u * 1024u);
    aws_credentials_clear(out);
    if (http == NULL)
        return aws_error_set(err, AWS_ERR_INVALID, "no HTTP transport for STS");
    if (region == NULL || region[0] == '\0')
        region = "us-east-1";
    if (sts_base_url(env, region, base, sizeof(base)) != 0 ||
        split_url(base, authority, sizeof(authority), &path) != 0)
        return aws_error_set(err, AWS_ERR_INVALID, "invalid STS endpoint URL");
    /* POST to "<base>/"; the signed path is the base's own path plus "/". */
    snprintf(url, sizeof(url), "%s/", base);
    snprintf(sign_path, sizeof(sign_path), "%s/", strcmp(path, "/") == 0 ? "" : path);

    /* Size the body once so the web identity token is never left behind in
     * memory released by a growing realloc. */
    {
        size_t need = 1024 + strlen(params->role_arn) * 3 + strlen(params->session_name) * 3 +
                      (params->external_id != NULL ? strlen(params->external_id) * 3 : 0) +
                      (web ? strlen(params->web_identity_token) * 3 : 0);

        while (body.len < need) {
            static const char zeros[256];

            if (aws_buf_append(&body, zeros, sizeof(zeros)) != 0)
                goto nomem;
        }
        aws_buf_reset(&body);
    }
    if (form_add(&body, "Action", action) != 0 || form_add(&body, "Version", STS_VERSION) != 0 ||
        form_add(&body, "RoleArn", params->role_arn) != 0 ||
        form_add(&body, "RoleSessionName", params->session_name) != 0)
        goto nomem;
    if (params->duration_seconds > 0) {
        snprintf(duration, sizeof(duration), "%d", params->duration_seconds);
        if (form_add(&body, "DurationSeconds", duration) != 0)
            goto nomem;
    }
    if (params->external_id != NULL && form_add(&body, "ExternalId", params->external_id) != 0)
        goto nomem;
    if (web && form_add(&body, "WebIdentityToken", params->web_identity_token) != 0)
        goto nomem;

    headers[n_headers++] = (struct aws_http_header){"Host", authority};
    headers[n_headers++] = (struct aws_http_header){
        "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
    if (!web) {
        struct sigv4_header sh[] = {
            {"host", authority},
            {"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
        struct sigv4_params sp = {.region = region, .service = "sts", .time = aws_env_now(env)};
        struct sigv4_request sr = {.method = "POST",
                                   .path = sign_path,
                                   .headers = sh,
                                   .n_headers = 2,
                                   .payload = (const unsigned char *)body.data,
                                   .payload_len = body.len};

        if (source == NULL || sigv4_sign(NULL, source, &sp, &sr, &signed_hdrs) != 0) {
            aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot sign the STS request");
            goto out;
        }
        headers[n_headers++] = (struct aws_http_header){"X-Amz-Date", signed_hdrs.amz_date};
        headers[n_headers++] = (struct aws_http_header){"Authorization", signed_hdrs.authorization};
        if (signed_hdrs.security_token[0] != '\0')
            headers[n_headers++] =
                (struct aws_http_header){"X-Amz-Security-Token", signed_hdrs.security_token};
    }

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = headers;
    req.n_headers = n_headers;
    req.body = (const unsigned char *)body.data;
    req.body_len = body.len;
    req.connect_timeout_ms = STS_CONNECT_TIMEOUT;
    req.timeout_ms = STS_TIMEOUT;
    req.max_response_bytes = STS_MAX_RESPONSE;
    if (aws_http_perform(http, &req, &resp, err) != 0)
        goto out;
    if (resp.status != 200) {
        parse_error(&resp, action, err);
        goto out;
    }
    if (parse_credentials(&resp, action, web ? "web-identity" : "assume-role", out, err) != 0)
        goto out;
    rc = 0;
    goto out;
nomem:
    aws_error_set(err, AWS_ERR_NO_MEMORY, "STS request too large");
out:
    if (resp.body != NULL)
        OPENSSL_cleanse(resp.body, resp.body_len);
    aws_http_response_clear(&resp);
    sigv4_result_clear(&signed_hdrs);
    aws_buf_free_secret(&body);
    return rc;
}
