/* Tests of the network concern (reconcilers/network.c) against the local AWS
 * emulator: converge from nothing, quiet second pass, natGateway false,
 * existing VPC, drift, in-place port change, deletion with eventual states,
 * plan mode, and resources without aviary tags left alone. The emulator runs
 * with real AWS delays (scale 1) and its clock is advanced between passes,
 * so eventual states are deterministic and nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/client.h"
#include "reconcilers/app.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define SPEC_TEMPLATE                                                                              \
    "{\"image\": \"123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1.4.2\", \"port\": 8080,"    \
    " \"healthCheck\": {\"path\": \"/health\", \"interval\": \"15s\", \"timeout\": \"5s\","        \
    " \"healthyThreshold\": 3, \"unhealthyThreshold\": 3, \"matcher\": \"200-399\","               \
    " \"gracePeriod\": \"30s\"}, \"cpu\": 512, \"memory\": 1024, \"env\": {},"                     \
    " \"network\": {\"cidr\": \"10.40.0.0/16\", \"natGateway\": true},"                            \
    " \"scaling\": {\"min\": 2, \"max\": 10, \"cpuPercent\": 70, \"scaleOutCooldown\": \"1m\","    \
    " \"scaleInCooldown\": \"5m\"}, \"dashboard\": true, \"deletionPolicy\": \"Delete\","          \
    " \"rollout\": {\"strategy\": \"allAtOnce\"}}"

#define MAX_PASSES 12

struct fx {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    json_t *plan;
    struct reconcile_request req;
    char error[1024];
    bool terminal;
};

/* ---- helpers ------------------------------------------------------------- */

static json_t *ec2(struct fx *f, const char *operation, json_t *in)
{
    struct aws_error err;
    json_t *out = NULL;
    int rc = aws_call(f->emu.client, "ec2", operation, in, &out, &err);

    json_decref(in);
    if (rc != 0)
        fail_msg("ec2.%s: %s: %s", operation, err.code, err.message);
    return out;
}

/* Calls an EC2 operation expecting failure; returns the error code. */
static const char *ec2_error(struct fx *f, const char *operation, json_t *in, struct aws_error *err)
{
    json_t *out = NULL;
    int rc = aws_call(f->emu.client, "ec2", operation, in, &out, err);

    json_decref(in);
    json_decref(out);
    return rc == 0 ? "" : err->code;
}

static json_t *tag_filters(const char *app, const char *vpc)
{
    json_t *filters =
        json_pack("[{s:s, s:[s]}, {s:s, s:[s]}]", "Name", "tag:aviary.io/managed-by", "Values",
                  "aviary", "Name", "tag:aviary.io/application", "Values", app);
    if (vpc != NULL)
        json_array_append_new(filters, json_pack("{s:s, s:[s]}", "Name", "vpc-id", "Values", vpc));
    return filters;
}

/* The list `key` of an EC2 Describe* filtered by the app's tags (new ref). */
static json_t *tagged(struct fx *f, const char *operation, const char *key)
{
    const char *member = strcmp(operation, "DescribeNatGateways") == 0 ? "Filter" : "Filters";
    json_t *out = ec2(f, operation, json_pack("{s:o}", member, tag_filters(f->req.name, NULL)));
    json_t *list = json_incref(json_object_get(out, key));

    json_decref(out);
    return list != NULL ? list : json_array();
}

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static const char *tag(const json_t *obj, const char *key)
{
    const char *v = app_tag_value(json_object_get(obj, "Tags"), key);
    return v ? v : "";
}

static const json_t *by_name(const json_t *list, const char *name)
{
    size_t i;
    const json_t *x;

    json_array_foreach(list, i, x)
    {
        if (strcmp(tag(x, "Name"), name) == 0)
            return x;
    }
    return NULL;
}

static void advance(struct fx *f, double seconds)
{
    json_t *body = json_pack("{s:f}", "advance", seconds);
    json_t *out = test_emulator_control(&f->emu, "POST", "clock", body);

    assert_non_null(out);
    json_decref(out);
    json_decref(body);
}

/* One converge (or delete) pass in a fresh context. */
static enum app_step pass(struct fx *f, bool deleting, bool plan, long *requeue_ms)
{
    struct app_ctx ctx;
    enum app_step step;

    f->req.now = (int64_t)time(NULL);
    app_ctx_init(&ctx, &f->req, f->status, plan);
    step = deleting ? network_delete(&ctx) : network_converge(&ctx);
    snprintf(f->error, sizeof(f->error), "%s", ctx.error);
    f->terminal = ctx.terminal;
    if (plan) {
        json_decref(f->plan);
        f->plan = json_incref(ctx.plan_actions);
    }
    if (requeue_ms != NULL)
        *requeue_ms = ctx.requeue_ms;
    app_ctx_clear(&ctx);
    return step;
}

/* Passes until READY, advancing the emulator clock by each requested wait.
 * Returns the number of passes. */
static int until_ready(struct fx *f, bool deleting)
{
    for (int i = 1; i <= MAX_PASSES; i++) {
        long wait = 0;
        enum app_step step = pass(f, deleting, false, &wait);
        if (step == APP_STEP_FAILED)
            fail_msg("pass %d failed: %s", i, f->error);
        if (step == APP_STEP_READY)
            return i;
        assert_true(wait > 0);
        advance(f, (double)wait / 1000.0);
    }
    fail_msg("not ready after %d passes", MAX_PASSES);
    return -1;
}

static int mutating(struct fx *f)
{
    return test_emulator_count_calls(&f->emu, NULL, 1);
}

static const json_t *net_res(struct fx *f)
{
    return json_object_get(json_object_get(f->status, "resources"), "network");
}

static bool has_event(struct fx *f, const char *reason, const char *needle)
{
    size_t i;
    const json_t *e;

    json_array_foreach(json_object_get(f->status, "events"), i, e)
    {
        if (strcmp(jstr(e, "reason"), reason) == 0 && strstr(jstr(e, "message"), needle) != NULL)
            return true;
    }
    return false;
}

/* Number of (permission, peer) rules in a group's list, and whether one
 * with protocol/port and cidr or group peer is there. */
