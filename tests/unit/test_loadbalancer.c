/* Unit tests of the load balancer concern (reconcilers/loadbalancer.c)
 * against the local AWS emulator: creation, quiet resyncs, listener weights
 * from status.rollout and loadbalancer_set_weights, drift of listeners,
 * health checks, subnets and security groups, HTTPS with a port-80 redirect, invalid certificates,
 * deletion order, resources aviary did not create, plan mode. The network
 * prerequisites are made here with plain AWS calls. Test main thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcilers/app.h"
#include "reconcilers/loadbalancer.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define APP   "lbtest"
#define CERT  "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
#define CERT2 "arn:aws:acm:us-east-1:123456789012:certificate/abcdefab-1234-1234-1234-123456789012"
/* Well-formed, but of another account: no such certificate. */
#define BAD_CERT                                                                                   \
    "arn:aws:acm:us-east-1:999999999999:certificate/12345678-1234-1234-1234-123456789012"

/* Bounded polling of eventual states (the emulator's delays are scaled by
 * 0.01: a load balancer provisions in 0.6 s). */
#define POLL_MS       20
#define POLL_DEADLINE 20000

struct fixture {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    struct reconcile_request req;
    char error[1024];
    bool terminal;
    int writes;
};

/* `aviary validate -o json` of a manifest with image, port and health check
 * path (the parts this concern reads). */
static const char *SPEC =
    "{\"image\": \"123456789012.dkr.ecr.us-east-1.amazonaws.com/lbtest:1\", \"port\": 8080,"
    " \"healthCheck\": {\"path\": \"/health\", \"interval\": \"15s\", \"timeout\": \"5s\","
    " \"healthyThreshold\": 3, \"unhealthyThreshold\": 3, \"matcher\": \"200-399\","
    " \"gracePeriod\": \"30s\"}, \"cpu\": 256, \"memory\": 512,"
    " \"network\": {\"cidr\": \"10.0.0.0/16\", \"natGateway\": true},"
    " \"deletionPolicy\": \"Delete\"}";

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static json_t *aws(struct fixture *f, const char *svc, const char *op, json_t *in)
{
    struct aws_error err;
    json_t *out = NULL;
    int rc = aws_call(f->emu.client, svc, op, in, &out, &err);

    if (rc != 0)
        fail_msg("%s.%s: %s: %s", svc, op, err.code, err.message);
    json_decref(in);
    return out;
}

static json_t *tag_spec(const char *type)
{
    return json_pack("[{s:s, s:[{s:s, s:s}, {s:s, s:s}]}]", "ResourceType", type, "Tags", "Key",
                     APP_TAG_MANAGED_BY, "Value", APP_TAG_MANAGED_BY_VALUE, "Key",
                     APP_TAG_APPLICATION, "Value", APP);
}

/* What network.c would have made: a VPC with an internet gateway, two
 * public subnets in two zones and the load balancer's security group,
 * recorded in status.resources.network. */
static void make_network(struct fixture *f)
{
    json_t *out, *net, *res;
    char vpc[64], subnet[2][64], sg[64], igw[64];

    out = aws(
        f, "ec2", "CreateVpc",
        json_pack("{s:s, s:o}", "CidrBlock", "10.0.0.0/16", "TagSpecifications", tag_spec("vpc")));
    snprintf(vpc, sizeof(vpc), "%s",
             json_string_value(json_object_get(json_object_get(out, "Vpc"), "VpcId")));
    json_decref(out);
    out = aws(f, "ec2", "CreateInternetGateway",
              json_pack("{s:o}", "TagSpecifications", tag_spec("internet-gateway")));
    snprintf(igw, sizeof(igw), "%s",
             json_string_value(
                 json_object_get(json_object_get(out, "InternetGateway"), "InternetGatewayId")));
    json_decref(out);
    json_decref(aws(f, "ec2", "AttachInternetGateway",
                    json_pack("{s:s, s:s}", "InternetGatewayId", igw, "VpcId", vpc)));
    for (int i = 0; i < 2; i++) {
        char cidr[32];
        snprintf(cidr, sizeof(cidr), "10.0.%d.0/24", i);
        out = aws(f, "ec2", "CreateSubnet",
                  json_pack("{s:s, s:s, s:s, s:o}", "VpcId", vpc, "CidrBlock", cidr,
                            "AvailabilityZone", i == 0 ? "us-east-1a" : "us-east-1b",
                            "TagSpecifications", tag_spec("subnet")));
        snprintf(subnet[i], sizeof(subnet[i]), "%s",
                 json_string_value(json_object_get(json_object_get(out, "Subnet"), "SubnetId")));
        json_decref(out);
    }
    out = aws(f, "ec2", "CreateSecurityGroup",
              json_pack("{s:s, s:s, s:s, s:o}", "GroupName", "aviary-" APP "-lb", "Description",
                        "load balancer", "VpcId", vpc, "TagSpecifications",
                        tag_spec("security-group")));
    snprintf(sg, sizeof(sg), "%s", json_string_value(json_object_get(out, "GroupId")));
    json_decref(out);

    res = json_object_get(f->status, "resources");
    if (res == NULL) {
        res = json_object();
        json_object_set_new(f->status, "resources", res);
    }
    net = json_pack("{s:s, s:[s, s], s:s, s:b}", "vpcId", vpc, "publicSubnets", subnet[0],
                    subnet[1], "lbSecurityGroup", sg, "managedVpc", 1);
    json_object_set_new(res, "network", net);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0) {
        free(f);
        return -1;
    }
    f->spec = json_loads(SPEC, 0, NULL);
    f->status = status_new("Application", APP);
    f->req.kind = "Application";
    f->req.name = APP;
    f->req.spec = f->spec;
    f->req.revision = "r1";
    f->req.generation = 1;
    f->req.now = 1700000000;
    f->req.reconcile_id = "test";
    f->req.aws = f->emu.client;
    make_network(f);
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

