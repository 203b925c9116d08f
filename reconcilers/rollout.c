/* The rollout concern: observe both slots (rollout_observe.c), measure a
 * due analysis round, step the progressive-delivery machine, execute its
 * actions through the service, load balancer and autoscaling concerns,
 * deliver alerts, publish the canary weight and store the state (see
 * rollout.h). Worker threads. */
#include "reconcilers/rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/alerts.h"
#include "reconcilers/analysis.h"
#include "reconcilers/autoscaling.h"
#include "reconcilers/loadbalancer.h"
#include "reconcilers/metrics_batcher.h"
#include "reconcilers/rollout_internal.h"
#include "reconcilers/rollout_machine.h"
#include "reconcilers/service.h"
#include "reconcilers/status.h"

static void forget_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

/* The reconcile's clock in unix milliseconds: req->now_ms, or req->now in
 * whole seconds when a caller (an older test driver) did not set it. Every
 * rollout timer and requeue delay is computed from it, so a round starts
 * right when its window (plus ROLLOUT_SLACK_MS) ends, not up to 1 s later. */
static int64_t clock_ms(const struct app_ctx *ctx)
{
    return ctx->req->now_ms > 0 ? ctx->req->now_ms : (int64_t)ctx->req->now * 1000;
}

/* ---- state -------------------------------------------------------------------- */

static json_t *rollout_object(struct app_ctx *ctx)
{
    json_t *r = json_object_get(ctx->status, "rollout");

    if (!json_is_object(r)) {
        r = json_object();
        json_object_set_new(ctx->status, "rollout", r);
    }
    return r;
}

/* The state in status.rollout; when there is none (first reconcile, or a
 * lost status), the stable slot comes from the services' tags: the slot
 * that became stable last and still runs a revision of ours. */
static void load_state(struct app_ctx *ctx, const struct rollout_observed *o,
                       struct rollout_state *st)
{
    const json_t *r = json_object_get(ctx->status, "rollout");
    int best = -1;

    if (json_object_size(r) > 0 && rollout_state_from_json(r, st) == 0)
        return; /* else malformed: seeded from AWS like a lost one */
    rollout_state_init(st);
    for (int slot = 0; slot < 2; slot++) {
        if (o->stable_since[slot] > 0 && o->rev[slot][0] != '\0' &&
            (best < 0 || o->stable_since[slot] > o->stable_since[best]))
            best = slot;
    }
    if (best >= 0) {
        st->stable_slot = best;
        snprintf(st->stable_revision, sizeof(st->stable_revision), "%s", o->rev[best]);
    }
}

/* ---- analysis ------------------------------------------------------------------ */

/* The batcher's owner key of this application's rounds. */
static void owner_key(const struct app_ctx *ctx, char *key, size_t len)
{
    snprintf(key, len, "Application/%s", ctx->names.app);
}

/* The GetMetricData queries of a round of st (new reference), or NULL with
 * a message in err. */
static json_t *round_queries(struct app_ctx *ctx, const struct rollout_spec *rs,
                             const struct rollout_state *st, char *err, size_t errlen)
{
    const json_t *lb = json_object_get(ctx->resources, "loadbalancer");
    const json_t *tgd = json_object_get(lb, "tgDimensions");
    struct analysis_target t;

    memset(&t, 0, sizeof(t));
    t.application = ctx->names.app;
    rollout_analysis_slots(st, &t.canary_slot, &t.canary_revision, &t.stable_slot,
                           &t.stable_revision);
    t.load_balancer = json_string_value(json_object_get(lb, "lbDimension"));
    t.target_group[0] = json_string_value(json_array_get(tgd, 0));
    t.target_group[1] = json_string_value(json_array_get(tgd, 1));
    t.cluster = autoscaling_cluster_name(ctx);
    t.service[0] = autoscaling_service_name(ctx, 0);
    t.service[1] = autoscaling_service_name(ctx, 1);
    return analysis_build_queries(&rs->analysis, &t, err, errlen);
}

