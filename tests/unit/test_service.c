/* Tests for the service concern (reconcilers/service.c, taskdef.c) against
 * the local AWS emulator: task definitions per revision and slot, the two
 * ECS services, autoscaling respected, drift reverted, revisions replaced
 * all at once (through the rollout concern, which decides which revision
 * runs on which slot), deletion, plan mode. The prerequisites of other concerns
 * (VPC, subnets, security group, load balancer, target groups, listener)
 * are made here with plain AWS calls. */
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
#include "reconcilers/rollout.h"
#include "reconcilers/status.h"
#include "reconcilers/taskdef.h"
#include "support/emulator.h"

#define APP        "svcapp"
#define IMAGE1     "registry.example.com/ml/svcapp:1.0"
#define IMAGE2     "registry.example.com/ml/svcapp:2.0"
#define MAX_PASSES 200

/* A defaulted spec, as `aviary validate -o json` prints it (the parts the
 * concerns read). */
static const char *SPEC_JSON =
    "{\"image\": \"" IMAGE1 "\", \"port\": 8080,"
    " \"env\": {\"MODEL_VERSION\": \"1\", \"B_FLAG\": \"x\"},"
    " \"scaling\": {\"min\": 2, \"max\": 4, \"cpuPercent\": 70, \"scaleOutCooldown\": \"1m\","
    "  \"scaleInCooldown\": \"5m\"},"
    " \"network\": {\"cidr\": \"10.1.0.0/16\", \"natGateway\": false},"
    " \"cpu\": 256, \"memory\": 512, \"architecture\": \"X86_64\","
    " \"healthCheck\": {\"path\": \"/\", \"interval\": \"15s\", \"timeout\": \"5s\","
    "  \"healthyThreshold\": 3, \"unhealthyThreshold\": 3, \"matcher\": \"200-399\","
    "  \"gracePeriod\": \"30s\"},"
    " \"logs\": {\"retentionDays\": 30}, \"deletionPolicy\": \"Delete\","
    " \"rollout\": {\"strategy\": \"canary\"}}";

struct fx {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    char revision[32];
    char vpc[64], subnets[2][64], sg_tasks[64], sg_lb[64];
    char lb[256], listener[256], tg[2][256];
};

static json_t *call(struct fx *f, const char *service, const char *op, json_t *in)
{
    json_t *out = NULL;
    struct aws_error err;
    int rc = aws_call(f->emu.client, service, op, in, &out, &err);

    if (rc != 0)
        fail_msg("%s.%s: %s: %s", service, op, err.code, err.message);
    json_decref(in);
    return out;
}

static void copy_str(char *dst, size_t len, const json_t *v)
{
    assert_non_null(json_string_value(v));
    snprintf(dst, len, "%s", json_string_value(v));
}

