/* Tests for the cluster concern (reconcilers/cluster.c, roles.c) against the
 * local AWS emulator: each application's execution and task roles, its
 * secrets grant (on its own role only), the migration off the shared
 * execution role of earlier versions, the log group and the ECS cluster;
 * quiet passes, drift, in-place updates, foreign resources, deletion (which
 * keeps the shared role), plan mode. */
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
#include "reconcilers/roles.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define POLICY_ARN "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
#define SECRET_ARN "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password-AbCdEf"
#define SSM_ARN    "arn:aws:ssm:us-east-1:123456789012:parameter/alpha/api-key"
#define ROLE_ARN   "arn:aws:iam::123456789012:role/"

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

static bool policy_attached(struct fx *f, const char *role, const char *arn)
{
    json_t *o = call(f, "iam", "ListAttachedRolePolicies", json_pack("{s:s}", "RoleName", role));
    size_t i;
    const json_t *p;
    bool found = false;

    json_array_foreach(json_object_get(o, "AttachedPolicies"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "PolicyArn")), arn) == 0)
            found = true;
    }
    json_decref(o);
    return found;
}

static size_t count_list(struct fx *f, const char *op, const char *role, const char *member)
{
    json_t *o = call(f, "iam", op, json_pack("{s:s}", "RoleName", role));
    size_t n = json_array_size(json_object_get(o, member));

    json_decref(o);
    return n;
}

/* An inline policy's document (decoded JSON), or NULL when absent. */
static json_t *inline_policy(struct fx *f, const char *role, const char *name)
{
    json_t *out = NULL, *doc = NULL;
    json_t *in = json_pack("{s:s, s:s}", "RoleName", role, "PolicyName", name);
    struct aws_error err;
    const char *text;
    int rc = aws_call(f->emu.client, "iam", "GetRolePolicy", in, &out, &err);

    json_decref(in);
    if (rc != 0) {
        assert_string_equal(err.code, "NoSuchEntity");
        return NULL;
    }
    text = json_string_value(json_object_get(out, "PolicyDocument"));
    assert_non_null(text);
    doc = json_loads(text, 0, NULL);
    if (doc == NULL) { /* URL-encoded, as IAM returns it */
        char buf[8192];
        size_t j = 0;
        for (size_t i = 0; text[i] != '\0' && j + 1 < sizeof(buf); i++) {
            if (text[i] == '%' && text[i + 1] && text[i + 2]) {
                char hex[3] = {text[i + 1], text[i + 2], '\0'};
                buf[j++] = (char)strtol(hex, NULL, 16);
                i += 2;
            } else {
                buf[j++] = text[i];
            }
        }
        buf[j] = '\0';
        doc = json_loads(buf, 0, NULL);
    }
    json_decref(out);
    assert_non_null(doc);
    return doc;
}

