/* The "network" concern of an Application: VPC, subnets, internet and NAT
 * gateways, route tables and security groups (or only the security groups,
 * in an existing VPC the manifest names). Worker threads; one reconcile's
 * context. This file: the shared helpers, the subnet layout, the
 * existing-VPC checks and the entry points; the parts are in
 * network_gateways.c, network_routes.c, network_security_groups.c and
 * network_delete.c (shared internals: network_internal.h).
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
#include "reconcilers/network_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- helpers (see network_internal.h) ---------------------------------------- */

const char *net_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

bool net_is_code(const struct aws_error *err, const char *code)
{
    return err->kind == AWS_ERR_SERVICE && strcmp(err->code, code) == 0;
}

/* An error the caller handles (NotFound, DependencyViolation while AWS
 * releases something): not a failure of the reconcile. */
void net_forget_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

void net_set_id(char *dst, size_t size, const char *id)
{
    snprintf(dst, size, "%s", id != NULL && *id ? id : NET_PLACEHOLDER);
}

/* The aviary tags plus Name, as EC2 TagSpecifications for `type`. */
json_t *net_tag_spec(const struct app_ctx *ctx, const char *type, const char *name)
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
        if (net_is_code(&err, "InvalidVpcID.NotFound"))
            app_fail(ctx, true, "spec.network.vpcId: VPC %s does not exist", n->vpc);
        goto out;
    }
    net_set_id(n->cidr, sizeof(n->cidr),
               net_str(json_array_get(json_object_get(out, "Vpcs"), 0), "CidrBlock"));
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
        if (net_is_code(&err, "InvalidSubnetID.NotFound"))
            app_fail(ctx, true, "spec.network: %s", err.message);
        goto out;
    }
    json_array_foreach(json_object_get(out, "Subnets"), i, s)
    {
        if (strcmp(net_str(s, "VpcId"), n->vpc) != 0) {
            app_fail(ctx, true, "spec.network: subnet %s is in %s, not in %s",
                     net_str(s, "SubnetId"), net_str(s, "VpcId"), n->vpc);
            goto out;
        }
    }
    json_array_foreach(public_ids, i, s)
    {
        const json_t *sub, *match = NULL;
        size_t j;
        json_array_foreach(json_object_get(out, "Subnets"), j, sub)
        {
            if (strcmp(net_str(sub, "SubnetId"), json_string_value(s)) == 0)
                match = sub;
        }
        if (match == NULL) {
            app_fail(ctx, true, "spec.network.publicSubnets: subnet %s does not exist",
                     json_string_value(s));
            goto out;
        }
        if (zone[0] == '\0')
            snprintf(zone, sizeof(zone), "%s", net_str(match, "AvailabilityZone"));
        else if (strcmp(zone, net_str(match, "AvailabilityZone")) != 0)
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
        net_set_id(n.vpc, sizeof(n.vpc), vpc_id);
        if (check_existing(&n, public_ids, private_ids) != 0 ||
            net_converge_security_groups(&n) != 0)
            goto out;
        record(&n, false, public_ids, private_ids);
        step = APP_STEP_READY;
        goto out;
    }
    if (layout(&n) != 0 || net_converge_vpc(&n) != 0 || net_converge_subnets(&n) != 0 ||
        net_converge_igw(&n) != 0 || net_converge_nat(&n) != 0 ||
        net_converge_route_tables(&n) != 0 || net_converge_security_groups(&n) != 0)
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
