/* The Application reconciler: runs the concerns in dependency order to
 * converge the stack (or in reverse to delete it), and turns their outcome
 * into phase, conditions, events and the queue's next step. Worker threads. */
#include "reconcilers/app.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "reconcilers/rollout.h"
#include "reconcilers/status.h"

struct concern {
    const char *name;
    enum app_step (*converge)(struct app_ctx *ctx);
    enum app_step (*delete)(struct app_ctx *ctx);
    /* instead of converge, for a concern that reports into the result (the
     * rollout consumes manual commands) */
    enum app_step (*converge_res)(struct app_ctx *ctx, struct reconcile_result *res);
};

/* Dependency order: each concern may use the resources of those before it. */
static const struct concern concerns[] = {
    {"network", network_converge, network_delete, NULL},
    {"registry", registry_converge, registry_delete, NULL},
    {"cluster", cluster_converge, cluster_delete, NULL},
    {"loadbalancer", loadbalancer_converge, loadbalancer_delete, NULL},
    {"service", service_converge, service_delete, NULL},
    /* which revision runs where, the weights, the analysis: after the
     * slots exist, before autoscaling follows the stable slot and its pin */
    {"rollout", NULL, rollout_delete, rollout_converge},
    {"autoscaling", autoscaling_converge, autoscaling_delete, NULL},
    {"notifications", notifications_converge, notifications_delete, NULL},
    {"dashboard", dashboard_converge, dashboard_delete, NULL},
};

#define N_CONCERNS (sizeof(concerns) / sizeof(concerns[0]))

/* Default wait while AWS finishes something (NAT gateway, load balancer,
 * tasks): short enough to notice quickly, long enough to stay quiet. */
#define APP_DEFAULT_WAIT_MS 5000

static void finish_failed(struct app_ctx *ctx, const char *step, struct reconcile_result *res)
{
    int64_t now = ctx->req->now;

    if (status_set_condition(ctx->status, "Synced", "False",
                             ctx->terminal ? "InvalidConfiguration" : "AwsError", ctx->error, now))
        status_add_event(ctx->status, "Warning",
                         ctx->terminal ? "InvalidConfiguration" : "AwsError", ctx->error, now);
    json_object_set_new(ctx->status, "failedStep", json_string(step));
    if (ctx->terminal)
        status_set_phase(ctx->status, PHASE_FAILED);
    res->outcome = ctx->terminal ? RECONCILE_INVALID : RECONCILE_ERROR;
    snprintf(res->error, sizeof(res->error), "%s", ctx->error);
}

/* A rollout-driven requeue (rollout_tick_due): only the rollout decides,
 * from its state and the few reads its decision needs, so every canary due
 * at the same instant reaches the GetMetricData batcher together instead of
 * one by one behind ~30 reads of an unchanged stack. Returns false when the
 * full pass must run instead. Conditions, phase and observedGeneration are
 * the last full pass's (the rollout updates its own). */
static bool rollout_requeue(struct app_ctx *ctx, struct reconcile_result *res)
{
    bool handled = false;
    enum app_step step;

    if (ctx->plan || !rollout_tick_due(ctx->req, ctx->status))
        return false;
    step = rollout_tick(ctx, res, &handled);
    if (!handled)
        return false;
    if (step == APP_STEP_FAILED) {
        finish_failed(ctx, "rollout", res);
        return true;
    }
    res->outcome = ctx->requeue_ms > 0 ? RECONCILE_REQUEUE_AFTER : RECONCILE_DONE;
    res->requeue_after_ms = ctx->requeue_ms;
    return true;
}

