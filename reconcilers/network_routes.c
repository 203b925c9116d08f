/* The network concern's subnets and routing: the four subnets (in the
 * first two zones, MapPublicIpOnLaunch on the public ones), the public and
 * private route tables, their subnet associations and their routes (the
 * default route to the internet or NAT gateway, nothing added by hand).
 * Worker threads; one reconcile's context (see network.c). */
#include "reconcilers/network_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const subnet_role[N_SUBNETS] = {"public-a", "public-b", "private-a",
                                                   "private-b"};
static const char *const table_role[N_TABLES] = {"public", "private"};

/* ---- subnets ---------------------------------------------------------------- */

static int zone_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The first two available zones of the region, by name. */
static int describe_zones(struct net *n)
{
    json_t *out = NULL, *names[64];
    const json_t *z;
    size_t i, count = 0;
    int rc = -1;

    if (n->zones[0][0])
        return 0;
    if (app_read(n->ctx, "availability-zones", "ec2", "DescribeAvailabilityZones",
                 json_pack("{s:[{s:s, s:[s]}, {s:s, s:[s]}]}", "Filters", "Name", "state", "Values",
                           "available", "Name", "zone-type", "Values", "availability-zone"),
                 &out, NULL) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "AvailabilityZones"), i, z)
    {
        json_t *name = json_object_get(z, "ZoneName");
        if (json_is_string(name) && count < sizeof(names) / sizeof(names[0]))
            names[count++] = name;
    }
    if (count < 2) {
        app_fail(n->ctx, true, "%s: the region has fewer than two available zones",
                 n->ctx->names.vpc);
        goto out;
    }
    qsort(names, count, sizeof(names[0]), zone_cmp);
    snprintf(n->zones[0], sizeof(n->zones[0]), "%s", json_string_value(names[0]));
    snprintf(n->zones[1], sizeof(n->zones[1]), "%s", json_string_value(names[1]));
    rc = 0;
out:
    json_decref(out);
    return rc;
}

static int set_map_public_ip(struct net *n, int i, bool value)
{
    return app_write(n->ctx, n->subnet[i], "ec2", "ModifySubnetAttribute",
                     json_pack("{s:s, s:{s:b}}", "SubnetId", n->subnet[i], "MapPublicIpOnLaunch",
                               "Value", value),
                     NULL, NULL) < 0
               ? -1
               : 0;
}

