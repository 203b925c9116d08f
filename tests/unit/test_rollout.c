/* Tests for the rollout concern (reconcilers/rollout.c) through the whole
 * Application reconciler against the local AWS emulator, with second-scale
 * intervals and the emulator's clock moved forward instead of sleeping: a
 * good canary walks every step and promotes, a canary answering 5xx rolls
 * back at the first step with exactly one SNS alert and one webhook call,
 * unhealthy canary tasks hit the progress deadline, blue/green waits for
 * `aviary promote` behind the test listener and switches in one call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reconcilers/alerts.h"
#include "reconcilers/app.h"
#include "reconcilers/metrics_batcher.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define APP       "roll"
#define IMAGE1    "docker.io/acme/model:1"
#define IMAGE2    "docker.io/acme/model:2"
#define REV1      "r1000000001"
#define REV2      "r2000000002"
#define MAX_STEPS 150 /* reconciles per phase of a test (bounded loops) */
#define STEP_S    2   /* emulated seconds between reconciles */

static const char *SPEC_JSON =
    "{\"image\": \"" IMAGE1 "\", \"port\": 8080,"
    " \"scaling\": {\"min\": 2, \"max\": 4, \"cpuPercent\": 70, \"scaleOutCooldown\": \"1m\","
    "  \"scaleInCooldown\": \"5m\"},"
    " \"network\": {\"cidr\": \"10.7.0.0/16\", \"natGateway\": false},"
    " \"notifications\": {\"onScaling\": false, \"email\": [], \"onPromotion\": false,"
    "  \"webhooks\": [{\"url\": \"WEBHOOK\", \"format\": \"slack\"}]},"
    " \"rollout\": {\"strategy\": \"canary\", \"scaleDownDelay\": \"5s\","
    "  \"progressDeadline\": \"40s\","
    "  \"canary\": {\"steps\": [{\"setWeight\": 20}, {\"pause\": {\"duration\": \"20s\"}},"
    "   {\"setWeight\": 50}, {\"pause\": {\"duration\": \"20s\"}}]},"
    "  \"analysis\": {\"interval\": \"10s\", \"failureLimit\": 0, \"minRequests\": 10,"
    "   \"inconclusiveLimit\": 5,"
    "   \"metrics\": [{\"name\": \"error-rate\", \"type\": \"errorRate\", \"max\": 0.05}]},"
    "  \"blueGreen\": {\"testPort\": 8080, \"autoPromote\": true,"
    "   \"prePromotion\": {\"measurements\": 3}}},"
    " \"cpu\": 256, \"memory\": 512, \"architecture\": \"X86_64\","
    " \"healthCheck\": {\"path\": \"/\", \"interval\": \"15s\", \"timeout\": \"5s\","
    "  \"healthyThreshold\": 3, \"unhealthyThreshold\": 3, \"matcher\": \"200-399\","
    "  \"gracePeriod\": \"30s\"},"
    " \"logs\": {\"retentionDays\": 30}, \"registry\": {\"keepImages\": 20, \"scanOnPush\": true},"
    " \"dashboard\": true, \"deletionPolicy\": \"Delete\"}";

struct fx {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    char revision[32];
    json_t *command; /* the next reconcile's manual command, or NULL */
    struct reconcile_result last;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char url[128];

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0) {
        free(f);
        return -1;
    }
    f->spec = json_loads(SPEC_JSON, 0, NULL);
    snprintf(url, sizeof(url), "%s/_emulator/webhooks/team", f->emu.url);
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(f->spec, "notifications"), "webhooks"), 0),
        "url", json_string(url));
    f->status = status_new("Application", APP);
    snprintf(f->revision, sizeof(f->revision), "%s", REV1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    json_decref(f->spec);
    json_decref(f->status);
    json_decref(f->command);
    /* The shared batcher and transport hold this emulator's client. */
    metrics_batcher_shared_free();
    alerts_http_shared_free();
    test_emulator_stop(&f->emu);
    free(f);
    return 0;
}

static double emu_now(struct fx *f)
{
    json_t *c = test_emulator_control(&f->emu, "GET", "clock", NULL);
    double now = json_number_value(json_object_get(c, "now"));

    json_decref(c);
    assert_true(now > 0);
    return now;
}