static size_t rule_count(const json_t *sg, const char *list)
{
    size_t i, n = 0;
    const json_t *p;

    json_array_foreach(json_object_get(sg, list), i, p)
    {
        n += json_array_size(json_object_get(p, "IpRanges")) +
             json_array_size(json_object_get(p, "Ipv6Ranges")) +
             json_array_size(json_object_get(p, "PrefixListIds")) +
             json_array_size(json_object_get(p, "UserIdGroupPairs"));
    }
    return n;
}

static bool has_rule(const json_t *sg, const char *list, const char *proto, int port,
                     const char *cidr, const char *group)
{
    size_t i, j;
    const json_t *p, *peer;

    json_array_foreach(json_object_get(sg, list), i, p)
    {
        if (strcmp(jstr(p, "IpProtocol"), proto) != 0)
            continue;
        if (port >= 0 && (json_integer_value(json_object_get(p, "FromPort")) != port ||
                          json_integer_value(json_object_get(p, "ToPort")) != port))
            continue;
        json_array_foreach(json_object_get(p, cidr ? "IpRanges" : "UserIdGroupPairs"), j, peer)
        {
            if (strcmp(jstr(peer, cidr ? "CidrIp" : "GroupId"), cidr ? cidr : group) == 0)
                return true;
        }
    }
    return false;
}

static json_t *security_group(struct fx *f, const char *id)
{
    json_t *out = ec2(f, "DescribeSecurityGroups", json_pack("{s:[s]}", "GroupIds", id));
    json_t *sg = json_incref(json_array_get(json_object_get(out, "SecurityGroups"), 0));

    json_decref(out);
    assert_non_null(sg);
    return sg;
}

static bool vpc_attribute(struct fx *f, const char *vpc, const char *attribute, const char *member)
{
    json_t *out = ec2(f, "DescribeVpcAttribute",
                      json_pack("{s:s, s:s}", "VpcId", vpc, "Attribute", attribute));
    bool v = json_is_true(json_object_get(json_object_get(out, member), "Value"));

    json_decref(out);
    return v;
}

static const json_t *route_to(const json_t *table, const char *dest)
{
    size_t i;
    const json_t *r;

    json_array_foreach(json_object_get(table, "Routes"), i, r)
    {
        if (strcmp(jstr(r, "DestinationCidrBlock"), dest) == 0)
            return r;
    }
    return NULL;
}

static bool associated(const json_t *table, const char *subnet)
{
    size_t i;
    const json_t *a;

    json_array_foreach(json_object_get(table, "Associations"), i, a)
    {
        if (strcmp(jstr(a, "SubnetId"), subnet) == 0)
            return true;
    }
    return false;
}

static void set_network(struct fx *f, const char *json)
{
    json_object_set_new(f->spec, "network", json_loads(json, 0, NULL));
}

/* ---- fixture -------------------------------------------------------------- */

