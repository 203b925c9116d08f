/* The rollout machine's way back and its human interfaces: rollbacks (the
 * stable slot checked, all traffic back in one call, the canary scaled to
 * zero), manual commands, and the text of the alerts. Part of rollout_step
 * (rollout_machine.c); any thread (no shared state, no clock, no I/O). */
#include <stdio.h>
#include <string.h>

#include "reconcilers/rollout_machine.h"
#include "reconcilers/rollout_machine_internal.h"

/* Queues an alert in the state's outbox (emitted as an action at the end of
 * the step, and again until delivered). */
static struct rollout_alert *alert_new(struct rollout_ctx *c, enum rollout_alert_kind kind)
{
    struct rollout_state *s = c->s;
    struct rollout_alert *a;

    if (s->n_outbox == ROLLOUT_OUTBOX_MAX) {
        memmove(&s->outbox[0], &s->outbox[1], (ROLLOUT_OUTBOX_MAX - 1) * sizeof(s->outbox[0]));
        s->n_outbox--;
    }
    a = &s->outbox[s->n_outbox++];
    memset(a, 0, sizeof(*a));
    s->alert_seq++;
    snprintf(a->id, sizeof(a->id), "%.40s/%lld/%d/%s", rm_app_name(c), (long long)s->rollout_seq,
             s->alert_seq, rollout_alert_kind_name(kind));
    a->kind = kind;
    a->at_ms = c->now;
    return a;
}

static void dashboard_line(const struct rollout_ctx *c, char *buf, size_t len)
{
    if (c->obs->dashboard_url != NULL && c->obs->dashboard_url[0] != '\0')
        snprintf(buf, len, "Dashboard: %.400s\n", c->obs->dashboard_url);
    else
        buf[0] = '\0';
}

static void alert_rollback(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    const struct rollout_decision *d = &s->decision;
    struct rollout_alert *a = alert_new(c, ROLLOUT_ALERT_ROLLBACK);
    char value[160], dash[420], traffic[160];

    if (d->metric[0] != '\0' && d->has_value)
        snprintf(value, sizeof(value), "Metric: %s = %g (threshold %g)\n", d->metric, d->value,
                 d->threshold);
    else
        value[0] = '\0';
    if (s->initial)
        snprintf(traffic, sizeof(traffic), "nothing else was serving (first deployment)");
    else
        snprintf(traffic, sizeof(traffic),
                 "all of it goes back to the stable revision %.20s (slot %s)", s->stable_revision,
                 rm_slot_name(s->stable_slot));
    dashboard_line(c, dash, sizeof(dash));
    snprintf(a->subject, sizeof(a->subject), "aviary: %.40s rolled back revision %.20s",
             rm_app_name(c), s->canary_revision);
    snprintf(a->body, sizeof(a->body),
             "Application %s: the rollout of revision %s was rolled back (%s).\n"
             "%s"
             "Why: %s\n"
             "At: step %d of %zu, canary traffic share %d%%.\n"
             "Traffic: %s.\n"
             "The revision is not retried until the manifest changes or `aviary retry %s`.\n"
             "%s"
             "Alert id: %s\n",
             rm_app_name(c), s->canary_revision, d->reason, value, d->detail,
             d->step < (int)c->spec->n_steps ? d->step + 1 : (int)c->spec->n_steps,
             c->spec->n_steps, d->weight, traffic, rm_app_name(c), dash, a->id);
}

void rm_alert_pause(struct rollout_ctx *c, const struct analysis_round *r)
{
    struct rollout_state *s = c->s;
    struct rollout_alert *a = alert_new(c, ROLLOUT_ALERT_PAUSE);
    char dash[420];

    dashboard_line(c, dash, sizeof(dash));
    snprintf(a->subject, sizeof(a->subject), "aviary: %.40s rollout rm_paused (inconclusive data)",
             rm_app_name(c));
    snprintf(a->body, sizeof(a->body),
             "Application %s: the rollout of revision %s is paused at step %d of %zu "
             "(canary traffic share %d%%) after %d inconclusive measurements in a row.\n"
             "Last: %s (%ld canary requests in the window).\n"
             "It is never promoted unmeasured. `aviary resume %s` measures again, "
             "`aviary promote %s` continues anyway, `aviary abort %s` rolls back.\n"
             "%s"
             "Alert id: %s\n",
             rm_app_name(c), s->canary_revision,
             s->step < (int)c->spec->n_steps ? s->step + 1 : s->step, c->spec->n_steps, s->weight,
             s->inconclusive_in_a_row, r->detail, r->samples, rm_app_name(c), rm_app_name(c),
             rm_app_name(c), dash, a->id);
}

