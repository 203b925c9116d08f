/* The AWS client (see client.h): model lookup, serialization, endpoint,
 * signing, transport, standard-mode retries, parsing and pagination.
 * Called from any worker thread; per-service state is internally locked. */
#include "aws/client.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/endpoint.h"
#include "aws/model.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "aws/uuid.h"

#ifndef AVIARY_VERSION
#define AVIARY_VERSION "0.0.0"
#endif

#define CLIENT_USER_AGENT       "aviary/" AVIARY_VERSION
#define CLIENT_MAX_HEADERS      (AWS_WIRE_MAX_HEADERS + 12)
#define CLIENT_SKEW_THRESHOLD_S 240
#define CLIENT_DEFAULT_PAGES    1000

/* Retry quota and rate limit of one service. */
struct service_state {
    struct aws_retry_quota quota;
    struct aws_token_bucket bucket;
};

struct aws_client {
    const struct aws_env *env;
    char region[64];
    int max_attempts;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_response_bytes;
    struct aws_credentials_provider *credentials;
    bool owns_credentials;
    struct aws_http *http;
    bool owns_http;
    struct sigv4_signer *signer;
    struct service_state *services; /* one per aws_service_models[] entry */
    atomic_llong skew_s;            /* server time minus our time, seconds */
    void (*sleep_ms)(void *arg, long ms);
    double (*random)(void *arg);
    int64_t (*now_ms)(void *arg);
    void *hook_arg;
    void (*on_call)(void *arg, const struct aws_call_record *rec);
    void *on_call_arg;
};

static double default_random(void *arg)
{
    uint32_t r;
    (void)arg;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return 0.5;
    return (double)r / 4294967296.0;
}

static void default_sleep(void *arg, long ms)
{
    (void)arg;
    aws_retry_sleep_ms(ms);
}

static int64_t default_now_ms(void *arg)
{
    (void)arg;
    return aws_retry_monotonic_ms();
}

int aws_client_new(const struct aws_client_config *cfg, struct aws_client **out,
                   struct aws_error *err)
{
    struct aws_client_config defaults = {0};
    struct aws_client *c;
    struct aws_http_options hopts;

    *out = NULL;
    aws_error_clear(err);
    if (cfg == NULL)
        cfg = &defaults;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    c->env = cfg->env ? cfg->env : aws_env_default();
    if (cfg->region != NULL && *cfg->region != '\0') {
        if (strlen(cfg->region) >= sizeof(c->region)) {
            aws_error_set(err, AWS_ERR_INVALID, "region name too long");
            goto fail;
        }
        snprintf(c->region, sizeof(c->region), "%s", cfg->region);
    } else if (aws_region_resolve(c->env, c->region, sizeof(c->region)) != 0) {
        aws_error_set(err, AWS_ERR_INVALID,
                      "no AWS region: set AWS_REGION, AWS_DEFAULT_REGION or a profile region");
        goto fail;
    }
    c->max_attempts = aws_retry_max_attempts(c->env, cfg->max_attempts);
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 3000;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    c->max_response_bytes =
        cfg->max_response_bytes > 0 ? cfg->max_response_bytes : 16u * 1024u * 1024u;
    c->sleep_ms = cfg->sleep_ms ? cfg->sleep_ms : default_sleep;
    c->random = cfg->random ? cfg->random : default_random;
    c->now_ms = cfg->now_ms ? cfg->now_ms : default_now_ms;
    c->hook_arg = cfg->hook_arg;
    c->on_call = cfg->on_call;
    c->on_call_arg = cfg->on_call_arg;
    atomic_init(&c->skew_s, 0);

