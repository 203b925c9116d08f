/* The load balancer concern's listeners: HTTP on 80 (or a redirect to
 * HTTPS on 443), their weighted forward to slots a and b set and read back,
 * the blue/green test listener, and listener drift. Worker threads (one
 * reconcile's context). */
#include "reconcilers/loadbalancer.h"
#include "reconcilers/loadbalancer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- listeners ---------------------------------------------------------------- */

/* Sets the forward weights on `n` listeners (one ModifyListener each) and
 * reads them back in one DescribeListeners call. */
int lb_apply_weights(struct app_ctx *ctx, const char *const *arns, size_t n, const char *tg[2],
                     const int weight[2])
{
    json_t *want = lb_forward_actions(tg[0], tg[1], weight[0], weight[1]);
    json_t *list = json_array(), *out = NULL, *ls;
    char resource[128];
    size_t i;
    int rc = -1;

    for (i = 0; i < n; i++) {
        snprintf(resource, sizeof(resource), "listener %s", arns[i]);
        if (app_write(ctx, resource, "elbv2", "ModifyListener",
                      json_pack("{s:s, s:O}", "ListenerArn", arns[i], "DefaultActions", want), NULL,
                      NULL) < 0)
            goto out;
        json_array_append_new(list, json_string(arns[i]));
    }
    if (ctx->plan || n == 0) {
        rc = 0;
        goto out;
    }
    if (app_read(ctx, "listeners", "elbv2", "DescribeListeners",
                 json_pack("{s:O}", "ListenerArns", list), &out, NULL) != 0)
        goto out;
    if (json_array_size(json_object_get(out, "Listeners")) != n) {
        app_fail(ctx, false, "listeners: DescribeListeners returned %zu of %zu listeners",
                 json_array_size(json_object_get(out, "Listeners")), n);
        goto out;
    }
    json_array_foreach(json_object_get(out, "Listeners"), i, ls)
    {
        if (!lb_actions_match(json_object_get(ls, "DefaultActions"), want)) {
            char seen[160];
            lb_describe_actions(json_object_get(ls, "DefaultActions"), tg, seen, sizeof(seen));
            app_fail(ctx, false,
                     "listener %s: weights read back as %s after ModifyListener set a=%d b=%d",
                     lb_str(ls, "ListenerArn"), seen, weight[0], weight[1]);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(want);
    json_decref(list);
    json_decref(out);
    return rc;
}

void lb_record_weights(struct app_ctx *ctx, const int weight[2])
{
    if (ctx->plan)
        return;
    json_object_set_new(app_resources(ctx, "loadbalancer"), "weights",
                        json_pack("{s:i, s:i}", "a", weight[0], "b", weight[1]));
}

int loadbalancer_set_weights(struct app_ctx *ctx, int stable_slot, int canary_weight)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    const json_t *tgs = json_object_get(r, "targetGroupArns");
    const char *tg[2] = {json_string_value(json_array_get(tgs, 0)),
                         json_string_value(json_array_get(tgs, 1))};
    const char *http = lb_str(r, "httpListenerArn"), *https = lb_str(r, "httpsListenerArn");
    const char *arns[2];
    int weight[2];
    size_t n = 0;

    if (stable_slot < 0 || stable_slot > 1 || canary_weight < 0 || canary_weight > 100) {
        app_fail(ctx, false,
                 "load balancer weights: stable slot %d / canary weight %d out of range",
                 stable_slot, canary_weight);
        return -1;
    }
    if (tg[0] == NULL || tg[1] == NULL || (http == NULL && https == NULL)) {
        app_fail(ctx, false,
                 "load balancer %s: listeners and target groups are not converged yet (no ARNs "
                 "recorded)",
                 ctx->names.load_balancer);
        return -1;
    }
    weight[stable_slot] = 100 - canary_weight;
    weight[1 - stable_slot] = canary_weight;
    if (https != NULL)
        arns[n++] = https;
    /* With TLS and redirectHttp, port 80 redirects and carries no weights. */
    if (http != NULL && !(app_spec_str(ctx, "tls.certificateArn", NULL) != NULL &&
                          app_spec_bool(ctx, "tls.redirectHttp", true)))
        arns[n++] = http;
    if (lb_apply_weights(ctx, arns, n, tg, weight) != 0)
        return -1;
    lb_record_weights(ctx, weight);
    return 0;
}

/* The blue/green test listener: HTTP on `port`, forwarding only to `slot`'s
 * target group (see loadbalancer.h). */
int loadbalancer_set_test_listener(struct app_ctx *ctx, int slot, int port)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    const json_t *tgs = json_object_get(r, "targetGroupArns");
    const char *tg[2] = {json_string_value(json_array_get(tgs, 0)),
                         json_string_value(json_array_get(tgs, 1))};
    const char *lb = lb_str(r, "loadBalancerArn"), *arn = NULL;
    json_t *out = NULL, *tags = NULL, *want = NULL, *created = NULL;
    const json_t *ls, *found = NULL;
    struct aws_error err;
    char resource[64];
    size_t i;
    int rc = -1;

    snprintf(resource, sizeof(resource), "test listener :%d", port);
    if (port < 1 || port > 65535 || port == 80 || port == 443) {
        app_fail(ctx, true, "%s: the test port must be 1-65535 and not 80 or 443", resource);
        return -1;
    }
    if (lb_is_placeholder(lb) || lb_is_placeholder(tg[0]) || lb_is_placeholder(tg[1])) {
        app_fail(ctx, false, "%s: the load balancer and target groups are not converged yet",
                 resource);
        return -1;
    }
    if (app_read(ctx, "listeners", "elbv2", "DescribeListeners",
                 json_pack("{s:s}", "LoadBalancerArn", lb), &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "Listeners"), i, ls)
    {
        if (json_integer_value(json_object_get(ls, "Port")) == port)
            found = ls;
    }
    if (found != NULL) {
        arn = lb_str(found, "ListenerArn");
        if (app_read(ctx, resource, "elbv2", "DescribeTags",
                     json_pack("{s:[s]}", "ResourceArns", arn), &tags, NULL) != 0)
            goto out;
        if (!app_tags_owned(
                ctx, json_object_get(json_array_get(json_object_get(tags, "TagDescriptions"), 0),
                                     "Tags"))) {
            lb_fail_not_owned(ctx, resource, ctx->names.load_balancer);
            goto out;
        }
    }
    if (slot < 0) {
        if (found != NULL) {
            app_note_change(ctx, "delete", "listener", resource, NULL);
            if (app_write(ctx, resource, "elbv2", "DeleteListener",
                          json_pack("{s:s}", "ListenerArn", arn), NULL, &err) < 0) {
                if (strcmp(err.code, "ListenerNotFound") != 0)
                    goto out;
                lb_clear_error(ctx);
            }
        }
        if (!ctx->plan) {
            json_object_del(r, "testListenerArn");
            json_object_del(r, "testListenerSlot");
        }
        rc = 0;
        goto out;
    }
    if (slot > 1) {
        app_fail(ctx, false, "%s: slot %d out of range", resource, slot);
        goto out;
    }
    want = lb_forward_actions(tg[0], tg[1], slot == 0 ? 100 : 0, slot == 1 ? 100 : 0);
    if (found == NULL) {
        app_note_change(ctx, "create", "listener", resource,
                        json_pack("[s]", slot == 0 ? "forward a=100 b=0" : "forward a=0 b=100"));
        if (app_write(ctx, resource, "elbv2", "CreateListener",
                      json_pack("{s:s, s:s, s:i, s:O, s:o}", "LoadBalancerArn", lb, "Protocol",
                                "HTTP", "Port", port, "DefaultActions", want, "Tags",
                                app_tags_list(ctx, "Key", "Value", NULL)),
                      &created, NULL) < 0)
            goto out;
        arn = lb_str(json_array_get(json_object_get(created, "Listeners"), 0), "ListenerArn");
    } else if (!lb_actions_match(json_object_get(found, "DefaultActions"), want)) {
        app_note_change(ctx, "update", "listener", resource,
                        json_pack("[s]", slot == 0 ? "forward a=100 b=0" : "forward a=0 b=100"));
        if (app_write(ctx, resource, "elbv2", "ModifyListener",
                      json_pack("{s:s, s:O}", "ListenerArn", arn, "DefaultActions", want), NULL,
                      NULL) < 0)
            goto out;
    }
    if (!ctx->plan && arn != NULL) {
        json_object_set_new(r, "testListenerArn", json_string(arn));
        json_object_set_new(r, "testListenerSlot", json_string(app_slot_name(slot)));
    }
    rc = 0;
out:
    json_decref(out);
    json_decref(tags);
    json_decref(want);
    json_decref(created);
    return rc;
}

