/* The "service" concern of an Application: the task definition of the
 * current revision and the two ECS services, slots a and b (DESIGN.md,
 * Rollouts), each behind its own target group. Worker threads; one
 * reconcile's context.
 *
 * This concern creates both slots' services (the stable slot,
 * status.rollout.stableSlot or "a" at first, with the current revision at
 * spec.scaling.min tasks; the other at 0) and keeps their network, load
 * balancer, deployment and tag settings. Which revision runs on which slot
 * and the slots' task counts during a rollout belong to the rollout concern
 * (rollout.c), through service_register_revision, service_scale and
 * service_set_stable (service.h). Outside that, the stable slot's
 * desiredCount belongs to the autoscaler and is only clamped into
 * [min, max] (aviary never fights the autoscaler). Once the stable slot
 * serves the current revision, old task definitions beyond the newest few
 * are deregistered (once per revision). */
#include "reconcilers/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"
#include "reconcilers/taskdef.h"

#define PLACEHOLDER         "(known after apply)"
#define WAIT_TASKS_MS       3000 /* while ECS starts, replaces or drains tasks */
#define MIN_HEALTHY_PERCENT 100  /* full capacity during a replacement */
#define MAX_PERCENT         200
#define ARN_MAX             512

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static json_int_t jint(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

static bool is_code(const struct aws_error *err, const char *code)
{
    return err->kind == AWS_ERR_SERVICE && strcmp(err->code, code) == 0;
}

static void forget_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

/* What the earlier concerns recorded and this one needs. */
struct inputs {
    const char *subnets_src; /* for error messages */
    const json_t *subnets;   /* network.taskSubnets */
    const char *sg;          /* network.tasksSecurityGroup */
    bool public_ip;          /* network.assignPublicIp */
    const char *tg[2];       /* loadbalancer.targetGroupArns */
    bool cluster_known;      /* false in plan mode before the cluster exists */
    json_t *placeholder;     /* plan mode: subnets not known yet (owned) */
};

static int read_inputs(struct app_ctx *ctx, struct inputs *in)
{
    const json_t *cl = app_resources(ctx, "cluster");
    const json_t *net = app_resources(ctx, "network");
    const json_t *lb = app_resources(ctx, "loadbalancer");
    const json_t *tgs = json_object_get(lb, "targetGroupArns");
    const char *missing = NULL;

    memset(in, 0, sizeof(*in));
    in->subnets = json_object_get(net, "taskSubnets");
    in->sg = json_string_value(json_object_get(net, "tasksSecurityGroup"));
    in->public_ip = json_is_true(json_object_get(net, "assignPublicIp"));
    in->tg[0] = json_string_value(json_array_get(tgs, 0));
    in->tg[1] = json_string_value(json_array_get(tgs, 1));
    in->cluster_known = json_string_value(json_object_get(cl, "clusterArn")) != NULL &&
                        strcmp(jstr(cl, "clusterArn"), PLACEHOLDER) != 0;
    if (json_string_value(json_object_get(cl, "executionRoleArn")) == NULL)
        missing = "cluster.executionRoleArn";
    else if (json_array_size(in->subnets) == 0)
        missing = "network.taskSubnets";
    else if (in->sg == NULL)
        missing = "network.tasksSecurityGroup";
    else if (in->tg[0] == NULL || in->tg[1] == NULL)
        missing = "loadbalancer.targetGroupArns";
    if (missing != NULL && ctx->plan) {
        /* Planning from nothing: the earlier concerns only planned. */
        if (json_array_size(in->subnets) == 0) {
            in->placeholder = json_pack("[s]", PLACEHOLDER);
            in->subnets = in->placeholder;
        }
        if (in->sg == NULL)
            in->sg = PLACEHOLDER;
        if (in->tg[0] == NULL)
            in->tg[0] = PLACEHOLDER;
        if (in->tg[1] == NULL)
            in->tg[1] = PLACEHOLDER;
        return 0;
    }
    if (missing != NULL) {
        app_fail(ctx, false, "service: %s is not known (the concern that records it has not run)",
                 missing);
        return -1;
    }
    return 0;
}

static json_t *desired_network(const struct inputs *in)
{
    return json_pack("{s:{s:O, s:[s], s:s}}", "awsvpcConfiguration", "subnets", in->subnets,
                     "securityGroups", in->sg, "assignPublicIp",
                     in->public_ip ? "ENABLED" : "DISABLED");
}

static json_t *desired_load_balancers(struct app_ctx *ctx, const struct inputs *in, int slot)
{
    return json_pack("[{s:s, s:s, s:I}]", "targetGroupArn", in->tg[slot], "containerName", "app",
                     "containerPort", app_spec_int(ctx, "port", 80));
}

static json_t *desired_deployment_config(void)
{
    return json_pack("{s:{s:b, s:b}, s:i, s:i}", "deploymentCircuitBreaker", "enable", 0,
                     "rollback", 0, "maximumPercent", MAX_PERCENT, "minimumHealthyPercent",
                     MIN_HEALTHY_PERCENT);
}

/* The tags of a slot's service running `revision`. */
static json_t *desired_tags(struct app_ctx *ctx, int slot, const char *revision)
{
    return app_tags_list(ctx, "key", "value", APP_TAG_SLOT, app_slot_name(slot), APP_TAG_REVISION,
                         revision != NULL ? revision : "", NULL);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Two string arrays hold the same set (order ignored). */
static bool same_set(const json_t *a, const json_t *b)
{
    size_t n = json_array_size(a), i;
    const char **x, **y;
    bool eq = true;

    if (n != json_array_size(b))
        return false;
    if (n == 0)
        return true;
    x = calloc(n, sizeof(*x));
    y = calloc(n, sizeof(*y));
    if (x == NULL || y == NULL) {
        free(x);
        free(y);
        return false;
    }
    for (i = 0; i < n; i++) {
        x[i] = json_string_value(json_array_get(a, i));
        y[i] = json_string_value(json_array_get(b, i));
        if (x[i] == NULL || y[i] == NULL)
            eq = false;
    }
    if (eq) {
        qsort(x, n, sizeof(*x), cmp_str);
        qsort(y, n, sizeof(*y), cmp_str);
        for (i = 0; i < n && eq; i++)
            eq = strcmp(x[i], y[i]) == 0;
    }
    free(x);
    free(y);
    return eq;
}

static bool network_equal(const json_t *live, const json_t *want)
{
    const json_t *l =
        json_object_get(json_object_get(live, "networkConfiguration"), "awsvpcConfiguration");
    const json_t *w = json_object_get(want, "awsvpcConfiguration");
    const char *lip = jstr(l, "assignPublicIp");

    return l != NULL && same_set(json_object_get(l, "subnets"), json_object_get(w, "subnets")) &&
           same_set(json_object_get(l, "securityGroups"), json_object_get(w, "securityGroups")) &&
           strcmp(lip[0] ? lip : "DISABLED", jstr(w, "assignPublicIp")) == 0;
}

static bool load_balancers_equal(const json_t *live, const json_t *want)
{
    const json_t *l = json_object_get(live, "loadBalancers");
    const json_t *a = json_array_get(l, 0), *b = json_array_get(want, 0);

    return json_array_size(l) == 1 &&
           strcmp(jstr(a, "targetGroupArn"), jstr(b, "targetGroupArn")) == 0 &&
           strcmp(jstr(a, "containerName"), jstr(b, "containerName")) == 0 &&
           jint(a, "containerPort") == jint(b, "containerPort");
}

static bool deployment_config_equal(const json_t *live)
{
    const json_t *dc = json_object_get(live, "deploymentConfiguration");
    const json_t *cb = json_object_get(dc, "deploymentCircuitBreaker");

    return !json_is_true(json_object_get(cb, "enable")) &&
           !json_is_true(json_object_get(cb, "rollback")) &&
           jint(dc, "maximumPercent") == MAX_PERCENT &&
           jint(dc, "minimumHealthyPercent") == MIN_HEALTHY_PERCENT;
}

static void add_change(json_t *changes, const char *field, const char *from, const char *to)
{
    char line[1024];

    snprintf(line, sizeof(line), "%.64s: %.400s -> %.400s", field, from, to);
    json_array_append_new(changes, json_string(line));
}

static void add_change_int(json_t *changes, const char *field, json_int_t from, json_int_t to)
{
    char a[32], b[32];

    snprintf(a, sizeof(a), "%lld", (long long)from);
    snprintf(b, sizeof(b), "%lld", (long long)to);
    add_change(changes, field, a, b);
}

/* The stable slot: status.rollout.stableSlot, else recovered from AWS (the
 * slot running more tasks), else a. */
static int stable_slot(struct app_ctx *ctx, const json_t *live[2])
{
    const char *s = jstr(json_object_get(ctx->status, "rollout"), "stableSlot");

    if (strcmp(s, "a") == 0)
        return 0;
    if (strcmp(s, "b") == 0)
        return 1;
    if (live[0] != NULL && live[1] != NULL)
        return jint(live[1], "desiredCount") > jint(live[0], "desiredCount") ? 1 : 0;
    return live[1] != NULL && live[0] == NULL ? 1 : 0;
}

/* One DescribeServices for both slots. live[i] is the slot's ACTIVE or
 * DRAINING service (borrowed from *out) or NULL. A cluster that does not
 * exist (plan mode, or deletion after it went) means no services. */
static int describe_slots(struct app_ctx *ctx, json_t **out, const json_t *live[2])
{
    struct aws_error err;
    size_t i;
    const json_t *s;

    live[0] = live[1] = NULL;
    *out = NULL;
    if (app_read(ctx, ctx->names.cluster, "ecs", "DescribeServices",
                 json_pack("{s:s, s:[s, s], s:[s]}", "cluster", ctx->names.cluster, "services",
                           ctx->names.service[0], ctx->names.service[1], "include", "TAGS"),
                 out, &err) != 0) {
        if (!is_code(&err, "ClusterNotFoundException"))
            return -1;
        forget_error(ctx);
        return 0;
    }
    json_array_foreach(json_object_get(*out, "services"), i, s)
    {
        const char *status = jstr(s, "status");
        if (strcmp(status, "INACTIVE") == 0)
            continue;
        for (int slot = 0; slot < 2; slot++)
            if (strcmp(jstr(s, "serviceName"), ctx->names.service[slot]) == 0)
                live[slot] = s;
    }
    return 0;
}

static enum app_step create_slot(struct app_ctx *ctx, const struct inputs *in, int slot,
                                 bool stable, const char *td, json_t **created)
{
    json_int_t count = stable ? app_spec_int(ctx, "scaling.min", 1) : 0;
    json_t *req;

    app_note_change(ctx, "create", "ecs:service", ctx->names.service[slot], NULL);
    req = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o, s:I, s:s, s:{s:s}, s:o, s:b, s:s}",
                    "cluster", ctx->names.cluster, "serviceName", ctx->names.service[slot],
                    "taskDefinition", td, "loadBalancers", desired_load_balancers(ctx, in, slot),
                    "desiredCount", count, "launchType", "FARGATE", "deploymentConfiguration",
                    desired_deployment_config(), "networkConfiguration", desired_network(in),
                    "healthCheckGracePeriodSeconds",
                    (json_int_t)app_spec_seconds(ctx, "healthCheck.gracePeriod", 30),
                    "schedulingStrategy", "REPLICA", "deploymentController", "type", "ECS", "tags",
                    desired_tags(ctx, slot, ctx->req->revision), "enableECSManagedTags", 1,
                    "propagateTags", "SERVICE");
    if (app_write(ctx, ctx->names.service[slot], "ecs", "CreateService", req, created, NULL) < 0)
        return APP_STEP_FAILED;
    return APP_STEP_READY;
}

