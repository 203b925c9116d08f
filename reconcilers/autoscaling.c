/* Autoscaling concern: an Application Auto Scaling scalable target on the
 * stable slot's ECS service (min/max tasks) with target-tracking policies on
 * CPU and, when given, memory and ALB requests per target; follows the
 * stable slot, reverts drift, pins the minimum during rollouts. It never
 * sets the service's desiredCount itself. Worker threads. */
#include "reconcilers/autoscaling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AS_SERVICE   "application-autoscaling"
#define AS_NAMESPACE "ecs"
#define AS_DIMENSION "ecs:service:DesiredCount"
#define AS_PENDING   "(known after apply)"
#define AS_WAIT_MS   5000

/* The target-tracking policies aviary manages, named "<prefix>-<suffix>". */
struct policy_kind {
    const char *suffix;
    const char *metric_type;
    const char *spec_path;
};

static const struct policy_kind policy_kinds[] = {
    {"cpu", "ECSServiceAverageCPUUtilization", "scaling.cpuPercent"},
    {"memory", "ECSServiceAverageMemoryUtilization", "scaling.memoryPercent"},
    {"requests", "ALBRequestCountPerTarget", "scaling.requestsPerTarget"},
};

#define N_POLICY_KINDS (sizeof(policy_kinds) / sizeof(policy_kinds[0]))

/* ---- lookups shared with the other concerns ------------------------------ */

int autoscaling_stable_slot(struct app_ctx *ctx)
{
    const char *s = json_string_value(
        json_object_get(json_object_get(ctx->resources, "service"), "stableSlot"));

    if (s == NULL)
        s = json_string_value(
            json_object_get(json_object_get(ctx->status, "rollout"), "stableSlot"));
    return s != NULL && strcmp(s, "b") == 0 ? 1 : 0;
}

const char *autoscaling_cluster_name(struct app_ctx *ctx)
{
    const char *c = json_string_value(
        json_object_get(json_object_get(ctx->resources, "cluster"), "clusterName"));

    return c != NULL && *c ? c : ctx->names.cluster;
}

/* resources.service.services[slot], or NULL. */
static json_t *service_entry(struct app_ctx *ctx, int slot)
{
    json_t *services = json_object_get(json_object_get(ctx->resources, "service"), "services");
    json_t *e = json_array_get(services, (size_t)slot);

    return json_is_object(e) ? e : NULL;
}

const char *autoscaling_service_name(struct app_ctx *ctx, int slot)
{
    const char *n = json_string_value(json_object_get(service_entry(ctx, slot), "name"));

    return n != NULL && *n ? n : ctx->names.service[slot == 1 ? 1 : 0];
}

/* ---- helpers ------------------------------------------------------------- */

static void resource_id(struct app_ctx *ctx, int slot, char *out, size_t size)
{
    snprintf(out, size, "service/%s/%s", autoscaling_cluster_name(ctx),
             autoscaling_service_name(ctx, slot));
}

/* FNV-1a of the canonical JSON of v as 16 hex digits: what was last applied,
 * so a difference from AWS can be told apart as drift (same desired state as
 * last time) or an update (the spec changed). */
