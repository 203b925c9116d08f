/* Tests for the cluster concern (reconcilers/cluster.c) against the local
 * AWS emulator: the shared task execution role, the secrets grant, the log
 * group and the ECS cluster; quiet passes, drift, in-place updates, a
 * foreign log group, deletion that keeps the shared role, plan mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reconcilers/app.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define POLICY_ARN "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
#define SECRET_ARN "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password-AbCdEf"

static const char *SPEC_JSON = "{\"image\": \"registry.example.com/ml/m:1\", \"port\": 8080,"
                               " \"cpu\": 256, \"memory\": 512, \"logs\": {\"retentionDays\": 30},"
                               " \"deletionPolicy\": \"Delete\"}";

struct fx {
    struct test_emulator emu;
    json_t *spec;
    json_t *status[2]; /* applications "alpha" and "beta" */
};

static const char *const APPS[2] = {"alpha", "beta"};

static json_t *call(struct fx *f, const char *service, const char *op, json_t *in)
{
    json_t *out = NULL;
    struct aws_error err;

    if (aws_call(f->emu.client, service, op, in, &out, &err) != 0)
        fail_msg("%s.%s: %s: %s", service, op, err.code, err.message);
    json_decref(in);
    return out;
}

/* The call's AWS error code, or "" when it succeeded. */
static const char *call_code(struct fx *f, const char *service, const char *op, json_t *in)
{
    static char code[128];
    json_t *out = NULL;
    struct aws_error err;

    code[0] = '\0';
    if (aws_call(f->emu.client, service, op, in, &out, &err) != 0)
        snprintf(code, sizeof(code), "%s", err.code);
    json_decref(in);
    json_decref(out);
    return code;
}

static int setup(void **state)
{
    static struct fx f;

    memset(&f, 0, sizeof(f));
    if (test_emulator_start(&f.emu, 0.01) != 0)
        return -1;
    f.spec = json_loads(SPEC_JSON, 0, NULL);
    for (int i = 0; i < 2; i++)
        f.status[i] = status_new("Application", APPS[i]);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    json_decref(f->spec);
    json_decref(f->status[0]);
    json_decref(f->status[1]);
    test_emulator_stop(&f->emu);
    return 0;
}

struct result {
    enum app_step step;
    int writes;
    json_t *plan; /* plan mode only */
    char error[1024];
};

static struct result run(struct fx *f, int app, bool plan, bool deleting)
{
    struct reconcile_request req = {.kind = "Application",
                                    .name = APPS[app],
                                    .spec = f->spec,
                                    .revision = "r1",
                                    .now = (int64_t)time(NULL),
                                    .aws = f->emu.client};
    struct app_ctx ctx;
    struct result r = {0};

    app_ctx_init(&ctx, &req, f->status[app], plan);
    r.step = deleting ? cluster_delete(&ctx) : cluster_converge(&ctx);
    r.writes = ctx.writes;
    snprintf(r.error, sizeof(r.error), "%s", ctx.error);
    if (plan)
        r.plan = json_incref(ctx.plan_actions);
    app_ctx_clear(&ctx);
    return r;
}

static void converge(struct fx *f, int app, bool deleting)
{
    for (int i = 0; i < 50; i++) {
        struct result r = run(f, app, false, deleting);
        if (r.step == APP_STEP_FAILED)
            fail_msg("%s", r.error);
        if (r.step == APP_STEP_READY)
            return;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("did not converge");
}

static int mutating_calls(struct fx *f)
{
    return test_emulator_count_calls(&f->emu, NULL, 1);
}

static json_t *log_group(struct fx *f, const char *name)
{
    json_t *o =
        call(f, "logs", "DescribeLogGroups", json_pack("{s:s}", "logGroupNamePrefix", name));
    json_t *g = json_incref(json_array_get(json_object_get(o, "logGroups"), 0));

    json_decref(o);
    if (g != NULL && strcmp(json_string_value(json_object_get(g, "logGroupName")), name) != 0) {
        json_decref(g);
        g = NULL;
    }
    return g;
}

static bool policy_attached(struct fx *f)
{
    json_t *o = call(f, "iam", "ListAttachedRolePolicies",
                     json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE));
    size_t i;
    const json_t *p;
    bool found = false;

    json_array_foreach(json_object_get(o, "AttachedPolicies"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "PolicyArn")), POLICY_ARN) == 0)
            found = true;
    }
    json_decref(o);
    return found;
}