/* The role's tags as GetRole returns them (new reference). */
static json_t *role_tags(struct fx *f, const char *role)
{
    json_t *o = call(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", role));
    json_t *t = json_incref(json_object_get(json_object_get(o, "Role"), "Tags"));

    json_decref(o);
    return t;
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

static void test_create_and_quiet(void **state)
{
    struct fx *f = *state;
    json_t *o, *g, *tags, *doc;
    const json_t *c, *res;
    struct result r;
    int before;

    converge(f, 0, false);

    /* The application's own roles, tagged for it, trusting ECS tasks. */
    for (int i = 0; i < 2; i++) {
        const char *role = i == 0 ? "aviary-alpha-execution" : "aviary-alpha-task";
        o = call(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", role));
        const json_t *rj = json_object_get(o, "Role");
        assert_string_equal(app_tag_value(json_object_get(rj, "Tags"), APP_TAG_MANAGED_BY),
                            "aviary");
        assert_string_equal(app_tag_value(json_object_get(rj, "Tags"), APP_TAG_APPLICATION),
                            "alpha");
        assert_non_null(strstr(json_string_value(json_object_get(rj, "AssumeRolePolicyDocument")),
                               "ecs-tasks.amazonaws.com"));
        json_decref(o);
    }
    assert_true(policy_attached(f, "aviary-alpha-execution", POLICY_ARN));
    assert_int_equal(
        count_list(f, "ListAttachedRolePolicies", "aviary-alpha-execution", "AttachedPolicies"), 1);
    /* No secrets: no inline policy on the execution role. */
    assert_int_equal(count_list(f, "ListRolePolicies", "aviary-alpha-execution", "PolicyNames"), 0);
    /* The task role: nothing attached, only PutMetricData in Aviary/Model. */
    assert_int_equal(
        count_list(f, "ListAttachedRolePolicies", "aviary-alpha-task", "AttachedPolicies"), 0);
    assert_int_equal(count_list(f, "ListRolePolicies", "aviary-alpha-task", "PolicyNames"), 1);
    doc = inline_policy(f, "aviary-alpha-task", ROLES_METRICS_POLICY);
    {
        const json_t *st = json_array_get(json_object_get(doc, "Statement"), 0);
        assert_int_equal(json_array_size(json_object_get(doc, "Statement")), 1);
        assert_string_equal(json_string_value(json_object_get(st, "Action")),
                            "cloudwatch:PutMetricData");
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(json_object_get(st, "Condition"), "StringEquals"),
                                "cloudwatch:namespace")),
                            "Aviary/Model");
    }
    json_decref(doc);
    /* The shared role of earlier versions is not created. */
    assert_string_equal(
        call_code(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE)),
        "NoSuchEntity");

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
                        ROLE_ARN "aviary-alpha-execution");
    assert_string_equal(json_string_value(json_object_get(res, "taskRoleArn")),
                        ROLE_ARN "aviary-alpha-task");
    assert_string_equal(json_string_value(json_object_get(res, "logGroup")), "/aviary/alpha");

    before = mutating_calls(f);
    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 0);
    assert_int_equal(mutating_calls(f), before);

    /* A second application gets roles of its own. */
    converge(f, 1, false);
    tags = role_tags(f, "aviary-beta-execution");
    assert_string_equal(app_tag_value(tags, APP_TAG_APPLICATION), "beta");
    json_decref(tags);
    res = json_object_get(json_object_get(f->status[1], "resources"), "cluster");
    assert_string_equal(json_string_value(json_object_get(res, "executionRoleArn")),
                        ROLE_ARN "aviary-beta-execution");
}

