/* The network concern's deletion: everything tagged for the application,
 * in reverse order of creation, waiting while AWS releases what depends on
 * it. Worker threads; one reconcile's context (see network.c). */
#include "reconcilers/network_internal.h"

#include <stdio.h>
#include <string.h>

/* True for the VPC and subnets the manifest names: never deleted, whatever
 * their tags say. */
static bool skip_named(const struct app_ctx *ctx, const char *id)
{
    const char *lists[] = {"network.publicSubnets", "network.privateSubnets"};
    const json_t *s;
    size_t i;

    if (strcmp(app_spec_str(ctx, "network.vpcId", ""), id) == 0)
        return true;
    for (size_t k = 0; k < 2; k++) {
        json_array_foreach(app_spec(ctx, lists[k]), i, s)
        {
            if (json_is_string(s) && strcmp(json_string_value(s), id) == 0)
                return true;
        }
    }
    return false;
}

/* Describes this application's resources of one kind (by tags). */
static int describe_owned(struct app_ctx *ctx, const char *resource, const char *operation,
                          const char *filter_member, json_t **out)
{
    return app_read(ctx, resource, "ec2", operation,
                    json_pack("{s:o}", filter_member, app_ec2_filters(ctx, NULL)), out, NULL);
}

/* Runs a delete call: NotFound codes count as deleted, dependency codes as
 * a wait. Returns 0 (done or waiting: *waiting set) or -1. */
static int delete_call(struct app_ctx *ctx, const char *resource, const char *operation, json_t *in,
                       const char *not_found, bool *waiting)
{
    struct aws_error err;

    if (app_write(ctx, resource, "ec2", operation, in, NULL, &err) >= 0)
        return 0;
    if (net_is_code(&err, not_found)) {
        net_forget_error(ctx);
        return 0;
    }
    if (net_is_code(&err, "DependencyViolation") || net_is_code(&err, "InvalidIPAddress.InUse")) {
        net_forget_error(ctx);
        *waiting = true;
        return 0;
    }
    return -1;
}