    if (cfg->http != NULL) {
        c->http = cfg->http;
    } else {
        hopts = (struct aws_http_options){.connect_timeout_ms = c->connect_timeout_ms,
                                          .timeout_ms = c->timeout_ms,
                                          .max_response_bytes = c->max_response_bytes};
        c->http = aws_http_new(&hopts);
        c->owns_http = true;
        if (c->http == NULL) {
            aws_error_set(err, AWS_ERR_INTERNAL, "cannot create the HTTP transport");
            goto fail;
        }
    }
    if (cfg->credentials != NULL) {
        c->credentials = cfg->credentials;
    } else {
        c->credentials = aws_credentials_provider_chain_new(c->env, c->http, c->region);
        c->owns_credentials = true;
        if (c->credentials == NULL) {
            aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot create the credentials chain");
            goto fail;
        }
    }
    c->signer = sigv4_signer_new();
    c->services = calloc(aws_n_service_models ? aws_n_service_models : 1, sizeof(*c->services));
    if (c->signer == NULL || c->services == NULL) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < aws_n_service_models; i++) {
        aws_retry_quota_init(&c->services[i].quota, 0);
        aws_token_bucket_init(&c->services[i].bucket,
                              cfg->rate_per_second > 0 ? cfg->rate_per_second
                                                       : AWS_RATE_DEFAULT_PER_SECOND,
                              cfg->rate_burst > 0 ? cfg->rate_burst : AWS_RATE_DEFAULT_BURST);
    }
    *out = c;
    return 0;
fail:
    aws_client_free(c);
    return -1;
}

void aws_client_free(struct aws_client *c)
{
    if (c == NULL)
        return;
    if (c->services != NULL) {
        for (size_t i = 0; i < aws_n_service_models; i++) {
            aws_retry_quota_destroy(&c->services[i].quota);
            aws_token_bucket_destroy(&c->services[i].bucket);
        }
        free(c->services);
    }
    sigv4_signer_free(c->signer);
    if (c->owns_credentials)
        aws_credentials_provider_free(c->credentials);
    if (c->owns_http)
        aws_http_free(c->http);
    free(c);
}

const char *aws_client_region(const struct aws_client *client)
{
    return client->region;
}

static struct service_state *service_state(struct aws_client *c,
                                           const struct aws_service_model *svc)
{
    for (size_t i = 0; i < aws_n_service_models; i++)
        if (aws_service_models[i] == svc)
            return &c->services[i];
    return NULL;
}

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). Returns unix
 * seconds or -1. */
static int64_t parse_http_date(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4] = "";
    struct tm tm;
    int d, y, hh, mm, ss;
    const char *m;

    if (s == NULL || sscanf(s, "%*3s, %d %3s %d %d:%d:%d", &d, mon, &y, &hh, &mm, &ss) != 6)
        return -1;
    m = strstr(months, mon);
    if (strlen(mon) != 3 || m == NULL || (m - months) % 3 != 0)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = d;
    tm.tm_mon = (int)((m - months) / 3);
    tm.tm_year = y - 1900;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return (int64_t)timegm(&tm);
}