static void test_drift_and_update(void **state)
{
    struct fx *f = *state;
    json_t *g, *doc, *want;
    struct result r;

    converge(f, 0, false);
    /* By hand: retention; on the execution role the managed policy, the
     * trust policy and an extra inline policy; on the task role an extra
     * managed policy and a widened metrics policy. */
    json_decref(
        call(f, "logs", "PutRetentionPolicy",
             json_pack("{s:s, s:i}", "logGroupName", "/aviary/alpha", "retentionInDays", 1)));
    json_decref(call(
        f, "iam", "DetachRolePolicy",
        json_pack("{s:s, s:s}", "RoleName", "aviary-alpha-execution", "PolicyArn", POLICY_ARN)));
    json_decref(call(
        f, "iam", "UpdateAssumeRolePolicy",
        json_pack("{s:s, s:s}", "RoleName", "aviary-alpha-execution", "PolicyDocument",
                  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
                  "{\"Service\":\"ec2.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}")));
    json_decref(call(f, "iam", "PutRolePolicy",
                     json_pack("{s:s, s:s, s:s}", "RoleName", "aviary-alpha-execution",
                               "PolicyName", "extra", "PolicyDocument",
                               "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                               "\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}")));
    json_decref(call(f, "iam", "AttachRolePolicy",
                     json_pack("{s:s, s:s}", "RoleName", "aviary-alpha-task", "PolicyArn",
                               "arn:aws:iam::aws:policy/AdministratorAccess")));
    json_decref(call(f, "iam", "PutRolePolicy",
                     json_pack("{s:s, s:s, s:s}", "RoleName", "aviary-alpha-task", "PolicyName",
                               ROLES_METRICS_POLICY, "PolicyDocument",
                               "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                               "\"Allow\",\"Action\":\"cloudwatch:*\",\"Resource\":\"*\"}]}")));
    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 6);
    g = log_group(f, "/aviary/alpha");
    assert_int_equal(json_integer_value(json_object_get(g, "retentionInDays")), 30);
    json_decref(g);
    assert_true(policy_attached(f, "aviary-alpha-execution", POLICY_ARN));
    assert_int_equal(count_list(f, "ListRolePolicies", "aviary-alpha-execution", "PolicyNames"), 0);
    assert_int_equal(
        count_list(f, "ListAttachedRolePolicies", "aviary-alpha-task", "AttachedPolicies"), 0);
    doc = inline_policy(f, "aviary-alpha-task", ROLES_METRICS_POLICY);
    want = roles_metrics_policy();
    assert_true(json_equal(doc, want));
    json_decref(doc);
    json_decref(want);
    {
        json_t *o =
            call(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", "aviary-alpha-execution"));
        assert_non_null(strstr(json_string_value(json_object_get(json_object_get(o, "Role"),
                                                                 "AssumeRolePolicyDocument")),
                               "ecs-tasks.amazonaws.com"));
        json_decref(o);
    }
    assert_non_null(event(f->status[0], "DriftCorrected"));
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
    json_t *doc, *text;
    struct result r;
    char *dump;

    json_object_set_new(f->spec, "secrets",
                        json_pack("{s:s, s:s}", "DB_PASSWORD", SECRET_ARN, "API_KEY", SSM_ARN));
    converge(f, 0, false);
    doc = inline_policy(f, "aviary-alpha-execution", ROLES_SECRETS_POLICY);
    assert_non_null(doc);
    dump = json_dumps(doc, JSON_SORT_KEYS);
    /* Exactly these two: GetSecretValue on the secret, GetParameters on
     * the parameter. */
    assert_non_null(strstr(dump, SECRET_ARN));
    assert_non_null(strstr(dump, SSM_ARN));
    assert_int_equal(json_array_size(json_object_get(doc, "Statement")), 2);
    free(dump);
    json_decref(doc);
    r = run(f, 0, false, false);
    assert_int_equal(r.writes, 0);

    /* Another application without secrets: its roles carry no grant, and
     * alpha's grant is on alpha's role only. */
    json_object_del(f->spec, "secrets");
    converge(f, 1, false);
    assert_null(inline_policy(f, "aviary-beta-execution", ROLES_SECRETS_POLICY));
    assert_int_equal(count_list(f, "ListRolePolicies", "aviary-beta-execution", "PolicyNames"), 0);
    doc = inline_policy(f, "aviary-beta-task", ROLES_METRICS_POLICY);
    text = json_string(SECRET_ARN);
    dump = json_dumps(doc, JSON_SORT_KEYS);
    assert_null(strstr(dump, "secret"));
    free(dump);
    json_decref(text);
    json_decref(doc);

    /* A changed list is an update, not drift. */
    json_object_set_new(f->spec, "secrets", json_pack("{s:s}", "DB_PASSWORD", SECRET_ARN));
    r = run(f, 0, false, false);
    assert_int_equal(r.writes, 1);
    doc = inline_policy(f, "aviary-alpha-execution", ROLES_SECRETS_POLICY);
    assert_int_equal(json_array_size(json_object_get(doc, "Statement")), 1);
    json_decref(doc);
    assert_null(event(f->status[0], "DriftCorrected"));
    /* Changed by hand: drift. */
    json_decref(call(f, "iam", "PutRolePolicy",
                     json_pack("{s:s, s:s, s:s}", "RoleName", "aviary-alpha-execution",
                               "PolicyName", ROLES_SECRETS_POLICY, "PolicyDocument",
                               "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                               "\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\","
                               "\"Resource\":\"*\"}]}")));
    r = run(f, 0, false, false);
    assert_int_equal(r.writes, 1);
    assert_non_null(event(f->status[0], "DriftCorrected"));

    /* Secrets removed from the manifest: the grant goes. */
    json_object_del(f->spec, "secrets");
    converge(f, 0, false);
    assert_null(inline_policy(f, "aviary-alpha-execution", ROLES_SECRETS_POLICY));
    assert_int_equal(run(f, 0, false, false).writes, 0);
}

/* The shared role of earlier versions with the old grants of alpha and
 * beta on it, as those versions left it. */
static void make_legacy_role(struct fx *f)
{
    const char *doc =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
        "\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":[\"" SECRET_ARN "\"]}]}";

    json_decref(call(
        f, "iam", "CreateRole",
        json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "RoleName", APP_EXECUTION_ROLE,
                  "AssumeRolePolicyDocument",
                  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
                  "{\"Service\":\"ecs-tasks.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}",
                  "Tags", "Key", APP_TAG_MANAGED_BY, "Value", APP_TAG_MANAGED_BY_VALUE)));
    for (int i = 0; i < 2; i++) {
        char pname[64];
        snprintf(pname, sizeof(pname), "aviary-%s-secrets", APPS[i]);
        json_decref(call(f, "iam", "PutRolePolicy",
                         json_pack("{s:s, s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyName",
                                   pname, "PolicyDocument", doc)));
    }
}

/* A service "beta-a" in cluster aviary-beta with one task of a task
 * definition whose execution role is the shared one (an application
 * deployed by an earlier version). */
static void make_legacy_service(struct fx *f)
{
    json_t *o;
    char vpc[64], subnet[64], sg[64];

    json_decref(
        call(f, "ecs", "CreateCluster",
             json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}]}", "clusterName",
                       "aviary-beta", "tags", "key", APP_TAG_MANAGED_BY, "value",
                       APP_TAG_MANAGED_BY_VALUE, "key", APP_TAG_APPLICATION, "value", "beta",
                       "settings", "name", "containerInsights", "value", "enabled")));
    o = call(f, "ec2", "CreateVpc", json_pack("{s:s}", "CidrBlock", "10.9.0.0/16"));
    snprintf(vpc, sizeof(vpc), "%s",
             json_string_value(json_object_get(json_object_get(o, "Vpc"), "VpcId")));
    json_decref(o);
    o = call(f, "ec2", "CreateSubnet",
             json_pack("{s:s, s:s, s:s}", "VpcId", vpc, "CidrBlock", "10.9.1.0/24",
                       "AvailabilityZone", "us-east-1a"));
    snprintf(subnet, sizeof(subnet), "%s",
             json_string_value(json_object_get(json_object_get(o, "Subnet"), "SubnetId")));
    json_decref(o);
    o = call(
        f, "ec2", "CreateSecurityGroup",
        json_pack("{s:s, s:s, s:s}", "GroupName", "legacy", "Description", "legacy", "VpcId", vpc));
    snprintf(sg, sizeof(sg), "%s", json_string_value(json_object_get(o, "GroupId")));
    json_decref(o);
    json_decref(call(
        f, "ecs", "RegisterTaskDefinition",
        json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s, s:[{s:s, s:s, s:b, s:[{s:s, s:s}]}]}", "family",
                  "aviary-beta", "executionRoleArn", ROLE_ARN APP_EXECUTION_ROLE, "networkMode",
                  "awsvpc", "requiresCompatibilities", "FARGATE", "cpu", "256", "memory", "512",
                  "containerDefinitions", "name", "app", "image", "registry.example.com/ml/m:1",
                  "essential", 1, "secrets", "name", "DB_PASSWORD", "valueFrom", SECRET_ARN)));
    json_decref(
        call(f, "ecs", "CreateService",
             json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:{s:[s], s:[s]}}}", "cluster", "aviary-beta",
                       "serviceName", "beta-a", "taskDefinition", "aviary-beta:1", "desiredCount",
                       1, "launchType", "FARGATE", "networkConfiguration", "awsvpcConfiguration",
                       "subnets", subnet, "securityGroups", sg)));
}