static void digest(const json_t *v, char out[17])
{
    char *s = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = s ? s : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    free(s);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static json_t *target_key(struct app_ctx *ctx, int slot)
{
    char rid[300];

    resource_id(ctx, slot, rid, sizeof(rid));
    return json_pack("{s:s, s:s, s:s}", "ServiceNamespace", AS_NAMESPACE, "ResourceId", rid,
                     "ScalableDimension", AS_DIMENSION);
}

/* The minimum the target should have: the pin while a rollout holds it
 * (status.rollout.pinnedMin, written by the rollout state machine from the
 * rollout's start until it releases the pin: through Progressing, Paused,
 * Promoting and RollingBack), else spec.scaling.min (and a stale pin is
 * dropped). A pin recorded by autoscaling_pin_min also holds while
 * status.rollout.phase says a rollout runs. */
static json_int_t desired_min(struct app_ctx *ctx, json_t *res, json_int_t max)
{
    const json_t *rollout = json_object_get(ctx->status, "rollout");
    const char *phase = json_string_value(json_object_get(rollout, "phase"));
    const json_t *rpin = json_object_get(rollout, "pinnedMin");
    json_t *pin = json_object_get(res, "pinnedMin");
    json_int_t min = app_spec_int(ctx, "scaling.min", 1);

    if (json_is_integer(rpin) && json_integer_value(rpin) >= 0) {
        min = json_integer_value(rpin);
        if (!ctx->plan)
            json_object_set_new(res, "pinnedMin", json_integer(min));
    } else if (json_is_integer(pin) && phase != NULL &&
               (strcmp(phase, "Progressing") == 0 || strcmp(phase, "Paused") == 0 ||
                strcmp(phase, "Promoting") == 0 || strcmp(phase, "RollingBack") == 0)) {
        min = json_integer_value(pin);
    } else if (pin != NULL && !ctx->plan) {
        json_object_del(res, "pinnedMin");
    }
    return min > max ? max : min;
}

/* The ALB ResourceLabel "app/NAME/ID/targetgroup/NAME/ID" of a slot's target
 * group into out; returns false when the load balancer is not known yet. */
static bool resource_label(struct app_ctx *ctx, int slot, char *out, size_t size)
{
    json_t *lb = json_object_get(ctx->resources, "loadbalancer");
    const char *lbd = json_string_value(json_object_get(lb, "lbDimension"));
    const char *tgd =
        json_string_value(json_array_get(json_object_get(lb, "tgDimensions"), (size_t)slot));

    if (lbd == NULL || tgd == NULL || strcmp(lbd, AS_PENDING) == 0 ||
        strcmp(tgd, AS_PENDING) == 0) {
        snprintf(out, size, "%s", AS_PENDING);
        return false;
    }
    snprintf(out, size, "%s/%s", lbd, tgd);
    return true;
}

/* Desired policies: {"<name>": TargetTrackingScalingPolicyConfiguration}.
 * Returns NULL (ctx->error set, *waiting when the load balancer is missing). */
static json_t *desired_policies(struct app_ctx *ctx, int slot, bool *waiting)
{
    json_t *out = json_object();
    long out_cd = app_spec_seconds(ctx, "scaling.scaleOutCooldown", 60);
    long in_cd = app_spec_seconds(ctx, "scaling.scaleInCooldown", 300);
    char name[128], label[300];

    *waiting = false;
    for (size_t i = 0; i < N_POLICY_KINDS; i++) {
        const json_t *v = app_spec(ctx, policy_kinds[i].spec_path);
        json_t *pre;
        if (!json_is_integer(v))
            continue;
        pre = json_pack("{s:s}", "PredefinedMetricType", policy_kinds[i].metric_type);
        if (strcmp(policy_kinds[i].suffix, "requests") == 0) {
            if (!resource_label(ctx, slot, label, sizeof(label)) && !ctx->plan) {
                app_fail(ctx, false,
                         "autoscaling: the load balancer's target group dimensions are not "
                         "known yet (requestsPerTarget policy)");
                *waiting = true;
                json_decref(pre);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(pre, "ResourceLabel", json_string(label));
        }
        snprintf(name, sizeof(name), "%s-%s", ctx->names.alarm_prefix, policy_kinds[i].suffix);
        json_object_set_new(
            out, name,
            json_pack("{s:f, s:o, s:I, s:I, s:b}", "TargetValue", (double)json_integer_value(v),
                      "PredefinedMetricSpecification", pre, "ScaleOutCooldown", (json_int_t)out_cd,
                      "ScaleInCooldown", (json_int_t)in_cd, "DisableScaleIn", 0));
    }
    return out;
}

static bool is_ours(struct app_ctx *ctx, const char *policy_name)
{
    char name[128];

    for (size_t i = 0; i < N_POLICY_KINDS; i++) {
        snprintf(name, sizeof(name), "%s-%s", ctx->names.alarm_prefix, policy_kinds[i].suffix);
        if (strcmp(name, policy_name) == 0)
            return true;
    }
    return false;
}

static json_int_t int_or(const json_t *v, json_int_t fallback)
{
    return json_is_integer(v) ? json_integer_value(v) : fallback;
}

static const char *str_or(const json_t *v, const char *fallback)
{
    const char *s = json_string_value(v);
    return s ? s : fallback;
}

/* Appends "field: old -> new" for each setting of a target-tracking
 * configuration that differs; returns how many did. */
static int policy_diff(const json_t *want, const json_t *have_policy, json_t *changes)
{
    const json_t *have = json_object_get(have_policy, "TargetTrackingScalingPolicyConfiguration");
    const json_t *wp = json_object_get(want, "PredefinedMetricSpecification");
    const json_t *hp = json_object_get(have, "PredefinedMetricSpecification");
    static const char *const ints[] = {"ScaleOutCooldown", "ScaleInCooldown"};
    int n = 0;
    double wt = json_number_value(json_object_get(want, "TargetValue"));
    double ht = json_number_value(json_object_get(have, "TargetValue"));
    char line[512];

    if (strcmp(str_or(json_object_get(have_policy, "PolicyType"), ""), "TargetTrackingScaling") !=
        0) {
        json_array_append_new(changes, json_string("PolicyType: -> TargetTrackingScaling"));
        return 1;
    }
    if (fabs(wt - ht) > 1e-9) {
        snprintf(line, sizeof(line), "TargetValue: %g -> %g", ht, wt);
        json_array_append_new(changes, json_string(line));
        n++;
    }
    if (strcmp(str_or(json_object_get(wp, "PredefinedMetricType"), ""),
               str_or(json_object_get(hp, "PredefinedMetricType"), "")) != 0 ||
        strcmp(str_or(json_object_get(wp, "ResourceLabel"), ""),
               str_or(json_object_get(hp, "ResourceLabel"), "")) != 0 ||
        json_object_get(have, "CustomizedMetricSpecification") != NULL) {
        snprintf(line, sizeof(line), "PredefinedMetricSpecification: %s %s -> %s %s",
                 str_or(json_object_get(hp, "PredefinedMetricType"), "(custom)"),
                 str_or(json_object_get(hp, "ResourceLabel"), ""),
                 str_or(json_object_get(wp, "PredefinedMetricType"), ""),
                 str_or(json_object_get(wp, "ResourceLabel"), ""));
        json_array_append_new(changes, json_string(line));
        n++;
    }
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        json_int_t w = int_or(json_object_get(want, ints[i]), -1);
        json_int_t h = int_or(json_object_get(have, ints[i]), -1);
        if (w != h) {
            snprintf(line, sizeof(line), "%s: %lld -> %lld", ints[i], (long long)h, (long long)w);
            json_array_append_new(changes, json_string(line));
            n++;
        }
    }
    if (json_is_true(json_object_get(have, "DisableScaleIn"))) {
        json_array_append_new(changes, json_string("DisableScaleIn: true -> false"));
        n++;
    }
    return n;
}

/* Reports a difference as drift (the desired state has not changed since it
 * was last applied) or as an update. Takes changes. */
static void note_diff(struct app_ctx *ctx, bool drift, const char *resource, const char *name,
                      json_t *changes)
{
    if (drift) {
        char what[512] = "", label[300];
        const json_t *c;
        size_t i, len;
        /* "MinCapacity: 1 -> 2, MaxCapacity: 9 -> 4" */
        json_array_foreach(changes, i, c)
        {
            len = strlen(what);
            snprintf(what + len, sizeof(what) - len, "%s%s", i ? ", " : "",
                     json_string_value(c) ? json_string_value(c) : "");
        }
        snprintf(label, sizeof(label), "%s %s", resource, name);
        app_note_drift(ctx, label, what[0] ? what : "settings");
        if (ctx->plan) {
            app_note_change(ctx, "update", resource, name, changes);
            return;
        }
        json_decref(changes);
        return;
    }
    app_note_change(ctx, "update", resource, name, changes);
}

/* DescribeScalableTargets of both slots: targets[slot] (new references or
 * NULL). Returns 0 or -1. */
static int describe_targets(struct app_ctx *ctx, json_t *targets[2])
{
    char rid[2][300];
    json_t *out = NULL, *t;
    size_t i;

    targets[0] = targets[1] = NULL;
    resource_id(ctx, 0, rid[0], sizeof(rid[0]));
    resource_id(ctx, 1, rid[1], sizeof(rid[1]));
    if (app_read(ctx, "scalable target", AS_SERVICE, "DescribeScalableTargets",
                 json_pack("{s:s, s:s, s:[s,s]}", "ServiceNamespace", AS_NAMESPACE,
                           "ScalableDimension", AS_DIMENSION, "ResourceIds", rid[0], rid[1]),
                 &out, NULL) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "ScalableTargets"), i, t)
    {
        const char *r = str_or(json_object_get(t, "ResourceId"), "");
        for (int s = 0; s < 2; s++)
            if (strcmp(r, rid[s]) == 0 && targets[s] == NULL)
                targets[s] = json_incref(t);
    }
    json_decref(out);
    return 0;
}

