/* Tests for the notifications concern (reconcilers/notifications.c) against
 * the local AWS emulator: SNS topic, e-mail subscriptions following the
 * spec (pending ones included), scaling alarms notifying the topic, quiet
 * when converged, drift reverted, untagged resources left alone, plan mode,
 * alerts published, deletion. */
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
#include "reconcilers/notifications.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define APP   "demo"
#define TOPIC "aviary-" APP

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

/* spec with notifications and scaling given as JSON text */
static void set_spec(struct fixture *f, const char *notifications, const char *scaling)
{
    json_error_t jerr;
    json_t *n = json_loads(notifications, 0, &jerr), *s = json_loads(scaling, 0, &jerr);

    assert_non_null(n);
    assert_non_null(s);
    json_decref(f->spec);
    f->spec = json_pack("{s:s, s:i, s:o, s:o, s:b}", "image", "example/app:1", "port", 8080,
                        "notifications", n, "scaling", s, "dashboard", 1);
    f->req.spec = f->spec;
}

#define SCALING "{\"min\": 1, \"max\": 4, \"cpuPercent\": 70}"

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    json_t *res;

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0)
        return -1;
    f->status = status_new("Application", APP);
    res = json_object();
    json_object_set_new(f->status, "resources", res);
    /* what the cluster, load balancer and service concerns record */
    json_object_set_new(res, "cluster", json_pack("{s:s}", "clusterName", "aviary-" APP));
    json_object_set_new(res, "service",
                        json_pack("{s:[{s:s}, {s:s}], s:s}", "services", "name", APP "-a", "name",
                                  APP "-b", "stableSlot", "a"));
    json_object_set_new(res, "loadbalancer",
                        json_pack("{s:s, s:[s,s]}", "lbDimension", "app/demo-alb/50dc6c495c0c9188",
                                  "tgDimensions", "targetgroup/demo-tga/73e2d6bc24d8a067",
                                  "targetgroup/demo-tgb/5a1c0de3b1a2c3d4"));
    f->req.kind = "Application";
    f->req.name = APP;
    f->req.revision = "rev1";
    f->req.now = (int64_t)time(NULL);
    f->req.reconcile_id = "test";
    f->req.aws = f->emu.client;
    set_spec(f, "{\"email\": [\"ana@example.com\", \"bo@example.com\"], \"onScaling\": true}",
             SCALING);
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

/* One reconcile pass; returns the step and, in *error, the failure if any. */
static enum app_step run(struct fixture *f, bool plan, bool deleting, int *writes, char *error,
                         size_t size)
{
    struct app_ctx ctx;
    enum app_step step;

    app_ctx_init(&ctx, &f->req, f->status, plan);
    step = deleting ? notifications_delete(&ctx) : notifications_converge(&ctx);
    if (error != NULL)
        snprintf(error, size, "%.900s%s", ctx.error, ctx.terminal ? " [terminal]" : "");
    else if (step == APP_STEP_FAILED)
        fail_msg("notifications: %s", ctx.error);
    if (writes != NULL)
        *writes = plan ? (int)json_array_size(ctx.plan_actions) : ctx.writes;
    app_ctx_clear(&ctx);
    return step;
}

static void converge(struct fixture *f)
{
    for (int i = 0; i < 10; i++)
        if (run(f, false, false, NULL, NULL, 0) == APP_STEP_READY)
            return;
    fail_msg("notifications did not converge");
}

static void clear_calls(struct fixture *f)
{
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
}

static const char *topic_arn(struct fixture *f)
{
    return str(json_object_get(json_object_get(f->status, "resources"), "notifications"),
               "topicArn");
}

/* The e-mail subscriptions of the topic: {"address": pending (bool)}. */
static json_t *subscriptions(struct fixture *f)
{
    json_t *all = test_emulator_control(&f->emu, "GET", "subscriptions", NULL), *s;
    json_t *map = json_object();
    size_t i;

    json_array_foreach(all, i, s)
    {
        if (strcmp(str(s, "Protocol"), "email") == 0 &&
            strcmp(str(s, "TopicArn"), topic_arn(f)) == 0)
            json_object_set(map, str(s, "Endpoint"), json_object_get(s, "PendingConfirmation"));
    }
    json_decref(all);
    return map;
}

static void confirm_all(struct fixture *f)
{
    json_decref(test_emulator_control(&f->emu, "POST", "subscriptions/confirm", NULL));
}

