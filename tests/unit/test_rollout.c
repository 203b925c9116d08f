/* Tests for the rollout concern (reconcilers/rollout.c) through the whole
 * Application reconciler against the local AWS emulator, with second-scale
 * intervals and the emulator's clock moved forward instead of sleeping: a
 * good canary walks every step and promotes; a canary answering 5xx rolls
 * back at the first step with exactly one SNS alert and one webhook call.
 * (test_rollout_bluegreen.c: the progress deadline and blue/green.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/rollout_fixture.h"

#define STEP_S    2
#define MAX_STEPS 150

static void test_good_release_walks_every_step(void **state)
{
    struct rfx *f = *state;
    int saw20 = 0, saw50 = 0, rounds = 0;
    json_t *alerts, *hist, *metric;
    const json_t *m;
    size_t i;

    rfx_first_deployment(f);
    rfx_new_revision(f);
    for (int k = 0; k < MAX_STEPS; k++) {
        rfx_reconcile(f);
        if (json_integer_value(json_object_get(rfx_rollout(f), "weight")) == 20 && !saw20) {
            saw20 = 1;
            assert_int_equal(rfx_weight(f, 80, 1), 20);
            assert_int_equal(rfx_desired(f, 1), 1); /* max(1, ceil(2 x 20%)) */
            assert_int_equal(json_integer_value(json_object_get(rfx_rollout(f), "pinnedMin")), 2);
        }
        if (json_integer_value(json_object_get(rfx_rollout(f), "weight")) == 50 && !saw50) {
            saw50 = 1;
            assert_int_equal(rfx_weight(f, 80, 1), 50);
            assert_int_equal(rfx_desired(f, 1), 1); /* ceil(2 x 50%) */
        }
        if (strcmp(rfx_rollout_str(f, "phase"), "Idle") == 0 &&
            strcmp(rfx_rollout_str(f, "stableRevision"), RFX_REV2) == 0)
            break;
        assert_string_not_equal(rfx_rollout_str(f, "phase"), "RolledBack");
        rfx_next_step(f);
    }
    assert_true(saw20 && saw50);
    assert_string_equal(rfx_rollout_str(f, "phase"), "Idle");
    assert_string_equal(rfx_rollout_str(f, "stableSlot"), "b");
    assert_int_equal(rfx_weight(f, 80, 1), 100);
    assert_int_equal(rfx_desired(f, 1), 2);
    assert_int_equal(rfx_desired(f, 0), 0);
    assert_string_equal(json_string_value(json_object_get(f->status, "observedRevision")),
                        RFX_REV2);
    assert_null(json_object_get(rfx_rollout(f), "pinnedMin"));

    /* Measured on the way: every round successful, none promoted blind. */
    json_array_foreach(json_object_get(rfx_rollout(f), "analysis"), i, m)
    {
        assert_string_equal(json_string_value(json_object_get(m, "verdict")), "Successful");
        assert_true(json_integer_value(json_object_get(m, "samples")) >= 10);
        rounds++;
    }
    assert_true(rounds >= 2);

    /* No alert for a promotion (onPromotion false). */
    alerts = rfx_alerts(f);
    assert_int_equal(json_array_size(alerts), 0);
    json_decref(alerts);
    assert_int_equal(rfx_webhook_calls(f), 0);

    /* The canary weight reached the dashboard's metric. */
    {
        double now = rfx_now(f);
        metric = rfx_call(
            f, "cloudwatch", "GetMetricData",
            json_pack("{s:[{s:s, s:{s:{s:s, s:s, s:[{s:s, s:s}]}, s:i, s:s}}], s:I, s:I}",
                      "MetricDataQueries", "Id", "w", "MetricStat", "Metric", "Namespace", "Aviary",
                      "MetricName", "CanaryWeight", "Dimensions", "Name", "Application", "Value",
                      RFX_APP, "Period", 60, "Stat", "Maximum", "StartTime", (json_int_t)now - 1800,
                      "EndTime", (json_int_t)now + 60));
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
    rfx_reconcile(f);
    {
        int before = test_emulator_count_calls(&f->emu, NULL, 1);
        rfx_reconcile(f);
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(f->status, "lastReconcile"), "writes")),
                         0);
        assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), before);
    }
}