static bool suspended(const json_t *target)
{
    const json_t *s = json_object_get(target, "SuspendedState");
    return json_is_true(json_object_get(s, "DynamicScalingInSuspended")) ||
           json_is_true(json_object_get(s, "DynamicScalingOutSuspended")) ||
           json_is_true(json_object_get(s, "ScheduledScalingSuspended"));
}

/* RegisterScalableTarget for a slot (create or update); err as app_write. */
static int register_target(struct app_ctx *ctx, int slot, json_int_t min, json_int_t max,
                           struct aws_error *err)
{
    json_t *in = target_key(ctx, slot);

    json_object_set_new(in, "MinCapacity", json_integer(min));
    json_object_set_new(in, "MaxCapacity", json_integer(max));
    json_object_set_new(in, "SuspendedState",
                        json_pack("{s:b, s:b, s:b}", "DynamicScalingInSuspended", 0,
                                  "DynamicScalingOutSuspended", 0, "ScheduledScalingSuspended", 0));
    return app_write(ctx, "scalable target", AS_SERVICE, "RegisterScalableTarget", in, NULL, err) <
                   0
               ? -1
               : 0;
}

static bool not_found(const struct aws_error *err)
{
    return strcmp(err->code, "ObjectNotFoundException") == 0;
}

/* The AWS error for a target whose ECS service does not exist (yet). */
static bool service_missing(const struct aws_error *err)
{
    return strcmp(err->code, "ValidationException") == 0 &&
           strstr(err->message, "doesn't exist") != NULL;
}