/* Announces the next round of st to the batcher, so that whichever
 * application's reconcile reaches the batcher first when that window is
 * due fetches it too (analysis windows of the same interval end at the same
 * instants for every application). Nothing when no round is coming or in
 * plan mode; a failure only costs this application its own call later. */
static void announce_round(struct app_ctx *ctx, const struct rollout_spec *rs,
                           const struct rollout_state *st)
{
    int64_t at = rollout_next_round_at(rs, st), ws, we;
    json_t *qs;
    struct aws_error aerr;
    char key[METRICS_BATCHER_KEY_MAX], err[256];
    struct metrics_batcher *b;

    if (ctx->plan || at == 0 || !rollout_analysis_due(rs, st, at, &ws, &we))
        return;
    b = metrics_batcher_shared(ctx->aws);
    qs = round_queries(ctx, rs, st, err, sizeof(err));
    if (b != NULL && qs != NULL) {
        owner_key(ctx, key, sizeof(key));
        metrics_batcher_expect(b, key, qs, ws / 1000, we / 1000, &aerr);
    }
    json_decref(qs);
}

/* Measures the due window, if any. Returns true and fills *round (and the
 * measurements) when a round was taken. */
static bool measure(struct app_ctx *ctx, const struct rollout_spec *rs,
                    const struct rollout_state *st, int64_t now_ms, struct analysis_round *round,
                    struct analysis_measurement *meas, bool *retry)
{
    int64_t ws, we;
    json_t *qs = NULL, *results = NULL;
    struct aws_error aerr;
    char err[256], key[METRICS_BATCHER_KEY_MAX];
    bool ok = false;

    *retry = false;
    if (!rollout_analysis_due(rs, st, now_ms, &ws, &we))
        return false;
    qs = round_queries(ctx, rs, st, err, sizeof(err));
    if (qs == NULL) {
        char msg[320];
        snprintf(msg, sizeof(msg), "analysis not measured: %s", err);
        status_add_event(ctx->status, "Warning", "AnalysisError", msg, ctx->req->now);
        *retry = true;
        return false;
    }
    if (ctx->plan) {
        json_decref(qs);
        return false; /* plan mode measures nothing */
    }
    ctx->reads++;
    owner_key(ctx, key, sizeof(key));
    if (metrics_batcher_fetch_as(metrics_batcher_shared(ctx->aws), key, qs, ws / 1000, we / 1000,
                                 &results, &aerr) != 0) {
        char msg[700];
        snprintf(msg, sizeof(msg),
                 "GetMetricData for the window ending %lld failed: %.100s: %.400s",
                 (long long)(we / 1000), aerr.code, aerr.message);
        status_add_event(ctx->status, "Warning", "AnalysisError", msg, ctx->req->now);
        *retry = true; /* the window stays due */
        goto out;
    }
    analysis_evaluate(&rs->analysis, results, ws, we, meas, round);
    ok = true;
out:
    json_decref(qs);
    json_decref(results);
    return ok;
}

/* ---- actions ------------------------------------------------------------------- */

static void describe_action(const struct rollout_action *a, char *out, size_t len)
{
    switch (a->kind) {
    case ROLLOUT_ACT_REGISTER:
        snprintf(out, len, "slot %s runs revision %s", app_slot_name(a->slot), a->revision);
        break;
    case ROLLOUT_ACT_SCALE:
        snprintf(out, len, "slot %s desiredCount -> %d", app_slot_name(a->slot), a->count);
        break;
    case ROLLOUT_ACT_SET_WEIGHTS:
        snprintf(out, len, "listener weights: stable slot %s %d%%, canary %d%%",
                 app_slot_name(a->stable_slot), 100 - a->canary_weight, a->canary_weight);
        break;
    case ROLLOUT_ACT_PIN_MIN:
        snprintf(out, len, "stable minimum pinned at %d", a->min);
        break;
    case ROLLOUT_ACT_UNPIN_MIN:
        snprintf(out, len, "stable minimum pin released");
        break;
    case ROLLOUT_ACT_SET_STABLE:
        snprintf(out, len, "slot %s (revision %s) becomes stable", app_slot_name(a->slot),
                 a->revision);
        break;
    case ROLLOUT_ACT_TEST_LISTENER:
        if (a->slot >= 0)
            snprintf(out, len, "test listener -> slot %s", app_slot_name(a->slot));
        else
            snprintf(out, len, "test listener removed");
        break;
    case ROLLOUT_ACT_ALERT:
        snprintf(out, len, "alert %s", a->alert != NULL ? a->alert->id : "");
        break;
    }
}

