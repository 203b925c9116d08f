/* The load balancer concern's deletion: listeners and the load balancer,
 * then the target groups once AWS no longer holds them. Worker threads (one
 * reconcile's context). */
#include "reconcilers/loadbalancer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A deleted ALB takes a few seconds to disappear; target groups stay "in
 * use" for a moment after their listener is gone. */
#define LB_DELETE_WAIT_MS 5000
#define TG_IN_USE_WAIT_MS 5000

/* ---- delete ---------------------------------------------------------------------- */

static void forget(struct app_ctx *ctx)
{
    json_object_del(ctx->resources, "loadbalancer");
    json_object_del(ctx->status, "endpoint");
}

enum app_step loadbalancer_delete(struct app_ctx *ctx)
{
    struct observed o = {0};
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    bool waiting = false;

    if (lb_observe_load_balancer(ctx, &o) != 0 || lb_observe_target_groups(ctx, &o) != 0 ||
        lb_observe_tags(ctx, &o) != 0)
        goto out;

    /* Listeners, then the load balancer; a load balancer aviary did not
     * create is left alone (and so are its listeners). */
    if (o.lb != NULL && lb_owned(ctx, &o, lb_str(o.lb, "LoadBalancerArn"))) {
        const char *lb_arn = lb_str(o.lb, "LoadBalancerArn");
        static const int ports[] = {443, 80};
        json_t *again = NULL;

        for (size_t i = 0; i < 2; i++) {
            const char *arn = lb_str(lb_listener_on(&o, ports[i]), "ListenerArn");
            if (arn == NULL || !lb_owned(ctx, &o, arn))
                continue;
            if (app_write(ctx, "listener", "elbv2", "DeleteListener",
                          json_pack("{s:s}", "ListenerArn", arn), NULL, &err) < 0) {
                if (strcmp(err.code, "ListenerNotFound") != 0)
                    goto out;
                lb_clear_error(ctx);
            }
        }
        if (app_write(ctx, "load balancer", "elbv2", "DeleteLoadBalancer",
                      json_pack("{s:s}", "LoadBalancerArn", lb_arn), NULL, NULL) < 0)
            goto out;
        app_note_change(ctx, "delete", "load balancer", ctx->names.load_balancer, NULL);
        /* AWS removes it asynchronously: the target groups wait until
         * DescribeLoadBalancers no longer knows it. */
        if (app_read(ctx, "load balancer", "elbv2", "DescribeLoadBalancers",
                     json_pack("{s:[s]}", "LoadBalancerArns", lb_arn), &again, &err) == 0) {
            bool gone = json_array_size(json_object_get(again, "LoadBalancers")) == 0;
            json_decref(again);
            if (!gone) {
                app_wait(ctx, LB_DELETE_WAIT_MS);
                step = APP_STEP_WAITING;
                goto out;
            }
        } else if (strcmp(err.code, "LoadBalancerNotFound") != 0) {
            goto out;
        }
        lb_clear_error(ctx);
    }

    /* Target groups: "in use" for a while after their listener is gone. */
    for (int s = 0; s < 2; s++) {
        const char *arn = lb_str(o.tg[s], "TargetGroupArn");
        if (arn == NULL || !lb_owned(ctx, &o, arn))
            continue;
        if (app_write(ctx, "target group", "elbv2", "DeleteTargetGroup",
                      json_pack("{s:s}", "TargetGroupArn", arn), NULL, &err) < 0) {
            if (strcmp(err.code, "ResourceInUse") == 0) {
                lb_clear_error(ctx);
                waiting = true;
                continue;
            }
            if (strcmp(err.code, "TargetGroupNotFound") != 0)
                goto out;
            lb_clear_error(ctx);
        }
        app_note_change(ctx, "delete", "target group", ctx->names.target_group[s], NULL);
    }
    if (waiting) {
        app_wait(ctx, TG_IN_USE_WAIT_MS);
        step = APP_STEP_WAITING;
        goto out;
    }
    forget(ctx);
    step = APP_STEP_READY;
out:
    lb_observed_clear(&o);
    return step;
}