static int delete_security_groups(struct app_ctx *ctx, bool *waiting)
{
    json_t *out = NULL;
    const json_t *g;
    size_t i;
    int rc = -1;

    if (describe_owned(ctx, ctx->names.sg_tasks, "DescribeSecurityGroups", "Filters", &out) != 0)
        return -1;
    /* The tasks group first: its rule references the load balancer's. */
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(json_object_get(out, "SecurityGroups"), i, g)
        {
            bool tasks = strcmp(net_str(g, "GroupName"), ctx->names.sg_tasks) == 0;
            if ((pass == 0) != tasks || !app_tags_owned(ctx, json_object_get(g, "Tags")))
                continue;
            app_note_change(ctx, "delete", "ec2:security-group", net_str(g, "GroupName"), NULL);
            if (delete_call(ctx, net_str(g, "GroupId"), "DeleteSecurityGroup",
                            json_pack("{s:s}", "GroupId", net_str(g, "GroupId")),
                            "InvalidGroup.NotFound", waiting) != 0)
                goto out;
        }
        if (*waiting)
            break;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

static int delete_nat_gateways(struct app_ctx *ctx, bool *waiting)
{
    json_t *out = NULL;
    const json_t *g;
    size_t i;
    int rc = -1;

    if (describe_owned(ctx, ctx->names.vpc, "DescribeNatGateways", "Filter", &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "NatGateways"), i, g)
    {
        const char *state = net_str(g, "State");
        if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
            continue;
        if (strcmp(state, "deleting") == 0)
            *waiting = true;
        if (!net_nat_alive(state))
            continue;
        app_note_change(ctx, "delete", "ec2:nat-gateway", net_str(g, "NatGatewayId"), NULL);
        if (delete_call(ctx, net_str(g, "NatGatewayId"), "DeleteNatGateway",
                        json_pack("{s:s}", "NatGatewayId", net_str(g, "NatGatewayId")),
                        "NatGatewayNotFound", waiting) != 0)
            goto out;
        *waiting = true; /* until it is "deleted" */
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

static int delete_route_tables(struct app_ctx *ctx, bool *waiting)
{
    json_t *out = NULL;
    const json_t *t, *a;
    size_t i, j;
    int rc = -1;

    if (describe_owned(ctx, ctx->names.vpc, "DescribeRouteTables", "Filters", &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "RouteTables"), i, t)
    {
        const char *id = net_str(t, "RouteTableId");
        bool main_table = false;
        if (!app_tags_owned(ctx, json_object_get(t, "Tags")))
            continue;
        json_array_foreach(json_object_get(t, "Associations"), j, a)
        {
            if (json_is_true(json_object_get(a, "Main")))
                main_table = true;
        }
        if (main_table)
            continue; /* a VPC's main table goes with the VPC */
        json_array_foreach(json_object_get(t, "Associations"), j, a)
        {
            if (delete_call(
                    ctx, id, "DisassociateRouteTable",
                    json_pack("{s:s}", "AssociationId", net_str(a, "RouteTableAssociationId")),
                    "InvalidAssociationID.NotFound", waiting) != 0)
                goto out;
        }
        app_note_change(ctx, "delete", "ec2:route-table", id, NULL);
        if (delete_call(ctx, id, "DeleteRouteTable", json_pack("{s:s}", "RouteTableId", id),
                        "InvalidRouteTableID.NotFound", waiting) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

static int delete_addresses(struct app_ctx *ctx, bool *waiting)
{
    json_t *out = NULL;
    int rc;

    if (describe_owned(ctx, ctx->names.vpc, "DescribeAddresses", "Filters", &out) != 0)
        return -1;
    rc = net_release_spare_addresses(ctx, json_object_get(out, "Addresses"), NULL, waiting);
    json_decref(out);
    return rc;
}

static int delete_internet_gateways(struct app_ctx *ctx, bool *waiting)
{
    json_t *out = NULL;
    const json_t *g, *a;
    size_t i, j;
    int rc = -1;

    if (describe_owned(ctx, ctx->names.vpc, "DescribeInternetGateways", "Filters", &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "InternetGateways"), i, g)
    {
        const char *id = net_str(g, "InternetGatewayId");
        bool detached = true;
        if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
            continue;
        json_array_foreach(json_object_get(g, "Attachments"), j, a)
        {
            bool wait = false;
            /* DependencyViolation: public addresses still mapped (load
             * balancer or task interfaces being released). */
            if (delete_call(
                    ctx, id, "DetachInternetGateway",
                    json_pack("{s:s, s:s}", "InternetGatewayId", id, "VpcId", net_str(a, "VpcId")),
                    "Gateway.NotAttached", &wait) != 0)
                goto out;
            if (wait) {
                *waiting = true;
                detached = false;
            }
        }
        if (!detached)
            continue;
        app_note_change(ctx, "delete", "ec2:internet-gateway", id, NULL);
        if (delete_call(ctx, id, "DeleteInternetGateway",
                        json_pack("{s:s}", "InternetGatewayId", id),
                        "InvalidInternetGatewayID.NotFound", waiting) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

/* Deletes every resource tagged for this application of one kind removed
 * by one call given its id: `describe` lists them (under `list`, each with
 * its id in `id_member`), `delete_op` removes one, `not_found` means it is
 * gone already; `kind` names it in plans and events. The ones the manifest
 * names are kept. Returns 0 (*waiting set while AWS still holds one) or -1. */
static int delete_simple(struct app_ctx *ctx, const char *describe, const char *list,
                         const char *id_member, const char *kind, const char *delete_op,
                         const char *not_found, bool *waiting)
{
    json_t *out = NULL;
    const json_t *s;
    size_t i;
    int rc = -1;

    if (describe_owned(ctx, ctx->names.vpc, describe, "Filters", &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, list), i, s)
    {
        const char *id = net_str(s, id_member);
        if (!app_tags_owned(ctx, json_object_get(s, "Tags")) || skip_named(ctx, id))
            continue;
        app_note_change(ctx, "delete", kind, id, NULL);
        if (delete_call(ctx, id, delete_op, json_pack("{s:s}", id_member, id), not_found,
                        waiting) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

/* Everything tagged for this application, whatever the mode (an existing
 * VPC is never tagged by aviary, and skip_named protects what the manifest
 * names). Each later step runs only once what it depends on is gone. */
enum app_step network_delete(struct app_ctx *ctx)
{
    bool sg_wait = false, nat_wait = false, rest_wait = false;

    if (delete_security_groups(ctx, &sg_wait) != 0 || delete_nat_gateways(ctx, &nat_wait) != 0 ||
        delete_route_tables(ctx, &rest_wait) != 0)
        return APP_STEP_FAILED;
    if (!nat_wait) {
        if (delete_addresses(ctx, &rest_wait) != 0 ||
            delete_internet_gateways(ctx, &rest_wait) != 0)
            return APP_STEP_FAILED;
        /* Subnets: DependencyViolation while interfaces of a deleted load
         * balancer or of stopped tasks are not released yet. */
        if (!sg_wait && delete_simple(ctx, "DescribeSubnets", "Subnets", "SubnetId", "ec2:subnet",
                                      "DeleteSubnet", "InvalidSubnetID.NotFound", &rest_wait) != 0)
            return APP_STEP_FAILED;
    }
    if (sg_wait || nat_wait || rest_wait) {
        app_wait(ctx, nat_wait ? NET_WAIT_NAT_MS : NET_WAIT_DEPENDENCY_MS);
        return APP_STEP_WAITING;
    }
    if (delete_simple(ctx, "DescribeVpcs", "Vpcs", "VpcId", "ec2:vpc", "DeleteVpc",
                      "InvalidVpcID.NotFound", &rest_wait) != 0)
        return APP_STEP_FAILED;
    if (rest_wait) {
        app_wait(ctx, NET_WAIT_DEPENDENCY_MS);
        return APP_STEP_WAITING;
    }
    json_object_del(ctx->resources, "network");
    return APP_STEP_READY;
}
