/* Unit tests for canary analysis: GetMetricData queries per metric type,
 * evaluation into Successful/Failed/Inconclusive, and the bounded history. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "reconcilers/analysis.h"

static const char *const LB = "app/fraud-model-alb/50dc6c495c0c9188";
static const char *const TG[2] = {"targetgroup/fraud-model-tga/73e2d6bc24d8a067",
                                  "targetgroup/fraud-model-tgb/9d1ab0e8f1d2c3b4"};
static const char *const SVC[2] = {"fraud-model-a", "fraud-model-b"};

static void target(struct analysis_target *t)
{
    memset(t, 0, sizeof(*t));
    t->application = "fraud-model";
    t->canary_revision = "c0ffee1234";
    t->stable_revision = "5ab1e00000";
    t->canary_slot = 1;
    t->stable_slot = 0;
    t->load_balancer = LB;
    t->target_group[0] = TG[0];
    t->target_group[1] = TG[1];
    t->cluster = "aviary-fraud-model";
    t->service[0] = SVC[0];
    t->service[1] = SVC[1];
}

static json_t *spec_json(const char *metrics)
{
    char buf[4096];
    json_t *j;

    snprintf(buf, sizeof(buf),
             "{\"interval\": \"1m\", \"failureLimit\": 1, \"minRequests\": 50, \"metrics\": %s}",
             metrics);
    j = json_loads(buf, 0, NULL);
    assert_non_null(j);
    return j;
}

static void parse(const json_t *j, struct analysis_spec *spec)
{
    char err[200] = "";

    if (analysis_spec_parse(j, spec, err, sizeof(err)) != 0)
        fail_msg("parse: %s", err);
}

static const json_t *find(const json_t *queries, const char *id)
{
    size_t i;

    for (i = 0; i < json_array_size(queries); i++) {
        const json_t *q = json_array_get(queries, i);

        if (strcmp(json_string_value(json_object_get(q, "Id")), id) == 0)
            return q;
    }
    fail_msg("no query %s", id);
    return NULL;
}

static const char *dim_value(const json_t *q, const char *name)
{
    const json_t *dims =
        json_object_get(json_object_get(json_object_get(q, "MetricStat"), "Metric"), "Dimensions");
    size_t i;

    for (i = 0; i < json_array_size(dims); i++) {
        const json_t *d = json_array_get(dims, i);

        if (strcmp(json_string_value(json_object_get(d, "Name")), name) == 0)
            return json_string_value(json_object_get(d, "Value"));
    }
    return NULL;
}

static const char *metric_field(const json_t *q, const char *field)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(q, "MetricStat"), "Metric"), field));
}

static const char *stat_of(const json_t *q)
{
    return json_string_value(json_object_get(json_object_get(q, "MetricStat"), "Stat"));
}

#define ALL_METRICS                                                                                \
    "[{\"name\": \"error-rate\", \"type\": \"errorRate\", \"max\": 0.02},"                         \
    " {\"name\": \"err-vs-stable\", \"type\": \"errorRate\", \"compare\": \"stable\","             \
    "  \"maxIncrease\": 0.01},"                                                                    \
    " {\"name\": \"p99\", \"type\": \"latency\", \"stat\": \"p99.9\", \"max\": 0.8},"              \
    " {\"name\": \"cpu\", \"type\": \"cpu\", \"max\": 80},"                                        \
    " {\"name\": \"mem\", \"type\": \"memory\", \"max\": 90, \"min\": 1},"                         \
    " {\"name\": \"model-error\", \"type\": \"cloudwatch\", \"max\": 0.05, \"compare\": "          \
    "\"stable\", \"maxIncrease\": 0.01, \"query\": {\"namespace\": \"Fraud/Model\","               \
    "  \"metricName\": \"PredictionErrorRate\", \"stat\": \"Average\", \"dimensions\": "           \
    "{\"Revision\": \"${revision}\", \"Where\": \"${application}-${slot}\"}}}]"

static void test_queries_per_type(void **state)
{
    struct analysis_spec spec;
    struct analysis_target t;
    json_t *j = spec_json(ALL_METRICS), *qs;
    const json_t *q;
    char err[200] = "";
    regex_t re;
    size_t i, k;

    (void)state;
    parse(j, &spec);
    assert_int_equal(spec.n_metrics, 6);
    assert_int_equal(spec.period_s, 60);
    target(&t);
    qs = analysis_build_queries(&spec, &t, err, sizeof(err));
    assert_non_null(qs);
    /* req_c, m0_c, m1_c, m1_s, m2_c, m3_c, m4_c, m5_c, m5_s, req_s */
    assert_int_equal(json_array_size(qs), 10);
    assert_int_equal(regcomp(&re, "^[a-z][a-zA-Z0-9_]*$", REG_EXTENDED | REG_NOSUB), 0);
    for (i = 0; i < json_array_size(qs); i++) {
        const json_t *qi = json_array_get(qs, i);
        const char *id = json_string_value(json_object_get(qi, "Id"));

        assert_int_equal(regexec(&re, id, 0, NULL, 0), 0);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(qi, "MetricStat"), "Period")), 60);
        assert_true(json_is_true(json_object_get(qi, "ReturnData")));
        for (k = 0; k < i; k++)
            assert_string_not_equal(
                id, json_string_value(json_object_get(json_array_get(qs, k), "Id")));
    }
    regfree(&re);

    q = find(qs, "req_c");
    assert_string_equal(metric_field(q, "Namespace"), "AWS/ApplicationELB");
    assert_string_equal(metric_field(q, "MetricName"), "RequestCount");
    assert_string_equal(stat_of(q), "Sum");
    assert_string_equal(dim_value(q, "LoadBalancer"), LB);
    assert_string_equal(dim_value(q, "TargetGroup"), TG[1]);
    q = find(qs, "req_s");
    assert_string_equal(dim_value(q, "TargetGroup"), TG[0]);
    q = find(qs, "m0_c");
    assert_string_equal(metric_field(q, "MetricName"), "HTTPCode_Target_5XX_Count");
    assert_string_equal(stat_of(q), "Sum");
    q = find(qs, "m1_s");
    assert_string_equal(metric_field(q, "MetricName"), "HTTPCode_Target_5XX_Count");
    assert_string_equal(dim_value(q, "TargetGroup"), TG[0]);
    q = find(qs, "m2_c");
    assert_string_equal(metric_field(q, "MetricName"), "TargetResponseTime");
    assert_string_equal(stat_of(q), "p99.9");
    q = find(qs, "m3_c");
    assert_string_equal(metric_field(q, "Namespace"), "AWS/ECS");
    assert_string_equal(metric_field(q, "MetricName"), "CPUUtilization");
    assert_string_equal(stat_of(q), "Average");
    assert_string_equal(dim_value(q, "ClusterName"), "aviary-fraud-model");
    assert_string_equal(dim_value(q, "ServiceName"), SVC[1]);
    q = find(qs, "m4_c");
    assert_string_equal(metric_field(q, "MetricName"), "MemoryUtilization");
    q = find(qs, "m5_c");
    assert_string_equal(metric_field(q, "Namespace"), "Fraud/Model");
    assert_string_equal(dim_value(q, "Revision"), "c0ffee1234");
    assert_string_equal(dim_value(q, "Where"), "fraud-model-b");
    q = find(qs, "m5_s");
    assert_string_equal(dim_value(q, "Revision"), "5ab1e00000");
    assert_string_equal(dim_value(q, "Where"), "fraud-model-a");
    json_decref(qs);

    /* No load balancer yet: a clear error, no queries. */
    t.load_balancer = NULL;
    assert_null(analysis_build_queries(&spec, &t, err, sizeof(err)));
    assert_non_null(strstr(err, "load balancer"));
    json_decref(j);
}