/* One pass of converge (or delete); plan_actions may be NULL. */
static enum app_step pass(struct fixture *f, bool plan, bool del, json_t **plan_actions)
{
    struct app_ctx ctx;
    enum app_step step;

    app_ctx_init(&ctx, &f->req, f->status, plan);
    step = del ? loadbalancer_delete(&ctx) : loadbalancer_converge(&ctx);
    snprintf(f->error, sizeof(f->error), "%s", ctx.error);
    f->terminal = ctx.terminal;
    f->writes = ctx.writes;
    if (plan_actions != NULL)
        *plan_actions = json_incref(ctx.plan_actions);
    app_ctx_clear(&ctx);
    return step;
}

/* Passes until READY (bounded); fails the test on FAILED or timeout.
 * Returns the number of passes. */
static int until_ready(struct fixture *f, bool del)
{
    for (int waited = 0, n = 1; waited < POLL_DEADLINE; waited += POLL_MS, n++) {
        enum app_step step = pass(f, false, del, NULL);
        if (step == APP_STEP_READY)
            return n;
        if (step == APP_STEP_FAILED)
            fail_msg("%s failed: %s", del ? "loadbalancer_delete" : "loadbalancer_converge",
                     f->error);
        sleep_ms(POLL_MS);
    }
    fail_msg("not ready within %d ms", POLL_DEADLINE);
    return 0;
}

static json_t *lb_resources(struct fixture *f)
{
    return json_object_get(json_object_get(f->status, "resources"), "loadbalancer");
}

static const char *rec(struct fixture *f, const char *key)
{
    return json_string_value(json_object_get(lb_resources(f), key));
}

static const char *tg_arn(struct fixture *f, int slot)
{
    return json_string_value(
        json_array_get(json_object_get(lb_resources(f), "targetGroupArns"), slot));
}

/* The listener on `port` (new reference) or NULL. */
static json_t *listener(struct fixture *f, int port)
{
    json_t *out = aws(f, "elbv2", "DescribeListeners",
                      json_pack("{s:s}", "LoadBalancerArn", rec(f, "loadBalancerArn")));
    json_t *ls, *found = NULL;
    size_t i;

    json_array_foreach(json_object_get(out, "Listeners"), i, ls)
    {
        if (json_integer_value(json_object_get(ls, "Port")) == port)
            found = json_incref(ls);
    }
    json_decref(out);
    return found;
}

/* Weight of target group `arn` in the listener's forward action, -1 if absent. */
static long weight_of(const json_t *ls, const char *arn)
{
    const json_t *a = json_array_get(json_object_get(ls, "DefaultActions"), 0), *g;
    size_t i;

    json_array_foreach(json_object_get(json_object_get(a, "ForwardConfig"), "TargetGroups"), i, g)
    {
        if (strcmp(json_string_value(json_object_get(g, "TargetGroupArn")), arn) == 0)
            return (long)json_integer_value(json_object_get(g, "Weight"));
    }
    return -1;
}

static void assert_weights(struct fixture *f, int port, long a, long b)
{
    json_t *ls = listener(f, port);

    assert_non_null(ls);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(ls, "DefaultActions"), 0), "Type")),
                        "forward");
    assert_int_equal(json_array_size(json_object_get(ls, "DefaultActions")), 1);
    assert_int_equal(weight_of(ls, tg_arn(f, 0)), a);
    assert_int_equal(weight_of(ls, tg_arn(f, 1)), b);
    json_decref(ls);
}

