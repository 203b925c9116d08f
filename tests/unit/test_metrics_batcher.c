/* Unit tests for the GetMetricData batcher: concurrent callers coalesced
 * into ceil(queries / 500) calls per window, results distributed under each
 * caller's ids, NextToken pages, errors to every waiter, bounded waits. A
 * fake GetMetricData stands in for CloudWatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcilers/metrics_batcher.h"

/* The fake CloudWatch: checks each call like the API does and answers each
 * query with one value derived from its metric name "c<caller>q<index>". */
struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    int max_seen;
    int windows[8][2];
    int n_windows;
    bool paginate; /* split every answer over two pages */
    bool fail;     /* answer ThrottlingException */
    bool block;    /* hold calls until released */
    bool released;
    int bad_calls; /* calls that broke an API rule */
    regex_t id_re;
    struct metrics_batcher *b; /* for the gathering wait */
    unsigned long expect;      /* callers the gathering wait waits for */
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double value_for(const char *name)
{
    int c = -1, q = -1;

    if (sscanf(name, "c%dq%d", &c, &q) != 2)
        return -1;
    return c * 1000.0 + q;
}

static int fake_call(void *arg, const json_t *input, json_t **output, struct aws_error *err)
{
    struct fake *f = arg;
    const json_t *qs = json_object_get(input, "MetricDataQueries");
    const char *token = json_string_value(json_object_get(input, "NextToken"));
    json_t *res = json_array();
    size_t i, k;
    int page = token != NULL ? 2 : 1;

    pthread_mutex_lock(&f->mu);
    f->calls++;
    if ((int)json_array_size(qs) > f->max_seen)
        f->max_seen = (int)json_array_size(qs);
    if (json_array_size(qs) == 0 || json_array_size(qs) > 500)
        f->bad_calls++;
    if (page == 1 && f->n_windows < 8) {
        f->windows[f->n_windows][0] = (int)json_integer_value(json_object_get(input, "StartTime"));
        f->windows[f->n_windows][1] = (int)json_integer_value(json_object_get(input, "EndTime"));
        f->n_windows++;
    }
    if (f->block) {
        int64_t until = mono_ms() + 5000; /* bounded */

        while (!f->released && mono_ms() < until) {
            struct timespec ts = {0, 5000000};

            pthread_mutex_unlock(&f->mu);
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&f->mu);
        }
    }
    pthread_mutex_unlock(&f->mu);
    for (i = 0; i < json_array_size(qs); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(qs, i), "Id"));

        if (id == NULL || regexec(&f->id_re, id, 0, NULL, 0) != 0)
            f->bad_calls++;
        for (k = 0; k < i; k++) {
            if (strcmp(id, json_string_value(json_object_get(json_array_get(qs, k), "Id"))) == 0)
                f->bad_calls++;
        }
    }
    if (f->fail) {
        json_decref(res);
        err->kind = AWS_ERR_SERVICE;
        err->http_status = 400;
        snprintf(err->code, sizeof(err->code), "ThrottlingException");
        snprintf(err->message, sizeof(err->message), "Rate exceeded");
        return -1;
    }
    for (i = 0; i < json_array_size(qs); i++) {
        const json_t *q = json_array_get(qs, i);
        const char *name = json_string_value(json_object_get(
            json_object_get(json_object_get(q, "MetricStat"), "Metric"), "MetricName"));
        double v = value_for(name);

        /* Paginated: every query gets one datapoint per page. */
        json_array_append_new(res, json_pack("{s:s, s:[i], s:[f], s:s}", "Id",
                                             json_string_value(json_object_get(q, "Id")),
                                             "Timestamps", 1700000000 + page, "Values",
                                             f->paginate ? v + (page - 1) * 0.5 : v, "StatusCode",
                                             "Complete"));
    }
    *output = json_pack("{s:o}", "MetricDataResults", res);
    if (f->paginate && page == 1)
        json_object_set_new(*output, "NextToken", json_string("page-2"));
    return 0;
}

/* The gathering wait: returns once the expected callers have joined (or 5 s
 * have passed), so the test decides who is in the batch, not the scheduler. */
