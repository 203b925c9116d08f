/* ECS (and EKS Pod Identity) container credentials:
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI against http://169.254.170.2, or
 * AWS_CONTAINER_CREDENTIALS_FULL_URI (plain http only to loopback and the
 * ECS/EKS link-local hosts), with the Authorization header from
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN.
 * Any thread. */
#include "aws/credentials_provider.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ECS_HOST            "http://169.254.170.2"
#define ECS_CONNECT_TIMEOUT 1000L
#define ECS_TIMEOUT         5000L
#define ECS_MAX_RESPONSE    (64u * 1024u)
#define ECS_MAX_TOKEN       (16u * 1024u)
#define ECS_ATTEMPTS        2

struct ecs {
    const struct aws_env *env;
    struct aws_http *http;
};

/* True when plain http to host is allowed: loopback, or the ECS/EKS
 * container credential addresses. host is the URL's host, IPv6 without
 * brackets. */
static bool allowed_http_host(const char *host)
{
    unsigned char a4[4], a6[16];
    static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char eks6[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0,
                                           0,    0, 0,    0,    0, 0, 0, 0x23};

    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a4) == 1)
        return a4[0] == 127 ||
               (a4[0] == 169 && a4[1] == 254 && a4[2] == 170 && (a4[3] == 2 || a4[3] == 23));
    if (inet_pton(AF_INET6, host, a6) == 1)
        return memcmp(a6, loop6, 16) == 0 || memcmp(a6, eks6, 16) == 0;
    return false;
}

/* Checks a FULL_URI: https anywhere, http only to allowed hosts. Returns 0 or
 * -1 with *err. */
static int check_full_uri(const char *uri, struct aws_error *err)
{
    char host[256];
    const char *p, *e;
    size_t n;

    if (strncasecmp(uri, "https://", 8) == 0)
        return 0;
    if (strncasecmp(uri, "http://", 7) != 0)
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
    p = uri + 7;
    if (*p == '[') {
        p++;
        e = strchr(p, ']');
        if (e == NULL)
            return aws_error_set(err, AWS_ERR_CREDENTIALS,
                                 "AWS_CONTAINER_CREDENTIALS_FULL_URI has a bad host");
    } else {
        e = p + strcspn(p, ":/?#");
    }
    n = (size_t)(e - p);
    if (n == 0 || n >= sizeof(host) || memchr(p, '@', n) != NULL)
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "AWS_CONTAINER_CREDENTIALS_FULL_URI has a bad host");
    memcpy(host, p, n);
    host[n] = '\0';
    if (!allowed_http_host(host))
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "AWS_CONTAINER_CREDENTIALS_FULL_URI host %s is not loopback or "
                             "the ECS/EKS endpoint (use https)",
                             host);
    return 0;
}

/* Parses the container endpoint's JSON. Returns 0 or -1 with *err. */
static int parse_container_json(const struct aws_http_response *resp, const char *source,
                                struct aws_credentials *out, struct aws_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)resp->body, resp->body_len, 0, &jerr);
    const char *akid, *secret, *token, *exp_s, *code;
    int64_t exp = 0;
    int rc = -1;

    if (doc == NULL || !json_is_object(doc)) {
        aws_error_set(err, AWS_ERR_PARSE, "%s answer is not a JSON object", source);
        goto out;
    }
    code = json_string_value(json_object_get(doc, "Code"));
    if (code != NULL && strcmp(code, "Success") != 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s answered Code %.100s", source, code);
        goto out;
    }
    akid = json_string_value(json_object_get(doc, "AccessKeyId"));
    secret = json_string_value(json_object_get(doc, "SecretAccessKey"));
    token = json_string_value(json_object_get(doc, "Token"));
    exp_s = json_string_value(json_object_get(doc, "Expiration"));
    if (akid == NULL || secret == NULL) {
        aws_error_set(err, AWS_ERR_PARSE, "%s answer lacks AccessKeyId/SecretAccessKey", source);
        goto out;
    }
    if (exp_s != NULL && aws_parse_iso8601(exp_s, &exp) != 0) {
        aws_error_set(err, AWS_ERR_PARSE, "%s Expiration is not a timestamp", source);
        goto out;
    }
    if (aws_credentials_fill(out, akid, secret, token, exp, source) != 0) {
        aws_error_set(err, AWS_ERR_PARSE, "%s credentials too long", source);
        goto out;
    }
    rc = 0;
