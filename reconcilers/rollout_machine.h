/* The progressive-delivery state machine (DESIGN.md, Rollouts): a pure
 * function of (spec.rollout, state, observations, now) that returns the
 * next state and the actions to take — scale a slot, register a revision on
 * a slot, set the listener weights, pin the stable slot's minimum, switch
 * the stable slot, alert. It makes no AWS call and reads no clock; the
 * rollout integration observes AWS, runs the analysis round when one is due,
 * calls rollout_step, executes the actions in order and stores the state in
 * status.rollout. Any thread (no shared state). */
#ifndef AVIARY_RECONCILERS_ROLLOUT_MACHINE_H
#define AVIARY_RECONCILERS_ROLLOUT_MACHINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconcilers/analysis.h"
#include "reconcilers/status.h"

#define ROLLOUT_MAX_STEPS    32 /* CRD maxItems */
#define ROLLOUT_REVISION_MAX 64
#define ROLLOUT_MAX_ACTIONS  16
#define ROLLOUT_MAX_EVENTS   8
#define ROLLOUT_OUTBOX_MAX   4  /* undelivered alerts kept (oldest dropped) */
#define ROLLOUT_SENT_MAX     16 /* ids of delivered alerts remembered */
#define ROLLOUT_ALERT_ID_MAX 112
#define ROLLOUT_POLL_MS      5000 /* re-check while waiting for tasks to become healthy */
#define ROLLOUT_SLACK_MS     1000 /* after a window ends, before measuring it */

enum rollout_strategy {
    ROLLOUT_CANARY,
    ROLLOUT_BLUE_GREEN,
    ROLLOUT_ALL_AT_ONCE,
};

enum rollout_phase {
    ROLLOUT_IDLE,         /* no rollout: the stable slot takes 100% */
    ROLLOUT_PROGRESSING,  /* steps (canary) or pre-promotion (blue/green) */
    ROLLOUT_PAUSED,       /* pausedReason: Manual, Inconclusive, PauseStep, AwaitingPromotion */
    ROLLOUT_PROMOTING,    /* the new revision is brought to full size, then takes 100% */
    ROLLOUT_SCALING_DOWN, /* promoted; the old slot keeps running until scaleDownAt */
    ROLLOUT_ROLLING_BACK, /* rollback decided; waiting for the stable slot to be healthy */
    ROLLOUT_ROLLED_BACK,  /* the new revision was withdrawn; not retried until it changes */
};

/* "canary", "blueGreen", "allAtOnce" / "Idle", "Progressing", ... */
const char *rollout_strategy_name(enum rollout_strategy s);
const char *rollout_phase_name(enum rollout_phase p);

/* One canary step: weight >= 0 for setWeight, else a pause of pause_ms
 * (-1: until `aviary promote`). */
struct rollout_step_spec {
    int weight;
    int64_t pause_ms;
};

/* spec.rollout (and spec.notifications.onPromotion), parsed. */
struct rollout_spec {
    enum rollout_strategy strategy;
    size_t n_steps;
    struct rollout_step_spec steps[ROLLOUT_MAX_STEPS];
    int64_t scale_down_delay_ms;  /* default 30s */
    int64_t progress_deadline_ms; /* default 10m */
    struct analysis_spec analysis;
    int test_port;                  /* blue/green, default 8080 */
    bool auto_promote;              /* blue/green, default true */
    int pre_promotion_measurements; /* blue/green, default 3 */
    bool on_promotion;              /* alert on promotion too */
};

/* Parses the rollout settings of an Application spec (defaults applied by
 * the CRD; missing fields get the same defaults here). Cloudwatch metric
 * queries are borrowed from app_spec, which must outlive *out. Returns 0,
 * or -1 with a message in err ("rollout.canary.steps[2]: ..."). */
int rollout_spec_parse(const json_t *app_spec, struct rollout_spec *out, char *err, size_t errlen);

/* The canary's task count for a weight: max(1, ceil(full * weight / 100)). */
int rollout_canary_count(int full, int weight);

enum rollout_command {
    ROLLOUT_CMD_NONE,
    ROLLOUT_CMD_PROMOTE,
    ROLLOUT_CMD_PROMOTE_FULL,
    ROLLOUT_CMD_ABORT,
    ROLLOUT_CMD_PAUSE,
    ROLLOUT_CMD_RESUME,
    ROLLOUT_CMD_RETRY,
};

/* Parses a manual command ({"action": "promote", "full": true}; actions
 * promote, abort, pause, resume, retry). NULL gives ROLLOUT_CMD_NONE.
 * Returns 0, or -1 when the action is unknown. */
int rollout_command_parse(const json_t *command, enum rollout_command *out);
const char *rollout_command_name(enum rollout_command c);