static void test_request_window(void **state)
{
    json_t *qs = json_pack("[{s:s}]", "Id", "req_c");
    json_t *in = analysis_request(qs, 1700000000, 1700000060);

    (void)state;
    assert_int_equal(json_integer_value(json_object_get(in, "StartTime")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(in, "EndTime")), 1700000060);
    assert_true(json_equal(json_object_get(in, "MetricDataQueries"), qs));
    json_decref(in);
    json_decref(qs);
}

static void test_periods(void **state)
{
    static const struct {
        int64_t interval_ms;
        int period;
    } cases[] = {{1000, 1},     {4999, 1},     {5000, 5},   {9000, 5},   {10000, 10},
                 {29000, 10},   {30000, 30},   {45000, 30}, {60000, 60}, {90000, 60},
                 {120000, 120}, {600000, 600}, {500, 1}};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(analysis_period_s(cases[i].interval_ms), cases[i].period);
    assert_int_equal(analysis_grid_ms(5), 5000);
    assert_int_equal(analysis_grid_ms(300), 60000);
}

/* Results as GetMetricData returns them: id -> values. */
static json_t *results(const char *spec)
{
    json_t *j = json_loads(spec, 0, NULL);
    json_t *out = json_array();
    const char *id;
    json_t *vals;

    assert_non_null(j);
    json_object_foreach(j, id, vals)
    {
        json_t *ts = json_array();
        size_t i;

        for (i = 0; i < json_array_size(vals); i++)
            json_array_append_new(ts, json_integer(1700000000 + (json_int_t)i * 60));
        json_array_append_new(out, json_pack("{s:s, s:o, s:O, s:s}", "Id", id, "Timestamps", ts,
                                             "Values", vals, "StatusCode", "Complete"));
    }
    json_decref(j);
    return out;
}