/* ---- converge ------------------------------------------------------------ */

enum app_step autoscaling_converge(struct app_ctx *ctx)
{
    json_t *res = app_resources(ctx, "autoscaling");
    json_t *targets[2] = {NULL, NULL}, *want = NULL, *policies = NULL, *have = NULL;
    json_t *summary = NULL, *names = NULL, *changes;
    enum app_step step = APP_STEP_FAILED;
    int stable = autoscaling_stable_slot(ctx), other = 1 - stable;
    json_int_t max = app_spec_int(ctx, "scaling.max", 3), min;
    char rid[300], hash[17];
    const char *applied;
    bool drift, waiting, created = false;
    struct aws_error err;
    const char *key;
    json_t *cfg, *p;
    size_t i;

    resource_id(ctx, stable, rid, sizeof(rid));
    if (service_entry(ctx, stable) == NULL && !ctx->plan) {
        app_fail(ctx, false, "autoscaling: service %s is not known yet",
                 autoscaling_service_name(ctx, stable));
        app_wait(ctx, AS_WAIT_MS);
        return APP_STEP_WAITING;
    }
    min = desired_min(ctx, res, max);
    want = desired_policies(ctx, stable, &waiting);
    if (want == NULL) {
        if (waiting) {
            app_wait(ctx, AS_WAIT_MS);
            step = APP_STEP_WAITING;
        }
        goto out;
    }
    summary = json_pack("{s:s, s:I, s:I, s:O}", "resourceId", rid, "min", min, "max", max,
                        "policies", want);
    digest(summary, hash);
    applied = json_string_value(json_object_get(res, "applied"));
    drift = applied != NULL && strcmp(applied, hash) == 0;