static void advance(struct fx *f, double seconds)
{
    json_t *body = json_pack("{s:f}", "advance", seconds);

    json_decref(test_emulator_control(&f->emu, "POST", "clock", body));
    json_decref(body);
}

/* One reconcile of the whole Application at the emulator's time (a second
 * behind, so the last analysis window's datapoints are all written). */
static void reconcile(struct fx *f)
{
    struct reconcile_request req = {.kind = "Application",
                                    .name = APP,
                                    .spec = f->spec,
                                    .revision = f->revision,
                                    .generation = 1,
                                    .now = (int64_t)emu_now(f) - 1,
                                    .aws = f->emu.client,
                                    .command = f->command};

    memset(&f->last, 0, sizeof(f->last));
    application_reconcile(&req, f->status, &f->last, false, NULL);
    if (f->last.outcome == RECONCILE_ERROR || f->last.outcome == RECONCILE_INVALID)
        print_message("reconcile: %s\n", f->last.error);
    assert_int_not_equal(f->last.outcome, RECONCILE_INVALID);
    if (f->last.command_done) {
        json_decref(f->command);
        f->command = NULL;
    }
}

static const json_t *rollout(struct fx *f)
{
    return json_object_get(f->status, "rollout");
}

static const char *rollout_str(struct fx *f, const char *key)
{
    const char *s = json_string_value(json_object_get(rollout(f), key));
    return s != NULL ? s : "";
}

static void dump(struct fx *f)
{
    char *text = json_dumps(f->status, JSON_INDENT(1));
    fprintf(stderr, "status: %s\n", text ? text : "?");
    free(text);
}

/* Reconciles (moving the clock STEP_S each time) until the rollout phase is
 * `phase` (and, when given, the stable revision is `stable`). */
static void run_until(struct fx *f, const char *phase, const char *stable)
{
    for (int i = 0; i < MAX_STEPS; i++) {
        reconcile(f);
        if (strcmp(rollout_str(f, "phase"), phase) == 0 &&
            (stable == NULL || strcmp(rollout_str(f, "stableRevision"), stable) == 0))
            return;
        advance(f, STEP_S);
    }
    dump(f);
    fail_msg("rollout did not reach %s within %d reconciles", phase, MAX_STEPS);
}

static json_t *call(struct fx *f, const char *service, const char *op, json_t *in)
{
    json_t *out = NULL;
    struct aws_error err;

    if (aws_call(f->emu.client, service, op, in, &out, &err) != 0)
        fail_msg("%s.%s: %s: %s", service, op, err.code, err.message);
    json_decref(in);
    return out;
}

static json_int_t desired_of(struct fx *f, int slot)
{
    json_t *d = call(f, "ecs", "DescribeServices",
                     json_pack("{s:s, s:[s]}", "cluster", "aviary-" APP, "services",
                               slot == 0 ? APP "-a" : APP "-b"));
    json_int_t n = json_integer_value(
        json_object_get(json_array_get(json_object_get(d, "services"), 0), "desiredCount"));

    json_decref(d);
    return n;
}

/* The port-80 listener's forward weight of a slot's target group, now. */
static long weight_of(struct fx *f, int port, int slot)
{
    const json_t *lb = json_object_get(json_object_get(f->status, "resources"), "loadbalancer");
    const char *tg =
        json_string_value(json_array_get(json_object_get(lb, "targetGroupArns"), slot));
    json_t *out = call(f, "elbv2", "DescribeListeners",
                       json_pack("{s:s}", "LoadBalancerArn",
                                 json_string_value(json_object_get(lb, "loadBalancerArn"))));
    const json_t *ls, *g;
    size_t i, j;
    long w = -1;

    json_array_foreach(json_object_get(out, "Listeners"), i, ls)
    {
        if (json_integer_value(json_object_get(ls, "Port")) != port)
            continue;
        w = 0;
        json_array_foreach(
            json_object_get(
                json_object_get(json_array_get(json_object_get(ls, "DefaultActions"), 0),
                                "ForwardConfig"),
                "TargetGroups"),
            j, g)
        {
            if (strcmp(json_string_value(json_object_get(g, "TargetGroupArn")), tg) == 0)
                w = (long)json_integer_value(json_object_get(g, "Weight"));
        }
    }
    json_decref(out);
    return w;
}

