/* The network concern's security groups: the load balancer's (HTTP and
 * HTTPS from anywhere, the blue/green test port from the VPC) and the
 * tasks' (the container port from the load balancer's group), each made to
 * hold exactly its rules. Worker threads; one reconcile's context (see
 * network.c). */
#include "reconcilers/network_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SG_MAX_RULES 256 /* per direction; AWS allows at most 1000 */

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
                if (add_rule(rules, count, perm, peers[k].kind, net_str(p, peers[k].member)) != 0)
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

/* The rules of `from` that `in` lacks: each goes to `perms` (IpPermissions
 * for one Revoke/Authorize call), to `changes` ("<direction> <rule>:
 * <plan_word>", for a plan) and to `what` ("<word> <direction> <rule>", for
 * the event; truncated at what_size). */
static void rules_missing(const struct sg_rule *from, size_t n_from, const struct sg_rule *in,
                          size_t n_in, const char *direction, const char *word,
                          const char *plan_word, json_t *perms, json_t *changes, char *what,
                          size_t what_size)
{
    char one[192];

    for (size_t i = 0; i < n_from; i++) {
        size_t len = strlen(what);

        if (has_rule(in, n_in, &from[i]))
            continue;
        json_array_append_new(perms, permission(&from[i]));
        describe_rule(&from[i], one, sizeof(one));
        snprintf(what + len, what_size - len, "%s%s %s %s", len ? ", " : "", word, direction, one);
        json_array_append_new(changes, json_sprintf("%s %s: %s", direction, one, plan_word));
    }
}

/* One Revoke/Authorize call with `perms` on group k (none when empty).
 * Returns 0 or -1. */
static int write_rules(struct net *n, int k, const char *operation, const json_t *perms)
{
    if (json_array_size(perms) == 0)
        return 0;
    return app_write(n->ctx, n->sg[k], "ec2", operation,
                     json_pack("{s:s, s:O}", "GroupId", n->sg[k], "IpPermissions", perms), NULL,
                     NULL) < 0
               ? -1
               : 0;
}

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
    const char *direction = egress ? "egress" : "ingress";
    bool drift = change == RULES_DRIFT;
    char what[512] = "";
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
    /* Revoke what is there and not wanted, authorize what is wanted and
     * missing. */
    rules_missing(have, n_have, want, n_want, direction, drift ? "extra" : "revoke", "remove",
                  revoke, changes, what, sizeof(what));
    rules_missing(want, n_want, have, n_have, direction, drift ? "missing" : "authorize", "add",
                  grant, changes, what, sizeof(what));
    if (json_array_size(revoke) == 0 && json_array_size(grant) == 0) {
        rc = 0;
        goto out;
    }
    /* Drift is an event outside plan mode; in a plan (where app_note_drift
     * records nothing) it is an update naming each rule. */
    if (drift && ctx->plan)
        app_note_change(ctx, "update", "ec2:security-group", n->sg[k], json_incref(changes));
    else if (drift)
        app_note_drift(ctx, n->sg[k], what);
    else if (change == RULES_UPDATE)
        app_note_change(ctx, "update", "ec2:security-group", n->sg[k],
                        json_pack("[s+]", "rules: ", what));
    /* Revoke first: a port change must not leave both ports open. */
    if (write_rules(n, k, egress ? "RevokeSecurityGroupEgress" : "RevokeSecurityGroupIngress",
                    revoke) != 0 ||
        write_rules(n, k, egress ? "AuthorizeSecurityGroupEgress" : "AuthorizeSecurityGroupIngress",
                    grant) != 0)
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

int net_converge_security_groups(struct net *n)
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
                strcmp(net_str(g, "GroupName"), names[k]) == 0)
                found[k] = g;
    }
    for (int k = 0; k < N_GROUPS; k++) {
        enum rule_change change = RULES_DRIFT;
        if (found[k] != NULL) {
            net_set_id(n->sg[k], sizeof(n->sg[k]), net_str(found[k], "GroupId"));
        } else {
            json_decref(created);
            created = NULL;
            if (app_write(ctx, names[k], "ec2", "CreateSecurityGroup",
                          json_pack("{s:s, s:s, s:s, s:o}", "GroupName", names[k], "Description",
                                    descriptions[k], "VpcId", n->vpc, "TagSpecifications",
                                    net_tag_spec(ctx, "security-group", names[k])),
                          &created, &err) < 0) {
                if (net_is_code(&err, "InvalidGroup.Duplicate"))
                    app_fail(ctx, false,
                             "%s: a security group of this name exists in %s without the "
                             "aviary tags of application %s; aviary does not use or change it",
                             names[k], n->vpc, ctx->names.app);
                goto out;
            }
            app_note_change(ctx, "create", "ec2:security-group", names[k], NULL);
            net_set_id(n->sg[k], sizeof(n->sg[k]), net_str(created, "GroupId"));
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