/* What network.c and loadbalancer.c would have made and recorded. */
static void make_prerequisites(struct fx *f)
{
    json_t *o, *net, *lb;
    const char *azs[2] = {"us-east-1a", "us-east-1b"};
    const char *cidrs[2] = {"10.1.0.0/24", "10.1.1.0/24"};

    o = call(f, "ec2", "CreateVpc", json_pack("{s:s}", "CidrBlock", "10.1.0.0/16"));
    copy_str(f->vpc, sizeof(f->vpc), json_object_get(json_object_get(o, "Vpc"), "VpcId"));
    json_decref(o);
    o = call(f, "ec2", "CreateInternetGateway", NULL);
    json_t *igw =
        json_incref(json_object_get(json_object_get(o, "InternetGateway"), "InternetGatewayId"));
    json_decref(o);
    json_decref(call(f, "ec2", "AttachInternetGateway",
                     json_pack("{s:o, s:s}", "InternetGatewayId", igw, "VpcId", f->vpc)));
    for (int i = 0; i < 2; i++) {
        o = call(f, "ec2", "CreateSubnet",
                 json_pack("{s:s, s:s, s:s}", "VpcId", f->vpc, "CidrBlock", cidrs[i],
                           "AvailabilityZone", azs[i]));
        copy_str(f->subnets[i], sizeof(f->subnets[i]),
                 json_object_get(json_object_get(o, "Subnet"), "SubnetId"));
        json_decref(o);
    }
    o = call(f, "ec2", "CreateSecurityGroup",
             json_pack("{s:s, s:s, s:s}", "GroupName", "lb", "Description", "lb", "VpcId", f->vpc));
    copy_str(f->sg_lb, sizeof(f->sg_lb), json_object_get(o, "GroupId"));
    json_decref(o);
    o = call(f, "ec2", "CreateSecurityGroup",
             json_pack("{s:s, s:s, s:s}", "GroupName", "tasks", "Description", "tasks", "VpcId",
                       f->vpc));
    copy_str(f->sg_tasks, sizeof(f->sg_tasks), json_object_get(o, "GroupId"));
    json_decref(o);
    o = call(f, "elbv2", "CreateLoadBalancer",
             json_pack("{s:s, s:[s, s], s:[s], s:s}", "Name", APP "-alb", "Subnets", f->subnets[0],
                       f->subnets[1], "SecurityGroups", f->sg_lb, "Type", "application"));
    copy_str(
        f->lb, sizeof(f->lb),
        json_object_get(json_array_get(json_object_get(o, "LoadBalancers"), 0), "LoadBalancerArn"));
    json_decref(o);
    for (int i = 0; i < 2; i++) {
        o = call(f, "elbv2", "CreateTargetGroup",
                 json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:i, s:i}", "Name",
                           i == 0 ? APP "-tga" : APP "-tgb", "Protocol", "HTTP", "Port", 8080,
                           "VpcId", f->vpc, "TargetType", "ip", "HealthCheckPath", "/",
                           "HealthCheckIntervalSeconds", 10, "HealthyThresholdCount", 2));
        copy_str(f->tg[i], sizeof(f->tg[i]),
                 json_object_get(json_array_get(json_object_get(o, "TargetGroups"), 0),
                                 "TargetGroupArn"));
        json_decref(o);
    }
    o = call(f, "elbv2", "CreateListener",
             json_pack("{s:s, s:s, s:i, s:[{s:s, s:{s:[{s:s, s:i}, {s:s, s:i}]}}]}",
                       "LoadBalancerArn", f->lb, "Protocol", "HTTP", "Port", 80, "DefaultActions",
                       "Type", "forward", "ForwardConfig", "TargetGroups", "TargetGroupArn",
                       f->tg[0], "Weight", 100, "TargetGroupArn", f->tg[1], "Weight", 0));
    copy_str(f->listener, sizeof(f->listener),
             json_object_get(json_array_get(json_object_get(o, "Listeners"), 0), "ListenerArn"));
    json_decref(o);

    net = json_pack("{s:[s, s], s:s, s:b, s:s}", "taskSubnets", f->subnets[0], f->subnets[1],
                    "tasksSecurityGroup", f->sg_tasks, "assignPublicIp", 1, "vpcId", f->vpc);
    lb = json_pack("{s:s, s:s, s:[s, s]}", "loadBalancerArn", f->lb, "httpListenerArn", f->listener,
                   "targetGroupArns", f->tg[0], f->tg[1]);
    json_object_set_new(json_object_get(f->status, "resources"), "network", net);
    json_object_set_new(json_object_get(f->status, "resources"), "loadbalancer", lb);
}

static int setup(void **state)
{
    static struct fx f;

    memset(&f, 0, sizeof(f));
    if (test_emulator_start(&f.emu, 0.01) != 0)
        return -1;
    f.spec = json_loads(SPEC_JSON, 0, NULL);
    f.status = status_new("Application", APP);
    json_object_set_new(f.status, "resources", json_object());
    snprintf(f.revision, sizeof(f.revision), "r1000000001");
    make_prerequisites(&f);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    json_decref(f->spec);
    json_decref(f->status);
    test_emulator_stop(&f->emu);
    return 0;
}

/* One reconcile of the concerns that run the slots (cluster, service,
 * rollout); *writes gets the writes it made. A pass whose rollout still
 * waits for something (tasks, the scale-down delay) is WAITING. */
