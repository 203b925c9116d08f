/* Tests for the autoscaling concern (reconcilers/autoscaling.c) against the
 * local AWS emulator: scalable target and target-tracking policies created,
 * quiet when converged, drift reverted, updates in place, the stable slot
 * followed, the rollout pin, plan mode and deletion. */
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
#include "reconcilers/autoscaling.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define APP "demo"

struct fixture {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    struct reconcile_request req;
    char lb_dim[128], tg_dim[2][128];
};

/* Calls AWS directly (the test's own setup and checks); fails the test on error. */
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

/* "arn:...:loadbalancer/app/N/ID" -> "app/N/ID"; "arn:...:targetgroup/N/ID" -> itself. */
static void dimension_of(const char *arn, const char *marker, char *out, size_t size)
{
    const char *p = strstr(arn, marker);
    snprintf(out, size, "%s", p ? p + (strcmp(marker, "loadbalancer/") == 0 ? 13 : 0) : "");
}

/* What the network, cluster, load balancer and service concerns would have
 * made: a VPC with two subnets, the ECS cluster with services demo-a (1
 * task) and demo-b (0), an ALB with the two target groups. */
static void make_prerequisites(struct fixture *f)
{
    json_t *out, *res = json_object_get(f->status, "resources");
    const char *vpc, *sub[2], *sg, *lb_arn, *tg_arn[2], *svc_arn[2];
    json_t *o_vpc, *o_sub[2], *o_sg, *o_lb, *o_tg[2], *o_svc[2], *o_cl, *o_igw;

    o_vpc = call(f, "ec2", "CreateVpc", json_pack("{s:s}", "CidrBlock", "10.9.0.0/16"));
    vpc = str(json_object_get(o_vpc, "Vpc"), "VpcId");
    o_igw = call(f, "ec2", "CreateInternetGateway", json_object());
    json_decref(
        call(f, "ec2", "AttachInternetGateway",
             json_pack("{s:s, s:s}", "VpcId", vpc, "InternetGatewayId",
                       str(json_object_get(o_igw, "InternetGateway"), "InternetGatewayId"))));
    for (int i = 0; i < 2; i++) {
        o_sub[i] = call(f, "ec2", "CreateSubnet",
                        json_pack("{s:s, s:s, s:s}", "VpcId", vpc, "CidrBlock",
                                  i ? "10.9.1.0/24" : "10.9.0.0/24", "AvailabilityZone",
                                  i ? "us-east-1b" : "us-east-1a"));
        sub[i] = str(json_object_get(o_sub[i], "Subnet"), "SubnetId");
    }
    o_sg = call(
        f, "ec2", "CreateSecurityGroup",
        json_pack("{s:s, s:s, s:s}", "GroupName", "demo-sg", "Description", "test", "VpcId", vpc));
    sg = str(o_sg, "GroupId");
    o_lb = call(f, "elbv2", "CreateLoadBalancer",
                json_pack("{s:s, s:[s,s], s:[s]}", "Name", "demo-alb", "Subnets", sub[0], sub[1],
                          "SecurityGroups", sg));
    lb_arn = str(json_array_get(json_object_get(o_lb, "LoadBalancers"), 0), "LoadBalancerArn");
    for (int i = 0; i < 2; i++) {
        o_tg[i] =
            call(f, "elbv2", "CreateTargetGroup",
                 json_pack("{s:s, s:s, s:i, s:s, s:s}", "Name", i ? "demo-tgb" : "demo-tga",
                           "Protocol", "HTTP", "Port", 8080, "VpcId", vpc, "TargetType", "ip"));
        tg_arn[i] =
            str(json_array_get(json_object_get(o_tg[i], "TargetGroups"), 0), "TargetGroupArn");
        dimension_of(tg_arn[i], "targetgroup/", f->tg_dim[i], sizeof(f->tg_dim[i]));
    }
    dimension_of(lb_arn, "loadbalancer/", f->lb_dim, sizeof(f->lb_dim));
    json_decref(call(f, "elbv2", "CreateListener",
                     json_pack("{s:s, s:s, s:i, s:[{s:s, s:s}]}", "LoadBalancerArn", lb_arn,
                               "Protocol", "HTTP", "Port", 80, "DefaultActions", "Type", "forward",
                               "TargetGroupArn", tg_arn[0])));
    o_cl = call(f, "ecs", "CreateCluster", json_pack("{s:s}", "clusterName", "aviary-" APP));
    json_decref(
        call(f, "ecs", "RegisterTaskDefinition",
             json_pack("{s:s, s:s, s:[s], s:s, s:s, s:[{s:s, s:s, s:[{s:i}]}]}", "family",
                       "aviary-" APP, "networkMode", "awsvpc", "requiresCompatibilities", "FARGATE",
                       "cpu", "256", "memory", "512", "containerDefinitions", "name", "app",
                       "image", "example/app:1", "portMappings", "containerPort", 8080)));
    for (int i = 0; i < 2; i++) {
        o_svc[i] = call(f, "ecs", "CreateService",
                        json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:{s:[s], s:[s]}}}", "cluster",
                                  "aviary-" APP, "serviceName", i ? APP "-b" : APP "-a",
                                  "taskDefinition", "aviary-" APP, "desiredCount", i ? 0 : 1,
                                  "launchType", "FARGATE", "networkConfiguration",
                                  "awsvpcConfiguration", "subnets", sub[0], "securityGroups", sg));
        svc_arn[i] = str(json_object_get(o_svc[i], "service"), "serviceArn");
    }
    json_object_set_new(res, "cluster",
                        json_pack("{s:s, s:s}", "clusterName", "aviary-" APP, "clusterArn",
                                  str(json_object_get(o_cl, "cluster"), "clusterArn")));
    json_object_set_new(res, "service",
                        json_pack("{s:[{s:s, s:s}, {s:s, s:s}], s:s}", "services", "name", APP "-a",
                                  "arn", svc_arn[0], "name", APP "-b", "arn", svc_arn[1],
                                  "stableSlot", "a"));
    json_object_set_new(res, "loadbalancer",
                        json_pack("{s:s, s:s, s:[s,s], s:[s,s]}", "loadBalancerArn", lb_arn,
                                  "lbDimension", f->lb_dim, "targetGroupArns", tg_arn[0], tg_arn[1],
                                  "tgDimensions", f->tg_dim[0], f->tg_dim[1]));
    json_decref(o_vpc);
    json_decref(o_igw);
    json_decref(o_sub[0]);
    json_decref(o_sub[1]);
    json_decref(o_sg);
    json_decref(o_lb);
    json_decref(o_tg[0]);
    json_decref(o_tg[1]);
    json_decref(o_cl);
    json_decref(o_svc[0]);
    json_decref(o_svc[1]);
    (void)out;
}