void rm_alert_promotion(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    struct rollout_alert *a = alert_new(c, ROLLOUT_ALERT_PROMOTION);
    char dash[420];

    dashboard_line(c, dash, sizeof(dash));
    snprintf(a->subject, sizeof(a->subject), "aviary: %.40s promoted revision %.20s",
             rm_app_name(c), s->stable_revision);
    snprintf(a->body, sizeof(a->body),
             "Application %s: revision %s was promoted (%s) and takes 100%% of the traffic "
             "(slot %s). The previous revision %s keeps running for the scale-down delay.\n"
             "Measurements: %d successful, %d failed.\n"
             "%s"
             "Alert id: %s\n",
             rm_app_name(c), s->stable_revision, rollout_strategy_name(s->strategy),
             rm_slot_name(s->stable_slot), s->previous_revision[0] ? s->previous_revision : "-",
             s->successes, s->failures, dash, a->id);
}

/* The stable slot can take all traffic back: all its desired tasks healthy,
 * or at least one once the rollback has waited a whole progress deadline. */
bool rm_stable_ready(const struct rollout_ctx *c)
{
    const struct rollout_state *s = c->s;
    const struct rollout_slot_obs *o = &c->obs->slot[s->stable_slot];
    int need = o->desired > 1 ? o->desired : 1;

    if (strcmp(rm_obs_rev(o), s->stable_revision) != 0)
        return false;
    if (o->healthy >= need)
        return true;
    return o->healthy >= 1 && s->rollback_started_at > 0 &&
           c->now >= s->rollback_started_at + c->spec->progress_deadline_ms;
}

void rm_finish_rollback(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    const struct rollout_decision *d = &s->decision;

    if (!s->initial && s->weight > 0 && !rm_stable_ready(c)) {
        rm_wake_at(c, c->now + ROLLOUT_POLL_MS);
        return;
    }
    if (s->weight > 0)
        rm_act_weights(c, s->stable_slot, 0); /* first: all traffic back in one call */
    s->weight = 0;
    if (!s->initial)
        rm_act_stable(c, s->stable_slot, s->stable_revision);
    if (s->canary_slot >= 0)
        rm_act_scale(c, s->canary_slot, 0);
    if (s->test_listener)
        rm_act_test_listener(c, -1);
    rm_unpin(c);
    s->phase = ROLLOUT_ROLLED_BACK;
    s->analysis_since = 0;
    s->progress_deadline_at = 0;
    s->paused_reason[0] = '\0';
    rm_event(c, "Warning", "RolledBack", "revision %s rolled back at step %d (%d%%): %s: %s",
             s->canary_revision, d->step + 1, d->weight, d->reason, d->detail);
}

void rm_begin_rollback(struct rollout_ctx *c, const char *reason, const struct analysis_round *r,
                       const char *detail)
{
    struct rollout_state *s = c->s;
    struct rollout_decision *d = &s->decision;

    if (s->phase == ROLLOUT_ROLLING_BACK || s->phase == ROLLOUT_ROLLED_BACK ||
        s->phase == ROLLOUT_IDLE)
        return;
    if (s->phase == ROLLOUT_SCALING_DOWN) {
        /* After the switch: the previous slot becomes stable again and the
         * promoted one is the canary holding all traffic. */
        int promoted = s->stable_slot;

        rm_copy_str(s->canary_revision, sizeof(s->canary_revision), s->stable_revision);
        rm_copy_str(s->stable_revision, sizeof(s->stable_revision), s->previous_revision);
        s->canary_slot = promoted;
        s->stable_slot = s->scale_down_slot;
        s->scale_down_slot = -1;
        s->scale_down_at = 0;
        s->previous_revision[0] = '\0';
        s->weight = 100;
    }
    memset(d, 0, sizeof(*d));
    s->has_decision = true;
    rm_copy_str(d->reason, sizeof(d->reason), reason);
    d->step = s->step;
    d->weight = s->weight;
    d->at_ms = c->now;
    if (r != NULL) {
        rm_copy_str(d->metric, sizeof(d->metric), r->metric);
        d->has_value = r->has_value;
        d->value = r->value;
        d->threshold = r->threshold;
        rm_copy_str(d->detail, sizeof(d->detail), r->detail);
    } else {
        rm_copy_str(d->detail, sizeof(d->detail), detail);
    }
    rm_copy_str(s->rolled_back_revision, sizeof(s->rolled_back_revision), s->canary_revision);
    s->phase = ROLLOUT_ROLLING_BACK;
    s->rollback_started_at = c->now;
    s->analysis_since = 0;
    alert_rollback(c);
    rm_event(c, "Warning", "RollingBack", "rolling back revision %s: %s: %s", s->canary_revision,
             reason, d->detail);
    rm_finish_rollback(c);
}