static enum app_step pass(struct fx *f, bool plan, bool deleting, json_t **plan_actions,
                          int *writes)
{
    struct reconcile_request req = {.kind = "Application",
                                    .name = APP,
                                    .spec = f->spec,
                                    .revision = f->revision,
                                    .generation = 1,
                                    .now = (int64_t)time(NULL),
                                    .aws = f->emu.client};
    struct app_ctx ctx;
    enum app_step step;

    app_ctx_init(&ctx, &req, f->status, plan);
    if (deleting) {
        step = service_delete(&ctx);
        if (step == APP_STEP_READY)
            step = cluster_delete(&ctx);
    } else {
        step = cluster_converge(&ctx);
        if (step == APP_STEP_READY)
            step = service_converge(&ctx);
        if (step == APP_STEP_READY)
            step = rollout_converge(&ctx, NULL);
        if (step == APP_STEP_READY && ctx.requeue_ms > 0 && !plan)
            step = APP_STEP_WAITING;
    }
    if (step == APP_STEP_FAILED)
        print_message("pass failed: %s\n", ctx.error);
    if (writes != NULL)
        *writes = ctx.writes;
    if (plan_actions != NULL)
        *plan_actions = json_incref(ctx.plan_actions);
    app_ctx_clear(&ctx);
    return step;
}

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static json_t *describe_services(struct fx *f);

/* Passes until READY (bounded); fails the test on FAILED. */
static int converge_fx(struct fx *f, bool deleting)
{
    for (int i = 0; i < MAX_PASSES; i++) {
        enum app_step step = pass(f, false, deleting, NULL, NULL);
        assert_int_not_equal(step, APP_STEP_FAILED);
        if (step == APP_STEP_READY)
            return i + 1;
        nap(50);
    }
    /* Say why: the services (events, deployments) as ECS sees them. */
    {
        json_t *d = describe_services(f);
        char *text = json_dumps(d, JSON_INDENT(1));
        fprintf(stderr, "services: %s\n", text ? text : "?");
        free(text);
        json_decref(d);
    }
    fail_msg("did not converge in %d passes", MAX_PASSES);
    return -1;
}

static json_t *describe_services(struct fx *f)
{
    return call(f, "ecs", "DescribeServices",
                json_pack("{s:s, s:[s, s], s:[s]}", "cluster", "aviary-" APP, "services", APP "-a",
                          APP "-b", "include", "TAGS"));
}

static const json_t *service_of(const json_t *described, const char *name)
{
    size_t i;
    const json_t *s;

    json_array_foreach(json_object_get(described, "services"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "serviceName")), name) == 0)
            return s;
    }
    return NULL;
}

static json_t *describe_td(struct fx *f, const char *arn)
{
    return call(f, "ecs", "DescribeTaskDefinition",
                json_pack("{s:s, s:[s]}", "taskDefinition", arn, "include", "TAGS"));
}

static int healthy_targets(struct fx *f, int slot)
{
    json_t *o =
        call(f, "elbv2", "DescribeTargetHealth", json_pack("{s:s}", "TargetGroupArn", f->tg[slot]));
    size_t i;
    const json_t *d;
    int n = 0;

    json_array_foreach(json_object_get(o, "TargetHealthDescriptions"), i, d)
    {
        const char *state =
            json_string_value(json_object_get(json_object_get(d, "TargetHealth"), "State"));
        if (state != NULL && strcmp(state, "healthy") == 0)
            n++;
    }
    json_decref(o);
    return n;
}

static int mutating_calls(struct fx *f)
{
    return test_emulator_count_calls(&f->emu, NULL, 1);
}

static bool has_event(const json_t *status, const char *reason)
{
    size_t i;
    const json_t *e;

    json_array_foreach(json_object_get(status, "events"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "reason")), reason) == 0)
            return true;
    }
    return false;
}

