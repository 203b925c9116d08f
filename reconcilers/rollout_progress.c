/* The rollout machine's forward path: starting a rollout, canary steps and
 * their gates, blue/green and all-at-once sizing, pauses, promotion, the
 * scale-down after it, the idle clean-up, analysis verdicts and manifest
 * changes during a rollout. Part of rollout_step (rollout_machine.c); any
 * thread (no shared state, no clock, no I/O). */
#include <stdio.h>
#include <string.h>

#include "reconcilers/duration.h"
#include "reconcilers/rollout_machine.h"
#include "reconcilers/rollout_machine_internal.h"

/* True when the canary slot runs the canary revision with n healthy tasks;
 * otherwise runs the progress deadline (which may start a rollback). */
static bool canary_ready(struct rollout_ctx *c, int n)
{
    struct rollout_state *s = c->s;
    char detail[ANALYSIS_DETAIL_MAX];

    if (rm_slot_healthy(c, s->canary_slot, s->canary_revision, n)) {
        s->progress_deadline_at = 0;
        return true;
    }
    if (s->progress_deadline_at == 0)
        s->progress_deadline_at = c->now + c->spec->progress_deadline_ms;
    if (c->now >= s->progress_deadline_at) {
        const struct rollout_slot_obs *o = &c->obs->slot[s->canary_slot];
        char d[16];

        snprintf(detail, sizeof(detail), "%d of %d new tasks healthy within progressDeadline %s",
                 strcmp(rm_obs_rev(o), s->canary_revision) == 0 ? o->healthy : 0, n,
                 duration_format(c->spec->progress_deadline_ms, d, sizeof(d)));
        rm_begin_rollback(c, "ProgressDeadlineExceeded", NULL, detail);
        return false;
    }
    rm_wake_at(c, s->progress_deadline_at);
    rm_wake_at(c, c->now + ROLLOUT_POLL_MS);
    return false;
}

static void reset_analysis(struct rollout_state *s)
{
    s->analysis_since = 0;
    s->last_analysis_at = 0;
    s->failures = 0;
    s->successes = 0;
    s->inconclusive_in_a_row = 0;
    s->last_verdict = ANALYSIS_NONE;
}

void rm_start_rollout(struct rollout_ctx *c, const char *rev)
{
    struct rollout_state *s = c->s;
    const struct rollout_slot_obs *st;

    s->initial = s->stable_revision[0] == '\0';
    s->strategy = s->initial ? ROLLOUT_ALL_AT_ONCE : c->spec->strategy;
    s->rollout_seq++;
    s->alert_seq = 0;
    rm_copy_str(s->canary_revision, sizeof(s->canary_revision), rev);
    s->rolled_back_revision[0] = '\0';
    s->previous_revision[0] = '\0';
    s->canary_slot = s->initial ? s->stable_slot : 1 - s->stable_slot;
    s->scale_down_slot = -1;
    s->scale_down_at = 0;
    s->phase = ROLLOUT_PROGRESSING;
    s->step = 0;
    s->weight = 0;
    s->started_at = c->now;
    s->step_started_at = c->now;
    s->progress_deadline_at = 0;
    s->rollback_started_at = 0;
    reset_analysis(s);
    s->paused_reason[0] = '\0';
    s->has_decision = false;
    memset(&s->decision, 0, sizeof(s->decision));
    st = &c->obs->slot[s->stable_slot];
    if (!s->initial && s->pinned_min < 0 && st->desired > 0) {
        struct rollout_action *a = rm_act(c, ROLLOUT_ACT_PIN_MIN);

        s->pinned_min = st->desired;
        if (a != NULL)
            a->min = s->pinned_min;
    }
    rm_event(c, "Normal", "RolloutStarted", "revision %s (%s) on slot %s%s", rev,
             rollout_strategy_name(s->strategy), rm_slot_name(s->canary_slot),
             s->initial ? ", first deployment" : "");
}

/* The listener goes to the new revision: it becomes stable, the old slot
 * keeps running for scaleDownDelay. */
