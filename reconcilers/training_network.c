/* The "network" concern of a TrainingEnvironment: where the notebook
 * instance's network interface lives. Worker threads; one reconcile's
 * context.
 *
 * Managed (spec.network.cidr, default 10.0.0.0/16): a VPC of that CIDR, one
 * public subnet (the first /min(p+4, 26) block, in the first available zone
 * by name), an internet gateway, a route table "aviary-<name>-public" with
 * 0.0.0.0/0 through the gateway associated with the subnet, and a security
 * group "aviary-<name>-notebook" without ingress rules (AWS's default
 * egress). Existing (spec.network.vpcId + subnetId): the subnet is checked to
 * belong to the VPC and used as it is; only the security group is created.
 *
 * Everything is found by the aviary tags (aviary.io/training=<name>) on
 * every reconcile, so a lost status never duplicates anything. Hand-made
 * changes reverted: the default route, the subnet's association, ingress
 * rules added to the security group. A VPC's CIDR cannot change (a terminal
 * error). Deletion removes what carries the tags, in reverse, waiting while
 * AWS still releases the notebook's network interface; the VPC and subnet a
 * manifest names are never deleted. */
#include "reconcilers/training.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define NET_WAIT_MS 5000
#define ANYWHERE    "0.0.0.0/0"

struct tnet {
    struct train_ctx *ctx;
    char cidr[24];
    char subnet_cidr[24];
    char vpc[64];
    bool vpc_new;
    char subnet[64];
    char igw[64];
    char table[64];
    char sg[64];
};

static json_t *tag_spec(const struct train_ctx *ctx, const char *type, const char *name)
{
    json_t *tags = train_tags_list(ctx, "Key", "Value");

    json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", "Name", "Value", name));
    return json_pack("[{s:s, s:o}]", "ResourceType", type, "Tags", tags);
}

/* The first owned item of list (optionally with member == value). Borrowed. */
static const json_t *first_owned(const struct train_ctx *ctx, const json_t *list,
                                 const char *member, const char *value)
{
    const json_t *v;
    size_t i;

    json_array_foreach(list, i, v)
    {
        if (train_tags_owned(ctx, json_object_get(v, "Tags")) &&
            (member == NULL || strcmp(train_str(v, member), value) == 0))
            return v;
    }
    return NULL;
}

/* The id member of what a create returned; in plan mode, where nothing was
 * created, TRAIN_PLACEHOLDER. */
static const char *planned_id(const struct train_ctx *ctx, const json_t *obj, const char *member)
{
    return obj == NULL && ctx->app.plan ? TRAIN_PLACEHOLDER : train_str(obj, member);
}

