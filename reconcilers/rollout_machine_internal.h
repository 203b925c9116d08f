/* Internals shared by the rollout machine's files (rollout_machine.c,
 * rollout_progress.c, rollout_rollback.c, rollout_state_json.c): one step's
 * context and the helpers each file gives the others. Not for use outside
 * the machine: its interface is rollout_machine.h. Any thread. */
#ifndef AVIARY_RECONCILERS_ROLLOUT_MACHINE_INTERNAL_H
#define AVIARY_RECONCILERS_ROLLOUT_MACHINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconcilers/rollout_machine.h"

/* One rollout_step call: its inputs, the state being advanced (out) and the
 * result being filled. */
struct rollout_ctx {
    const struct rollout_spec *spec;
    struct rollout_state *s;
    const struct rollout_obs *obs;
    int64_t now;
    struct rollout_result *res;
    int64_t wake; /* earliest time to come back, 0: none */
};

/* Name tables (rollout_machine.c), indexed by their enums. */
extern const char *const rm_strategy_names[3]; /* enum rollout_strategy */
extern const char *const rm_phase_names[7];    /* enum rollout_phase */
extern const char *const rm_alert_names[3];    /* enum rollout_alert_kind */

#define LOOKUP(table, name) rm_lookup(table, sizeof(table) / sizeof((table)[0]), name)

/* ---- rollout_machine.c: names, actions, events, wake-ups, observations
 * rm_act* append an action to c->res (bounded: beyond ROLLOUT_MAX_ACTIONS
 * it is dropped and re-emitted by the next step); rm_event records the
 * state's message and an event; rm_wake_at keeps the earliest wake-up. */

int rm_lookup(const char *const *table, size_t n, const char *name);
const char *rm_slot_name(int slot);
void rm_copy_str(char *dst, size_t len, const char *src);
void rm_wake_at(struct rollout_ctx *c, int64_t t);
struct rollout_action *rm_act(struct rollout_ctx *c, enum rollout_action_kind kind);
void rm_act_scale(struct rollout_ctx *c, int slot, int count);
void rm_act_weights(struct rollout_ctx *c, int stable_slot, int canary_weight);
void rm_act_stable(struct rollout_ctx *c, int slot, const char *rev);
void rm_act_test_listener(struct rollout_ctx *c, int slot);
void rm_unpin(struct rollout_ctx *c);
void rm_event(struct rollout_ctx *c, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *rm_app_name(const struct rollout_ctx *c);
bool rm_measuring(const struct rollout_ctx *c);
const char *rm_obs_rev(const struct rollout_slot_obs *o);
int rm_full_count(const struct rollout_ctx *c);
void rm_ensure_slot(struct rollout_ctx *c, int slot, const char *rev, int n);
bool rm_slot_healthy(const struct rollout_ctx *c, int slot, const char *rev, int n);

/* ---- rollout_progress.c: the forward path, one function per phase of
 * rollout_step, plus the round's verdict, a lost status and a manifest
 * change (false: the stable slot cannot take the traffic back yet). */

void rm_start_rollout(struct rollout_ctx *c, const char *rev);
void rm_promoting(struct rollout_ctx *c);
void rm_pause_rollout(struct rollout_ctx *c, const char *reason);
void rm_canary_progress(struct rollout_ctx *c);
void rm_full_size_progress(struct rollout_ctx *c);
void rm_paused(struct rollout_ctx *c);
void rm_scaling_down(struct rollout_ctx *c);
void rm_idle(struct rollout_ctx *c);
void rm_apply_round(struct rollout_ctx *c);
void rm_recover_stable(struct rollout_ctx *c);
bool rm_apply_revision(struct rollout_ctx *c);

/* ---- rollout_rollback.c: rollbacks (begin decides and alerts, finish
 * moves traffic once the stable slot is ready), manual commands, and the
 * alerts queued in the state's outbox. */

void rm_alert_pause(struct rollout_ctx *c, const struct analysis_round *r);
void rm_alert_promotion(struct rollout_ctx *c);
bool rm_stable_ready(const struct rollout_ctx *c);
void rm_finish_rollback(struct rollout_ctx *c);
void rm_begin_rollback(struct rollout_ctx *c, const char *reason, const struct analysis_round *r,
                       const char *detail);
void rm_command(struct rollout_ctx *c);

#endif