static bool is_skew_code(const char *code)
{
    static const char *const codes[] = {
        "RequestTimeTooSkewed",      "RequestExpired",        "RequestInTheFuture",
        "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure",
        "InvalidSignature",
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

/* Retry-After in seconds (integer), when the parser left it unset. */
static void retry_after_from_headers(const struct aws_http_response *resp, struct aws_error *err)
{
    const char *v = aws_http_response_header(resp, "retry-after");
    char *end;
    long s;

    if (err->retry_after_ms > 0 || v == NULL)
        return;
    s = strtol(v, &end, 10);
    if (end != v && *end == '\0' && s > 0)
        err->retry_after_ms = s > 3600 ? 3600000L : s * 1000L;
}

/* The request as prepared once per call; attempts only add per-attempt
 * headers and the signature. */
struct prepared {
    struct aws_wire_request wire;
    struct aws_endpoint ep;
    struct aws_buf url;
    struct aws_buf sign_path;
    char invocation_id[AWS_UUID_STR_LEN + 1];
    const unsigned char *body;
    size_t body_len;
};

static int prepare(struct aws_client *c, const struct aws_service_model *svc,
                   const struct aws_operation *op, const json_t *input,
                   const struct aws_call_options *opts, struct prepared *p, struct aws_error *err)
{
    if (aws_protocol_serialize(svc, op, input, opts ? opts->payload_in : NULL, &p->wire, err) != 0)
        return -1;
    if (aws_endpoint_resolve(svc, c->region, c->env, &p->ep, err) != 0)
        return -1;
    if (aws_buf_append_str(&p->url, p->ep.url) != 0 ||
        aws_buf_append(&p->url, p->wire.path.data, p->wire.path.len) != 0 ||
        (p->wire.query.len > 0 &&
         (aws_buf_append_char(&p->url, '?') != 0 ||
          aws_buf_append(&p->url, p->wire.query.data, p->wire.query.len) != 0)) ||
        aws_buf_append_str(&p->sign_path, p->ep.base_path) != 0 ||
        aws_buf_append(&p->sign_path, p->wire.path.data, p->wire.path.len) != 0)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory building the URL");
    if (p->wire.path.len == 0 && aws_buf_append_char(&p->sign_path, '/') != 0)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    if (aws_uuid_v4(p->invocation_id, sizeof(p->invocation_id)) != 0)
        return aws_error_set(err, AWS_ERR_INTERNAL, "no random UUID");
    if (p->wire.payload.data != NULL) {
        p->body = p->wire.payload.data;
        p->body_len = p->wire.payload.len;
    } else {
        p->body = (const unsigned char *)p->wire.body.data;
        p->body_len = p->wire.body.len;
    }
    return 0;
}

static void prepared_clear(struct prepared *p)
{
    aws_wire_request_clear(&p->wire);
    aws_buf_free(&p->url);
    aws_buf_free(&p->sign_path);
}

/* One attempt: credentials, signature, HTTP. Returns 0 with *resp filled
 * (any status), or -1 with *err. */
static int attempt_once(struct aws_client *c, const struct aws_service_model *svc,
                        const struct aws_operation *op, const struct prepared *p, int attempt,
                        long timeout_ms, size_t max_bytes, struct aws_http_response *resp,
                        struct aws_error *err)
{
    struct sigv4_header sh[CLIENT_MAX_HEADERS];
    struct aws_http_header hh[CLIENT_MAX_HEADERS];
    char names[AWS_WIRE_MAX_HEADERS][128];
    struct aws_credentials creds;
    struct sigv4_result sig;
    struct sigv4_params params;
    struct sigv4_request sreq;
    struct aws_http_request hreq;
    char sdk_request[64];
    size_t ns = 0, nh = 0;
    int rc = -1;

    memset(&creds, 0, sizeof(creds));
    memset(&sig, 0, sizeof(sig));
    sh[ns++] = (struct sigv4_header){"host", p->ep.host};
    for (size_t i = 0; i < p->wire.n_headers; i++) {
        /* Lower-case copies: the canonical form and HTTP/1.1 both accept it. */
        size_t len = strlen(p->wire.header_names[i]);
        if (len >= sizeof(names[i])) {
            aws_error_set(err, AWS_ERR_INTERNAL, "header name too long");
            goto out;
        }
        for (size_t k = 0; k <= len; k++) {
            char ch = p->wire.header_names[i][k];
            names[i][k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
        }
        sh[ns++] = (struct sigv4_header){names[i], p->wire.header_values[i]};
    }
    sh[ns++] = (struct sigv4_header){"amz-sdk-invocation-id", p->invocation_id};
    for (size_t i = 0; i < ns; i++)
        hh[nh++] = (struct aws_http_header){sh[i].name, sh[i].value};
    snprintf(sdk_request, sizeof(sdk_request), "attempt=%d; max=%d", attempt, c->max_attempts);
    hh[nh++] = (struct aws_http_header){"amz-sdk-request", sdk_request};
    hh[nh++] = (struct aws_http_header){"user-agent", CLIENT_USER_AGENT};

    if (!op->unsigned_auth) {
        if (aws_credentials_get(c->credentials, &creds, err) != 0)
            goto out;
        memset(&params, 0, sizeof(params));
        params.region = p->ep.signing_region;
        params.service = p->ep.signing_name;
        params.time = c->env->now(c->env->arg) + (int64_t)atomic_load(&c->skew_s);
        params.s3 = strcmp(svc->name, "s3") == 0;
        sreq = (struct sigv4_request){.method = p->wire.method,
                                      .path = p->sign_path.data,
                                      .query = p->wire.query.len ? p->wire.query.data : "",
                                      .headers = sh,
                                      .n_headers = ns,
                                      .payload = p->body,
                                      .payload_len = p->body_len};
        if (sigv4_sign(c->signer, &creds, &params, &sreq, &sig) != 0) {
            aws_error_set(err, AWS_ERR_INTERNAL, "signing the request failed");
            goto out;
        }
        hh[nh++] = (struct aws_http_header){"x-amz-date", sig.amz_date};
        if (sig.security_token[0])
            hh[nh++] = (struct aws_http_header){"x-amz-security-token", sig.security_token};
        if (sig.content_sha256[0])
            hh[nh++] = (struct aws_http_header){"x-amz-content-sha256", sig.content_sha256};
        hh[nh++] = (struct aws_http_header){"authorization", sig.authorization};
    }
    hreq = (struct aws_http_request){.method = p->wire.method,
                                     .url = p->url.data,
                                     .headers = hh,
                                     .n_headers = nh,
                                     .body = p->body,
                                     .body_len = p->body_len,
                                     .connect_timeout_ms = c->connect_timeout_ms,
                                     .timeout_ms = timeout_ms,
                                     .max_response_bytes = max_bytes};
    rc = aws_http_perform(c->http, &hreq, resp, err);
out:
    aws_credentials_clear(&creds);
    sigv4_result_clear(&sig);
    return rc;
}

static void report(struct aws_client *c, const char *service, const char *operation, long status,
                   const struct aws_error *err, int ok, int attempts, int64_t t0)
{
    struct aws_call_record rec;

    if (c->on_call == NULL)
        return;
    rec.service = service ? service : "";
    rec.operation = operation ? operation : "";
    rec.http_status = status;
    rec.error_code = ok ? "" : err->code;
    rec.attempts = attempts;
    rec.seconds = (double)(c->now_ms(c->hook_arg) - t0) / 1000.0;
    c->on_call(c->on_call_arg, &rec);
}

int aws_call_ex(struct aws_client *c, const char *service, const char *operation,
                const json_t *input, const struct aws_call_options *opts, json_t **output,
                struct aws_error *err)
{
    const struct aws_service_model *svc = aws_model_service(service);
    const struct aws_operation *op = svc ? aws_model_operation(svc, operation) : NULL;
    struct aws_retry_state rs = {0};
    struct service_state *ss = NULL;
    struct prepared p;
    struct aws_error scratch;
    long status = 0, timeout_ms;
    size_t max_bytes;
    bool skew_retried = false;
    int64_t t0 = c->now_ms(c->hook_arg);
    json_t *discard = NULL;
    int ok = 0;

    if (err == NULL)
        err = &scratch;
    if (output == NULL)
        output = &discard; /* the caller does not want the document */
    *output = NULL;
    aws_error_clear(err);
    memset(&p, 0, sizeof(p));
    if (svc == NULL || op == NULL) {
        aws_error_set(err, AWS_ERR_INVALID, "unknown operation %.64s %.64s",
                      service ? service : "(null)", operation ? operation : "(null)");
        goto out;
    }
    ss = service_state(c, svc);
    if (prepare(c, svc, op, input, opts, &p, err) != 0)
        goto out;
    timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : c->timeout_ms;
    max_bytes = c->max_response_bytes;
    if (opts && opts->payload_out && opts->payload_out->max > max_bytes)
        max_bytes = opts->payload_out->max;

    for (;;) {
        struct aws_http_response resp;
        long wait;

        rs.attempts++;
        wait = aws_token_bucket_acquire(&ss->bucket, c->now_ms(c->hook_arg), AWS_RATE_MAX_WAIT_MS);
        if (wait < 0) {
            aws_error_set(err, AWS_ERR_INTERNAL, "client-side rate limit for %s exceeded",
                          svc->name);
            snprintf(err->code, sizeof(err->code), "ClientRateLimitExceeded");
            goto out;
        }
        if (wait > 0)
            c->sleep_ms(c->hook_arg, wait);
        if (attempt_once(c, svc, op, &p, rs.attempts, timeout_ms, max_bytes, &resp, err) != 0) {
            status = 0;
            if (err->kind == AWS_ERR_CREDENTIALS || err->kind == AWS_ERR_INVALID)
                goto out; /* nothing to retry: the request never left */
        } else if (resp.status >= 200 && resp.status < 300) {
            status = resp.status;
            if (aws_protocol_parse_response(svc, op, &resp, output, opts ? opts->payload_out : NULL,
                                            err) == 0)
                ok = 1;
            aws_http_response_clear(&resp);
            /* A malformed or oversized answer is not retried, but a service
             * error carried in a 2xx (S3's 200 with an <Error> document,
             * which the parser reports as a retryable 500) is retried like
             * any other retryable error, within the attempts and quota. */
            if (ok || err->kind != AWS_ERR_SERVICE || !err->retryable)
                goto out;
        } else {
            int64_t server;

            status = resp.status;
            aws_protocol_parse_error(svc, op, &resp, err);
            retry_after_from_headers(&resp, err);
            server = parse_http_date(aws_http_response_header(&resp, "date"));
            aws_http_response_clear(&resp);
            if (!skew_retried && server > 0 && is_skew_code(err->code) && !op->unsigned_auth) {
                int64_t local = c->env->now(c->env->arg);
                int64_t ours = local + (int64_t)atomic_load(&c->skew_s);
                if (server - ours > CLIENT_SKEW_THRESHOLD_S ||
                    ours - server > CLIENT_SKEW_THRESHOLD_S) {
                    atomic_store(&c->skew_s, (long long)(server - local));
                    skew_retried = true;
                    rs.attempts--; /* not counted against max attempts */
                    continue;
                }
            }
        }
        if (!aws_retry_should_retry(&ss->quota, &rs, err, c->max_attempts))
            goto out;
        c->sleep_ms(c->hook_arg, aws_retry_backoff_ms(rs.attempts, c->random(c->hook_arg), err));
    }
out:
    if (ok) {
        aws_retry_on_success(&ss->quota, &rs);
        aws_error_clear(err);
    } else if (*output != NULL) {
        json_decref(*output);
        *output = NULL;
    }
    json_decref(discard);
    err->attempts = rs.attempts;
    if (!ok && status != 0 && err->http_status == 0)
        err->http_status = status;
    report(c, service, operation, status, err, ok, rs.attempts, t0);
    prepared_clear(&p);
    return ok ? 0 : -1;
}

int aws_call(struct aws_client *client, const char *service, const char *operation,
             const json_t *input, json_t **output, struct aws_error *err)
{
    return aws_call_ex(client, service, operation, input, NULL, output, err);
}

/* ---- pagination ---------------------------------------------------------- */

/* Evaluates one path "a.b[0].c" / "x[-1]" (a small JMESPath subset). */
static const json_t *path_get_one(const json_t *doc, const char *s, size_t len)
{
    const json_t *cur = doc;
    size_t i = 0;

    while (i < len && cur != NULL) {
        char name[128];
        size_t n = 0;

        while (i < len && s[i] == ' ')
            i++;
        while (i < len && s[i] != '.' && s[i] != '[' && s[i] != ' ') {
            if (n + 1 >= sizeof(name))
                return NULL;
            name[n++] = s[i++];
        }
        name[n] = '\0';
        if (n > 0)
            cur = json_is_object(cur) ? json_object_get(cur, name) : NULL;
        while (i < len && s[i] == '[' && cur != NULL) {
            char *end;
            long idx = strtol(s + i + 1, &end, 10);
            size_t size;

            if (*end != ']' || !json_is_array(cur))
                return NULL;
            size = json_array_size(cur);
            if (idx < 0)
                idx += (long)size;
            if (idx < 0 || (size_t)idx >= size)
                return NULL;
            cur = json_array_get(cur, (size_t)idx);
            i = (size_t)(end - s) + 1;
        }
        while (i < len && s[i] == ' ')
            i++;
        if (i < len && s[i] == '.')
            i++;
    }
    return cur;
}

static bool value_present(const json_t *v)
{
    return v != NULL && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0);
}

/* Evaluates "a || b": the first present alternative. */
static const json_t *path_get(const json_t *doc, const char *expr)
{
    const char *s = expr;

    for (;;) {
        const char *bar = strstr(s, "||");
        size_t len = bar ? (size_t)(bar - s) : strlen(s);
        const json_t *v = path_get_one(doc, s, len);

        if (value_present(v))
            return v;
        if (bar == NULL)
            return NULL;
        s = bar + 2;
    }
}

/* Sets doc[path] = value (steals value), creating objects on the way. */
static int path_set(json_t *doc, const char *path, json_t *value)
{
    char buf[256];
    char *seg, *dot;
    json_t *cur = doc;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf) || strchr(buf, '[')) {
        json_decref(value);
        return -1;
    }
    seg = buf;
    while ((dot = strchr(seg, '.')) != NULL) {
        json_t *next;
        *dot = '\0';
        next = json_object_get(cur, seg);
        if (!json_is_object(next)) {
            next = json_object();
            if (next == NULL || json_object_set_new(cur, seg, next) != 0) {
                json_decref(value);
                return -1;
            }
        }
        cur = next;
        seg = dot + 1;
    }
    return json_object_set_new(cur, seg, value);
}