/* Differences of an existing listener other than its default actions
 * ("Protocol: HTTP -> HTTPS", certificate, SSL policy). New reference. */
static json_t *listener_shape_changes(const json_t *ls, const struct listener_want *w,
                                      const struct desired *d)
{
    json_t *changes = json_array();
    const char *proto = lb_str(ls, "Protocol");
    const char *cert =
        lb_str(json_array_get(json_object_get(ls, "Certificates"), 0), "CertificateArn");
    const char *policy = lb_str(ls, "SslPolicy");
    char line[600];

    if (proto == NULL || strcmp(proto, w->protocol) != 0) {
        snprintf(line, sizeof(line), "Protocol: %s -> %s", proto ? proto : "(none)", w->protocol);
        json_array_append_new(changes, json_string(line));
    }
    if (w->cert != NULL) {
        if (cert == NULL || strcmp(cert, w->cert) != 0) {
            snprintf(line, sizeof(line), "Certificate: %s -> %s", cert ? cert : "(none)", w->cert);
            json_array_append_new(changes, json_string(line));
        }
        if (policy == NULL || strcmp(policy, d->policy) != 0) {
            snprintf(line, sizeof(line), "SslPolicy: %s -> %s", policy ? policy : "(none)",
                     d->policy);
            json_array_append_new(changes, json_string(line));
        }
    }
    return changes;
}