/* SNS publishes of rollout alerts (alarm notifications left out). */
static json_t *alerts_published(struct fx *f)
{
    json_t *all = test_emulator_control(&f->emu, "GET", "sns", NULL), *out = json_array();
    const json_t *p;
    size_t i;

    json_array_foreach(all, i, p)
    {
        const char *subject = json_string_value(json_object_get(p, "subject"));
        if (subject != NULL && strncmp(subject, "aviary: ", 8) == 0)
            json_array_append(out, (json_t *)p);
    }
    json_decref(all);
    return out;
}

static size_t webhook_calls(struct fx *f)
{
    json_t *w = test_emulator_control(&f->emu, "GET", "webhooks/team", NULL);
    size_t n = json_array_size(w);

    json_decref(w);
    return n;
}

static const json_t *condition(struct fx *f, const char *type)
{
    const json_t *c;
    size_t i;

    json_array_foreach(json_object_get(f->status, "conditions"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return c;
    }
    return NULL;
}

static void set_profile(struct fx *f, const char *image, json_t *profile)
{
    json_t *body = json_pack("{s:o}", image, profile);

    json_decref(test_emulator_control(&f->emu, "PUT", "profiles", body));
    json_decref(body);
}

/* The first deployment: slot a serves revision 1. */
static void first_deployment(struct fx *f)
{
    run_until(f, "Idle", REV1);
    assert_string_equal(rollout_str(f, "stableSlot"), "a");
    assert_int_equal(desired_of(f, 0), 2);
    assert_int_equal(weight_of(f, 80, 0), 100);
    assert_string_equal(json_string_value(json_object_get(f->status, "phase")), "Ready");
    assert_string_equal(json_string_value(json_object_get(f->status, "observedRevision")), REV1);
}

static void new_revision(struct fx *f)
{
    json_object_set_new(f->spec, "image", json_string(IMAGE2));
    snprintf(f->revision, sizeof(f->revision), "%s", REV2);
}

static void test_good_release_walks_every_step(void **state)
{
    struct fx *f = *state;
    int saw20 = 0, saw50 = 0, rounds = 0;
    json_t *alerts, *hist, *metric;
    const json_t *m;
    size_t i;

    first_deployment(f);
    new_revision(f);
    for (int k = 0; k < MAX_STEPS; k++) {
        reconcile(f);
        if (json_integer_value(json_object_get(rollout(f), "weight")) == 20 && !saw20) {
            saw20 = 1;
            assert_int_equal(weight_of(f, 80, 1), 20);
            assert_int_equal(desired_of(f, 1), 1); /* max(1, ceil(2 x 20%)) */
            assert_int_equal(json_integer_value(json_object_get(rollout(f), "pinnedMin")), 2);
        }
        if (json_integer_value(json_object_get(rollout(f), "weight")) == 50 && !saw50) {
            saw50 = 1;
            assert_int_equal(weight_of(f, 80, 1), 50);
            assert_int_equal(desired_of(f, 1), 1); /* ceil(2 x 50%) */
        }
        if (strcmp(rollout_str(f, "phase"), "Idle") == 0 &&
            strcmp(rollout_str(f, "stableRevision"), REV2) == 0)
            break;
        assert_string_not_equal(rollout_str(f, "phase"), "RolledBack");
        advance(f, STEP_S);
    }
    assert_true(saw20 && saw50);
    assert_string_equal(rollout_str(f, "phase"), "Idle");
    assert_string_equal(rollout_str(f, "stableSlot"), "b");
    assert_int_equal(weight_of(f, 80, 1), 100);
    assert_int_equal(desired_of(f, 1), 2);
    assert_int_equal(desired_of(f, 0), 0);
    assert_string_equal(json_string_value(json_object_get(f->status, "observedRevision")), REV2);
    assert_null(json_object_get(rollout(f), "pinnedMin"));

    /* Measured on the way: every round successful, none promoted blind. */
    json_array_foreach(json_object_get(rollout(f), "analysis"), i, m)
    {
        assert_string_equal(json_string_value(json_object_get(m, "verdict")), "Successful");
        assert_true(json_integer_value(json_object_get(m, "samples")) >= 10);
        rounds++;
    }
    assert_true(rounds >= 2);

    /* No alert for a promotion (onPromotion false). */
    alerts = alerts_published(f);
    assert_int_equal(json_array_size(alerts), 0);
    json_decref(alerts);
    assert_int_equal(webhook_calls(f), 0);

    /* The canary weight reached the dashboard's metric. */
    {
        double now = emu_now(f);
        metric =
            call(f, "cloudwatch", "GetMetricData",
                 json_pack("{s:[{s:s, s:{s:{s:s, s:s, s:[{s:s, s:s}]}, s:i, s:s}}], s:I, s:I}",
                           "MetricDataQueries", "Id", "w", "MetricStat", "Metric", "Namespace",
                           "Aviary", "MetricName", "CanaryWeight", "Dimensions", "Name",
                           "Application", "Value", APP, "Period", 60, "Stat", "Maximum",
                           "StartTime", (json_int_t)now - 1800, "EndTime", (json_int_t)now + 60));
        hist = json_object_get(json_array_get(json_object_get(metric, "MetricDataResults"), 0),
                               "Values");
        double max = 0;
        json_array_foreach(hist, i, m)
        {
            if (json_number_value(m) > max)
                max = json_number_value(m);
        }
        assert_true(json_array_size(hist) > 0);
        assert_true(max >= 50);
        json_decref(metric);
    }

    /* Converged and idle: quiet. */
    reconcile(f);
    {
        int before = test_emulator_count_calls(&f->emu, NULL, 1);
        reconcile(f);
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(f->status, "lastReconcile"), "writes")),
                         0);
        assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), before);
    }
}

