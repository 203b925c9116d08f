/* Unit tests for `aviary status` formatting: ages, traffic bars, the
 * aligned table and the detail view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/status_view.h"

static char *capture_table(const json_t *objs, int64_t now, int detail)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    if (detail)
        status_view_detail(f, objs, now);
    else
        status_view_table(f, objs, now);
    fclose(f);
    return buf;
}

static void test_age(void **state)
{
    char out[16];
    (void)state;

    status_view_age(45, out, sizeof(out));
    assert_string_equal(out, "45s");
    status_view_age(600, out, sizeof(out));
    assert_string_equal(out, "10m");
    status_view_age(3 * 3600, out, sizeof(out));
    assert_string_equal(out, "3h");
    status_view_age(5 * 86400, out, sizeof(out));
    assert_string_equal(out, "5d");
}

static void test_traffic_bar(void **state)
{
    char out[64];
    json_t *st = json_pack("{s:{s:i}}", "rollout", "weight", 10);
    (void)state;

    status_view_traffic(st, out, sizeof(out));
    assert_string_equal(out, "[#########-] 90/10");
    json_object_set_new(json_object_get(st, "rollout"), "weight", json_integer(0));
    status_view_traffic(st, out, sizeof(out));
    assert_string_equal(out, "[##########] 100");
    json_object_del(st, "rollout");
    status_view_traffic(st, out, sizeof(out));
    assert_string_equal(out, "-");
    json_decref(st);
}

static void test_table_is_aligned(void **state)
{
    json_t *objs =
        json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s}]", "name", "fraud-model",
                  "kind", "Application", "phase", "Ready", "observedRevision", "0123456789abcdef",
                  "endpoint", "http://lb.example", "creationTime", "2026-11-27T07:00:00Z", "name",
                  "churn", "kind", "TrainingEnvironment", "phase", "Provisioning");
    /* 2026-11-27T07:10:00Z */
    char *out = capture_table(objs, 1795763400, 0);
    (void)state;

    assert_string_equal(out, "NAME         KIND                 PHASE         REVISION    TRAFFIC  "
                             "ENDPOINT           AGE\n"
                             "fraud-model  Application          Ready         0123456789  -        "
                             "http://lb.example  10m\n"
                             "churn        TrainingEnvironment  Provisioning  -           -        "
                             "-                  -\n");
    free(out);
    json_decref(objs);
}

static void test_detail_lists_conditions_and_events(void **state)
{
    json_t *obj =
        json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:s}], s:[{s:s, s:s, s:s, "
                  "s:i, s:s}]}",
                  "name", "fraud-model", "kind", "Application", "phase", "Ready", "conditions",
                  "type", "Valid", "status", "False", "reason", "InvalidSpec", "message",
                  "f.yaml:3:5: spec.port: too big", "lastTransitionTime", "2026-11-27T07:09:00Z",
                  "events", "type", "Warning", "reason", "InvalidSpec", "message",
                  "kept revision abc", "count", 2, "lastTime", "2026-11-27T07:09:30Z");
    char *out = capture_table(obj, 1795763400, 1);
    (void)state;

    assert_non_null(strstr(out, "Name:       fraud-model\n"));
    assert_non_null(strstr(out,
                           "Conditions:\nTYPE   STATUS  REASON       AGE  MESSAGE\n"
                           "Valid  False   InvalidSpec  60s  f.yaml:3:5: spec.port: too big\n"));
    assert_non_null(strstr(out, "Events:\nLAST  TYPE     REASON       COUNT  MESSAGE\n"
                                "30s   Warning  InvalidSpec  2      kept revision abc\n"));
    free(out);
    json_decref(obj);
}

static void test_detail_analysis_threshold(void **state)
{
    json_t *obj =
        json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:f, s:f, s:s, s:i, s:s}]}}", "name", "fraud-model",
                  "kind", "Application", "rollout", "analysis", "time", "2026-11-27T07:09:00Z",
                  "metric", "error-rate", "value", 0.3, "threshold", 0.02, "thresholdText",
                  "max 0.02", "samples", 120, "verdict", "Failed");
    char *out = capture_table(obj, 1795763400, 1);
    (void)state;

    assert_non_null(strstr(out, "Analysis:\nTIME                  METRIC      VALUE  THRESHOLD  "
                                "SAMPLES  VERDICT\n2026-11-27T07:09:00Z  error-rate  0.3    max "
                                "0.02   120      Failed\n"));
    free(out);
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_traffic_bar),
        cmocka_unit_test(test_table_is_aligned),
        cmocka_unit_test(test_detail_lists_conditions_and_events),
        cmocka_unit_test(test_detail_analysis_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
