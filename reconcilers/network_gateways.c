/* The network concern's gateways: the VPC itself (DNS support and
 * hostnames), its internet gateway (attached), and the NAT gateway with its
 * Elastic IP (spare addresses released). Worker threads; one reconcile's
 * context (see network.c). */
#include "reconcilers/network_internal.h"

#include <stdio.h>
#include <string.h>

#include "reconcilers/status.h"

/* ---- VPC ------------------------------------------------------------------ */

static int vpc_attribute(struct net *n, const char *attribute, const char *member, bool *value)
{
    json_t *out = NULL;

    if (app_read(n->ctx, n->vpc, "ec2", "DescribeVpcAttribute",
                 json_pack("{s:s, s:s}", "VpcId", n->vpc, "Attribute", attribute), &out, NULL) != 0)
        return -1;
    *value = json_is_true(json_object_get(json_object_get(out, member), "Value"));
    json_decref(out);
    return 0;
}

static int set_vpc_attribute(struct net *n, const char *member)
{
    return app_write(n->ctx, n->vpc, "ec2", "ModifyVpcAttribute",
                     json_pack("{s:s, s:{s:b}}", "VpcId", n->vpc, member, "Value", 1), NULL,
                     NULL) < 0
               ? -1
               : 0;
}

int net_converge_vpc(struct net *n)
{
    struct app_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *v, *found = NULL;
    bool support = true, hostnames = false;
    size_t i;
    int rc = -1;

    if (app_read(ctx, ctx->names.vpc, "ec2", "DescribeVpcs",
                 json_pack("{s:o}", "Filters", app_ec2_filters(ctx, NULL)), &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "Vpcs"), i, v)
    {
        if (!app_tags_owned(ctx, json_object_get(v, "Tags")))
            continue;
        /* Should two exist (a create retried after a lost answer), keep
         * using the one with the spec's CIDR; deletion removes both. */
        if (found == NULL || (strcmp(net_str(v, "CidrBlock"), n->cidr) == 0 &&
                              strcmp(net_str(found, "CidrBlock"), n->cidr) != 0))
            found = v;
    }
    if (found == NULL) {
        rc = app_write(ctx, ctx->names.vpc, "ec2", "CreateVpc",
                       json_pack("{s:s, s:o}", "CidrBlock", n->cidr, "TagSpecifications",
                                 net_tag_spec(ctx, "vpc", ctx->names.vpc)),
                       &created, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:vpc", ctx->names.vpc,
                        json_pack("[s+]", "cidr: ", n->cidr));
        net_set_id(n->vpc, sizeof(n->vpc), net_str(json_object_get(created, "Vpc"), "VpcId"));
        n->vpc_new = true;
        /* A new VPC has DNS support on and DNS hostnames off. */
    } else {
        net_set_id(n->vpc, sizeof(n->vpc), net_str(found, "VpcId"));
        if (strcmp(net_str(found, "CidrBlock"), n->cidr) != 0) {
            app_fail(ctx, true,
                     "%s: VPC %s has CIDR %s but spec.network.cidr is %s; a VPC's CIDR cannot "
                     "change (restore the CIDR, or delete the application and apply it again)",
                     ctx->names.vpc, n->vpc, net_str(found, "CidrBlock"), n->cidr);
            goto out;
        }
        if (vpc_attribute(n, "enableDnsSupport", "EnableDnsSupport", &support) != 0 ||
            vpc_attribute(n, "enableDnsHostnames", "EnableDnsHostnames", &hostnames) != 0)
            goto out;
    }
    /* Support before hostnames: AWS refuses hostnames without support. */
    if (!support) {
        app_note_drift(ctx, n->vpc, "DNS support disabled");
        if (set_vpc_attribute(n, "EnableDnsSupport") != 0)
            goto out;
    }
    if (!hostnames) {
        if (!n->vpc_new)
            app_note_drift(ctx, n->vpc, "DNS hostnames disabled");
        if (set_vpc_attribute(n, "EnableDnsHostnames") != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

/* ---- internet gateway --------------------------------------------------------- */

static bool attached_to(const json_t *igw, const char *vpc)
{
    size_t i;
    const json_t *a;

    json_array_foreach(json_object_get(igw, "Attachments"), i, a)
    {
        if (strcmp(net_str(a, "VpcId"), vpc) == 0)
            return true;
    }
    return false;
}

int net_converge_igw(struct net *n)
{
    struct app_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *g, *found = NULL;
    bool attached = false;
    char name[128];
    size_t i;
    int rc = -1;

    snprintf(name, sizeof(name), "%s-igw", ctx->names.vpc);
    if (app_read(ctx, name, "ec2", "DescribeInternetGateways",
                 json_pack("{s:o}", "Filters", app_ec2_filters(ctx, NULL)), &out, NULL) != 0)
        goto out;
    /* Ours attached to this VPC, else a detached one of ours (left by an
     * interrupted deletion). One attached elsewhere belongs to another VPC. */
    json_array_foreach(json_object_get(out, "InternetGateways"), i, g)
    {
        if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
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
        if (app_write(ctx, name, "ec2", "CreateInternetGateway",
                      json_pack("{s:o}", "TagSpecifications",
                                net_tag_spec(ctx, "internet-gateway", name)),
                      &created, NULL) < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:internet-gateway", name, NULL);
        net_set_id(n->igw, sizeof(n->igw),
                   net_str(json_object_get(created, "InternetGateway"), "InternetGatewayId"));
    } else {
        net_set_id(n->igw, sizeof(n->igw), net_str(found, "InternetGatewayId"));
    }
    if (!attached) {
        if (found != NULL && !n->vpc_new)
            app_note_drift(ctx, n->igw, "internet gateway detached");
        if (app_write(ctx, n->igw, "ec2", "AttachInternetGateway",
                      json_pack("{s:s, s:s}", "InternetGatewayId", n->igw, "VpcId", n->vpc), NULL,
                      NULL) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

/* ---- NAT gateway and Elastic IP -------------------------------------------------- */

bool net_nat_alive(const char *state)
{
    return strcmp(state, "pending") == 0 || strcmp(state, "available") == 0;
}

/* Releases the tagged Elastic IPs other than `keep` (NULL: all) that no
 * longer serve anything. Sets *in_use while one is still associated. */
int net_release_spare_addresses(struct app_ctx *ctx, const json_t *addresses, const char *keep,
                                bool *in_use)
{
    struct aws_error err;
    const json_t *a;
    size_t i;

    json_array_foreach(addresses, i, a)
    {
        const char *alloc = net_str(a, "AllocationId");
        if (!app_tags_owned(ctx, json_object_get(a, "Tags")) ||
            (keep != NULL && strcmp(alloc, keep) == 0))
            continue;
        if (json_object_get(a, "AssociationId") != NULL) {
            *in_use = true; /* its NAT gateway is still being deleted */
            continue;
        }
        app_note_change(ctx, "delete", "ec2:elastic-ip", alloc, NULL);
        if (app_write(ctx, alloc, "ec2", "ReleaseAddress",
                      json_pack("{s:s}", "AllocationId", alloc), NULL, &err) < 0) {
            if (net_is_code(&err, "InvalidIPAddress.InUse")) {
                net_forget_error(ctx);
                *in_use = true;
            } else if (net_is_code(&err, "InvalidAllocationID.NotFound")) {
                net_forget_error(ctx);
            } else {
                return -1;
            }
        }
    }
    return 0;
}

int net_converge_nat(struct net *n)
{
    struct app_ctx *ctx = n->ctx;
    json_t *nats = NULL, *addrs = NULL, *created = NULL;
    const json_t *g, *a, *found = NULL;
    const char *used_alloc = NULL;
    char name[128], token[160];
    int failed = 0, rc = -1;
    size_t i;

    snprintf(name, sizeof(name), "%s-nat", ctx->names.vpc);
    if (!n->vpc_new &&
        app_read(ctx, name, "ec2", "DescribeNatGateways",
                 json_pack("{s:o}", "Filter", app_ec2_filters(ctx, "vpc-id", n->vpc, NULL)), &nats,
                 NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(nats, "NatGateways"), i, g)
    {
        const char *state = net_str(g, "State");
        if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
            continue;
        if (strcmp(state, "failed") == 0) {
            char msg[512];
            failed++;
            snprintf(msg, sizeof(msg), "NAT gateway %s failed: %s: %s", net_str(g, "NatGatewayId"),
                     net_str(g, "FailureCode"), net_str(g, "FailureMessage"));
            if (!ctx->plan)
                status_add_event(ctx->status, "Warning", "NatGatewayFailed", msg, ctx->req->now);
        } else if (net_nat_alive(state) &&
                   (found == NULL || strcmp(state, "available") == 0 || !n->nat_wanted)) {
            found = g;
        }
    }
    if (!n->nat_wanted) {
        /* natGateway: false: delete ours, then its address once freed. */
        json_array_foreach(json_object_get(nats, "NatGateways"), i, g)
        {
            const char *state = net_str(g, "State");
            if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
                continue;
            if (strcmp(state, "deleting") == 0)
                n->cleanup = true;
            if (!net_nat_alive(state))
                continue;
            app_note_change(ctx, "delete", "ec2:nat-gateway", net_str(g, "NatGatewayId"),
                            json_pack("[s]", "natGateway: true -> false"));
            if (app_write(ctx, net_str(g, "NatGatewayId"), "ec2", "DeleteNatGateway",
                          json_pack("{s:s}", "NatGatewayId", net_str(g, "NatGatewayId")), NULL,
                          NULL) < 0)
                goto out;
            n->cleanup = true; /* its address is released once it is deleted */
        }
        found = NULL;
    }
    if (found != NULL) {
        net_set_id(n->nat, sizeof(n->nat), net_str(found, "NatGatewayId"));
        snprintf(n->nat_state, sizeof(n->nat_state), "%s", net_str(found, "State"));
        json_array_foreach(json_object_get(found, "NatGatewayAddresses"), i, a)
        {
            if (json_string_value(json_object_get(a, "AllocationId")) != NULL)
                used_alloc = net_str(a, "AllocationId");
        }
        if (used_alloc != NULL)
            net_set_id(n->eip, sizeof(n->eip), used_alloc);
    }
    /* The Elastic IPs: one for the NAT gateway, spare ones released. */
    if (app_read(ctx, name, "ec2", "DescribeAddresses",
                 json_pack("{s:o}", "Filters", app_ec2_filters(ctx, NULL)), &addrs, NULL) != 0)
        goto out;
    if (n->nat_wanted && found == NULL) {
        json_array_foreach(json_object_get(addrs, "Addresses"), i, a)
        {
            if (app_tags_owned(ctx, json_object_get(a, "Tags")) &&
                json_object_get(a, "AssociationId") == NULL) {
                net_set_id(n->eip, sizeof(n->eip), net_str(a, "AllocationId"));
                break;
            }
        }
        if (!n->eip[0]) {
            if (app_write(ctx, name, "ec2", "AllocateAddress",
                          json_pack("{s:s, s:o}", "Domain", "vpc", "TagSpecifications",
                                    net_tag_spec(ctx, "elastic-ip", name)),
                          &created, NULL) < 0)
                goto out;
            app_note_change(ctx, "create", "ec2:elastic-ip", name, NULL);
            net_set_id(n->eip, sizeof(n->eip), net_str(created, "AllocationId"));
            json_decref(created);
            created = NULL;
        }
        /* The token makes a retried create return the same gateway; a
         * failed one counts in it, so its replacement is a new gateway. */
        snprintf(token, sizeof(token), "%s-%s-%d", n->vpc, n->eip, failed);
        if (app_write(ctx, name, "ec2", "CreateNatGateway",
                      json_pack("{s:s, s:s, s:s, s:o}", "SubnetId", n->subnet[PUBLIC_A],
                                "AllocationId", n->eip, "ClientToken", token, "TagSpecifications",
                                net_tag_spec(ctx, "natgateway", name)),
                      &created, NULL) < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:nat-gateway", name,
                        json_pack("[s+]", "subnet: ", n->subnet[PUBLIC_A]));
        net_set_id(n->nat, sizeof(n->nat),
                   net_str(json_object_get(created, "NatGateway"), "NatGatewayId"));
        snprintf(n->nat_state, sizeof(n->nat_state), "%s",
                 ctx->plan ? "available"
                           : net_str(json_object_get(created, "NatGateway"), "State"));
    }
    if (net_release_spare_addresses(ctx, json_object_get(addrs, "Addresses"),
                                    n->nat_wanted ? n->eip : NULL, &n->cleanup) != 0)
        goto out;
    if (n->nat_wanted && strcmp(n->nat_state, "available") != 0)
        n->waiting = true;
    rc = 0;
out:
    json_decref(created);
    json_decref(addrs);
    json_decref(nats);
    return rc;
}