static json_t *delivery_records(struct app_ctx *ctx)
{
    json_t *r = rollout_object(ctx);
    json_t *d = json_object_get(r, "alertDelivery");

    if (!json_is_object(d)) {
        d = json_object();
        json_object_set_new(r, "alertDelivery", d);
    }
    return d;
}

/* Drops the delivery records of alerts no longer in the outbox. */
static void prune_delivery(struct app_ctx *ctx, const struct rollout_state *st)
{
    json_t *d = delivery_records(ctx);
    const char *id;
    json_t *v;
    void *tmp;

    json_object_foreach_safe(d, tmp, id, v)
    {
        bool pending = false;
        for (size_t i = 0; i < st->n_outbox; i++)
            pending = pending || strcmp(st->outbox[i].id, id) == 0;
        if (!pending)
            json_object_del(d, id);
    }
    if (json_object_size(d) == 0)
        json_object_del(rollout_object(ctx), "alertDelivery");
}

static int publish_weight(struct app_ctx *ctx, double value)
{
    json_t *in =
        json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}], s:f, s:s, s:I}]}", "Namespace",
                  ROLLOUT_METRIC_NAMESPACE, "MetricData", "MetricName", ROLLOUT_METRIC_NAME,
                  "Dimensions", "Name", "Application", "Value", ctx->names.app, "Value", value,
                  "Unit", "Percent", "Timestamp", (json_int_t)ctx->req->now);

    if (app_write(ctx, "canary weight metric", "cloudwatch", "PutMetricData", in, NULL, NULL) < 0) {
        forget_error(ctx); /* the dashboard misses a point; the rollout goes on */
        return -1;
    }
    return 0;
}

/* Executes one non-alert action. Returns 0 or -1 (ctx->error). */
static int execute(struct app_ctx *ctx, const struct rollout_spec *rs,
                   const struct rollout_action *a)
{
    switch (a->kind) {
    case ROLLOUT_ACT_REGISTER:
        return service_register_revision(ctx, a->slot, a->revision);
    case ROLLOUT_ACT_SCALE:
        return service_scale(ctx, a->slot, a->count);
    case ROLLOUT_ACT_SET_WEIGHTS:
        return loadbalancer_set_weights(ctx, a->stable_slot, a->canary_weight);
    case ROLLOUT_ACT_PIN_MIN:
        return autoscaling_pin_min(ctx, a->min);
    case ROLLOUT_ACT_UNPIN_MIN:
        return autoscaling_pin_min(ctx, -1);
    case ROLLOUT_ACT_SET_STABLE:
        return service_set_stable(ctx, a->slot, a->revision, clock_ms(ctx));
    case ROLLOUT_ACT_TEST_LISTENER:
        return loadbalancer_set_test_listener(ctx, a->slot, rs->test_port);
    case ROLLOUT_ACT_ALERT:
        return 0;
    }
    return 0;
}

/* Level-based repairs the machine does not emit: the stable slot runs the
 * stable revision when that is the current one (its task definition was
 * changed by hand), and the blue/green test listener exists exactly while
 * the state says so. */