static void test_create_and_quiet(void **state)
{
    struct fx *f = *state;
    json_t *o, *g;
    const json_t *c, *res;
    struct result r;
    int before;

    converge(f, 0, false);

    o = call(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE));
    {
        const json_t *role = json_object_get(o, "Role");
        const json_t *tags = json_object_get(role, "Tags");
        assert_string_equal(app_tag_value(tags, APP_TAG_MANAGED_BY), "aviary");
        /* Shared: no application tag. */
        assert_null(app_tag_value(tags, APP_TAG_APPLICATION));
        assert_non_null(strstr(json_string_value(json_object_get(role, "AssumeRolePolicyDocument")),
                               "ecs-tasks.amazonaws.com"));
    }
    json_decref(o);
    assert_true(policy_attached(f));

    g = log_group(f, "/aviary/alpha");
    assert_non_null(g);
    assert_int_equal(json_integer_value(json_object_get(g, "retentionInDays")), 30);
    json_decref(g);
    o = call(f, "logs", "ListTagsLogGroup", json_pack("{s:s}", "logGroupName", "/aviary/alpha"));
    assert_string_equal(app_tag_value(json_object_get(o, "tags"), APP_TAG_APPLICATION), "alpha");
    json_decref(o);

    o = call(
        f, "ecs", "DescribeClusters",
        json_pack("{s:[s], s:[s, s]}", "clusters", "aviary-alpha", "include", "TAGS", "SETTINGS"));
    c = json_array_get(json_object_get(o, "clusters"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "status")), "ACTIVE");
    assert_string_equal(app_tag_value(json_object_get(c, "tags"), APP_TAG_MANAGED_BY), "aviary");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(c, "settings"), 0), "value")),
                        "enabled");
    json_decref(o);

    res = json_object_get(json_object_get(f->status[0], "resources"), "cluster");
    assert_string_equal(json_string_value(json_object_get(res, "clusterName")), "aviary-alpha");
    assert_string_equal(json_string_value(json_object_get(res, "clusterArn")),
                        "arn:aws:ecs:us-east-1:123456789012:cluster/aviary-alpha");
    assert_string_equal(json_string_value(json_object_get(res, "executionRoleArn")),
                        "arn:aws:iam::123456789012:role/" APP_EXECUTION_ROLE);
    assert_string_equal(json_string_value(json_object_get(res, "logGroup")), "/aviary/alpha");

    before = mutating_calls(f);
    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 0);
    assert_int_equal(mutating_calls(f), before);

    /* A second application reuses the role. */
    converge(f, 1, false);
    o = call(f, "iam", "ListAttachedRolePolicies",
             json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE));
    assert_int_equal(json_array_size(json_object_get(o, "AttachedPolicies")), 1);
    json_decref(o);
}

static void test_drift_and_update(void **state)
{
    struct fx *f = *state;
    json_t *g;
    struct result r;

    converge(f, 0, false);
    /* By hand: retention, the managed policy, the trust policy. */
    json_decref(
        call(f, "logs", "PutRetentionPolicy",
             json_pack("{s:s, s:i}", "logGroupName", "/aviary/alpha", "retentionInDays", 1)));
    json_decref(
        call(f, "iam", "DetachRolePolicy",
             json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyArn", POLICY_ARN)));
    json_decref(call(
        f, "iam", "UpdateAssumeRolePolicy",
        json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyDocument",
                  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
                  "{\"Service\":\"ec2.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}")));
    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 3);
    g = log_group(f, "/aviary/alpha");
    assert_int_equal(json_integer_value(json_object_get(g, "retentionInDays")), 30);
    json_decref(g);
    assert_true(policy_attached(f));
    {
        json_t *o = call(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE));
        assert_non_null(strstr(json_string_value(json_object_get(json_object_get(o, "Role"),
                                                                 "AssumeRolePolicyDocument")),
                               "ecs-tasks.amazonaws.com"));
        json_decref(o);
    }
    /* In place: a new retention in the manifest. */
    json_object_set_new(json_object_get(f->spec, "logs"), "retentionDays", json_integer(90));
    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 1);
    g = log_group(f, "/aviary/alpha");
    assert_int_equal(json_integer_value(json_object_get(g, "retentionInDays")), 90);
    json_decref(g);
    r = run(f, 0, false, false);
    assert_int_equal(r.writes, 0);
}

static void test_secrets_grant(void **state)
{
    struct fx *f = *state;
    json_t *o;
    struct result r;

    json_object_set_new(f->spec, "secrets", json_pack("{s:s}", "DB_PASSWORD", SECRET_ARN));
    converge(f, 0, false);
    o = call(f, "iam", "GetRolePolicy",
             json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyName",
                       "aviary-alpha-secrets"));
    assert_non_null(o);
    json_decref(o);
    r = run(f, 0, false, false);
    assert_int_equal(r.writes, 0);
    /* Secrets removed from the manifest: the grant goes. */
    json_object_del(f->spec, "secrets");
    converge(f, 0, false);
    assert_string_equal(call_code(f, "iam", "GetRolePolicy",
                                  json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE,
                                            "PolicyName", "aviary-alpha-secrets")),
                        "NoSuchEntity");
}

static void test_foreign_log_group(void **state)
{
    struct fx *f = *state;
    struct result r;
    json_t *g;

    json_decref(
        call(f, "logs", "CreateLogGroup", json_pack("{s:s}", "logGroupName", "/aviary/alpha")));
    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_FAILED);
    assert_non_null(strstr(r.error, "without the aviary tags"));
    g = log_group(f, "/aviary/alpha");
    assert_null(json_object_get(g, "retentionInDays"));
    json_decref(g);
    /* Deletion leaves it too. */
    converge(f, 0, true);
    g = log_group(f, "/aviary/alpha");
    assert_non_null(g);
    json_decref(g);
}