static void test_errors_roll_back_with_one_alert(void **state)
{
    struct fx *f = *state;
    json_t *alerts, *hooks;
    const json_t *decision, *deg, *body;

    set_profile(f, IMAGE2, json_pack("{s:f}", "error_rate", 0.25));
    first_deployment(f);
    new_revision(f);
    run_until(f, "RolledBack", NULL);

    /* At the first step, 20%, by the error rate. */
    decision = json_object_get(rollout(f), "decision");
    assert_string_equal(json_string_value(json_object_get(decision, "reason")), "AnalysisFailed");
    assert_string_equal(json_string_value(json_object_get(decision, "metric")), "error-rate");
    assert_int_equal(json_integer_value(json_object_get(decision, "weight")), 20);
    assert_true(json_number_value(json_object_get(decision, "value")) > 0.05);
    deg = condition(f, "Degraded");
    assert_non_null(deg);
    assert_string_equal(json_string_value(json_object_get(deg, "status")), "True");
    assert_string_equal(json_string_value(json_object_get(deg, "reason")), "AnalysisFailed");
    assert_string_equal(json_string_value(json_object_get(f->status, "phase")), "RolledBack");

    /* Traffic back to stable in one call, the canary at 0, the pin gone. */
    assert_int_equal(weight_of(f, 80, 0), 100);
    assert_int_equal(weight_of(f, 80, 1), 0);
    assert_int_equal(desired_of(f, 1), 0);
    assert_int_equal(desired_of(f, 0), 2);
    assert_null(json_object_get(rollout(f), "pinnedMin"));

    /* The rolled-back revision is not retried, and the alert is not sent
     * again. */
    for (int i = 0; i < 5; i++) {
        advance(f, STEP_S);
        reconcile(f);
    }
    assert_string_equal(rollout_str(f, "phase"), "RolledBack");
    assert_int_equal(desired_of(f, 1), 0);

    alerts = alerts_published(f);
    assert_int_equal(json_array_size(alerts), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(alerts, 0), "subject")),
                        "aviary: " APP " rolled back revision " REV2);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(alerts, 0), "message")),
                           "error-rate"));
    json_decref(alerts);
    hooks = test_emulator_control(&f->emu, "GET", "webhooks/team", NULL);
    assert_int_equal(json_array_size(hooks), 1);
    body = json_object_get(json_array_get(hooks, 0), "body");
    assert_non_null(strstr(json_string_value(json_object_get(body, "text")), "rolled back"));
    assert_int_equal(json_array_size(json_object_get(body, "blocks")), 3);
    json_decref(hooks);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(rollout(f), "alerts"), "pending")), 0);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(rollout(f), "alerts"), "sent")), 1);
}

