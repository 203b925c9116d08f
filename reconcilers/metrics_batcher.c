/* Process-wide GetMetricData batching for concurrent analysis rounds: one
 * leader per batch gathers the callers that arrive within gather_ms, adds
 * the announced rounds of other owners for the same windows, packs all
 * queries (renamed to call-unique ids) into as few calls as the 500-query
 * limit allows per time window, hands each caller its results back under
 * its own ids and keeps the announced rounds' results for their owners.
 * Worker threads; every wait is bounded. */
#include "reconcilers/metrics_batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/client.h"

/* One caller's part of a batch, or an announced round fetched for its
 * owner (prefetch). */
struct mb_request {
    json_t *queries; /* the caller's array (own reference) */
    int64_t start_s, end_s;
    json_t *by_id; /* original id -> {"Id", "Timestamps", "Values", "StatusCode"} */
    bool failed;
    struct aws_error err;
    bool prefetch;                     /* an announced round, no caller waits for it */
    char key[METRICS_BATCHER_KEY_MAX]; /* prefetch: the owner */
    unsigned long gen;                 /* prefetch: the announcement's generation */
};

/* An announced round (metrics_batcher_expect). */
struct mb_expect {
    char key[METRICS_BATCHER_KEY_MAX];
    json_t *queries; /* own copy */
    int64_t start_s, end_s;
    bool claimed;      /* a running batch fetches it */
    json_t *results;   /* once fetched: the owner's results (as fetch returns them) */
    unsigned long gen; /* changes when the owner announces again */
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
    struct mb_expect *expects; /* announced rounds, n_expects used of cap_expects */
    size_t n_expects, cap_expects;
    unsigned long expect_gen;
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

static void expect_clear(struct mb_expect *e)
{
    json_decref(e->queries);
    json_decref(e->results);
    memset(e, 0, sizeof(*e));
}

void metrics_batcher_free(struct metrics_batcher *b)
{
    size_t i;

    if (b == NULL)
        return;
    for (i = 0; i < b->n_expects; i++)
        expect_clear(&b->expects[i]);
    free(b->expects);
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

/* A request's results in the order of its queries (new array), or NULL
 * when memory ran out. */
static json_t *ordered_results(const struct mb_request *r)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; arr != NULL && i < json_array_size(r->queries); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(r->queries, i), "Id"));

        if (json_array_append(arr, json_object_get(r->by_id, id)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* ---- announced rounds (b->mu held) ---------------------------------------- */

static struct mb_expect *find_expect(struct metrics_batcher *b, const char *key)
{
    size_t i;

    for (i = 0; i < b->n_expects; i++) {
        if (strcmp(b->expects[i].key, key) == 0)
            return &b->expects[i];
    }
    return NULL;
}

static void remove_expect(struct metrics_batcher *b, struct mb_expect *e)
{
    size_t i = (size_t)(e - b->expects);

    expect_clear(e);
    if (i + 1 < b->n_expects)
        b->expects[i] = b->expects[b->n_expects - 1];
    memset(&b->expects[b->n_expects - 1], 0, sizeof(*e));
    b->n_expects--;
}

int metrics_batcher_expect(struct metrics_batcher *b, const char *key, const json_t *queries,
                           int64_t start_s, int64_t end_s, struct aws_error *err)
{
    struct mb_request check;
    struct mb_expect *e;
    json_t *copy;

    aws_error_clear(err);
    if (key == NULL || key[0] == '\0' || strlen(key) >= METRICS_BATCHER_KEY_MAX)
        return aws_error_set(err, AWS_ERR_INVALID, "an owner key of 1 to %d characters",
                             METRICS_BATCHER_KEY_MAX - 1);
    if (prepare(&check, queries, start_s, end_s, err) != 0)
        return -1;
    json_decref(check.queries);
    json_decref(check.by_id);
    copy = json_deep_copy(queries);
    if (copy == NULL)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    pthread_mutex_lock(&b->mu);
    e = find_expect(b, key);
    if (e == NULL && b->n_expects == METRICS_BATCHER_MAX_EXPECTED) {
        size_t i, oldest = 0;

        for (i = 1; i < b->n_expects; i++) {
            if (b->expects[i].end_s < b->expects[oldest].end_s)
                oldest = i;
        }
        remove_expect(b, &b->expects[oldest]);
    }
    if (e == NULL && b->n_expects == b->cap_expects) {
        size_t cap = b->cap_expects ? b->cap_expects * 2 : 64;
        struct mb_expect *grown;

        if (cap > METRICS_BATCHER_MAX_EXPECTED)
            cap = METRICS_BATCHER_MAX_EXPECTED;
        grown = realloc(b->expects, cap * sizeof(*grown));
        if (grown == NULL) {
            pthread_mutex_unlock(&b->mu);
            json_decref(copy);
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        }
        b->expects = grown;
        b->cap_expects = cap;
    }
    if (e == NULL) {
        e = &b->expects[b->n_expects++];
        memset(e, 0, sizeof(*e));
        snprintf(e->key, sizeof(e->key), "%s", key);
    }
    /* A batch still fetching the previous announcement finds another
     * generation and drops its results. */
    json_decref(e->queries);
    json_decref(e->results);
    e->queries = copy;
    e->results = NULL;
    e->claimed = false;
    e->start_s = start_s;
    e->end_s = end_s;
    e->gen = ++b->expect_gen;
    b->stats.expected++;
    pthread_mutex_unlock(&b->mu);
    return 0;
}

/* The leader, the batch closed: adds the announced rounds of the batch's
 * windows that nobody fetches yet. Out of memory only leaves some out (their
 * owners fetch them themselves). */
static void add_prefetch(struct metrics_batcher *b, struct mb_batch *batch)
{
    size_t i, k, n_callers = batch->n;
    struct aws_error ignored;

    for (i = 0; i < b->n_expects; i++) {
        struct mb_expect *e = &b->expects[i];
        struct mb_request *r;
        bool window = false;

        if (e->claimed || e->results != NULL)
            continue;
        for (k = 0; k < n_callers && !window; k++)
            window = batch->reqs[k].start_s == e->start_s && batch->reqs[k].end_s == e->end_s;
        if (!window)
            continue;
        if (batch->n == batch->cap) {
            size_t cap = batch->cap * 2;
            struct mb_request *grown = realloc(batch->reqs, cap * sizeof(*grown));

            if (grown == NULL)
                return;
            batch->reqs = grown;
            batch->cap = cap;
        }
        r = &batch->reqs[batch->n];
        if (prepare(r, e->queries, e->start_s, e->end_s, &ignored) != 0)
            continue;
        r->prefetch = true;
        snprintf(r->key, sizeof(r->key), "%s", e->key);
        r->gen = e->gen;
        e->claimed = true;
        batch->n++;
        b->stats.prefetched++;
    }
}

/* The leader, the batch run: keeps the prefetched results for their owners
 * (when they did not announce again meanwhile). */
static void store_prefetch(struct metrics_batcher *b, struct mb_batch *batch)
{
    size_t i;

    for (i = 0; i < batch->n; i++) {
        const struct mb_request *r = &batch->reqs[i];
        struct mb_expect *e;

        if (!r->prefetch)
            continue;
        e = find_expect(b, r->key);
        if (e == NULL || e->gen != r->gen)
            continue;
        e->claimed = false;
        if (!r->failed)
            e->results = ordered_results(r);
    }
}

/* An owner's fetch: the results of its announced round when a batch
 * fetched them (0: *results set), else -1 after consuming the
 * announcement (waits, bounded, while a batch is fetching it). */
static int take_prefetched(struct metrics_batcher *b, const char *key, const json_t *queries,
                           int64_t start_s, int64_t end_s, json_t **results)
{
    struct timespec deadline;
    struct mb_expect *e;

    deadline_after(&deadline, b->cfg.wait_timeout_ms);
    while ((e = find_expect(b, key)) != NULL) {
        if (e->start_s != start_s || e->end_s != end_s || !json_equal(e->queries, queries))
            break;
        if (e->results != NULL) {
            *results = e->results;
            e->results = NULL;
            remove_expect(b, e);
            b->stats.served++;
            return 0;
        }
        if (!e->claimed || pthread_cond_timedwait(&b->cv, &b->mu, &deadline) == ETIMEDOUT)
            break;
    }
    e = find_expect(b, key);
    if (e != NULL)
        remove_expect(b, e);
    return -1;
}

int metrics_batcher_fetch(struct metrics_batcher *b, const json_t *queries, int64_t start_s,
                          int64_t end_s, json_t **results, struct aws_error *err)
{
    return metrics_batcher_fetch_as(b, NULL, queries, start_s, end_s, results, err);
}

int metrics_batcher_fetch_as(struct metrics_batcher *b, const char *key, const json_t *queries,
                             int64_t start_s, int64_t end_s, json_t **results,
                             struct aws_error *err)
{
    struct mb_request req;
    struct mb_batch *batch;
    struct timespec deadline;
    bool leader = false;
    size_t idx;
    int rc = -1;

    *results = NULL;
    aws_error_clear(err);
    if (prepare(&req, queries, start_s, end_s, err) != 0)
        return -1;
    pthread_mutex_lock(&b->mu);
    if (key != NULL && take_prefetched(b, key, queries, start_s, end_s, results) == 0) {
        b->stats.callers++;
        b->stats.queries += json_array_size(queries);
        pthread_mutex_unlock(&b->mu);
        json_decref(req.queries);
        json_decref(req.by_id);
        return 0;
    }
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
        add_prefetch(b, batch);
        pthread_mutex_unlock(&b->mu);
        /* Closed: nobody appends any more; the requests are ours to fill. */
        run_batch(b, batch);
        pthread_mutex_lock(&b->mu);
        store_prefetch(b, batch);
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
            json_t *arr = ordered_results(r);

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
