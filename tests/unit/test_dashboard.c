/* Tests for the dashboard concern (reconcilers/dashboard.c) against the local
 * AWS emulator: the widgets and what they read, quiet when converged (the
 * body is compared as JSON), hand edits restored, updates, the spec toggle,
 * a dashboard aviary did not make left alone, plan mode, deletion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aws/client.h"
#include "reconcilers/app.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define APP       "demo"
#define NAME      "aviary-" APP
#define LB        "app/demo-alb/50dc6c495c0c9188"
#define TGA       "targetgroup/demo-tga/73e2d6bc24d8a067"
#define TGB       "targetgroup/demo-tgb/5a1c0de3b1a2c3d4"
#define ALARM_OUT "arn:aws:cloudwatch:us-east-1:123456789012:alarm:aviary-demo-scale-out-cpu"
#define ALARM_IN  "arn:aws:cloudwatch:us-east-1:123456789012:alarm:aviary-demo-scale-in-cpu"

struct fixture {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    struct reconcile_request req;
};

static json_t *call(struct fixture *f, const char *service, const char *op, json_t *in)
{
    struct aws_error err;
    json_t *out = NULL;

    if (aws_call(f->emu.client, service, op, in, &out, &err) != 0)
        fail_msg("%s.%s: %s: %s", service, op, err.code, err.message);
    json_decref(in);
    return out;
}

static const char *str(const json_t *v, const char *key)
{
    return json_string_value(json_object_get(v, key));
}

static void set_spec(struct fixture *f, bool dashboard)
{
    json_decref(f->spec);
    f->spec = json_pack("{s:s, s:i, s:b}", "image", "example/app:1", "port", 8080, "dashboard",
                        dashboard);
    f->req.spec = f->spec;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    json_t *res;

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0)
        return -1;
    f->status = status_new("Application", APP);
    res = json_object();
    json_object_set_new(f->status, "resources", res);
    /* what the earlier concerns record */
    json_object_set_new(res, "cluster", json_pack("{s:s}", "clusterName", "aviary-" APP));
    json_object_set_new(res, "service",
                        json_pack("{s:[{s:s}, {s:s}], s:s}", "services", "name", APP "-a", "name",
                                  APP "-b", "stableSlot", "a"));
    json_object_set_new(res, "loadbalancer",
                        json_pack("{s:s, s:[s,s]}", "lbDimension", LB, "tgDimensions", TGA, TGB));
    json_object_set_new(res, "notifications",
                        json_pack("{s:[s,s]}", "alarmArns", ALARM_OUT, ALARM_IN));
    f->req.kind = "Application";
    f->req.name = APP;
    f->req.revision = "rev1";
    f->req.now = (int64_t)time(NULL);
    f->req.reconcile_id = "test";
    f->req.aws = f->emu.client;
    set_spec(f, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    test_emulator_stop(&f->emu);
    json_decref(f->spec);
    json_decref(f->status);
    free(f);
    return 0;
}

static enum app_step run(struct fixture *f, bool plan, bool deleting, int *writes, char *error,
                         size_t size)
{
    struct app_ctx ctx;
    enum app_step step;

    app_ctx_init(&ctx, &f->req, f->status, plan);
    step = deleting ? dashboard_delete(&ctx) : dashboard_converge(&ctx);
    if (error != NULL)
        snprintf(error, size, "%.900s%s", ctx.error, ctx.terminal ? " [terminal]" : "");
    else if (step == APP_STEP_FAILED)
        fail_msg("dashboard: %s", ctx.error);
    if (writes != NULL)
        *writes = plan ? (int)json_array_size(ctx.plan_actions) : ctx.writes;
    app_ctx_clear(&ctx);
    return step;
}

static void converge(struct fixture *f)
{
    assert_int_equal(run(f, false, false, NULL, NULL, 0), APP_STEP_READY);
}

static void clear_calls(struct fixture *f)
{
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
}

/* The stored body, parsed, or NULL when there is no dashboard. */
static json_t *body(struct fixture *f)
{
    json_t *in = json_pack("{s:s}", "DashboardName", NAME), *out = NULL, *b;
    struct aws_error err;
    json_error_t jerr;

    if (aws_call(f->emu.client, "cloudwatch", "GetDashboard", in, &out, &err) != 0) {
        json_decref(in);
        assert_string_equal(err.code, "ResourceNotFound");
        return NULL;
    }
    json_decref(in);
    b = json_loads(str(out, "DashboardBody"), 0, &jerr);
    assert_non_null(b);
    json_decref(out);
    return b;
}

static void put_body(struct fixture *f, const json_t *b, size_t flags)
{
    char *text = json_dumps(b, flags);
    json_decref(call(f, "cloudwatch", "PutDashboard",
                     json_pack("{s:s, s:s}", "DashboardName", NAME, "DashboardBody", text)));
    free(text);
}