static bool has_event(struct fixture *f, const char *reason, const char *text)
{
    json_t *e;
    size_t i;

    json_array_foreach(json_object_get(f->status, "events"), i, e)
    {
        const char *r = json_string_value(json_object_get(e, "reason"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (r != NULL && strcmp(r, reason) == 0 && (text == NULL || (m && strstr(m, text))))
            return true;
    }
    return false;
}

static bool owned_tags(struct fixture *f, const json_t *tags)
{
    struct app_ctx ctx;
    bool owned;

    app_ctx_init(&ctx, &f->req, f->status, false);
    owned = app_tags_owned(&ctx, tags);
    app_ctx_clear(&ctx);
    return owned;
}

static void clear_calls(struct fixture *f)
{
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
}

static int count_op(struct fixture *f, const char *op)
{
    char path[128];
    json_t *calls;
    int n;

    snprintf(path, sizeof(path), "calls?operation=%s", op);
    calls = test_emulator_control(&f->emu, "GET", path, NULL);
    n = (int)json_array_size(calls);
    json_decref(calls);
    return n;
}

static void set_rollout(struct fixture *f, const char *stable, int weight)
{
    json_object_set_new(f->status, "rollout",
                        json_pack("{s:s, s:i}", "stableSlot", stable, "weight", weight));
}

static void test_converge_from_nothing_then_quiet(void **state)
{
    struct fixture *f = *state;
    json_t *out, *lb, *tg, *attrs, *a, *tags, *d;
    const json_t *net = json_object_get(json_object_get(f->status, "resources"), "network");
    char want[512];
    size_t i;

    /* First pass: everything is created; READY only once AWS says active
     * (the emulator provisions in 0.6 s), until then WAITING without an
     * endpoint. */
    {
        enum app_step first = pass(f, false, false, NULL);
        out = aws(f, "elbv2", "DescribeLoadBalancers", json_pack("{s:[s]}", "Names", APP "-alb"));
        lb = json_array_get(json_object_get(out, "LoadBalancers"), 0);
        if (first == APP_STEP_READY)
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(lb, "State"), "Code")), "active");
        else
            assert_int_equal(first, APP_STEP_WAITING);
        if (first == APP_STEP_WAITING)
            assert_null(json_object_get(f->status, "endpoint"));
        json_decref(out);
    }
    until_ready(f, false);

    /* The load balancer. */
    out = aws(f, "elbv2", "DescribeLoadBalancers", json_pack("{s:[s]}", "Names", APP "-alb"));
    lb = json_array_get(json_object_get(out, "LoadBalancers"), 0);
    assert_string_equal(json_string_value(json_object_get(lb, "Scheme")), "internet-facing");
    assert_string_equal(json_string_value(json_object_get(lb, "Type")), "application");
    assert_string_equal(json_string_value(json_object_get(json_object_get(lb, "State"), "Code")),
                        "active");
    assert_string_equal(json_string_value(json_object_get(lb, "VpcId")),
                        json_string_value(json_object_get(net, "vpcId")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(lb, "SecurityGroups"), 0)),
                        json_string_value(json_object_get(net, "lbSecurityGroup")));
    assert_int_equal(json_array_size(json_object_get(lb, "AvailabilityZones")), 2);
    assert_string_equal(rec(f, "loadBalancerArn"),
                        json_string_value(json_object_get(lb, "LoadBalancerArn")));
    assert_string_equal(rec(f, "dnsName"), json_string_value(json_object_get(lb, "DNSName")));
    snprintf(want, sizeof(want), "http://%s", json_string_value(json_object_get(lb, "DNSName")));
    assert_string_equal(json_string_value(json_object_get(f->status, "endpoint")), want);
    snprintf(want, sizeof(want), "app/%s-alb/", APP);
    assert_true(strncmp(rec(f, "lbDimension"), want, strlen(want)) == 0);
    assert_non_null(strstr(rec(f, "loadBalancerArn"), rec(f, "lbDimension")));
    json_decref(out);

    /* Both target groups, in one call. */
    out = aws(f, "elbv2", "DescribeTargetGroups",
              json_pack("{s:[s, s]}", "Names", APP "-tga", APP "-tgb"));
    assert_int_equal(json_array_size(json_object_get(out, "TargetGroups")), 2);
    json_array_foreach(json_object_get(out, "TargetGroups"), i, tg)
    {
        const char *arn = json_string_value(json_object_get(tg, "TargetGroupArn"));
        int slot =
            strcmp(json_string_value(json_object_get(tg, "TargetGroupName")), APP "-tga") ? 1 : 0;
        const char *dim = json_string_value(
            json_array_get(json_object_get(lb_resources(f), "tgDimensions"), slot));

        assert_string_equal(tg_arn(f, slot), arn);
        snprintf(want, sizeof(want), "targetgroup/%s/", slot ? APP "-tgb" : APP "-tga");
        assert_true(strncmp(dim, want, strlen(want)) == 0);
        assert_non_null(strstr(arn, dim));
        assert_string_equal(json_string_value(json_object_get(tg, "TargetType")), "ip");
        assert_string_equal(json_string_value(json_object_get(tg, "Protocol")), "HTTP");
        assert_int_equal(json_integer_value(json_object_get(tg, "Port")), 8080);
        assert_string_equal(json_string_value(json_object_get(tg, "HealthCheckPath")), "/health");
        assert_int_equal(json_integer_value(json_object_get(tg, "HealthCheckIntervalSeconds")), 15);
        assert_int_equal(json_integer_value(json_object_get(tg, "HealthCheckTimeoutSeconds")), 5);
        assert_int_equal(json_integer_value(json_object_get(tg, "HealthyThresholdCount")), 3);
        assert_int_equal(json_integer_value(json_object_get(tg, "UnhealthyThresholdCount")), 3);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(tg, "Matcher"), "HttpCode")),
            "200-399");
        attrs = aws(f, "elbv2", "DescribeTargetGroupAttributes",
                    json_pack("{s:s}", "TargetGroupArn", arn));
        json_array_foreach(json_object_get(attrs, "Attributes"), i, a)
        {
            if (strcmp(json_string_value(json_object_get(a, "Key")),
                       "deregistration_delay.timeout_seconds") == 0)
                assert_string_equal(json_string_value(json_object_get(a, "Value")), "30");
        }
        json_decref(attrs);
    }
    json_decref(out);

    /* One HTTP listener: forward a=100 b=0. */
    assert_weights(f, 80, 100, 0);
    assert_null(listener(f, 443));
    assert_null(rec(f, "httpsListenerArn"));

    /* Everything carries the aviary tags (one DescribeTags call). */
    out = aws(f, "elbv2", "DescribeTags",
              json_pack("{s:[s, s, s, s]}", "ResourceArns", rec(f, "loadBalancerArn"), tg_arn(f, 0),
                        tg_arn(f, 1), rec(f, "httpListenerArn")));
    json_array_foreach(json_object_get(out, "TagDescriptions"), i, d)
    {
        tags = json_object_get(d, "Tags");
        assert_true(owned_tags(f, tags));
    }
    json_decref(out);

    /* Converged means quiet: a resync makes reads only, and few of them. */
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(f->writes, 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, "elbv2", 0), 4);
    assert_int_equal(count_op(f, "DescribeTargetGroups"), 1);
}

