/* The load balancer concern's observation: the target groups, the load
 * balancer, its listeners and all their tags as AWS has them (found by
 * derived name), and the ownership check before anything is changed.
 * Worker threads (one reconcile's context). */
#include "reconcilers/loadbalancer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- observe ------------------------------------------------------------ */

/* Target groups of both slots: one DescribeTargetGroups call with both
 * names; when one is missing AWS fails the whole call, so each name is then
 * asked for alone (only while creating or deleting). */
int lb_observe_target_groups(struct app_ctx *ctx, struct observed *o)
{
    struct aws_error err;
    json_t *out = NULL, *tg;
    size_t i;

    if (app_read(ctx, "target groups", "elbv2", "DescribeTargetGroups",
                 json_pack("{s:[s, s]}", "Names", ctx->names.target_group[0],
                           ctx->names.target_group[1]),
                 &out, &err) != 0) {
        if (strcmp(err.code, "TargetGroupNotFound") != 0)
            return -1;
        lb_clear_error(ctx);
        for (int s = 0; s < 2; s++) {
            if (app_read(ctx, "target group", "elbv2", "DescribeTargetGroups",
                         json_pack("{s:[s]}", "Names", ctx->names.target_group[s]), &out,
                         &err) != 0) {
                if (strcmp(err.code, "TargetGroupNotFound") != 0)
                    return -1;
                lb_clear_error(ctx);
                continue;
            }
            o->tg[s] = json_incref(json_array_get(json_object_get(out, "TargetGroups"), 0));
            json_decref(out);
            out = NULL;
        }
        return 0;
    }
    json_array_foreach(json_object_get(out, "TargetGroups"), i, tg)
    {
        for (int s = 0; s < 2; s++) {
            const char *name = lb_str(tg, "TargetGroupName");
            if (name != NULL && strcmp(name, ctx->names.target_group[s]) == 0 && o->tg[s] == NULL)
                o->tg[s] = json_incref(tg);
        }
    }
    json_decref(out);
    return 0;
}

int lb_observe_load_balancer(struct app_ctx *ctx, struct observed *o)
{
    struct aws_error err;
    json_t *out = NULL;

    o->listeners = json_array();
    if (app_read(ctx, "load balancer", "elbv2", "DescribeLoadBalancers",
                 json_pack("{s:[s]}", "Names", ctx->names.load_balancer), &out, &err) != 0) {
        if (strcmp(err.code, "LoadBalancerNotFound") != 0)
            return -1;
        lb_clear_error(ctx);
        return 0;
    }
    o->lb = json_incref(json_array_get(json_object_get(out, "LoadBalancers"), 0));
    json_decref(out);
    out = NULL;
    if (o->lb == NULL)
        return 0;
    if (app_read(ctx, "listeners", "elbv2", "DescribeListeners",
                 json_pack("{s:s}", "LoadBalancerArn", lb_str(o->lb, "LoadBalancerArn")), &out,
                 &err) != 0) {
        if (strcmp(err.code, "LoadBalancerNotFound") != 0)
            return -1;
        lb_clear_error(ctx); /* deleted meanwhile */
        json_decref(o->lb);
        o->lb = NULL;
        return 0;
    }
    json_array_extend(o->listeners, json_object_get(out, "Listeners"));
    json_decref(out);
    return 0;
}

const json_t *lb_listener_on(const struct observed *o, int port)
{
    const json_t *ls;
    size_t i;

    json_array_foreach(o->listeners, i, ls)
    {
        if (json_integer_value(json_object_get(ls, "Port")) == port)
            return ls;
    }
    return NULL;
}

/* One DescribeTags call for everything observed (at most 5 ARNs). */
int lb_observe_tags(struct app_ctx *ctx, struct observed *o)
{
    json_t *arns = json_array(), *out = NULL, *d;
    static const int ports[] = {80, 443};
    size_t i;
    int rc = -1;

    o->tags = json_object();
    for (int s = 0; s < 2; s++) {
        if (o->tg[s] != NULL)
            json_array_append_new(arns, json_string(lb_str(o->tg[s], "TargetGroupArn")));
    }
    if (o->lb != NULL)
        json_array_append_new(arns, json_string(lb_str(o->lb, "LoadBalancerArn")));
    for (i = 0; i < 2; i++) {
        const json_t *ls = lb_listener_on(o, ports[i]);
        if (ls != NULL)
            json_array_append_new(arns, json_string(lb_str(ls, "ListenerArn")));
    }
    if (json_array_size(arns) == 0) {
        rc = 0;
        goto out;
    }
    if (app_read(ctx, "load balancer tags", "elbv2", "DescribeTags",
                 json_pack("{s:O}", "ResourceArns", arns), &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "TagDescriptions"), i, d)
    {
        const char *arn = lb_str(d, "ResourceArn");
        if (arn != NULL)
            json_object_set(o->tags, arn, json_object_get(d, "Tags"));
    }
    rc = 0;
out:
    json_decref(arns);
    json_decref(out);
    return rc;
}

bool lb_owned(struct app_ctx *ctx, const struct observed *o, const char *arn)
{
    return arn != NULL && app_tags_owned(ctx, json_object_get(o->tags, arn));
}

void lb_fail_not_owned(struct app_ctx *ctx, const char *what, const char *name)
{
    app_fail(ctx, false,
             "%s %s exists without the aviary tags of application %s: aviary does not modify "
             "resources it did not create (delete or rename it)",
             what, name, ctx->names.app);
}

/* Everything found by name that converge would change must carry this
 * application's tags; checked before any change so a conflict leaves AWS
 * untouched. Listeners: the ports the spec wants. */
int lb_check_owned(struct app_ctx *ctx, const struct observed *o, bool https)
{
    char what[64];

    for (int s = 0; s < 2; s++) {
        if (o->tg[s] != NULL && !lb_owned(ctx, o, lb_str(o->tg[s], "TargetGroupArn"))) {
            lb_fail_not_owned(ctx, "target group", ctx->names.target_group[s]);
            return -1;
        }
    }
    if (o->lb != NULL && !lb_owned(ctx, o, lb_str(o->lb, "LoadBalancerArn"))) {
        lb_fail_not_owned(ctx, "load balancer", ctx->names.load_balancer);
        return -1;
    }
    static const int ports[] = {80, 443};
    for (size_t i = 0; i < 2; i++) {
        int port = ports[i];
        const json_t *ls = lb_listener_on(o, port);
        if (ls == NULL || (port == 443 && !https) || lb_owned(ctx, o, lb_str(ls, "ListenerArn")))
            continue;
        snprintf(what, sizeof(what), "listener :%d of", port);
        lb_fail_not_owned(ctx, what, ctx->names.load_balancer);
        return -1;
    }
    return 0;
}
