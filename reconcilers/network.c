/* The "network" concern of an Application: VPC, subnets, internet and NAT
 * gateways, route tables and security groups (or only the security groups,
 * in an existing VPC the manifest names). Worker threads; one reconcile's
 * context.
 *
 * Managed mode (spec.network.cidr): a VPC with DNS support and hostnames,
 * two public and two private subnets in the first two available zones (by
 * name), an internet gateway, a public route table (0.0.0.0/0 -> internet
 * gateway) for the public subnets, and a private route table for the
 * private subnets; with natGateway (default) one Elastic IP and one NAT
 * gateway in public-a and the private default route through it, and tasks
 * in the private subnets without public IPs; without it no NAT gateway, the
 * private route table has only its local route, and tasks run in the public
 * subnets with public IPs.
 *
 * Subnet layout: with a VPC of prefix /p, each subnet is a /min(p+4, 26)
 * block (a sixteenth of the VPC, never smaller than /26 so a load balancer
 * fits), the first four blocks in order public-a, public-b, private-a,
 * private-b. 10.0.0.0/16 gives 10.0.0.0/20, 10.0.16.0/20, 10.0.32.0/20 and
 * 10.0.48.0/20; a /24 its four /26 quarters. A VPC's CIDR cannot change: a
 * different spec.network.cidr for an existing VPC is a terminal error.
 *
 * Identification, on every reconcile: VPC, internet gateway, Elastic IP and
 * NAT gateway by the aviary tags; subnets by tags and CIDR block; route
 * tables by tags and Name ("<vpc>-public", "<vpc>-private"); security groups
 * by tags and group name. Hand-made changes to these are reverted: VPC DNS
 * attributes, MapPublicIpOnLaunch, routes (extra static routes removed),
 * subnet associations, and security group rules (extra rules revoked,
 * missing ones authorized).
 *
 * Existing-VPC mode (spec.network.vpcId): the VPC and the subnets named in
 * publicSubnets/privateSubnets are checked (they exist, belong to the VPC,
 * the public ones span two zones) and used as they are; only the two
 * security groups are created. Tasks run in privateSubnets, or in
 * publicSubnets with public IPs when none are given.
 *
 * Deletion removes whatever carries this application's tags, in reverse:
 * security groups (tasks first: it references the load balancer's), NAT
 * gateways (waiting until deleted), route tables, then Elastic IPs, the
 * internet gateway and subnets, then the VPC. Dependency errors while
 * AWS releases network interfaces are waits, not failures. A resource the
 * manifest names (the existing VPC and its subnets) is never deleted. */
#include "reconcilers/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define PLACEHOLDER "(known after apply)"

/* Waits: a NAT gateway takes a minute or two to become available or
 * deleted; released network interfaces and addresses take seconds. */
#define NET_WAIT_NAT_MS        15000
#define NET_WAIT_DEPENDENCY_MS 10000

#define SG_MAX_RULES 256 /* per direction; AWS allows at most 1000 */
#define ANYWHERE     "0.0.0.0/0"

enum { PUBLIC_A, PUBLIC_B, PRIVATE_A, PRIVATE_B, N_SUBNETS };
enum { SG_LB, SG_TASKS, N_GROUPS };
enum { RT_PUBLIC, RT_PRIVATE, N_TABLES };

static const char *const subnet_role[N_SUBNETS] = {"public-a", "public-b", "private-a",
                                                   "private-b"};
static const char *const table_role[N_TABLES] = {"public", "private"};

/* One reconcile's view of the network. Ids are AWS ids or PLACEHOLDER. */
struct net {
    struct app_ctx *ctx;
    json_t *res; /* app_resources(ctx, "network"), borrowed */
    bool nat_wanted;
    int port;
    char cidr[24];
    char subnet_cidr[N_SUBNETS][24];
    char vpc[64];
    bool vpc_new; /* created (or planned) by this pass: nothing is in it yet */
    char zones[2][64];
    char subnet[N_SUBNETS][64];
    bool subnet_new[N_SUBNETS];
    char igw[64];
    char nat[64];
    char nat_state[16];
    char eip[64];
    char table[N_TABLES][64];
    char sg[N_GROUPS][64];
    bool waiting; /* AWS is getting there: the concern is not ready */
    bool cleanup; /* something left to remove later: requeue, but ready */
};

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static bool is_code(const struct aws_error *err, const char *code)
{
    return err->kind == AWS_ERR_SERVICE && strcmp(err->code, code) == 0;
}

/* An error the caller handles (NotFound, DependencyViolation while AWS
 * releases something): not a failure of the reconcile. */
static void forget_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

static void set_id(char *dst, size_t size, const char *id)
{
    snprintf(dst, size, "%s", id != NULL && *id ? id : PLACEHOLDER);
}

/* The aviary tags plus Name, as EC2 TagSpecifications for `type`. */
static json_t *tag_spec(const struct app_ctx *ctx, const char *type, const char *name)
{
    return json_pack("[{s:s, s:o}]", "ResourceType", type, "Tags",
                     app_tags_list(ctx, "Key", "Value", "Name", name, NULL));
}

/* ---- subnet layout -------------------------------------------------------- */

/* Parses spec.network.cidr and carves the four subnets (see the top of the
 * file). Returns 0, or -1 with a terminal error. */