/* Brings an existing slot's service to what it should be; *updated (may
 * stay NULL) is the service after an UpdateService. The task definition
 * and (but for the stable slot's clamp into [min, max]) the desired count
 * are the rollout concern's. */
static enum app_step update_slot(struct app_ctx *ctx, const struct inputs *in, int slot,
                                 bool stable, const json_t *live, json_t **updated)
{
    const char *rev = ctx->req->revision ? ctx->req->revision : "";
    const char *live_rev = app_tag_value(json_object_get(live, "tags"), APP_TAG_REVISION);
    const char *live_slot = app_tag_value(json_object_get(live, "tags"), APP_TAG_SLOT);
    json_t *req =
        json_pack("{s:s, s:s}", "cluster", ctx->names.cluster, "service", ctx->names.service[slot]);
    json_t *changes = json_array(), *drift = json_array();
    json_t *net = desired_network(in), *lbs = desired_load_balancers(ctx, in, slot);
    json_int_t count = jint(live, "desiredCount");
    json_int_t min = app_spec_int(ctx, "scaling.min", 1), max = app_spec_int(ctx, "scaling.max", 3);
    json_int_t grace = app_spec_seconds(ctx, "healthCheck.gracePeriod", 30);
    enum app_step step = APP_STEP_FAILED;

    if (stable && (count < min || count > max)) {
        json_int_t want = count < min ? min : max;
        add_change_int(changes, "desiredCount", count, want);
        json_object_set_new(req, "desiredCount", json_integer(want));
    }
    if (!network_equal(live, net)) {
        add_change(drift, "networkConfiguration", "(changed)",
                   "(subnets, security group, public IP)");
        json_object_set(req, "networkConfiguration", net);
    }
    if (!load_balancers_equal(live, lbs)) {
        add_change(changes, "loadBalancers", "(changed)", in->tg[slot]);
        json_object_set(req, "loadBalancers", lbs);
    }
    if (jint(live, "healthCheckGracePeriodSeconds") != grace) {
        add_change_int(changes, "healthCheckGracePeriodSeconds",
                       jint(live, "healthCheckGracePeriodSeconds"), grace);
        json_object_set_new(req, "healthCheckGracePeriodSeconds", json_integer(grace));
    }
    if (!deployment_config_equal(live)) {
        add_change(drift, "deploymentConfiguration", "(changed)", "circuit breaker off, 100%/200%");
        json_object_set_new(req, "deploymentConfiguration", desired_deployment_config());
    }
    if (strcmp(jstr(live, "propagateTags"), "SERVICE") != 0) {
        add_change(drift, "propagateTags", jstr(live, "propagateTags"), "SERVICE");
        json_object_set_new(req, "propagateTags", json_string("SERVICE"));
    }
    if (!json_is_true(json_object_get(live, "enableECSManagedTags"))) {
        add_change(drift, "enableECSManagedTags", "false", "true");
        json_object_set_new(req, "enableECSManagedTags", json_true());
    }
    if (json_array_size(changes) + json_array_size(drift) > 0) {
        if (json_array_size(drift) > 0) {
            char what[512] = "";
            size_t i;
            const json_t *d;
            json_array_foreach(drift, i, d)
            {
                size_t used = strlen(what);
                snprintf(what + used, sizeof(what) - used, "%s%s", used ? "; " : "",
                         json_string_value(d));
            }
            app_note_drift(ctx, ctx->names.service[slot], what);
        }
        json_array_extend(changes, drift);
        app_note_change(ctx, "update", "ecs:service", ctx->names.service[slot],
                        json_deep_copy(changes));
        if (app_write(ctx, ctx->names.service[slot], "ecs", "UpdateService", json_incref(req),
                      updated, NULL) < 0)
            goto out;
    }
    /* The revision tag says what the slot runs (service_register_revision
     * keeps it); only a missing one is filled in here. */
    if (live_rev == NULL || live_slot == NULL || strcmp(live_slot, app_slot_name(slot)) != 0) {
        if (app_write(ctx, ctx->names.service[slot], "ecs", "TagResource",
                      json_pack("{s:s, s:o}", "resourceArn", jstr(live, "serviceArn"), "tags",
                                desired_tags(ctx, slot, live_rev != NULL ? live_rev : rev)),
                      NULL, NULL) < 0)
            goto out;
    }
    step = APP_STEP_READY;
out:
    json_decref(req);
    json_decref(changes);
    json_decref(drift);
    json_decref(net);
    json_decref(lbs);
    return step;
}

