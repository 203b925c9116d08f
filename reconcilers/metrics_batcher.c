/* Process-wide GetMetricData batching for concurrent analysis rounds: one
 * leader per batch gathers the callers that arrive within gather_ms, packs
 * their queries (renamed to call-unique ids) into as few calls as the
 * 500-query limit allows per time window, and hands each caller its results
 * back under its own ids. Worker threads; every wait is bounded. */
#include "reconcilers/metrics_batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/client.h"

/* One caller's part of a batch. */
struct mb_request {
    json_t *queries; /* the caller's array (own reference) */
    int64_t start_s, end_s;
    json_t *by_id; /* original id -> {"Id", "Timestamps", "Values", "StatusCode"} */
    bool failed;
    struct aws_error err;
};

/* A batch: open while its leader gathers, then closed and run. Freed by
 * whoever drops the last reference (the leader or a caller that timed
 * out). */
struct mb_batch {
    int refs;
    bool done;
    size_t n, cap;
    struct mb_request *reqs;
};

struct metrics_batcher {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    struct metrics_batcher_config cfg;
    struct mb_batch *open; /* the batch callers join, or NULL */
    struct metrics_batcher_stats stats;
};

/* Where query k of a call came from. */
struct mb_origin {
    size_t req;
    const char *id; /* borrowed from the request's queries */
};

static void default_sleep(void *arg, long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    (void)arg;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int metrics_batcher_new(const struct metrics_batcher_config *cfg, struct metrics_batcher **out)
{
    struct metrics_batcher *b;
    pthread_condattr_t attr;

    *out = NULL;
    if (cfg == NULL || cfg->call == NULL)
        return -1;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -1;
    b->cfg = *cfg;
    if (b->cfg.gather_ms == 0)
        b->cfg.gather_ms = 20;
    if (b->cfg.wait_timeout_ms <= 0)
        b->cfg.wait_timeout_ms = 120000;
    if (b->cfg.max_queries == 0 || b->cfg.max_queries > METRICS_BATCHER_MAX_QUERIES)
        b->cfg.max_queries = METRICS_BATCHER_MAX_QUERIES;
    if (b->cfg.max_pages <= 0)
        b->cfg.max_pages = 100;
    if (b->cfg.sleep_ms == NULL)
        b->cfg.sleep_ms = default_sleep;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &attr);
    pthread_condattr_destroy(&attr);
    *out = b;
    return 0;
}