static const char *env_value(const json_t *container, const char *name)
{
    size_t i;
    const json_t *e;

    json_array_foreach(json_object_get(container, "environment"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return json_string_value(json_object_get(e, "value"));
    }
    return NULL;
}

static void test_converge_from_nothing(void **state)
{
    struct fx *f = *state;
    json_t *d, *td;
    const json_t *a, *b, *c, *awsvpc, *dc, *tdd, *lbs;
    int before, writes;

    converge_fx(f, false);

    d = describe_services(f);
    a = service_of(d, APP "-a");
    b = service_of(d, APP "-b");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(a, "status")), "ACTIVE");
    assert_int_equal(json_integer_value(json_object_get(a, "desiredCount")), 2);
    assert_int_equal(json_integer_value(json_object_get(a, "runningCount")), 2);
    assert_int_equal(json_integer_value(json_object_get(b, "desiredCount")), 0);
    assert_string_equal(json_string_value(json_object_get(a, "launchType")), "FARGATE");
    assert_string_equal(json_string_value(json_object_get(a, "propagateTags")), "SERVICE");
    assert_true(json_is_true(json_object_get(a, "enableECSManagedTags")));
    assert_int_equal(json_integer_value(json_object_get(a, "healthCheckGracePeriodSeconds")), 30);
    dc = json_object_get(a, "deploymentConfiguration");
    assert_false(
        json_is_true(json_object_get(json_object_get(dc, "deploymentCircuitBreaker"), "enable")));
    assert_int_equal(json_integer_value(json_object_get(dc, "minimumHealthyPercent")), 100);
    assert_int_equal(json_integer_value(json_object_get(dc, "maximumPercent")), 200);
    awsvpc = json_object_get(json_object_get(a, "networkConfiguration"), "awsvpcConfiguration");
    assert_string_equal(json_string_value(json_object_get(awsvpc, "assignPublicIp")), "ENABLED");
    assert_int_equal(json_array_size(json_object_get(awsvpc, "subnets")), 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(awsvpc, "securityGroups"), 0)),
        f->sg_tasks);
    for (int slot = 0; slot < 2; slot++) {
        const json_t *s = slot == 0 ? a : b;
        lbs = json_object_get(s, "loadBalancers");
        assert_int_equal(json_array_size(lbs), 1);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(lbs, 0), "targetGroupArn")),
            f->tg[slot]);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(lbs, 0), "containerName")), "app");
        assert_int_equal(
            json_integer_value(json_object_get(json_array_get(lbs, 0), "containerPort")), 8080);
        assert_string_equal(app_tag_value(json_object_get(s, "tags"), APP_TAG_SLOT),
                            slot == 0 ? "a" : "b");
        assert_string_equal(app_tag_value(json_object_get(s, "tags"), APP_TAG_REVISION),
                            f->revision);
        assert_string_equal(app_tag_value(json_object_get(s, "tags"), APP_TAG_APPLICATION), APP);
    }

    /* The task definition of the stable slot. */
    td = describe_td(f, json_string_value(json_object_get(a, "taskDefinition")));
    tdd = json_object_get(td, "taskDefinition");
    assert_string_equal(json_string_value(json_object_get(tdd, "family")), "aviary-" APP);
    assert_string_equal(json_string_value(json_object_get(tdd, "networkMode")), "awsvpc");
    assert_string_equal(json_string_value(json_object_get(tdd, "cpu")), "256");
    assert_string_equal(json_string_value(json_object_get(tdd, "memory")), "512");
    assert_string_equal(json_string_value(json_object_get(json_object_get(tdd, "runtimePlatform"),
                                                          "cpuArchitecture")),
                        "X86_64");
    assert_string_equal(json_string_value(json_object_get(tdd, "executionRoleArn")),
                        "arn:aws:iam::123456789012:role/aviary-" APP "-execution");
    assert_string_equal(json_string_value(json_object_get(tdd, "taskRoleArn")),
                        "arn:aws:iam::123456789012:role/aviary-" APP "-task");
    c = json_array_get(json_object_get(tdd, "containerDefinitions"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "app");
    assert_string_equal(json_string_value(json_object_get(c, "image")), IMAGE1);
    assert_string_equal(env_value(c, "MODEL_VERSION"), "1");
    assert_string_equal(env_value(c, "AVIARY_REVISION"), f->revision);
    assert_string_equal(env_value(c, "AVIARY_SLOT"), "a");
    /* Sorted by name. */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(c, "environment"), 0), "name")),
                        "AVIARY_REVISION");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(c, "logConfiguration"), "options"), "awslogs-group")),
        "/aviary/" APP);
    assert_string_equal(app_tag_value(json_object_get(td, "tags"), APP_TAG_REVISION), f->revision);
    assert_string_equal(app_tag_value(json_object_get(td, "tags"), APP_TAG_SLOT), "a");
    json_decref(td);
    json_decref(d);

    /* Healthy tasks in the stable slot's target group, and the status. */
    assert_int_equal(healthy_targets(f, 0), 2);
    assert_string_equal(json_string_value(json_object_get(f->status, "observedRevision")),
                        f->revision);
    {
        const json_t *r = json_object_get(f->status, "rollout");
        const json_t *res = json_object_get(json_object_get(f->status, "resources"), "service");
        assert_string_equal(json_string_value(json_object_get(r, "stableSlot")), "a");
        assert_string_equal(json_string_value(json_object_get(r, "stableRevision")), f->revision);
        assert_string_equal(json_string_value(json_object_get(r, "phase")), "Idle");
        assert_int_equal(json_integer_value(json_object_get(r, "weight")), 0);
        assert_string_equal(json_string_value(json_object_get(res, "stableSlot")), "a");
        assert_non_null(json_string_value(json_object_get(res, "taskDefinitionArn")));
        assert_int_equal(json_array_size(json_object_get(res, "services")), 2);
    }

    /* Converged means quiet: read calls only. */
    before = mutating_calls(f);
    assert_int_equal(pass(f, false, false, NULL, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(mutating_calls(f), before);
}

static void update_service(struct fx *f, json_t *in)
{
    json_object_set_new(in, "cluster", json_string("aviary-" APP));
    json_decref(call(f, "ecs", "UpdateService", in));
}

static json_int_t desired_of(struct fx *f, const char *name)
{
    json_t *d = describe_services(f);
    json_int_t n = json_integer_value(json_object_get(service_of(d, name), "desiredCount"));

    json_decref(d);
    return n;
}

static void test_drift_reverted(void **state)
{
    struct fx *f = *state;
    json_t *d, *o;
    char hand_td[256];
    int writes;

    converge_fx(f, false);

    /* The idle slot scaled by hand. */
    update_service(f, json_pack("{s:s, s:i}", "service", APP "-b", "desiredCount", 3));
    assert_int_equal(pass(f, false, false, NULL, &writes), APP_STEP_READY);
    assert_true(writes > 0);
    assert_int_equal(desired_of(f, APP "-b"), 0);
    assert_true(has_event(f->status, "DriftCorrected"));

    /* The stable slot's network configuration and task definition changed
     * by hand. */
    o = call(f, "ecs", "RegisterTaskDefinition",
             json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s, s:[{s:s, s:s, s:[{s:i}]}]}", "family",
                       "by-hand", "networkMode", "awsvpc", "requiresCompatibilities", "FARGATE",
                       "cpu", "256", "memory", "512", "executionRoleArn",
                       "arn:aws:iam::123456789012:role/" APP_EXECUTION_ROLE, "containerDefinitions",
                       "name", "app", "image", "nginx:latest", "portMappings", "containerPort",
                       8080));
    copy_str(hand_td, sizeof(hand_td),
             json_object_get(json_object_get(o, "taskDefinition"), "taskDefinitionArn"));
    json_decref(o);
    update_service(f, json_pack("{s:s, s:s, s:{s:{s:[s], s:[s], s:s}}}", "service", APP "-a",
                                "taskDefinition", hand_td, "networkConfiguration",
                                "awsvpcConfiguration", "subnets", f->subnets[0], "securityGroups",
                                f->sg_lb, "assignPublicIp", "DISABLED"));
    converge_fx(f, false);
    d = describe_services(f);
    {
        const json_t *a = service_of(d, APP "-a");
        const json_t *awsvpc =
            json_object_get(json_object_get(a, "networkConfiguration"), "awsvpcConfiguration");
        assert_string_not_equal(json_string_value(json_object_get(a, "taskDefinition")), hand_td);
        assert_string_equal(json_string_value(json_object_get(a, "taskDefinition")),
                            json_string_value(json_object_get(
                                json_object_get(json_object_get(f->status, "resources"), "service"),
                                "taskDefinitionArn")));
        assert_int_equal(json_array_size(json_object_get(awsvpc, "subnets")), 2);
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(awsvpc, "securityGroups"), 0)),
            f->sg_tasks);
        assert_string_equal(json_string_value(json_object_get(awsvpc, "assignPublicIp")),
                            "ENABLED");
    }
    json_decref(d);
    assert_int_equal(pass(f, false, false, NULL, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);
}