/* What the integration observed of one slot (0 = "a", 1 = "b"). */
struct rollout_slot_obs {
    const char *revision; /* revision the slot's ECS service runs (its primary
                             deployment's task definition tag), "" or NULL: none */
    int desired;          /* the service's desiredCount */
    int healthy;          /* healthy targets of that revision in the slot's target group */
};

/* One reconcile's observations (all borrowed for the call). */
struct rollout_obs {
    const char *application;      /* metadata.name, for alerts */
    const char *dashboard_url;    /* for alerts; may be NULL */
    const char *desired_revision; /* the manifest's revision */
    /* Tasks that carry 100% of the traffic: the stable slot's desiredCount as
     * autoscaling keeps it, or spec.scaling.min when nothing is stable yet. */
    int full_count;
    struct rollout_slot_obs slot[2];
    /* The analysis round just taken over the window rollout_analysis_due
     * gave, or NULL. Rounds not newer than the last one are ignored. */
    const struct analysis_round *round;
    enum rollout_command command;
};

enum rollout_alert_kind {
    ROLLOUT_ALERT_ROLLBACK,
    ROLLOUT_ALERT_PAUSE, /* paused for inconclusive data */
    ROLLOUT_ALERT_PROMOTION,
};

/* "rollback", "inconclusive-pause", "promotion". */
const char *rollout_alert_kind_name(enum rollout_alert_kind k);

struct rollout_alert {
    char id[ROLLOUT_ALERT_ID_MAX]; /* "<app>/<rolloutSeq>/<n>/<kind>": stable across restarts */
    enum rollout_alert_kind kind;
    char subject[100]; /* SNS subject (< 100 characters) */
    char body[1536];   /* readable text */
    int64_t at_ms;
};

/* What decided a rollback (status condition Degraded, alerts). */
struct rollout_decision {
    char reason[48]; /* AnalysisFailed, ProgressDeadlineExceeded, Aborted */
    char metric[ANALYSIS_NAME_MAX];
    bool has_value;
    double value;
    double threshold;
    int step;
    int weight;
    char detail[ANALYSIS_DETAIL_MAX];
    int64_t at_ms;
};

/* The rollout state, stored in status.rollout (rollout_state_to_json). Times
 * are unix milliseconds, 0 = unset. Slots are 0 ("a") and 1 ("b"), -1 = none. */
struct rollout_state {
    enum rollout_strategy strategy; /* of the current (or last) rollout */
    enum rollout_phase phase;
    bool initial; /* first deployment: nothing stable to fall back to */
    char stable_revision[ROLLOUT_REVISION_MAX];
    char canary_revision[ROLLOUT_REVISION_MAX];
    char rolled_back_revision[ROLLOUT_REVISION_MAX];
    char previous_revision[ROLLOUT_REVISION_MAX]; /* of scale_down_slot, while scaling down */
    int stable_slot;
    int canary_slot;
    int scale_down_slot;
    int step;            /* index of the current canary step; n_steps when past the last */
    int weight;          /* the canary's traffic share on the listener, 0..100 */
    int64_t rollout_seq; /* increments with every rollout started */
    int64_t started_at, step_started_at, progress_deadline_at, rollback_started_at;
    int64_t analysis_since;   /* analysis running since (0: not running) */
    int64_t last_analysis_at; /* end of the last measured window */
    int64_t scale_down_at;
    int failures;              /* failed rounds in this rollout (or since the switch) */
    int inconclusive_in_a_row; /* inconclusive rounds in a row */
    int successes;             /* successful rounds in this rollout (or since the switch) */
    enum analysis_verdict last_verdict;
    char paused_reason[32];
    int pinned_min; /* stable minimum pinned at the rollout's start, -1: none */
    bool test_listener;
    bool has_decision;
    struct rollout_decision decision;
    int alert_seq;
    size_t n_outbox;
    struct rollout_alert outbox[ROLLOUT_OUTBOX_MAX];
    size_t n_sent;
    char sent[ROLLOUT_SENT_MAX][ROLLOUT_ALERT_ID_MAX];
    char message[256]; /* the last transition, for humans */
};

/* An idle state: stable slot "a", nothing stable yet. */
void rollout_state_init(struct rollout_state *s);

/* Writes s into `rollout` (an object, e.g. status.rollout), replacing the
 * keys the machine owns and keeping the others ("analysis"). Returns 0, or
 * -1 when out of memory (rollout may be partly written). */
int rollout_state_to_json(const struct rollout_state *s, json_t *rollout);

/* Reads a state written by rollout_state_to_json (NULL or {} give the idle
 * state; the older {"phase": "Completed", "stableRevision", "stableSlot"}
 * form gives an idle state with that stable revision). Returns 0, or -1 with
 * *s the idle state when a field is malformed. */
int rollout_state_from_json(const json_t *rollout, struct rollout_state *s);

