/* The progressive-delivery state machine's core: names, spec and command
 * parsing, the step driver (rollout_step) and the helpers every concern of
 * the machine uses to emit actions, events and wake-ups, the analysis
 * schedule, and the status conditions. The concerns are in
 * rollout_progress.c (steps, blue/green, promotion), rollout_rollback.c
 * (rollbacks, manual commands, alert texts) and rollout_state_json.c.
 * Any thread (no shared state, no clock, no I/O). */
#include "reconcilers/rollout_machine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reconcilers/duration.h"
#include "reconcilers/rollout_machine_internal.h"

const char *const rm_strategy_names[] = {"canary", "blueGreen", "allAtOnce"};

const char *const rm_phase_names[] = {"Idle",        "Progressing", "Paused",    "Promoting",
                                      "ScalingDown", "RollingBack", "RolledBack"};

static const char *const command_names[] = {"none",  "promote", "promote-full", "abort",
                                            "pause", "resume",  "retry"};

const char *const rm_alert_names[] = {"rollback", "inconclusive-pause", "promotion"};

static const char *const action_names[] = {"register",  "scale",      "set-weights",   "pin-min",
                                           "unpin-min", "set-stable", "test-listener", "alert"};

#define NAME_OF(table, i)                                                                          \
    ((unsigned)(i) < sizeof(table) / sizeof((table)[0]) ? (table)[i] : "unknown")

const char *rollout_strategy_name(enum rollout_strategy s)
{
    return NAME_OF(rm_strategy_names, s);
}

const char *rollout_phase_name(enum rollout_phase p)
{
    return NAME_OF(rm_phase_names, p);
}

const char *rollout_command_name(enum rollout_command c)
{
    return NAME_OF(command_names, c);
}

const char *rollout_alert_kind_name(enum rollout_alert_kind k)
{
    return NAME_OF(rm_alert_names, k);
}

const char *rollout_action_name(enum rollout_action_kind k)
{
    return NAME_OF(action_names, k);
}

int rm_lookup(const char *const *table, size_t n, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < n; i++) {
        if (strcmp(table[i], name) == 0)
            return (int)i;
    }
    return -1;
}

const char *rm_slot_name(int slot)
{
    return slot == 0 ? "a" : slot == 1 ? "b" : "-";
}