/* Computes the next input from `page`. Returns 1 when there is a next page
 * (*next set, owned), 0 at the end, -1 on memory failure. */
static int next_input(const struct aws_pagination *pg, const json_t *input, const json_t *page,
                      json_t *prev_tokens, json_t **next)
{
    json_t *tokens;
    bool any = false;

    *next = NULL;
    if (pg->more_results != NULL) {
        const json_t *more = path_get(page, pg->more_results);
        if (!json_is_true(more))
            return 0;
    }
    tokens = json_array();
    if (tokens == NULL)
        return -1;
    for (size_t i = 0; i < AWS_PAGINATION_MAX_KEYS && pg->output_token[i]; i++) {
        const json_t *v = path_get(page, pg->output_token[i]);
        json_array_append_new(tokens, value_present(v) ? json_deep_copy(v) : json_null());
        any = any || value_present(v);
    }
    if (!any || json_equal(tokens, prev_tokens)) {
        json_decref(tokens);
        return 0;
    }
    *next = input ? json_deep_copy(input) : json_object();
    if (*next == NULL) {
        json_decref(tokens);
        return -1;
    }
    for (size_t i = 0; i < AWS_PAGINATION_MAX_KEYS && pg->input_token[i]; i++) {
        json_t *v = json_array_get(tokens, i);
        if (v != NULL && !json_is_null(v))
            json_object_set(*next, pg->input_token[i], v);
        else
            json_object_del(*next, pg->input_token[i]);
    }
    json_array_clear(prev_tokens);
    json_array_extend(prev_tokens, tokens);
    json_decref(tokens);
    return 1;
}

