/* The Application's load balancer: an internet-facing ALB in the public
 * subnets, one target group per slot (a, b), and listeners whose default
 * action is a weighted forward to both (HTTP on 80, or HTTPS on 443 with 80
 * redirecting). Worker threads (one reconcile's context).
 * This file: the helpers the parts share, the load balancer itself (its
 * subnets and security groups kept as the network concern recorded them)
 * and the entry points; the parts are in loadbalancer_observe.c,
 * loadbalancer_actions.c, loadbalancer_target_groups.c,
 * loadbalancer_listeners.c and loadbalancer_delete.c (shared internals:
 * loadbalancer_internal.h). */
#include "reconcilers/loadbalancer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"

/* An ALB takes minutes to provision. */
#define LB_PROVISION_WAIT_MS 15000

#define DEFAULT_SSL_POLICY "ELBSecurityPolicy-TLS13-1-2-2021-06" /* the CRD's default */

/* ---- helpers (see loadbalancer_internal.h) ------------------------------------ */

bool lb_is_placeholder(const char *s)
{
    return s == NULL || strcmp(s, LB_PLACEHOLDER) == 0;
}

const char *lb_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

void lb_observed_clear(struct observed *o)
{
    json_decref(o->tg[0]);
    json_decref(o->tg[1]);
    json_decref(o->lb);
    json_decref(o->listeners);
    json_decref(o->tags);
    memset(o, 0, sizeof(*o));
}

/* Forget an expected error (NotFound and the like) from app_read/app_write. */
void lb_clear_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

/* Drift is an event outside plan mode; in a plan it is an update like any
 * other (app_note_drift records nothing there). */
void lb_note_drift(struct app_ctx *ctx, const char *resource, const char *what)
{
    if (ctx->plan)
        app_note_change(ctx, "update", resource, NULL, json_pack("[s]", what));
    else
        app_note_drift(ctx, resource, what);
}

/* The stable slot and canary weight from status.rollout: stableSlot "a"/"b"
 * (absent: a) and weight, the canary's share 0..100 (absent: 0). */
static void rollout_weights(struct app_ctx *ctx, int *stable, int *canary)
{
    const json_t *rollout = json_object_get(ctx->status, "rollout");
    const char *slot = lb_str(rollout, "stableSlot");
    const json_t *w = json_object_get(rollout, "weight");
    double v = json_is_number(w) ? json_number_value(w) : 0;

    *stable = slot != NULL && strcmp(slot, "b") == 0 ? 1 : 0;
    *canary = v <= 0 ? 0 : v >= 100 ? 100 : (int)(v + 0.5);
}

/* ---- converge ------------------------------------------------------------------ */

/* Fills d from the spec, status.rollout and the network concern's records.
 * Returns 0, or -1 (ctx->error) when a prerequisite is missing or the
 * certificate cannot work. */
static int desired_init(struct app_ctx *ctx, struct desired *d)
{
    json_t *net = app_resources(ctx, "network");
    int canary;

    memset(d, 0, sizeof(*d));
    d->vpc = lb_str(net, "vpcId");
    d->sg = lb_str(net, "lbSecurityGroup");
    d->subnets = json_object_get(net, "publicSubnets");
    if (d->vpc == NULL || d->sg == NULL || json_array_size(d->subnets) < 2) {
        app_fail(ctx, false,
                 "load balancer %s: the network has not recorded vpcId, publicSubnets and "
                 "lbSecurityGroup",
                 ctx->names.load_balancer);
        return -1;
    }
    d->cert = app_spec_str(ctx, "tls.certificateArn", NULL);
    d->policy = app_spec_str(ctx, "tls.sslPolicy", DEFAULT_SSL_POLICY);
    d->redirect = app_spec_bool(ctx, "tls.redirectHttp", true);
    if (d->cert != NULL) {
        /* arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID: an ALB can only use
         * a certificate of its own region. */
        char region[64] = "";
        const char *p = d->cert;
        for (int i = 0; i < 3 && p != NULL; i++) {
            p = strchr(p, ':');
            p = p ? p + 1 : NULL;
        }
        if (p != NULL)
            snprintf(region, sizeof(region), "%.*s", (int)strcspn(p, ":"), p);
        if (strncmp(d->cert, "arn:", 4) != 0 || strstr(d->cert, ":acm:") == NULL ||
            region[0] == '\0') {
            app_fail(ctx, true, "spec.tls.certificateArn %s: not an ACM certificate ARN", d->cert);
            return -1;
        }
        if (strcmp(region, aws_client_region(ctx->aws)) != 0) {
            app_fail(ctx, true,
                     "spec.tls.certificateArn %s: the certificate is in region %s, the load "
                     "balancer in %s (an ALB can only use a certificate of its own region)",
                     d->cert, region, aws_client_region(ctx->aws));
            return -1;
        }
    }
    rollout_weights(ctx, &d->stable, &canary);
    d->weight[d->stable] = 100 - canary;
    d->weight[1 - d->stable] = canary;
    d->hc = lb_desired_health_check(ctx);
    return 0;
}