/* The widget whose title is `title` (borrowed), or NULL. */
static json_t *find_widget(json_t *b, const char *title)
{
    json_t *w;
    size_t i;

    json_array_foreach(json_object_get(b, "widgets"), i, w)
    {
        const char *t = str(json_object_get(w, "properties"), "title");
        if (t != NULL && strcmp(t, title) == 0)
            return w;
    }
    return NULL;
}

/* metrics[i] of a widget as compact JSON text (caller frees). */
static char *metric_text(json_t *w, size_t i)
{
    return json_dumps(
        json_array_get(json_object_get(json_object_get(w, "properties"), "metrics"), i),
        JSON_COMPACT);
}

static void assert_metric(json_t *w, size_t i, const char *expected)
{
    char *t;

    assert_non_null(w);
    t = metric_text(w, i);
    assert_non_null(t);
    assert_string_equal(t, expected);
    free(t);
}

static bool has_event(struct fixture *f, const char *reason)
{
    json_t *e;
    size_t i;

    json_array_foreach(json_object_get(f->status, "events"), i, e)
    {
        if (strcmp(str(e, "reason"), reason) == 0)
            return true;
    }
    return false;
}

static void test_create_then_quiet(void **state)
{
    struct fixture *f = *state;
    json_t *b, *w;
    int writes = -1;

    converge(f);
    assert_string_equal(str(f->status, "dashboardUrl"),
                        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
                        "#dashboards:name=" NAME);
    assert_string_equal(
        str(json_object_get(json_object_get(f->status, "resources"), "dashboard"), "dashboardName"),
        NAME);
    b = body(f);
    assert_non_null(b);
    w = find_widget(b, "Requests per slot");
    assert_metric(w, 0,
                  "[\"AWS/ApplicationELB\",\"RequestCount\",\"LoadBalancer\",\"" LB
                  "\",\"TargetGroup\",\"" TGA "\",{\"label\":\"slot a\"}]");
    assert_metric(w, 1,
                  "[\"AWS/ApplicationELB\",\"RequestCount\",\"LoadBalancer\",\"" LB
                  "\",\"TargetGroup\",\"" TGB "\",{\"label\":\"slot b\"}]");
    assert_string_equal(str(json_object_get(w, "properties"), "stat"), "Sum");
    assert_string_equal(str(json_object_get(w, "properties"), "region"), "us-east-1");
    w = find_widget(b, "5xx rate per slot (%)");
    assert_metric(w, 0,
                  "[{\"expression\":\"100 * FILL(errorsa, 0) / requestsa\",\"id\":\"ratea\","
                  "\"label\":\"slot a 5xx %\"}]");
    assert_metric(w, 1,
                  "[\"AWS/ApplicationELB\",\"HTTPCode_Target_5XX_Count\",\"LoadBalancer\",\"" LB
                  "\",\"TargetGroup\",\"" TGA "\",{\"id\":\"errorsa\",\"stat\":\"Sum\","
                  "\"visible\":false}]");
    assert_metric(w, 5,
                  "[\"AWS/ApplicationELB\",\"RequestCount\",\"LoadBalancer\",\"" LB
                  "\",\"TargetGroup\",\"" TGB "\",{\"id\":\"requestsb\",\"stat\":\"Sum\","
                  "\"visible\":false}]");
    w = find_widget(b, "p99 latency per slot (seconds)");
    assert_string_equal(str(json_object_get(w, "properties"), "stat"), "p99");
    assert_metric(w, 0,
                  "[\"AWS/ApplicationELB\",\"TargetResponseTime\",\"LoadBalancer\",\"" LB
                  "\",\"TargetGroup\",\"" TGA "\",{\"label\":\"slot a\"}]");
    assert_metric(find_widget(b, "CPU per service (%)"), 1,
                  "[\"AWS/ECS\",\"CPUUtilization\",\"ClusterName\",\"aviary-demo\","
                  "\"ServiceName\",\"demo-b\"]");
    assert_metric(find_widget(b, "Memory per service (%)"), 0,
                  "[\"AWS/ECS\",\"MemoryUtilization\",\"ClusterName\",\"aviary-demo\","
                  "\"ServiceName\",\"demo-a\"]");
    assert_metric(find_widget(b, "Running tasks per service"), 0,
                  "[\"ECS/ContainerInsights\",\"RunningTaskCount\",\"ClusterName\","
                  "\"aviary-demo\",\"ServiceName\",\"demo-a\"]");
    assert_metric(find_widget(b, "Canary weight (%)"), 0,
                  "[\"Aviary\",\"CanaryWeight\",\"Application\",\"demo\"]");
    assert_metric(find_widget(b, "Model age (seconds)"), 0,
                  "[\"Aviary/Model\",\"ModelAgeSeconds\",\"Application\",\"demo\"]");
    w = find_widget(b, "Scaling alarms");
    assert_non_null(w);
    assert_string_equal(str(w, "type"), "alarm");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(w, "properties"), "alarms"), 1)),
                        ALARM_IN);
    assert_non_null(
        strstr(str(json_object_get(json_array_get(json_object_get(b, "widgets"), 0), "properties"),
                   "markdown"),
               "`aviary.io/application=demo`"));

    clear_calls(f);
    assert_int_equal(run(f, false, false, &writes, NULL, 0), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 0), 1);

    /* The same body stored with other formatting and key order is the same
     * dashboard: still no write. */
    put_body(f, b, JSON_INDENT(2));
    clear_calls(f);
    assert_int_equal(run(f, false, false, &writes, NULL, 0), APP_STEP_READY);
    assert_int_equal(writes, 0);
    json_decref(b);
}

