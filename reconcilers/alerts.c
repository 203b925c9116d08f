/* Rollout alert delivery: SNS through notifications_publish and webhook
 * POSTs (Slack or the signed aviary JSON event), at most once per channel,
 * with backoff across reconciles (see alerts.h). Worker threads. */
#include "reconcilers/alerts.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/http.h"
#include "reconcilers/notifications.h"
#include "reconcilers/status.h"

#define KEY_MAX    32
#define HOST_MAX   128
#define SECRET_MAX 1024

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static struct aws_http *shared_http;

struct aws_http *alerts_http_shared(void)
{
    struct aws_http *h;
    struct aws_http_options opts = {.connect_timeout_ms = ALERTS_CONNECT_TIMEOUT_MS,
                                    .timeout_ms = ALERTS_TIMEOUT_MS,
                                    .max_response_bytes = ALERTS_MAX_RESPONSE};

    pthread_mutex_lock(&shared_mu);
    if (shared_http == NULL)
        shared_http = aws_http_new(&opts);
    h = shared_http;
    pthread_mutex_unlock(&shared_mu);
    return h;
}

void alerts_http_shared_free(void)
{
    pthread_mutex_lock(&shared_mu);
    aws_http_free(shared_http);
    shared_http = NULL;
    pthread_mutex_unlock(&shared_mu);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- payloads --------------------------------------------------------------- */

static const char *slot_str(int slot)
{
    return slot == 0 ? "a" : slot == 1 ? "b" : "";
}

/* The revision an alert is about. */
static const char *alert_revision(const struct rollout_alert *a, const struct rollout_state *st)
{
    if (a->kind == ROLLOUT_ALERT_PROMOTION)
        return st->stable_revision;
    if (a->kind == ROLLOUT_ALERT_ROLLBACK && st->rolled_back_revision[0] != '\0')
        return st->rolled_back_revision;
    return st->canary_revision;
}

static json_t *json_event(struct app_ctx *ctx, const struct rollout_alert *a,
                          const struct rollout_state *st)
{
    const char *dash = json_string_value(json_object_get(ctx->status, "dashboardUrl"));
    char when[21];
    json_t *ev, *rollout;

    status_format_time(a->at_ms / 1000, when);
    rollout =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "strategy",
                  rollout_strategy_name(st->strategy), "phase", rollout_phase_name(st->phase),
                  "stableRevision", st->stable_revision, "stableSlot", slot_str(st->stable_slot),
                  "revision", alert_revision(a, st), "step", st->step, "weight", st->weight);
    ev = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "type", "aviary.rollout.alert",
                   "version", 1, "id", a->id, "kind", rollout_alert_kind_name(a->kind),
                   "application", ctx->names.app, "time", when, "subject", a->subject, "text",
                   a->body, "rollout", rollout);
    if (ev == NULL)
        return NULL;
    if (a->kind == ROLLOUT_ALERT_ROLLBACK && st->has_decision) {
        const struct rollout_decision *d = &st->decision;
        json_t *dj =
            json_pack("{s:s, s:s, s:i, s:i, s:s}", "reason", d->reason, "metric", d->metric, "step",
                      d->step, "weight", d->weight, "detail", d->detail);
        if (dj != NULL && d->has_value) {
            json_object_set_new(dj, "value", json_real(d->value));
            json_object_set_new(dj, "threshold", json_real(d->threshold));
        }
        if (dj != NULL)
            json_object_set_new(ev, "decision", dj);
    }
    if (dash != NULL)
        json_object_set_new(ev, "dashboardUrl", json_string(dash));
    return ev;
}

/* Slack wants &, < and > escaped in text. Returns a malloc'd copy. */
static char *slack_escape(const char *s)
{
    size_t n = 0;
    char *out, *p;

    for (const char *q = s; *q; q++)
        n += *q == '&' ? 5 : (*q == '<' || *q == '>') ? 4 : 1;
    out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (p = out; *s; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (rep != NULL) {
            memcpy(p, rep, strlen(rep));
            p += strlen(rep);
        } else {
            *p++ = *s;
        }
    }
    *p = '\0';
    return out;
}

static json_t *slack_message(const struct rollout_alert *a)
{
    char *subject = slack_escape(a->subject), *body = slack_escape(a->body), *text = NULL;
    json_t *msg = NULL;
    size_t len;

    if (subject == NULL || body == NULL)
        goto out;
    len = strlen(subject) + strlen(body) + 2;
    text = malloc(len);
    if (text == NULL)
        goto out;
    snprintf(text, len, "%s\n%s", subject, body);
    msg = json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}, {s:s, s:{s:s, s:s}}, {s:s, s:[{s:s, s:s}]}]}",
                    "text", text, "blocks", "type", "header", "text", "type", "plain_text", "text",
                    a->subject, "type", "section", "text", "type", "mrkdwn", "text", body, "type",
                    "context", "elements", "type", "mrkdwn", "text", a->id);