/* "app/NAME/ID" from a load balancer ARN, "targetgroup/NAME/ID" from a
 * target group ARN (the CloudWatch dimension values). */
static json_t *dimension(const char *arn, const char *marker)
{
    const char *p = arn ? strstr(arn, marker) : NULL;

    if (p == NULL)
        return json_string(LB_PLACEHOLDER);
    if (strcmp(marker, ":loadbalancer/") == 0)
        return json_string(p + strlen(marker));
    return json_string(p + 1);
}

static void record(struct app_ctx *ctx, const struct desired *d, const char *lb_arn,
                   const char *dns, const char *tg[2], const char *http, const char *https)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    char tls[600];

    json_object_set_new(r, "loadBalancerArn", json_string(lb_arn));
    json_object_set_new(r, "dnsName", json_string(dns ? dns : LB_PLACEHOLDER));
    json_object_set_new(r, "lbDimension", dimension(lb_arn, ":loadbalancer/"));
    json_object_set_new(r, "targetGroupArns", json_pack("[s, s]", tg[0], tg[1]));
    json_object_set_new(
        r, "tgDimensions",
        json_pack("[o, o]", dimension(tg[0], ":targetgroup/"), dimension(tg[1], ":targetgroup/")));
    if (http != NULL)
        json_object_set_new(r, "httpListenerArn", json_string(http));
    else
        json_object_del(r, "httpListenerArn");
    if (https != NULL)
        json_object_set_new(r, "httpsListenerArn", json_string(https));
    else
        json_object_del(r, "httpsListenerArn");
    if (!ctx->plan) {
        /* Keep only the current target groups in the attribute cache. */
        json_t *verified = json_object_get(r, "attributesVerified"), *kept = json_array(), *a;
        size_t i;
        json_array_foreach(verified, i, a)
        {
            const char *v = json_string_value(a);
            if (v != NULL && ((tg[0] && strcmp(v, tg[0]) == 0) || (tg[1] && strcmp(v, tg[1]) == 0)))
                json_array_append(kept, a);
        }
        json_object_set_new(r, "attributesVerified", kept);
        json_object_set(r, "healthCheck", d->hc);
        json_object_set_new(r, "subnets", json_deep_copy(d->subnets));
        json_object_set_new(r, "securityGroups", json_pack("[s]", d->sg));
        lb_tls_key(d, tls, sizeof(tls));
        json_object_set_new(r, "appliedTls", json_string(tls));
    }
}

/* True when every id string of `a` is in `b`. */
static bool contains_all(const json_t *b, const json_t *a)
{
    const json_t *x, *y;
    size_t i, j;

    json_array_foreach(a, i, x)
    {
        bool found = false;
        json_array_foreach(b, j, y)
        {
            if (json_is_string(x) && json_is_string(y) &&
                strcmp(json_string_value(x), json_string_value(y)) == 0)
                found = true;
        }
        if (!found)
            return false;
    }
    return true;
}

/* True when two arrays of id strings hold the same set. */
static bool same_ids(const json_t *a, const json_t *b)
{
    return contains_all(a, b) && contains_all(b, a);
}

/* "id1, id2" (truncated to len) for events and plans. */
static void join_ids(const json_t *ids, char *out, size_t len)
{
    const json_t *id;
    size_t i, n = 0;

    out[0] = '\0';
    json_array_foreach(ids, i, id)
    {
        if (n >= len)
            break;
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "",
                              json_is_string(id) ? json_string_value(id) : "?");
    }
    if (json_array_size(ids) == 0)
        snprintf(out, len, "(none)");
}

/* One of the load balancer's network settings ("Subnets" with SetSubnets,
 * "SecurityGroups" with SetSecurityGroups): `have` as AWS reports it, `want`
 * from the network concern. A difference from what the last converge applied
 * (resources.loadbalancer.<record_key>) is drift; otherwise the network's
 * records changed and it is an update. Returns 0, or -1 (ctx->error). */