static void test_autoscaler_not_fought(void **state)
{
    struct fx *f = *state;
    int writes, before;

    converge_fx(f, false);
    /* "Autoscaling" sets 3 (within [2, 4]): left alone. */
    update_service(f, json_pack("{s:s, s:i}", "service", APP "-a", "desiredCount", 3));
    converge_fx(f, false); /* the third task starts */
    before = mutating_calls(f);
    assert_int_equal(pass(f, false, false, NULL, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(mutating_calls(f), before);
    assert_int_equal(desired_of(f, APP "-a"), 3);
    /* Outside [min, max] (6 > 4): clamped to max, not reset to min. */
    update_service(f, json_pack("{s:s, s:i}", "service", APP "-a", "desiredCount", 6));
    converge_fx(f, false);
    assert_int_equal(desired_of(f, APP "-a"), 4);
}

static void test_new_revision_replaces(void **state)
{
    struct fx *f = *state;
    json_t *d, *td;
    char first_td[256];
    int writes;

    json_object_set_new(f->spec, "rollout",
                        json_pack("{s:s, s:s}", "strategy", "allAtOnce", "scaleDownDelay", "1s"));
    converge_fx(f, false);
    d = describe_services(f);
    snprintf(first_td, sizeof(first_td), "%s",
             json_string_value(json_object_get(service_of(d, APP "-a"), "taskDefinition")));
    json_decref(d);

    /* New image: a new revision, a new task definition on the idle slot b,
     * which takes all traffic once healthy; a is scaled down after the
     * delay. */
    json_object_set_new(f->spec, "image", json_string(IMAGE2));
    snprintf(f->revision, sizeof(f->revision), "r2000000002");
    assert_int_equal(pass(f, false, false, NULL, &writes), APP_STEP_WAITING);
    assert_true(writes > 0);
    assert_string_equal(json_string_value(json_object_get(f->status, "observedRevision")),
                        "r1000000001");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f->status, "rollout"), "phase")),
        "Progressing");
    converge_fx(f, false);
    assert_string_equal(json_string_value(json_object_get(f->status, "observedRevision")),
                        "r2000000002");
    d = describe_services(f);
    {
        const json_t *a = service_of(d, APP "-a"), *b = service_of(d, APP "-b");
        assert_string_equal(json_string_value(json_object_get(a, "taskDefinition")), first_td);
        assert_int_equal(json_integer_value(json_object_get(a, "desiredCount")), 0);
        assert_int_equal(json_integer_value(json_object_get(b, "desiredCount")), 2);
        assert_int_equal(json_integer_value(json_object_get(b, "runningCount")), 2);
        assert_string_equal(app_tag_value(json_object_get(b, "tags"), APP_TAG_REVISION),
                            "r2000000002");
        td = describe_td(f, json_string_value(json_object_get(b, "taskDefinition")));
        assert_string_equal(
            json_string_value(json_object_get(
                json_array_get(
                    json_object_get(json_object_get(td, "taskDefinition"), "containerDefinitions"),
                    0),
                "image")),
            IMAGE2);
        json_decref(td);
    }
    json_decref(d);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f->status, "rollout"), "stableRevision")),
        "r2000000002");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f->status, "rollout"), "stableSlot")),
        "b");
    assert_true(has_event(f->status, "Promoted"));
    assert_int_equal(healthy_targets(f, 1), 2);

    /* An env change is a revision too: back to slot a. */
    json_object_set_new(json_object_get(f->spec, "env"), "MODEL_VERSION", json_string("2"));
    snprintf(f->revision, sizeof(f->revision), "r3000000003");
    converge_fx(f, false);
    d = describe_services(f);
    td = describe_td(f,
                     json_string_value(json_object_get(service_of(d, APP "-a"), "taskDefinition")));
    assert_string_equal(
        env_value(
            json_array_get(
                json_object_get(json_object_get(td, "taskDefinition"), "containerDefinitions"), 0),
            "MODEL_VERSION"),
        "2");
    assert_string_equal(app_tag_value(json_object_get(td, "tags"), APP_TAG_REVISION),
                        "r3000000003");
    assert_int_equal(json_integer_value(json_object_get(service_of(d, APP "-b"), "desiredCount")),
                     0);
    json_decref(td);
    json_decref(d);
    assert_int_equal(pass(f, false, false, NULL, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);
}

