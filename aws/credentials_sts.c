/* A small STS client for the credentials providers: AssumeRole (SigV4-signed
 * with the source credentials) and AssumeRoleWithWebIdentity (unsigned), AWS
 * Query protocol over aws_http_perform, XML answers parsed with libxml2
 * (no network, no entity substitution). Any thread. */
#include "aws/credentials_provider.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/buffer.h"
#include "aws/sigv4.h"

#define STS_VERSION         "2011-06-15"
#define STS_MAX_RESPONSE    (256u * 1024u)
#define STS_CONNECT_TIMEOUT 3000L
#define STS_TIMEOUT         10000L
#define STS_MAX_AUTHORITY   256
#define STS_MAX_URL         2048

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

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

static xmlNode *find_element(xmlNode *node, const char *name)
{
    for (xmlNode *n = node; n != NULL; n = n->next) {
        xmlNode *found;

        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
            return n;
        found = find_element(n->children, name);
        if (found != NULL)
            return found;
    }
    return NULL;
}

/* Text of the first element `name` under node (malloc'd by libxml2), or NULL. */
static char *element_text(xmlNode *node, const char *name)
{
    xmlNode *n = find_element(node, name);

    return n != NULL ? (char *)xmlNodeGetContent(n) : NULL;
}

static void xml_secret_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    xmlFree(s);
}

static void copy_trimmed(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* Fills *err from an STS <ErrorResponse>. */
static void parse_error(const struct aws_http_response *resp, struct aws_error *err)
{
    xmlDoc *doc;
    char *code = NULL, *message = NULL, *request_id = NULL;

    aws_error_set(err, AWS_ERR_SERVICE, "STS answered HTTP %ld", resp->status);
    err->http_status = resp->status;
    doc = xmlReadMemory((const char *)resp->body, (int)resp->body_len, "sts-error.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc != NULL) {
        xmlNode *root = xmlDocGetRootElement(doc);

        code = element_text(root, "Code");
        message = element_text(root, "Message");
        request_id = element_text(root, "RequestId");
        if (code != NULL)
            copy_trimmed(err->code, sizeof(err->code), code);
        if (message != NULL)
            snprintf(err->message, sizeof(err->message), "STS %s: %s", code ? code : "error",
                     message);
        if (request_id != NULL)
            copy_trimmed(err->request_id, sizeof(err->request_id), request_id);
        xmlFree(code);
        xmlFree(message);
        xmlFree(request_id);
        xmlFreeDoc(doc);
    }
    if (err->request_id[0] == '\0') {
        const char *rid = aws_http_response_header(resp, "x-amzn-requestid");

        if (rid != NULL)
            copy_trimmed(err->request_id, sizeof(err->request_id), rid);
    }
    aws_error_classify(err);
}

/* Parses the <Credentials> of a successful answer. Returns 0 or -1. */
static int parse_credentials(const struct aws_http_response *resp, const char *source,
                             struct aws_credentials *out, struct aws_error *err)
{
    xmlDoc *doc;
    xmlNode *creds;
    char *akid = NULL, *secret = NULL, *token = NULL, *expiration = NULL;
    int64_t exp = 0;
    int rc = -1;

    if (resp->body_len > (size_t)STS_MAX_RESPONSE)
        return aws_error_set(err, AWS_ERR_TOO_LARGE, "STS answer too large");
    doc = xmlReadMemory((const char *)resp->body, (int)resp->body_len, "sts.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL)
        return aws_error_set(err, AWS_ERR_PARSE, "STS answer is not XML");
    creds = find_element(xmlDocGetRootElement(doc), "Credentials");
    if (creds == NULL) {
        aws_error_set(err, AWS_ERR_PARSE, "STS answer has no Credentials");
        goto out;
    }
    akid = element_text(creds->children, "AccessKeyId");
    secret = element_text(creds->children, "SecretAccessKey");
    token = element_text(creds->children, "SessionToken");
    expiration = element_text(creds->children, "Expiration");
    if (akid == NULL || secret == NULL || token == NULL || expiration == NULL) {
        aws_error_set(err, AWS_ERR_PARSE, "STS Credentials incomplete");
        goto out;
    }
    if (aws_parse_iso8601(expiration, &exp) != 0) {
        aws_error_set(err, AWS_ERR_PARSE, "STS Expiration not a timestamp");
        goto out;
    }
    if (aws_credentials_fill(out, akid, secret, token, exp, source) != 0) {
        aws_error_set(err, AWS_ERR_PARSE, "STS Credentials too long or empty");
        goto out;
    }
    rc = 0;
out:
    xmlFree(akid);
    xml_secret_free(secret);
    xml_secret_free(token);
    xmlFree(expiration);
    xmlFreeDoc(doc);
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
    struct aws_buf body;
    struct aws_http_header headers[5];
    struct aws_http_request req;
    struct aws_http_response resp;
    struct sigv4_result signed_hdrs;
    size_t n_headers = 0;
    int rc = -1;

    pthread_once(&xml_once, xml_init);
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
    if (form_add(&body, "Action", web ? "AssumeRoleWithWebIdentity" : "AssumeRole") != 0 ||
        form_add(&body, "Version", STS_VERSION) != 0 ||
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
        parse_error(&resp, err);
        goto out;
    }
    if (parse_credentials(&resp, web ? "web-identity" : "assume-role", out, err) != 0)
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