static void test_unhealthy_canary_hits_the_deadline(void **state)
{
    struct fx *f = *state;
    json_t *alerts, *weights;
    const json_t *w;
    size_t i;

    set_profile(f, IMAGE2, json_pack("{s:b}", "healthy", 0));
    first_deployment(f);
    new_revision(f);
    run_until(f, "RolledBack", NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rollout(f), "decision"), "reason")),
        "ProgressDeadlineExceeded");
    assert_int_equal(desired_of(f, 1), 0);
    assert_int_equal(weight_of(f, 80, 0), 100);

    /* No user was ever sent to the unhealthy canary. */
    weights = test_emulator_control(&f->emu, "GET", "weights", NULL);
    json_array_foreach(weights, i, w)
    {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)json_object_get(w, "weights"), key, v)
        {
            if (strstr(key, APP "-tgb") != NULL)
                assert_int_equal(json_integer_value(v), 0);
        }
    }
    json_decref(weights);
    alerts = alerts_published(f);
    assert_int_equal(json_array_size(alerts), 1);
    json_decref(alerts);
    assert_int_equal(webhook_calls(f), 1);
}

static void test_blue_green_promote(void **state)
{
    struct fx *f = *state;
    json_t *ro = json_object_get(f->spec, "rollout");
    int modify_before;

    json_object_set_new(ro, "strategy", json_string("blueGreen"));
    json_object_set_new(ro, "scaleDownDelay", json_string("20s"));
    json_object_set_new(ro, "blueGreen",
                        json_pack("{s:i, s:b, s:{s:i}}", "testPort", 8080, "autoPromote", 0,
                                  "prePromotion", "measurements", 0));
    first_deployment(f);
    new_revision(f);

    /* Full size behind the test listener, waiting for `aviary promote`. */
    run_until(f, "Paused", NULL);
    assert_string_equal(rollout_str(f, "pausedReason"), "AwaitingPromotion");
    assert_int_equal(desired_of(f, 1), 2);
    assert_int_equal(weight_of(f, 8080, 1), 100);
    assert_int_equal(weight_of(f, 8080, 0), 0);
    assert_int_equal(weight_of(f, 80, 0), 100);
    for (int i = 0; i < 3; i++) {
        advance(f, STEP_S);
        reconcile(f);
    }
    assert_string_equal(rollout_str(f, "phase"), "Paused");

    /* Promote: all traffic switches in one call, the old slot stays at
     * full size for the delay, then goes. */
    f->command = json_pack("{s:s}", "action", "promote");
    modify_before = 0;
    {
        json_t *calls =
            test_emulator_control(&f->emu, "GET", "calls?operation=ModifyListener", NULL);
        modify_before = (int)json_array_size(calls);
        json_decref(calls);
    }
    run_until(f, "ScalingDown", NULL);
    assert_null(f->command);
    assert_int_equal(weight_of(f, 80, 1), 100);
    assert_int_equal(weight_of(f, 8080, 1), -1); /* the test listener is gone */
    assert_int_equal(desired_of(f, 0), 2);
    {
        json_t *calls =
            test_emulator_control(&f->emu, "GET", "calls?operation=ModifyListener", NULL);
        assert_int_equal((int)json_array_size(calls) - modify_before, 1);
        json_decref(calls);
    }
    run_until(f, "Idle", REV2);
    assert_string_equal(rollout_str(f, "stableSlot"), "b");
    assert_int_equal(desired_of(f, 0), 0);
    assert_null(
        json_object_get(json_object_get(json_object_get(f->status, "resources"), "loadbalancer"),
                        "testListenerArn"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_release_walks_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_roll_back_with_one_alert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unhealthy_canary_hits_the_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blue_green_promote, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