static void test_weights_follow_rollout(void **state)
{
    struct fixture *f = *state;
    struct app_ctx ctx;
    json_t *hist;

    until_ready(f, false);
    set_rollout(f, "a", 10);
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(count_op(f, "ModifyListener"), 1);
    /* the weights were read back after the change */
    assert_int_equal(count_op(f, "DescribeListeners"), 2);
    assert_weights(f, 80, 90, 10);
    assert_false(has_event(f, "DriftCorrected", NULL));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(lb_resources(f), "weights"), "b")), 10);

    /* Slot b stable, canary a at 25, through the rollout entry point. */
    clear_calls(f);
    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(loadbalancer_set_weights(&ctx, 1, 25), 0);
    assert_int_equal(ctx.writes, 1);
    app_ctx_clear(&ctx);
    assert_int_equal(count_op(f, "ModifyListener"), 1);
    assert_int_equal(count_op(f, "DescribeListeners"), 1);
    assert_weights(f, 80, 25, 75);
    hist = test_emulator_control(&f->emu, "GET", "weights", NULL);
    assert_true(json_array_size(hist) >= 3);
    json_decref(hist);

    /* Out of range is refused without a call. */
    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(loadbalancer_set_weights(&ctx, 0, 101), -1);
    assert_int_equal(ctx.writes, 0);
    assert_non_null(strstr(ctx.error, "101"));
    app_ctx_clear(&ctx);

    /* Back to the end of a rollout: b stable at 100. */
    set_rollout(f, "b", 0);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_weights(f, 80, 0, 100);
}