static int setup(void **state)
{
    static struct fx f;

    memset(&f, 0, sizeof(f));
    if (test_emulator_start(&f.emu, 1.0) != 0)
        return -1;
    f.spec = json_loads(SPEC_TEMPLATE, 0, NULL);
    f.status = status_new("Application", "fraud-model");
    if (f.spec == NULL || f.status == NULL)
        return -1;
    f.req.kind = "Application";
    f.req.name = "fraud-model";
    f.req.spec = f.spec;
    f.req.revision = "c4ec04fdfd";
    f.req.generation = 1;
    f.req.reconcile_id = "test";
    f.req.aws = f.emu.client;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    json_decref(f->spec);
    json_decref(f->status);
    json_decref(f->plan);
    test_emulator_stop(&f->emu);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

/* Every resource, attribute, rule, route and tag of a converged network;
 * returns the VPC id. */
static void check_managed(struct fx *f, bool nat)
{
    static const char *const cidrs[4] = {"10.40.0.0/20", "10.40.16.0/20", "10.40.32.0/20",
                                         "10.40.48.0/20"};
    static const char *const names[4] = {
        "aviary-fraud-model-public-a", "aviary-fraud-model-public-b",
        "aviary-fraud-model-private-a", "aviary-fraud-model-private-b"};
    static const char *const zones[4] = {"us-east-1a", "us-east-1b", "us-east-1a", "us-east-1b"};
    json_t *vpcs = tagged(f, "DescribeVpcs", "Vpcs");
    json_t *subnets = tagged(f, "DescribeSubnets", "Subnets");
    json_t *igws = tagged(f, "DescribeInternetGateways", "InternetGateways");
    json_t *nats = tagged(f, "DescribeNatGateways", "NatGateways");
    json_t *addrs = tagged(f, "DescribeAddresses", "Addresses");
    json_t *tables = tagged(f, "DescribeRouteTables", "RouteTables");
    json_t *groups = tagged(f, "DescribeSecurityGroups", "SecurityGroups");
    const json_t *vpc, *res = net_res(f), *pub, *priv, *lb, *tasks;
    const char *vpc_id, *subnet_ids[4];
    json_t *lb_sg, *tasks_sg;

    /* VPC */
    assert_int_equal(json_array_size(vpcs), 1);
    vpc = json_array_get(vpcs, 0);
    vpc_id = jstr(vpc, "VpcId");
    assert_string_equal(jstr(vpc, "CidrBlock"), "10.40.0.0/16");
    assert_string_equal(tag(vpc, "Name"), "aviary-fraud-model");
    assert_true(vpc_attribute(f, vpc_id, "enableDnsSupport", "EnableDnsSupport"));
    assert_true(vpc_attribute(f, vpc_id, "enableDnsHostnames", "EnableDnsHostnames"));
    /* Subnets: four /20s in two zones; public ones map public IPs. */
    assert_int_equal(json_array_size(subnets), 4);
    for (int i = 0; i < 4; i++) {
        const json_t *s = by_name(subnets, names[i]);
        assert_non_null(s);
        subnet_ids[i] = jstr(s, "SubnetId");
        assert_string_equal(jstr(s, "CidrBlock"), cidrs[i]);
        assert_string_equal(jstr(s, "AvailabilityZone"), zones[i]);
        assert_string_equal(jstr(s, "VpcId"), vpc_id);
        assert_int_equal(json_is_true(json_object_get(s, "MapPublicIpOnLaunch")), i < 2);
    }
    /* Internet gateway, attached. */
    assert_int_equal(json_array_size(igws), 1);
    assert_string_equal(tag(json_array_get(igws, 0), "Name"), "aviary-fraud-model-igw");
    assert_string_equal(
        jstr(json_array_get(json_object_get(json_array_get(igws, 0), "Attachments"), 0), "VpcId"),
        vpc_id);
    /* NAT gateway and its address. */
    if (nat) {
        const json_t *g = json_array_get(nats, 0);
        assert_int_equal(json_array_size(nats), 1);
        assert_int_equal(json_array_size(addrs), 1);
        assert_string_equal(jstr(g, "State"), "available");
        assert_string_equal(jstr(g, "SubnetId"), subnet_ids[0]);
        assert_string_equal(tag(g, "Name"), "aviary-fraud-model-nat");
        assert_string_equal(
            jstr(json_array_get(json_object_get(g, "NatGatewayAddresses"), 0), "AllocationId"),
            jstr(json_array_get(addrs, 0), "AllocationId"));
        assert_string_equal(jstr(res, "natGatewayId"), jstr(g, "NatGatewayId"));
    } else {
        assert_int_equal(json_array_size(nats), 0);
        assert_int_equal(json_array_size(addrs), 0);
        assert_null(json_object_get(res, "natGatewayId"));
    }
    /* Route tables: public via the gateway, private via the NAT gateway. */
    assert_int_equal(json_array_size(tables), 2);
    pub = by_name(tables, "aviary-fraud-model-public");
    priv = by_name(tables, "aviary-fraud-model-private");
    assert_non_null(pub);
    assert_non_null(priv);
    assert_non_null(route_to(pub, "0.0.0.0/0"));
    assert_string_equal(jstr(route_to(pub, "0.0.0.0/0"), "GatewayId"),
                        jstr(json_array_get(igws, 0), "InternetGatewayId"));
    assert_int_equal(json_array_size(json_object_get(pub, "Routes")), 2);
    if (nat) {
        assert_non_null(route_to(priv, "0.0.0.0/0"));
        assert_string_equal(jstr(route_to(priv, "0.0.0.0/0"), "NatGatewayId"),
                            jstr(json_array_get(nats, 0), "NatGatewayId"));
        assert_int_equal(json_array_size(json_object_get(priv, "Routes")), 2);
    } else {
        assert_int_equal(json_array_size(json_object_get(priv, "Routes")), 1); /* local */
    }
    for (int i = 0; i < 4; i++)
        assert_true(associated(i < 2 ? pub : priv, subnet_ids[i]));
    assert_int_equal(json_array_size(json_object_get(pub, "Associations")), 2);
    assert_int_equal(json_array_size(json_object_get(priv, "Associations")), 2);
    /* Security groups and their rules. */
    assert_int_equal(json_array_size(groups), 2);
    lb = json_object_get(res, "lbSecurityGroup");
    tasks = json_object_get(res, "tasksSecurityGroup");
    lb_sg = security_group(f, json_string_value(lb));
    tasks_sg = security_group(f, json_string_value(tasks));
    assert_string_equal(jstr(lb_sg, "GroupName"), "aviary-fraud-model-lb");
    assert_string_equal(jstr(tasks_sg, "GroupName"), "aviary-fraud-model-tasks");
    assert_string_equal(tag(lb_sg, "aviary.io/application"), "fraud-model");
    assert_string_equal(tag(tasks_sg, "Name"), "aviary-fraud-model-tasks");
    assert_string_equal(jstr(lb_sg, "VpcId"), vpc_id);
    assert_int_equal(rule_count(lb_sg, "IpPermissions"), 2);
    assert_true(has_rule(lb_sg, "IpPermissions", "tcp", 80, "0.0.0.0/0", NULL));
    assert_true(has_rule(lb_sg, "IpPermissions", "tcp", 443, "0.0.0.0/0", NULL));
    assert_int_equal(rule_count(tasks_sg, "IpPermissions"), 1);
    assert_true(has_rule(tasks_sg, "IpPermissions", "tcp", 8080, NULL, json_string_value(lb)));
    for (int k = 0; k < 2; k++) {
        json_t *g = k ? tasks_sg : lb_sg;
        assert_int_equal(rule_count(g, "IpPermissionsEgress"), 1);
        assert_true(has_rule(g, "IpPermissionsEgress", "-1", -1, "0.0.0.0/0", NULL));
    }
    /* What the later concerns read. */
    assert_string_equal(jstr(res, "vpcId"), vpc_id);
    assert_true(json_is_true(json_object_get(res, "managedVpc")));
    assert_int_equal(json_is_true(json_object_get(res, "assignPublicIp")), !nat);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(res, "publicSubnets"), i)),
            subnet_ids[i]);
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(res, "privateSubnets"), i)),
            subnet_ids[2 + i]);
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(res, "taskSubnets"), i)),
            subnet_ids[nat ? 2 + i : i]);
    }
    json_decref(lb_sg);
    json_decref(tasks_sg);
    json_decref(vpcs);
    json_decref(subnets);
    json_decref(igws);
    json_decref(nats);
    json_decref(addrs);
    json_decref(tables);
    json_decref(groups);
}

static void test_converge_from_nothing(void **state)
{
    struct fx *f = *state;
    long wait = 0;
    int before, reads;

    /* The first pass creates everything and waits for the NAT gateway. */
    assert_int_equal(pass(f, false, false, &wait), APP_STEP_WAITING);
    assert_true(wait > 0);
    {
        json_t *nats = tagged(f, "DescribeNatGateways", "NatGateways");
        assert_int_equal(json_array_size(nats), 1);
        assert_string_equal(jstr(json_array_get(nats, 0), "State"), "pending");
        json_decref(nats);
    }
    advance(f, 60);
    assert_int_equal(until_ready(f, false), 1);
    print_message("network from nothing: %d reads, %d writes\n",
                  test_emulator_count_calls(&f->emu, NULL, 0), mutating(f));
    check_managed(f, true);
    assert_true(has_event(f, "Created", "ec2:vpc aviary-fraud-model"));
    /* Converged means quiet: reads only, and few of them. */
    before = mutating(f);
    reads = test_emulator_count_calls(&f->emu, NULL, 0);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
    reads = test_emulator_count_calls(&f->emu, NULL, 0) - reads;
    print_message("network converged pass: %d reads\n", reads);
    assert_true(reads <= 9);
    /* A plan of the converged network has nothing to do. */
    assert_int_equal(pass(f, false, true, NULL), APP_STEP_READY);
    assert_int_equal(json_array_size(f->plan), 0);
    assert_int_equal(mutating(f), before);
}