static int repair(struct app_ctx *ctx, const struct rollout_spec *rs,
                  const struct rollout_state *st, const struct rollout_observed *o)
{
    const json_t *lb = json_object_get(ctx->resources, "loadbalancer");
    bool has_test = json_string_value(json_object_get(lb, "testListenerArn")) != NULL;
    const char *rev = ctx->req->revision;

    if (st->phase == ROLLOUT_IDLE && st->stable_revision[0] != '\0' && rev != NULL &&
        strcmp(st->stable_revision, rev) == 0 && o->svc[st->stable_slot] != NULL &&
        strcmp(o->rev[st->stable_slot], rev) != 0) {
        char what[200];
        snprintf(what, sizeof(what), "runs %s instead of revision %s",
                 o->td[st->stable_slot][0] ? o->td[st->stable_slot] : "nothing", rev);
        app_note_drift(ctx, ctx->names.service[st->stable_slot], what);
        if (service_register_revision(ctx, st->stable_slot, rev) != 0)
            return -1;
    } else if (st->phase == ROLLOUT_IDLE && st->stable_revision[0] != '\0' && rev != NULL &&
               strcmp(st->stable_revision, rev) == 0 && o->svc[st->stable_slot] != NULL &&
               o->td[st->stable_slot][0] != '\0') {
        /* The current revision, but not its current task definition (the
         * application's roles changed, say): ECS replaces the tasks. */
        char key[96];
        const char *want;
        snprintf(key, sizeof(key), "%s/%s", rev, app_slot_name(st->stable_slot));
        want = json_string_value(json_object_get(
            json_object_get(json_object_get(ctx->resources, "service"), "taskDefinitions"), key));
        if (want != NULL && strcmp(want, "(known after apply)") != 0 &&
            strcmp(want, o->td[st->stable_slot]) != 0 &&
            service_register_revision(ctx, st->stable_slot, rev) != 0)
            return -1;
    }
    if (has_test != st->test_listener) {
        int slot = st->test_listener ? st->canary_slot : -1;
        if (loadbalancer_set_test_listener(ctx, slot, rs->test_port) != 0)
            return -1;
    }
    return 0;
}

/* ---- the concern ------------------------------------------------------------------ */

/* The slot whose health a rollout-driven requeue does not read unless the
 * decision needs it: the stable side, consulted only when traffic goes back
 * to it (a rollback, which changes the phase). -1: read both. */
static int lazy_health_slot(const struct rollout_state *st)
{
    int slot = -1;

    if (st->phase == ROLLOUT_PROGRESSING || st->phase == ROLLOUT_PAUSED ||
        st->phase == ROLLOUT_PROMOTING)
        slot = st->stable_slot;
    else if (st->phase == ROLLOUT_SCALING_DOWN)
        slot = st->scale_down_slot;
    return slot == st->canary_slot ? -1 : slot;
}

static void fill_obs(struct app_ctx *ctx, const struct rollout_observed *o,
                     const struct rollout_state *st, enum rollout_command cmd,
                     struct rollout_obs *obs)
{
    memset(obs, 0, sizeof(*obs));
    obs->application = ctx->names.app;
    obs->dashboard_url = json_string_value(json_object_get(ctx->status, "dashboardUrl"));
    obs->desired_revision = ctx->req->revision;
    obs->command = cmd;
    if (st->stable_revision[0] != '\0' && o->desired[st->stable_slot] > 0)
        obs->full_count = o->desired[st->stable_slot];
    else
        obs->full_count = (int)app_spec_int(ctx, "scaling.min", 1);
    for (int slot = 0; slot < 2; slot++) {
        obs->slot[slot].revision = o->rev[slot];
        obs->slot[slot].desired = o->desired[slot];
        obs->slot[slot].healthy = o->healthy[slot];
    }
}

static bool has_action(const struct rollout_result *r, bool (*match)(enum rollout_action_kind))
{
    for (size_t i = 0; i < r->n_actions; i++) {
        if (match(r->actions[i].kind))
            return true;
    }
    return false;
}

static bool is_not_alert(enum rollout_action_kind k)
{
    return k != ROLLOUT_ACT_ALERT;
}

static bool is_register(enum rollout_action_kind k)
{
    return k == ROLLOUT_ACT_REGISTER;
}

static int64_t ms_field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