static void set_spec(struct fixture *f, const char *scaling_json)
{
    json_error_t jerr;
    json_t *scaling = json_loads(scaling_json, 0, &jerr);

    assert_non_null(scaling);
    json_decref(f->spec);
    f->spec = json_pack("{s:s, s:i, s:o, s:s}", "image", "example/app:1", "port", 8080, "scaling",
                        scaling, "deletionPolicy", "Delete");
    f->req.spec = f->spec;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0)
        return -1;
    f->status = status_new("Application", APP);
    json_object_set_new(f->status, "resources", json_object());
    f->req.kind = "Application";
    f->req.name = APP;
    f->req.revision = "rev1";
    f->req.generation = 1;
    f->req.now = (int64_t)time(NULL);
    f->req.reconcile_id = "test";
    f->req.aws = f->emu.client;
    set_spec(f, "{\"min\": 2, \"max\": 5, \"cpuPercent\": 70, \"scaleOutCooldown\": \"1m\","
                " \"scaleInCooldown\": \"5m\"}");
    make_prerequisites(f);
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

/* One reconcile of the concern (a fresh context over the same status). */
static enum app_step run(struct fixture *f, bool plan, bool deleting, int *writes)
{
    struct app_ctx ctx;
    enum app_step step;

    app_ctx_init(&ctx, &f->req, f->status, plan);
    step = deleting ? autoscaling_delete(&ctx) : autoscaling_converge(&ctx);
    if (step == APP_STEP_FAILED)
        fail_msg("autoscaling: %s", ctx.error);
    if (writes != NULL)
        *writes = plan ? (int)json_array_size(ctx.plan_actions) : ctx.writes;
    app_ctx_clear(&ctx);
    return step;
}