void metrics_batcher_free(struct metrics_batcher *b)
{
    if (b == NULL)
        return;
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void batch_unref(struct mb_batch *batch)
{
    size_t i;

    if (--batch->refs > 0)
        return;
    for (i = 0; i < batch->n; i++) {
        json_decref(batch->reqs[i].queries);
        json_decref(batch->reqs[i].by_id);
    }
    free(batch->reqs);
    free(batch);
}

static void fail_request(struct mb_request *r, const struct aws_error *err)
{
    if (r->failed)
        return;
    r->failed = true;
    r->err = *err;
}

/* Appends a page's MetricDataResults to the requests the ids map to. */
static int absorb_page(struct mb_batch *batch, const struct mb_origin *origin, size_t n_origin,
                       const json_t *page, struct aws_error *err)
{
    const json_t *res = json_object_get(page, "MetricDataResults");
    size_t i;

    for (i = 0; i < json_array_size(res); i++) {
        const json_t *r = json_array_get(res, i);
        const char *id = json_string_value(json_object_get(r, "Id"));
        const char *status = json_string_value(json_object_get(r, "StatusCode"));
        char *end = NULL;
        unsigned long k;
        struct mb_request *req;
        json_t *entry, *ts, *vals;
        size_t j;

        if (id == NULL || id[0] != 'q')
            continue;
        k = strtoul(id + 1, &end, 10);
        if (end == id + 1 || *end != '\0' || k >= n_origin)
            continue; /* not one of ours: ignore */
        req = &batch->reqs[origin[k].req];
        entry = json_object_get(req->by_id, origin[k].id);
        if (entry == NULL)
            continue;
        ts = json_object_get(entry, "Timestamps");
        vals = json_object_get(entry, "Values");
        for (j = 0; j < json_array_size(json_object_get(r, "Values")); j++) {
            const json_t *t = json_array_get(json_object_get(r, "Timestamps"), j);

            if (json_array_append(vals, json_array_get(json_object_get(r, "Values"), j)) != 0 ||
                json_array_append_new(ts, t ? json_copy((json_t *)t) : json_null()) != 0)
                return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        }
        if (status != NULL)
            json_object_set_new(entry, "StatusCode", json_string(status));
    }
    return 0;
}

/* One GetMetricData call (all its pages) for the queries of a chunk. */
static void run_call(struct metrics_batcher *b, struct mb_batch *batch, json_t *queries,
                     const struct mb_origin *origin, size_t n_origin, int64_t start_s,
                     int64_t end_s)
{
    struct aws_error err;
    json_t *input = json_pack("{s:O, s:I, s:I, s:s}", "MetricDataQueries", queries, "StartTime",
                              (json_int_t)start_s, "EndTime", (json_int_t)end_s, "ScanBy",
                              "TimestampAscending");
    char *prev_token = NULL;
    int page;
    size_t i;

    aws_error_clear(&err);
    if (input == NULL) {
        aws_error_set(&err, AWS_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    for (page = 0;; page++) {
        json_t *out = NULL;
        const char *token;
        int rc;

        if (page >= b->cfg.max_pages) {
            aws_error_set(&err, AWS_ERR_INTERNAL, "GetMetricData: more than %d pages",
                          b->cfg.max_pages);
            goto fail;
        }
        rc = b->cfg.call(b->cfg.call_arg, input, &out, &err);
        pthread_mutex_lock(&b->mu);
        b->stats.calls++;
        pthread_mutex_unlock(&b->mu);
        if (rc != 0) {
            json_decref(out);
            if (err.kind == AWS_ERR_NONE)
                aws_error_set(&err, AWS_ERR_INTERNAL, "GetMetricData failed");
            goto fail;
        }
        rc = absorb_page(batch, origin, n_origin, out, &err);
        token = json_string_value(json_object_get(out, "NextToken"));
        if (rc == 0 && token != NULL && token[0] != '\0') {
            if (prev_token != NULL && strcmp(prev_token, token) == 0) {
                aws_error_set(&err, AWS_ERR_INTERNAL, "GetMetricData: NextToken repeated");
                rc = -1;
            } else {
                free(prev_token);
                prev_token = strdup(token);
                if (prev_token == NULL ||
                    json_object_set_new(input, "NextToken", json_string(token)) != 0) {
                    aws_error_set(&err, AWS_ERR_NO_MEMORY, "out of memory");
                    rc = -1;
                }
            }
            json_decref(out);
            if (rc != 0)
                goto fail;
            continue;
        }
        json_decref(out);
        if (rc != 0)
            goto fail;
        break;
    }
    goto out;
fail:
    for (i = 0; i < n_origin; i++)
        fail_request(&batch->reqs[origin[i].req], &err);
out:
    free(prev_token);
    json_decref(input);
}

/* Runs a closed batch: per distinct window, chunks of at most max_queries. */
static void run_batch(struct metrics_batcher *b, struct mb_batch *batch)
{
    struct mb_origin *origin = calloc(b->cfg.max_queries, sizeof(*origin));
    bool *grouped = calloc(batch->n ? batch->n : 1, sizeof(*grouped));
    struct aws_error oom;
    size_t g, i, j;

    aws_error_set(&oom, AWS_ERR_NO_MEMORY, "out of memory");
    if (origin == NULL || grouped == NULL) {
        for (i = 0; i < batch->n; i++)
            fail_request(&batch->reqs[i], &oom);
        goto out;
    }
    for (g = 0; g < batch->n; g++) {
        int64_t start_s = batch->reqs[g].start_s, end_s = batch->reqs[g].end_s;
        json_t *chunk = NULL;
        size_t n = 0;

        if (grouped[g])
            continue;
        for (i = g; i < batch->n; i++) {
            struct mb_request *r = &batch->reqs[i];

            if (grouped[i] || r->start_s != start_s || r->end_s != end_s)
                continue;
            grouped[i] = true;
            for (j = 0; j < json_array_size(r->queries); j++) {
                json_t *q = json_copy(json_array_get(r->queries, j));
                char id[24];

                if (chunk == NULL)
                    chunk = json_array();
                snprintf(id, sizeof(id), "q%zu", n);
                if (q == NULL || chunk == NULL ||
                    json_object_set_new(q, "Id", json_string(id)) != 0 ||
                    json_array_append_new(chunk, q) != 0) {
                    fail_request(r, &oom);
                    continue;
                }
                origin[n].req = i;
                origin[n].id =
                    json_string_value(json_object_get(json_array_get(r->queries, j), "Id"));
                n++;
                if (n == b->cfg.max_queries) {
                    run_call(b, batch, chunk, origin, n, start_s, end_s);
                    json_decref(chunk);
                    chunk = NULL;
                    n = 0;
                }
            }
        }
        if (n > 0)
            run_call(b, batch, chunk, origin, n, start_s, end_s);
        json_decref(chunk);
    }
out:
    free(origin);
    free(grouped);
}

/* Checks a caller's queries and prepares its result slots. */
static int prepare(struct mb_request *r, const json_t *queries, int64_t start_s, int64_t end_s,
                   struct aws_error *err)
{
    size_t i;

    memset(r, 0, sizeof(*r));
    if (!json_is_array(queries) || json_array_size(queries) == 0)
        return aws_error_set(err, AWS_ERR_INVALID, "queries: a non-empty array is required");
    if (start_s >= end_s)
        return aws_error_set(err, AWS_ERR_INVALID, "StartTime must be before EndTime");
    r->by_id = json_object();
    if (r->by_id == NULL)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    for (i = 0; i < json_array_size(queries); i++) {
        const json_t *q = json_array_get(queries, i);
        const char *id = json_string_value(json_object_get(q, "Id"));

        if (id == NULL || json_object_get(q, "MetricStat") == NULL ||
            json_object_get(q, "Expression") != NULL) {
            json_decref(r->by_id);
            r->by_id = NULL;
            return aws_error_set(err, AWS_ERR_INVALID,
                                 "queries[%zu]: an Id and a MetricStat (no Expression)", i);
        }
        if (json_object_get(r->by_id, id) != NULL ||
            json_object_set_new(r->by_id, id,
                                json_pack("{s:s, s:[], s:[], s:s}", "Id", id, "Timestamps",
                                          "Values", "StatusCode", "Complete")) != 0) {
            json_decref(r->by_id);
            r->by_id = NULL;
            return aws_error_set(err, AWS_ERR_INVALID, "queries[%zu]: duplicate id %s", i, id);
        }
    }
    r->queries = json_incref((json_t *)queries);
    r->start_s = start_s;
    r->end_s = end_s;
    return 0;
}

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int metrics_batcher_fetch(struct metrics_batcher *b, const json_t *queries, int64_t start_s,
                          int64_t end_s, json_t **results, struct aws_error *err)
{
    struct mb_request req;
    struct mb_batch *batch;
    struct timespec deadline;
    bool leader = false;
    size_t idx, i;
    int rc = -1;

    *results = NULL;
    aws_error_clear(err);
    if (prepare(&req, queries, start_s, end_s, err) != 0)
        return -1;
    pthread_mutex_lock(&b->mu);
    b->stats.callers++;
    b->stats.queries += json_array_size(queries);
    b->stats.waiting++;
    if (b->open == NULL) {
        batch = calloc(1, sizeof(*batch));
        if (batch == NULL) {
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            goto unlock_fail;
        }
        b->open = batch;
        leader = true;
        b->stats.batches++;
    }
    batch = b->open;
    if (batch->n == batch->cap) {
        size_t cap = batch->cap ? batch->cap * 2 : 16;
        struct mb_request *grown = realloc(batch->reqs, cap * sizeof(*grown));

        if (grown == NULL) {
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            if (leader) {
                b->open = NULL;
                free(batch);
            }
            goto unlock_fail;
        }
        batch->reqs = grown;
        batch->cap = cap;
    }
    idx = batch->n++;
    batch->reqs[idx] = req;
    batch->refs++;
    req.queries = NULL;
    req.by_id = NULL;
    if (batch->n >= METRICS_BATCHER_MAX_CALLERS)
        b->open = NULL; /* full: the next caller leads a new batch */

    if (leader) {
        pthread_mutex_unlock(&b->mu);
        if (b->cfg.gather_ms > 0)
            b->cfg.sleep_ms(b->cfg.sleep_arg, b->cfg.gather_ms);
        pthread_mutex_lock(&b->mu);
        if (b->open == batch)
            b->open = NULL;
        pthread_mutex_unlock(&b->mu);
        /* Closed: nobody appends any more; the requests are ours to fill. */
        run_batch(b, batch);
        pthread_mutex_lock(&b->mu);
        batch->done = true;
        pthread_cond_broadcast(&b->cv);
    } else {
        deadline_after(&deadline, b->cfg.wait_timeout_ms);
        while (!batch->done) {
            if (pthread_cond_timedwait(&b->cv, &b->mu, &deadline) == ETIMEDOUT && !batch->done) {
                aws_error_set(err, AWS_ERR_TIMEOUT,
                              "GetMetricData batch did not finish within %ld ms",
                              b->cfg.wait_timeout_ms);
                batch_unref(batch);
                goto unlock_fail;
            }
        }
    }
    {
        struct mb_request *r = &batch->reqs[idx];

        if (r->failed) {
            *err = r->err;
        } else {
            json_t *arr = json_array();

            for (i = 0; arr != NULL && i < json_array_size(r->queries); i++) {
                const char *id =
                    json_string_value(json_object_get(json_array_get(r->queries, i), "Id"));

                if (json_array_append(arr, json_object_get(r->by_id, id)) != 0) {
                    json_decref(arr);
                    arr = NULL;
                }
            }
            if (arr == NULL)
                aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            *results = arr;
            rc = arr != NULL ? 0 : -1;
        }
    }
    batch_unref(batch);
    b->stats.waiting--;
    pthread_mutex_unlock(&b->mu);
    return rc;

unlock_fail:
    b->stats.waiting--;
    pthread_mutex_unlock(&b->mu);
    json_decref(req.queries);
    json_decref(req.by_id);
    return -1;
}

void metrics_batcher_get_stats(struct metrics_batcher *b, struct metrics_batcher_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    pthread_mutex_unlock(&b->mu);
}

int metrics_batcher_aws_call(void *arg, const json_t *input, json_t **output, struct aws_error *err)
{
    return aws_call((struct aws_client *)arg, "cloudwatch", "GetMetricData", input, output, err);
}

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_batcher *shared;

struct metrics_batcher *metrics_batcher_shared(struct aws_client *client)
{
    struct metrics_batcher *b;

    pthread_mutex_lock(&shared_mu);
    if (shared == NULL) {
        struct metrics_batcher_config cfg = {0};

        cfg.call = metrics_batcher_aws_call;
        cfg.call_arg = client;
        if (metrics_batcher_new(&cfg, &shared) != 0)
            shared = NULL;
    }
    b = shared;
    pthread_mutex_unlock(&shared_mu);
    return b;
}

void metrics_batcher_shared_free(void)
{
    pthread_mutex_lock(&shared_mu);
    metrics_batcher_free(shared);
    shared = NULL;
    pthread_mutex_unlock(&shared_mu);
}