out:
    free(subject);
    free(body);
    free(text);
    return msg;
}

char *alerts_payload(struct app_ctx *ctx, const char *format, const struct rollout_alert *alert,
                     const struct rollout_state *st)
{
    json_t *doc = format != NULL && strcmp(format, "slack") == 0 ? slack_message(alert)
                                                                 : json_event(ctx, alert, st);
    char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

    json_decref(doc);
    return s;
}

int alerts_sign(const unsigned char *key, size_t key_len, const char *body, size_t body_len,
                char *out, size_t out_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    static const char hex[] = "0123456789abcdef";

    if (out_len < 7 + 64 + 1)
        return -1;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)body, body_len, mac,
             &mac_len) == NULL ||
        mac_len != 32)
        return -1;
    memcpy(out, "sha256=", 7);
    for (unsigned int i = 0; i < mac_len; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[7 + 64] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

/* ---- the delivery record ------------------------------------------------------ */

static void webhook_key(const char *url, char out[KEY_MAX])
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    snprintf(out, KEY_MAX, "webhook:%08x", (unsigned)h);
}

static bool is_done(const json_t *record, const char *key)
{
    const json_t *v;
    size_t i;

    json_array_foreach(json_object_get(record, "done"), i, v)
    {
        if (json_string_value(v) != NULL && strcmp(json_string_value(v), key) == 0)
            return true;
    }
    return false;
}

static void mark_done(json_t *record, const char *key)
{
    json_t *done = json_object_get(record, "done");

    if (!json_is_array(done)) {
        done = json_array();
        json_object_set_new(record, "done", done);
    }
    if (!is_done(record, key))
        json_array_append_new(done, json_string(key));
}

/* The host of a URL, without user info or path (for messages: the URL
 * itself may carry a token). */
static void url_host(const char *url, char out[HOST_MAX])
{
    const char *p = strstr(url, "://"), *end, *at;

    p = p != NULL ? p + 3 : url;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL)
        p = at + 1;
    snprintf(out, HOST_MAX, "%.*s", (int)(end - p < HOST_MAX - 1 ? end - p : HOST_MAX - 1), p);
}

enum post_result { POST_OK, POST_RETRY, POST_GIVE_UP };

static enum post_result post_webhook(struct app_ctx *ctx, struct aws_http *http, int index,
                                     const json_t *hook, const struct rollout_alert *alert,
                                     const struct rollout_state *st, char *why, size_t why_len)
{
    const char *url = json_string_value(json_object_get(hook, "url"));
    const char *format = json_string_value(json_object_get(hook, "format"));
    const char *secret_env = json_string_value(json_object_get(hook, "secretEnv"));
    struct aws_http_header headers[6];
    struct aws_http_request req;
    struct aws_http_response resp = {0};
    struct aws_error err;
    char host[HOST_MAX], sig[80];
    char *body = NULL;
    size_t n = 0;
    enum post_result r = POST_RETRY;

    url_host(url != NULL ? url : "", host);
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(why, why_len, "webhook %d: not an http(s) URL", index);
        return POST_GIVE_UP;
    }
    if (format == NULL)
        format = "json";
    body = alerts_payload(ctx, format, alert, st);
    if (body == NULL) {
        snprintf(why, why_len, "webhook %d (%s): out of memory", index, host);
        return POST_RETRY;
    }
    headers[n++] = (struct aws_http_header){"Content-Type", "application/json"};
    headers[n++] = (struct aws_http_header){"User-Agent", "aviary"};
    headers[n++] = (struct aws_http_header){"X-Aviary-Alert-Id", alert->id};
    headers[n++] = (struct aws_http_header){"X-Aviary-Event", rollout_alert_kind_name(alert->kind)};
    if (secret_env != NULL && strcmp(format, "json") == 0) {
        const char *v = getenv(secret_env);
        unsigned char key[SECRET_MAX];
        size_t key_len = v != NULL ? strlen(v) : 0;
        int rc;

        if (key_len == 0 || key_len > sizeof(key)) {
            snprintf(why, why_len,
                     "webhook %d (%s): environment variable %s (secretEnv) is %s; not sent "
                     "unsigned",
                     index, host, secret_env, key_len == 0 ? "not set" : "too long");
            r = POST_GIVE_UP;
            goto out;
        }
        memcpy(key, v, key_len);
        rc = alerts_sign(key, key_len, body, strlen(body), sig, sizeof(sig));
        OPENSSL_cleanse(key, sizeof(key));
        if (rc != 0) {
            snprintf(why, why_len, "webhook %d (%s): signing failed", index, host);
            goto out;
        }
        headers[n++] = (struct aws_http_header){"X-Aviary-Signature", sig};
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = headers;
    req.n_headers = n;
    req.body = (const unsigned char *)body;
    req.body_len = strlen(body);
    req.connect_timeout_ms = ALERTS_CONNECT_TIMEOUT_MS;
    req.timeout_ms = ALERTS_TIMEOUT_MS;
    req.max_response_bytes = ALERTS_MAX_RESPONSE;
    if (http == NULL || aws_http_perform(http, &req, &resp, &err) != 0) {
        snprintf(why, why_len, "webhook %d (%s): %s", index, host,
                 http == NULL ? "no HTTP transport" : aws_error_kind_name(err.kind));
        goto out;
    }
    if (resp.status >= 200 && resp.status < 300) {
        r = POST_OK;
    } else {
        snprintf(why, why_len, "webhook %d (%s): HTTP %ld", index, host, resp.status);
        r = resp.status == 408 || resp.status == 429 || resp.status >= 500 ? POST_RETRY
                                                                           : POST_GIVE_UP;
    }
out:
    aws_http_response_clear(&resp);
    free(body);
    OPENSSL_cleanse(sig, sizeof(sig));
    return r;
}