static void converge(struct fixture *f)
{
    for (int i = 0; i < 10; i++)
        if (run(f, false, false, NULL) == APP_STEP_READY)
            return;
    fail_msg("autoscaling did not converge in 10 passes");
}

static void clear_calls(struct fixture *f)
{
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
}

/* The scalable target of a service, or NULL (new reference). */
static json_t *target(struct fixture *f, const char *service)
{
    char rid[128];
    json_t *out, *t;

    snprintf(rid, sizeof(rid), "service/aviary-" APP "/%s", service);
    out = call(f, "application-autoscaling", "DescribeScalableTargets",
               json_pack("{s:s, s:[s]}", "ServiceNamespace", "ecs", "ResourceIds", rid));
    t = json_incref(json_array_get(json_object_get(out, "ScalableTargets"), 0));
    json_decref(out);
    return t;
}

/* The policies on a service's target: {"name": policy} (new reference). */
static json_t *policies(struct fixture *f, const char *service)
{
    char rid[128];
    json_t *out, *p, *map = json_object();
    size_t i;

    snprintf(rid, sizeof(rid), "service/aviary-" APP "/%s", service);
    out = call(f, "application-autoscaling", "DescribeScalingPolicies",
               json_pack("{s:s, s:s}", "ServiceNamespace", "ecs", "ResourceId", rid));
    json_array_foreach(json_object_get(out, "ScalingPolicies"), i, p)
        json_object_set(map, str(p, "PolicyName"), p);
    json_decref(out);
    return map;
}