static void test_listener_drift_reverted(void **state)
{
    struct fixture *f = *state;

    until_ready(f, false);
    /* By hand: everything to slot b. */
    json_decref(
        aws(f, "elbv2", "ModifyListener",
            json_pack("{s:s, s:[{s:s, s:s}]}", "ListenerArn", rec(f, "httpListenerArn"),
                      "DefaultActions", "Type", "forward", "TargetGroupArn", tg_arn(f, 1))));
    assert_weights(f, 80, -1, 1);
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_weights(f, 80, 100, 0);
    assert_int_equal(count_op(f, "ModifyListener"), 1);
    assert_true(has_event(f, "DriftCorrected", "forward a=0 b=100 -> forward a=100 b=0"));
    /* and quiet again */
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

static bool plan_has(const json_t *actions, const char *action, const char *text);

/* The load balancer as DescribeLoadBalancers reports it (new reference). */
static json_t *describe_lb(struct fixture *f)
{
    json_t *out =
        aws(f, "elbv2", "DescribeLoadBalancers", json_pack("{s:[s]}", "Names", APP "-alb"));
    json_t *lb = json_incref(json_array_get(json_object_get(out, "LoadBalancers"), 0));

    json_decref(out);
    return lb;
}

/* A third subnet (zone c) and a second security group in the VPC. */
static void make_spares(struct fixture *f, char subnet[64], char sg[64])
{
    const char *vpc = json_string_value(json_object_get(
        json_object_get(json_object_get(f->status, "resources"), "network"), "vpcId"));
    json_t *out;

    out = aws(f, "ec2", "CreateSubnet",
              json_pack("{s:s, s:s, s:s}", "VpcId", vpc, "CidrBlock", "10.0.2.0/24",
                        "AvailabilityZone", "us-east-1c"));
    snprintf(subnet, 64, "%s",
             json_string_value(json_object_get(json_object_get(out, "Subnet"), "SubnetId")));
    json_decref(out);
    out = aws(
        f, "ec2", "CreateSecurityGroup",
        json_pack("{s:s, s:s, s:s}", "GroupName", "by-hand", "Description", "extra", "VpcId", vpc));
    snprintf(sg, 64, "%s", json_string_value(json_object_get(out, "GroupId")));
    json_decref(out);
}

static void assert_lb_network(struct fixture *f, const char *subnet0, const char *subnet1,
                              const char *sg)
{
    json_t *lb = describe_lb(f);
    const json_t *zones = json_object_get(lb, "AvailabilityZones");
    const json_t *groups = json_object_get(lb, "SecurityGroups");
    bool has[2] = {false, false};
    const json_t *z;
    size_t i;

    assert_int_equal(json_array_size(zones), 2);
    json_array_foreach(zones, i, z)
    {
        const char *id = json_string_value(json_object_get(z, "SubnetId"));
        has[0] = has[0] || strcmp(id, subnet0) == 0;
        has[1] = has[1] || strcmp(id, subnet1) == 0;
    }
    assert_true(has[0] && has[1]);
    assert_int_equal(json_array_size(groups), 1);
    assert_string_equal(json_string_value(json_array_get(groups, 0)), sg);
    json_decref(lb);
}

/* Subnets and security groups changed by hand are put back (one SetSubnets,
 * one SetSecurityGroups, two DriftCorrected events); a plan shows them as
 * updates; a changed network record is an update, not drift. */
static void test_subnets_and_security_groups_drift(void **state)
{
    struct fixture *f = *state;
    json_t *net = json_object_get(json_object_get(f->status, "resources"), "network");
    const char *sub0 = json_string_value(json_array_get(json_object_get(net, "publicSubnets"), 0));
    const char *sub1 = json_string_value(json_array_get(json_object_get(net, "publicSubnets"), 1));
    const char *sg = json_string_value(json_object_get(net, "lbSecurityGroup"));
    json_t *actions = NULL;
    char spare_subnet[64], spare_sg[64], text[256];

    until_ready(f, false);
    make_spares(f, spare_subnet, spare_sg);
    json_decref(aws(f, "elbv2", "SetSecurityGroups",
                    json_pack("{s:s, s:[s, s]}", "LoadBalancerArn", rec(f, "loadBalancerArn"),
                              "SecurityGroups", sg, spare_sg)));
    json_decref(aws(f, "elbv2", "SetSubnets",
                    json_pack("{s:s, s:[s, s]}", "LoadBalancerArn", rec(f, "loadBalancerArn"),
                              "Subnets", sub0, spare_subnet)));

    /* A plan names both changes and makes no call. */
    clear_calls(f);
    assert_int_equal(pass(f, true, false, &actions), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    snprintf(text, sizeof(text), "SecurityGroups: %s, %s -> %s", sg, spare_sg, sg);
    assert_true(plan_has(actions, "update", text));
    assert_true(plan_has(actions, "update", "Subnets: "));
    json_decref(actions);

    /* The resync reverts both. */
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(count_op(f, "SetSubnets"), 1);
    assert_int_equal(count_op(f, "SetSecurityGroups"), 1);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 2);
    assert_lb_network(f, sub0, sub1, sg);
    assert_true(has_event(f, "DriftCorrected", text));
    snprintf(text, sizeof(text), "load balancer %s-alb changed outside aviary (Subnets: %s, %s -> ",
             APP, sub0, spare_subnet);
    assert_true(has_event(f, "DriftCorrected", text));

    /* Quiet again. */
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);

    /* The network moves the load balancer (its records changed): an update. */
    json_array_set_new(json_object_get(net, "publicSubnets"), 1, json_string(spare_subnet));
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(count_op(f, "SetSubnets"), 1);
    assert_int_equal(count_op(f, "SetSecurityGroups"), 0);
    assert_lb_network(f, sub0, spare_subnet, sg);
    snprintf(text, sizeof(text), "update load balancer %s-alb", APP);
    assert_true(has_event(f, "Updated", text));
    snprintf(text, sizeof(text), "-> %s, %s", sub0, spare_subnet);
    assert_false(has_event(f, "DriftCorrected", text));
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

static void test_health_check_drift_and_update(void **state)
{
    struct fixture *f = *state;
    json_t *out, *tg;
    size_t i;

    until_ready(f, false);
    json_decref(
        aws(f, "elbv2", "ModifyTargetGroup",
            json_pack("{s:s, s:s, s:i, s:{s:s}}", "TargetGroupArn", tg_arn(f, 1), "HealthCheckPath",
                      "/", "HealthCheckIntervalSeconds", 60, "Matcher", "HttpCode", "200")));
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(count_op(f, "ModifyTargetGroup"), 1);
    assert_true(has_event(f, "DriftCorrected", "HealthCheckPath: \"/\" -> \"/health\""));

    /* A manifest change is an update in place, not drift. */
    json_object_set_new(json_object_get(f->spec, "healthCheck"), "path", json_string("/ready"));
    json_object_set_new(json_object_get(f->spec, "healthCheck"), "healthyThreshold",
                        json_integer(2));
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_true(has_event(f, "Updated", "target group"));
    assert_false(has_event(f, "DriftCorrected", "/ready"));
    out = aws(f, "elbv2", "DescribeTargetGroups",
              json_pack("{s:[s, s]}", "Names", APP "-tga", APP "-tgb"));
    json_array_foreach(json_object_get(out, "TargetGroups"), i, tg)
    {
        assert_string_equal(json_string_value(json_object_get(tg, "HealthCheckPath")), "/ready");
        assert_int_equal(json_integer_value(json_object_get(tg, "HealthCheckIntervalSeconds")), 15);
        assert_int_equal(json_integer_value(json_object_get(tg, "HealthyThresholdCount")), 2);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(tg, "Matcher"), "HttpCode")),
            "200-399");
    }
    json_decref(out);
}