static void test_task_definition_found_after_lost_status(void **state)
{
    struct fx *f = *state;
    json_t *list;
    int n;

    converge_fx(f, false);
    /* A crash between registering and writing the status: the cache is
     * gone, the definitions are found again by tag, none is added. */
    json_object_del(json_object_get(json_object_get(f->status, "resources"), "service"),
                    "taskDefinitions");
    json_object_del(f->status, "rollout");
    assert_int_equal(pass(f, false, false, NULL, NULL), APP_STEP_READY);
    list = call(f, "ecs", "ListTaskDefinitions",
                json_pack("{s:s, s:s}", "familyPrefix", "aviary-" APP, "status", "ACTIVE"));
    n = (int)json_array_size(json_object_get(list, "taskDefinitionArns"));
    json_decref(list);
    assert_int_equal(n, 2); /* one per slot */
}

static void test_delete(void **state)
{
    struct fx *f = *state;
    json_t *d, *list, *o;
    size_t i;
    const json_t *s;

    converge_fx(f, false);
    converge_fx(f, true);

    o = call(f, "ecs", "DescribeClusters", json_pack("{s:[s]}", "clusters", "aviary-" APP));
    s = json_array_get(json_object_get(o, "clusters"), 0);
    assert_true(s == NULL ||
                strcmp(json_string_value(json_object_get(s, "status")), "INACTIVE") == 0);
    json_decref(o);
    {
        json_t *out = NULL;
        json_t *in =
            json_pack("{s:s, s:[s, s]}", "cluster", "aviary-" APP, "services", APP "-a", APP "-b");
        struct aws_error err;
        /* The cluster is gone (ClusterNotFoundException) or lists them INACTIVE. */
        int rc = aws_call(f->emu.client, "ecs", "DescribeServices", in, &out, &err);
        json_decref(in);
        d = out;
        if (rc == 0) {
            json_array_foreach(json_object_get(d, "services"), i, s)
                assert_string_equal(json_string_value(json_object_get(s, "status")), "INACTIVE");
        }
        json_decref(d);
    }
    list = call(f, "ecs", "ListTaskDefinitions",
                json_pack("{s:s, s:s}", "familyPrefix", "aviary-" APP, "status", "ACTIVE"));
    assert_int_equal(json_array_size(json_object_get(list, "taskDefinitionArns")), 0);
    json_decref(list);
    o = call(f, "logs", "DescribeLogGroups",
             json_pack("{s:s}", "logGroupNamePrefix", "/aviary/" APP));
    assert_int_equal(json_array_size(json_object_get(o, "logGroups")), 0);
    json_decref(o);
    /* The application's roles went with it. */
    {
        json_t *in = json_pack("{s:s}", "RoleName", "aviary-" APP "-execution"), *out = NULL;
        struct aws_error err;
        assert_int_not_equal(aws_call(f->emu.client, "iam", "GetRole", in, &out, &err), 0);
        assert_string_equal(err.code, "NoSuchEntity");
        json_decref(in);
    }
}