static json_t *tt_config(json_t *pols, const char *name)
{
    json_t *p = json_object_get(pols, name);
    assert_non_null(p);
    return json_object_get(p, "TargetTrackingScalingPolicyConfiguration");
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

/* True when an event's message contains needle. */
static bool has_message(struct fixture *f, const char *needle)
{
    json_t *e;
    size_t i;

    json_array_foreach(json_object_get(f->status, "events"), i, e)
    {
        if (strstr(str(e, "message"), needle) != NULL)
            return true;
    }
    return false;
}

static void test_create_then_quiet(void **state)
{
    struct fixture *f = *state;
    json_t *t, *pols, *cfg, *res;
    int writes = -1;

    converge(f);
    t = target(f, APP "-a");
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 2);
    assert_int_equal(json_integer_value(json_object_get(t, "MaxCapacity")), 5);
    json_decref(t);
    pols = policies(f, APP "-a");
    assert_int_equal(json_object_size(pols), 1);
    cfg = tt_config(pols, "aviary-" APP "-cpu");
    assert_true(json_number_value(json_object_get(cfg, "TargetValue")) == 70.0);
    assert_string_equal(
        str(json_object_get(cfg, "PredefinedMetricSpecification"), "PredefinedMetricType"),
        "ECSServiceAverageCPUUtilization");
    assert_int_equal(json_integer_value(json_object_get(cfg, "ScaleOutCooldown")), 60);
    assert_int_equal(json_integer_value(json_object_get(cfg, "ScaleInCooldown")), 300);
    json_decref(pols);
    res = json_object_get(json_object_get(f->status, "resources"), "autoscaling");
    assert_string_equal(str(res, "resourceId"), "service/aviary-" APP "/" APP "-a");
    assert_int_equal(json_array_size(json_object_get(res, "policyNames")), 1);
    /* registering min 2 above the service's 1 task is AWS scaling it, not aviary */
    assert_null(target(f, APP "-b"));

    clear_calls(f);
    assert_int_equal(run(f, false, false, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_true(test_emulator_count_calls(&f->emu, NULL, 0) <= 2);
}

static void test_optional_policies_added_and_removed(void **state)
{
    struct fixture *f = *state;
    json_t *pols, *pre;
    char label[300];

    set_spec(f, "{\"min\": 1, \"max\": 4, \"cpuPercent\": 60, \"memoryPercent\": 75,"
                " \"requestsPerTarget\": 500, \"scaleOutCooldown\": \"30s\","
                " \"scaleInCooldown\": \"2m\"}");
    converge(f);
    pols = policies(f, APP "-a");
    assert_int_equal(json_object_size(pols), 3);
    pre =
        json_object_get(tt_config(pols, "aviary-" APP "-memory"), "PredefinedMetricSpecification");
    assert_string_equal(str(pre, "PredefinedMetricType"), "ECSServiceAverageMemoryUtilization");
    pre = json_object_get(tt_config(pols, "aviary-" APP "-requests"),
                          "PredefinedMetricSpecification");
    assert_string_equal(str(pre, "PredefinedMetricType"), "ALBRequestCountPerTarget");
    snprintf(label, sizeof(label), "%s/%s", f->lb_dim, f->tg_dim[0]);
    assert_string_equal(str(pre, "ResourceLabel"), label);
    assert_true(json_number_value(json_object_get(tt_config(pols, "aviary-" APP "-requests"),
                                                  "TargetValue")) == 500.0);
    assert_int_equal(json_integer_value(
                         json_object_get(tt_config(pols, "aviary-" APP "-cpu"), "ScaleInCooldown")),
                     120);
    json_decref(pols);

    /* A policy someone else put on the target is not aviary's: left alone. */
    json_decref(
        call(f, "application-autoscaling", "PutScalingPolicy",
             json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:f, s:{s:s}}}", "ServiceNamespace", "ecs",
                       "ResourceId", "service/aviary-" APP "/" APP "-a", "ScalableDimension",
                       "ecs:service:DesiredCount", "PolicyName", "team-manual", "PolicyType",
                       "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration",
                       "TargetValue", 40.0, "PredefinedMetricSpecification", "PredefinedMetricType",
                       "ECSServiceAverageCPUUtilization")));

    set_spec(f, "{\"min\": 1, \"max\": 4, \"cpuPercent\": 60, \"scaleOutCooldown\": \"30s\","
                " \"scaleInCooldown\": \"2m\"}");
    converge(f);
    pols = policies(f, APP "-a");
    assert_int_equal(json_object_size(pols), 2);
    assert_non_null(json_object_get(pols, "aviary-" APP "-cpu"));
    assert_non_null(json_object_get(pols, "team-manual"));
    json_decref(pols);
}