static void record_service(json_t *list, const char *name, const json_t *svc)
{
    json_array_append_new(
        list, json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", name, "arn", jstr(svc, "serviceArn"),
                        "taskDefinition", jstr(svc, "taskDefinition"), "desiredCount",
                        jint(svc, "desiredCount"), "runningCount", jint(svc, "runningCount")));
}

/* Once the stable slot serves the current revision (status.rollout, written
 * by the rollout concern), old task definitions go: once per revision. */
static int prune_once(struct app_ctx *ctx, json_t *res, const json_t *in_use)
{
    const json_t *rollout = json_object_get(ctx->status, "rollout");
    const char *rev = ctx->req->revision ? ctx->req->revision : "";

    if (strcmp(jstr(rollout, "phase"), "Idle") != 0 ||
        strcmp(jstr(rollout, "stableRevision"), rev) != 0 ||
        strcmp(jstr(res, "prunedFor"), rev) == 0)
        return 0;
    if (taskdef_prune(ctx, in_use) != 0)
        return -1;
    json_object_set_new(res, "prunedFor", json_string(rev));
    return 0;
}

enum app_step service_converge(struct app_ctx *ctx)
{
    struct inputs in;
    struct taskdef_pass pass = {0};
    json_t *described = NULL, *res = app_resources(ctx, "service"), *after[2] = {NULL, NULL};
    json_t *services = NULL, *in_use = NULL;
    const json_t *live[2], *now_svc[2];
    char td[2][ARN_MAX];
    enum app_step step = APP_STEP_FAILED;
    bool waiting = false;
    int stable, writes = 0;