static void test_errors_roll_back_with_one_alert(void **state)
{
    struct rfx *f = *state;
    json_t *alerts, *hooks;
    const json_t *decision, *deg, *body;

    rfx_set_profile(f, RFX_IMAGE2, json_pack("{s:f}", "error_rate", 0.25));
    rfx_first_deployment(f);
    rfx_new_revision(f);
    rfx_run_until(f, "RolledBack", NULL);

    /* At the first step, 20%, by the error rate. */
    decision = json_object_get(rfx_rollout(f), "decision");
    assert_string_equal(json_string_value(json_object_get(decision, "reason")), "AnalysisFailed");
    assert_string_equal(json_string_value(json_object_get(decision, "metric")), "error-rate");
    assert_int_equal(json_integer_value(json_object_get(decision, "weight")), 20);
    assert_true(json_number_value(json_object_get(decision, "value")) > 0.05);
    deg = rfx_condition(f, "Degraded");
    assert_non_null(deg);
    assert_string_equal(json_string_value(json_object_get(deg, "status")), "True");
    assert_string_equal(json_string_value(json_object_get(deg, "reason")), "AnalysisFailed");
    assert_string_equal(json_string_value(json_object_get(f->status, "phase")), "RolledBack");

    /* Traffic back to stable in one call, the canary at 0, the pin gone. */
    assert_int_equal(rfx_weight(f, 80, 0), 100);
    assert_int_equal(rfx_weight(f, 80, 1), 0);
    assert_int_equal(rfx_desired(f, 1), 0);
    assert_int_equal(rfx_desired(f, 0), 2);
    assert_null(json_object_get(rfx_rollout(f), "pinnedMin"));

    /* The rolled-back revision is not retried, and the alert is not sent
     * again. */
    for (int i = 0; i < 5; i++) {
        rfx_advance(f, STEP_S);
        rfx_reconcile(f);
    }
    assert_string_equal(rfx_rollout_str(f, "phase"), "RolledBack");
    assert_int_equal(rfx_desired(f, 1), 0);

    alerts = rfx_alerts(f);
    assert_int_equal(json_array_size(alerts), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(alerts, 0), "subject")),
                        "aviary: " RFX_APP " rolled back revision " RFX_REV2);
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
        json_array_size(json_object_get(json_object_get(rfx_rollout(f), "alerts"), "pending")), 0);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(rfx_rollout(f), "alerts"), "sent")), 1);
}

/* The rollout's own requeue (a round due) reads only what the decision
 * needs; a reconcile before the wake time (a resync) observes everything. */
static void test_due_requeue_reads_little(void **state)
{
    struct rfx *f = *state;
    const json_t *rr;
    json_int_t wake, reads_tick, reads_full;
    size_t hist;
    int k;

    rfx_first_deployment(f);
    rfx_new_revision(f);
    for (k = 0; k < MAX_STEPS; k++) {
        rfx_reconcile(f);
        if (json_integer_value(json_object_get(rfx_rollout(f), "weight")) == 20 &&
            json_integer_value(json_object_get(rfx_rollout(f), "analysisSince")) > 0)
            break;
        rfx_next_step(f);
    }
    assert_true(k < MAX_STEPS);
    /* A requeue whose decision moves traffic also reads the other slot's
     * health and confirms the listener; look for one that moves nothing
     * (which one it is depends on where the steps' pauses end). */
    for (k = 0; k < 5; k++) {
        json_int_t weight = json_integer_value(json_object_get(rfx_rollout(f), "weight"));

        /* A full pass right now (before the wake time) reads the whole stack. */
        rfx_reconcile(f);
        reads_full = json_integer_value(
            json_object_get(json_object_get(f->status, "lastReconcile"), "reads"));
        rr = json_object_get(json_object_get(f->status, "resources"), "rollout");
        wake = json_integer_value(json_object_get(rr, "wakeAt"));
        assert_true(wake > 0);
        assert_non_null(json_object_get(rr, "fullAt"));
        /* At the wake time (the fixture's clock is whole seconds, a second
         * behind the emulator's): the round, the services, the canary's health. */
        hist = json_array_size(json_object_get(rfx_rollout(f), "analysis"));
        rfx_advance(f, (double)(wake / 1000 + 1) + 1 - rfx_now(f));
        rfx_reconcile(f);
        reads_tick = json_integer_value(
            json_object_get(json_object_get(f->status, "lastReconcile"), "reads"));
        print_message("full pass %lld reads, due requeue %lld reads\n", (long long)reads_full,
                      (long long)reads_tick);
        assert_true(json_array_size(json_object_get(rfx_rollout(f), "analysis")) > hist);
        if (json_integer_value(json_object_get(rfx_rollout(f), "weight")) == weight)
            break;
        assert_true(reads_tick <= 6); /* + the stable's health and the listener */
    }
    assert_true(k < 5);
    assert_true(reads_tick <= 4);
    assert_true(reads_full >= 3 * reads_tick);
    assert_string_equal(rfx_rollout_str(f, "phase"), "Progressing");
    /* The rest of the rollout goes on as before. */
    rfx_run_until(f, "Idle", RFX_REV2);
    assert_int_equal(rfx_weight(f, 80, 1), 100);
}