/* The alarms named aviary-demo-*: {"name": alarm} (new reference). */
static json_t *alarms(struct fixture *f)
{
    json_t *out = call(f, "cloudwatch", "DescribeAlarms",
                       json_pack("{s:s}", "AlarmNamePrefix", "aviary-" APP "-"));
    json_t *map = json_object(), *a;
    size_t i;

    json_array_foreach(json_object_get(out, "MetricAlarms"), i, a)
        json_object_set(map, str(a, "AlarmName"), a);
    json_decref(out);
    return map;
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

static bool tagged(struct fixture *f, const char *service, const char *key, const char *arn)
{
    json_t *out = call(f, service, "ListTagsForResource", json_pack("{s:s}", key, arn));
    json_t *t;
    size_t i;
    bool by = false, app = false;

    json_array_foreach(json_object_get(out, "Tags"), i, t)
    {
        by |= strcmp(str(t, "Key"), "aviary.io/managed-by") == 0 &&
              strcmp(str(t, "Value"), "aviary") == 0;
        app |= strcmp(str(t, "Key"), "aviary.io/application") == 0 &&
               strcmp(str(t, "Value"), APP) == 0;
    }
    json_decref(out);
    return by && app;
}

static void test_create_then_quiet(void **state)
{
    struct fixture *f = *state;
    json_t *subs, *al, *out, *in;
    int writes = -1;

    converge(f);
    assert_non_null(topic_arn(f));
    assert_non_null(strstr(topic_arn(f), ":sns:us-east-1:"));
    assert_true(tagged(f, "sns", "ResourceArn", topic_arn(f)));
    subs = subscriptions(f);
    assert_int_equal(json_object_size(subs), 2);
    assert_true(json_is_true(json_object_get(subs, "ana@example.com")));
    assert_true(json_is_true(json_object_get(subs, "bo@example.com")));
    json_decref(subs);

    al = alarms(f);
    assert_int_equal(json_object_size(al), 2);
    out = json_object_get(al, "aviary-" APP "-scale-out-cpu");
    assert_non_null(out);
    assert_string_equal(str(out, "Namespace"), "AWS/ECS");
    assert_string_equal(str(out, "MetricName"), "CPUUtilization");
    assert_string_equal(str(out, "ComparisonOperator"), "GreaterThanThreshold");
    assert_true(json_number_value(json_object_get(out, "Threshold")) == 70.0);
    assert_int_equal(json_integer_value(json_object_get(out, "EvaluationPeriods")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "AlarmActions"), 0)),
                        topic_arn(f));
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "OKActions"), 0)),
                        topic_arn(f));
    assert_int_equal(json_array_size(json_object_get(out, "Dimensions")), 2);
    assert_true(tagged(f, "cloudwatch", "ResourceARN", str(out, "AlarmArn")));
    in = json_object_get(al, "aviary-" APP "-scale-in-cpu");
    assert_non_null(in);
    assert_string_equal(str(in, "ComparisonOperator"), "LessThanThreshold");
    assert_true(json_number_value(json_object_get(in, "Threshold")) > 62.99 &&
                json_number_value(json_object_get(in, "Threshold")) < 63.01);
    assert_int_equal(json_integer_value(json_object_get(in, "EvaluationPeriods")), 15);
    json_decref(al);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(json_object_get(f->status, "resources"), "notifications"),
                         "alarmNames")),
                     2);

    clear_calls(f);
    assert_int_equal(run(f, false, false, &writes, NULL, 0), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    /* pending subscriptions are not subscribed again */
    subs = subscriptions(f);
    assert_int_equal(json_object_size(subs), 2);
    json_decref(subs);
}

static void test_email_list_changes(void **state)
{
    struct fixture *f = *state;
    json_t *subs, *res;

    converge(f);
    confirm_all(f);
    /* ana removed (confirmed: unsubscribed), cy added */
    set_spec(f, "{\"email\": [\"bo@example.com\", \"cy@example.com\"], \"onScaling\": true}",
             SCALING);
    converge(f);
    subs = subscriptions(f);
    assert_int_equal(json_object_size(subs), 2);
    assert_null(json_object_get(subs, "ana@example.com"));
    assert_true(json_is_false(json_object_get(subs, "bo@example.com")));
    assert_true(json_is_true(json_object_get(subs, "cy@example.com")));
    json_decref(subs);

    /* cy removed while still pending: aviary kept its pending ARN */
    set_spec(f, "{\"email\": [\"bo@example.com\"], \"onScaling\": true}", SCALING);
    converge(f);
    subs = subscriptions(f);
    assert_int_equal(json_object_size(subs), 1);
    assert_non_null(json_object_get(subs, "bo@example.com"));
    json_decref(subs);

    /* A pending subscription aviary did not make has no ARN it can address:
     * left alone, reported once. */
    json_decref(call(f, "sns", "Subscribe",
                     json_pack("{s:s, s:s, s:s}", "TopicArn", topic_arn(f), "Protocol", "email",
                               "Endpoint", "dee@example.com")));
    converge(f);
    converge(f);
    subs = subscriptions(f);
    assert_int_equal(json_object_size(subs), 2);
    assert_non_null(json_object_get(subs, "dee@example.com"));
    json_decref(subs);
    res = json_object_get(json_object_get(f->status, "resources"), "notifications");
    assert_int_equal(json_array_size(json_object_get(res, "unremovablePending")), 1);
    assert_true(has_event(f, "SubscriptionPending"));
    /* once confirmed, it has an ARN and goes */
    confirm_all(f);
    converge(f);
    subs = subscriptions(f);
    assert_int_equal(json_object_size(subs), 1);
    json_decref(subs);
    assert_null(json_object_get(res, "unremovablePending"));
}