    if (read_inputs(ctx, &in) != 0)
        goto out;
    if (in.cluster_known) {
        if (describe_slots(ctx, &described, live) != 0)
            goto out;
        writes = ctx->writes;
    } else {
        live[0] = live[1] = NULL;
    }
    stable = stable_slot(ctx, live);
    for (int slot = 0; slot < 2; slot++) {
        if (taskdef_ensure(ctx, &pass, slot, td[slot], sizeof(td[slot])) != APP_STEP_READY)
            goto out;
    }
    for (int slot = 0; slot < 2; slot++) {
        const json_t *s = live[slot];
        if (s != NULL && !app_tags_owned(ctx, json_object_get(s, "tags"))) {
            app_fail(ctx, false,
                     "%s: an ECS service of this name exists in cluster %s without the aviary "
                     "tags of application %s; aviary does not change it",
                     ctx->names.service[slot], ctx->names.cluster, ctx->names.app);
            goto out;
        }
        if (s == NULL) {
            if (create_slot(ctx, &in, slot, slot == stable, td[slot], &after[slot]) !=
                APP_STEP_READY)
                goto out;
            waiting = true;
        } else if (strcmp(jstr(s, "status"), "DRAINING") == 0) {
            /* Deleted by hand and still draining: it can be made again
             * once ECS has stopped its tasks. */
            app_note_drift(ctx, ctx->names.service[slot],
                           "service deleted; recreated once drained");
            waiting = true;
        } else if (update_slot(ctx, &in, slot, slot == stable, s, &after[slot]) != APP_STEP_READY) {
            goto out;
        }
    }
    now_svc[0] = after[0] ? json_object_get(after[0], "service") : live[0];
    now_svc[1] = after[1] ? json_object_get(after[1], "service") : live[1];
    services = json_array();
    in_use = json_array();
    for (int slot = 0; slot < 2; slot++) {
        record_service(services, ctx->names.service[slot], now_svc[slot]);
        json_array_append_new(in_use, json_string(td[slot]));
        if (live[slot] != NULL)
            json_array_append_new(in_use, json_string(jstr(live[slot], "taskDefinition")));
    }
    json_object_set_new(res, "taskDefinitionArn", json_string(td[stable]));
    json_object_set(res, "services", services);
    json_object_set_new(res, "stableSlot", json_string(app_slot_name(stable)));
    if (ctx->plan) {
        step = APP_STEP_READY;
        goto out;
    }
    if (waiting) {
        app_wait(ctx, WAIT_TASKS_MS);
        step = APP_STEP_WAITING;
        goto out;
    }
    step = prune_once(ctx, res, in_use) == 0 ? APP_STEP_READY : APP_STEP_FAILED;
out:
    /* Nothing written since the DescribeServices: the rollout reuses it. */
    json_decref(ctx->services_observed);
    ctx->services_observed = NULL;
    if (step != APP_STEP_FAILED && described != NULL && ctx->writes == writes) {
        ctx->services_observed = described;
        described = NULL;
    }
    json_decref(services);
    json_decref(in_use);
    json_decref(after[0]);
    json_decref(after[1]);
    json_decref(described);
    json_decref(in.placeholder);
    return step;
}