static int layout(struct net *n)
{
    unsigned a, b, c, d;
    int prefix, sub_prefix;
    char tail;
    uint32_t addr, size;

    if (sscanf(n->cidr, "%u.%u.%u.%u/%d%c", &a, &b, &c, &d, &prefix, &tail) != 5 || a > 255 ||
        b > 255 || c > 255 || d > 255 || prefix < 16 || prefix > 24) {
        app_fail(n->ctx, true, "spec.network.cidr %s: expected an IPv4 CIDR block from /16 to /24",
                 n->cidr);
        return -1;
    }
    addr = (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d;
    if (addr & ((1u << (32 - prefix)) - 1)) {
        app_fail(n->ctx, true, "spec.network.cidr %s has host bits set", n->cidr);
        return -1;
    }
    sub_prefix = prefix + 4 < 26 ? prefix + 4 : 26;
    size = 1u << (32 - sub_prefix);
    for (int i = 0; i < N_SUBNETS; i++) {
        uint32_t base = addr + (uint32_t)i * size;
        snprintf(n->subnet_cidr[i], sizeof(n->subnet_cidr[i]), "%u.%u.%u.%u/%d", base >> 24,
                 (base >> 16) & 255, (base >> 8) & 255, base & 255, sub_prefix);
    }
    return 0;
}

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

static int converge_vpc(struct net *n)
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
        if (found == NULL || (strcmp(jstr(v, "CidrBlock"), n->cidr) == 0 &&
                              strcmp(jstr(found, "CidrBlock"), n->cidr) != 0))
            found = v;
    }
    if (found == NULL) {
        rc = app_write(ctx, ctx->names.vpc, "ec2", "CreateVpc",
                       json_pack("{s:s, s:o}", "CidrBlock", n->cidr, "TagSpecifications",
                                 tag_spec(ctx, "vpc", ctx->names.vpc)),
                       &created, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:vpc", ctx->names.vpc,
                        json_pack("[s+]", "cidr: ", n->cidr));
        set_id(n->vpc, sizeof(n->vpc), jstr(json_object_get(created, "Vpc"), "VpcId"));
        n->vpc_new = true;
        /* A new VPC has DNS support on and DNS hostnames off. */
    } else {
        set_id(n->vpc, sizeof(n->vpc), jstr(found, "VpcId"));
        if (strcmp(jstr(found, "CidrBlock"), n->cidr) != 0) {
            app_fail(ctx, true,
                     "%s: VPC %s has CIDR %s but spec.network.cidr is %s; a VPC's CIDR cannot "
                     "change (restore the CIDR, or delete the application and apply it again)",
                     ctx->names.vpc, n->vpc, jstr(found, "CidrBlock"), n->cidr);
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

static int converge_subnets(struct net *n)
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
                strcmp(jstr(s, "CidrBlock"), n->subnet_cidr[i]) == 0)
                found = s;
        }
        snprintf(name, sizeof(name), "%s-%s", ctx->names.vpc, subnet_role[i]);
        if (found != NULL) {
            set_id(n->subnet[i], sizeof(n->subnet[i]), jstr(found, "SubnetId"));
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
                                "TagSpecifications", tag_spec(ctx, "subnet", name)),
                      &created, NULL) < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:subnet", name,
                        json_pack("[s+, s+]", "cidr: ", n->subnet_cidr[i],
                                  "availabilityZone: ", n->zones[i % 2]));
        set_id(n->subnet[i], sizeof(n->subnet[i]),
               jstr(json_object_get(created, "Subnet"), "SubnetId"));
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

/* ---- internet gateway --------------------------------------------------------- */

static bool attached_to(const json_t *igw, const char *vpc)
{
    size_t i;
    const json_t *a;

    json_array_foreach(json_object_get(igw, "Attachments"), i, a)
    {
        if (strcmp(jstr(a, "VpcId"), vpc) == 0)
            return true;
    }
    return false;
}

static int converge_igw(struct net *n)
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
        if (app_write(
                ctx, name, "ec2", "CreateInternetGateway",
                json_pack("{s:o}", "TagSpecifications", tag_spec(ctx, "internet-gateway", name)),
                &created, NULL) < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:internet-gateway", name, NULL);
        set_id(n->igw, sizeof(n->igw),
               jstr(json_object_get(created, "InternetGateway"), "InternetGatewayId"));
    } else {
        set_id(n->igw, sizeof(n->igw), jstr(found, "InternetGatewayId"));
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

static bool nat_alive(const char *state)
{
    return strcmp(state, "pending") == 0 || strcmp(state, "available") == 0;
}

/* Releases the tagged Elastic IPs other than `keep` (NULL: all) that no
 * longer serve anything. Sets *in_use while one is still associated. */
static int release_spare_addresses(struct app_ctx *ctx, const json_t *addresses, const char *keep,
                                   bool *in_use)
{
    struct aws_error err;
    const json_t *a;
    size_t i;

    json_array_foreach(addresses, i, a)
    {
        const char *alloc = jstr(a, "AllocationId");
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
            if (is_code(&err, "InvalidIPAddress.InUse")) {
                forget_error(ctx);
                *in_use = true;
            } else if (is_code(&err, "InvalidAllocationID.NotFound")) {
                forget_error(ctx);
            } else {
                return -1;
            }
        }
    }
    return 0;
}