static void test_drift_reverted(void **state)
{
    struct fixture *f = *state;
    json_t *subs, *al, *out, *list, *s;
    size_t i;

    converge(f);
    confirm_all(f);
    /* By hand: the scale-out threshold raised, its actions removed, and a
     * confirmed subscription unsubscribed. */
    json_decref(
        call(f, "cloudwatch", "PutMetricAlarm",
             json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:s}", "AlarmName",
                       "aviary-" APP "-scale-out-cpu", "MetricName", "CPUUtilization", "Namespace",
                       "AWS/ECS", "Statistic", "Average", "Period", 60, "EvaluationPeriods", 3,
                       "Threshold", 99.0, "ComparisonOperator", "GreaterThanThreshold")));
    list = call(f, "sns", "ListSubscriptionsByTopic", json_pack("{s:s}", "TopicArn", topic_arn(f)));
    json_array_foreach(json_object_get(list, "Subscriptions"), i, s)
    {
        if (strcmp(str(s, "Endpoint"), "ana@example.com") == 0)
            json_decref(call(f, "sns", "Unsubscribe",
                             json_pack("{s:s}", "SubscriptionArn", str(s, "SubscriptionArn"))));
    }
    json_decref(list);

    converge(f);
    al = alarms(f);
    out = json_object_get(al, "aviary-" APP "-scale-out-cpu");
    assert_true(json_number_value(json_object_get(out, "Threshold")) == 70.0);
    assert_int_equal(json_array_size(json_object_get(out, "AlarmActions")), 1);
    assert_int_equal(json_array_size(json_object_get(out, "Dimensions")), 2);
    json_decref(al);
    subs = subscriptions(f);
    assert_true(json_is_true(json_object_get(subs, "ana@example.com"))); /* re-subscribed */
    json_decref(subs);
    assert_true(has_event(f, "DriftCorrected"));

    /* The topic deleted by hand comes back. */
    json_decref(call(f, "sns", "DeleteTopic", json_pack("{s:s}", "TopicArn", topic_arn(f))));
    converge(f);
    assert_true(tagged(f, "sns", "ResourceArn", topic_arn(f)));
    subs = subscriptions(f);
    assert_int_equal(json_object_size(subs), 2);
    json_decref(subs);
}

static void test_alarms_follow_spec(void **state)
{
    struct fixture *f = *state;
    json_t *al;

    converge(f);
    /* memory and requests policies: their alarms too; cpu target changed */
    set_spec(f, "{\"email\": [], \"onScaling\": true}",
             "{\"min\": 1, \"max\": 4, \"cpuPercent\": 50, \"memoryPercent\": 80,"
             " \"requestsPerTarget\": 300}");
    converge(f);
    al = alarms(f);
    assert_int_equal(json_object_size(al), 6);
    assert_true(json_number_value(json_object_get(
                    json_object_get(al, "aviary-" APP "-scale-out-cpu"), "Threshold")) == 50.0);
    assert_string_equal(
        str(json_array_get(json_object_get(json_object_get(al, "aviary-" APP "-scale-out-requests"),
                                           "Dimensions"),
                           0),
            "Value"),
        "targetgroup/demo-tga/73e2d6bc24d8a067");
    json_decref(al);
    assert_false(has_event(f, "DriftCorrected"));

    /* onScaling off: the alarms go; an untagged alarm with one of our names
     * (someone else's) is left alone. */
    json_decref(call(f, "cloudwatch", "DeleteAlarms",
                     json_pack("{s:[s]}", "AlarmNames", "aviary-" APP "-scale-in-memory")));
    json_decref(call(f, "cloudwatch", "PutMetricAlarm",
                     json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:s}", "AlarmName",
                               "aviary-" APP "-scale-in-memory", "MetricName", "MemoryUtilization",
                               "Namespace", "AWS/ECS", "Statistic", "Average", "Period", 60,
                               "EvaluationPeriods", 1, "Threshold", 5.0, "ComparisonOperator",
                               "LessThanThreshold")));
    set_spec(f, "{\"email\": [], \"onScaling\": false}", SCALING);
    converge(f);
    al = alarms(f);
    assert_int_equal(json_object_size(al), 1);
    assert_non_null(json_object_get(al, "aviary-" APP "-scale-in-memory"));
    json_decref(al);
}