static void test_without_nat(void **state)
{
    struct fx *f = *state;
    int before;

    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": false}");
    assert_int_equal(until_ready(f, false), 1);
    check_managed(f, false);
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
    /* Turning the NAT gateway on adds it and the private default route. */
    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": true}");
    assert_true(until_ready(f, false) > 1);
    check_managed(f, true);
    /* The private default route pointed at the internet gateway by hand
     * goes back through the NAT gateway. */
    {
        json_t *tables = tagged(f, "DescribeRouteTables", "RouteTables");
        const json_t *priv = by_name(tables, "aviary-fraud-model-private");
        json_decref(ec2(f, "ReplaceRoute",
                        json_pack("{s:s, s:s, s:s}", "RouteTableId", jstr(priv, "RouteTableId"),
                                  "DestinationCidrBlock", "0.0.0.0/0", "GatewayId",
                                  jstr(net_res(f), "internetGatewayId"))));
        json_decref(tables);
        assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
        assert_true(has_event(f, "DriftCorrected", "default route changed to igw-"));
        check_managed(f, true);
    }
    /* And off again: the gateway and its address go, tasks move. */
    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": false}");
    until_ready(f, false);
    {
        json_t *nats = tagged(f, "DescribeNatGateways", "NatGateways");
        assert_string_equal(jstr(json_array_get(nats, 0), "State"), "deleting");
        json_decref(nats);
    }
    advance(f, 120);
    until_ready(f, false);
    advance(f, 7200); /* deleted NAT gateways stay visible for an hour */
    until_ready(f, false);
    check_managed(f, false);
}

static void test_layout_small_vpc(void **state)
{
    struct fx *f = *state;
    json_t *subnets;
    size_t i;
    const json_t *s;
    const char *want[] = {"10.9.8.0/26", "10.9.8.64/26", "10.9.8.128/26", "10.9.8.192/26"};

    set_network(f, "{\"cidr\": \"10.9.8.0/24\", \"natGateway\": false}");
    assert_int_equal(until_ready(f, false), 1);
    subnets = tagged(f, "DescribeSubnets", "Subnets");
    assert_int_equal(json_array_size(subnets), 4);
    json_array_foreach(subnets, i, s)
    {
        bool known = false;
        for (int k = 0; k < 4; k++)
            known = known || strcmp(jstr(s, "CidrBlock"), want[k]) == 0;
        assert_true(known);
    }
    json_decref(subnets);
    /* A changed CIDR cannot apply to the existing VPC: terminal. */
    set_network(f, "{\"cidr\": \"10.9.0.0/16\", \"natGateway\": false}");
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_FAILED);
    assert_true(f->terminal);
    assert_non_null(strstr(f->error, "cannot change"));
    /* Host bits set: terminal, before any call. */
    set_network(f, "{\"cidr\": \"10.9.8.1/24\"}");
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_FAILED);
    assert_true(f->terminal);
}

/* A VPC with subnets made by someone else (no aviary tags). */
static void make_existing_vpc(struct fx *f, char vpc[64], char subnets[4][64])
{
    static const char *const cidrs[4] = {"10.50.0.0/24", "10.50.1.0/24", "10.50.2.0/24",
                                         "10.50.3.0/24"};
    json_t *out = ec2(f, "CreateVpc", json_pack("{s:s}", "CidrBlock", "10.50.0.0/16"));

    snprintf(vpc, 64, "%s", jstr(json_object_get(out, "Vpc"), "VpcId"));
    json_decref(out);
    for (int i = 0; i < 4; i++) {
        out = ec2(f, "CreateSubnet",
                  json_pack("{s:s, s:s, s:s}", "VpcId", vpc, "CidrBlock", cidrs[i],
                            "AvailabilityZone", i % 2 ? "us-east-1b" : "us-east-1a"));
        snprintf(subnets[i], 64, "%s", jstr(json_object_get(out, "Subnet"), "SubnetId"));
        json_decref(out);
    }
}

static void test_existing_vpc(void **state)
{
    struct fx *f = *state;
    char vpc[64], subnets[4][64], network[512];
    json_t *calls, *groups, *out;
    const json_t *c, *res;
    size_t i;
    int before;

    make_existing_vpc(f, vpc, subnets);
    snprintf(network, sizeof(network),
             "{\"vpcId\": \"%s\", \"publicSubnets\": [\"%s\", \"%s\"],"
             " \"privateSubnets\": [\"%s\", \"%s\"]}",
             vpc, subnets[0], subnets[1], subnets[2], subnets[3]);
    set_network(f, network);
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
    assert_int_equal(until_ready(f, false), 1);
    /* Only the security groups were written. */
    calls = test_emulator_control(&f->emu, "GET", "calls?mutating=1", NULL);
    assert_true(json_array_size(calls) > 0);
    json_array_foreach(calls, i, c)
    {
        const char *op = jstr(c, "operation");
        if (strcmp(op, "CreateSecurityGroup") != 0 &&
            strcmp(op, "AuthorizeSecurityGroupIngress") != 0)
            fail_msg("unexpected %s in existing-VPC mode", op);
    }
    json_decref(calls);
    res = net_res(f);
    assert_string_equal(jstr(res, "vpcId"), vpc);
    assert_true(json_is_false(json_object_get(res, "managedVpc")));
    assert_true(json_is_false(json_object_get(res, "assignPublicIp")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(res, "taskSubnets"), 1)),
                        subnets[3]);
    assert_null(json_object_get(res, "natGatewayId"));
    groups = tagged(f, "DescribeSecurityGroups", "SecurityGroups");
    assert_int_equal(json_array_size(groups), 2);
    assert_string_equal(jstr(json_array_get(groups, 0), "VpcId"), vpc);
    json_decref(groups);
    /* The VPC is unchanged (DNS hostnames stays off) and nothing was tagged. */
    assert_false(vpc_attribute(f, vpc, "enableDnsHostnames", "EnableDnsHostnames"));
    out = ec2(f, "DescribeVpcs", json_pack("{s:[s]}", "VpcIds", vpc));
    assert_int_equal(
        json_array_size(json_object_get(json_array_get(json_object_get(out, "Vpcs"), 0), "Tags")),
        0);
    json_decref(out);
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
    /* Without private subnets tasks get public IPs in the public ones. */
    snprintf(network, sizeof(network), "{\"vpcId\": \"%s\", \"publicSubnets\": [\"%s\", \"%s\"]}",
             vpc, subnets[0], subnets[1]);
    set_network(f, network);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_true(json_is_true(json_object_get(net_res(f), "assignPublicIp")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(net_res(f), "taskSubnets"), 0)),
        subnets[0]);
    /* Deletion removes only the security groups. */
    assert_int_equal(until_ready(f, true), 1);
    groups = tagged(f, "DescribeSecurityGroups", "SecurityGroups");
    assert_int_equal(json_array_size(groups), 0);
    json_decref(groups);
    out = ec2(
        f, "DescribeSubnets",
        json_pack("{s:[s, s, s, s]}", "SubnetIds", subnets[0], subnets[1], subnets[2], subnets[3]));
    assert_int_equal(json_array_size(json_object_get(out, "Subnets")), 4);
    json_decref(out);
    out = ec2(f, "DescribeVpcs", json_pack("{s:[s]}", "VpcIds", vpc));
    assert_int_equal(json_array_size(json_object_get(out, "Vpcs")), 1);
    json_decref(out);
}