static void test_hand_edit_restored(void **state)
{
    struct fixture *f = *state;
    json_t *b, *edited, *w;

    converge(f);
    b = body(f);
    /* someone removes the latency widget and retitles the CPU one */
    edited = json_deep_copy(b);
    w = find_widget(edited, "p99 latency per slot (seconds)");
    for (size_t i = 0; i < json_array_size(json_object_get(edited, "widgets")); i++)
        if (json_array_get(json_object_get(edited, "widgets"), i) == w)
            json_array_remove(json_object_get(edited, "widgets"), i);
    json_object_set_new(json_object_get(find_widget(edited, "CPU per service (%)"), "properties"),
                        "title", json_string("mine"));
    put_body(f, edited, JSON_COMPACT);
    json_decref(edited);
    converge(f);
    edited = body(f);
    assert_true(json_equal(edited, b));
    json_decref(edited);
    assert_true(has_event(f, "DriftCorrected"));

    /* even with the header (the ownership marker) gone: aviary recorded it */
    edited = json_pack("{s:[]}", "widgets");
    put_body(f, edited, JSON_COMPACT);
    json_decref(edited);
    converge(f);
    edited = body(f);
    assert_true(json_equal(edited, b));
    json_decref(edited);
    json_decref(b);
}

static void test_update_follows_resources(void **state)
{
    struct fixture *f = *state;
    json_t *b, *res = json_object_get(f->status, "resources");

    converge(f);
    /* onScaling turned off: no alarms, no alarm widget */
    json_object_set_new(json_object_get(res, "notifications"), "alarmArns", json_array());
    converge(f);
    b = body(f);
    assert_null(find_widget(b, "Scaling alarms"));
    json_decref(b);
    assert_false(has_event(f, "DriftCorrected"));
    assert_true(has_event(f, "Updated"));
}

static void test_toggle_off_and_on(void **state)
{
    struct fixture *f = *state;
    json_t *b;

    converge(f);
    set_spec(f, false);
    converge(f);
    assert_null(body(f));
    assert_null(json_object_get(f->status, "dashboardUrl"));
    /* off and absent: quiet */
    clear_calls(f);
    converge(f);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    set_spec(f, true);
    converge(f);
    b = body(f);
    assert_non_null(b);
    json_decref(b);
    assert_non_null(json_object_get(f->status, "dashboardUrl"));
}

static void test_foreign_dashboard_left_alone(void **state)
{
    struct fixture *f = *state;
    char error[1100];
    json_t *b = json_pack("{s:[{s:s, s:{s:s}}]}", "widgets", "type", "text", "properties",
                          "markdown", "# somebody else's");
    json_t *after;

    put_body(f, b, JSON_COMPACT);
    clear_calls(f);
    assert_int_equal(run(f, false, false, NULL, error, sizeof(error)), APP_STEP_FAILED);
    assert_non_null(strstr(error, "not made by aviary"));
    assert_non_null(strstr(error, "[terminal]"));
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_int_equal(run(f, false, true, NULL, NULL, 0), APP_STEP_READY);
    after = body(f);
    assert_true(json_equal(after, b));
    json_decref(after);
    json_decref(b);
}

static void test_plan_makes_no_change(void **state)
{
    struct fixture *f = *state;
    int actions = 0;
    json_t *b;

    clear_calls(f);
    assert_int_equal(run(f, true, false, &actions, NULL, 0), APP_STEP_READY);
    assert_int_equal(actions, 2); /* the create note and the PutDashboard call */
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_null(body(f));

    converge(f);
    set_spec(f, false);
    clear_calls(f);
    assert_int_equal(run(f, true, false, &actions, NULL, 0), APP_STEP_READY);
    assert_int_equal(actions, 2);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    b = body(f);
    assert_non_null(b);
    json_decref(b);
}

static void test_delete_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    json_t *list;

    converge(f);
    assert_int_equal(run(f, false, true, NULL, NULL, 0), APP_STEP_READY);
    assert_null(body(f));
    assert_null(json_object_get(f->status, "dashboardUrl"));
    list = call(f, "cloudwatch", "ListDashboards", json_object());
    assert_int_equal(json_array_size(json_object_get(list, "DashboardEntries")), 0);
    json_decref(list);
    clear_calls(f);
    assert_int_equal(run(f, false, true, NULL, NULL, 0), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hand_edit_restored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_follows_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toggle_off_and_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_dashboard_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_makes_no_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