static void test_delete_keeps_shared_role(void **state)
{
    struct fx *f = *state;
    json_t *o, *g;
    const json_t *c;

    json_object_set_new(f->spec, "secrets", json_pack("{s:s}", "DB_PASSWORD", SECRET_ARN));
    converge(f, 0, false);
    converge(f, 1, false);
    converge(f, 0, true);

    o = call(f, "ecs", "DescribeClusters",
             json_pack("{s:[s, s]}", "clusters", "aviary-alpha", "aviary-beta"));
    for (size_t i = 0; i < json_array_size(json_object_get(o, "clusters")); i++) {
        c = json_array_get(json_object_get(o, "clusters"), i);
        if (strcmp(json_string_value(json_object_get(c, "clusterName")), "aviary-alpha") == 0)
            assert_string_equal(json_string_value(json_object_get(c, "status")), "INACTIVE");
        else
            assert_string_equal(json_string_value(json_object_get(c, "status")), "ACTIVE");
    }
    json_decref(o);
    assert_null(log_group(f, "/aviary/alpha"));
    g = log_group(f, "/aviary/beta");
    assert_non_null(g);
    json_decref(g);
    /* The role stays with its policy; alpha's grant is gone. */
    assert_true(policy_attached(f));
    assert_string_equal(call_code(f, "iam", "GetRolePolicy",
                                  json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE,
                                            "PolicyName", "aviary-alpha-secrets")),
                        "NoSuchEntity");
    assert_string_equal(call_code(f, "iam", "GetRolePolicy",
                                  json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE,
                                            "PolicyName", "aviary-beta-secrets")),
                        "");
    /* Deleting again finds nothing to do. */
    assert_int_equal(run(f, 0, false, true).writes, 0);
}

/* The last event with this reason, or NULL (borrowed). */
static const json_t *event(const json_t *status, const char *reason)
{
    const json_t *e, *found = NULL;
    size_t i;

    json_array_foreach(json_object_get(status, "events"), i, e)
    {
        const char *r = json_string_value(json_object_get(e, "reason"));
        if (r != NULL && strcmp(r, reason) == 0)
            found = e;
    }
    return found;
}

static const char *insights(struct fx *f, const char *cluster)
{
    static char value[32];
    json_t *o = call(f, "ecs", "DescribeClusters",
                     json_pack("{s:[s], s:[s]}", "clusters", cluster, "include", "SETTINGS"));
    const json_t *c = json_array_get(json_object_get(o, "clusters"), 0), *s;
    size_t i;

    value[0] = '\0';
    json_array_foreach(json_object_get(c, "settings"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), "containerInsights") == 0)
            snprintf(value, sizeof(value), "%s", json_string_value(json_object_get(s, "value")));
    }
    json_decref(o);
    return value;
}

static void test_container_insights_drift(void **state)
{
    struct fx *f = *state;
    struct result r;
    const json_t *e;
    int before;

    converge(f, 0, false);
    assert_string_equal(insights(f, "aviary-alpha"), "enabled");
    json_decref(call(f, "ecs", "UpdateClusterSettings",
                     json_pack("{s:s, s:[{s:s, s:s}]}", "cluster", "aviary-alpha", "settings",
                               "name", "containerInsights", "value", "disabled")));
    /* Plan mode shows the change and makes none. */
    before = mutating_calls(f);
    r = run(f, 0, true, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(mutating_calls(f), before);
    {
        bool planned = false;
        size_t i;
        const json_t *a;
        json_array_foreach(r.plan, i, a)
        {
            const char *call_name = json_string_value(json_object_get(a, "call"));
            if (call_name != NULL && strcmp(call_name, "ecs.UpdateClusterSettings") == 0)
                planned = true;
        }
        assert_true(planned);
    }
    json_decref(r.plan);
    assert_string_equal(insights(f, "aviary-alpha"), "disabled");
    assert_null(event(f->status[0], "DriftCorrected"));

    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 1);
    assert_string_equal(insights(f, "aviary-alpha"), "enabled");
    e = event(f->status[0], "DriftCorrected");
    assert_non_null(e);
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "Container Insights"));
    assert_null(event(f->status[0], "DriftNotCorrected"));
    /* Converged again: quiet. */
    r = run(f, 0, false, false);
    assert_int_equal(r.writes, 0);
}

static void test_plan(void **state)
{
    struct fx *f = *state;
    int before = mutating_calls(f);
    struct result r = run(f, 0, true, false);
    const json_t *res;

    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 0);
    assert_int_equal(mutating_calls(f), before);
    assert_true(json_array_size(r.plan) >= 4); /* role, log group, retention, cluster */
    res = json_object_get(json_object_get(f->status[0], "resources"), "cluster");
    assert_string_equal(json_string_value(json_object_get(res, "clusterArn")),
                        "(known after apply)");
    json_decref(r.plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_grant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_log_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_keeps_shared_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_insights_drift, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