static void switch_traffic(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    int old = s->stable_slot;

    rm_act_weights(c, s->canary_slot, 0);
    rm_act_stable(c, s->canary_slot, s->canary_revision);
    if (s->test_listener)
        rm_act_test_listener(c, -1);
    rm_unpin(c);
    if (!s->initial)
        rm_copy_str(s->previous_revision, sizeof(s->previous_revision), s->stable_revision);
    rm_copy_str(s->stable_revision, sizeof(s->stable_revision), s->canary_revision);
    s->stable_slot = s->canary_slot;
    s->canary_slot = -1;
    s->canary_revision[0] = '\0';
    s->weight = 0;
    s->step = (int)c->spec->n_steps;
    s->progress_deadline_at = 0;
    s->paused_reason[0] = '\0';
    rm_event(c, "Normal", "Promoted", "revision %s takes 100%% on slot %s", s->stable_revision,
             rm_slot_name(s->stable_slot));
    if (c->spec->on_promotion && !s->initial)
        rm_alert_promotion(c);
    if (s->initial || old == s->stable_slot) {
        s->phase = ROLLOUT_IDLE;
        s->initial = false;
        s->analysis_since = 0;
        return;
    }
    s->scale_down_slot = old;
    s->scale_down_at = c->now + c->spec->scale_down_delay_ms;
    s->phase = ROLLOUT_SCALING_DOWN;
    s->analysis_since = 0;
    if (s->strategy == ROLLOUT_BLUE_GREEN && rm_measuring(c)) {
        /* Post-promotion analysis of the new stable slot during the delay. */
        reset_analysis(s);
        s->analysis_since = c->now;
    }
}

void rm_promoting(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    int n = rm_full_count(c);

    rm_ensure_slot(c, s->canary_slot, s->canary_revision, n);
    if (!canary_ready(c, n))
        return;
    switch_traffic(c);
}

static void begin_promotion(struct rollout_ctx *c, const char *why)
{
    c->s->phase = ROLLOUT_PROMOTING;
    c->s->paused_reason[0] = '\0';
    rm_event(c, "Normal", "Promoting", "revision %s: %s", c->s->canary_revision, why);
    rm_promoting(c);
}

void rm_pause_rollout(struct rollout_ctx *c, const char *reason)
{
    c->s->phase = ROLLOUT_PAUSED;
    rm_copy_str(c->s->paused_reason, sizeof(c->s->paused_reason), reason);
}

/* An intermediate step may advance: nothing measured at this weight yet, or
 * the latest round succeeded (a failed or inconclusive one holds it). */
static bool gate_step(const struct rollout_ctx *c)
{
    const struct rollout_state *s = c->s;

    return !rm_measuring(c) || s->weight == 0 || s->last_verdict == ANALYSIS_NONE ||
           s->last_verdict == ANALYSIS_SUCCESSFUL;
}

/* Promotion needs a successful latest round (never unmeasured). */
static bool gate_final(const struct rollout_ctx *c)
{
    return !rm_measuring(c) || c->s->last_verdict == ANALYSIS_SUCCESSFUL;
}

static void advance(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;

    s->step++;
    s->step_started_at = c->now;
    if (s->step < (int)c->spec->n_steps)
        rm_event(c, "Normal", "StepStarted", "step %d of %zu (canary %d%%)", s->step + 1,
                 c->spec->n_steps, s->weight);
}

void rm_canary_progress(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    int guard;

    for (guard = 0; guard <= ROLLOUT_MAX_STEPS && s->phase == ROLLOUT_PROGRESSING; guard++) {
        const struct rollout_step_spec *st;
        int n;

        if (s->step >= (int)c->spec->n_steps) {
            n = rollout_canary_count(rm_full_count(c), s->weight);
            rm_ensure_slot(c, s->canary_slot, s->canary_revision, n);
            if (!canary_ready(c, n))
                return;
            if (gate_final(c))
                begin_promotion(c, "all steps done");
            return;
        }
        st = &c->spec->steps[s->step];
        n = rollout_canary_count(rm_full_count(c), st->weight >= 0 ? st->weight : s->weight);
        rm_ensure_slot(c, s->canary_slot, s->canary_revision, n);
        if (!canary_ready(c, n))
            return; /* traffic moves only to healthy targets */
        if (st->weight >= 0) {
            if (s->weight != st->weight) {
                rm_act_weights(c, s->stable_slot, st->weight);
                s->weight = st->weight;
                if (s->weight > 0 && s->analysis_since == 0 && rm_measuring(c))
                    s->analysis_since = c->now;
                rm_event(c, "Normal", "WeightSet", "canary %s at %d%% (%d tasks)",
                         s->canary_revision, s->weight, n);
            }
            if (!gate_step(c))
                return;
            advance(c);
            continue;
        }
        if (st->pause_ms < 0) {
            rm_pause_rollout(c, "PauseStep");
            rm_event(c, "Normal", "Paused", "step %d: waiting for `aviary promote`", s->step + 1);
            return;
        }
        if (c->now < s->step_started_at + st->pause_ms) {
            rm_wake_at(c, s->step_started_at + st->pause_ms);
            return;
        }
        if (!gate_step(c))
            return;
        advance(c);
    }
}