static void test_https_with_redirect(void **state)
{
    struct fixture *f = *state;
    json_t *ls, *rc;
    char want[512];

    json_object_set_new(f->spec, "tls",
                        json_pack("{s:s, s:s, s:b}", "certificateArn", CERT, "sslPolicy",
                                  "ELBSecurityPolicy-TLS13-1-2-2021-06", "redirectHttp", 1));
    until_ready(f, false);
    snprintf(want, sizeof(want), "https://%s", rec(f, "dnsName"));
    assert_string_equal(json_string_value(json_object_get(f->status, "endpoint")), want);

    ls = listener(f, 443);
    assert_non_null(ls);
    assert_string_equal(json_string_value(json_object_get(ls, "Protocol")), "HTTPS");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(ls, "Certificates"), 0),
                                          "CertificateArn")),
        CERT);
    assert_string_equal(json_string_value(json_object_get(ls, "SslPolicy")),
                        "ELBSecurityPolicy-TLS13-1-2-2021-06");
    assert_string_equal(rec(f, "httpsListenerArn"),
                        json_string_value(json_object_get(ls, "ListenerArn")));
    json_decref(ls);
    assert_weights(f, 443, 100, 0);

    ls = listener(f, 80);
    rc =
        json_object_get(json_array_get(json_object_get(ls, "DefaultActions"), 0), "RedirectConfig");
    assert_string_equal(json_string_value(json_object_get(rc, "Protocol")), "HTTPS");
    assert_string_equal(json_string_value(json_object_get(rc, "Port")), "443");
    assert_string_equal(json_string_value(json_object_get(rc, "StatusCode")), "HTTP_301");
    json_decref(ls);

    /* Weights go to the forwarding listener only. */
    set_rollout(f, "a", 10);
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(count_op(f, "ModifyListener"), 1);
    assert_weights(f, 443, 90, 10);

    /* Certificate drift reverted (the weights survive). */
    json_decref(aws(f, "elbv2", "ModifyListener",
                    json_pack("{s:s, s:[{s:s}]}", "ListenerArn", rec(f, "httpsListenerArn"),
                              "Certificates", "CertificateArn", CERT2)));
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    ls = listener(f, 443);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(ls, "Certificates"), 0),
                                          "CertificateArn")),
        CERT);
    json_decref(ls);
    assert_true(has_event(f, "DriftCorrected", "Certificate"));
    assert_weights(f, 443, 90, 10);

    /* TLS off: port 80 forwards again and the HTTPS listener goes. */
    json_object_del(f->spec, "tls");
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_weights(f, 80, 90, 10);
    assert_null(listener(f, 443));
    assert_null(rec(f, "httpsListenerArn"));
    snprintf(want, sizeof(want), "http://%s", rec(f, "dnsName"));
    assert_string_equal(json_string_value(json_object_get(f->status, "endpoint")), want);
}