static void gather_sleep(void *arg, long ms)
{
    struct fake *f = arg;
    int64_t until = mono_ms() + 5000;

    (void)ms;
    while (mono_ms() < until) {
        struct metrics_batcher_stats st;
        struct timespec ts = {0, 1000000};

        metrics_batcher_get_stats(f->b, &st);
        if (st.waiting >= f->expect)
            return;
        nanosleep(&ts, NULL);
    }
}

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    assert_int_equal(regcomp(&f->id_re, "^[a-z][a-zA-Z0-9_]*$", REG_EXTENDED | REG_NOSUB), 0);
}

static void fake_clear(struct fake *f)
{
    regfree(&f->id_re);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

static struct metrics_batcher *batcher(struct fake *f, long wait_timeout_ms)
{
    struct metrics_batcher_config cfg = {0};
    struct metrics_batcher *b = NULL;

    cfg.call = fake_call;
    cfg.call_arg = f;
    cfg.sleep_ms = gather_sleep;
    cfg.sleep_arg = f;
    cfg.wait_timeout_ms = wait_timeout_ms;
    assert_int_equal(metrics_batcher_new(&cfg, &b), 0);
    f->b = b;
    return b;
}

/* Caller c's queries: ids as the analysis builds them (collide across
 * callers on purpose), metric names that identify caller and index. */
static json_t *caller_queries(int c, int n)
{
    json_t *qs = json_array();
    int i;

    for (i = 0; i < n; i++) {
        char id[32], name[32];

        snprintf(id, sizeof(id), i == 0 ? "req_c" : "m%d_c", i - 1);
        snprintf(name, sizeof(name), "c%dq%d", c, i);
        json_array_append_new(qs, json_pack("{s:s, s:{s:{s:s, s:s, s:[]}, s:i, s:s}}", "Id", id,
                                            "MetricStat", "Metric", "Namespace",
                                            "AWS/ApplicationELB", "MetricName", name, "Dimensions",
                                            "Period", 60, "Stat", "Sum"));
    }
    return qs;
}

struct caller {
    pthread_t thread;
    struct metrics_batcher *b;
    int id;
    int n_queries;
    int64_t start, end;
    int rc;
    bool results_ok;
    struct aws_error err;
    bool paginated;
};

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    json_t *qs = caller_queries(c->id, c->n_queries);
    json_t *res = NULL;
    size_t i;

    c->rc = metrics_batcher_fetch(c->b, qs, c->start, c->end, &res, &c->err);
    c->results_ok = c->rc == 0 && json_array_size(res) == (size_t)c->n_queries;
    for (i = 0; c->results_ok && i < json_array_size(res); i++) {
        const json_t *r = json_array_get(res, i);
        const json_t *vals = json_object_get(r, "Values");
        double want = c->id * 1000.0 + (double)i;

        /* Same ids as submitted, in order, with this caller's own values. */
        if (strcmp(json_string_value(json_object_get(r, "Id")),
                   json_string_value(json_object_get(json_array_get(qs, i), "Id"))) != 0)
            c->results_ok = false;
        else if (!c->paginated &&
                 (json_array_size(vals) != 1 || json_real_value(json_array_get(vals, 0)) != want))
            c->results_ok = false;
        else if (c->paginated &&
                 (json_array_size(vals) != 2 || json_real_value(json_array_get(vals, 0)) != want ||
                  json_real_value(json_array_get(vals, 1)) != want + 0.5 ||
                  json_array_size(json_object_get(r, "Timestamps")) != 2))
            c->results_ok = false;
    }
    json_decref(res);
    json_decref(qs);
    return NULL;
}

static void run_callers(struct fake *f, struct metrics_batcher *b, struct caller *cs, int n,
                        int queries_each)
{
    int i;

    f->expect = (unsigned long)n;
    for (i = 0; i < n; i++) {
        cs[i].b = b;
        cs[i].id = i;
        cs[i].n_queries = queries_each;
        if (cs[i].end == 0) {
            cs[i].start = 1700000000;
            cs[i].end = 1700000060;
        }
        cs[i].paginated = f->paginate;
        assert_int_equal(pthread_create(&cs[i].thread, NULL, caller_main, &cs[i]), 0);
    }
    for (i = 0; i < n; i++)
        pthread_join(cs[i].thread, NULL);
}

