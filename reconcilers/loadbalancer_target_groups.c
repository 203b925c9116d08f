/* The load balancer concern's target groups: one per slot (a, b), created
 * with the manifest's health check, health check drift reverted and manifest
 * changes applied in place, the deregistration delay kept. Worker threads
 * (one reconcile's context). */
#include "reconcilers/loadbalancer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deregistration delay of both target groups. AWS's default (300 s) keeps
 * a replaced task draining for five minutes, which slows every rollout step,
 * rollback and scale-in; model inference requests finish in well under a
 * second, so 30 s covers in-flight requests with a wide margin. */
#define TG_DEREGISTRATION_DELAY "30"
#define TG_ATTR_DEREGISTRATION  "deregistration_delay.timeout_seconds"

/* ---- target groups ---------------------------------------------------------- */

/* The health check members for Create/ModifyTargetGroup from spec.healthCheck
 * (CRD defaults as fallbacks). New reference. */
json_t *lb_desired_health_check(struct app_ctx *ctx)
{
    return json_pack(
        "{s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:{s:s}}", "HealthCheckProtocol", "HTTP",
        "HealthCheckPort", "traffic-port", "HealthCheckEnabled", 1, "HealthCheckPath",
        app_spec_str(ctx, "healthCheck.path", "/"), "HealthCheckIntervalSeconds",
        (json_int_t)app_spec_seconds(ctx, "healthCheck.interval", 15), "HealthCheckTimeoutSeconds",
        (json_int_t)app_spec_seconds(ctx, "healthCheck.timeout", 5), "HealthyThresholdCount",
        app_spec_int(ctx, "healthCheck.healthyThreshold", 3), "UnhealthyThresholdCount",
        app_spec_int(ctx, "healthCheck.unhealthyThreshold", 3), "Matcher", "HttpCode",
        app_spec_str(ctx, "healthCheck.matcher", "200-399"));
}

/* "Member: old -> new" for each health check member that differs; an empty
 * array when the target group matches. New reference. */
static json_t *health_check_changes(const json_t *tg, const json_t *want)
{
    json_t *changes = json_array();
    const char *key;
    json_t *w;

    json_object_foreach((json_t *)want, key, w)
    {
        const json_t *h = json_object_get(tg, key);
        char line[512], *hs, *ws;

        if (strcmp(key, "Matcher") == 0) {
            h = json_object_get(h, "HttpCode");
            w = json_object_get(w, "HttpCode");
        }
        if (h != NULL && json_equal((json_t *)h, w))
            continue;
        hs = h ? json_dumps(h, JSON_ENCODE_ANY) : NULL;
        ws = json_dumps(w, JSON_ENCODE_ANY);
        snprintf(line, sizeof(line), "%s: %s -> %s", key, hs ? hs : "(none)", ws ? ws : "?");
        free(hs);
        free(ws);
        json_array_append_new(changes, json_string(line));
    }
    return changes;
}

/* Sets the deregistration delay unless the target group is known to have it
 * (status.resources.loadbalancer.attributesVerified lists the ARNs checked
 * since they were created, so a converged resync reads no attributes). */