void rm_copy_str(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

/* ---- spec ------------------------------------------------------------------ */

static int parse_duration_field(const json_t *obj, const char *key, int64_t fallback, int64_t *out,
                                char *err, size_t errlen)
{
    const char *s = json_string_value(json_object_get(obj, key));
    const char *why = NULL;

    *out = fallback;
    if (s != NULL && duration_parse(s, out, &why) != 0) {
        snprintf(err, errlen, "rollout.%s: %s", key, why);
        return -1;
    }
    return 0;
}

static int parse_steps(const json_t *canary, struct rollout_spec *out, char *err, size_t errlen)
{
    const json_t *steps = json_object_get(canary, "steps");
    size_t i;

    if (steps == NULL) {
        static const struct rollout_step_spec defaults[] = {
            {20, 0}, {-1, 60000}, {50, 0}, {-1, 60000}};

        memcpy(out->steps, defaults, sizeof(defaults));
        out->n_steps = 4;
        return 0;
    }
    if (!json_is_array(steps) || json_array_size(steps) < 1 ||
        json_array_size(steps) > ROLLOUT_MAX_STEPS) {
        snprintf(err, errlen, "rollout.canary.steps: 1 to %d steps", ROLLOUT_MAX_STEPS);
        return -1;
    }
    for (i = 0; i < json_array_size(steps); i++) {
        const json_t *st = json_array_get(steps, i);
        const json_t *w = json_object_get(st, "setWeight");
        const json_t *p = json_object_get(st, "pause");
        struct rollout_step_spec *o = &out->steps[i];

        if ((w != NULL) == (p != NULL)) {
            snprintf(err, errlen, "rollout.canary.steps[%zu]: exactly one of setWeight or pause",
                     i);
            return -1;
        }
        if (w != NULL) {
            if (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > 100) {
                snprintf(err, errlen, "rollout.canary.steps[%zu].setWeight: 0 to 100", i);
                return -1;
            }
            o->weight = (int)json_integer_value(w);
            o->pause_ms = 0;
        } else {
            const char *d = json_string_value(json_object_get(p, "duration"));
            const char *why = NULL;

            o->weight = -1;
            o->pause_ms = -1;
            if (d != NULL && (duration_parse(d, &o->pause_ms, &why) != 0 || o->pause_ms <= 0)) {
                snprintf(err, errlen, "rollout.canary.steps[%zu].pause.duration: %s", i,
                         why != NULL ? why : "more than 0");
                return -1;
            }
        }
    }
    out->n_steps = json_array_size(steps);
    return 0;
}

int rollout_spec_parse(const json_t *app_spec, struct rollout_spec *out, char *err, size_t errlen)
{
    const json_t *r = json_object_get(app_spec, "rollout");
    const json_t *bg = json_object_get(r, "blueGreen");
    const json_t *v;
    const char *strategy = json_string_value(json_object_get(r, "strategy"));
    char aerr[160] = "";
    int k;

    memset(out, 0, sizeof(*out));
    k = strategy != NULL ? LOOKUP(rm_strategy_names, strategy) : ROLLOUT_CANARY;
    if (k < 0) {
        snprintf(err, errlen, "rollout.strategy: unknown \"%s\"", strategy);
        return -1;
    }
    out->strategy = (enum rollout_strategy)k;
    if (parse_steps(json_object_get(r, "canary"), out, err, errlen) != 0 ||
        parse_duration_field(r, "scaleDownDelay", 30000, &out->scale_down_delay_ms, err, errlen) !=
            0 ||
        parse_duration_field(r, "progressDeadline", 600000, &out->progress_deadline_ms, err,
                             errlen) != 0)
        return -1;
    if (out->progress_deadline_ms <= 0) {
        snprintf(err, errlen, "rollout.progressDeadline: more than 0");
        return -1;
    }
    if (analysis_spec_parse(json_object_get(r, "analysis"), &out->analysis, aerr, sizeof(aerr)) !=
        0) {
        snprintf(err, errlen, "rollout.analysis.%s", aerr);
        return -1;
    }
    v = json_object_get(bg, "testPort");
    out->test_port = json_is_integer(v) ? (int)json_integer_value(v) : 8080;
    v = json_object_get(bg, "autoPromote");
    out->auto_promote = json_is_boolean(v) ? json_is_true(v) : true;
    v = json_object_get(json_object_get(bg, "prePromotion"), "measurements");
    out->pre_promotion_measurements = json_is_integer(v) ? (int)json_integer_value(v) : 3;
    out->on_promotion =
        json_is_true(json_object_get(json_object_get(app_spec, "notifications"), "onPromotion"));
    return 0;
}

int rollout_canary_count(int full, int weight)
{
    long n;

    if (full < 1)
        full = 1;
    if (weight < 0)
        weight = 0;
    if (weight > 100)
        weight = 100;
    n = ((long)full * weight + 99) / 100;
    return n < 1 ? 1 : (int)n;
}

int rollout_command_parse(const json_t *command, enum rollout_command *out)
{
    const char *a = json_string_value(json_object_get(command, "action"));
    int k;

    *out = ROLLOUT_CMD_NONE;
    if (command == NULL)
        return 0;
    k = LOOKUP(command_names, a);
    if (k <= 0)
        return -1;
    *out = (enum rollout_command)k;
    if (*out == ROLLOUT_CMD_PROMOTE && json_is_true(json_object_get(command, "full")))
        *out = ROLLOUT_CMD_PROMOTE_FULL;
    return 0;
}

/* ---- state ----------------------------------------------------------------- */

void rollout_state_init(struct rollout_state *s)
{
    memset(s, 0, sizeof(*s));
    s->strategy = ROLLOUT_CANARY;
    s->phase = ROLLOUT_IDLE;
    s->stable_slot = 0;
    s->canary_slot = -1;
    s->scale_down_slot = -1;
    s->pinned_min = -1;
}

bool rollout_active(const struct rollout_state *s)
{
    return s->phase == ROLLOUT_PROGRESSING || s->phase == ROLLOUT_PAUSED ||
           s->phase == ROLLOUT_PROMOTING || s->phase == ROLLOUT_ROLLING_BACK;
}

void rm_wake_at(struct rollout_ctx *c, int64_t t)
{
    if (t <= c->now)
        t = c->now + 1;
    if (c->wake == 0 || t < c->wake)
        c->wake = t;
}

struct rollout_action *rm_act(struct rollout_ctx *c, enum rollout_action_kind kind)
{
    struct rollout_action *a;

    /* Never more than a handful per step by construction; the bound is a
     * guard, and a dropped action is re-emitted by the next step. */
    if (c->res->n_actions >= ROLLOUT_MAX_ACTIONS)
        return NULL;
    a = &c->res->actions[c->res->n_actions++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->slot = -1;
    a->stable_slot = -1;
    return a;
}

void rm_act_scale(struct rollout_ctx *c, int slot, int count)
{
    struct rollout_action *a;
    size_t i;

    for (i = 0; i < c->res->n_actions; i++) {
        a = &c->res->actions[i];
        if (a->kind == ROLLOUT_ACT_SCALE && a->slot == slot) {
            a->count = count; /* one scale per slot and step: the last word */
            return;
        }
    }
    a = rm_act(c, ROLLOUT_ACT_SCALE);

    if (a != NULL) {
        a->slot = slot;
        a->count = count;
    }
}

static void act_register(struct rollout_ctx *c, int slot, const char *rev)
{
    struct rollout_action *a = rm_act(c, ROLLOUT_ACT_REGISTER);

    if (a != NULL) {
        a->slot = slot;
        rm_copy_str(a->revision, sizeof(a->revision), rev);
    }
}

void rm_act_weights(struct rollout_ctx *c, int stable_slot, int canary_weight)
{
    struct rollout_action *a = rm_act(c, ROLLOUT_ACT_SET_WEIGHTS);

    if (a != NULL) {
        a->stable_slot = stable_slot;
        a->canary_weight = canary_weight;
    }
}

void rm_act_stable(struct rollout_ctx *c, int slot, const char *rev)
{
    struct rollout_action *a = rm_act(c, ROLLOUT_ACT_SET_STABLE);

    if (a != NULL) {
        a->slot = slot;
        a->stable_slot = slot;
        rm_copy_str(a->revision, sizeof(a->revision), rev);
    }
}

void rm_act_test_listener(struct rollout_ctx *c, int slot)
{
    struct rollout_action *a = rm_act(c, ROLLOUT_ACT_TEST_LISTENER);

    if (a != NULL)
        a->slot = slot;
    c->s->test_listener = slot >= 0;
}

void rm_unpin(struct rollout_ctx *c)
{
    if (c->s->pinned_min >= 0) {
        rm_act(c, ROLLOUT_ACT_UNPIN_MIN);
        c->s->pinned_min = -1;
    }
}

void rm_event(struct rollout_ctx *c, const char *type, const char *reason, const char *fmt, ...)
{
    struct rollout_event *e;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->s->message, sizeof(c->s->message), fmt, ap);
    va_end(ap);
    if (c->res->n_events >= ROLLOUT_MAX_EVENTS)
        return;
    e = &c->res->events[c->res->n_events++];
    e->type = type;
    rm_copy_str(e->reason, sizeof(e->reason), reason);
    rm_copy_str(e->message, sizeof(e->message), c->s->message);
}

const char *rm_app_name(const struct rollout_ctx *c)
{
    return c->obs->application != NULL ? c->obs->application : "application";
}

bool rm_measuring(const struct rollout_ctx *c)
{
    return c->spec->analysis.n_metrics > 0 && !c->s->initial &&
           c->s->strategy != ROLLOUT_ALL_AT_ONCE;
}

const char *rm_obs_rev(const struct rollout_slot_obs *o)
{
    return o->revision != NULL ? o->revision : "";
}

int rm_full_count(const struct rollout_ctx *c)
{
    return c->obs->full_count > 0 ? c->obs->full_count : 1;
}

/* Makes `slot` run `rev` with n tasks (actions only for what differs). */
void rm_ensure_slot(struct rollout_ctx *c, int slot, const char *rev, int n)
{
    const struct rollout_slot_obs *o = &c->obs->slot[slot];

    if (strcmp(rm_obs_rev(o), rev) != 0)
        act_register(c, slot, rev);
    if (o->desired != n)
        rm_act_scale(c, slot, n);
}

bool rm_slot_healthy(const struct rollout_ctx *c, int slot, const char *rev, int n)
{
    const struct rollout_slot_obs *o = &c->obs->slot[slot];

    return strcmp(rm_obs_rev(o), rev) == 0 && o->healthy >= n && n >= 1;
}

static int64_t next_analysis_at(const struct rollout_spec *spec, const struct rollout_state *s)
{
    int64_t p = (int64_t)spec->analysis.period_s * 1000;
    int64_t g = analysis_grid_ms(spec->analysis.period_s);
    int64_t t = s->analysis_since + p;

    if (s->last_analysis_at + p > t)
        t = s->last_analysis_at + p;
    return (t + g - 1) / g * g;
}

void rollout_step(const struct rollout_spec *spec, const struct rollout_state *in,
                  const struct rollout_obs *obs, int64_t now_ms, struct rollout_state *out,
                  struct rollout_result *res)
{
    struct rollout_ctx c;
    size_t i;

    if (out != in)
        *out = *in;
    memset(res, 0, sizeof(*res));
    c.spec = spec;
    c.s = out;
    c.obs = obs;
    c.now = now_ms;
    c.res = res;
    c.wake = 0;
    if (out->stable_slot != 0 && out->stable_slot != 1)
        out->stable_slot = 0;

    rm_recover_stable(&c);
    if (rm_apply_revision(&c)) {
        rm_command(&c);
        rm_apply_round(&c);
        switch (out->phase) {
        case ROLLOUT_IDLE:
        case ROLLOUT_ROLLED_BACK:
            rm_idle(&c);
            break;
        case ROLLOUT_PROGRESSING:
            if (out->strategy == ROLLOUT_CANARY && !out->initial)
                rm_canary_progress(&c);
            else
                rm_full_size_progress(&c);
            break;
        case ROLLOUT_PAUSED:
            rm_paused(&c);
            break;
        case ROLLOUT_PROMOTING:
            rm_promoting(&c);
            break;
        case ROLLOUT_SCALING_DOWN:
            rm_scaling_down(&c);
            break;
        case ROLLOUT_ROLLING_BACK:
            rm_finish_rollback(&c);
            break;
        }
    }
    /* Whatever the step did, come back for what the new state waits on. */
    if (out->analysis_since != 0 && rm_measuring(&c))
        rm_wake_at(&c, rollout_next_round_at(spec, out));
    if (out->phase == ROLLOUT_SCALING_DOWN)
        rm_wake_at(&c, out->scale_down_at);
    if (out->progress_deadline_at != 0 && rollout_active(out))
        rm_wake_at(&c, out->progress_deadline_at);
    if (out->phase == ROLLOUT_PROMOTING || out->phase == ROLLOUT_ROLLING_BACK)
        rm_wake_at(&c, now_ms + ROLLOUT_POLL_MS);
    for (i = 0; i < out->n_outbox; i++) {
        struct rollout_action *a = rm_act(&c, ROLLOUT_ACT_ALERT);

        if (a != NULL)
            a->alert = &out->outbox[i];
    }
    res->requeue_after_ms = c.wake != 0 ? (long)(c.wake - now_ms) : 0;
}

bool rollout_analysis_due(const struct rollout_spec *spec, const struct rollout_state *s,
                          int64_t now_ms, int64_t *start_ms, int64_t *end_ms)
{
    int64_t p = (int64_t)spec->analysis.period_s * 1000;
    int64_t g = analysis_grid_ms(spec->analysis.period_s);
    int64_t end = now_ms / g * g;

    if (s->analysis_since == 0 || spec->analysis.n_metrics == 0 || s->initial ||
        s->strategy == ROLLOUT_ALL_AT_ONCE || p <= 0)
        return false;
    if (s->phase != ROLLOUT_PROGRESSING && s->phase != ROLLOUT_PAUSED &&
        s->phase != ROLLOUT_PROMOTING && s->phase != ROLLOUT_SCALING_DOWN)
        return false;
    if (end - p < s->analysis_since || end < s->last_analysis_at + p)
        return false;
    *start_ms = end - p;
    *end_ms = end;
    return true;
}

int64_t rollout_next_round_at(const struct rollout_spec *spec, const struct rollout_state *s)
{
    if (s->analysis_since == 0 || spec->analysis.n_metrics == 0 || s->initial ||
        s->strategy == ROLLOUT_ALL_AT_ONCE || spec->analysis.period_s <= 0)
        return 0;
    return next_analysis_at(spec, s) + ROLLOUT_SLACK_MS;
}

void rollout_analysis_slots(const struct rollout_state *s, int *canary_slot,
                            const char **canary_revision, int *stable_slot,
                            const char **stable_revision)
{
    if (s->phase == ROLLOUT_SCALING_DOWN) {
        *canary_slot = s->stable_slot;
        *canary_revision = s->stable_revision;
        *stable_slot = s->scale_down_slot;
        *stable_revision = s->previous_revision[0] ? s->previous_revision : NULL;
        return;
    }
    *canary_slot = s->canary_slot;
    *canary_revision = s->canary_revision[0] ? s->canary_revision : NULL;
    *stable_slot = s->initial ? -1 : s->stable_slot;
    *stable_revision = s->stable_revision[0] ? s->stable_revision : NULL;
}

int rollout_measured_weight(const struct rollout_state *s)
{
    return s->phase == ROLLOUT_SCALING_DOWN ? 100 : s->weight;
}

void rollout_alert_delivered(struct rollout_state *s, const char *id)
{
    size_t i;

    for (i = 0; i < s->n_outbox; i++) {
        if (strcmp(s->outbox[i].id, id) != 0)
            continue;
        if (s->n_sent == ROLLOUT_SENT_MAX) {
            memmove(&s->sent[0], &s->sent[1], (ROLLOUT_SENT_MAX - 1) * sizeof(s->sent[0]));
            s->n_sent--;
        }
        rm_copy_str(s->sent[s->n_sent++], sizeof(s->sent[0]), id);
        memmove(&s->outbox[i], &s->outbox[i + 1], (s->n_outbox - i - 1) * sizeof(s->outbox[0]));
        s->n_outbox--;
        return;
    }
}

enum status_phase rollout_status_phase(const struct rollout_state *s)
{
    switch (s->phase) {
    case ROLLOUT_IDLE:
        return PHASE_READY;
    case ROLLOUT_PAUSED:
        return PHASE_PAUSED;
    case ROLLOUT_ROLLED_BACK:
        return PHASE_ROLLED_BACK;
    default:
        return PHASE_PROGRESSING;
    }
}

void rollout_set_conditions(const struct rollout_state *s, json_t *status, int64_t now_s)
{
    char msg[512];
    const struct rollout_decision *d = &s->decision;

    switch (s->phase) {
    case ROLLOUT_IDLE:
        snprintf(msg, sizeof(msg), "revision %s serves 100%% on slot %s", s->stable_revision,
                 rm_slot_name(s->stable_slot));
        status_set_condition(status, "Progressing", "False", "RolloutComplete", msg, now_s);
        status_set_condition(status, "Degraded", "False", "RolloutHealthy", "", now_s);
        break;
    case ROLLOUT_ROLLED_BACK:
    case ROLLOUT_ROLLING_BACK:
        snprintf(msg, sizeof(msg), "revision %s rolled back at step %d (canary %d%%): %s",
                 s->rolled_back_revision, d->step + 1, d->weight, d->detail);
        if (d->has_value)
            snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                     " [metric %s, value %g, threshold %g]", d->metric, d->value, d->threshold);
        status_set_condition(status, "Progressing", "False", "RolledBack", msg, now_s);
        status_set_condition(status, "Degraded", "True", d->reason[0] ? d->reason : "RolledBack",
                             msg, now_s);
        break;
    case ROLLOUT_PAUSED:
        snprintf(msg, sizeof(msg), "revision %s paused at step %d (canary %d%%): %s",
                 s->canary_revision, s->step + 1, s->weight, s->paused_reason);
        status_set_condition(status, "Progressing", "False", "RolloutPaused", msg, now_s);
        break;
    default:
        snprintf(msg, sizeof(msg), "%s: revision %s, step %d, canary %d%%",
                 rollout_phase_name(s->phase),
                 s->canary_revision[0] ? s->canary_revision : s->stable_revision, s->step + 1,
                 s->weight);
        status_set_condition(status, "Progressing", "True", "RolloutProgressing", msg, now_s);
        status_set_condition(status, "Degraded", "False", "RolloutHealthy", "", now_s);
        break;
    }
}