static void coalesce(int n, int queries_each)
{
    struct fake f;
    struct metrics_batcher *b;
    struct metrics_batcher_stats st;
    struct caller *cs = calloc((size_t)n, sizeof(*cs));
    int total = n * queries_each, want = (total + 499) / 500, i;

    fake_init(&f);
    b = batcher(&f, 0);
    run_callers(&f, b, cs, n, queries_each);
    for (i = 0; i < n; i++) {
        assert_int_equal(cs[i].rc, 0);
        assert_true(cs[i].results_ok);
    }
    metrics_batcher_get_stats(b, &st);
    print_message("%d concurrent callers x %d queries = %d queries: %d GetMetricData call(s) "
                  "(ceil(%d/500) = %d), largest %d queries, %lu batch(es)\n",
                  n, queries_each, total, f.calls, total, want, f.max_seen, st.batches);
    assert_int_equal(f.calls, want);
    assert_int_equal(st.calls, (unsigned long)want);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.callers, (unsigned long)n);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(f.bad_calls, 0);
    metrics_batcher_free(b);
    fake_clear(&f);
    free(cs);
}

static void test_one_caller(void **state)
{
    (void)state;
    coalesce(1, 4);
}

static void test_ten_callers(void **state)
{
    (void)state;
    coalesce(10, 4);  /* 40 queries: 1 call */
    coalesce(10, 60); /* 600 queries: 2 calls */
}

static void test_hundred_callers(void **state)
{
    (void)state;
    coalesce(100, 4);  /* 400 queries: 1 call */
    coalesce(100, 12); /* 1200 queries: 3 calls */
}

static void test_pages_are_merged(void **state)
{
    struct fake f;
    struct metrics_batcher *b;
    struct caller cs[5];
    int i;

    (void)state;
    memset(cs, 0, sizeof(cs));
    fake_init(&f);
    f.paginate = true;
    b = batcher(&f, 0);
    run_callers(&f, b, cs, 5, 3);
    for (i = 0; i < 5; i++)
        assert_true(cs[i].results_ok);
    assert_int_equal(f.calls, 2); /* one call, two pages */
    metrics_batcher_free(b);
    fake_clear(&f);
}

static void test_windows_are_separate_calls(void **state)
{
    struct fake f;
    struct metrics_batcher *b;
    struct caller cs[6];
    int i;

    (void)state;
    memset(cs, 0, sizeof(cs));
    for (i = 0; i < 6; i++) {
        cs[i].start = i % 2 ? 1700000000 : 1700000030;
        cs[i].end = i % 2 ? 1700000060 : 1700000060;
    }
    fake_init(&f);
    b = batcher(&f, 0);
    run_callers(&f, b, cs, 6, 2);
    for (i = 0; i < 6; i++)
        assert_true(cs[i].results_ok);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.n_windows, 2);
    assert_true(f.windows[0][0] != f.windows[1][0]);
    metrics_batcher_free(b);
    fake_clear(&f);
}

static void test_error_reaches_every_waiter(void **state)
{
    struct fake f;
    struct metrics_batcher *b;
    struct caller cs[8];
    int i;

    (void)state;
    memset(cs, 0, sizeof(cs));
    fake_init(&f);
    f.fail = true;
    b = batcher(&f, 0);
    run_callers(&f, b, cs, 8, 3);
    for (i = 0; i < 8; i++) {
        assert_int_equal(cs[i].rc, -1);
        assert_string_equal(cs[i].err.code, "ThrottlingException");
    }
    assert_int_equal(f.calls, 1);
    /* The batcher is usable again afterwards. */
    f.fail = false;
    memset(cs, 0, sizeof(cs));
    run_callers(&f, b, cs, 2, 3);
    assert_true(cs[0].results_ok && cs[1].results_ok);
    metrics_batcher_free(b);
    fake_clear(&f);
}