static void converge(struct app_ctx *ctx, struct reconcile_result *res)
{
    int64_t now = ctx->req->now;
    char msg[256];

    if (rollout_requeue(ctx, res))
        return;

    for (size_t i = 0; i < N_CONCERNS; i++) {
        enum app_step step = concerns[i].converge_res != NULL ? concerns[i].converge_res(ctx, res)
                                                              : concerns[i].converge(ctx);
        if (step == APP_STEP_FAILED) {
            finish_failed(ctx, concerns[i].name, res);
            return;
        }
        if (step == APP_STEP_WAITING) {
            snprintf(msg, sizeof(msg), "waiting for %s", concerns[i].name);
            status_set_condition(ctx->status, "Synced", "False", "Provisioning", msg, now);
            if (status_condition(ctx->status, "Available") == NULL ||
                strcmp(status_condition(ctx->status, "Available"), "True") != 0)
                status_set_phase(ctx->status, PHASE_PROVISIONING);
            res->outcome = RECONCILE_REQUEUE_AFTER;
            res->requeue_after_ms = ctx->requeue_ms > 0 ? ctx->requeue_ms : APP_DEFAULT_WAIT_MS;
            return;
        }
    }
    json_object_del(ctx->status, "failedStep");
    /* Every concern is READY: AWS matches this spec (a rollout of its
     * revision may still be progressing; status.rollout says so). */
    if (!ctx->plan)
        json_object_set_new(ctx->status, "observedGeneration", json_integer(ctx->req->generation));
    if (status_set_condition(ctx->status, "Synced", "True", "Converged", "AWS matches the manifest",
                             now))
        status_add_event(ctx->status, "Normal", "Converged", "AWS matches the manifest", now);
    if (json_string_value(
            json_object_get(json_object_get(ctx->status, "rollout"), "stableRevision")) != NULL)
        status_set_condition(ctx->status, "Available", "True", "Serving",
                             json_string_value(json_object_get(ctx->status, "endpoint"))
                                 ? json_string_value(json_object_get(ctx->status, "endpoint"))
                                 : "serving",
                             now);
    else
        status_set_condition(ctx->status, "Available", "False", "FirstDeployment",
                             "the first revision is not serving yet", now);
    /* The rollout logic owns Progressing/Paused/RolledBack; only a settled
     * application is reported Ready here. */
    {
        const char *phase = json_string_value(json_object_get(ctx->status, "phase"));
        if (phase == NULL || strcmp(phase, "Pending") == 0 || strcmp(phase, "Provisioning") == 0 ||
            strcmp(phase, "Failed") == 0)
            status_set_phase(ctx->status, PHASE_READY);
    }
    res->outcome = ctx->requeue_ms > 0 ? RECONCILE_REQUEUE_AFTER : RECONCILE_DONE;
    res->requeue_after_ms = ctx->requeue_ms;
}

static void teardown(struct app_ctx *ctx, struct reconcile_result *res)
{
    int64_t now = ctx->req->now;
    char msg[256];

    status_set_phase(ctx->status, PHASE_DELETING);
    if (strcmp(app_spec_str(ctx, "deletionPolicy", "Delete"), "Retain") == 0) {
        status_add_event(ctx->status, "Normal", "Retained",
                         "deletionPolicy Retain: every AWS resource is left in place", now);
        res->deleted = true;
        res->outcome = RECONCILE_DONE;
        return;
    }
    for (size_t i = N_CONCERNS; i-- > 0;) {
        enum app_step step = concerns[i].delete(ctx);
        if (step == APP_STEP_FAILED) {
            finish_failed(ctx, concerns[i].name, res);
            status_set_phase(ctx->status, PHASE_DELETING);
            if (res->outcome == RECONCILE_INVALID)
                res->outcome = RECONCILE_ERROR; /* deletion keeps retrying */
            return;
        }
        if (step == APP_STEP_WAITING) {
            snprintf(msg, sizeof(msg), "deleting %s", concerns[i].name);
            status_set_condition(ctx->status, "Synced", "False", "Deleting", msg, now);
            res->outcome = RECONCILE_REQUEUE_AFTER;
            res->requeue_after_ms = ctx->requeue_ms > 0 ? ctx->requeue_ms : APP_DEFAULT_WAIT_MS;
            return;
        }
    }
    res->deleted = true;
    res->outcome = RECONCILE_DONE;
}

/* Elapsed time of this reconcile (not the injectable wall clock). */
static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void application_reconcile(const struct reconcile_request *req, json_t *status,
                           struct reconcile_result *res, bool plan, json_t *plan_actions)
{
    struct app_ctx ctx;
    int64_t started = monotonic_ms();

    app_ctx_init(&ctx, req, status, plan);
    if (req->aws == NULL) {
        app_fail(&ctx, true, "no AWS client: aviary was started without AWS access");
        finish_failed(&ctx, "setup", res);
    } else if (req->deleting && !plan) {
        teardown(&ctx, res);
    } else {
        converge(&ctx, res);
    }
    if (plan && plan_actions != NULL)
        json_array_extend(plan_actions, ctx.plan_actions);
    json_object_set_new(status, "lastReconcile",
                        json_pack("{s:i, s:i}", "reads", ctx.reads, "writes", ctx.writes));
    app_ctx_clear(&ctx);
    /* The waits were computed from req->now_ms, the reconcile's start; the
     * queue counts them from its end: take the time spent off, so a round
     * or a pause due at an instant starts then, not one reconcile later. */
    if (res->outcome == RECONCILE_REQUEUE_AFTER && res->requeue_after_ms > 1) {
        long spent = (long)(monotonic_ms() - started);
        res->requeue_after_ms = spent < res->requeue_after_ms ? res->requeue_after_ms - spent : 1;
    }
}

static void application_reconcile_entry(const struct reconcile_request *req, json_t *status,
                                        struct reconcile_result *res)
{
    application_reconcile(req, status, res, false, NULL);
}

const struct reconciler application_reconciler = {"Application", application_reconcile_entry};