static void listener_resource(const struct listener_want *w, const struct app_ctx *ctx, char *out,
                              size_t len)
{
    if (w->cert != NULL)
        snprintf(out, len, "%s listener :%d of %s (certificate %s)", w->protocol, w->port,
                 ctx->names.load_balancer, w->cert);
    else
        snprintf(out, len, "%s listener :%d of %s", w->protocol, w->port, ctx->names.load_balancer);
}

/* Full listener parameters (for CreateListener with LoadBalancerArn, or
 * ModifyListener with ListenerArn). New reference. */
static json_t *listener_params(const struct listener_want *w, const struct desired *d)
{
    json_t *in = json_pack("{s:s, s:i, s:O}", "Protocol", w->protocol, "Port", w->port,
                           "DefaultActions", w->actions);
    if (w->cert != NULL) {
        json_object_set_new(in, "Certificates", json_pack("[{s:s}]", "CertificateArn", w->cert));
        json_object_set_new(in, "SslPolicy", json_string(d->policy));
    }
    return in;
}

/* The TLS settings the listeners were last converged to ("" without TLS),
 * to tell drift (AWS differs from what aviary set) from a manifest change. */
void lb_tls_key(const struct desired *d, char *out, size_t len)
{
    if (d->cert == NULL)
        snprintf(out, len, "%s", "");
    else
        snprintf(out, len, "%s %s %s", d->cert, d->policy, d->redirect ? "redirect" : "forward");
}