static int converge_tg_attributes(struct app_ctx *ctx, const char *arn, bool created)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    json_t *verified = json_object_get(r, "attributesVerified");
    json_t *out = NULL, *a;
    char resource[96];
    bool ok = false;
    size_t i;

    json_array_foreach(verified, i, a)
    {
        if (json_string_value(a) != NULL && strcmp(json_string_value(a), arn) == 0)
            return 0;
    }
    snprintf(resource, sizeof(resource), "target group %s", arn);
    if (!created && !lb_is_placeholder(arn)) {
        if (app_read(ctx, resource, "elbv2", "DescribeTargetGroupAttributes",
                     json_pack("{s:s}", "TargetGroupArn", arn), &out, NULL) != 0)
            return -1;
        json_array_foreach(json_object_get(out, "Attributes"), i, a)
        {
            if (strcmp(lb_str(a, "Key") ? lb_str(a, "Key") : "", TG_ATTR_DEREGISTRATION) == 0)
                ok = lb_str(a, "Value") != NULL &&
                     strcmp(lb_str(a, "Value"), TG_DEREGISTRATION_DELAY) == 0;
        }
        json_decref(out);
    }
    if (!ok && app_write(ctx, resource, "elbv2", "ModifyTargetGroupAttributes",
                         json_pack("{s:s, s:[{s:s, s:s}]}", "TargetGroupArn", arn, "Attributes",
                                   "Key", TG_ATTR_DEREGISTRATION, "Value", TG_DEREGISTRATION_DELAY),
                         NULL, NULL) < 0)
        return -1;
    if (!ctx->plan) {
        if (!json_is_array(verified)) {
            verified = json_array();
            json_object_set_new(r, "attributesVerified", verified);
        }
        json_array_append_new(verified, json_string(arn));
    }
    return 0;
}

/* Creates the slot's target group or brings its health check back to the
 * spec. *arn receives its ARN (LB_PLACEHOLDER in plan mode). */
int lb_converge_target_group(struct app_ctx *ctx, struct observed *o, const struct desired *d,
                             int slot, const char **arn)
{
    const char *name = ctx->names.target_group[slot];
    json_t *in, *out = NULL, *changes = NULL;
    char resource[96];
    int rc = -1;

    snprintf(resource, sizeof(resource), "target group %s", name);
    if (o->tg[slot] == NULL) {
        in = json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "Name", name, "Protocol", "HTTP", "Port",
                       app_spec_int(ctx, "port", 80), "VpcId", d->vpc, "TargetType", "ip", "Tags",
                       app_tags_list(ctx, "Key", "Value", APP_TAG_SLOT, app_slot_name(slot), NULL));
        json_object_update(in, d->hc);
        rc = app_write(ctx, resource, "elbv2", "CreateTargetGroup", in, &out, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "target group", name, NULL);
        if (rc == 1) {
            *arn = LB_PLACEHOLDER;
        } else {
            o->tg[slot] = json_incref(json_array_get(json_object_get(out, "TargetGroups"), 0));
            *arn = lb_str(o->tg[slot], "TargetGroupArn");
            if (*arn == NULL) {
                app_fail(ctx, false, "%s: CreateTargetGroup answered without an ARN", resource);
                rc = -1;
                goto out;
            }
        }
        rc = converge_tg_attributes(ctx, *arn, true);
        goto out;
    }
    /* Port and protocol are fixed at creation; a changed spec.port needs no
     * new target group: ECS registers each task with its container port,
     * and the health check probes the traffic port of each target. */
    *arn = lb_str(o->tg[slot], "TargetGroupArn");
    changes = health_check_changes(o->tg[slot], d->hc);
    if (json_array_size(changes) > 0) {
        const json_t *last = json_object_get(app_resources(ctx, "loadbalancer"), "healthCheck");
        bool drift = last != NULL && json_equal((json_t *)last, d->hc);
        char what[512];
        size_t n = 0, i;
        json_t *c;

        in = json_pack("{s:s}", "TargetGroupArn", *arn);
        json_object_update(in, d->hc);
        if (app_write(ctx, resource, "elbv2", "ModifyTargetGroup", in, NULL, NULL) < 0)
            goto out;
        if (drift) {
            what[0] = '\0';
            json_array_foreach(changes, i, c)
            {
                n += (size_t)snprintf(what + n, n < sizeof(what) ? sizeof(what) - n : 0, "%s%s",
                                      i ? "; " : "", json_string_value(c));
            }
            lb_note_drift(ctx, resource, what);
        } else {
            app_note_change(ctx, "update", "target group", name, json_incref(changes));
        }
    }
    rc = converge_tg_attributes(ctx, *arn, false);
out:
    json_decref(out);
    json_decref(changes);
    return rc;
}