static void test_drift_reverted(void **state)
{
    struct fixture *f = *state;
    json_t *t, *pols;

    converge(f);
    /* By hand: limits changed, scaling suspended, the CPU target lowered. */
    json_decref(
        call(f, "application-autoscaling", "RegisterScalableTarget",
             json_pack("{s:s, s:s, s:s, s:i, s:i, s:{s:b}}", "ServiceNamespace", "ecs",
                       "ResourceId", "service/aviary-" APP "/" APP "-a", "ScalableDimension",
                       "ecs:service:DesiredCount", "MinCapacity", 1, "MaxCapacity", 9,
                       "SuspendedState", "DynamicScalingInSuspended", 1)));
    json_decref(
        call(f, "application-autoscaling", "PutScalingPolicy",
             json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:f, s:{s:s}, s:i}}", "ServiceNamespace",
                       "ecs", "ResourceId", "service/aviary-" APP "/" APP "-a", "ScalableDimension",
                       "ecs:service:DesiredCount", "PolicyName", "aviary-" APP "-cpu", "PolicyType",
                       "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration",
                       "TargetValue", 30.0, "PredefinedMetricSpecification", "PredefinedMetricType",
                       "ECSServiceAverageCPUUtilization", "ScaleOutCooldown", 60)));
    converge(f);
    t = target(f, APP "-a");
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 2);
    assert_int_equal(json_integer_value(json_object_get(t, "MaxCapacity")), 5);
    assert_false(json_is_true(
        json_object_get(json_object_get(t, "SuspendedState"), "DynamicScalingInSuspended")));
    json_decref(t);
    pols = policies(f, APP "-a");
    assert_true(json_number_value(
                    json_object_get(tt_config(pols, "aviary-" APP "-cpu"), "TargetValue")) == 70.0);
    assert_int_equal(json_integer_value(
                         json_object_get(tt_config(pols, "aviary-" APP "-cpu"), "ScaleInCooldown")),
                     300);
    json_decref(pols);
    assert_true(has_event(f, "DriftCorrected"));
    /* The changes read as a list, not as a JSON array. */
    assert_true(has_message(f, "(MinCapacity: 1 -> 2, MaxCapacity: 9 -> 5"));
    assert_false(has_message(f, "[\""));
}

static void test_update_in_place(void **state)
{
    struct fixture *f = *state;
    json_t *t, *pols;

    converge(f);
    assert_false(has_event(f, "DriftCorrected"));
    set_spec(f, "{\"min\": 3, \"max\": 8, \"cpuPercent\": 50, \"scaleOutCooldown\": \"1m\","
                " \"scaleInCooldown\": \"5m\"}");
    converge(f);
    t = target(f, APP "-a");
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 3);
    assert_int_equal(json_integer_value(json_object_get(t, "MaxCapacity")), 8);
    json_decref(t);
    pols = policies(f, APP "-a");
    assert_true(json_number_value(
                    json_object_get(tt_config(pols, "aviary-" APP "-cpu"), "TargetValue")) == 50.0);
    json_decref(pols);
    /* A spec change is an update, not drift. */
    assert_false(has_event(f, "DriftCorrected"));
    assert_true(has_event(f, "Updated"));
}

static void test_follows_stable_slot(void **state)
{
    struct fixture *f = *state;
    json_t *svc = json_object_get(json_object_get(f->status, "resources"), "service");
    json_t *t, *pols;

    converge(f);
    json_object_set_new(svc, "stableSlot", json_string("b"));
    converge(f);
    assert_null(target(f, APP "-a"));
    t = target(f, APP "-b");
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 2);
    json_decref(t);
    pols = policies(f, APP "-b");
    assert_non_null(json_object_get(pols, "aviary-" APP "-cpu"));
    json_decref(pols);
    assert_string_equal(
        str(json_object_get(json_object_get(f->status, "resources"), "autoscaling"), "resourceId"),
        "service/aviary-" APP "/" APP "-b");
}

static void test_pin_min(void **state)
{
    struct fixture *f = *state;
    struct app_ctx ctx;
    json_t *t, *res;
    int writes = -1;

    converge(f);
    json_object_set_new(f->status, "rollout", json_pack("{s:s}", "phase", "Progressing"));
    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(autoscaling_pin_min(&ctx, 4), 0);
    assert_int_equal(ctx.writes, 1);
    app_ctx_clear(&ctx);
    t = target(f, APP "-a");
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 4);
    assert_int_equal(json_integer_value(json_object_get(t, "MaxCapacity")), 5);
    json_decref(t);
    res = json_object_get(json_object_get(f->status, "resources"), "autoscaling");
    assert_int_equal(json_integer_value(json_object_get(res, "pinnedMin")), 4);

    /* Pinning again is quiet; converge keeps the pin during the rollout. */
    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(autoscaling_pin_min(&ctx, 4), 0);
    assert_int_equal(ctx.writes, 0);
    app_ctx_clear(&ctx);
    assert_int_equal(run(f, false, false, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);
    json_object_set_new(json_object_get(f->status, "rollout"), "phase", json_string("Paused"));
    assert_int_equal(run(f, false, false, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);

    /* A minimum above max is clamped to max. */
    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(autoscaling_pin_min(&ctx, 50), 0);
    app_ctx_clear(&ctx);
    t = target(f, APP "-a");
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 5);
    json_decref(t);

    /* Rollout over: converge restores spec.scaling.min and drops the pin. */
    json_object_set_new(json_object_get(f->status, "rollout"), "phase", json_string("Ready"));
    converge(f);
    t = target(f, APP "-a");
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 2);
    json_decref(t);
    assert_null(json_object_get(res, "pinnedMin"));

    /* Unpinning explicitly (min < 0) restores spec.scaling.min too. */
    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(autoscaling_pin_min(&ctx, 3), 0);
    assert_int_equal(autoscaling_pin_min(&ctx, -1), 0);
    app_ctx_clear(&ctx);
    t = target(f, APP "-a");
    assert_int_equal(json_integer_value(json_object_get(t, "MinCapacity")), 2);
    json_decref(t);
    assert_null(json_object_get(res, "pinnedMin"));
}