bool rollout_tick_due(const struct reconcile_request *req, const json_t *status)
{
    const json_t *ro = json_object_get(status, "rollout");
    const json_t *rr = json_object_get(json_object_get(status, "resources"), "rollout");
    const json_t *gen = json_object_get(status, "observedGeneration");
    const char *phase = json_string_value(json_object_get(ro, "phase"));
    const char *synced = status_condition(status, "Synced");
    const char *want;
    int64_t now = req->now_ms > 0 ? req->now_ms : (int64_t)req->now * 1000;
    int64_t wake = ms_field(rr, ROLLOUT_KEY_WAKE_AT), full = ms_field(rr, ROLLOUT_KEY_FULL_AT);

    if (req->command != NULL || req->deleting || req->revision == NULL || phase == NULL ||
        !json_is_integer(gen) || json_integer_value(gen) != req->generation || synced == NULL ||
        strcmp(synced, "True") != 0)
        return false;
    if (strcmp(phase, "Progressing") == 0 || strcmp(phase, "Paused") == 0 ||
        strcmp(phase, "Promoting") == 0 || strcmp(phase, "RollingBack") == 0)
        want = json_string_value(json_object_get(ro, "canaryRevision"));
    else if (strcmp(phase, "ScalingDown") == 0)
        want = json_string_value(json_object_get(ro, "stableRevision"));
    else
        return false;
    if (want == NULL || strcmp(want, req->revision) != 0)
        return false;
    if (wake == 0 || full == 0 || now + ROLLOUT_TICK_EARLY_MS < wake)
        return false;
    return now >= full && now - full < ROLLOUT_FULL_MAX_AGE_MS;
}

/* One reconcile of the rollout. tick: a rollout-driven requeue
 * (rollout_tick_due): the other concerns did not run, the services are
 * described here, the stable side's health is read only when the decision
 * needs it, and *handled is false (nothing changed) when the situation
 * needs the full pass (no state, a slot missing, a revision to register). */