static enum analysis_verdict eval_one(const char *metrics, const char *res_json,
                                      struct analysis_measurement *m, struct analysis_round *r)
{
    struct analysis_spec spec;
    json_t *j = spec_json(metrics), *res = results(res_json);

    parse(j, &spec);
    assert_int_equal(analysis_evaluate(&spec, res, 1000, 61000, m, r), 0);
    json_decref(res);
    json_decref(j);
    return m[0].verdict;
}

static void test_error_rate(void **state)
{
    struct analysis_measurement m[ANALYSIS_MAX_METRICS];
    struct analysis_round r;
    const char *er = "[{\"name\": \"error-rate\", \"type\": \"errorRate\", \"max\": 0.02}]";

    (void)state;
    /* 3 / 200 = 0.015: within 0.02 */
    assert_int_equal(eval_one(er, "{\"req_c\": [200], \"m0_c\": [3]}", m, &r), ANALYSIS_SUCCESSFUL);
    assert_true(m[0].value > 0.0149 && m[0].value < 0.0151);
    assert_int_equal(m[0].samples, 200);
    /* Datapoints add up: (4 + 6) / (100 + 150) = 0.04 */
    assert_int_equal(eval_one(er, "{\"req_c\": [100, 150], \"m0_c\": [4, 6]}", m, &r),
                     ANALYSIS_FAILED);
    assert_true(m[0].value > 0.0399 && m[0].value < 0.0401);
    assert_true(m[0].threshold == 0.02);
    assert_int_equal(r.verdict, ANALYSIS_FAILED);
    assert_string_equal(r.metric, "error-rate");
    assert_non_null(strstr(r.detail, "> max 0.02"));
    /* ALB writes no 5XX datapoint when there were none: 0 errors. */
    assert_int_equal(eval_one(er, "{\"req_c\": [500]}", m, &r), ANALYSIS_SUCCESSFUL);
    assert_true(m[0].value == 0);
    /* Too few requests: neither pass nor fail. */
    assert_int_equal(eval_one(er, "{\"req_c\": [49], \"m0_c\": [49]}", m, &r),
                     ANALYSIS_INCONCLUSIVE);
    assert_non_null(strstr(m[0].reason, "minRequests 50"));
    /* No datapoints at all. */
    assert_int_equal(eval_one(er, "{}", m, &r), ANALYSIS_INCONCLUSIVE);
    assert_int_equal(r.verdict, ANALYSIS_INCONCLUSIVE);
}

/* minRequests 0 turns the request gate off: a smoke test's own metric is
 * judged on its datapoints even when the canary got no requests. */
static void test_min_requests_zero(void **state)
{
    struct analysis_measurement m[ANALYSIS_MAX_METRICS];
    struct analysis_round r;
    struct analysis_spec spec;
    json_t *j = json_loads("{\"interval\": \"1m\", \"minRequests\": 0, \"metrics\": [{\"name\": "
                           "\"smoke\", \"type\": \"cloudwatch\", \"max\": 0.05, \"query\": "
                           "{\"namespace\": \"Smoke/Test\", \"metricName\": \"ErrorRate\", "
                           "\"stat\": \"Average\"}}]}",
                           0, NULL);
    json_t *res = results("{\"m0_c\": [0.01]}"), *none = results("{}");

    (void)state;
    parse(j, &spec);
    assert_int_equal(analysis_evaluate(&spec, res, 1000, 61000, m, &r), 0);
    assert_int_equal(m[0].verdict, ANALYSIS_SUCCESSFUL);
    /* Still no promotion on nothing: no datapoints is Inconclusive. */
    assert_int_equal(analysis_evaluate(&spec, none, 1000, 61000, m, &r), 0);
    assert_int_equal(m[0].verdict, ANALYSIS_INCONCLUSIVE);
    json_decref(res);
    json_decref(none);
    json_decref(j);
}