static void test_untagged_topic_left_alone(void **state)
{
    struct fixture *f = *state;
    char error[1100];
    json_t *created = call(f, "sns", "CreateTopic", json_pack("{s:s}", "Name", TOPIC));

    clear_calls(f);
    assert_int_equal(run(f, false, false, NULL, error, sizeof(error)), APP_STEP_FAILED);
    assert_non_null(strstr(error, "aviary tags"));
    assert_non_null(strstr(error, "[terminal]"));
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    /* and deletion does not touch it */
    assert_int_equal(run(f, false, true, NULL, NULL, 0), APP_STEP_READY);
    json_decref(call(f, "sns", "GetTopicAttributes",
                     json_pack("{s:s}", "TopicArn", str(created, "TopicArn"))));
    json_decref(created);
}

static void test_publish(void **state)
{
    struct fixture *f = *state;
    struct app_ctx ctx;
    json_t *sent, *last;
    char subject[300];

    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(notifications_publish(&ctx, "x", "y"), -1); /* no topic yet */
    app_ctx_clear(&ctx);
    converge(f);

    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(notifications_publish(&ctx, "  Rollback of demo:\nerror-rate 0.31 > 0.02",
                                           "canary rev2 rolled back"),
                     0);
    memset(subject, 'S', sizeof(subject) - 1);
    subject[sizeof(subject) - 1] = '\0';
    assert_int_equal(notifications_publish(&ctx, subject, ""), 0);
    app_ctx_clear(&ctx);

    sent = test_emulator_control(&f->emu, "GET", "sns", NULL);
    assert_int_equal(json_array_size(sent), 2);
    last = json_array_get(sent, 0);
    assert_string_equal(str(last, "topic_arn"), topic_arn(f));
    assert_string_equal(str(last, "subject"), "Rollback of demo: error-rate 0.31 > 0.02");
    assert_string_equal(str(last, "message"), "canary rev2 rolled back");
    last = json_array_get(sent, 1);
    assert_int_equal(strlen(str(last, "subject")), NOTIFICATIONS_SUBJECT_MAX);
    assert_string_equal(str(last, "message"), "(no message)");
    json_decref(sent);

    /* plan mode records the publish and sends nothing */
    app_ctx_init(&ctx, &f->req, f->status, true);
    assert_int_equal(notifications_publish(&ctx, "s", "m"), 0);
    assert_int_equal(json_array_size(ctx.plan_actions), 1);
    app_ctx_clear(&ctx);
    sent = test_emulator_control(&f->emu, "GET", "sns", NULL);
    assert_int_equal(json_array_size(sent), 2);
    json_decref(sent);
}

static void test_plan_makes_no_change(void **state)
{
    struct fixture *f = *state;
    int actions = 0;

    clear_calls(f);
    assert_int_equal(run(f, true, false, &actions, NULL, 0), APP_STEP_READY);
    assert_true(actions >= 5); /* topic, two subscriptions, two alarms */
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, "sns", -1), 1); /* the topic look-up */

    converge(f);
    set_spec(f, "{\"email\": [\"ana@example.com\"], \"onScaling\": true}",
             "{\"min\": 1, \"max\": 4, \"cpuPercent\": 40}");
    confirm_all(f);
    clear_calls(f);
    assert_int_equal(run(f, true, false, &actions, NULL, 0), APP_STEP_READY);
    assert_true(actions >= 3); /* unsubscribe bo, update both alarms */
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

static void test_delete_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    json_t *al, *subs, *in;
    struct aws_error err;
    json_t *out = NULL;
    char arn[256];

    converge(f);
    confirm_all(f);
    snprintf(arn, sizeof(arn), "%s", topic_arn(f));
    assert_int_equal(run(f, false, true, NULL, NULL, 0), APP_STEP_READY);
    al = alarms(f);
    assert_int_equal(json_object_size(al), 0);
    json_decref(al);
    in = json_pack("{s:s}", "TopicArn", arn);
    assert_int_not_equal(aws_call(f->emu.client, "sns", "GetTopicAttributes", in, &out, &err), 0);
    json_decref(in);
    subs = test_emulator_control(&f->emu, "GET", "subscriptions", NULL);
    assert_int_equal(json_array_size(subs), 0);
    json_decref(subs);
    /* again: nothing left, no writes */
    clear_calls(f);
    assert_int_equal(run(f, false, true, NULL, NULL, 0), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email_list_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift_reverted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alarms_follow_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untagged_topic_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_makes_no_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