static int layout(struct tnet *n)
{
    unsigned a, b, c, d;
    int prefix;
    char tail;
    uint32_t addr;

    if (sscanf(n->cidr, "%u.%u.%u.%u/%d%c", &a, &b, &c, &d, &prefix, &tail) != 5 || a > 255 ||
        b > 255 || c > 255 || d > 255 || prefix < 16 || prefix > 24) {
        app_fail(&n->ctx->app, true,
                 "spec.network.cidr %s: expected an IPv4 CIDR block from /16 to /24", n->cidr);
        return -1;
    }
    addr = (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d;
    if (addr & ((1u << (32 - prefix)) - 1)) {
        app_fail(&n->ctx->app, true, "spec.network.cidr %s has host bits set", n->cidr);
        return -1;
    }
    snprintf(n->subnet_cidr, sizeof(n->subnet_cidr), "%u.%u.%u.%u/%d", a, b, c, d,
             prefix + 4 < 26 ? prefix + 4 : 26);
    return 0;
}

static int describe(struct train_ctx *ctx, const char *resource, const char *operation,
                    json_t *filters, json_t **out)
{
    return app_read(&ctx->app, resource, "ec2", operation, json_pack("{s:o}", "Filters", filters),
                    out, NULL);
}

static int converge_vpc(struct tnet *n)
{
    struct train_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *v;
    int rc = -1;

    if (describe(ctx, ctx->names.vpc, "DescribeVpcs", train_ec2_filters(ctx, NULL), &out) != 0)
        return -1;
    v = first_owned(ctx, json_object_get(out, "Vpcs"), "CidrBlock", n->cidr);
    if (v == NULL && (v = first_owned(ctx, json_object_get(out, "Vpcs"), NULL, NULL)) != NULL) {
        app_fail(&ctx->app, true,
                 "%s: VPC %s has CIDR %s but spec.network.cidr is %s; a VPC's CIDR cannot change "
                 "(restore it, or delete the environment and apply it again)",
                 ctx->names.vpc, train_str(v, "VpcId"), train_str(v, "CidrBlock"), n->cidr);
        goto out;
    }
    if (v == NULL) {
        app_note_change(&ctx->app, "create", "ec2:vpc", ctx->names.vpc,
                        json_pack("[s+]", "cidr: ", n->cidr));
        if (app_write(&ctx->app, ctx->names.vpc, "ec2", "CreateVpc",
                      json_pack("{s:s, s:o}", "CidrBlock", n->cidr, "TagSpecifications",
                                tag_spec(ctx, "vpc", ctx->names.vpc)),
                      &created, NULL) < 0)
            goto out;
        v = json_object_get(created, "Vpc");
        n->vpc_new = true;
    }
    snprintf(n->vpc, sizeof(n->vpc), "%s", planned_id(ctx, v, "VpcId"));
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

static int first_zone(struct tnet *n, char *zone, size_t size)
{
    json_t *out = NULL;
    const json_t *z;
    const char *best = NULL;
    size_t i;

    if (app_read(&n->ctx->app, "availability-zones", "ec2", "DescribeAvailabilityZones",
                 json_pack("{s:[{s:s, s:[s]}]}", "Filters", "Name", "state", "Values", "available"),
                 &out, NULL) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "AvailabilityZones"), i, z)
    {
        const char *name = train_str(z, "ZoneName");
        if (*name && (best == NULL || strcmp(name, best) < 0))
            best = name;
    }
    if (best == NULL) {
        app_fail(&n->ctx->app, true, "%s: the region has no available zone", n->ctx->names.vpc);
        json_decref(out);
        return -1;
    }
    snprintf(zone, size, "%s", best);
    json_decref(out);
    return 0;
}

static int converge_subnet(struct tnet *n)
{
    struct train_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *s = NULL;
    char zone[64];
    int rc = -1;

    if (!n->vpc_new) {
        if (describe(ctx, ctx->names.subnet, "DescribeSubnets",
                     train_ec2_filters(ctx, "vpc-id", n->vpc, NULL), &out) != 0)
            return -1;
        s = first_owned(ctx, json_object_get(out, "Subnets"), "CidrBlock", n->subnet_cidr);
    }
    if (s == NULL) {
        if (first_zone(n, zone, sizeof(zone)) != 0)
            goto out;
        app_note_change(&ctx->app, "create", "ec2:subnet", ctx->names.subnet,
                        json_pack("[s+]", "cidr: ", n->subnet_cidr));
        if (app_write(&ctx->app, ctx->names.subnet, "ec2", "CreateSubnet",
                      json_pack("{s:s, s:s, s:s, s:o}", "VpcId", n->vpc, "CidrBlock",
                                n->subnet_cidr, "AvailabilityZone", zone, "TagSpecifications",
                                tag_spec(ctx, "subnet", ctx->names.subnet)),
                      &created, NULL) < 0)
            goto out;
        s = json_object_get(created, "Subnet");
    }
    snprintf(n->subnet, sizeof(n->subnet), "%s", planned_id(ctx, s, "SubnetId"));
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

static bool attached_to(const json_t *igw, const char *vpc)
{
    const json_t *a;
    size_t i;

    json_array_foreach(json_object_get(igw, "Attachments"), i, a)
    {
        if (strcmp(train_str(a, "VpcId"), vpc) == 0)
            return true;
    }
    return false;
}

static int converge_igw(struct tnet *n)
{
    struct train_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *g, *found = NULL;
    bool attached = false;
    size_t i;
    int rc = -1;

    if (describe(ctx, ctx->names.igw, "DescribeInternetGateways", train_ec2_filters(ctx, NULL),
                 &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "InternetGateways"), i, g)
    {
        if (!train_tags_owned(ctx, json_object_get(g, "Tags")))
            continue;
        if (attached_to(g, n->vpc)) {
            found = g;
            attached = true;
            break;
        }
        if (found == NULL && json_array_size(json_object_get(g, "Attachments")) == 0)
            found = g;
    }
    if (found == NULL) {
        app_note_change(&ctx->app, "create", "ec2:internet-gateway", ctx->names.igw, NULL);
        if (app_write(&ctx->app, ctx->names.igw, "ec2", "CreateInternetGateway",
                      json_pack("{s:o}", "TagSpecifications",
                                tag_spec(ctx, "internet-gateway", ctx->names.igw)),
                      &created, NULL) < 0)
            goto out;
        found = json_object_get(created, "InternetGateway");
    }
    snprintf(n->igw, sizeof(n->igw), "%s", planned_id(ctx, found, "InternetGatewayId"));
    if (!attached &&
        app_write(&ctx->app, n->igw, "ec2", "AttachInternetGateway",
                  json_pack("{s:s, s:s}", "InternetGatewayId", n->igw, "VpcId", n->vpc), NULL,
                  NULL) < 0)
        goto out;
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

static int converge_route_table(struct tnet *n)
{
    struct train_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *t = NULL, *r, *a;
    const char *via = NULL;
    bool associated = false, fresh = false;
    size_t i;
    int rc = -1;

    if (!n->vpc_new) {
        if (describe(ctx, ctx->names.table, "DescribeRouteTables",
                     train_ec2_filters(ctx, "vpc-id", n->vpc, NULL), &out) != 0)
            return -1;
        t = first_owned(ctx, json_object_get(out, "RouteTables"), NULL, NULL);
    }
    if (t == NULL) {
        app_note_change(&ctx->app, "create", "ec2:route-table", ctx->names.table, NULL);
        if (app_write(&ctx->app, ctx->names.table, "ec2", "CreateRouteTable",
                      json_pack("{s:s, s:o}", "VpcId", n->vpc, "TagSpecifications",
                                tag_spec(ctx, "route-table", ctx->names.table)),
                      &created, NULL) < 0)
            goto out;
        t = json_object_get(created, "RouteTable");
        fresh = true;
    }
    snprintf(n->table, sizeof(n->table), "%s", planned_id(ctx, t, "RouteTableId"));
    json_array_foreach(json_object_get(t, "Routes"), i, r)
    {
        if (strcmp(train_str(r, "DestinationCidrBlock"), ANYWHERE) == 0)
            via = train_str(r, "GatewayId");
    }
    json_array_foreach(json_object_get(t, "Associations"), i, a)
    {
        if (strcmp(train_str(a, "SubnetId"), n->subnet) == 0)
            associated = true;
    }
    if (via == NULL || strcmp(via, n->igw) != 0) {
        if (via != NULL || !fresh)
            train_note_drift(ctx, "ec2:route", n->table, "default route not through the gateway");
        if (app_write(&ctx->app, n->table, "ec2", via != NULL ? "ReplaceRoute" : "CreateRoute",
                      json_pack("{s:s, s:s, s:s}", "RouteTableId", n->table, "DestinationCidrBlock",
                                ANYWHERE, "GatewayId", n->igw),
                      NULL, NULL) < 0)
            goto out;
    }
    if (!associated) {
        if (!fresh)
            train_note_drift(ctx, "ec2:route-table", n->table, "subnet association removed");
        if (app_write(&ctx->app, n->table, "ec2", "AssociateRouteTable",
                      json_pack("{s:s, s:s}", "RouteTableId", n->table, "SubnetId", n->subnet),
                      NULL, NULL) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

static int converge_security_group(struct tnet *n)
{
    struct train_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *g;
    int rc = -1;

    if (!n->vpc_new) {
        if (describe(ctx, ctx->names.sg, "DescribeSecurityGroups",
                     train_ec2_filters(ctx, "vpc-id", n->vpc, NULL), &out) != 0)
            return -1;
        g = first_owned(ctx, json_object_get(out, "SecurityGroups"), "GroupName", ctx->names.sg);
        if (g != NULL) {
            const json_t *perms = json_object_get(g, "IpPermissions");
            snprintf(n->sg, sizeof(n->sg), "%s", train_str(g, "GroupId"));
            /* The notebook is reached through SageMaker, never directly. */
            if (json_array_size(perms) > 0) {
                train_note_drift(ctx, "ec2:security-group", n->sg, "ingress rules added");
                if (app_write(&ctx->app, n->sg, "ec2", "RevokeSecurityGroupIngress",
                              json_pack("{s:s, s:O}", "GroupId", n->sg, "IpPermissions", perms),
                              NULL, NULL) < 0)
                    goto out;
            }
            rc = 0;
            goto out;
        }
    }
    app_note_change(&ctx->app, "create", "ec2:security-group", ctx->names.sg, NULL);
    if (app_write(&ctx->app, ctx->names.sg, "ec2", "CreateSecurityGroup",
                  json_pack("{s:s, s:s, s:s, s:o}", "GroupName", ctx->names.sg, "Description",
                            "aviary training notebook (no ingress)", "VpcId", n->vpc,
                            "TagSpecifications", tag_spec(ctx, "security-group", ctx->names.sg)),
                  &created, NULL) < 0)
        goto out;
    snprintf(n->sg, sizeof(n->sg), "%s", planned_id(ctx, created, "GroupId"));
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

/* spec.network.vpcId + subnetId: the subnet must exist in that VPC. */
static int check_existing(struct tnet *n, const char *vpc, const char *subnet)
{
    struct train_ctx *ctx = n->ctx;
    json_t *out = NULL;
    const json_t *s;
    int rc = -1;

    if (app_read(&ctx->app, subnet, "ec2", "DescribeSubnets",
                 json_pack("{s:[s]}", "SubnetIds", subnet), &out, NULL) != 0) {
        ctx->app.terminal = strstr(ctx->app.error, "NotFound") != NULL;
        return -1;
    }
    s = json_array_get(json_object_get(out, "Subnets"), 0);
    if (strcmp(train_str(s, "VpcId"), vpc) != 0) {
        app_fail(&ctx->app, true, "spec.network.subnetId %s is in %s, not in spec.network.vpcId %s",
                 subnet, train_str(s, "VpcId"), vpc);
        goto out;
    }
    snprintf(n->vpc, sizeof(n->vpc), "%s", vpc);
    snprintf(n->subnet, sizeof(n->subnet), "%s", subnet);
    rc = 0;
out:
    json_decref(out);
    return rc;
}

enum app_step training_network_converge(struct train_ctx *ctx)
{
    const char *vpc = app_spec_str(&ctx->app, "network.vpcId", NULL);
    const char *subnet = app_spec_str(&ctx->app, "network.subnetId", NULL);
    struct tnet n;
    json_t *res;

    memset(&n, 0, sizeof(n));
    n.ctx = ctx;
    if (vpc != NULL) {
        if (subnet == NULL) {
            app_fail(&ctx->app, true, "spec.network.vpcId needs spec.network.subnetId");
            return APP_STEP_FAILED;
        }
        if (check_existing(&n, vpc, subnet) != 0 || converge_security_group(&n) != 0)
            return APP_STEP_FAILED;
    } else {
        snprintf(n.cidr, sizeof(n.cidr), "%s",
                 app_spec_str(&ctx->app, "network.cidr", "10.0.0.0/16"));
        if (layout(&n) != 0 || converge_vpc(&n) != 0 || converge_subnet(&n) != 0 ||
            converge_igw(&n) != 0 || converge_route_table(&n) != 0 ||
            converge_security_group(&n) != 0)
            return APP_STEP_FAILED;
    }
    snprintf(ctx->subnet_id, sizeof(ctx->subnet_id), "%s", n.subnet);
    snprintf(ctx->sg_id, sizeof(ctx->sg_id), "%s", n.sg);
    res = app_resources(&ctx->app, "network");
    json_object_set_new(res, "vpcId", json_string(n.vpc));
    json_object_set_new(res, "subnetId", json_string(n.subnet));
    json_object_set_new(res, "securityGroupId", json_string(n.sg));
    json_object_set_new(res, "managedVpc", json_boolean(vpc == NULL));
    if (vpc == NULL) {
        json_object_set_new(res, "internetGatewayId", json_string(n.igw));
        json_object_set_new(res, "routeTableId", json_string(n.table));
    }
    return APP_STEP_READY;
}

/* ---- deletion ----------------------------------------------------------------- */

static bool named(const struct train_ctx *ctx, const char *id)
{
    return strcmp(app_spec_str(&ctx->app, "network.vpcId", ""), id) == 0 ||
           strcmp(app_spec_str(&ctx->app, "network.subnetId", ""), id) == 0;
}

/* A delete call: NotFound is done, DependencyViolation a wait. */
static int delete_call(struct train_ctx *ctx, const char *resource, const char *operation,
                       json_t *in, const char *not_found, bool *waiting)
{
    struct aws_error err;

    if (app_write(&ctx->app, resource, "ec2", operation, in, NULL, &err) >= 0)
        return 0;
    if (train_is_code(&err, not_found)) {
        train_forget_error(ctx);
        return 0;
    }
    if (train_is_code(&err, "DependencyViolation")) {
        train_forget_error(ctx);
        *waiting = true;
        return 0;
    }
    return -1;
}

/* Runs fn over every owned item of a describe; fn returns 0 or -1. */
static int each_owned(struct train_ctx *ctx, const char *operation, const char *list,
                      int (*fn)(struct train_ctx *, const json_t *, bool *), bool *waiting)
{
    json_t *out = NULL;
    const json_t *v;
    size_t i;
    int rc = -1;

    if (describe(ctx, ctx->names.vpc, operation, train_ec2_filters(ctx, NULL), &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, list), i, v)
    {
        if (!train_tags_owned(ctx, json_object_get(v, "Tags")))
            continue;
        if (fn(ctx, v, waiting) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

static int delete_sg(struct train_ctx *ctx, const json_t *g, bool *waiting)
{
    const char *id = train_str(g, "GroupId");

    app_note_change(&ctx->app, "delete", "ec2:security-group", train_str(g, "GroupName"), NULL);
    return delete_call(ctx, id, "DeleteSecurityGroup", json_pack("{s:s}", "GroupId", id),
                       "InvalidGroup.NotFound", waiting);
}

static int delete_table(struct train_ctx *ctx, const json_t *t, bool *waiting)
{
    const char *id = train_str(t, "RouteTableId");
    const json_t *a;
    size_t i;

    json_array_foreach(json_object_get(t, "Associations"), i, a)
    {
        if (json_is_true(json_object_get(a, "Main")))
            return 0; /* a VPC's main table goes with the VPC */
    }
    json_array_foreach(json_object_get(t, "Associations"), i, a)
    {
        if (delete_call(
                ctx, id, "DisassociateRouteTable",
                json_pack("{s:s}", "AssociationId", train_str(a, "RouteTableAssociationId")),
                "InvalidAssociationID.NotFound", waiting) != 0)
            return -1;
    }
    app_note_change(&ctx->app, "delete", "ec2:route-table", id, NULL);
    return delete_call(ctx, id, "DeleteRouteTable", json_pack("{s:s}", "RouteTableId", id),
                       "InvalidRouteTableID.NotFound", waiting);
}

static int delete_igw(struct train_ctx *ctx, const json_t *g, bool *waiting)
{
    const char *id = train_str(g, "InternetGatewayId");
    const json_t *a;
    bool wait = false;
    size_t i;

    json_array_foreach(json_object_get(g, "Attachments"), i, a)
    {
        if (delete_call(
                ctx, id, "DetachInternetGateway",
                json_pack("{s:s, s:s}", "InternetGatewayId", id, "VpcId", train_str(a, "VpcId")),
                "Gateway.NotAttached", &wait) != 0)
            return -1;
    }
    if (wait) {
        *waiting = true;
        return 0;
    }
    app_note_change(&ctx->app, "delete", "ec2:internet-gateway", id, NULL);
    return delete_call(ctx, id, "DeleteInternetGateway",
                       json_pack("{s:s}", "InternetGatewayId", id),
                       "InvalidInternetGatewayID.NotFound", waiting);
}

static int delete_subnet(struct train_ctx *ctx, const json_t *s, bool *waiting)
{
    const char *id = train_str(s, "SubnetId");

    if (named(ctx, id))
        return 0;
    app_note_change(&ctx->app, "delete", "ec2:subnet", id, NULL);
    return delete_call(ctx, id, "DeleteSubnet", json_pack("{s:s}", "SubnetId", id),
                       "InvalidSubnetID.NotFound", waiting);
}

static int delete_vpc(struct train_ctx *ctx, const json_t *v, bool *waiting)
{
    const char *id = train_str(v, "VpcId");

    if (named(ctx, id))
        return 0;
    app_note_change(&ctx->app, "delete", "ec2:vpc", id, NULL);
    return delete_call(ctx, id, "DeleteVpc", json_pack("{s:s}", "VpcId", id),
                       "InvalidVpcID.NotFound", waiting);
}

enum app_step training_network_delete(struct train_ctx *ctx)
{
    bool sg_wait = false, wait = false;

    if (each_owned(ctx, "DescribeSecurityGroups", "SecurityGroups", delete_sg, &sg_wait) != 0 ||
        each_owned(ctx, "DescribeRouteTables", "RouteTables", delete_table, &wait) != 0 ||
        each_owned(ctx, "DescribeInternetGateways", "InternetGateways", delete_igw, &wait) != 0)
        return APP_STEP_FAILED;
    if (!sg_wait && each_owned(ctx, "DescribeSubnets", "Subnets", delete_subnet, &wait) != 0)
        return APP_STEP_FAILED;
    if (sg_wait || wait) {
        app_wait(&ctx->app, NET_WAIT_MS);
        return APP_STEP_WAITING;
    }
    if (each_owned(ctx, "DescribeVpcs", "Vpcs", delete_vpc, &wait) != 0)
        return APP_STEP_FAILED;
    if (wait) {
        app_wait(&ctx->app, NET_WAIT_MS);
        return APP_STEP_WAITING;
    }
    json_object_del(ctx->app.resources, "network");
    return APP_STEP_READY;
}