void rm_command(struct rollout_ctx *c)
{
    struct rollout_state *s = c->s;
    struct rollout_result *res = c->res;
    enum rollout_command cmd = c->obs->command;
    bool in_rollout = s->phase == ROLLOUT_PROGRESSING || s->phase == ROLLOUT_PAUSED ||
                      s->phase == ROLLOUT_PROMOTING;
    const char *msg = NULL;

    if (cmd == ROLLOUT_CMD_NONE)
        return;
    res->command_done = true;
    switch (cmd) {
    case ROLLOUT_CMD_PAUSE:
        if (s->phase == ROLLOUT_PROGRESSING || s->phase == ROLLOUT_PROMOTING) {
            if (s->phase == ROLLOUT_PROMOTING)
                s->step = (int)c->spec->n_steps;
            rm_pause_rollout(c, "Manual");
            msg = "paused";
        } else {
            msg = s->phase == ROLLOUT_PAUSED ? "already paused" : "no rollout to pause";
        }
        break;
    case ROLLOUT_CMD_RESUME:
        if (s->phase != ROLLOUT_PAUSED) {
            msg = "not paused";
        } else if (strcmp(s->paused_reason, "PauseStep") == 0 ||
                   strcmp(s->paused_reason, "AwaitingPromotion") == 0) {
            msg = "waiting for promotion: use `aviary promote`";
        } else {
            s->phase = ROLLOUT_PROGRESSING;
            s->paused_reason[0] = '\0';
            s->inconclusive_in_a_row = 0;
            msg = "resumed";
        }
        break;
    case ROLLOUT_CMD_PROMOTE:
    case ROLLOUT_CMD_PROMOTE_FULL:
        if (s->phase == ROLLOUT_SCALING_DOWN) {
            s->scale_down_at = c->now;
            msg = "scaling the previous revision down now";
        } else if (!in_rollout) {
            msg = "no rollout to promote";
        } else if (s->strategy != ROLLOUT_CANARY || s->initial || cmd == ROLLOUT_CMD_PROMOTE_FULL) {
            s->step = (int)c->spec->n_steps;
            s->phase = ROLLOUT_PROMOTING;
            s->paused_reason[0] = '\0';
            msg = "promoting to 100%";
        } else if (s->phase == ROLLOUT_PROMOTING) {
            msg = "already promoting";
        } else {
            if (s->step < (int)c->spec->n_steps) {
                s->step++;
                s->step_started_at = c->now;
            }
            s->phase = ROLLOUT_PROGRESSING;
            s->paused_reason[0] = '\0';
            s->inconclusive_in_a_row = 0;
            msg = "skipped to the next step";
        }
        break;
    case ROLLOUT_CMD_ABORT:
        if (in_rollout || s->phase == ROLLOUT_SCALING_DOWN) {
            rm_begin_rollback(c, "Aborted", NULL, "aborted by `aviary abort`");
            msg = "aborted";
        } else {
            msg = "no rollout to abort";
        }
        break;
    case ROLLOUT_CMD_RETRY:
        if (s->phase == ROLLOUT_ROLLED_BACK) {
            s->rolled_back_revision[0] = '\0';
            msg = "retrying";
            if (c->obs->desired_revision != NULL &&
                strcmp(c->obs->desired_revision, s->stable_revision) != 0)
                rm_start_rollout(c, c->obs->desired_revision);
            else
                s->phase = ROLLOUT_IDLE;
        } else {
            msg = "nothing rolled back to retry";
        }
        break;
    case ROLLOUT_CMD_NONE:
        break;
    }
    snprintf(res->command_message, sizeof(res->command_message), "%s: %s",
             rollout_command_name(cmd), msg != NULL ? msg : "");
    rm_event(c, "Normal", "Command", "%s", res->command_message);
}