static void test_existing_vpc_errors(void **state)
{
    struct fx *f = *state;
    char vpc[64], subnets[4][64], other[64], other_subnets[4][64], network[512];

    make_existing_vpc(f, vpc, subnets);
    /* A VPC that does not exist. */
    snprintf(network, sizeof(network),
             "{\"vpcId\": \"vpc-0123456789abcdef0\", \"publicSubnets\": [\"%s\", \"%s\"]}",
             subnets[0], subnets[1]);
    set_network(f, network);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_FAILED);
    assert_true(f->terminal);
    assert_non_null(strstr(f->error, "does not exist"));
    /* Subnets of another VPC. */
    json_t *out = ec2(f, "CreateVpc", json_pack("{s:s}", "CidrBlock", "10.60.0.0/16"));
    snprintf(other, sizeof(other), "%s", jstr(json_object_get(out, "Vpc"), "VpcId"));
    json_decref(out);
    out = ec2(f, "CreateSubnet",
              json_pack("{s:s, s:s, s:s}", "VpcId", other, "CidrBlock", "10.60.0.0/24",
                        "AvailabilityZone", "us-east-1a"));
    snprintf(other_subnets[0], 64, "%s", jstr(json_object_get(out, "Subnet"), "SubnetId"));
    json_decref(out);
    snprintf(network, sizeof(network), "{\"vpcId\": \"%s\", \"publicSubnets\": [\"%s\", \"%s\"]}",
             vpc, subnets[0], other_subnets[0]);
    set_network(f, network);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_FAILED);
    assert_true(f->terminal);
    assert_non_null(strstr(f->error, other));
    /* Public subnets in one zone cannot carry a load balancer. */
    snprintf(network, sizeof(network), "{\"vpcId\": \"%s\", \"publicSubnets\": [\"%s\", \"%s\"]}",
             vpc, subnets[0], subnets[2]);
    set_network(f, network);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_FAILED);
    assert_true(f->terminal);
    /* None of it created anything. */
    json_t *groups = tagged(f, "DescribeSecurityGroups", "SecurityGroups");
    assert_int_equal(json_array_size(groups), 0);
    json_decref(groups);
}