static int converge_lb_setting(struct app_ctx *ctx, const char *resource, const char *lb_arn,
                               const char *member, const char *operation, const char *record_key,
                               const json_t *have, const json_t *want)
{
    const json_t *last = json_object_get(app_resources(ctx, "loadbalancer"), record_key);
    char was[240], now[240], line[500];

    if (same_ids(have, want))
        return 0;
    if (app_write(ctx, resource, "elbv2", operation,
                  json_pack("{s:s, s:O}", "LoadBalancerArn", lb_arn, member, want), NULL, NULL) < 0)
        return -1;
    join_ids(have, was, sizeof(was));
    join_ids(want, now, sizeof(now));
    snprintf(line, sizeof(line), "%s: %s -> %s", member, was, now);
    if (last != NULL && same_ids(last, want))
        lb_note_drift(ctx, resource, line);
    else
        app_note_change(ctx, "update", "load balancer", ctx->names.load_balancer,
                        json_pack("[s]", line));
    return 0;
}

/* Puts an existing load balancer back in the public subnets and behind the
 * load balancer security group the network concern recorded: subnets or
 * groups changed by hand (an extra group attached, a subnet swapped) are
 * reverted. DescribeLoadBalancers already reported both, so a converged
 * load balancer costs no call. Returns 0, or -1 (ctx->error). */
static int converge_lb_network(struct app_ctx *ctx, const json_t *lb, const struct desired *d,
                               const char *resource)
{
    const char *arn = lb_str(lb, "LoadBalancerArn");
    json_t *subnets = json_array(), *groups = json_pack("[s]", d->sg);
    const json_t *z;
    size_t i;
    int rc = -1;

    json_array_foreach(json_object_get(lb, "AvailabilityZones"), i, z)
    {
        if (lb_str(z, "SubnetId") != NULL)
            json_array_append_new(subnets, json_string(lb_str(z, "SubnetId")));
    }
    if (converge_lb_setting(ctx, resource, arn, "Subnets", "SetSubnets", "subnets", subnets,
                            d->subnets) != 0 ||
        converge_lb_setting(ctx, resource, arn, "SecurityGroups", "SetSecurityGroups",
                            "securityGroups", json_object_get(lb, "SecurityGroups"), groups) != 0)
        goto out;
    rc = 0;
out:
    json_decref(subnets);
    json_decref(groups);
    return rc;
}

static bool weights_unchanged(struct app_ctx *ctx, const struct desired *d)
{
    const json_t *w = json_object_get(app_resources(ctx, "loadbalancer"), "weights");

    return w != NULL && json_integer_value(json_object_get(w, "a")) == d->weight[0] &&
           json_integer_value(json_object_get(w, "b")) == d->weight[1];
}

enum app_step loadbalancer_converge(struct app_ctx *ctx)
{
    struct observed o = {0};
    struct desired d;
    struct listener_want want[2];
    size_t n_want = 0, n_fwd = 0;
    const char *tg[2] = {NULL, NULL}, *lb_arn = NULL, *dns = NULL, *state = NULL;
    struct fwd_item fwd[2];
    char arns[2][ARN_MAX];
    const char *http = NULL, *https = NULL;
    json_t *out = NULL;
    enum app_step step = APP_STEP_FAILED;
    char resource[128];
    int rc;

    memset(want, 0, sizeof(want));
    if (desired_init(ctx, &d) != 0)
        goto out;
    if (lb_observe_target_groups(ctx, &o) != 0 || lb_observe_load_balancer(ctx, &o) != 0 ||
        lb_observe_tags(ctx, &o) != 0 || lb_check_owned(ctx, &o, d.cert != NULL) != 0)
        goto out;

    /* Target groups first: the listeners forward to them. */
    for (int s = 0; s < 2; s++) {
        if (lb_converge_target_group(ctx, &o, &d, s, &tg[s]) != 0)
            goto out;
    }

