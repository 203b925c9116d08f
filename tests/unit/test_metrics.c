/* Unit tests for the Prometheus registry: text format, labels, escaping,
 * histograms, gauges reset, and the series bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "controller/metrics.h"

static void render(struct metrics *m, struct aws_buf *out)
{
    aws_buf_init(out, 1 << 20);
    assert_int_equal(metrics_render(m, out), 0);
}

static void test_counter_with_labels(void **state)
{
    struct metrics *m = metrics_new();
    const char *labels[] = {"kind", "result", NULL};
    struct metric_family *f = metrics_register(m, METRIC_COUNTER, "aviary_reconciles_total",
                                               "Reconciles by kind and result.", labels, NULL, 0);
    const char *ok[] = {"Application", "success"};
    const char *bad[] = {"Application", "error"};
    struct aws_buf out;
    (void)state;

    metrics_add(f, ok, 1);
    metrics_add(f, ok, 2);
    metrics_add(f, bad, 1);
    render(m, &out);
    assert_non_null(strstr(out.data,
                           "# HELP aviary_reconciles_total Reconciles by kind and "
                           "result.\n# TYPE aviary_reconciles_total counter\n"
                           "aviary_reconciles_total{kind=\"Application\",result=\"error\"}"
                           " 1\naviary_reconciles_total{kind=\"Application\","
                           "result=\"success\"} 3\n"));
    aws_buf_free(&out);
    metrics_free(m);
}

static void test_histogram_buckets(void **state)
{
    struct metrics *m = metrics_new();
    const double buckets[] = {0.1, 1, 10};
    const char *labels[] = {"kind", NULL};
    struct metric_family *f =
        metrics_register(m, METRIC_HISTOGRAM, "aviary_reconcile_duration_seconds",
                         "Reconcile wall time.", labels, buckets, 3);
    const char *app[] = {"Application"};
    struct aws_buf out;
    (void)state;

    metrics_observe(f, app, 0.05);
    metrics_observe(f, app, 0.5);
    metrics_observe(f, app, 50);
    render(m, &out);
    assert_non_null(strstr(out.data, "aviary_reconcile_duration_seconds_bucket{kind="
                                     "\"Application\",le=\"0.1\"} 1\n"));
    assert_non_null(strstr(out.data, "le=\"1\"} 2\n"));
    assert_non_null(strstr(out.data, "le=\"10\"} 2\n"));
    assert_non_null(strstr(out.data, "le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.data, "aviary_reconcile_duration_seconds_sum{kind="
                                     "\"Application\"} 50.55\n"));
    assert_non_null(strstr(out.data, "aviary_reconcile_duration_seconds_count{kind="
                                     "\"Application\"} 3\n"));
    aws_buf_free(&out);
    metrics_free(m);
}

static void test_gauge_reset_escape_and_bound(void **state)
{
    struct metrics *m = metrics_new();
    const char *labels[] = {"name", NULL};
    struct metric_family *g =
        metrics_register(m, METRIC_GAUGE, "aviary_queue_depth", "Keys queued.", NULL, NULL, 0);
    struct metric_family *w = metrics_register(m, METRIC_GAUGE, "aviary_canary_weight",
                                               "Canary weight.", labels, NULL, 0);
    const char *odd[] = {"a\"b\\c\nd"};
    char name[32];
    struct aws_buf out;
    (void)state;

    metrics_set(g, NULL, 4);
    metrics_set(g, NULL, 2);
    metrics_set(w, odd, 10);
    render(m, &out);
    assert_non_null(strstr(out.data, "aviary_queue_depth 2\n"));
    assert_non_null(strstr(out.data, "aviary_canary_weight{name=\"a\\\"b\\\\c\\nd\"} 10\n"));
    aws_buf_free(&out);
    metrics_reset(w);
    for (int i = 0; i < METRICS_SERIES_MAX + 5; i++) {
        const char *v[] = {name};
        snprintf(name, sizeof(name), "app-%d", i);
        metrics_set(w, v, i);
    }
    render(m, &out);
    assert_null(strstr(out.data, "a\\\"b"));
    assert_non_null(strstr(out.data, "aviary_metrics_dropped_total 5\n"));
    aws_buf_free(&out);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_with_labels),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_gauge_reset_escape_and_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