static void test_drift_reverted(void **state)
{
    struct fx *f = *state;
    char lb[64], tasks[64], vpc[64], public_a[64], igw[64];
    json_t *sg, *tables, *perm, *out;
    const json_t *pub;
    int before;

    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": false}");
    until_ready(f, false);
    /* Copies: the status is rewritten by every pass. */
    snprintf(lb, sizeof(lb), "%s", jstr(net_res(f), "lbSecurityGroup"));
    snprintf(tasks, sizeof(tasks), "%s", jstr(net_res(f), "tasksSecurityGroup"));
    snprintf(vpc, sizeof(vpc), "%s", jstr(net_res(f), "vpcId"));
    snprintf(public_a, sizeof(public_a), "%s",
             json_string_value(json_array_get(json_object_get(net_res(f), "publicSubnets"), 0)));
    snprintf(igw, sizeof(igw), "%s", jstr(net_res(f), "internetGatewayId"));
    /* By hand: the tasks rule revoked, SSH opened on the load balancer,
     * the internet route deleted, DNS hostnames and public IPs turned off. */
    perm = json_pack("[{s:s, s:i, s:i, s:[{s:s}]}]", "IpProtocol", "tcp", "FromPort", 8080,
                     "ToPort", 8080, "UserIdGroupPairs", "GroupId", lb);
    json_decref(ec2(f, "RevokeSecurityGroupIngress",
                    json_pack("{s:s, s:o}", "GroupId", tasks, "IpPermissions", perm)));
    perm = json_pack("[{s:s, s:i, s:i, s:[{s:s}]}]", "IpProtocol", "tcp", "FromPort", 22, "ToPort",
                     22, "IpRanges", "CidrIp", "0.0.0.0/0");
    json_decref(ec2(f, "AuthorizeSecurityGroupIngress",
                    json_pack("{s:s, s:o}", "GroupId", lb, "IpPermissions", perm)));
    json_decref(ec2(f, "AuthorizeSecurityGroupEgress",
                    json_pack("{s:s, s:[{s:s, s:i, s:i, s:[{s:s}]}]}", "GroupId", tasks,
                              "IpPermissions", "IpProtocol", "udp", "FromPort", 53, "ToPort", 53,
                              "IpRanges", "CidrIp", "10.0.0.0/8")));
    tables = tagged(f, "DescribeRouteTables", "RouteTables");
    pub = by_name(tables, "aviary-fraud-model-public");
    json_decref(ec2(f, "DeleteRoute",
                    json_pack("{s:s, s:s}", "RouteTableId", jstr(pub, "RouteTableId"),
                              "DestinationCidrBlock", "0.0.0.0/0")));
    json_decref(ec2(f, "CreateRoute",
                    json_pack("{s:s, s:s, s:s}", "RouteTableId", jstr(pub, "RouteTableId"),
                              "DestinationCidrBlock", "192.168.0.0/16", "GatewayId", igw)));
    json_decref(tables);
    json_decref(ec2(f, "ModifyVpcAttribute",
                    json_pack("{s:s, s:{s:b}}", "VpcId", vpc, "EnableDnsHostnames", "Value", 0)));
    json_decref(
        ec2(f, "ModifySubnetAttribute",
            json_pack("{s:s, s:{s:b}}", "SubnetId", public_a, "MapPublicIpOnLaunch", "Value", 0)));
    /* One pass reverts it all and says so. */
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_true(mutating(f) > before);
    check_managed(f, false);
    tables = tagged(f, "DescribeRouteTables", "RouteTables");
    assert_null(route_to(by_name(tables, "aviary-fraud-model-public"), "192.168.0.0/16"));
    json_decref(tables);
    assert_true(has_event(f, "DriftCorrected", "missing ingress tcp 8080"));
    assert_true(has_event(f, "DriftCorrected", "extra ingress tcp 22 0.0.0.0/0"));
    assert_true(has_event(f, "DriftCorrected", "extra egress udp 53 10.0.0.0/8"));
    assert_true(has_event(f, "DriftCorrected", "default route deleted"));
    assert_true(has_event(f, "DriftCorrected", "route to 192.168.0.0/16 added"));
    assert_true(has_event(f, "DriftCorrected", "DNS hostnames"));
    assert_true(has_event(f, "DriftCorrected", "MapPublicIpOnLaunch"));
    sg = security_group(f, lb);
    assert_false(has_rule(sg, "IpPermissions", "tcp", 22, "0.0.0.0/0", NULL));
    json_decref(sg);
    /* And is quiet afterwards. */
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
    /* A subnet moved to another route table by hand comes back. */
    out = ec2(f, "CreateRouteTable", json_pack("{s:s}", "VpcId", vpc));
    {
        const char *rt = jstr(json_object_get(out, "RouteTable"), "RouteTableId");
        json_t *assocs = ec2(f, "DescribeRouteTables",
                             json_pack("{s:[{s:s, s:[s]}]}", "Filters", "Name",
                                       "association.subnet-id", "Values", public_a));
        const json_t *a = NULL;
        size_t i;
        json_array_foreach(
            json_object_get(json_array_get(json_object_get(assocs, "RouteTables"), 0),
                            "Associations"),
            i, a)
        {
            if (strcmp(jstr(a, "SubnetId"), public_a) == 0)
                break;
        }
        json_decref(ec2(f, "DisassociateRouteTable",
                        json_pack("{s:s}", "AssociationId", jstr(a, "RouteTableAssociationId"))));
        json_decref(ec2(f, "AssociateRouteTable",
                        json_pack("{s:s, s:s}", "RouteTableId", rt, "SubnetId", public_a)));
        json_decref(assocs);
    }
    json_decref(out);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_true(has_event(f, "DriftCorrected", "associated with route table"));
    check_managed(f, false);
}

/* The private default route through the NAT gateway is created on the
 * pass after the gateway becomes available: a create, not drift. Deleted by
 * hand afterwards, it is drift. */
static void test_nat_route_created_not_drift(void **state)
{
    struct fx *f = *state;
    json_t *tables;
    const json_t *priv;

    until_ready(f, false);
    assert_false(has_event(f, "DriftCorrected", ""));
    assert_true(has_event(f, "Created", "ec2:route "));
    tables = tagged(f, "DescribeRouteTables", "RouteTables");
    priv = by_name(tables, "aviary-fraud-model-private");
    assert_non_null(route_to(priv, "0.0.0.0/0"));
    assert_string_equal(jstr(net_res(f), "natRoute"), jstr(net_res(f), "natGatewayId"));
    json_decref(ec2(f, "DeleteRoute",
                    json_pack("{s:s, s:s}", "RouteTableId", jstr(priv, "RouteTableId"),
                              "DestinationCidrBlock", "0.0.0.0/0")));
    json_decref(tables);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_true(has_event(f, "DriftCorrected", "default route deleted"));
    tables = tagged(f, "DescribeRouteTables", "RouteTables");
    assert_non_null(route_to(by_name(tables, "aviary-fraud-model-private"), "0.0.0.0/0"));
    json_decref(tables);
}

/* A plan of a drifted security group names each rule it would change. */
static void test_plan_names_drifted_rules(void **state)
{
    struct fx *f = *state;
    char lb[64];
    const json_t *a, *c;
    bool seen = false;
    size_t i, j;
    int before;

    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": false}");
    until_ready(f, false);
    snprintf(lb, sizeof(lb), "%s", jstr(net_res(f), "lbSecurityGroup"));
    json_decref(ec2(f, "AuthorizeSecurityGroupIngress",
                    json_pack("{s:s, s:[{s:s, s:i, s:i, s:[{s:s}]}]}", "GroupId", lb,
                              "IpPermissions", "IpProtocol", "tcp", "FromPort", 22, "ToPort", 22,
                              "IpRanges", "CidrIp", "0.0.0.0/0")));
    before = mutating(f);
    assert_int_equal(pass(f, false, true, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
    json_array_foreach(f->plan, i, a)
    {
        if (strcmp(jstr(a, "action"), "update") != 0 || strcmp(jstr(a, "name"), lb) != 0)
            continue;
        json_array_foreach(json_object_get(a, "changes"), j, c)
        {
            if (strcmp(json_string_value(c), "ingress tcp 22 0.0.0.0/0: remove") == 0)
                seen = true;
        }
    }
    if (!seen)
        fail_msg("plan does not name the SSH rule: %s", json_dumps(f->plan, 0));
}

/* blueGreen: the test listener's port is open on the load balancer group
 * from the VPC's CIDR only, and closed again when the strategy changes
 * (an update, not drift). */
static void test_blue_green_test_port(void **state)
{
    struct fx *f = *state;
    char lb[64];
    json_t *sg;
    int before;

    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": false}");
    json_object_set_new(
        f->spec, "rollout",
        json_pack("{s:s, s:{s:i}}", "strategy", "blueGreen", "blueGreen", "testPort", 8443));
    until_ready(f, false);
    snprintf(lb, sizeof(lb), "%s", jstr(net_res(f), "lbSecurityGroup"));
    sg = security_group(f, lb);
    assert_true(has_rule(sg, "IpPermissions", "tcp", 8443, "10.40.0.0/16", NULL));
    assert_false(has_rule(sg, "IpPermissions", "tcp", 8443, "0.0.0.0/0", NULL));
    assert_true(has_rule(sg, "IpPermissions", "tcp", 80, "0.0.0.0/0", NULL));
    assert_int_equal(rule_count(sg, "IpPermissions"), 3);
    json_decref(sg);
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
    /* Back to a strategy without a test listener: the rule goes. */
    json_object_set_new(f->spec, "rollout", json_pack("{s:s}", "strategy", "allAtOnce"));
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    sg = security_group(f, lb);
    assert_false(has_rule(sg, "IpPermissions", "tcp", 8443, "10.40.0.0/16", NULL));
    assert_int_equal(rule_count(sg, "IpPermissions"), 2);
    json_decref(sg);
    assert_false(has_event(f, "DriftCorrected", ""));
    assert_true(has_event(f, "Updated", lb));
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
}

