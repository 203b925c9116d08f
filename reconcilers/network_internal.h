/* Internals shared by the network concern's files (network.c: helpers,
 * layout, existing VPC and the entry points; network_gateways.c: VPC,
 * internet and NAT gateways; network_routes.c: subnets and route tables;
 * network_security_groups.c; network_delete.c). Not for other concerns:
 * they read what network.c records in status.resources.network (app.h).
 * Worker threads; one reconcile's context. */
#ifndef AVIARY_RECONCILERS_NETWORK_INTERNAL_H
#define AVIARY_RECONCILERS_NETWORK_INTERNAL_H

#include "reconcilers/app.h"

#define NET_PLACEHOLDER "(known after apply)"

/* Waits: a NAT gateway takes a minute or two to become available or
 * deleted; released network interfaces and addresses take seconds. */
#define NET_WAIT_NAT_MS        15000
#define NET_WAIT_DEPENDENCY_MS 10000

#define ANYWHERE "0.0.0.0/0"

enum { PUBLIC_A, PUBLIC_B, PRIVATE_A, PRIVATE_B, N_SUBNETS };
enum { SG_LB, SG_TASKS, N_GROUPS };
enum { RT_PUBLIC, RT_PRIVATE, N_TABLES };

/* One reconcile's view of the network. Ids are AWS ids or NET_PLACEHOLDER. */
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

/* ---- helpers (network.c) ---------------------------------------------------- */

/* Member `key` of obj as a string, "" when absent (never NULL, borrowed). */
const char *net_str(const json_t *obj, const char *key);

/* True when err is AWS's error `code`. */
bool net_is_code(const struct aws_error *err, const char *code);

/* Forgets an error the caller handles (NotFound, DependencyViolation while
 * AWS releases something): not a failure of the reconcile. */
void net_forget_error(struct app_ctx *ctx);

/* Copies id into dst[size], NET_PLACEHOLDER when it is NULL or empty (plan mode). */
void net_set_id(char *dst, size_t size, const char *id);

/* The aviary tags plus Name, as EC2 TagSpecifications for `type`. New
 * reference. */
json_t *net_tag_spec(const struct app_ctx *ctx, const char *type, const char *name);

/* ---- converge steps: each returns 0, or -1 with ctx->error -------------------- */

/* network_gateways.c: the VPC (found by tags or created, DNS attributes
 * reverted), the internet gateway (attached), the NAT gateway and its
 * Elastic IP (or their removal without natGateway). Set n->vpc, n->igw,
 * n->nat, n->nat_state, n->eip; n->waiting while the NAT gateway is pending,
 * n->cleanup while one is being deleted. */
int net_converge_vpc(struct net *n);
int net_converge_igw(struct net *n);
int net_converge_nat(struct net *n);

/* True for a NAT gateway state that still serves or will ("pending",
 * "available"). */
bool net_nat_alive(const char *state);

/* Releases the tagged Elastic IPs in `addresses` (DescribeAddresses) other
 * than `keep` (NULL: all) that serve nothing; sets *in_use while one is
 * still associated. Returns 0, or -1 with ctx->error. */
int net_release_spare_addresses(struct app_ctx *ctx, const json_t *addresses, const char *keep,
                                bool *in_use);

/* network_routes.c: the four subnets (n->subnet), the route tables
 * (n->table) with their associations and routes. */
int net_converge_subnets(struct net *n);
int net_converge_route_tables(struct net *n);

/* network_security_groups.c: both groups (n->sg) and their rules. */
int net_converge_security_groups(struct net *n);

#endif