enum rollout_action_kind {
    /* Make `slot` run `revision` (register its task definition, update the
     * ECS service). Emitted while the slot's observed revision differs. */
    ROLLOUT_ACT_REGISTER,
    /* Set `slot`'s ECS desiredCount to `count`. */
    ROLLOUT_ACT_SCALE,
    /* loadbalancer_set_weights(ctx, stable_slot, canary_weight): one
     * ModifyListener per listener, read back. */
    ROLLOUT_ACT_SET_WEIGHTS,
    /* autoscaling_pin_min(ctx, min) / autoscaling_pin_min(ctx, -1). */
    ROLLOUT_ACT_PIN_MIN,
    ROLLOUT_ACT_UNPIN_MIN,
    /* `slot` (running `revision`) is now the stable slot: record
     * resources.service.stableSlot and the aviary.io/slot,revision tags;
     * autoscaling follows it. */
    ROLLOUT_ACT_SET_STABLE,
    /* Blue/green: point the test listener (spec testPort) at `slot`, or
     * remove it when slot is -1. */
    ROLLOUT_ACT_TEST_LISTENER,
    /* Deliver `alert` (SNS topic and webhooks), then call
     * rollout_alert_delivered(new_state, alert->id). */
    ROLLOUT_ACT_ALERT,
};

const char *rollout_action_name(enum rollout_action_kind k);

struct rollout_action {
    enum rollout_action_kind kind;
    int slot;
    int count;
    char revision[ROLLOUT_REVISION_MAX];
    int stable_slot;
    int canary_weight;
    int min;
    const struct rollout_alert *alert; /* points into the new state's outbox */
};

struct rollout_event {
    const char *type; /* "Normal" or "Warning" */
    char reason[48];
    char message[256];
};

struct rollout_result {
    size_t n_actions;
    struct rollout_action actions[ROLLOUT_MAX_ACTIONS];
    size_t n_events;
    struct rollout_event events[ROLLOUT_MAX_EVENTS];
    long requeue_after_ms; /* 0: nothing scheduled (wait for the next resync) */
    bool command_done;     /* obs->command was consumed (acted on or refused) */
    char command_message[200];
};

/* Advances the rollout: copies *in to *out (they may be the same object),
 * applies the manifest's revision, the manual command, the analysis round
 * and the passage of time, and fills *res with the actions to execute in
 * order, the events to record and when to come back. Deterministic.
 *
 * The integration executes the actions in order; when one fails it keeps
 * the previous state (every action is idempotent, so the next reconcile
 * decides again from the same state) — except ROLLOUT_ACT_ALERT, which never
 * blocks: an undelivered alert stays in the state's outbox and is emitted
 * again by the next call until rollout_alert_delivered records it. */
void rollout_step(const struct rollout_spec *spec, const struct rollout_state *in,
                  const struct rollout_obs *obs, int64_t now_ms, struct rollout_state *out,
                  struct rollout_result *res);

/* True when an analysis round is due at now_ms: the window [start, end]
 * (end aligned to analysis_grid_ms, length the CloudWatch period) starts
 * after the analysis began and does not overlap the last one. */
bool rollout_analysis_due(const struct rollout_spec *spec, const struct rollout_state *s,
                          int64_t now_ms, int64_t *start_ms, int64_t *end_ms);

/* When the next analysis round of s is due: the end of its window (on the
 * analysis grid, so every rollout with the same interval has the same
 * instants) plus ROLLOUT_SLACK_MS; rollout_step asks to come back then.
 * 0 when no analysis runs. The window is the one rollout_analysis_due gives
 * at that time. */
int64_t rollout_next_round_at(const struct rollout_spec *spec, const struct rollout_state *s);

/* The slots and revisions an analysis round measures: the canary (during
 * blue/green post-promotion: the new stable) and what it is compared with
 * (-1/NULL when nothing). */
void rollout_analysis_slots(const struct rollout_state *s, int *canary_slot,
                            const char **canary_revision, int *stable_slot,
                            const char **stable_revision);

/* The traffic share (0..100) of the revision an analysis round measures:
 * the canary's weight, or 100 during blue/green post-promotion (the
 * measured revision is the new stable one and serves everyone). Recorded
 * with each measurement in status.rollout.analysis. */
int rollout_measured_weight(const struct rollout_state *s);

/* Records that alert `id` was delivered: it leaves the outbox and is never
 * emitted again. Unknown ids are ignored. */
void rollout_alert_delivered(struct rollout_state *s, const char *id);

/* True while a rollout holds traffic or capacity (Progressing, Paused,
 * Promoting, RollingBack): the stable minimum stays pinned. */
bool rollout_active(const struct rollout_state *s);

/* The application phase the rollout implies: Idle -> Ready, Paused ->
 * Paused, RolledBack -> RolledBack, otherwise Progressing. */
enum status_phase rollout_status_phase(const struct rollout_state *s);

/* Sets the Progressing and Degraded conditions from s (Degraded True with
 * the deciding metric, value, threshold and step after a rollback). */
void rollout_set_conditions(const struct rollout_state *s, json_t *status, int64_t now_s);

#endif