static void test_plan_makes_no_change(void **state)
{
    struct fixture *f = *state;
    int actions = 0;

    set_spec(f, "{\"min\": 2, \"max\": 5, \"cpuPercent\": 70, \"memoryPercent\": 60,"
                " \"scaleOutCooldown\": \"1m\", \"scaleInCooldown\": \"5m\"}");
    clear_calls(f);
    assert_int_equal(run(f, true, false, &actions), APP_STEP_READY);
    assert_true(actions >= 3); /* target, two policies (with their change notes) */
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_null(target(f, APP "-a"));

    /* Converged, then a changed spec: plan lists the update, changes nothing. */
    converge(f);
    set_spec(f, "{\"min\": 2, \"max\": 7, \"cpuPercent\": 70, \"memoryPercent\": 60,"
                " \"scaleOutCooldown\": \"1m\", \"scaleInCooldown\": \"5m\"}");
    clear_calls(f);
    assert_int_equal(run(f, true, false, &actions), APP_STEP_READY);
    assert_true(actions >= 1);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

static void test_delete_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    json_t *svc = json_object_get(json_object_get(f->status, "resources"), "service");
    json_t *pols;

    set_spec(f, "{\"min\": 1, \"max\": 3, \"cpuPercent\": 70, \"memoryPercent\": 60,"
                " \"scaleOutCooldown\": \"1m\", \"scaleInCooldown\": \"5m\"}");
    converge(f);
    /* a stale target on the other slot (e.g. a crash mid-move) goes too */
    json_object_set_new(svc, "stableSlot", json_string("b"));
    assert_int_equal(run(f, false, true, NULL), APP_STEP_READY);
    assert_null(target(f, APP "-a"));
    assert_null(target(f, APP "-b"));
    pols = policies(f, APP "-a");
    assert_int_equal(json_object_size(pols), 0);
    json_decref(pols);
    /* Deleting again: nothing left, READY, no writes. */
    clear_calls(f);
    assert_int_equal(run(f, false, true, NULL), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

static void test_waits_for_the_service(void **state)
{
    struct fixture *f = *state;
    json_t *res = json_object_get(f->status, "resources");
    json_t *svc = json_deep_copy(json_object_get(res, "service"));

    /* the service concern has not recorded the services yet */
    json_object_del(res, "service");
    assert_int_equal(run(f, false, false, NULL), APP_STEP_WAITING);
    /* recorded, but ECS does not know it (yet): waiting, not a terminal failure */
    json_object_set_new(json_array_get(json_object_get(svc, "services"), 0), "name",
                        json_string(APP "-x"));
    json_object_set_new(res, "service", svc);
    assert_int_equal(run(f, false, false, NULL), APP_STEP_WAITING);
    assert_null(target(f, APP "-x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_policies_added_and_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift_reverted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follows_stable_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_min, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_makes_no_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_for_the_service, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