static void give_up(struct app_ctx *ctx, const struct rollout_alert *alert, const char *why)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "alert %.120s not delivered: %.300s", alert->id, why);
    status_add_event(ctx->status, "Warning", "AlertUndeliverable", msg, ctx->req->now);
}

enum alerts_outcome alerts_deliver(struct app_ctx *ctx, struct aws_http *http,
                                   const struct rollout_alert *alert,
                                   const struct rollout_state *st, json_t *record, int64_t now_ms,
                                   long *retry_ms)
{
    const json_t *hooks = app_spec(ctx, "notifications.webhooks"), *hook;
    json_int_t attempts = json_integer_value(json_object_get(record, "attempts"));
    json_int_t next = json_integer_value(json_object_get(record, "nextAttemptAt"));
    int64_t started = monotonic_ms();
    bool failed = false, deferred = false;
    char why[400] = "", key[KEY_MAX];
    size_t i;

    *retry_ms = 0;
    if (ctx->plan) {
        app_note_change(ctx, "create", "alert", alert->id, json_pack("[s]", alert->subject));
        return ALERTS_PENDING;
    }
    if (next > now_ms) {
        *retry_ms = (long)(next - now_ms);
        return ALERTS_PENDING;
    }
    if (http == NULL)
        http = alerts_http_shared();

    if (!is_done(record, "sns")) {
        if (notifications_publish(ctx, alert->subject, alert->body) == 0) {
            mark_done(record, "sns");
        } else {
            snprintf(why, sizeof(why), "SNS: %.380s", ctx->error);
            ctx->error[0] = '\0';
            ctx->terminal = false;
            failed = true;
        }
    }
    json_array_foreach(hooks, i, hook)
    {
        const char *url = json_string_value(json_object_get(hook, "url"));
        char hwhy[400] = "";

        webhook_key(url != NULL ? url : "", key);
        if (is_done(record, key))
            continue;
        if (monotonic_ms() - started > ALERTS_BUDGET_MS) {
            deferred = true; /* this reconcile spent its webhook time */
            continue;
        }
        switch (post_webhook(ctx, http, (int)i + 1, hook, alert, st, hwhy, sizeof(hwhy))) {
        case POST_OK:
            mark_done(record, key);
            break;
        case POST_GIVE_UP:
            give_up(ctx, alert, hwhy);
            mark_done(record, key);
            break;
        case POST_RETRY:
            snprintf(why, sizeof(why), "%s", hwhy);
            failed = true;
            break;
        }
    }
    if (!failed && !deferred)
        return ALERTS_DELIVERED;
    if (!failed) {
        *retry_ms = 1000;
        return ALERTS_PENDING;
    }
    attempts++;
    json_object_set_new(record, "attempts", json_integer(attempts));
    json_object_set_new(record, "lastError", json_string(why));
    if (attempts >= ALERTS_MAX_ATTEMPTS) {
        char msg[480];
        snprintf(msg, sizeof(msg), "%d attempts; last: %s", ALERTS_MAX_ATTEMPTS, why);
        give_up(ctx, alert, msg);
        return ALERTS_DELIVERED;
    }
    {
        long backoff = ALERTS_RETRY_FIRST_MS;
        for (json_int_t k = 1; k < attempts && backoff < ALERTS_RETRY_MAX_MS; k++)
            backoff *= 2;
        if (backoff > ALERTS_RETRY_MAX_MS)
            backoff = ALERTS_RETRY_MAX_MS;
        json_object_set_new(record, "nextAttemptAt", json_integer(now_ms + backoff));
        *retry_ms = backoff;
    }
    return ALERTS_PENDING;
}