int aws_paginate(struct aws_client *client, const char *service, const char *operation,
                 const json_t *input, int max_pages, aws_page_fn fn, void *arg,
                 struct aws_error *err)
{
    const struct aws_service_model *svc = aws_model_service(service);
    const struct aws_operation *op = svc ? aws_model_operation(svc, operation) : NULL;
    json_t *cur = NULL, *page = NULL, *prev = json_array();
    struct aws_error scratch;
    int ret = -1;

    if (err == NULL)
        err = &scratch;
    aws_error_clear(err);
    if (prev == NULL) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (op == NULL) {
        aws_error_set(err, AWS_ERR_INVALID, "unknown operation %.64s %.64s",
                      service ? service : "(null)", operation ? operation : "(null)");
        goto out;
    }
    if (max_pages <= 0)
        max_pages = CLIENT_DEFAULT_PAGES;
    cur = input ? json_deep_copy(input) : json_object();
    if (cur == NULL) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (int n = 1;; n++) {
        json_t *next = NULL;
        int r;

        if (aws_call(client, service, operation, cur, &page, err) != 0)
            goto out;
        aws_error_clear(err);
        r = fn(page, arg, err);
        if (r < 0) {
            if (err->kind == AWS_ERR_NONE)
                aws_error_set(err, AWS_ERR_INTERNAL, "page callback failed");
            goto out;
        }
        if (r > 0 || op->pagination == NULL)
            break;
        r = next_input(op->pagination, input, page, prev, &next);
        if (r < 0) {
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        if (r == 0)
            break;
        if (n >= max_pages) {
            json_decref(next);
            aws_error_set(err, AWS_ERR_INTERNAL, "%s %s: more than %d pages", service, operation,
                          max_pages);
            snprintf(err->code, sizeof(err->code), "TooManyPages");
            goto out;
        }
        json_decref(page);
        page = NULL;
        json_decref(cur);
        cur = next;
    }
    ret = 0;
out:
    json_decref(page);
    json_decref(cur);
    json_decref(prev);
    return ret;
}

/* Accumulates result keys across pages for aws_call_all. */
struct gather {
    const struct aws_pagination *pg;
    json_t *acc[AWS_PAGINATION_MAX_KEYS]; /* arrays, NULL until a page has the key */
    json_t *last;
};

static int gather_page(const json_t *page, void *arg, struct aws_error *err)
{
    struct gather *g = arg;

    for (size_t i = 0; g->pg && i < AWS_PAGINATION_MAX_KEYS && g->pg->result_key[i]; i++) {
        const json_t *items =
            path_get_one(page, g->pg->result_key[i], strlen(g->pg->result_key[i]));
        if (!json_is_array(items))
            continue;
        if (g->acc[i] == NULL && (g->acc[i] = json_array()) == NULL)
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        if (json_array_extend(g->acc[i], (json_t *)items) != 0)
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    json_decref(g->last);
    g->last = json_deep_copy(page);
    if (g->last == NULL)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    return 0;
}

int aws_call_all(struct aws_client *client, const char *service, const char *operation,
                 const json_t *input, int max_pages, json_t **output, struct aws_error *err)
{
    const struct aws_service_model *svc = aws_model_service(service);
    const struct aws_operation *op = svc ? aws_model_operation(svc, operation) : NULL;
    struct gather g;
    int ret = -1;

    *output = NULL;
    memset(&g, 0, sizeof(g));
    g.pg = op ? op->pagination : NULL;
    if (aws_paginate(client, service, operation, input, max_pages, gather_page, &g, err) != 0)
        goto out;
    for (size_t i = 0; g.pg && i < AWS_PAGINATION_MAX_KEYS && g.pg->result_key[i]; i++) {
        if (g.acc[i] == NULL)
            continue;
        if (path_set(g.last, g.pg->result_key[i], g.acc[i]) != 0) {
            g.acc[i] = NULL;
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        g.acc[i] = NULL;
    }
    *output = g.last;
    g.last = NULL;
    ret = 0;
out:
    for (size_t i = 0; i < AWS_PAGINATION_MAX_KEYS; i++)
        json_decref(g.acc[i]);
    json_decref(g.last);
    return ret;
}