static void test_port_change_in_place(void **state)
{
    struct fx *f = *state;
    char tasks[64], lb[64];
    json_t *sg;
    int before;

    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": false}");
    until_ready(f, false);
    snprintf(tasks, sizeof(tasks), "%s", jstr(net_res(f), "tasksSecurityGroup"));
    snprintf(lb, sizeof(lb), "%s", jstr(net_res(f), "lbSecurityGroup"));
    json_object_set_new(f->spec, "port", json_integer(9090));
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f) - before, 2); /* revoke 8080, authorize 9090 */
    assert_string_equal(jstr(net_res(f), "tasksSecurityGroup"), tasks);
    sg = security_group(f, tasks);
    assert_int_equal(rule_count(sg, "IpPermissions"), 1);
    assert_true(has_rule(sg, "IpPermissions", "tcp", 9090, NULL, lb));
    json_decref(sg);
    assert_true(has_event(f, "Updated", "ec2:security-group"));
    assert_false(has_event(f, "DriftCorrected", "9090"));
    before = mutating(f);
    assert_int_equal(pass(f, false, false, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
}

static void test_delete_leaves_nothing(void **state)
{
    struct fx *f = *state;
    static const char *const kinds[][2] = {
        {"DescribeVpcs", "Vpcs"},
        {"DescribeSubnets", "Subnets"},
        {"DescribeInternetGateways", "InternetGateways"},
        {"DescribeAddresses", "Addresses"},
        {"DescribeRouteTables", "RouteTables"},
        {"DescribeSecurityGroups", "SecurityGroups"},
    };
    char lookalike[64], lb_arn[512];
    json_t *out, *nats;
    const json_t *res;
    long wait = 0;
    size_t i;
    const json_t *g;

    /* An untagged VPC named like ours: never used nor touched. */
    out = ec2(f, "CreateVpc",
              json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}]}]}", "CidrBlock", "10.40.0.0/16",
                        "TagSpecifications", "ResourceType", "vpc", "Tags", "Key", "Name", "Value",
                        "aviary-fraud-model"));
    snprintf(lookalike, sizeof(lookalike), "%s", jstr(json_object_get(out, "Vpc"), "VpcId"));
    json_decref(out);
    until_ready(f, false);
    check_managed(f, true);
    res = net_res(f);
    assert_string_not_equal(jstr(res, "vpcId"), lookalike);
    /* A load balancer in the public subnets, deleted just before the
     * network: its interfaces are released some seconds later. */
    {
        struct aws_error err;
        json_t *lb = json_pack("{s:s, s:[O, O], s:[s], s:s, s:s}", "Name", "fraud-model-alb",
                               "Subnets", json_array_get(json_object_get(res, "publicSubnets"), 0),
                               json_array_get(json_object_get(res, "publicSubnets"), 1),
                               "SecurityGroups", jstr(res, "lbSecurityGroup"), "Scheme",
                               "internet-facing", "Type", "application");
        json_t *lbout = NULL;
        assert_int_equal(aws_call(f->emu.client, "elbv2", "CreateLoadBalancer", lb, &lbout, &err),
                         0);
        snprintf(
            lb_arn, sizeof(lb_arn), "%s",
            jstr(json_array_get(json_object_get(lbout, "LoadBalancers"), 0), "LoadBalancerArn"));
        json_decref(lb);
        json_decref(lbout);
        lb = json_pack("{s:s}", "LoadBalancerArn", lb_arn);
        assert_int_equal(aws_call(f->emu.client, "elbv2", "DeleteLoadBalancer", lb, &lbout, &err),
                         0);
        json_decref(lb);
        json_decref(lbout);
    }
    /* First pass: groups still in use, NAT gateway deleting: a wait. */
    assert_int_equal(pass(f, true, false, &wait), APP_STEP_WAITING);
    assert_true(wait > 0);
    assert_string_equal(f->error, "");
    nats = tagged(f, "DescribeNatGateways", "NatGateways");
    assert_string_equal(jstr(json_array_get(nats, 0), "State"), "deleting");
    json_decref(nats);
    out = tagged(f, "DescribeSecurityGroups", "SecurityGroups");
    assert_int_equal(json_array_size(out), 1); /* the load balancer's, still in use */
    assert_string_equal(jstr(json_array_get(out, 0), "GroupName"), "aviary-fraud-model-lb");
    json_decref(out);
    out = tagged(f, "DescribeVpcs", "Vpcs");
    assert_int_equal(json_array_size(out), 1);
    json_decref(out);
    /* Then it gets there. */
    advance(f, (double)wait / 1000.0);
    assert_true(until_ready(f, true) >= 1);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        out = tagged(f, kinds[k][0], kinds[k][1]);
        if (json_array_size(out) != 0)
            fail_msg("%s still returns %zu tagged resources", kinds[k][0], json_array_size(out));
        json_decref(out);
    }
    nats = tagged(f, "DescribeNatGateways", "NatGateways");
    json_array_foreach(nats, i, g)
    {
        assert_string_equal(jstr(g, "State"), "deleted");
    }
    json_decref(nats);
    assert_null(net_res(f));
    /* The look-alike is still there, untouched. */
    out = ec2(f, "DescribeVpcs", json_pack("{s:[s]}", "VpcIds", lookalike));
    assert_int_equal(json_array_size(json_object_get(out, "Vpcs")), 1);
    json_decref(out);
    assert_false(vpc_attribute(f, lookalike, "enableDnsHostnames", "EnableDnsHostnames"));
    /* Deleting again is a no-op. */
    assert_int_equal(pass(f, true, false, NULL), APP_STEP_READY);
}