static enum app_step converge_rollout(struct app_ctx *ctx, struct reconcile_result *res, bool tick,
                                      bool *handled)
{
    struct rollout_spec rs;
    struct rollout_state st, next;
    struct rollout_obs obs;
    struct rollout_result r;
    struct rollout_observed o;
    struct analysis_round round;
    struct analysis_measurement *meas = NULL;
    enum app_step step = APP_STEP_FAILED;
    enum rollout_command cmd;
    int64_t now_ms = clock_ms(ctx);
    const json_t *saved = json_object_get(ctx->status, "rollout");
    bool have_state, measured = false, fetch_retry = false, weights_set = false, switched = false;
    bool all_done = false, acted = false;
    long alert_wait = 0, own_wait = 0;
    char err[256];
    size_t i;

    *handled = true;
    memset(&o, 0, sizeof(o));
    if (rollout_spec_parse(ctx->spec, &rs, err, sizeof(err)) != 0) {
        app_fail(ctx, true, "spec.%s", err);
        return APP_STEP_FAILED;
    }
    if (rollout_command_parse(ctx->req->command, &cmd) != 0) {
        status_add_event(ctx->status, "Warning", "Command", "unknown command refused",
                         ctx->req->now);
        if (res != NULL)
            res->command_done = true;
        cmd = ROLLOUT_CMD_NONE;
    }
    have_state = json_object_size(saved) > 0 && rollout_state_from_json(saved, &st) == 0;
    if (!have_state) {
        if (tick) {
            *handled = false;
            return APP_STEP_READY;
        }
        if (rollout_observe(ctx, &o, -1) != 0)
            goto out;
        load_state(ctx, &o, &st); /* seeded from the services' tags */
    }
    meas = calloc(ANALYSIS_MAX_METRICS, sizeof(*meas));
    if (meas == NULL) {
        app_fail(ctx, false, "rollout: out of memory");
        goto out;
    }
    /* The round first: it needs only the state and the dimensions in
     * status, so the rounds of all applications due at the same instant
     * reach the batcher together. */
    measured = measure(ctx, &rs, &st, now_ms, &round, meas, &fetch_retry);
    if (have_state && rollout_observe(ctx, &o, tick ? lazy_health_slot(&st) : -1) != 0)
        goto out;
    if (tick &&
        (o.svc[st.stable_slot] == NULL || (st.canary_slot >= 0 && o.svc[st.canary_slot] == NULL))) {
        *handled = false;
        step = APP_STEP_READY;
        goto out;
    }
    fill_obs(ctx, &o, &st, cmd, &obs);
    obs.round = measured ? &round : NULL;
    rollout_step(&rs, &st, &obs, now_ms, &next, &r);
    if (tick && (next.phase != st.phase || has_action(&r, is_not_alert))) {
        /* The decision moves something: decide again with every slot's
         * health (the machine is a pure function of its inputs). */
        bool again = false;
        for (int slot = 0; slot < 2; slot++) {
            if (o.health_read[slot])
                continue;
            if (rollout_observe_health(ctx, &o, slot) != 0)
                goto out;
            again = true;
        }
        if (again) {
            fill_obs(ctx, &o, &st, cmd, &obs);
            obs.round = measured ? &round : NULL;
            rollout_step(&rs, &st, &obs, now_ms, &next, &r);
        }
    }
    if (tick && has_action(&r, is_register)) {
        *handled = false; /* the service concern's task definitions first */
        step = APP_STEP_READY;
        goto out;
    }

    if (ctx->plan) {
        for (i = 0; i < r.n_actions; i++) {
            char what[300];
            describe_action(&r.actions[i], what, sizeof(what));
            app_note_change(ctx, "update", "rollout", rollout_action_name(r.actions[i].kind),
                            json_pack("[s]", what));
        }
        step = APP_STEP_READY;
        goto out;
    }

    /* Actions in order; an alert never blocks, any other failure stops. */
    for (i = 0; i < r.n_actions; i++) {
        const struct rollout_action *a = &r.actions[i];
        if (a->kind == ROLLOUT_ACT_ALERT)
            continue;
        if (a->kind == ROLLOUT_ACT_SCALE && st.phase == next.phase &&
            (st.phase == ROLLOUT_IDLE || st.phase == ROLLOUT_ROLLED_BACK)) {
            char what[96];
            snprintf(what, sizeof(what), "desiredCount %d; the idle slot runs no tasks",
                     o.desired[a->slot]);
            app_note_drift(ctx, ctx->names.service[a->slot], what);
        }
        acted = true;
        if (execute(ctx, &rs, a) != 0) {
            if (!weights_set)
                goto out; /* the old state stays; the next reconcile decides again */
            break;        /* traffic moved: keep the new state, the rest re-converges */
        }
        if (a->kind == ROLLOUT_ACT_SET_WEIGHTS) {
            weights_set = true;
            switched = switched || a->stable_slot != st.stable_slot;
        }
    }
    all_done = i == r.n_actions;
    if (all_done && repair(ctx, &rs, &next, &o) != 0)
        goto out;
    /* Alerts: one ALERT action per outbox entry; delivered ones leave the
     * outbox (which moves the entries, so work on a copy). */
    {
        struct rollout_alert pending[ROLLOUT_OUTBOX_MAX];
        size_t n = next.n_outbox;

        memcpy(pending, next.outbox, n * sizeof(pending[0]));
        for (size_t k = 0; k < n; k++) {
            json_t *records = delivery_records(ctx), *rec = json_object_get(records, pending[k].id);
            long wait = 0;

            if (!json_is_object(rec)) {
                rec = json_object();
                json_object_set_new(records, pending[k].id, rec);
            }
            if (alerts_deliver(ctx, NULL, &pending[k], &next, rec, now_ms, &wait) ==
                ALERTS_DELIVERED) {
                char msg[200];
                snprintf(msg, sizeof(msg), "alert %.120s delivered", pending[k].id);
                status_add_event(ctx->status, "Normal", "AlertSent", msg, ctx->req->now);
                json_object_del(records, pending[k].id);
                rollout_alert_delivered(&next, pending[k].id);
            } else if (wait > 0 && (alert_wait == 0 || wait < alert_wait)) {
                alert_wait = wait;
            }
        }
    }

    /* Commit. */
    if (measured) {
        json_t *ro = rollout_object(ctx), *hist = json_object_get(ro, "analysis");
        if (!json_is_array(hist)) {
            hist = json_array();
            json_object_set_new(ro, "analysis", hist);
        }
        analysis_history_append(hist, meas, rs.analysis.n_metrics, st.step,
                                rollout_measured_weight(&st));
    }
    rollout_state_to_json(&next, rollout_object(ctx));
    prune_delivery(ctx, &next);
    for (i = 0; i < r.n_events; i++)
        status_add_event(ctx->status, r.events[i].type, r.events[i].reason, r.events[i].message,
                         ctx->req->now);
    if (res != NULL && r.command_done)
        res->command_done = true;
    json_object_set_new(app_resources(ctx, "service"), "stableSlot",
                        json_string(app_slot_name(next.stable_slot)));
    rollout_set_conditions(&next, ctx->status, ctx->req->now);
    status_set_phase(ctx->status, rollout_status_phase(&next));
    if ((next.phase == ROLLOUT_IDLE || next.phase == ROLLOUT_SCALING_DOWN) &&
        next.stable_revision[0] != '\0')
        json_object_set_new(ctx->status, "observedRevision", json_string(next.stable_revision));

    /* The canary weight for the dashboard: every reconcile of a running
     * rollout, and whenever the listener changed. */
    if (rollout_active(&next) || weights_set) {
        double w = next.phase == ROLLOUT_ROLLED_BACK || next.phase == ROLLOUT_ROLLING_BACK ? 0
                   : switched                                                              ? 100
                              : next.weight;
        publish_weight(ctx, w);
    }

    own_wait = r.requeue_after_ms;
    if (alert_wait > 0 && (own_wait <= 0 || alert_wait < own_wait))
        own_wait = alert_wait;
    if (fetch_retry && (own_wait <= 0 || ROLLOUT_FETCH_RETRY_MS < own_wait))
        own_wait = ROLLOUT_FETCH_RETRY_MS;
    if (own_wait > 0)
        app_wait(ctx, own_wait);
    step = all_done && ctx->error[0] == '\0' ? APP_STEP_READY : APP_STEP_FAILED;
    /* Bookkeeping of the requeue path: when the rollout wants to come back
     * (its own requeues may skip the other concerns), and when the whole
     * stack was last observed. After a requeue that moved something, the
     * next reconcile is a full one, right away (autoscaling follows the
     * stable slot and its pin, the other concerns see the new state). */
    {
        json_t *rr = app_resources(ctx, "rollout");

        if (own_wait > 0)
            json_object_set_new(rr, ROLLOUT_KEY_WAKE_AT, json_integer(now_ms + own_wait));
        else
            json_object_del(rr, ROLLOUT_KEY_WAKE_AT);
        if (!tick && step == APP_STEP_READY)
            json_object_set_new(rr, ROLLOUT_KEY_FULL_AT, json_integer(now_ms));
        if (tick && (acted || next.phase != st.phase)) {
            json_object_del(rr, ROLLOUT_KEY_FULL_AT);
            app_wait(ctx, 1);
        }
    }
    announce_round(ctx, &rs, &next);
out:
    free(meas);
    rollout_observed_clear(&o);
    return step;
}

enum app_step rollout_converge(struct app_ctx *ctx, struct reconcile_result *res)
{
    bool handled;

    return converge_rollout(ctx, res, false, &handled);
}

enum app_step rollout_tick(struct app_ctx *ctx, struct reconcile_result *res, bool *handled)
{
    return converge_rollout(ctx, res, true, handled);
}

enum app_step rollout_delete(struct app_ctx *ctx)
{
    (void)ctx;
    return APP_STEP_READY;
}