static void test_https_without_redirect_forwards_on_both(void **state)
{
    struct fixture *f = *state;
    struct app_ctx ctx;

    json_object_set_new(f->spec, "tls",
                        json_pack("{s:s, s:b}", "certificateArn", CERT, "redirectHttp", 0));
    until_ready(f, false);
    assert_weights(f, 80, 100, 0);
    assert_weights(f, 443, 100, 0);
    clear_calls(f);
    app_ctx_init(&ctx, &f->req, f->status, false);
    assert_int_equal(loadbalancer_set_weights(&ctx, 0, 50), 0);
    app_ctx_clear(&ctx);
    assert_int_equal(count_op(f, "ModifyListener"), 2);
    assert_int_equal(count_op(f, "DescribeListeners"), 1);
    assert_weights(f, 80, 50, 50);
    assert_weights(f, 443, 50, 50);
}

static void test_invalid_certificate_is_terminal(void **state)
{
    struct fixture *f = *state;
    enum app_step step = APP_STEP_WAITING;

    json_object_set_new(f->spec, "tls", json_pack("{s:s}", "certificateArn", BAD_CERT));
    for (int i = 0; i < 100 && step == APP_STEP_WAITING; i++)
        step = pass(f, false, false, NULL);
    assert_int_equal(step, APP_STEP_FAILED);
    assert_true(f->terminal);
    assert_non_null(strstr(f->error, BAD_CERT));
    assert_non_null(strstr(f->error, "CertificateNotFound"));

    /* A certificate of another region fails before any call. */
    json_object_set_new(json_object_get(f->spec, "tls"), "certificateArn",
                        json_string("arn:aws:acm:eu-west-1:123456789012:certificate/"
                                    "12345678-1234-1234-1234-123456789012"));
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_FAILED);
    assert_true(f->terminal);
    assert_non_null(strstr(f->error, "eu-west-1"));
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, -1), 0);
}

static void test_delete_in_order(void **state)
{
    struct fixture *f = *state;
    json_t *calls, *c, *out;
    int i_listener = -1, i_lb = -1, i_tg = -1;
    size_t i;

    until_ready(f, false);
    clear_calls(f);
    until_ready(f, true); /* target groups stay in use for a moment: WAITING meanwhile */
    calls = test_emulator_control(&f->emu, "GET", "calls?mutating=1", NULL);
    json_array_foreach(calls, i, c)
    {
        const char *op = json_string_value(json_object_get(c, "operation"));
        if (strcmp(op, "DeleteListener") == 0 && i_listener < 0)
            i_listener = (int)i;
        if (strcmp(op, "DeleteLoadBalancer") == 0 && i_lb < 0)
            i_lb = (int)i;
        if (strcmp(op, "DeleteTargetGroup") == 0 && i_tg < 0)
            i_tg = (int)i;
    }
    json_decref(calls);
    assert_true(i_listener >= 0 && i_lb > i_listener && i_tg > i_lb);

    /* Nothing of it is left. */
    out = aws(f, "elbv2", "DescribeLoadBalancers", NULL);
    assert_int_equal(json_array_size(json_object_get(out, "LoadBalancers")), 0);
    json_decref(out);
    out = aws(f, "elbv2", "DescribeTargetGroups", NULL);
    assert_int_equal(json_array_size(json_object_get(out, "TargetGroups")), 0);
    json_decref(out);
    assert_null(lb_resources(f));
    assert_null(json_object_get(f->status, "endpoint"));
    /* Gone counts as deleted. */
    assert_int_equal(pass(f, false, true, NULL), APP_STEP_READY);
}