/* The task definition slot a's service runs (new string). */
static char *running_task_definition(struct rfx *f)
{
    json_t *d =
        rfx_call(f, "ecs", "DescribeServices",
                 json_pack("{s:s, s:[s]}", "cluster", "aviary-" RFX_APP, "services", RFX_APP "-a"));
    char *arn = strdup(json_string_value(
        json_object_get(json_array_get(json_object_get(d, "services"), 0), "taskDefinition")));

    json_decref(d);
    assert_non_null(arn);
    return arn;
}

/* An upgrade of aviary changes what the task definition of the running
 * revision looks like (the application's own roles): the stable slot, idle
 * on the current revision but on an older task definition of it, moves to
 * the current one once, then stays quiet. */
static void test_stable_slot_moves_to_the_current_task_definition(void **state)
{
    struct rfx *f = *state;
    json_t *d, *td, *in;
    char *current, *legacy, *after;
    const json_t *last;

    rfx_first_deployment(f);
    current = running_task_definition(f);
    /* What an earlier version registered: the same revision and slot tags,
     * no task role. */
    d = rfx_call(f, "ecs", "DescribeTaskDefinition",
                 json_pack("{s:s, s:[s]}", "taskDefinition", current, "include", "TAGS"));
    td = json_object_get(d, "taskDefinition");
    in = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "family",
                   json_object_get(td, "family"), "containerDefinitions",
                   json_object_get(td, "containerDefinitions"), "cpu", json_object_get(td, "cpu"),
                   "memory", json_object_get(td, "memory"), "networkMode",
                   json_object_get(td, "networkMode"), "requiresCompatibilities",
                   json_object_get(td, "requiresCompatibilities"), "executionRoleArn",
                   json_object_get(td, "executionRoleArn"), "tags", json_object_get(d, "tags"),
                   "runtimePlatform", json_object_get(td, "runtimePlatform"));
    if (json_is_null(json_object_get(in, "runtimePlatform")))
        json_object_del(in, "runtimePlatform");
    json_decref(d);
    d = rfx_call(f, "ecs", "RegisterTaskDefinition", in);
    legacy = strdup(json_string_value(
        json_object_get(json_object_get(d, "taskDefinition"), "taskDefinitionArn")));
    json_decref(d);
    assert_string_not_equal(legacy, current);
    json_decref(rfx_call(f, "ecs", "UpdateService",
                         json_pack("{s:s, s:s, s:s}", "cluster", "aviary-" RFX_APP, "service",
                                   RFX_APP "-a", "taskDefinition", legacy)));
    /* One pass moves the slot back to the current task definition... */
    rfx_reconcile(f);
    after = running_task_definition(f);
    assert_string_equal(after, current);
    assert_string_equal(rfx_rollout_str(f, "phase"), "Idle");
    /* ...and the next makes no write. */
    rfx_advance(f, 2);
    rfx_reconcile(f);
    last = json_object_get(f->status, "lastReconcile");
    assert_int_equal(json_integer_value(json_object_get(last, "writes")), 0);
    free(after);
    free(legacy);
    free(current);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_release_walks_every_step, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_errors_roll_back_with_one_alert, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_due_requeue_reads_little, rfx_setup, rfx_teardown),
        cmocka_unit_test_setup_teardown(test_stable_slot_moves_to_the_current_task_definition,
                                        rfx_setup, rfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