    /* The load balancer. */
    snprintf(resource, sizeof(resource), "load balancer %s", ctx->names.load_balancer);
    if (o.lb == NULL) {
        rc = app_write(ctx, resource, "elbv2", "CreateLoadBalancer",
                       json_pack("{s:s, s:O, s:[s], s:s, s:s, s:s, s:o}", "Name",
                                 ctx->names.load_balancer, "Subnets", d.subnets, "SecurityGroups",
                                 d.sg, "Scheme", "internet-facing", "Type", "application",
                                 "IpAddressType", "ipv4", "Tags",
                                 app_tags_list(ctx, "Key", "Value", NULL)),
                       &out, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "load balancer", ctx->names.load_balancer, NULL);
        if (rc == 0)
            o.lb = json_incref(json_array_get(json_object_get(out, "LoadBalancers"), 0));
    } else if (converge_lb_network(ctx, o.lb, &d, resource) != 0) {
        goto out;
    }
    if (o.lb != NULL) {
        lb_arn = lb_str(o.lb, "LoadBalancerArn");
        dns = lb_str(o.lb, "DNSName");
        state = lb_str(json_object_get(o.lb, "State"), "Code");
        if (lb_arn == NULL) {
            app_fail(ctx, false, "%s: AWS answered without an ARN", resource);
            goto out;
        }
    } else {
        lb_arn = LB_PLACEHOLDER; /* plan mode */
    }
    if (state != NULL && strcmp(state, "failed") == 0) {
        app_fail(ctx, false, "%s: the load balancer is in state failed (%s)", resource,
                 lb_str(json_object_get(o.lb, "State"), "Reason")
                     ? lb_str(json_object_get(o.lb, "State"), "Reason")
                     : "no reason given");
        goto out;
    }

    /* Listeners: HTTPS (when TLS is on) before port 80, so port 80 only
     * redirects once 443 serves. */
    if (d.cert != NULL) {
        want[n_want++] = (struct listener_want){443, "HTTPS", d.cert, NULL, true};
        want[n_want++] = (struct listener_want){80, "HTTP", NULL, NULL, !d.redirect};
    } else {
        want[n_want++] = (struct listener_want){80, "HTTP", NULL, NULL, true};
    }
    for (size_t i = 0; i < n_want; i++) {
        want[i].actions = want[i].forward
                              ? lb_forward_actions(tg[0], tg[1], d.weight[0], d.weight[1])
                              : lb_redirect_actions();
        if (lb_converge_listener(ctx, &o, lb_arn, &d, tg, &want[i], arns[i], fwd, &n_fwd) != 0)
            goto out;
        if (want[i].port == 443)
            https = arns[i];
        else
            http = arns[i];
    }
    if (n_fwd > 0) {
        bool drift = weights_unchanged(ctx, &d);
        const char *fwd_arns[2];
        for (size_t i = 0; i < n_fwd; i++)
            fwd_arns[i] = fwd[i].arn;
        if (lb_apply_weights(ctx, fwd_arns, n_fwd, tg, d.weight) != 0)
            goto out;
        for (size_t i = 0; i < n_fwd; i++) {
            if (drift)
                lb_note_drift(ctx, fwd[i].resource, fwd[i].change);
            else
                app_note_change(ctx, "update", "listener", fwd[i].resource,
                                json_pack("[s]", fwd[i].change));
        }
    }
    /* TLS turned off: port 80 serves again, the HTTPS listener goes. */
    if (d.cert == NULL) {
        const json_t *ls = lb_listener_on(&o, 443);
        const char *arn = lb_str(ls, "ListenerArn");
        if (ls != NULL && lb_owned(ctx, &o, arn)) {
            if (app_write(ctx, "HTTPS listener :443", "elbv2", "DeleteListener",
                          json_pack("{s:s}", "ListenerArn", arn), NULL, NULL) < 0)
                goto out;
            app_note_change(ctx, "delete", "listener", "HTTPS listener :443", NULL);
        }
    }

    record(ctx, &d, lb_arn, dns, tg, http, https);
    lb_record_weights(ctx, d.weight);
    if (ctx->plan || state == NULL || strcmp(state, "active") == 0 ||
        strcmp(state, "active_impaired") == 0) {
        if (dns != NULL) {
            char url[300];
            snprintf(url, sizeof(url), "%s://%s", d.cert != NULL ? "https" : "http", dns);
            json_object_set_new(ctx->status, "endpoint", json_string(url));
        }
        step = APP_STEP_READY;
    } else {
        /* provisioning: the listeners are in place, traffic flows once AWS
         * says active. */
        app_wait(ctx, LB_PROVISION_WAIT_MS);
        step = APP_STEP_WAITING;
    }
out:
    for (size_t i = 0; i < n_want; i++)
        json_decref(want[i].actions);
    json_decref(d.hc);
    json_decref(out);
    lb_observed_clear(&o);
    return step;
}