static bool tls_unchanged(struct app_ctx *ctx, const struct desired *d)
{
    const char *last = lb_str(app_resources(ctx, "loadbalancer"), "appliedTls");
    char now[600];

    lb_tls_key(d, now, sizeof(now));
    return last != NULL && strcmp(last, now) == 0;
}

/* Creates or corrects one listener; its ARN goes to arn[ARN_MAX]. A forward
 * listener whose only difference is the forward action is left to
 * lb_apply_weights: it is appended to fwd[] (*n_fwd). */
int lb_converge_listener(struct app_ctx *ctx, const struct observed *o, const char *lb_arn,
                         const struct desired *d, const char *tg[2], const struct listener_want *w,
                         char *arn, struct fwd_item *fwd, size_t *n_fwd)
{
    const json_t *ls = lb_listener_on(o, w->port);
    json_t *in, *out = NULL, *changes = NULL;
    char resource[400], was[160], now[160], line[400];
    int rc = -1;

    listener_resource(w, ctx, resource, sizeof(resource));
    if (ls == NULL) {
        in = listener_params(w, d);
        json_object_set_new(in, "LoadBalancerArn", json_string(lb_arn));
        json_object_set_new(in, "Tags", app_tags_list(ctx, "Key", "Value", NULL));
        rc = app_write(ctx, resource, "elbv2", "CreateListener", in, &out, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "listener", resource, NULL);
        if (rc == 1) {
            snprintf(arn, ARN_MAX, "%s", LB_PLACEHOLDER);
        } else {
            const char *a =
                lb_str(json_array_get(json_object_get(out, "Listeners"), 0), "ListenerArn");
            if (a == NULL) {
                app_fail(ctx, false, "%s: CreateListener answered without an ARN", resource);
                rc = -1;
                goto out;
            }
            snprintf(arn, ARN_MAX, "%s", a);
        }
        rc = 0;
        goto out;
    }
    snprintf(arn, ARN_MAX, "%s", lb_str(ls, "ListenerArn") ? lb_str(ls, "ListenerArn") : "");
    changes = listener_shape_changes(ls, w, d);
    lb_describe_actions(json_object_get(ls, "DefaultActions"), tg, was, sizeof(was));
    lb_describe_actions(w->actions, tg, now, sizeof(now));
    snprintf(line, sizeof(line), "DefaultActions: %s -> %s", was, now);
    if (json_array_size(changes) > 0) {
        /* Protocol, certificate or policy: one ModifyListener with
         * everything (the forward weights included). */
        if (!lb_actions_match(json_object_get(ls, "DefaultActions"), w->actions))
            json_array_append_new(changes, json_string(line));
        in = listener_params(w, d);
        json_object_set_new(in, "ListenerArn", json_string(arn));
        if (app_write(ctx, resource, "elbv2", "ModifyListener", in, NULL, NULL) < 0)
            goto out;
        if (tls_unchanged(ctx, d)) {
            char *text = json_dumps(changes, JSON_COMPACT);
            lb_note_drift(ctx, resource, text ? text : "settings");
            free(text);
        } else {
            app_note_change(ctx, "update", "listener", resource, json_incref(changes));
        }
    } else if (!lb_actions_match(json_object_get(ls, "DefaultActions"), w->actions)) {
        if (w->forward) {
            struct fwd_item *item = &fwd[(*n_fwd)++];
            item->arn = arn;
            snprintf(item->resource, sizeof(item->resource), "%s", resource);
            snprintf(item->change, sizeof(item->change), "%s", line);
        } else {
            if (app_write(ctx, resource, "elbv2", "ModifyListener",
                          json_pack("{s:s, s:O}", "ListenerArn", arn, "DefaultActions", w->actions),
                          NULL, NULL) < 0)
                goto out;
            if (tls_unchanged(ctx, d))
                lb_note_drift(ctx, resource, line);
            else
                app_note_change(ctx, "update", "listener", resource, json_pack("[s]", line));
        }
    }
    rc = 0;
out:
    json_decref(out);
    json_decref(changes);
    return rc;
}
