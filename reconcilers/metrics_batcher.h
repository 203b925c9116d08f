/* Process-wide batching of CloudWatch GetMetricData: concurrent reconciles
 * (worker threads) submit the queries of their analysis round; the first
 * caller waits briefly for others to join, then issues as few GetMetricData
 * calls as the API allows (at most 500 queries per call, one call per
 * distinct time window, NextToken pages followed), and hands each caller
 * its own results under its own query ids. Rounds can also be announced
 * ahead (metrics_batcher_expect): a batch for the same window then fetches
 * them too and keeps their results for their owner, so the rounds of many
 * applications due at the same instant cost one call per 500 queries even
 * when only a few workers run at a time. Thread-safe; every wait is
 * bounded; an error reaches every caller whose queries it affected. */
#ifndef AVIARY_RECONCILERS_METRICS_BATCHER_H
#define AVIARY_RECONCILERS_METRICS_BATCHER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/error.h"

#define METRICS_BATCHER_MAX_QUERIES  500  /* GetMetricData's limit per call */
#define METRICS_BATCHER_MAX_CALLERS  4096 /* callers per batch; more start a new batch */
#define METRICS_BATCHER_MAX_EXPECTED 4096 /* announced rounds kept (oldest window dropped) */
#define METRICS_BATCHER_KEY_MAX      160  /* "Kind/name" of an announced round's owner */

struct aws_client;

/* Performs one GetMetricData call with `input` (borrowed). Returns 0 and
 * *output (new reference, the operation's output document), or -1 with *err
 * filled. Called on the leading caller's thread, never with a lock held. */
typedef int (*metrics_call_fn)(void *arg, const json_t *input, json_t **output,
                               struct aws_error *err);

struct metrics_batcher_config {
    long gather_ms;       /* how long the first caller waits for others; 0: 20, <0: none */
    long wait_timeout_ms; /* longest a joining caller waits for its batch; 0: 120000 */
    size_t max_queries;   /* queries per call; 0 or above 500: 500 */
    int max_pages;        /* NextToken pages per call; 0: 100 */
    metrics_call_fn call; /* required */
    void *call_arg;
    /* The gathering wait; NULL: nanosleep. Tests inject one that returns
     * when the expected callers have joined. */
    void (*sleep_ms)(void *arg, long ms);
    void *sleep_arg;
};

/* Counters since creation. */
struct metrics_batcher_stats {
    unsigned long batches;    /* leader rounds */
    unsigned long calls;      /* GetMetricData calls, pages included */
    unsigned long callers;    /* fetches submitted */
    unsigned long queries;    /* queries submitted */
    unsigned long waiting;    /* callers currently inside metrics_batcher_fetch */
    unsigned long expected;   /* rounds announced with metrics_batcher_expect */
    unsigned long prefetched; /* announced rounds fetched by another caller's batch */
    unsigned long served;     /* fetches answered from a prefetched round (no call) */
};

struct metrics_batcher;

/* Creates a batcher. Returns 0 and *out (free with metrics_batcher_free), or
 * -1 when cfg->call is NULL or memory ran out. */
int metrics_batcher_new(const struct metrics_batcher_config *cfg, struct metrics_batcher **out);

/* Frees b. No fetch may be in progress. */
void metrics_batcher_free(struct metrics_batcher *b);

/* Fetches `queries` (borrowed: an array of MetricDataQuery objects with
 * MetricStat, ids unique within the array and valid for CloudWatch) over
 * [start_s, end_s] (unix seconds, start < end). Blocks until the batch this
 * caller joined is done (leader: gather_ms plus the calls; others at most
 * wait_timeout_ms). Returns 0 and *results: a new array of
 * {"Id", "Timestamps", "Values", "StatusCode"}, one per query, with the
 * caller's own ids and every page's datapoints. Returns -1 with *err when
 * the input is invalid (AWS_ERR_INVALID), a call for this caller's queries
 * failed (that call's error), the wait timed out (AWS_ERR_TIMEOUT) or
 * memory ran out; *results is NULL then. */
int metrics_batcher_fetch(struct metrics_batcher *b, const json_t *queries, int64_t start_s,
                          int64_t end_s, json_t **results, struct aws_error *err);

/* Announces that `key` (the owner, e.g. "Application/NAME") will fetch
 * `queries` (borrowed; as for metrics_batcher_fetch) over [start_s, end_s]
 * with metrics_batcher_fetch_as once that window is due. Until then, any
 * batch for the same window includes them (in the same calls, within the
 * 500-query limit) and keeps their results for the owner. Replaces the
 * owner's previous announcement. At most METRICS_BATCHER_MAX_EXPECTED are
 * kept (the one with the oldest window is dropped). Returns 0, or -1 with
 * *err (invalid input, out of memory): the owner's fetch then simply makes
 * its own call. */
int metrics_batcher_expect(struct metrics_batcher *b, const char *key, const json_t *queries,
                           int64_t start_s, int64_t end_s, struct aws_error *err);

/* metrics_batcher_fetch for the owner `key` (NULL: as metrics_batcher_fetch).
 * When another batch already fetched key's announced round with the same
 * window and equal queries, returns those results at once without a call;
 * when such a batch is running, waits for it (bounded by wait_timeout_ms,
 * then fetches itself). The announcement is consumed either way. Same
 * return values and ownership as metrics_batcher_fetch. */
int metrics_batcher_fetch_as(struct metrics_batcher *b, const char *key, const json_t *queries,
                             int64_t start_s, int64_t end_s, json_t **results,
                             struct aws_error *err);

/* Copies the counters. */
void metrics_batcher_get_stats(struct metrics_batcher *b, struct metrics_batcher_stats *out);

/* The real call: aws_call(arg as struct aws_client *, "cloudwatch",
 * "GetMetricData", input, output, err). */
int metrics_batcher_aws_call(void *arg, const json_t *input, json_t **output,
                             struct aws_error *err);

/* The process-wide batcher over `client` with the default settings, created
 * on first use (thread-safe); later calls return the same one whatever the
 * client. NULL when memory ran out. Freed by metrics_batcher_shared_free
 * (at shutdown, when no reconcile runs). */
struct metrics_batcher *metrics_batcher_shared(struct aws_client *client);
void metrics_batcher_shared_free(void);

#endif