/* ---- the rollout concern's entry points (service.h) ---------------------- */

/* resources.service.services[slot] (recorded by service_converge), or NULL. */
static json_t *service_entry(struct app_ctx *ctx, int slot)
{
    json_t *e =
        json_array_get(json_object_get(app_resources(ctx, "service"), "services"), (size_t)slot);
    return json_is_object(e) ? e : NULL;
}

static int update_service(struct app_ctx *ctx, int slot, json_t *fields)
{
    json_t *in =
        json_pack("{s:s, s:s}", "cluster", ctx->names.cluster, "service", ctx->names.service[slot]);

    json_object_update(in, fields);
    json_decref(fields);
    return app_write(ctx, ctx->names.service[slot], "ecs", "UpdateService", in, NULL, NULL) < 0 ? -1
                                                                                                : 0;
}

static int tag_service(struct app_ctx *ctx, int slot, json_t *tags)
{
    const char *arn = jstr(service_entry(ctx, slot), "arn");

    if (arn[0] == '\0') {
        json_decref(tags);
        app_fail(ctx, false, "%s: the service's ARN is not known yet", ctx->names.service[slot]);
        return -1;
    }
    return app_write(ctx, ctx->names.service[slot], "ecs", "TagResource",
                     json_pack("{s:s, s:o}", "resourceArn", arn, "tags", tags), NULL, NULL) < 0
               ? -1
               : 0;
}