static void test_legacy_grant_migration(void **state)
{
    struct fx *f = *state;
    json_t *doc;
    const json_t *res;
    struct result r;
    int before;

    make_legacy_role(f);
    json_object_set_new(f->spec, "secrets", json_pack("{s:s}", "DB_PASSWORD", SECRET_ARN));
    /* beta: its service still runs a task definition with the shared role,
     * so its old grant stays (its tasks need it to start). */
    make_legacy_service(f);
    converge(f, 1, false);
    doc = inline_policy(f, APP_EXECUTION_ROLE, "aviary-beta-secrets");
    assert_non_null(doc);
    json_decref(doc);
    assert_non_null(event(f->status[1], "LegacyGrantInUse"));
    res = json_object_get(json_object_get(f->status[1], "resources"), "cluster");
    assert_string_equal(json_string_value(json_object_get(res, "legacyGrant")), "in use");
    /* Checked again only after a while: a resync stays cheap and quiet. */
    before = test_emulator_count_calls(&f->emu, NULL, 0);
    r = run(f, 1, false, false);
    assert_int_equal(r.writes, 0);
    assert_true(test_emulator_count_calls(&f->emu, NULL, 0) - before <= 12);

    /* alpha: nothing runs with the shared role, its old grant goes; its
     * secrets are granted on its own role. */
    converge(f, 0, false);
    assert_null(inline_policy(f, APP_EXECUTION_ROLE, "aviary-alpha-secrets"));
    doc = inline_policy(f, "aviary-alpha-execution", ROLES_SECRETS_POLICY);
    assert_non_null(doc);
    json_decref(doc);
    doc = inline_policy(f, APP_EXECUTION_ROLE, "aviary-beta-secrets");
    assert_non_null(doc);
    json_decref(doc);
    res = json_object_get(json_object_get(f->status[0], "resources"), "cluster");
    assert_string_equal(json_string_value(json_object_get(res, "legacyGrant")), "removed");
    /* The shared role itself stays. */
    assert_string_equal(
        call_code(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE)), "");
    assert_int_equal(run(f, 0, false, false).writes, 0);

    /* beta's service with the old task definition scaled to zero (its
     * tasks stop): the next check removes beta's old grant. */
    json_decref(call(f, "ecs", "UpdateService",
                     json_pack("{s:s, s:s, s:i}", "cluster", "aviary-beta", "service", "beta-a",
                               "desiredCount", 0)));
    res = json_object_get(json_object_get(f->status[1], "resources"), "cluster");
    json_object_set_new((json_t *)res, "legacyGrantCheckedAt", json_integer(0));
    for (int i = 0; i < 100; i++) {
        json_t *left;
        r = run(f, 1, false, false);
        assert_int_not_equal(r.step, APP_STEP_FAILED);
        json_object_set_new((json_t *)res, "legacyGrantCheckedAt", json_integer(0));
        left = inline_policy(f, APP_EXECUTION_ROLE, "aviary-beta-secrets");
        if (left == NULL)
            break;
        json_decref(left);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL); /* the service drains (bounded loop) */
    }
    assert_null(inline_policy(f, APP_EXECUTION_ROLE, "aviary-beta-secrets"));
}