    if (describe_targets(ctx, targets) != 0)
        goto out;

    /* The stable slot moved (a rollout promoted the other slot): the old
     * slot's target goes first, so it no longer holds that service up. */
    if (targets[other] != NULL) {
        char old[300];
        resource_id(ctx, other, old, sizeof(old));
        app_note_change(ctx, "delete", "scalable target", old, NULL);
        if (app_write(ctx, "scalable target", AS_SERVICE, "DeregisterScalableTarget",
                      target_key(ctx, other), NULL, &err) < 0 &&
            !not_found(&err))
            goto out;
    }

    if (targets[stable] == NULL) {
        char line[128];
        snprintf(line, sizeof(line), "MinCapacity: %lld, MaxCapacity: %lld", (long long)min,
                 (long long)max);
        app_note_change(ctx, "create", "scalable target", rid, json_pack("[s]", line));
        if (register_target(ctx, stable, min, max, &err) != 0) {
            if (service_missing(&err)) {
                ctx->terminal = false; /* the service concern is still creating it */
                app_wait(ctx, AS_WAIT_MS);
                step = APP_STEP_WAITING;
            }
            goto out;
        }
        created = true;
    } else {
        json_int_t hmin = int_or(json_object_get(targets[stable], "MinCapacity"), -1);
        json_int_t hmax = int_or(json_object_get(targets[stable], "MaxCapacity"), -1);
        char line[128];
        changes = json_array();
        if (hmin != min) {
            snprintf(line, sizeof(line), "MinCapacity: %lld -> %lld", (long long)hmin,
                     (long long)min);
            json_array_append_new(changes, json_string(line));
        }
        if (hmax != max) {
            snprintf(line, sizeof(line), "MaxCapacity: %lld -> %lld", (long long)hmax,
                     (long long)max);
            json_array_append_new(changes, json_string(line));
        }
        if (suspended(targets[stable]))
            json_array_append_new(changes, json_string("SuspendedState: suspended -> active"));
        if (json_array_size(changes) > 0) {
            note_diff(ctx, drift, "scalable target", rid, changes);
            if (register_target(ctx, stable, min, max, NULL) != 0)
                goto out;
        } else {
            json_decref(changes);
        }
    }

    /* Policies: a target that did not exist has none. */
    if (!created) {
        if (app_read(ctx, "scaling policy", AS_SERVICE, "DescribeScalingPolicies",
                     target_key(ctx, stable), &have, NULL) != 0)
            goto out;
    }
    policies = json_object_get(have, "ScalingPolicies");
    json_object_foreach(want, key, cfg)
    {
        json_t *found = NULL, *in;
        json_array_foreach(policies, i, p)
        {
            if (strcmp(str_or(json_object_get(p, "PolicyName"), ""), key) == 0)
                found = p;
        }
        changes = json_array();
        if (found == NULL) {
            app_note_change(ctx, "create", "scaling policy", key, NULL);
            json_decref(changes);
        } else if (policy_diff(cfg, found, changes) > 0) {
            note_diff(ctx, drift, "scaling policy", key, changes);
        } else {
            json_decref(changes);
            continue;
        }
        in = target_key(ctx, stable);
        json_object_set_new(in, "PolicyName", json_string(key));
        json_object_set_new(in, "PolicyType", json_string("TargetTrackingScaling"));
        json_object_set(in, "TargetTrackingScalingPolicyConfiguration", cfg);
        if (app_write(ctx, "scaling policy", AS_SERVICE, "PutScalingPolicy", in, NULL, NULL) < 0)
            goto out;
    }
    /* Policies of ours the spec no longer asks for; others are left alone. */
    json_array_foreach(policies, i, p)
    {
        const char *pn = str_or(json_object_get(p, "PolicyName"), "");
        json_t *in;
        if (!is_ours(ctx, pn) || json_object_get(want, pn) != NULL)
            continue;
        app_note_change(ctx, "delete", "scaling policy", pn, NULL);
        in = target_key(ctx, stable);
        json_object_set_new(in, "PolicyName", json_string(pn));
        if (app_write(ctx, "scaling policy", AS_SERVICE, "DeleteScalingPolicy", in, NULL, &err) <
                0 &&
            !not_found(&err))
            goto out;
    }