int service_register_revision(struct app_ctx *ctx, int slot, const char *revision)
{
    struct taskdef_pass pass = {0};
    const char *rev = ctx->req->revision ? ctx->req->revision : "";
    char td[ARN_MAX], line[ARN_MAX + 64];

    if (slot < 0 || slot > 1 || revision == NULL || strcmp(revision, rev) != 0) {
        app_fail(ctx, false, "service: slot %d cannot run revision %s (the current one is %s)",
                 slot, revision ? revision : "(none)", rev);
        return -1;
    }
    if (taskdef_ensure(ctx, &pass, slot, td, sizeof(td)) != APP_STEP_READY)
        return -1;
    snprintf(line, sizeof(line), "taskDefinition: -> %s (revision %s)", td, rev);
    app_note_change(ctx, "update", "ecs:service", ctx->names.service[slot], json_pack("[s]", line));
    if (update_service(ctx, slot, json_pack("{s:s}", "taskDefinition", td)) != 0)
        return -1;
    if (!ctx->plan && service_entry(ctx, slot) != NULL)
        json_object_set_new(service_entry(ctx, slot), "taskDefinition", json_string(td));
    return tag_service(ctx, slot, desired_tags(ctx, slot, rev));
}

int service_scale(struct app_ctx *ctx, int slot, int count)
{
    char line[64];

    if (slot < 0 || slot > 1 || count < 0) {
        app_fail(ctx, false, "service: cannot scale slot %d to %d", slot, count);
        return -1;
    }
    snprintf(line, sizeof(line), "desiredCount: -> %d", count);
    app_note_change(ctx, "update", "ecs:service", ctx->names.service[slot], json_pack("[s]", line));
    if (update_service(ctx, slot, json_pack("{s:i}", "desiredCount", count)) != 0)
        return -1;
    if (!ctx->plan && service_entry(ctx, slot) != NULL)
        json_object_set_new(service_entry(ctx, slot), "desiredCount", json_integer(count));
    return 0;
}