/* Blue/green, all-at-once and first deployments: the new slot at full size,
 * then (blue/green) the test listener and pre-promotion analysis. */
void rm_full_size_progress(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    int n = rm_full_count(c);
    bool bg = s->strategy == ROLLOUT_BLUE_GREEN && !s->initial;
    int need = c->spec->pre_promotion_measurements;

    rm_ensure_slot(c, s->canary_slot, s->canary_revision, n);
    if (!canary_ready(c, n))
        return;
    if (bg && !s->test_listener) {
        rm_act_test_listener(c, s->canary_slot);
        if (rm_measuring(c) && need > 0)
            s->analysis_since = c->now;
        rm_event(c, "Normal", "TestListener", "revision %s healthy at full size behind port %d",
                 s->canary_revision, c->spec->test_port);
    }
    if (s->phase != ROLLOUT_PROGRESSING)
        return;
    if (bg && rm_measuring(c) && need > 0 &&
        (s->successes < need || s->last_verdict != ANALYSIS_SUCCESSFUL))
        return;
    if (bg && !c->spec->auto_promote) {
        rm_pause_rollout(c, "AwaitingPromotion");
        rm_event(c, "Normal", "Paused", "revision %s ready: waiting for `aviary promote`",
                 s->canary_revision);
        return;
    }
    begin_promotion(c, bg ? "pre-promotion analysis passed" : "healthy at full size");
}

/* Keeps the canary sized and healthy while rm_paused (analysis continues). */
void rm_paused(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    bool canary = s->strategy == ROLLOUT_CANARY && !s->initial;
    int n = canary ? rollout_canary_count(rm_full_count(c), s->weight) : rm_full_count(c);

    if (canary && s->step < (int)c->spec->n_steps && c->spec->steps[s->step].weight >= 0 &&
        c->spec->steps[s->step].weight != s->weight)
        n = rollout_canary_count(rm_full_count(c), c->spec->steps[s->step].weight);
    rm_ensure_slot(c, s->canary_slot, s->canary_revision, n);
    canary_ready(c, n);
}

void rm_scaling_down(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;

    if (c->now < s->scale_down_at) {
        rm_wake_at(c, s->scale_down_at);
        return;
    }
    rm_act_scale(c, s->scale_down_slot, 0);
    rm_event(c, "Normal", "ScaledDown", "slot %s (revision %s) scaled to 0",
             rm_slot_name(s->scale_down_slot), s->previous_revision);
    s->scale_down_slot = -1;
    s->scale_down_at = 0;
    s->previous_revision[0] = '\0';
    s->analysis_since = 0;
    s->phase = ROLLOUT_IDLE;
}

/* Level-based clean-up outside a rollout: the idle slot runs nothing. */
void rm_idle(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    int other = 1 - s->stable_slot;

    if (s->stable_revision[0] != '\0' && c->obs->slot[other].desired > 0)
        rm_act_scale(c, other, 0);
    rm_unpin(c);
}

void rm_apply_round(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    const struct analysis_round *r = c->obs->round;
    const struct analysis_spec *a = &c->spec->analysis;

    if (r == NULL || r->verdict == ANALYSIS_NONE || s->analysis_since == 0 || !rm_measuring(c) ||
        r->window_end_ms <= s->last_analysis_at || r->window_start_ms < s->analysis_since)
        return;
    if (s->phase != ROLLOUT_PROGRESSING && s->phase != ROLLOUT_PAUSED &&
        s->phase != ROLLOUT_PROMOTING && s->phase != ROLLOUT_SCALING_DOWN)
        return;
    s->last_analysis_at = r->window_end_ms;
    s->last_verdict = r->verdict;
    switch (r->verdict) {
    case ANALYSIS_SUCCESSFUL:
        s->successes++;
        s->inconclusive_in_a_row = 0;
        break;
    case ANALYSIS_FAILED:
        s->failures++;
        s->inconclusive_in_a_row = 0;
        rm_event(c, "Warning", "AnalysisFailed", "%s (failure %d, %d tolerated)", r->detail,
                 s->failures, a->failure_limit);
        if (s->failures > a->failure_limit)
            rm_begin_rollback(c, "AnalysisFailed", r, NULL);
        break;
    case ANALYSIS_INCONCLUSIVE:
        s->inconclusive_in_a_row++;
        if (s->phase == ROLLOUT_SCALING_DOWN)
            break; /* post-promotion: only failures matter */
        if (s->inconclusive_in_a_row >= a->inconclusive_limit &&
            (s->phase == ROLLOUT_PROGRESSING || s->phase == ROLLOUT_PROMOTING)) {
            rm_pause_rollout(c, "Inconclusive");
            rm_alert_pause(c, r);
            rm_event(c, "Warning", "PausedInconclusive",
                     "%d inconclusive measurements in a row: %s", s->inconclusive_in_a_row,
                     r->detail);
        }
        break;
    case ANALYSIS_NONE:
        break;
    }
}