    names = json_array();
    json_object_foreach(want, key, cfg) json_array_append_new(names, json_string(key));
    json_object_set_new(res, "resourceId", json_string(rid));
    json_object_set_new(res, "stableSlot", json_string(app_slot_name(stable)));
    json_object_set_new(res, "minCapacity", json_integer(min));
    json_object_set_new(res, "maxCapacity", json_integer(max));
    json_object_set(res, "policyNames", names);
    if (!ctx->plan)
        json_object_set_new(res, "applied", json_string(hash));
    step = APP_STEP_READY;
out:
    json_decref(names);
    json_decref(targets[0]);
    json_decref(targets[1]);
    json_decref(want);
    json_decref(summary);
    json_decref(have);
    return step;
}

/* ---- the rollout's pin ----------------------------------------------------- */

int autoscaling_pin_min(struct app_ctx *ctx, int min_capacity)
{
    json_t *res = app_resources(ctx, "autoscaling");
    json_t *targets[2] = {NULL, NULL};
    int stable = autoscaling_stable_slot(ctx), rc = -1;
    json_int_t max = app_spec_int(ctx, "scaling.max", 3);
    json_int_t min = min_capacity < 0 ? app_spec_int(ctx, "scaling.min", 1) : min_capacity;
    char rid[300], line[128];

    if (min > max)
        min = max;
    resource_id(ctx, stable, rid, sizeof(rid));
    if (describe_targets(ctx, targets) != 0)
        goto out;
    if (targets[stable] == NULL ||
        int_or(json_object_get(targets[stable], "MinCapacity"), -1) != min ||
        int_or(json_object_get(targets[stable], "MaxCapacity"), -1) != max ||
        suspended(targets[stable])) {
        snprintf(line, sizeof(line), "MinCapacity: -> %lld (%s)", (long long)min,
                 min_capacity < 0 ? "rollout pin removed" : "pinned during the rollout");
        app_note_change(ctx, targets[stable] == NULL ? "create" : "update", "scalable target", rid,
                        json_pack("[s]", line));
        if (register_target(ctx, stable, min, max, NULL) != 0)
            goto out;
    }
    if (!ctx->plan) {
        if (min_capacity < 0)
            json_object_del(res, "pinnedMin");
        else
            json_object_set_new(res, "pinnedMin", json_integer(min));
    }
    rc = 0;
out:
    json_decref(targets[0]);
    json_decref(targets[1]);
    return rc;
}

/* ---- delete ---------------------------------------------------------------- */

enum app_step autoscaling_delete(struct app_ctx *ctx)
{
    json_t *targets[2] = {NULL, NULL};
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    char rid[300];

    if (describe_targets(ctx, targets) != 0)
        goto out;
    /* Deregistering a scalable target also deletes its scaling policies
     * (and the alarms AWS made for them). */
    for (int s = 0; s < 2; s++) {
        if (targets[s] == NULL)
            continue;
        resource_id(ctx, s, rid, sizeof(rid));
        app_note_change(ctx, "delete", "scalable target", rid, NULL);
        if (app_write(ctx, "scalable target", AS_SERVICE, "DeregisterScalableTarget",
                      target_key(ctx, s), NULL, &err) < 0 &&
            !not_found(&err))
            goto out;
    }
    json_object_del(ctx->resources, "autoscaling");
    step = APP_STEP_READY;
out:
    json_decref(targets[0]);
    json_decref(targets[1]);
    return step;
}