static void test_untagged_resources_left_alone(void **state)
{
    struct fixture *f = *state;
    const json_t *net = json_object_get(json_object_get(f->status, "resources"), "network");
    json_t *out;

    /* Someone else's target group with the name aviary would use. */
    json_decref(aws(f, "elbv2", "CreateTargetGroup",
                    json_pack("{s:s, s:s, s:i, s:s, s:s}", "Name", APP "-tga", "Protocol", "HTTP",
                              "Port", 80, "VpcId", json_string_value(json_object_get(net, "vpcId")),
                              "TargetType", "ip")));
    clear_calls(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_FAILED);
    assert_false(f->terminal);
    assert_non_null(strstr(f->error, APP "-tga"));
    assert_non_null(strstr(f->error, "aviary tags"));
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);

    /* Deletion leaves it too. */
    assert_int_equal(pass(f, false, true, NULL), APP_STEP_READY);
    out = aws(f, "elbv2", "DescribeTargetGroups", json_pack("{s:[s]}", "Names", APP "-tga"));
    assert_int_equal(json_array_size(json_object_get(out, "TargetGroups")), 1);
    json_decref(out);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
}

/* A crash between the creates and the status write: the next pass finds
 * everything by name and creates nothing twice. */
static void test_lost_status_creates_nothing_twice(void **state)
{
    struct fixture *f = *state;
    json_t *out;

    assert_int_not_equal(pass(f, false, false, NULL), APP_STEP_FAILED); /* all created */
    json_object_del(json_object_get(f->status, "resources"), "loadbalancer");
    clear_calls(f);
    until_ready(f, false);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    out = aws(f, "elbv2", "DescribeLoadBalancers", NULL);
    assert_int_equal(json_array_size(json_object_get(out, "LoadBalancers")), 1);
    json_decref(out);
    out = aws(f, "elbv2", "DescribeTargetGroups", NULL);
    assert_int_equal(json_array_size(json_object_get(out, "TargetGroups")), 2);
    json_decref(out);
    out = aws(f, "elbv2", "DescribeListeners",
              json_pack("{s:s}", "LoadBalancerArn", rec(f, "loadBalancerArn")));
    assert_int_equal(json_array_size(json_object_get(out, "Listeners")), 1);
    json_decref(out);
}

static bool plan_has(const json_t *actions, const char *action, const char *text)
{
    const json_t *a;
    size_t i;

    json_array_foreach(actions, i, a)
    {
        char *dump = json_dumps(a, 0);
        bool hit = strcmp(json_string_value(json_object_get(a, "action")), action) == 0 &&
                   (text == NULL || strstr(dump, text) != NULL);
        free(dump);
        if (hit)
            return true;
    }
    return false;
}

static void test_plan_mode_makes_no_mutating_call(void **state)
{
    struct fixture *f = *state;
    json_t *actions = NULL, *out;

    clear_calls(f);
    assert_int_equal(pass(f, true, false, &actions), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_true(plan_has(actions, "create", "CreateLoadBalancer"));
    assert_true(plan_has(actions, "create", "CreateTargetGroup"));
    assert_true(plan_has(actions, "create", "CreateListener"));
    json_decref(actions);
    out = aws(f, "elbv2", "DescribeLoadBalancers", NULL);
    assert_int_equal(json_array_size(json_object_get(out, "LoadBalancers")), 0);
    json_decref(out);

    /* Converged, then changed by hand: the plan shows the updates only. */
    until_ready(f, false);
    json_decref(
        aws(f, "elbv2", "ModifyTargetGroup",
            json_pack("{s:s, s:s}", "TargetGroupArn", tg_arn(f, 0), "HealthCheckPath", "/x")));
    set_rollout(f, "a", 20);
    clear_calls(f);
    assert_int_equal(pass(f, true, false, &actions), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_true(plan_has(actions, "update", "HealthCheckPath"));
    assert_true(plan_has(actions, "update", "forward a=100 b=0 -> forward a=80 b=20"));
    assert_false(plan_has(actions, "create", NULL));
    json_decref(actions);
    assert_weights(f, 80, 100, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_converge_from_nothing_then_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weights_follow_rollout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_drift_reverted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subnets_and_security_groups_drift, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_check_drift_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_with_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_without_redirect_forwards_on_both, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_certificate_is_terminal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untagged_resources_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_status_creates_nothing_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_mode_makes_no_mutating_call, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