int net_converge_subnets(struct net *n)
{
    struct app_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *s;
    char name[128];
    size_t j;
    int rc = -1;

    if (!n->vpc_new &&
        app_read(ctx, ctx->names.vpc, "ec2", "DescribeSubnets",
                 json_pack("{s:o}", "Filters", app_ec2_filters(ctx, "vpc-id", n->vpc, NULL)), &out,
                 NULL) != 0)
        goto out;
    for (int i = 0; i < N_SUBNETS; i++) {
        const json_t *found = NULL;
        bool want_public = i == PUBLIC_A || i == PUBLIC_B;
        json_array_foreach(json_object_get(out, "Subnets"), j, s)
        {
            if (app_tags_owned(ctx, json_object_get(s, "Tags")) &&
                strcmp(net_str(s, "CidrBlock"), n->subnet_cidr[i]) == 0)
                found = s;
        }
        snprintf(name, sizeof(name), "%s-%s", ctx->names.vpc, subnet_role[i]);
        if (found != NULL) {
            net_set_id(n->subnet[i], sizeof(n->subnet[i]), net_str(found, "SubnetId"));
            if (json_is_true(json_object_get(found, "MapPublicIpOnLaunch")) != want_public) {
                app_note_drift(ctx, n->subnet[i],
                               want_public ? "MapPublicIpOnLaunch turned off"
                                           : "MapPublicIpOnLaunch turned on");
                if (set_map_public_ip(n, i, want_public) != 0)
                    goto out;
            }
            continue;
        }
        if (describe_zones(n) != 0)
            goto out;
        json_decref(created);
        created = NULL;
        if (app_write(ctx, name, "ec2", "CreateSubnet",
                      json_pack("{s:s, s:s, s:s, s:o}", "VpcId", n->vpc, "CidrBlock",
                                n->subnet_cidr[i], "AvailabilityZone", n->zones[i % 2],
                                "TagSpecifications", net_tag_spec(ctx, "subnet", name)),
                      &created, NULL) < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:subnet", name,
                        json_pack("[s+, s+]", "cidr: ", n->subnet_cidr[i],
                                  "availabilityZone: ", n->zones[i % 2]));
        net_set_id(n->subnet[i], sizeof(n->subnet[i]),
                   net_str(json_object_get(created, "Subnet"), "SubnetId"));
        n->subnet_new[i] = true;
        /* New subnets do not map public IPs; public ones must. */
        if (want_public && set_map_public_ip(n, i, true) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

/* ---- route tables ------------------------------------------------------------- */

/* The route's destination member and value (IPv4, IPv6 or prefix list). */
static const char *route_destination(const json_t *route, const char **member)
{
    static const char *const members[] = {"DestinationCidrBlock", "DestinationIpv6CidrBlock",
                                          "DestinationPrefixListId"};

    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        const char *v = json_string_value(json_object_get(route, members[i]));
        if (v != NULL) {
            *member = members[i];
            return v;
        }
    }
    *member = NULL;
    return NULL;
}

/* The private table's default route through the NAT gateway is created
 * only once the gateway is available (a later pass than the table), so
 * whether it was ever there is kept in status.resources.network.natRoute
 * (the NAT gateway it was created through): its absence then is drift, its
 * first creation is not. */
static const char *nat_route_recorded(const struct net *n, int t)
{
    return t == RT_PRIVATE ? json_string_value(json_object_get(n->res, "natRoute")) : NULL;
}

static void nat_route_record(struct net *n, int t, const char *target)
{
    if (t != RT_PRIVATE || n->ctx->plan)
        return;
    if (target != NULL)
        json_object_set_new(n->res, "natRoute", json_string(target));
    else
        json_object_del(n->res, "natRoute");
}

/* Table t's default route through target_member=target, by `operation`
 * (CreateRoute, or ReplaceRoute when it points elsewhere). Returns 0 or -1. */
static int put_default_route(struct net *n, int t, const char *operation, const char *target_member,
                             const char *target)
{
    return app_write(n->ctx, n->table[t], "ec2", operation,
                     json_pack("{s:s, s:s, s:s}", "RouteTableId", n->table[t],
                               "DestinationCidrBlock", ANYWHERE, target_member, target),
                     NULL, NULL) < 0
               ? -1
               : 0;
}

/* Routes of table t: the default route through target_member=target (none
 * when target is NULL), the local route, nothing else that was added by
 * hand. `fresh`: the table was just created (changes are not drift). */
static int converge_routes(struct net *n, int t, const json_t *table, bool fresh,
                           const char *target_member, const char *target)
{
    struct app_ctx *ctx = n->ctx;
    const json_t *r;
    const char *recorded = nat_route_recorded(n, t);
    bool have_default = false;
    char what[256];
    size_t i;

    json_array_foreach(json_object_get(table, "Routes"), i, r)
    {
        const char *member, *dest = route_destination(r, &member);
        if (dest == NULL || strcmp(net_str(r, "GatewayId"), "local") == 0 ||
            strcmp(net_str(r, "Origin"), "CreateRoute") != 0)
            continue;
        if (strcmp(dest, ANYWHERE) == 0 && target != NULL) {
            have_default = true;
            if (strcmp(net_str(r, target_member), target) == 0)
                continue;
            if (recorded != NULL && strcmp(net_str(r, "NatGatewayId"), recorded) == 0) {
                /* Through the NAT gateway aviary replaced: an update. */
                snprintf(what, sizeof(what), "default route: %s -> %s", recorded, target);
                app_note_change(ctx, "update", "ec2:route", n->table[t], json_pack("[s]", what));
            } else {
                snprintf(what, sizeof(what), "default route changed to %s",
                         json_string_value(json_object_get(r, "GatewayId"))
                             ? net_str(r, "GatewayId")
                             : net_str(r, "NatGatewayId"));
                app_note_drift(ctx, n->table[t], what);
            }
            if (put_default_route(n, t, "ReplaceRoute", target_member, target) != 0)
                return -1;
            continue;
        }
        if (json_string_value(json_object_get(r, "NatGatewayId")) != NULL && target == NULL) {
            app_note_change(ctx, "delete", "ec2:route", n->table[t],
                            json_pack("[s]", "default route: NAT gateway -> none"));
        } else {
            snprintf(what, sizeof(what), "route to %s added", dest);
            app_note_drift(ctx, n->table[t], what);
        }
        if (app_write(ctx, n->table[t], "ec2", "DeleteRoute",
                      json_pack("{s:s, s:s}", "RouteTableId", n->table[t], member, dest), NULL,
                      NULL) < 0)
            return -1;
    }
    if (target != NULL && !have_default) {
        if (!fresh && (t != RT_PRIVATE || recorded != NULL)) {
            app_note_drift(ctx, n->table[t], "default route deleted");
        } else if (t == RT_PRIVATE) {
            snprintf(what, sizeof(what), "%s -> %s", ANYWHERE, target);
            app_note_change(ctx, "create", "ec2:route", n->table[t], json_pack("[s]", what));
        }
        if (put_default_route(n, t, "CreateRoute", target_member, target) != 0)
            return -1;
    }
    nat_route_record(n, t, target);
    return 0;
}

/* The explicit association of subnet `id` in any table of the VPC. */
static const json_t *association_of(const json_t *tables, const char *id, const json_t **table)
{
    size_t i, j;

    for (i = 0; i < json_array_size(tables); i++) {
        const json_t *t = json_array_get(tables, i);
        const json_t *assocs = json_object_get(t, "Associations");

        for (j = 0; j < json_array_size(assocs); j++) {
            const json_t *a = json_array_get(assocs, j);
            if (strcmp(net_str(a, "SubnetId"), id) == 0) {
                *table = t;
                return a;
            }
        }
    }
    *table = NULL;
    return NULL;
}

/* Each subnet of table k explicitly associated with it (moved back when
 * associated elsewhere by hand). tables: the VPC's route tables. */
static int associate_subnets(struct net *n, int k, const json_t *tables, bool table_existed)
{
    struct app_ctx *ctx = n->ctx;
    char what[256];

    for (int s = 0; s < N_SUBNETS; s++) {
        const json_t *owner, *assoc;
        if ((s == PUBLIC_A || s == PUBLIC_B) != (k == RT_PUBLIC))
            continue;
        assoc = association_of(tables, n->subnet[s], &owner);
        if (assoc != NULL && strcmp(net_str(owner, "RouteTableId"), n->table[k]) == 0)
            continue;
        if (assoc != NULL) {
            snprintf(what, sizeof(what), "associated with route table %s",
                     net_str(owner, "RouteTableId"));
            app_note_drift(ctx, n->subnet[s], what);
            if (app_write(
                    ctx, n->subnet[s], "ec2", "DisassociateRouteTable",
                    json_pack("{s:s}", "AssociationId", net_str(assoc, "RouteTableAssociationId")),
                    NULL, NULL) < 0)
                return -1;
        } else if (!n->subnet_new[s] && table_existed) {
            app_note_drift(ctx, n->subnet[s], "route table association removed");
        }
        if (app_write(
                ctx, n->subnet[s], "ec2", "AssociateRouteTable",
                json_pack("{s:s, s:s}", "RouteTableId", n->table[k], "SubnetId", n->subnet[s]),
                NULL, NULL) < 0)
            return -1;
    }
    return 0;
}

int net_converge_route_tables(struct net *n)
{
    struct app_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *tables, *t, *found[N_TABLES] = {NULL, NULL};
    char name[N_TABLES][128];
    size_t i;
    int rc = -1;

    if (!n->vpc_new &&
        app_read(ctx, ctx->names.vpc, "ec2", "DescribeRouteTables",
                 json_pack("{s:[{s:s, s:[s]}]}", "Filters", "Name", "vpc-id", "Values", n->vpc),
                 &out, NULL) != 0)
        goto out;
    tables = json_object_get(out, "RouteTables");
    for (int k = 0; k < N_TABLES; k++) {
        snprintf(name[k], sizeof(name[k]), "%s-%s", ctx->names.vpc, table_role[k]);
        json_array_foreach(tables, i, t)
        {
            const json_t *tags = json_object_get(t, "Tags");
            const char *tag_name = app_tag_value(tags, "Name");
            if (app_tags_owned(ctx, tags) && tag_name != NULL && strcmp(tag_name, name[k]) == 0)
                found[k] = t;
        }
    }
    for (int k = 0; k < N_TABLES; k++) {
        const char *target_member = k == RT_PUBLIC ? "GatewayId" : "NatGatewayId";
        const char *target = k == RT_PUBLIC ? n->igw : NULL;
        bool fresh = found[k] == NULL;

        if (fresh) {
            json_decref(created);
            created = NULL;
            if (app_write(ctx, name[k], "ec2", "CreateRouteTable",
                          json_pack("{s:s, s:o}", "VpcId", n->vpc, "TagSpecifications",
                                    net_tag_spec(ctx, "route-table", name[k])),
                          &created, NULL) < 0)
                goto out;
            app_note_change(ctx, "create", "ec2:route-table", name[k], NULL);
            net_set_id(n->table[k], sizeof(n->table[k]),
                       net_str(json_object_get(created, "RouteTable"), "RouteTableId"));
        } else {
            net_set_id(n->table[k], sizeof(n->table[k]), net_str(found[k], "RouteTableId"));
        }
        if (associate_subnets(n, k, tables, !fresh) != 0)
            goto out;
        if (k == RT_PRIVATE && n->nat_wanted) {
            /* Through the NAT gateway once it is available; while it is
             * pending, the routes are left as they are. */
            if (strcmp(n->nat_state, "available") != 0)
                continue;
            target = n->nat;
        }
        if (converge_routes(n, k, found[k], fresh, target_member, target) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}