/* A lost status (no stable revision recorded) while a slot already serves:
 * adopt that slot as stable instead of treating the release as a first
 * deployment, which would replace the serving tasks in place. The recorded
 * stable slot wins when both slots serve. */
void rm_recover_stable(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    int order[2] = {s->stable_slot, 1 - s->stable_slot};
    int i;

    if (s->phase != ROLLOUT_IDLE || s->stable_revision[0] != '\0')
        return;
    for (i = 0; i < 2; i++) {
        const struct rollout_slot_obs *o = &c->obs->slot[order[i]];

        if (rm_obs_rev(o)[0] != '\0' && o->desired > 0 && o->healthy > 0) {
            s->stable_slot = order[i];
            rm_copy_str(s->stable_revision, sizeof(s->stable_revision), rm_obs_rev(o));
            rm_event(c, "Normal", "StableRecovered", "slot %s serves revision %s: taken as stable",
                     rm_slot_name(s->stable_slot), s->stable_revision);
            return;
        }
    }
}

/* A manifest change: the current canary is withdrawn cleanly and the new
 * revision starts from the first step. Returns false when the stable slot
 * cannot take the traffic back yet (nothing else happens this step). */
bool rm_apply_revision(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    const char *d = c->obs->desired_revision;

    if (d == NULL || d[0] == '\0')
        return true;
    switch (s->phase) {
    case ROLLOUT_IDLE:
        if (strcmp(d, s->stable_revision) != 0)
            rm_start_rollout(c, d);
        return true;
    case ROLLOUT_ROLLED_BACK:
        if (strcmp(d, s->rolled_back_revision) == 0)
            return true; /* not retried until the manifest changes or retry */
        if (strcmp(d, s->stable_revision) == 0) {
            s->phase = ROLLOUT_IDLE;
            s->rolled_back_revision[0] = '\0';
            s->canary_revision[0] = '\0';
            s->canary_slot = -1;
            return true;
        }
        rm_start_rollout(c, d);
        return true;
    case ROLLOUT_SCALING_DOWN:
        if (strcmp(d, s->stable_revision) != 0)
            rm_start_rollout(c, d); /* reuses the old slot as the canary slot */
        return true;
    case ROLLOUT_ROLLING_BACK:
        return true; /* the rollback finishes first */
    case ROLLOUT_PROGRESSING:
    case ROLLOUT_PAUSED:
    case ROLLOUT_PROMOTING:
        if (strcmp(d, s->canary_revision) == 0)
            return true;
        if (s->weight > 0 && !s->initial && !rm_stable_ready(c)) {
            rm_wake_at(c, c->now + ROLLOUT_POLL_MS);
            return false;
        }
        if (s->weight > 0 && !s->initial)
            rm_act_weights(c, s->stable_slot, 0);
        s->weight = 0;
        if (s->test_listener)
            rm_act_test_listener(c, -1);
        rm_event(c, "Normal", "Superseded", "revision %s replaced by %s at step %d",
                 s->canary_revision, d, s->step + 1);
        if (strcmp(d, s->stable_revision) == 0) {
            rm_act_scale(c, s->canary_slot, 0);
            rm_unpin(c);
            s->phase = ROLLOUT_IDLE;
            s->canary_revision[0] = '\0';
            s->canary_slot = -1;
            reset_analysis(s);
            return true;
        }
        rm_start_rollout(c, d);
        return true;
    }
    return true;
}
