/* Delivery of rollout alerts (rollbacks, inconclusive pauses, promotions):
 * the application's SNS topic and every spec.notifications.webhooks[]
 * entry, each channel at most once per alert, retried with backoff across
 * reconciles, never blocking a reconcile for long. Worker threads (one
 * reconcile's context); the HTTP transport is shared and thread-safe.
 *
 * Webhook payloads:
 *  - format slack: Slack's incoming-webhook JSON,
 *      {"text": "<subject>\n<body>", "blocks": [{"type": "header", ...},
 *       {"type": "section", "text": {"type": "mrkdwn", "text": "<body>"}}]}
 *  - format json (the default): the aviary event
 *      {"type": "aviary.rollout.alert", "version": 1, "id": "<alert id>",
 *       "kind": "rollback" | "inconclusive-pause" | "promotion",
 *       "application", "time" (RFC 3339), "subject", "text",
 *       "rollout": {"strategy", "phase", "stableRevision", "stableSlot",
 *                   "revision" (the revision the alert is about), "step", "weight"},
 *       "decision": {"reason", "metric", "value", "threshold", "step", "weight",
 *                    "detail"} (rollbacks), "dashboardUrl"}
 *    With secretEnv naming an environment variable of the aviary process,
 *    the header X-Aviary-Signature is "sha256=" followed by the lowercase hex
 *    HMAC-SHA256 of the exact body bytes under that variable's value.
 * Every POST carries Content-Type: application/json, User-Agent aviary,
 * X-Aviary-Alert-Id (the id; a receiver drops the rare duplicate of an
 * alert whose delivery was in flight when the daemon died) and
 * X-Aviary-Event (the kind). 2xx is delivered; 408, 429, 5xx and transport
 * errors are retried; other 4xx give up on that webhook at once (the
 * receiver rejected the payload). Webhook URLs can hold credentials (Slack's
 * do): they never appear in status, events or errors, only "webhook N
 * (host)". */
#ifndef AVIARY_RECONCILERS_ALERTS_H
#define AVIARY_RECONCILERS_ALERTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconcilers/app.h"
#include "reconcilers/rollout_machine.h"

#define ALERTS_CONNECT_TIMEOUT_MS 2000  /* per webhook POST */
#define ALERTS_TIMEOUT_MS         5000  /* whole POST */
#define ALERTS_BUDGET_MS          10000 /* webhook time per reconcile; the rest waits */
#define ALERTS_RETRY_FIRST_MS     5000  /* backoff: 5 s, 10 s, 20 s, ... */
#define ALERTS_RETRY_MAX_MS       300000
#define ALERTS_MAX_ATTEMPTS       12 /* about 35 minutes of retries, then given up */
#define ALERTS_MAX_RESPONSE       65536

struct aws_http;

/* What one delivery attempt achieved. */
enum alerts_outcome {
    ALERTS_DELIVERED, /* every channel has it (or gave up): call rollout_alert_delivered */
    ALERTS_PENDING,   /* some channel still needs it: try again after *retry_ms */
};

/* Delivers `alert` (about the rollout in `st`) to the channels that do not
 * have it yet. `record` is the alert's delivery record (a JSON object the
 * caller keeps in status, created empty for a new alert): {"done": [channel
 * keys], "attempts", "nextAttemptAt" (unix ms), "lastError"}; channel keys
 * are "sns" and "webhook:<hash of the URL>" so the record survives an edit of
 * the webhook list. Before nextAttemptAt nothing is sent (*retry_ms says how
 * long is left). A channel that failed ALERTS_MAX_ATTEMPTS times, or a
 * webhook that answered a permanent 4xx, is given up with a Warning event
 * AlertUndeliverable. http may be NULL (alerts_http_shared()). In plan mode
 * nothing is sent: the publish and the posts are recorded as plan entries
 * and ALERTS_PENDING returned. */
enum alerts_outcome alerts_deliver(struct app_ctx *ctx, struct aws_http *http,
                                   const struct rollout_alert *alert,
                                   const struct rollout_state *st, json_t *record, int64_t now_ms,
                                   long *retry_ms);

/* The JSON body of a webhook in `format` ("json" or "slack") for alert.
 * Returns a malloc'd NUL-terminated string (caller frees), or NULL when out
 * of memory. */
char *alerts_payload(struct app_ctx *ctx, const char *format, const struct rollout_alert *alert,
                     const struct rollout_state *st);

/* "sha256=<hex>" HMAC-SHA256 of body under key into out (at least 72
 * bytes). Returns 0, or -1 when out is too small or OpenSSL failed. */
int alerts_sign(const unsigned char *key, size_t key_len, const char *body, size_t body_len,
                char *out, size_t out_len);

/* The process-wide webhook transport (created on first use, thread-safe),
 * or NULL when it could not be created. alerts_http_shared_free releases it
 * at shutdown, when no reconcile runs. */
struct aws_http *alerts_http_shared(void);
void alerts_http_shared_free(void);

#endif