static int converge_nat(struct net *n)
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
        const char *state = jstr(g, "State");
        if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
            continue;
        if (strcmp(state, "failed") == 0) {
            char msg[512];
            failed++;
            snprintf(msg, sizeof(msg), "NAT gateway %s failed: %s: %s", jstr(g, "NatGatewayId"),
                     jstr(g, "FailureCode"), jstr(g, "FailureMessage"));
            if (!ctx->plan)
                status_add_event(ctx->status, "Warning", "NatGatewayFailed", msg, ctx->req->now);
        } else if (nat_alive(state) &&
                   (found == NULL || strcmp(state, "available") == 0 || !n->nat_wanted)) {
            found = g;
        }
    }
    if (!n->nat_wanted) {
        /* natGateway: false: delete ours, then its address once freed. */
        json_array_foreach(json_object_get(nats, "NatGateways"), i, g)
        {
            const char *state = jstr(g, "State");
            if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
                continue;
            if (strcmp(state, "deleting") == 0)
                n->cleanup = true;
            if (!nat_alive(state))
                continue;
            app_note_change(ctx, "delete", "ec2:nat-gateway", jstr(g, "NatGatewayId"),
                            json_pack("[s]", "natGateway: true -> false"));
            if (app_write(ctx, jstr(g, "NatGatewayId"), "ec2", "DeleteNatGateway",
                          json_pack("{s:s}", "NatGatewayId", jstr(g, "NatGatewayId")), NULL,
                          NULL) < 0)
                goto out;
            n->cleanup = true; /* its address is released once it is deleted */
        }
        found = NULL;
    }
    if (found != NULL) {
        set_id(n->nat, sizeof(n->nat), jstr(found, "NatGatewayId"));
        snprintf(n->nat_state, sizeof(n->nat_state), "%s", jstr(found, "State"));
        json_array_foreach(json_object_get(found, "NatGatewayAddresses"), i, a)
        {
            if (json_string_value(json_object_get(a, "AllocationId")) != NULL)
                used_alloc = jstr(a, "AllocationId");
        }
        if (used_alloc != NULL)
            set_id(n->eip, sizeof(n->eip), used_alloc);
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
                set_id(n->eip, sizeof(n->eip), jstr(a, "AllocationId"));
                break;
            }
        }
        if (!n->eip[0]) {
            if (app_write(ctx, name, "ec2", "AllocateAddress",
                          json_pack("{s:s, s:o}", "Domain", "vpc", "TagSpecifications",
                                    tag_spec(ctx, "elastic-ip", name)),
                          &created, NULL) < 0)
                goto out;
            app_note_change(ctx, "create", "ec2:elastic-ip", name, NULL);
            set_id(n->eip, sizeof(n->eip), jstr(created, "AllocationId"));
            json_decref(created);
            created = NULL;
        }
        /* The token makes a retried create return the same gateway; a
         * failed one counts in it, so its replacement is a new gateway. */
        snprintf(token, sizeof(token), "%s-%s-%d", n->vpc, n->eip, failed);
        if (app_write(ctx, name, "ec2", "CreateNatGateway",
                      json_pack("{s:s, s:s, s:s, s:o}", "SubnetId", n->subnet[PUBLIC_A],
                                "AllocationId", n->eip, "ClientToken", token, "TagSpecifications",
                                tag_spec(ctx, "natgateway", name)),
                      &created, NULL) < 0)
            goto out;
        app_note_change(ctx, "create", "ec2:nat-gateway", name,
                        json_pack("[s+]", "subnet: ", n->subnet[PUBLIC_A]));
        set_id(n->nat, sizeof(n->nat),
               jstr(json_object_get(created, "NatGateway"), "NatGatewayId"));
        snprintf(n->nat_state, sizeof(n->nat_state), "%s",
                 ctx->plan ? "available" : jstr(json_object_get(created, "NatGateway"), "State"));
    }
    if (release_spare_addresses(ctx, json_object_get(addrs, "Addresses"),
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
        if (dest == NULL || strcmp(jstr(r, "GatewayId"), "local") == 0 ||
            strcmp(jstr(r, "Origin"), "CreateRoute") != 0)
            continue;
        if (strcmp(dest, ANYWHERE) == 0 && target != NULL) {
            have_default = true;
            if (strcmp(jstr(r, target_member), target) == 0)
                continue;
            if (recorded != NULL && strcmp(jstr(r, "NatGatewayId"), recorded) == 0) {
                /* Through the NAT gateway aviary replaced: an update. */
                snprintf(what, sizeof(what), "default route: %s -> %s", recorded, target);
                app_note_change(ctx, "update", "ec2:route", n->table[t], json_pack("[s]", what));
            } else {
                snprintf(what, sizeof(what), "default route changed to %s",
                         json_string_value(json_object_get(r, "GatewayId"))
                             ? jstr(r, "GatewayId")
                             : jstr(r, "NatGatewayId"));
                app_note_drift(ctx, n->table[t], what);
            }
            if (app_write(ctx, n->table[t], "ec2", "ReplaceRoute",
                          json_pack("{s:s, s:s, s:s}", "RouteTableId", n->table[t],
                                    "DestinationCidrBlock", ANYWHERE, target_member, target),
                          NULL, NULL) < 0)
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
        if (app_write(ctx, n->table[t], "ec2", "CreateRoute",
                      json_pack("{s:s, s:s, s:s}", "RouteTableId", n->table[t],
                                "DestinationCidrBlock", ANYWHERE, target_member, target),
                      NULL, NULL) < 0)
            return -1;
    }
    nat_route_record(n, t, target);
    return 0;
}

/* The explicit association of subnet `id` in any table of the VPC. */
static const json_t *association_of(const json_t *tables, const char *id, const json_t **table)
{
    size_t i, j;
    const json_t *t, *a;

    json_array_foreach(tables, i, t){json_array_foreach(json_object_get(t, "Associations"), j, a){
        if (strcmp(jstr(a, "SubnetId"), id) == 0){ *table = t;
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
        if (assoc != NULL && strcmp(jstr(owner, "RouteTableId"), n->table[k]) == 0)
            continue;
        if (assoc != NULL) {
            snprintf(what, sizeof(what), "associated with route table %s",
                     jstr(owner, "RouteTableId"));
            app_note_drift(ctx, n->subnet[s], what);
            if (app_write(
                    ctx, n->subnet[s], "ec2", "DisassociateRouteTable",
                    json_pack("{s:s}", "AssociationId", jstr(assoc, "RouteTableAssociationId")),
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

static int converge_route_tables(struct net *n)
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
                                    tag_spec(ctx, "route-table", name[k])),
                          &created, NULL) < 0)
                goto out;
            app_note_change(ctx, "create", "ec2:route-table", name[k], NULL);
            set_id(n->table[k], sizeof(n->table[k]),
                   jstr(json_object_get(created, "RouteTable"), "RouteTableId"));
        } else {
            set_id(n->table[k], sizeof(n->table[k]), jstr(found[k], "RouteTableId"));
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

/* ---- security groups ------------------------------------------------------------ */

enum peer_kind { PEER_CIDR4, PEER_CIDR6, PEER_PREFIX_LIST, PEER_GROUP };

/* One flattened security group rule. */
struct sg_rule {
    char proto[16]; /* "-1", "tcp", "udp", "icmp", ... */
    int from, to;   /* -1 for all */
    enum peer_kind kind;
    char peer[128];
    const char *description; /* for rules aviary authorizes */
};

static void norm_proto(const char *p, char out[16])
{
    static const char *const numbers[][2] = {
        {"6", "tcp"}, {"17", "udp"}, {"1", "icmp"}, {"58", "icmpv6"}, {"all", "-1"}};

    if (p == NULL || *p == '\0')
        p = "-1";
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if (strcasecmp(p, numbers[i][0]) == 0)
            p = numbers[i][1];
    snprintf(out, 16, "%s", p);
    for (char *c = out; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
}

static int add_rule(struct sg_rule *rules, size_t *count, const json_t *perm, enum peer_kind kind,
                    const char *peer)
{
    struct sg_rule *r;

    if (*count >= SG_MAX_RULES)
        return -1;
    r = &rules[(*count)++];
    memset(r, 0, sizeof(*r));
    norm_proto(json_string_value(json_object_get(perm, "IpProtocol")), r->proto);
    r->from = json_is_integer(json_object_get(perm, "FromPort"))
                  ? (int)json_integer_value(json_object_get(perm, "FromPort"))
                  : -1;
    r->to = json_is_integer(json_object_get(perm, "ToPort"))
                ? (int)json_integer_value(json_object_get(perm, "ToPort"))
                : -1;
    if (strcmp(r->proto, "-1") == 0)
        r->from = r->to = -1;
    r->kind = kind;
    snprintf(r->peer, sizeof(r->peer), "%s", peer);
    return 0;
}

/* IpPermissions -> one rule per peer. Returns 0, or -1 past SG_MAX_RULES. */
static int flatten_rules(const json_t *perms, struct sg_rule *rules, size_t *count)
{
    static const struct {
        const char *list, *member;
        enum peer_kind kind;
    } peers[] = {{"IpRanges", "CidrIp", PEER_CIDR4},
                 {"Ipv6Ranges", "CidrIpv6", PEER_CIDR6},
                 {"PrefixListIds", "PrefixListId", PEER_PREFIX_LIST},
                 {"UserIdGroupPairs", "GroupId", PEER_GROUP}};
    const json_t *perm, *p;
    size_t i, j;

    *count = 0;
    json_array_foreach(perms, i, perm)
    {
        for (size_t k = 0; k < sizeof(peers) / sizeof(peers[0]); k++) {
            json_array_foreach(json_object_get(perm, peers[k].list), j, p)
            {
                if (add_rule(rules, count, perm, peers[k].kind, jstr(p, peers[k].member)) != 0)
                    return -1;
            }
        }
    }
    return 0;
}

static bool same_rule(const struct sg_rule *a, const struct sg_rule *b)
{
    return strcmp(a->proto, b->proto) == 0 && a->from == b->from && a->to == b->to &&
           a->kind == b->kind && strcmp(a->peer, b->peer) == 0;
}

static bool has_rule(const struct sg_rule *rules, size_t count, const struct sg_rule *r)
{
    for (size_t i = 0; i < count; i++)
        if (same_rule(&rules[i], r))
            return true;
    return false;
}

static json_t *permission(const struct sg_rule *r)
{
    static const char *const lists[] = {"IpRanges", "Ipv6Ranges", "PrefixListIds",
                                        "UserIdGroupPairs"};
    static const char *const members[] = {"CidrIp", "CidrIpv6", "PrefixListId", "GroupId"};
    json_t *peer = json_pack("{s:s}", members[r->kind], r->peer);
    json_t *p = json_pack("{s:s}", "IpProtocol", r->proto);

    if (strcmp(r->proto, "-1") != 0) {
        json_object_set_new(p, "FromPort", json_integer(r->from));
        json_object_set_new(p, "ToPort", json_integer(r->to));
    }
    if (r->description != NULL)
        json_object_set_new(peer, "Description", json_string(r->description));
    json_object_set_new(p, lists[r->kind], json_pack("[o]", peer));
    return p;
}

static void describe_rule(const struct sg_rule *r, char *out, size_t size)
{
    if (strcmp(r->proto, "-1") == 0)
        snprintf(out, size, "all traffic %s", r->peer);
    else if (r->from == r->to)
        snprintf(out, size, "%s %d %s", r->proto, r->from, r->peer);
    else
        snprintf(out, size, "%s %d-%d %s", r->proto, r->from, r->to, r->peer);
}

/* How a rule change is reported. */
enum rule_change { RULES_CREATED, RULES_DRIFT, RULES_UPDATE };

/* Makes one direction of group k hold exactly `want`. current is the
 * group's IpPermissions(Egress); NULL for a group just created (then AWS's
 * default: no ingress, all egress). */
static int sync_rules(struct net *n, int k, bool egress, const json_t *current,
                      const struct sg_rule *want, size_t n_want, enum rule_change change)
{
    struct app_ctx *ctx = n->ctx;
    static const struct sg_rule all_out = {"-1", -1, -1, PEER_CIDR4, ANYWHERE, NULL};
    struct sg_rule *have = calloc(SG_MAX_RULES, sizeof(*have));
    json_t *revoke = json_array(), *grant = json_array(), *changes = json_array();
    char what[512] = "", one[192];
    size_t n_have = 0;
    int rc = -1;

    if (have == NULL || revoke == NULL || grant == NULL || changes == NULL) {
        app_fail(ctx, false, "%s: out of memory", n->sg[k]);
        goto out;
    }
    if (current == NULL && egress) {
        have[0] = all_out;
        n_have = 1;
    } else if (flatten_rules(current, have, &n_have) != 0) {
        app_fail(ctx, false, "%s: more than %d rules", n->sg[k], SG_MAX_RULES);
        goto out;
    }
    for (size_t i = 0; i < n_have; i++) {
        if (has_rule(want, n_want, &have[i]))
            continue;
        json_array_append_new(revoke, permission(&have[i]));
        describe_rule(&have[i], one, sizeof(one));
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s %s %s",
                 what[0] ? ", " : "", change == RULES_DRIFT ? "extra" : "revoke",
                 egress ? "egress" : "ingress", one);
        json_array_append_new(changes,
                              json_sprintf("%s %s: remove", egress ? "egress" : "ingress", one));
    }
    for (size_t i = 0; i < n_want; i++) {
        if (has_rule(have, n_have, &want[i]))
            continue;
        json_array_append_new(grant, permission(&want[i]));
        describe_rule(&want[i], one, sizeof(one));
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s %s %s",
                 what[0] ? ", " : "", change == RULES_DRIFT ? "missing" : "authorize",
                 egress ? "egress" : "ingress", one);
        json_array_append_new(changes,
                              json_sprintf("%s %s: add", egress ? "egress" : "ingress", one));
    }
    if (json_array_size(revoke) == 0 && json_array_size(grant) == 0) {
        rc = 0;
        goto out;
    }
    /* Drift is an event outside plan mode; in a plan (where app_note_drift
     * records nothing) it is an update naming each rule. */
    if (change == RULES_DRIFT && ctx->plan)
        app_note_change(ctx, "update", "ec2:security-group", n->sg[k], json_incref(changes));
    else if (change == RULES_DRIFT)
        app_note_drift(ctx, n->sg[k], what);
    else if (change == RULES_UPDATE)
        app_note_change(ctx, "update", "ec2:security-group", n->sg[k],
                        json_pack("[s+]", "rules: ", what));
    /* Revoke first: a port change must not leave both ports open. */
    if (json_array_size(revoke) > 0 &&
        app_write(ctx, n->sg[k], "ec2",
                  egress ? "RevokeSecurityGroupEgress" : "RevokeSecurityGroupIngress",
                  json_pack("{s:s, s:O}", "GroupId", n->sg[k], "IpPermissions", revoke), NULL,
                  NULL) < 0)
        goto out;
    if (json_array_size(grant) > 0 &&
        app_write(ctx, n->sg[k], "ec2",
                  egress ? "AuthorizeSecurityGroupEgress" : "AuthorizeSecurityGroupIngress",
                  json_pack("{s:s, s:O}", "GroupId", n->sg[k], "IpPermissions", grant), NULL,
                  NULL) < 0)
        goto out;
    rc = 0;
out:
    json_decref(revoke);
    json_decref(grant);
    json_decref(changes);
    free(have);
    return rc;
}

/* spec.rollout.blueGreen.testPort when the strategy is blueGreen, else 0. */
static int blue_green_test_port(struct app_ctx *ctx)
{
    if (strcmp(app_spec_str(ctx, "rollout.strategy", ""), "blueGreen") != 0)
        return 0;
    return (int)app_spec_int(ctx, "rollout.blueGreen.testPort", 8080);
}

static int converge_security_groups(struct net *n)
{
    struct app_ctx *ctx = n->ctx;
    json_t *out = NULL, *created = NULL;
    const json_t *g, *found[N_GROUPS] = {NULL, NULL};
    const char *names[N_GROUPS] = {ctx->names.sg_lb, ctx->names.sg_tasks};
    static const char *const descriptions[N_GROUPS] = {
        "aviary: load balancer (HTTP and HTTPS from anywhere)",
        "aviary: tasks (the container port from the load balancer)"};
    const json_t *prev_port = json_object_get(n->res, "tasksPort");
    /* With blueGreen, the test listener's port too, from the VPC only: it
     * serves the unpromoted revision (not for the internet). */
    struct sg_rule lb_in[3] = {{"tcp", 80, 80, PEER_CIDR4, ANYWHERE, "HTTP"},
                               {"tcp", 443, 443, PEER_CIDR4, ANYWHERE, "HTTPS"},
                               {"tcp", 0, 0, PEER_CIDR4, "", "blue/green test listener"}};
    size_t n_lb_in = 2;
    const json_t *prev_test = json_object_get(n->res, "lbTestPort");
    int test_port = blue_green_test_port(ctx);
    struct sg_rule tasks_in = {"tcp", n->port, n->port, PEER_GROUP, "", "from the load balancer"};
    struct sg_rule all_out = {"-1", -1, -1, PEER_CIDR4, ANYWHERE, NULL};
    struct aws_error err;
    size_t i;
    int rc = -1;

    if (!n->vpc_new &&
        app_read(ctx, names[SG_LB], "ec2", "DescribeSecurityGroups",
                 json_pack("{s:o}", "Filters", app_ec2_filters(ctx, "vpc-id", n->vpc, NULL)), &out,
                 NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "SecurityGroups"), i, g)
    {
        for (int k = 0; k < N_GROUPS; k++)
            if (app_tags_owned(ctx, json_object_get(g, "Tags")) &&
                strcmp(jstr(g, "GroupName"), names[k]) == 0)
                found[k] = g;
    }
    for (int k = 0; k < N_GROUPS; k++) {
        enum rule_change change = RULES_DRIFT;
        if (found[k] != NULL) {
            set_id(n->sg[k], sizeof(n->sg[k]), jstr(found[k], "GroupId"));
        } else {
            json_decref(created);
            created = NULL;
            if (app_write(ctx, names[k], "ec2", "CreateSecurityGroup",
                          json_pack("{s:s, s:s, s:s, s:o}", "GroupName", names[k], "Description",
                                    descriptions[k], "VpcId", n->vpc, "TagSpecifications",
                                    tag_spec(ctx, "security-group", names[k])),
                          &created, &err) < 0) {
                if (is_code(&err, "InvalidGroup.Duplicate"))
                    app_fail(ctx, false,
                             "%s: a security group of this name exists in %s without the "
                             "aviary tags of application %s; aviary does not use or change it",
                             names[k], n->vpc, ctx->names.app);
                goto out;
            }
            app_note_change(ctx, "create", "ec2:security-group", names[k], NULL);
            set_id(n->sg[k], sizeof(n->sg[k]), jstr(created, "GroupId"));
            change = RULES_CREATED;
        }
        if (k == SG_LB) {
            enum rule_change in_change = change;
            long prev = json_is_integer(prev_test) ? (long)json_integer_value(prev_test) : 0;
            if (test_port > 0) {
                lb_in[2].from = lb_in[2].to = test_port;
                snprintf(lb_in[2].peer, sizeof(lb_in[2].peer), "%s", n->cidr);
                n_lb_in = 3;
            }
            /* The strategy or test port changed: an update, not drift. */
            if (change == RULES_DRIFT && prev != test_port)
                in_change = RULES_UPDATE;
            if (sync_rules(n, k, false, json_object_get(found[k], "IpPermissions"), lb_in, n_lb_in,
                           in_change) != 0)
                goto out;
            if (!ctx->plan) {
                if (test_port > 0)
                    json_object_set_new(n->res, "lbTestPort", json_integer(test_port));
                else
                    json_object_del(n->res, "lbTestPort");
            }
        } else {
            enum rule_change in_change = change;
            snprintf(tasks_in.peer, sizeof(tasks_in.peer), "%s", n->sg[SG_LB]);
            if (change == RULES_DRIFT && json_is_integer(prev_port) &&
                json_integer_value(prev_port) != n->port)
                in_change = RULES_UPDATE;
            if (sync_rules(n, k, false, json_object_get(found[k], "IpPermissions"), &tasks_in, 1,
                           in_change) != 0)
                goto out;
        }
        if (sync_rules(n, k, true,
                       found[k] != NULL ? json_object_get(found[k], "IpPermissionsEgress") : NULL,
                       &all_out, 1, change) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(created);
    json_decref(out);
    return rc;
}

/* ---- existing VPC ------------------------------------------------------------------ */

static void append_ids(json_t *ids, const json_t *list)
{
    size_t i;
    const json_t *s;

    json_array_foreach(list, i, s)
    {
        if (json_is_string(s))
            json_array_append(ids, (json_t *)s);
    }
}

/* Checks the VPC and subnets the manifest names: they exist, the subnets
 * are in the VPC and the public ones span two zones. Never changes them. */
static int check_existing(struct net *n, const json_t *public_ids, const json_t *private_ids)
{
    struct app_ctx *ctx = n->ctx;
    json_t *out = NULL, *ids = json_array();
    struct aws_error err;
    const json_t *s;
    char zone[64] = "";
    bool two_zones = false;
    size_t i;
    int rc = -1;

    if (app_read(ctx, n->vpc, "ec2", "DescribeVpcs", json_pack("{s:[s]}", "VpcIds", n->vpc), &out,
                 &err) != 0) {
        if (is_code(&err, "InvalidVpcID.NotFound"))
            app_fail(ctx, true, "spec.network.vpcId: VPC %s does not exist", n->vpc);
        goto out;
    }
    set_id(n->cidr, sizeof(n->cidr),
           jstr(json_array_get(json_object_get(out, "Vpcs"), 0), "CidrBlock"));
    json_decref(out);
    out = NULL;
    append_ids(ids, public_ids);
    append_ids(ids, private_ids);
    if (json_array_size(public_ids) < 2) {
        app_fail(ctx, true,
                 "spec.network.publicSubnets: at least two subnets are required "
                 "with spec.network.vpcId");
        goto out;
    }
    if (app_read(ctx, n->vpc, "ec2", "DescribeSubnets", json_pack("{s:O}", "SubnetIds", ids), &out,
                 &err) != 0) {
        if (is_code(&err, "InvalidSubnetID.NotFound"))
            app_fail(ctx, true, "spec.network: %s", err.message);
        goto out;
    }
    json_array_foreach(json_object_get(out, "Subnets"), i, s)
    {
        if (strcmp(jstr(s, "VpcId"), n->vpc) != 0) {
            app_fail(ctx, true, "spec.network: subnet %s is in %s, not in %s", jstr(s, "SubnetId"),
                     jstr(s, "VpcId"), n->vpc);
            goto out;
        }
    }
    json_array_foreach(public_ids, i, s)
    {
        const json_t *sub, *match = NULL;
        size_t j;
        json_array_foreach(json_object_get(out, "Subnets"), j, sub)
        {
            if (strcmp(jstr(sub, "SubnetId"), json_string_value(s)) == 0)
                match = sub;
        }
        if (match == NULL) {
            app_fail(ctx, true, "spec.network.publicSubnets: subnet %s does not exist",
                     json_string_value(s));
            goto out;
        }
        if (zone[0] == '\0')
            snprintf(zone, sizeof(zone), "%s", jstr(match, "AvailabilityZone"));
        else if (strcmp(zone, jstr(match, "AvailabilityZone")) != 0)
            two_zones = true;
    }
    if (!two_zones) {
        app_fail(ctx, true,
                 "spec.network.publicSubnets: a load balancer needs subnets in at least two "
                 "availability zones (all are in %s)",
                 zone);
        goto out;
    }
    rc = 0;
out:
    json_decref(ids);
    json_decref(out);
    return rc;
}

/* ---- converge ------------------------------------------------------------------------ */

static void record(struct net *n, bool managed, const json_t *public_ids, const json_t *private_ids)
{
    json_t *res = n->res;
    const json_t *tasks;
    bool public_ip;

    json_object_set_new(res, "vpcId", json_string(n->vpc));
    json_object_set_new(res, "publicSubnets", json_deep_copy(public_ids));
    json_object_set_new(res, "privateSubnets", json_deep_copy(private_ids));
    json_object_set_new(res, "lbSecurityGroup", json_string(n->sg[SG_LB]));
    json_object_set_new(res, "tasksSecurityGroup", json_string(n->sg[SG_TASKS]));
    json_object_set_new(res, "tasksPort", json_integer(n->port));
    if (managed)
        public_ip = !n->nat_wanted;
    else
        public_ip = json_array_size(private_ids) == 0;
    tasks = public_ip ? public_ids : private_ids;
    json_object_set_new(res, "taskSubnets", json_deep_copy(tasks));
    json_object_set_new(res, "assignPublicIp", json_boolean(public_ip));
    json_object_set_new(res, "managedVpc", json_boolean(managed));
    if (managed && n->nat_wanted && n->nat[0])
        json_object_set_new(res, "natGatewayId", json_string(n->nat));
    else
        json_object_del(res, "natGatewayId");
    if (managed) {
        json_object_set_new(res, "internetGatewayId", json_string(n->igw));
        json_object_set_new(res, "routeTables",
                            json_pack("{s:s, s:s}", "public", n->table[RT_PUBLIC], "private",
                                      n->table[RT_PRIVATE]));
    } else {
        json_object_del(res, "internetGatewayId");
        json_object_del(res, "routeTables");
    }
    if (managed && n->nat_wanted && n->eip[0])
        json_object_set_new(res, "elasticIpAllocationId", json_string(n->eip));
    else
        json_object_del(res, "elasticIpAllocationId");
}

static void net_init(struct net *n, struct app_ctx *ctx)
{
    memset(n, 0, sizeof(*n));
    n->ctx = ctx;
    n->res = app_resources(ctx, "network");
    n->nat_wanted = app_spec_bool(ctx, "network.natGateway", true);
    n->port = (int)app_spec_int(ctx, "port", 8080);
    snprintf(n->cidr, sizeof(n->cidr), "%s", app_spec_str(ctx, "network.cidr", "10.0.0.0/16"));
}

enum app_step network_converge(struct app_ctx *ctx)
{
    struct net n;
    const char *vpc_id = app_spec_str(ctx, "network.vpcId", NULL);
    json_t *public_ids = NULL, *private_ids = NULL;
    enum app_step step = APP_STEP_FAILED;

    net_init(&n, ctx);
    if (vpc_id != NULL) {
        public_ids = json_deep_copy(app_spec(ctx, "network.publicSubnets"));
        private_ids = json_deep_copy(app_spec(ctx, "network.privateSubnets"));
        if (!json_is_array(public_ids)) {
            json_decref(public_ids);
            public_ids = json_array();
        }
        if (!json_is_array(private_ids)) {
            json_decref(private_ids);
            private_ids = json_array();
        }
        set_id(n.vpc, sizeof(n.vpc), vpc_id);
        if (check_existing(&n, public_ids, private_ids) != 0 || converge_security_groups(&n) != 0)
            goto out;
        record(&n, false, public_ids, private_ids);
        step = APP_STEP_READY;
        goto out;
    }
    if (layout(&n) != 0 || converge_vpc(&n) != 0 || converge_subnets(&n) != 0 ||
        converge_igw(&n) != 0 || converge_nat(&n) != 0 || converge_route_tables(&n) != 0 ||
        converge_security_groups(&n) != 0)
        goto out;
    public_ids = json_pack("[s, s]", n.subnet[PUBLIC_A], n.subnet[PUBLIC_B]);
    private_ids = json_pack("[s, s]", n.subnet[PRIVATE_A], n.subnet[PRIVATE_B]);
    record(&n, true, public_ids, private_ids);
    step = APP_STEP_READY;
    if (n.waiting && !ctx->plan) {
        app_wait(ctx, NET_WAIT_NAT_MS);
        step = APP_STEP_WAITING;
    } else if (n.cleanup && !ctx->plan) {
        app_wait(ctx, NET_WAIT_NAT_MS);
    }
out:
    json_decref(public_ids);
    json_decref(private_ids);
    return step;
}

/* ---- delete ---------------------------------------------------------------------------- */

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
    if (is_code(&err, not_found)) {
        forget_error(ctx);
        return 0;
    }
    if (is_code(&err, "DependencyViolation") || is_code(&err, "InvalidIPAddress.InUse")) {
        forget_error(ctx);
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
            bool tasks = strcmp(jstr(g, "GroupName"), ctx->names.sg_tasks) == 0;
            if ((pass == 0) != tasks || !app_tags_owned(ctx, json_object_get(g, "Tags")))
                continue;
            app_note_change(ctx, "delete", "ec2:security-group", jstr(g, "GroupName"), NULL);
            if (delete_call(ctx, jstr(g, "GroupId"), "DeleteSecurityGroup",
                            json_pack("{s:s}", "GroupId", jstr(g, "GroupId")),
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
        const char *state = jstr(g, "State");
        if (!app_tags_owned(ctx, json_object_get(g, "Tags")))
            continue;
        if (strcmp(state, "deleting") == 0)
            *waiting = true;
        if (!nat_alive(state))
            continue;
        app_note_change(ctx, "delete", "ec2:nat-gateway", jstr(g, "NatGatewayId"), NULL);
        if (delete_call(ctx, jstr(g, "NatGatewayId"), "DeleteNatGateway",
                        json_pack("{s:s}", "NatGatewayId", jstr(g, "NatGatewayId")),
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
        const char *id = jstr(t, "RouteTableId");
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
            if (delete_call(ctx, id, "DisassociateRouteTable",
                            json_pack("{s:s}", "AssociationId", jstr(a, "RouteTableAssociationId")),
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
    rc = release_spare_addresses(ctx, json_object_get(out, "Addresses"), NULL, waiting);
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
        const char *id = jstr(g, "InternetGatewayId");
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
                    json_pack("{s:s, s:s}", "InternetGatewayId", id, "VpcId", jstr(a, "VpcId")),
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

static int delete_subnets(struct app_ctx *ctx, bool *waiting)
{
    json_t *out = NULL;
    const json_t *s;
    size_t i;
    int rc = -1;

    if (describe_owned(ctx, ctx->names.vpc, "DescribeSubnets", "Filters", &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "Subnets"), i, s)
    {
        const char *id = jstr(s, "SubnetId");
        if (!app_tags_owned(ctx, json_object_get(s, "Tags")) || skip_named(ctx, id))
            continue;
        app_note_change(ctx, "delete", "ec2:subnet", id, NULL);
        /* DependencyViolation: interfaces of a deleted load balancer or of
         * stopped tasks not released yet. */
        if (delete_call(ctx, id, "DeleteSubnet", json_pack("{s:s}", "SubnetId", id),
                        "InvalidSubnetID.NotFound", waiting) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

static int delete_vpcs(struct app_ctx *ctx, bool *waiting)
{
    json_t *out = NULL;
    const json_t *v;
    size_t i;
    int rc = -1;

    if (describe_owned(ctx, ctx->names.vpc, "DescribeVpcs", "Filters", &out) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "Vpcs"), i, v)
    {
        const char *id = jstr(v, "VpcId");
        if (!app_tags_owned(ctx, json_object_get(v, "Tags")) || skip_named(ctx, id))
            continue;
        app_note_change(ctx, "delete", "ec2:vpc", id, NULL);
        if (delete_call(ctx, id, "DeleteVpc", json_pack("{s:s}", "VpcId", id),
                        "InvalidVpcID.NotFound", waiting) != 0)
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
        if (!sg_wait && delete_subnets(ctx, &rest_wait) != 0)
            return APP_STEP_FAILED;
    }
    if (sg_wait || nat_wait || rest_wait) {
        app_wait(ctx, nat_wait ? NET_WAIT_NAT_MS : NET_WAIT_DEPENDENCY_MS);
        return APP_STEP_WAITING;
    }
    if (delete_vpcs(ctx, &rest_wait) != 0)
        return APP_STEP_FAILED;
    if (rest_wait) {
        app_wait(ctx, NET_WAIT_DEPENDENCY_MS);
        return APP_STEP_WAITING;
    }
    json_object_del(ctx->resources, "network");
    return APP_STEP_READY;
}