static void test_wait_is_bounded(void **state)
{
    struct fake f;
    struct metrics_batcher *b;
    struct caller cs[3];
    int i, timeouts = 0, ok = 0;

    (void)state;
    memset(cs, 0, sizeof(cs));
    fake_init(&f);
    f.block = true;
    b = batcher(&f, 100);
    f.expect = 3;
    for (i = 0; i < 3; i++) {
        cs[i].b = b;
        cs[i].id = i;
        cs[i].n_queries = 2;
        cs[i].start = 1700000000;
        cs[i].end = 1700000060;
        assert_int_equal(pthread_create(&cs[i].thread, NULL, caller_main, &cs[i]), 0);
    }
    /* The two callers that joined give up after 100 ms; then the call ends. */
    for (i = 0; i < 500; i++) {
        struct metrics_batcher_stats st;
        struct timespec ts = {0, 10000000};

        metrics_batcher_get_stats(b, &st);
        if (st.callers == 3 && st.waiting == 1)
            break;
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&f.mu);
    f.released = true;
    pthread_mutex_unlock(&f.mu);
    for (i = 0; i < 3; i++) {
        pthread_join(cs[i].thread, NULL);
        if (cs[i].rc == -1 && cs[i].err.kind == AWS_ERR_TIMEOUT)
            timeouts++;
        else if (cs[i].results_ok)
            ok++;
    }
    assert_int_equal(timeouts, 2);
    assert_int_equal(ok, 1); /* the leader */
    metrics_batcher_free(b);
    fake_clear(&f);
}