static void test_thresholds_and_combining(void **state)
{
    struct analysis_measurement m[ANALYSIS_MAX_METRICS];
    struct analysis_round r;

    (void)state;
    /* latency p99: the worst bucket counts */
    assert_int_equal(eval_one("[{\"name\": \"p99\", \"type\": \"latency\", \"max\": 0.8}]",
                              "{\"req_c\": [100, 100], \"m0_c\": [0.3, 0.9]}", m, &r),
                     ANALYSIS_FAILED);
    assert_true(m[0].value == 0.9);
    /* cpu Average: buckets averaged (70 + 90) / 2 = 80, not above max 80 */
    assert_int_equal(eval_one("[{\"name\": \"cpu\", \"type\": \"cpu\", \"max\": 80}]",
                              "{\"req_c\": [100], \"m0_c\": [70, 90]}", m, &r),
                     ANALYSIS_SUCCESSFUL);
    assert_true(m[0].value == 80);
    /* min */
    assert_int_equal(eval_one("[{\"name\": \"mem\", \"type\": \"memory\", \"min\": 5}]",
                              "{\"req_c\": [100], \"m0_c\": [2]}", m, &r),
                     ANALYSIS_FAILED);
    assert_string_equal(m[0].threshold_text, "min 5");
    /* cpu without datapoints (no running tasks) */
    assert_int_equal(eval_one("[{\"name\": \"cpu\", \"type\": \"cpu\", \"max\": 80}]",
                              "{\"req_c\": [100]}", m, &r),
                     ANALYSIS_INCONCLUSIVE);
    assert_string_equal(m[0].reason, "no datapoints");
}

static void test_compare_stable(void **state)
{
    struct analysis_measurement m[ANALYSIS_MAX_METRICS];
    struct analysis_round r;
    const char *cmp = "[{\"name\": \"err\", \"type\": \"errorRate\", \"compare\": \"stable\","
                      " \"maxIncrease\": 0.01}]";

    (void)state;
    /* canary 3% vs stable 1%: worse by 2 points, no absolute threshold crossed */
    assert_int_equal(eval_one(cmp,
                              "{\"req_c\": [100], \"m0_c\": [3], \"req_s\": [900],"
                              " \"m0_s\": [9]}",
                              m, &r),
                     ANALYSIS_FAILED);
    assert_true(m[0].has_stable);
    assert_true(m[0].stable_value > 0.0099 && m[0].stable_value < 0.0101);
    assert_true(m[0].threshold > 0.0199 && m[0].threshold < 0.0201);
    /* canary 1.5% vs 1%: within */
    assert_int_equal(eval_one(cmp,
                              "{\"req_c\": [200], \"m0_c\": [3], \"req_s\": [900],"
                              " \"m0_s\": [9]}",
                              m, &r),
                     ANALYSIS_SUCCESSFUL);
    /* no stable traffic: cannot compare */
    assert_int_equal(eval_one(cmp, "{\"req_c\": [200], \"m0_c\": [3]}", m, &r),
                     ANALYSIS_INCONCLUSIVE);
}

static void test_round_summary(void **state)
{
    struct analysis_measurement m[ANALYSIS_MAX_METRICS];
    struct analysis_round r;
    const char *two = "[{\"name\": \"cpu\", \"type\": \"cpu\", \"max\": 80},"
                      " {\"name\": \"p99\", \"type\": \"latency\", \"max\": 0.5}]";

    (void)state;
    /* cpu inconclusive (no data), latency failed: the round failed on p99 */
    eval_one(two, "{\"req_c\": [100], \"m1_c\": [0.7]}", m, &r);
    assert_int_equal(m[0].verdict, ANALYSIS_INCONCLUSIVE);
    assert_int_equal(m[1].verdict, ANALYSIS_FAILED);
    assert_int_equal(r.verdict, ANALYSIS_FAILED);
    assert_string_equal(r.metric, "p99");
    assert_true(r.value == 0.7 && r.threshold == 0.5);
    assert_int_equal(r.samples, 100);
    assert_int_equal(r.window_start_ms, 1000);
    assert_int_equal(r.window_end_ms, 61000);
    eval_one(two, "{\"req_c\": [100], \"m1_c\": [0.2]}", m, &r);
    assert_int_equal(r.verdict, ANALYSIS_INCONCLUSIVE);
    assert_string_equal(r.metric, "cpu");
    eval_one(two, "{\"req_c\": [100], \"m0_c\": [20], \"m1_c\": [0.2]}", m, &r);
    assert_int_equal(r.verdict, ANALYSIS_SUCCESSFUL);
}