static void test_foreign_and_long_names(void **state)
{
    struct fx *f = *state;
    struct result r;
    json_t *tags;
    static const char long_name[] = "abcdefghij-abcdefghij-abcdef"; /* 28 characters */

    /* A role with the application's task role name but not its tags. */
    json_decref(call(
        f, "iam", "CreateRole",
        json_pack("{s:s, s:s}", "RoleName", "aviary-alpha-task", "AssumeRolePolicyDocument",
                  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
                  "{\"Service\":\"ecs-tasks.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}")));
    r = run(f, 0, false, false);
    assert_int_equal(r.step, APP_STEP_FAILED);
    assert_non_null(strstr(r.error, "aviary-alpha-task"));
    assert_non_null(strstr(r.error, "without the aviary tags"));
    assert_int_equal(count_list(f, "ListRolePolicies", "aviary-alpha-task", "PolicyNames"), 0);
    /* Deletion leaves it. */
    converge(f, 0, true);
    assert_string_equal(
        call_code(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", "aviary-alpha-task")), "");

    /* The longest application name fits IAM's 64 characters. */
    {
        char exec[ROLES_NAME_MAX], task[ROLES_NAME_MAX];
        roles_names(long_name, exec, task);
        assert_true(strlen(exec) <= 64);
        assert_string_equal(exec, "aviary-abcdefghij-abcdefghij-abcdef-execution");
        assert_string_equal(task, "aviary-abcdefghij-abcdefghij-abcdef-task");
    }
    {
        struct reconcile_request req = {.kind = "Application",
                                        .name = long_name,
                                        .spec = f->spec,
                                        .revision = "r1",
                                        .now = (int64_t)time(NULL),
                                        .aws = f->emu.client};
        json_t *status = status_new("Application", long_name);
        struct app_ctx ctx;
        enum app_step step = APP_STEP_WAITING;

        for (int i = 0; i < 20 && step == APP_STEP_WAITING; i++) {
            app_ctx_init(&ctx, &req, status, false);
            step = cluster_converge(&ctx);
            if (step == APP_STEP_FAILED)
                fail_msg("%s", ctx.error);
            app_ctx_clear(&ctx);
        }
        assert_int_equal(step, APP_STEP_READY);
        json_decref(status);
    }
    tags = role_tags(f, "aviary-abcdefghij-abcdefghij-abcdef-execution");
    assert_string_equal(app_tag_value(tags, APP_TAG_APPLICATION), long_name);
    json_decref(tags);
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
    json_t *o, *g, *doc;
    const json_t *c;

    make_legacy_role(f);
    json_object_set_new(f->spec, "secrets", json_pack("{s:s}", "DB_PASSWORD", SECRET_ARN));
    converge(f, 0, false);
    converge(f, 1, false);
    /* An old grant left behind (a crash of an earlier version). */
    json_decref(call(f, "iam", "PutRolePolicy",
                     json_pack("{s:s, s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyName",
                               "aviary-alpha-secrets", "PolicyDocument",
                               "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                               "\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\","
                               "\"Resource\":\"*\"}]}")));
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
    /* alpha's roles are gone, beta's stay. */
    assert_string_equal(
        call_code(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", "aviary-alpha-execution")),
        "NoSuchEntity");
    assert_string_equal(
        call_code(f, "iam", "GetRole", json_pack("{s:s}", "RoleName", "aviary-alpha-task")),
        "NoSuchEntity");
    doc = inline_policy(f, "aviary-beta-execution", ROLES_SECRETS_POLICY);
    assert_non_null(doc);
    json_decref(doc);
    /* The shared role stays; alpha's old grant on it is gone. */
    assert_true(call_code(f, "iam", "GetRole",
                          json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE))[0] == '\0');
    assert_null(inline_policy(f, APP_EXECUTION_ROLE, "aviary-alpha-secrets"));
    /* Deleting again finds nothing to do. */
    assert_int_equal(run(f, 0, false, true).writes, 0);
    assert_null(json_object_get(json_object_get(f->status[0], "resources"), "cluster"));
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
    struct result r;
    const json_t *res, *a;
    size_t i;
    bool exec = false, task = false;

    json_object_set_new(f->spec, "secrets", json_pack("{s:s}", "DB_PASSWORD", SECRET_ARN));
    r = run(f, 0, true, false);
    assert_int_equal(r.step, APP_STEP_READY);
    assert_int_equal(r.writes, 0);
    assert_int_equal(mutating_calls(f), before);
    /* Both roles, the secrets grant, the log group, retention, cluster. */
    json_array_foreach(r.plan, i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *action = json_string_value(json_object_get(a, "action"));
        if (name == NULL || action == NULL || strcmp(action, "create") != 0)
            continue;
        exec = exec || strcmp(name, "aviary-alpha-execution") == 0;
        task = task || strcmp(name, "aviary-alpha-task") == 0;
    }
    assert_true(exec);
    assert_true(task);
    assert_true(json_array_size(r.plan) >= 6);
    res = json_object_get(json_object_get(f->status[0], "resources"), "cluster");
    assert_string_equal(json_string_value(json_object_get(res, "clusterArn")),
                        "(known after apply)");
    assert_string_equal(json_string_value(json_object_get(res, "taskRoleArn")),
                        "(known after apply)");
    json_decref(r.plan);
    /* Converged: an empty plan. */
    converge(f, 0, false);
    r = run(f, 0, true, false);
    assert_int_equal(json_array_size(r.plan), 0);
    json_decref(r.plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_grant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_grant_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_and_long_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_log_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_keeps_shared_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_insights_drift, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