static void test_plan_makes_no_mutating_call(void **state)
{
    struct fx *f = *state;
    json_t *actions = NULL;
    int before = mutating_calls(f), writes;
    size_t i;
    const json_t *a;
    int services = 0, tds = 0;

    assert_int_equal(pass(f, true, false, &actions, &writes), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(mutating_calls(f), before);
    json_array_foreach(actions, i, a)
    {
        const char *call_name = json_string_value(json_object_get(a, "call"));
        if (call_name != NULL && strcmp(call_name, "ecs.CreateService") == 0)
            services++;
        if (call_name != NULL && strcmp(call_name, "ecs.RegisterTaskDefinition") == 0)
            tds++;
    }
    assert_int_equal(services, 2);
    assert_int_equal(tds, 2);
    json_decref(actions);

    /* Converged, a plan has nothing to do; after a change it lists the
     * update without making it. */
    converge_fx(f, false);
    assert_int_equal(pass(f, true, false, &actions, NULL), APP_STEP_READY);
    assert_int_equal(json_array_size(actions), 0);
    json_decref(actions);
    update_service(f, json_pack("{s:s, s:i}", "service", APP "-b", "desiredCount", 2));
    before = mutating_calls(f);
    assert_int_equal(pass(f, true, false, &actions, NULL), APP_STEP_READY);
    assert_int_equal(mutating_calls(f), before);
    assert_true(json_array_size(actions) > 0);
    json_decref(actions);
    assert_int_equal(desired_of(f, APP "-b"), 2);
}

static void test_foreign_service_left_alone(void **state)
{
    struct fx *f = *state;
    struct reconcile_request req = {.kind = "Application",
                                    .name = APP,
                                    .spec = f->spec,
                                    .revision = f->revision,
                                    .now = (int64_t)time(NULL),
                                    .aws = f->emu.client};
    struct app_ctx ctx;
    json_t *o;
    char td[256];

    /* aviary's cluster, and a service named like slot a made by someone
     * else (no aviary tags). */
    app_ctx_init(&ctx, &req, f->status, false);
    assert_int_equal(cluster_converge(&ctx), APP_STEP_READY);
    app_ctx_clear(&ctx);
    o = call(f, "ecs", "RegisterTaskDefinition",
             json_pack("{s:s, s:s, s:[s], s:s, s:s, s:[{s:s, s:s, s:[{s:i}]}]}", "family",
                       "foreign", "networkMode", "awsvpc", "requiresCompatibilities", "FARGATE",
                       "cpu", "256", "memory", "512", "containerDefinitions", "name", "app",
                       "image", "nginx:latest", "portMappings", "containerPort", 8080));
    copy_str(td, sizeof(td),
             json_object_get(json_object_get(o, "taskDefinition"), "taskDefinitionArn"));
    json_decref(o);
    json_decref(
        call(f, "ecs", "CreateService",
             json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:{s:[s], s:[s]}}}", "cluster", "aviary-" APP,
                       "serviceName", APP "-a", "taskDefinition", td, "desiredCount", 1,
                       "launchType", "FARGATE", "networkConfiguration", "awsvpcConfiguration",
                       "subnets", f->subnets[0], "securityGroups", f->sg_tasks)));
    app_ctx_init(&ctx, &req, f->status, false);
    assert_int_equal(service_converge(&ctx), APP_STEP_FAILED);
    assert_non_null(strstr(ctx.error, "without the aviary tags"));
    app_ctx_clear(&ctx);
    assert_int_equal(desired_of(f, APP "-a"), 1);
    /* Deletion leaves it alone too. */
    for (int i = 0; i < MAX_PASSES; i++) {
        enum app_step step;
        app_ctx_init(&ctx, &req, f->status, false);
        step = service_delete(&ctx);
        app_ctx_clear(&ctx);
        assert_int_not_equal(step, APP_STEP_FAILED);
        if (step == APP_STEP_READY)
            break;
        nap(50);
    }
    o = describe_services(f);
    assert_string_equal(json_string_value(json_object_get(service_of(o, APP "-a"), "status")),
                        "ACTIVE");
    assert_int_equal(json_integer_value(json_object_get(service_of(o, APP "-a"), "desiredCount")),
                     1);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_converge_from_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift_reverted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autoscaler_not_fought, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_revision_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_definition_found_after_lost_status, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_makes_no_mutating_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_service_left_alone, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