static void test_history_bounded(void **state)
{
    struct analysis_measurement m[3];
    json_t *h = json_array();
    const json_t *last;
    int i;

    (void)state;
    memset(m, 0, sizeof(m));
    for (i = 0; i < 3; i++) {
        snprintf(m[i].metric, sizeof(m[i].metric), "metric-%d", i);
        m[i].time_ms = 1700000060000LL;
        m[i].window_start_ms = 1700000000000LL;
        m[i].window_end_ms = 1700000060000LL;
        m[i].has_value = i != 2;
        m[i].value = 0.5 * i;
        m[i].threshold = 1;
        m[i].samples = 100;
        m[i].verdict = i == 2 ? ANALYSIS_INCONCLUSIVE : ANALYSIS_SUCCESSFUL;
    }
    for (i = 0; i < 40; i++)
        assert_int_equal(analysis_history_append(h, m, 3, 2, 20), 0);
    assert_int_equal(json_array_size(h), ANALYSIS_HISTORY_MAX);
    last = json_array_get(h, ANALYSIS_HISTORY_MAX - 1);
    assert_string_equal(json_string_value(json_object_get(last, "metric")), "metric-2");
    assert_string_equal(json_string_value(json_object_get(last, "verdict")), "Inconclusive");
    assert_null(json_object_get(last, "value"));
    assert_string_equal(json_string_value(json_object_get(last, "time")), "2023-11-14T22:14:20Z");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(last, "window"), "start")),
        "2023-11-14T22:13:20Z");
    assert_int_equal(json_integer_value(json_object_get(last, "samples")), 100);
    assert_int_equal(json_integer_value(json_object_get(last, "weight")), 20);
    last = json_array_get(h, ANALYSIS_HISTORY_MAX - 2);
    assert_true(json_real_value(json_object_get(last, "value")) == 0.5);
    assert_int_equal(analysis_history_append(NULL, m, 1, 0, 0), -1);
    json_decref(h);
}

static void test_spec_errors(void **state)
{
    static const struct {
        const char *metrics, *want;
    } cases[] = {
        {"[{\"name\": \"x\", \"type\": \"bogus\", \"max\": 1}]", "unknown type"},
        {"[{\"name\": \"x\", \"type\": \"cpu\"}]", "needs max, min or compare"},
        {"[{\"name\": \"x\", \"type\": \"cpu\", \"compare\": \"stable\"}]", "requires maxIncrease"},
        {"[{\"name\": \"x\", \"type\": \"cloudwatch\", \"max\": 1}]", "query.namespace"},
        {"[{\"type\": \"cpu\", \"max\": 1}]", "name and type"},
    };
    struct analysis_spec spec;
    char err[200];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = spec_json(cases[i].metrics);

        err[0] = '\0';
        assert_int_equal(analysis_spec_parse(j, &spec, err, sizeof(err)), -1);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("%s: got \"%s\"", cases[i].metrics, err);
        json_decref(j);
    }
    /* Defaults without an analysis object: one error-rate metric, max 0.05. */
    assert_int_equal(analysis_spec_parse(NULL, &spec, err, sizeof(err)), 0);
    assert_int_equal(spec.n_metrics, 1);
    assert_int_equal(spec.metrics[0].type, ANALYSIS_ERROR_RATE);
    assert_true(spec.metrics[0].max == 0.05);
    assert_int_equal(spec.inconclusive_limit, 5);
    assert_int_equal(spec.min_requests, 50);
}

static void test_verdict_names(void **state)
{
    enum analysis_verdict v;

    (void)state;
    assert_int_equal(analysis_verdict_parse("Failed", &v), 0);
    assert_int_equal(v, ANALYSIS_FAILED);
    assert_int_equal(analysis_verdict_parse("failed", &v), -1);
    assert_string_equal(analysis_verdict_name(ANALYSIS_INCONCLUSIVE), "Inconclusive");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queries_per_type),  cmocka_unit_test(test_request_window),
        cmocka_unit_test(test_periods),           cmocka_unit_test(test_error_rate),
        cmocka_unit_test(test_min_requests_zero), cmocka_unit_test(test_thresholds_and_combining),
        cmocka_unit_test(test_compare_stable),    cmocka_unit_test(test_round_summary),
        cmocka_unit_test(test_history_bounded),   cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_verdict_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