int service_set_stable(struct app_ctx *ctx, int slot, const char *revision, int64_t since_ms)
{
    char since[24];

    if (slot < 0 || slot > 1) {
        app_fail(ctx, false, "service: no slot %d", slot);
        return -1;
    }
    if (!ctx->plan)
        json_object_set_new(app_resources(ctx, "service"), "stableSlot",
                            json_string(app_slot_name(slot)));
    snprintf(since, sizeof(since), "%lld", (long long)since_ms);
    return tag_service(ctx, slot,
                       app_tags_list(ctx, "key", "value", APP_TAG_SLOT, app_slot_name(slot),
                                     APP_TAG_REVISION, revision ? revision : "",
                                     SERVICE_TAG_STABLE_SINCE, since, NULL));
}

/* Deletion: both slots scaled to 0 and deleted (force), waited for until
 * INACTIVE or gone, then every task definition of this application is
 * deregistered. Services without the aviary tags are left alone. */
enum app_step service_delete(struct app_ctx *ctx)
{
    json_t *described = NULL;
    const json_t *live[2];
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    bool left = false;

    if (describe_slots(ctx, &described, live) != 0)
        goto out;
    for (int slot = 0; slot < 2; slot++) {
        const json_t *s = live[slot];
        if (s == NULL || !app_tags_owned(ctx, json_object_get(s, "tags")))
            continue;
        left = true;
        if (strcmp(jstr(s, "status"), "ACTIVE") != 0)
            continue; /* DRAINING: ECS stops the tasks */
        if (jint(s, "desiredCount") > 0 &&
            app_write(ctx, ctx->names.service[slot], "ecs", "UpdateService",
                      json_pack("{s:s, s:s, s:i}", "cluster", ctx->names.cluster, "service",
                                ctx->names.service[slot], "desiredCount", 0),
                      NULL, NULL) < 0)
            goto out;
        app_note_change(ctx, "delete", "ecs:service", ctx->names.service[slot], NULL);
        if (app_write(ctx, ctx->names.service[slot], "ecs", "DeleteService",
                      json_pack("{s:s, s:s, s:b}", "cluster", ctx->names.cluster, "service",
                                ctx->names.service[slot], "force", 1),
                      NULL, &err) < 0) {
            if (!is_code(&err, "ServiceNotFoundException") &&
                !is_code(&err, "ServiceNotActiveException"))
                goto out;
            forget_error(ctx);
        }
    }
    if (left) {
        app_wait(ctx, WAIT_TASKS_MS);
        step = APP_STEP_WAITING;
        goto out;
    }
    step = taskdef_delete_all(ctx);
    if (step == APP_STEP_READY)
        json_object_del(ctx->resources, "service");
out:
    json_decref(described);
    return step;
}