static void test_invalid_input(void **state)
{
    struct fake f;
    struct metrics_batcher *b;
    struct aws_error err;
    json_t *res = NULL;
    json_t *expr = json_pack("[{s:s, s:s}]", "Id", "e1", "Expression", "m1/m2");
    json_t *dup =
        json_pack("[{s:s, s:{}}, {s:s, s:{}}]", "Id", "a", "MetricStat", "Id", "a", "MetricStat");
    json_t *empty = json_array();
    json_t *ok = caller_queries(1, 1);

    (void)state;
    fake_init(&f);
    b = batcher(&f, 0);
    assert_int_equal(metrics_batcher_fetch(b, expr, 1, 2, &res, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    assert_int_equal(metrics_batcher_fetch(b, dup, 1, 2, &res, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    assert_int_equal(metrics_batcher_fetch(b, empty, 1, 2, &res, &err), -1);
    assert_int_equal(metrics_batcher_fetch(b, ok, 2, 2, &res, &err), -1);
    assert_null(res);
    assert_int_equal(f.calls, 0);
    assert_int_equal(metrics_batcher_new(NULL, &b), -1);
    metrics_batcher_free(f.b);
    fake_clear(&f);
    json_decref(expr);
    json_decref(dup);
    json_decref(empty);
    json_decref(ok);
}

/* Caller c's own values in res (one datapoint per query, in order). */
static bool results_of(const json_t *res, int c, int n)
{
    int i;

    if ((int)json_array_size(res) != n)
        return false;
    for (i = 0; i < n; i++) {
        const json_t *vals = json_object_get(json_array_get(res, (size_t)i), "Values");

        if (json_array_size(vals) != 1 ||
            json_real_value(json_array_get(vals, 0)) != c * 1000.0 + (double)i)
            return false;
    }
    return true;
}

/* Rounds announced ahead by 120 owners for the same window: the first
 * owner's fetch makes ceil(600 / 500) = 2 calls for all of them, every
 * other owner gets its own results without a call. */
static void test_announced_rounds_share_calls(void **state)
{
    struct fake f;
    struct metrics_batcher *b;
    struct metrics_batcher_stats st;
    struct aws_error err;
    char key[32];
    int c;

    (void)state;
    fake_init(&f);
    b = batcher(&f, 0);
    f.expect = 1;
    for (c = 0; c < 120; c++) {
        json_t *qs = caller_queries(c, 5);

        snprintf(key, sizeof(key), "Application/a%03d", c);
        assert_int_equal(metrics_batcher_expect(b, key, qs, 1700000000, 1700000060, &err), 0);
        json_decref(qs);
    }
    for (c = 0; c < 120; c++) {
        json_t *qs = caller_queries(c, 5), *res = NULL;

        snprintf(key, sizeof(key), "Application/a%03d", c);
        assert_int_equal(metrics_batcher_fetch_as(b, key, qs, 1700000000, 1700000060, &res, &err),
                         0);
        assert_true(results_of(res, c, 5));
        assert_int_equal(f.calls, 2);
        json_decref(res);
        json_decref(qs);
    }
    assert_true(f.max_seen <= 500);
    assert_int_equal(f.bad_calls, 0);
    metrics_batcher_get_stats(b, &st);
    assert_int_equal(st.expected, 120);
    assert_int_equal(st.prefetched, 119);
    assert_int_equal(st.served, 119);
    /* Consumed: the same fetch again is a call of its own. */
    {
        json_t *qs = caller_queries(7, 5), *res = NULL;

        assert_int_equal(
            metrics_batcher_fetch_as(b, "Application/a007", qs, 1700000000, 1700000060, &res, &err),
            0);
        assert_int_equal(f.calls, 3);
        json_decref(res);
        json_decref(qs);
    }
    metrics_batcher_free(b);
    fake_clear(&f);
}

/* An announcement is only used for its own window and its own queries, the
 * latest one wins, and a failed prefetch leaves the owner to fetch itself. */
static void test_announcements_match_exactly(void **state)
{
    struct fake f;
    struct metrics_batcher *b;
    struct aws_error err;
    json_t *q1 = caller_queries(1, 3), *q2 = caller_queries(2, 3), *q3 = caller_queries(3, 3);
    json_t *q3b = caller_queries(3, 4), *res = NULL;

    (void)state;
    fake_init(&f);
    b = batcher(&f, 0);
    f.expect = 1;
    /* Another window: not fetched with it. */
    assert_int_equal(metrics_batcher_expect(b, "A/one", q1, 1700000060, 1700000120, &err), 0);
    assert_int_equal(metrics_batcher_fetch_as(b, "A/two", q2, 1700000000, 1700000060, &res, &err),
                     0);
    json_decref(res);
    assert_int_equal(f.calls, 1);
    assert_int_equal(metrics_batcher_fetch_as(b, "A/one", q1, 1700000060, 1700000120, &res, &err),
                     0);
    assert_true(results_of(res, 1, 3));
    json_decref(res);
    assert_int_equal(f.calls, 2);

    /* Announced again with other queries: the newest is prefetched, and a
     * fetch with the old ones is not served from it. */
    assert_int_equal(metrics_batcher_expect(b, "A/three", q3, 1700000000, 1700000060, &err), 0);
    assert_int_equal(metrics_batcher_expect(b, "A/three", q3b, 1700000000, 1700000060, &err), 0);
    assert_int_equal(metrics_batcher_fetch_as(b, "A/two", q2, 1700000000, 1700000060, &res, &err),
                     0);
    json_decref(res);
    assert_int_equal(f.calls, 3);
    assert_int_equal(f.max_seen, 3 + 4);
    assert_int_equal(metrics_batcher_fetch_as(b, "A/three", q3, 1700000000, 1700000060, &res, &err),
                     0);
    assert_true(results_of(res, 3, 3));
    json_decref(res);
    assert_int_equal(f.calls, 4);

    /* The leader's call fails: the owner's own fetch makes the call. */
    assert_int_equal(metrics_batcher_expect(b, "A/one", q1, 1700000120, 1700000180, &err), 0);
    f.fail = true;
    assert_int_equal(metrics_batcher_fetch_as(b, "A/two", q2, 1700000120, 1700000180, &res, &err),
                     -1);
    assert_null(res);
    f.fail = false;
    assert_int_equal(metrics_batcher_fetch_as(b, "A/one", q1, 1700000120, 1700000180, &res, &err),
                     0);
    assert_true(results_of(res, 1, 3));
    json_decref(res);
    assert_int_equal(f.calls, 6);

    /* Invalid announcements are refused. */
    assert_int_equal(metrics_batcher_expect(b, "", q1, 1, 2, &err), -1);
    assert_int_equal(metrics_batcher_expect(b, "A/one", q1, 2, 2, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    metrics_batcher_free(b);
    fake_clear(&f);
    json_decref(q1);
    json_decref(q2);
    json_decref(q3);
    json_decref(q3b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_caller),
        cmocka_unit_test(test_ten_callers),
        cmocka_unit_test(test_hundred_callers),
        cmocka_unit_test(test_pages_are_merged),
        cmocka_unit_test(test_windows_are_separate_calls),
        cmocka_unit_test(test_error_reaches_every_waiter),
        cmocka_unit_test(test_wait_is_bounded),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_announced_rounds_share_calls),
        cmocka_unit_test(test_announcements_match_exactly),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