out:
    if (doc != NULL) {
        json_t *v = json_object_get(doc, "SecretAccessKey");

        /* jansson keeps its own copies: wipe the secret ones before freeing. */
        if (json_is_string(v))
            OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
        v = json_object_get(doc, "Token");
        if (json_is_string(v))
            OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
        json_decref(doc);
    }
    return rc;
}

int aws_container_get_json(struct aws_http *http, const char *url,
                           const struct aws_http_header *headers, size_t n_headers,
                           long connect_timeout_ms, long timeout_ms, const char *source,
                           struct aws_credentials *out, struct aws_error *err)
{
    struct aws_http_request req;
    struct aws_http_response resp;
    int rc = -1;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;
    req.headers = headers;
    req.n_headers = n_headers;
    req.connect_timeout_ms = connect_timeout_ms;
    req.timeout_ms = timeout_ms;
    req.max_response_bytes = ECS_MAX_RESPONSE;
    for (int attempt = 0; attempt < ECS_ATTEMPTS; attempt++) {
        memset(&resp, 0, sizeof(resp));
        if (aws_http_perform(http, &req, &resp, err) != 0) {
            if (err->kind == AWS_ERR_TOO_LARGE)
                return -1;
            continue;
        }
        if (resp.status == 200) {
            rc = parse_container_json(&resp, source, out, err);
        } else {
            aws_error_set(err, AWS_ERR_CREDENTIALS, "%s answered HTTP %ld", source, resp.status);
            err->http_status = resp.status;
        }
        if (resp.body != NULL)
            OPENSSL_cleanse(resp.body, resp.body_len);
        aws_http_response_clear(&resp);
        if (rc == 0 || err->http_status < 500)
            break;
    }
    return rc;
}

static int ecs_fetch(struct aws_credentials_provider *p, struct aws_credentials *out,
                     struct aws_error *err)
{
    struct ecs *e = p->impl;
    const char *rel = aws_env_get(e->env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = aws_env_get(e->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *token_file = aws_env_get(e->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *token_env = aws_env_get(e->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char url[2048], *token = NULL;
    struct aws_http_header headers[2];
    size_t n_headers = 0;
    int n, rc = AWS_CREDS_FAIL;

    if (rel == NULL && full == NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI "
                      "not set");
        return AWS_CREDS_SKIP;
    }
    if (e->http == NULL) {
        aws_error_set(err, AWS_ERR_INVALID, "no HTTP transport");
        return AWS_CREDS_FAIL;
    }
    if (rel != NULL) {
        n = snprintf(url, sizeof(url), "%s%s%s", ECS_HOST, rel[0] == '/' ? "" : "/", rel);
    } else {
        if (check_full_uri(full, err) != 0)
            return AWS_CREDS_FAIL;
        n = snprintf(url, sizeof(url), "%s", full);
    }
    if (n < 0 || (size_t)n >= sizeof(url)) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "container credentials URI too long");
        return AWS_CREDS_FAIL;
    }
    if (token_file != NULL) {
        token = aws_read_small_file(token_file, ECS_MAX_TOKEN);
        if (token == NULL) {
            aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot read %s: %s", token_file,
                          strerror(errno));
            return AWS_CREDS_FAIL;
        }
    } else if (token_env != NULL) {
        token = strdup(token_env);
        if (token == NULL) {
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            return AWS_CREDS_FAIL;
        }
    }
    if (token != NULL && strpbrk(token, "\r\n") != NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "container authorization token contains a line "
                      "break");
        goto out;
    }
    headers[n_headers++] = (struct aws_http_header){"Accept", "application/json"};
    if (token != NULL && token[0] != '\0')
        headers[n_headers++] = (struct aws_http_header){"Authorization", token};
    if (aws_container_get_json(e->http, url, headers, n_headers, ECS_CONNECT_TIMEOUT, ECS_TIMEOUT,
                               "ecs", out, err) == 0)
        rc = AWS_CREDS_OK;
out:
    aws_secret_free(token);
    return rc;
}

static void ecs_destroy(struct aws_credentials_provider *p)
{
    free(p->impl);
}

static const struct aws_credentials_provider_vtable ecs_vtable = {"ecs", ecs_fetch, ecs_destroy};

struct aws_credentials_provider *aws_credentials_provider_ecs_new(const struct aws_env *env,
                                                                  struct aws_http *http)
{
    struct ecs *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->env = env != NULL ? env : aws_env_default();
    e->http = http;
    return aws_credentials_provider_new(&ecs_vtable, e);
}