static void test_delete_waits_for_dependencies(void **state)
{
    struct fx *f = *state;
    struct aws_error err;
    json_t *out;
    char sg[64], vpc[64];
    int before;

    set_network(f, "{\"cidr\": \"10.40.0.0/16\", \"natGateway\": false}");
    until_ready(f, false);
    snprintf(vpc, sizeof(vpc), "%s", jstr(net_res(f), "vpcId"));
    /* Someone else's security group in our VPC keeps it from being deleted. */
    out = ec2(f, "CreateSecurityGroup",
              json_pack("{s:s, s:s, s:s}", "GroupName", "someone-else", "Description", "x", "VpcId",
                        vpc));
    snprintf(sg, sizeof(sg), "%s", jstr(out, "GroupId"));
    json_decref(out);
    for (int i = 0; i < 3; i++) {
        long wait = 0;
        assert_int_equal(pass(f, true, false, &wait), APP_STEP_WAITING);
        assert_true(wait > 0);
        assert_string_equal(f->error, "");
    }
    /* It is never deleted by aviary: deleting it by hand still works. */
    assert_string_equal(
        ec2_error(f, "DeleteSecurityGroup", json_pack("{s:s}", "GroupId", sg), &err), "");
    before = mutating(f);
    assert_int_equal(until_ready(f, true), 1);
    assert_int_equal(mutating(f) - before, 1); /* DeleteVpc */
}

static void test_plan_makes_no_writes(void **state)
{
    struct fx *f = *state;
    static const char *const expected[] = {
        "ec2:vpc",         "ec2:subnet",      "ec2:internet-gateway", "ec2:elastic-ip",
        "ec2:nat-gateway", "ec2:route-table", "ec2:security-group",
    };
    json_t *vpcs;
    const json_t *a;
    size_t i;
    int before = mutating(f);

    assert_int_equal(pass(f, false, true, NULL), APP_STEP_READY);
    assert_int_equal(mutating(f), before);
    for (size_t k = 0; k < sizeof(expected) / sizeof(expected[0]); k++) {
        bool seen = false;
        json_array_foreach(f->plan, i, a)
        {
            if (strcmp(jstr(a, "action"), "create") == 0 &&
                strcmp(jstr(a, "resource"), expected[k]) == 0)
                seen = true;
        }
        if (!seen)
            fail_msg("plan has no create of %s", expected[k]);
    }
    vpcs = tagged(f, "DescribeVpcs", "Vpcs");
    assert_int_equal(json_array_size(vpcs), 0);
    json_decref(vpcs);
    assert_string_equal(jstr(net_res(f), "vpcId"), "(known after apply)");
}

/* A converge interrupted after some creates (an AWS error, then a lost
 * status as after a crash) never duplicates anything: the next passes find
 * what exists by its tags. Also checks the error names the call and code. */
static void test_interrupted_converge_no_duplicates(void **state)
{
    struct fx *f = *state;
    static const char *const ops[] = {"CreateSubnet", "AttachInternetGateway", "CreateNatGateway",
                                      "AssociateRouteTable", "AuthorizeSecurityGroupIngress"};
    char expect[128];

    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        json_t *fault = json_pack("{s:{s:s, s:s, s:s, s:i, s:s}}", "fail_once", "service", "ec2",
                                  "operation", ops[k], "code", "UnauthorizedOperation", "status",
                                  403, "message", "injected");
        enum app_step step = APP_STEP_WAITING;
        json_decref(test_emulator_control(&f->emu, "POST", "faults", fault));
        json_decref(fault);
        for (int i = 0; i < MAX_PASSES && step == APP_STEP_WAITING; i++) {
            long wait = 0;
            step = pass(f, false, false, &wait);
            if (step == APP_STEP_WAITING)
                advance(f, (double)wait / 1000.0);
        }
        assert_int_equal(step, APP_STEP_FAILED);
        snprintf(expect, sizeof(expect), "ec2.%s: UnauthorizedOperation: injected", ops[k]);
        if (strstr(f->error, expect) == NULL)
            fail_msg("error \"%s\" lacks \"%s\"", f->error, expect);
        assert_true(f->terminal);
        /* The status is lost, as in a crash before it was written. */
        json_decref(f->status);
        f->status = status_new("Application", "fraud-model");
        until_ready(f, false);
        check_managed(f, true);
        /* Start over for the next operation. */
        until_ready(f, true);
        advance(f, 7200);
        json_decref(f->status);
        f->status = status_new("Application", "fraud-model");
    }
}

/* Throttling and 5xx on a fifth of the calls: the client retries, the
 * network converges all the same, with nothing duplicated. */
static void test_converges_through_faults(void **state)
{
    struct fx *f = *state;
    json_t *fault = json_pack("{s:{s:f}, s:{s:f}, s:i}", "throttle", "fraction", 0.1, "error500",
                              "fraction", 0.1, "seed", 7);
    int ready = 0;

    json_decref(test_emulator_control(&f->emu, "POST", "faults", fault));
    json_decref(fault);
    for (int i = 0; i < 3 * MAX_PASSES && !ready; i++) {
        long wait = 0;
        enum app_step step = pass(f, false, false, &wait);
        if (step == APP_STEP_READY)
            ready = 1;
        else
            advance(f, wait > 0 ? (double)wait / 1000.0 : 1.0);
    }
    assert_true(ready);
    json_decref(test_emulator_control(&f->emu, "DELETE", "faults", NULL));
    check_managed(f, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_converge_from_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_nat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_small_vpc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_vpc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_vpc_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift_reverted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nat_route_created_not_drift, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_names_drifted_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blue_green_test_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_change_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_waits_for_dependencies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_makes_no_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_converge_no_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_converges_through_faults, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
