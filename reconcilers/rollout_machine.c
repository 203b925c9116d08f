/* The progressive-delivery state machine: canary steps, blue/green,
 * all-at-once and first deployments, analysis verdicts, progress deadlines,
 * rollbacks, manual commands and alerts, as a pure function of spec, state,
 * observations and time. Any thread (no shared state, no clock, no I/O). */
#include "reconcilers/rollout_machine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reconcilers/duration.h"

static const char *const strategy_names[] = {"canary", "blueGreen", "allAtOnce"};
static const char *const phase_names[] = {"Idle",        "Progressing", "Paused",    "Promoting",
                                          "ScalingDown", "RollingBack", "RolledBack"};
static const char *const command_names[] = {"none",  "promote", "promote-full", "abort",
                                            "pause", "resume",  "retry"};
static const char *const alert_names[] = {"rollback", "inconclusive-pause", "promotion"};
static const char *const action_names[] = {"register",  "scale",      "set-weights",   "pin-min",
                                           "unpin-min", "set-stable", "test-listener", "alert"};

#define NAME_OF(table, i)                                                                          \
    ((unsigned)(i) < sizeof(table) / sizeof((table)[0]) ? (table)[i] : "unknown")

const char *rollout_strategy_name(enum rollout_strategy s)
{
    return NAME_OF(strategy_names, s);
}

const char *rollout_phase_name(enum rollout_phase p)
{
    return NAME_OF(phase_names, p);
}

const char *rollout_command_name(enum rollout_command c)
{
    return NAME_OF(command_names, c);
}

const char *rollout_alert_kind_name(enum rollout_alert_kind k)
{
    return NAME_OF(alert_names, k);
}

const char *rollout_action_name(enum rollout_action_kind k)
{
    return NAME_OF(action_names, k);
}

static int lookup(const char *const *table, size_t n, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < n; i++) {
        if (strcmp(table[i], name) == 0)
            return (int)i;
    }
    return -1;
}

#define LOOKUP(table, name) lookup(table, sizeof(table) / sizeof((table)[0]), name)

static const char *slot_name(int slot)
{
    return slot == 0 ? "a" : slot == 1 ? "b" : "-";
}

static void copy_str(char *dst, size_t len, const char *src)
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
    k = strategy != NULL ? LOOKUP(strategy_names, strategy) : ROLLOUT_CANARY;
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

/* ---- one step ---------------------------------------------------------------- */

struct ctx {
    const struct rollout_spec *spec;
    struct rollout_state *s;
    const struct rollout_obs *obs;
    int64_t now;
    struct rollout_result *res;
    int64_t wake; /* earliest time to come back, 0: none */
};

static void wake_at(struct ctx *c, int64_t t)
{
    if (t <= c->now)
        t = c->now + 1;
    if (c->wake == 0 || t < c->wake)
        c->wake = t;
}

static struct rollout_action *act(struct ctx *c, enum rollout_action_kind kind)
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

static void act_scale(struct ctx *c, int slot, int count)
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
    a = act(c, ROLLOUT_ACT_SCALE);

    if (a != NULL) {
        a->slot = slot;
        a->count = count;
    }
}

static void act_register(struct ctx *c, int slot, const char *rev)
{
    struct rollout_action *a = act(c, ROLLOUT_ACT_REGISTER);

    if (a != NULL) {
        a->slot = slot;
        copy_str(a->revision, sizeof(a->revision), rev);
    }
}

static void act_weights(struct ctx *c, int stable_slot, int canary_weight)
{
    struct rollout_action *a = act(c, ROLLOUT_ACT_SET_WEIGHTS);

    if (a != NULL) {
        a->stable_slot = stable_slot;
        a->canary_weight = canary_weight;
    }
}

static void act_stable(struct ctx *c, int slot, const char *rev)
{
    struct rollout_action *a = act(c, ROLLOUT_ACT_SET_STABLE);

    if (a != NULL) {
        a->slot = slot;
        a->stable_slot = slot;
        copy_str(a->revision, sizeof(a->revision), rev);
    }
}

static void act_test_listener(struct ctx *c, int slot)
{
    struct rollout_action *a = act(c, ROLLOUT_ACT_TEST_LISTENER);

    if (a != NULL)
        a->slot = slot;
    c->s->test_listener = slot >= 0;
}

static void unpin(struct ctx *c)
{
    if (c->s->pinned_min >= 0) {
        act(c, ROLLOUT_ACT_UNPIN_MIN);
        c->s->pinned_min = -1;
    }
}

static void event(struct ctx *c, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void event(struct ctx *c, const char *type, const char *reason, const char *fmt, ...)
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
    copy_str(e->reason, sizeof(e->reason), reason);
    copy_str(e->message, sizeof(e->message), c->s->message);
}

static const char *app_name(const struct ctx *c)
{
    return c->obs->application != NULL ? c->obs->application : "application";
}

/* Queues an alert in the state's outbox (emitted as an action at the end of
 * the step, and again until delivered). */
static struct rollout_alert *alert_new(struct ctx *c, enum rollout_alert_kind kind)
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
    snprintf(a->id, sizeof(a->id), "%.40s/%lld/%d/%s", app_name(c), (long long)s->rollout_seq,
             s->alert_seq, rollout_alert_kind_name(kind));
    a->kind = kind;
    a->at_ms = c->now;
    return a;
}

static void dashboard_line(const struct ctx *c, char *buf, size_t len)
{
    if (c->obs->dashboard_url != NULL && c->obs->dashboard_url[0] != '\0')
        snprintf(buf, len, "Dashboard: %.400s\n", c->obs->dashboard_url);
    else
        buf[0] = '\0';
}

static void alert_rollback(struct ctx *c)
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
                 slot_name(s->stable_slot));
    dashboard_line(c, dash, sizeof(dash));
    snprintf(a->subject, sizeof(a->subject), "aviary: %.40s rolled back revision %.20s",
             app_name(c), s->canary_revision);
    snprintf(a->body, sizeof(a->body),
             "Application %s: the rollout of revision %s was rolled back (%s).\n"
             "%s"
             "Why: %s\n"
             "At: step %d of %zu, canary traffic share %d%%.\n"
             "Traffic: %s.\n"
             "The revision is not retried until the manifest changes or `aviary retry %s`.\n"
             "%s"
             "Alert id: %s\n",
             app_name(c), s->canary_revision, d->reason, value, d->detail,
             d->step < (int)c->spec->n_steps ? d->step + 1 : (int)c->spec->n_steps,
             c->spec->n_steps, d->weight, traffic, app_name(c), dash, a->id);
}

static void alert_pause(struct ctx *c, const struct analysis_round *r)
{
    struct rollout_state *s = c->s;
    struct rollout_alert *a = alert_new(c, ROLLOUT_ALERT_PAUSE);
    char dash[420];

    dashboard_line(c, dash, sizeof(dash));
    snprintf(a->subject, sizeof(a->subject), "aviary: %.40s rollout paused (inconclusive data)",
             app_name(c));
    snprintf(a->body, sizeof(a->body),
             "Application %s: the rollout of revision %s is paused at step %d of %zu "
             "(canary traffic share %d%%) after %d inconclusive measurements in a row.\n"
             "Last: %s (%ld canary requests in the window).\n"
             "It is never promoted unmeasured. `aviary resume %s` measures again, "
             "`aviary promote %s` continues anyway, `aviary abort %s` rolls back.\n"
             "%s"
             "Alert id: %s\n",
             app_name(c), s->canary_revision,
             s->step < (int)c->spec->n_steps ? s->step + 1 : s->step, c->spec->n_steps, s->weight,
             s->inconclusive_in_a_row, r->detail, r->samples, app_name(c), app_name(c), app_name(c),
             dash, a->id);
}

static void alert_promotion(struct ctx *c)
{
    struct rollout_state *s = c->s;
    struct rollout_alert *a = alert_new(c, ROLLOUT_ALERT_PROMOTION);
    char dash[420];

    dashboard_line(c, dash, sizeof(dash));
    snprintf(a->subject, sizeof(a->subject), "aviary: %.40s promoted revision %.20s", app_name(c),
             s->stable_revision);
    snprintf(a->body, sizeof(a->body),
             "Application %s: revision %s was promoted (%s) and takes 100%% of the traffic "
             "(slot %s). The previous revision %s keeps running for the scale-down delay.\n"
             "Measurements: %d successful, %d failed.\n"
             "%s"
             "Alert id: %s\n",
             app_name(c), s->stable_revision, rollout_strategy_name(s->strategy),
             slot_name(s->stable_slot), s->previous_revision[0] ? s->previous_revision : "-",
             s->successes, s->failures, dash, a->id);
}

static bool measuring(const struct ctx *c)
{
    return c->spec->analysis.n_metrics > 0 && !c->s->initial &&
           c->s->strategy != ROLLOUT_ALL_AT_ONCE;
}

static const char *obs_rev(const struct rollout_slot_obs *o)
{
    return o->revision != NULL ? o->revision : "";
}

static int full_count(const struct ctx *c)
{
    return c->obs->full_count > 0 ? c->obs->full_count : 1;
}

/* Makes `slot` run `rev` with n tasks (actions only for what differs). */
static void ensure_slot(struct ctx *c, int slot, const char *rev, int n)
{
    const struct rollout_slot_obs *o = &c->obs->slot[slot];

    if (strcmp(obs_rev(o), rev) != 0)
        act_register(c, slot, rev);
    if (o->desired != n)
        act_scale(c, slot, n);
}

static bool slot_healthy(const struct ctx *c, int slot, const char *rev, int n)
{
    const struct rollout_slot_obs *o = &c->obs->slot[slot];

    return strcmp(obs_rev(o), rev) == 0 && o->healthy >= n && n >= 1;
}

static void begin_rollback(struct ctx *c, const char *reason, const struct analysis_round *r,
                           const char *detail);

/* True when the canary slot runs the canary revision with n healthy tasks;
 * otherwise runs the progress deadline (which may start a rollback). */
static bool canary_ready(struct ctx *c, int n)
{
    struct rollout_state *s = c->s;
    char detail[ANALYSIS_DETAIL_MAX];

    if (slot_healthy(c, s->canary_slot, s->canary_revision, n)) {
        s->progress_deadline_at = 0;
        return true;
    }
    if (s->progress_deadline_at == 0)
        s->progress_deadline_at = c->now + c->spec->progress_deadline_ms;
    if (c->now >= s->progress_deadline_at) {
        const struct rollout_slot_obs *o = &c->obs->slot[s->canary_slot];
        char d[16];

        snprintf(detail, sizeof(detail), "%d of %d new tasks healthy within progressDeadline %s",
                 strcmp(obs_rev(o), s->canary_revision) == 0 ? o->healthy : 0, n,
                 duration_format(c->spec->progress_deadline_ms, d, sizeof(d)));
        begin_rollback(c, "ProgressDeadlineExceeded", NULL, detail);
        return false;
    }
    wake_at(c, s->progress_deadline_at);
    wake_at(c, c->now + ROLLOUT_POLL_MS);
    return false;
}

/* The stable slot can take all traffic back: all its desired tasks healthy,
 * or at least one once the rollback has waited a whole progress deadline. */
static bool stable_ready(const struct ctx *c)
{
    const struct rollout_state *s = c->s;
    const struct rollout_slot_obs *o = &c->obs->slot[s->stable_slot];
    int need = o->desired > 1 ? o->desired : 1;

    if (strcmp(obs_rev(o), s->stable_revision) != 0)
        return false;
    if (o->healthy >= need)
        return true;
    return o->healthy >= 1 && s->rollback_started_at > 0 &&
           c->now >= s->rollback_started_at + c->spec->progress_deadline_ms;
}

static void finish_rollback(struct ctx *c)
{
    struct rollout_state *s = c->s;
    const struct rollout_decision *d = &s->decision;

    if (!s->initial && s->weight > 0 && !stable_ready(c)) {
        wake_at(c, c->now + ROLLOUT_POLL_MS);
        return;
    }
    if (s->weight > 0)
        act_weights(c, s->stable_slot, 0); /* first: all traffic back in one call */
    s->weight = 0;
    if (!s->initial)
        act_stable(c, s->stable_slot, s->stable_revision);
    if (s->canary_slot >= 0)
        act_scale(c, s->canary_slot, 0);
    if (s->test_listener)
        act_test_listener(c, -1);
    unpin(c);
    s->phase = ROLLOUT_ROLLED_BACK;
    s->analysis_since = 0;
    s->progress_deadline_at = 0;
    s->paused_reason[0] = '\0';
    event(c, "Warning", "RolledBack", "revision %s rolled back at step %d (%d%%): %s: %s",
          s->canary_revision, d->step + 1, d->weight, d->reason, d->detail);
}

static void begin_rollback(struct ctx *c, const char *reason, const struct analysis_round *r,
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

        copy_str(s->canary_revision, sizeof(s->canary_revision), s->stable_revision);
        copy_str(s->stable_revision, sizeof(s->stable_revision), s->previous_revision);
        s->canary_slot = promoted;
        s->stable_slot = s->scale_down_slot;
        s->scale_down_slot = -1;
        s->scale_down_at = 0;
        s->previous_revision[0] = '\0';
        s->weight = 100;
    }
    memset(d, 0, sizeof(*d));
    s->has_decision = true;
    copy_str(d->reason, sizeof(d->reason), reason);
    d->step = s->step;
    d->weight = s->weight;
    d->at_ms = c->now;
    if (r != NULL) {
        copy_str(d->metric, sizeof(d->metric), r->metric);
        d->has_value = r->has_value;
        d->value = r->value;
        d->threshold = r->threshold;
        copy_str(d->detail, sizeof(d->detail), r->detail);
    } else {
        copy_str(d->detail, sizeof(d->detail), detail);
    }
    copy_str(s->rolled_back_revision, sizeof(s->rolled_back_revision), s->canary_revision);
    s->phase = ROLLOUT_ROLLING_BACK;
    s->rollback_started_at = c->now;
    s->analysis_since = 0;
    alert_rollback(c);
    event(c, "Warning", "RollingBack", "rolling back revision %s: %s: %s", s->canary_revision,
          reason, d->detail);
    finish_rollback(c);
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

static void start_rollout(struct ctx *c, const char *rev)
{
    struct rollout_state *s = c->s;
    const struct rollout_slot_obs *st;

    s->initial = s->stable_revision[0] == '\0';
    s->strategy = s->initial ? ROLLOUT_ALL_AT_ONCE : c->spec->strategy;
    s->rollout_seq++;
    s->alert_seq = 0;
    copy_str(s->canary_revision, sizeof(s->canary_revision), rev);
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
        struct rollout_action *a = act(c, ROLLOUT_ACT_PIN_MIN);

        s->pinned_min = st->desired;
        if (a != NULL)
            a->min = s->pinned_min;
    }
    event(c, "Normal", "RolloutStarted", "revision %s (%s) on slot %s%s", rev,
          rollout_strategy_name(s->strategy), slot_name(s->canary_slot),
          s->initial ? ", first deployment" : "");
}

/* The listener goes to the new revision: it becomes stable, the old slot
 * keeps running for scaleDownDelay. */
static void switch_traffic(struct ctx *c)
{
    struct rollout_state *s = c->s;
    int old = s->stable_slot;

    act_weights(c, s->canary_slot, 0);
    act_stable(c, s->canary_slot, s->canary_revision);
    if (s->test_listener)
        act_test_listener(c, -1);
    unpin(c);
    if (!s->initial)
        copy_str(s->previous_revision, sizeof(s->previous_revision), s->stable_revision);
    copy_str(s->stable_revision, sizeof(s->stable_revision), s->canary_revision);
    s->stable_slot = s->canary_slot;
    s->canary_slot = -1;
    s->canary_revision[0] = '\0';
    s->weight = 0;
    s->step = (int)c->spec->n_steps;
    s->progress_deadline_at = 0;
    s->paused_reason[0] = '\0';
    event(c, "Normal", "Promoted", "revision %s takes 100%% on slot %s", s->stable_revision,
          slot_name(s->stable_slot));
    if (c->spec->on_promotion && !s->initial)
        alert_promotion(c);
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
    if (s->strategy == ROLLOUT_BLUE_GREEN && measuring(c)) {
        /* Post-promotion analysis of the new stable slot during the delay. */
        reset_analysis(s);
        s->analysis_since = c->now;
    }
}

static void promoting(struct ctx *c)
{
    struct rollout_state *s = c->s;
    int n = full_count(c);

    ensure_slot(c, s->canary_slot, s->canary_revision, n);
    if (!canary_ready(c, n))
        return;
    switch_traffic(c);
}

static void begin_promotion(struct ctx *c, const char *why)
{
    c->s->phase = ROLLOUT_PROMOTING;
    c->s->paused_reason[0] = '\0';
    event(c, "Normal", "Promoting", "revision %s: %s", c->s->canary_revision, why);
    promoting(c);
}

static void pause_rollout(struct ctx *c, const char *reason)
{
    c->s->phase = ROLLOUT_PAUSED;
    copy_str(c->s->paused_reason, sizeof(c->s->paused_reason), reason);
}

/* An intermediate step may advance: nothing measured at this weight yet, or
 * the latest round succeeded (a failed or inconclusive one holds it). */
static bool gate_step(const struct ctx *c)
{
    const struct rollout_state *s = c->s;

    return !measuring(c) || s->weight == 0 || s->last_verdict == ANALYSIS_NONE ||
           s->last_verdict == ANALYSIS_SUCCESSFUL;
}

/* Promotion needs a successful latest round (never unmeasured). */
static bool gate_final(const struct ctx *c)
{
    return !measuring(c) || c->s->last_verdict == ANALYSIS_SUCCESSFUL;
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

static void advance(struct ctx *c)
{
    struct rollout_state *s = c->s;

    s->step++;
    s->step_started_at = c->now;
    if (s->step < (int)c->spec->n_steps)
        event(c, "Normal", "StepStarted", "step %d of %zu (canary %d%%)", s->step + 1,
              c->spec->n_steps, s->weight);
}

static void canary_progress(struct ctx *c)
{
    struct rollout_state *s = c->s;
    int guard;

    for (guard = 0; guard <= ROLLOUT_MAX_STEPS && s->phase == ROLLOUT_PROGRESSING; guard++) {
        const struct rollout_step_spec *st;
        int n;

        if (s->step >= (int)c->spec->n_steps) {
            n = rollout_canary_count(full_count(c), s->weight);
            ensure_slot(c, s->canary_slot, s->canary_revision, n);
            if (!canary_ready(c, n))
                return;
            if (gate_final(c))
                begin_promotion(c, "all steps done");
            return;
        }
        st = &c->spec->steps[s->step];
        n = rollout_canary_count(full_count(c), st->weight >= 0 ? st->weight : s->weight);
        ensure_slot(c, s->canary_slot, s->canary_revision, n);
        if (!canary_ready(c, n))
            return; /* traffic moves only to healthy targets */
        if (st->weight >= 0) {
            if (s->weight != st->weight) {
                act_weights(c, s->stable_slot, st->weight);
                s->weight = st->weight;
                if (s->weight > 0 && s->analysis_since == 0 && measuring(c))
                    s->analysis_since = c->now;
                event(c, "Normal", "WeightSet", "canary %s at %d%% (%d tasks)", s->canary_revision,
                      s->weight, n);
            }
            if (!gate_step(c))
                return;
            advance(c);
            continue;
        }
        if (st->pause_ms < 0) {
            pause_rollout(c, "PauseStep");
            event(c, "Normal", "Paused", "step %d: waiting for `aviary promote`", s->step + 1);
            return;
        }
        if (c->now < s->step_started_at + st->pause_ms) {
            wake_at(c, s->step_started_at + st->pause_ms);
            return;
        }
        if (!gate_step(c))
            return;
        advance(c);
    }
}

/* Blue/green, all-at-once and first deployments: the new slot at full size,
 * then (blue/green) the test listener and pre-promotion analysis. */
static void full_size_progress(struct ctx *c)
{
    struct rollout_state *s = c->s;
    int n = full_count(c);
    bool bg = s->strategy == ROLLOUT_BLUE_GREEN && !s->initial;
    int need = c->spec->pre_promotion_measurements;

    ensure_slot(c, s->canary_slot, s->canary_revision, n);
    if (!canary_ready(c, n))
        return;
    if (bg && !s->test_listener) {
        act_test_listener(c, s->canary_slot);
        if (measuring(c) && need > 0)
            s->analysis_since = c->now;
        event(c, "Normal", "TestListener", "revision %s healthy at full size behind port %d",
              s->canary_revision, c->spec->test_port);
    }
    if (s->phase != ROLLOUT_PROGRESSING)
        return;
    if (bg && measuring(c) && need > 0 &&
        (s->successes < need || s->last_verdict != ANALYSIS_SUCCESSFUL))
        return;
    if (bg && !c->spec->auto_promote) {
        pause_rollout(c, "AwaitingPromotion");
        event(c, "Normal", "Paused", "revision %s ready: waiting for `aviary promote`",
              s->canary_revision);
        return;
    }
    begin_promotion(c, bg ? "pre-promotion analysis passed" : "healthy at full size");
}

/* Keeps the canary sized and healthy while paused (analysis continues). */
static void paused(struct ctx *c)
{
    struct rollout_state *s = c->s;
    bool canary = s->strategy == ROLLOUT_CANARY && !s->initial;
    int n = canary ? rollout_canary_count(full_count(c), s->weight) : full_count(c);

    if (canary && s->step < (int)c->spec->n_steps && c->spec->steps[s->step].weight >= 0 &&
        c->spec->steps[s->step].weight != s->weight)
        n = rollout_canary_count(full_count(c), c->spec->steps[s->step].weight);
    ensure_slot(c, s->canary_slot, s->canary_revision, n);
    canary_ready(c, n);
}

static void scaling_down(struct ctx *c)
{
    struct rollout_state *s = c->s;

    if (c->now < s->scale_down_at) {
        wake_at(c, s->scale_down_at);
        return;
    }
    act_scale(c, s->scale_down_slot, 0);
    event(c, "Normal", "ScaledDown", "slot %s (revision %s) scaled to 0",
          slot_name(s->scale_down_slot), s->previous_revision);
    s->scale_down_slot = -1;
    s->scale_down_at = 0;
    s->previous_revision[0] = '\0';
    s->analysis_since = 0;
    s->phase = ROLLOUT_IDLE;
}

/* Level-based clean-up outside a rollout: the idle slot runs nothing. */
static void idle(struct ctx *c)
{
    struct rollout_state *s = c->s;
    int other = 1 - s->stable_slot;

    if (s->stable_revision[0] != '\0' && c->obs->slot[other].desired > 0)
        act_scale(c, other, 0);
    unpin(c);
}

static void apply_round(struct ctx *c)
{
    struct rollout_state *s = c->s;
    const struct analysis_round *r = c->obs->round;
    const struct analysis_spec *a = &c->spec->analysis;

    if (r == NULL || r->verdict == ANALYSIS_NONE || s->analysis_since == 0 || !measuring(c) ||
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
        event(c, "Warning", "AnalysisFailed", "%s (failure %d, %d tolerated)", r->detail,
              s->failures, a->failure_limit);
        if (s->failures > a->failure_limit)
            begin_rollback(c, "AnalysisFailed", r, NULL);
        break;
    case ANALYSIS_INCONCLUSIVE:
        s->inconclusive_in_a_row++;
        if (s->phase == ROLLOUT_SCALING_DOWN)
            break; /* post-promotion: only failures matter */
        if (s->inconclusive_in_a_row >= a->inconclusive_limit &&
            (s->phase == ROLLOUT_PROGRESSING || s->phase == ROLLOUT_PROMOTING)) {
            pause_rollout(c, "Inconclusive");
            alert_pause(c, r);
            event(c, "Warning", "PausedInconclusive", "%d inconclusive measurements in a row: %s",
                  s->inconclusive_in_a_row, r->detail);
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
static void recover_stable(struct ctx *c)
{
    struct rollout_state *s = c->s;
    int order[2] = {s->stable_slot, 1 - s->stable_slot};
    int i;

    if (s->phase != ROLLOUT_IDLE || s->stable_revision[0] != '\0')
        return;
    for (i = 0; i < 2; i++) {
        const struct rollout_slot_obs *o = &c->obs->slot[order[i]];

        if (obs_rev(o)[0] != '\0' && o->desired > 0 && o->healthy > 0) {
            s->stable_slot = order[i];
            copy_str(s->stable_revision, sizeof(s->stable_revision), obs_rev(o));
            event(c, "Normal", "StableRecovered", "slot %s serves revision %s: taken as stable",
                  slot_name(s->stable_slot), s->stable_revision);
            return;
        }
    }
}

/* A manifest change: the current canary is withdrawn cleanly and the new
 * revision starts from the first step. Returns false when the stable slot
 * cannot take the traffic back yet (nothing else happens this step). */
static bool apply_revision(struct ctx *c)
{
    struct rollout_state *s = c->s;
    const char *d = c->obs->desired_revision;

    if (d == NULL || d[0] == '\0')
        return true;
    switch (s->phase) {
    case ROLLOUT_IDLE:
        if (strcmp(d, s->stable_revision) != 0)
            start_rollout(c, d);
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
        start_rollout(c, d);
        return true;
    case ROLLOUT_SCALING_DOWN:
        if (strcmp(d, s->stable_revision) != 0)
            start_rollout(c, d); /* reuses the old slot as the canary slot */
        return true;
    case ROLLOUT_ROLLING_BACK:
        return true; /* the rollback finishes first */
    case ROLLOUT_PROGRESSING:
    case ROLLOUT_PAUSED:
    case ROLLOUT_PROMOTING:
        if (strcmp(d, s->canary_revision) == 0)
            return true;
        if (s->weight > 0 && !s->initial && !stable_ready(c)) {
            wake_at(c, c->now + ROLLOUT_POLL_MS);
            return false;
        }
        if (s->weight > 0 && !s->initial)
            act_weights(c, s->stable_slot, 0);
        s->weight = 0;
        if (s->test_listener)
            act_test_listener(c, -1);
        event(c, "Normal", "Superseded", "revision %s replaced by %s at step %d",
              s->canary_revision, d, s->step + 1);
        if (strcmp(d, s->stable_revision) == 0) {
            act_scale(c, s->canary_slot, 0);
            unpin(c);
            s->phase = ROLLOUT_IDLE;
            s->canary_revision[0] = '\0';
            s->canary_slot = -1;
            reset_analysis(s);
            return true;
        }
        start_rollout(c, d);
        return true;
    }
    return true;
}

static void command(struct ctx *c)
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
            pause_rollout(c, "Manual");
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
            begin_rollback(c, "Aborted", NULL, "aborted by `aviary abort`");
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
                start_rollout(c, c->obs->desired_revision);
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
    event(c, "Normal", "Command", "%s", res->command_message);
}

void rollout_step(const struct rollout_spec *spec, const struct rollout_state *in,
                  const struct rollout_obs *obs, int64_t now_ms, struct rollout_state *out,
                  struct rollout_result *res)
{
    struct ctx c;
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

    recover_stable(&c);
    if (apply_revision(&c)) {
        command(&c);
        apply_round(&c);
        switch (out->phase) {
        case ROLLOUT_IDLE:
        case ROLLOUT_ROLLED_BACK:
            idle(&c);
            break;
        case ROLLOUT_PROGRESSING:
            if (out->strategy == ROLLOUT_CANARY && !out->initial)
                canary_progress(&c);
            else
                full_size_progress(&c);
            break;
        case ROLLOUT_PAUSED:
            paused(&c);
            break;
        case ROLLOUT_PROMOTING:
            promoting(&c);
            break;
        case ROLLOUT_SCALING_DOWN:
            scaling_down(&c);
            break;
        case ROLLOUT_ROLLING_BACK:
            finish_rollback(&c);
            break;
        }
    }
    /* Whatever the step did, come back for what the new state waits on. */
    if (out->analysis_since != 0 && measuring(&c))
        wake_at(&c, rollout_next_round_at(spec, out));
    if (out->phase == ROLLOUT_SCALING_DOWN)
        wake_at(&c, out->scale_down_at);
    if (out->progress_deadline_at != 0 && rollout_active(out))
        wake_at(&c, out->progress_deadline_at);
    if (out->phase == ROLLOUT_PROMOTING || out->phase == ROLLOUT_ROLLING_BACK)
        wake_at(&c, now_ms + ROLLOUT_POLL_MS);
    for (i = 0; i < out->n_outbox; i++) {
        struct rollout_action *a = act(&c, ROLLOUT_ACT_ALERT);

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
        copy_str(s->sent[s->n_sent++], sizeof(s->sent[0]), id);
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
                 slot_name(s->stable_slot));
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

/* ---- JSON ------------------------------------------------------------------ */

static int set(json_t *o, const char *key, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(o, key, v);
}

static int set_time(json_t *o, const char *key, int64_t t)
{
    if (t == 0) {
        json_object_del(o, key);
        return 0;
    }
    return set(o, key, json_integer((json_int_t)t));
}

static int set_str(json_t *o, const char *key, const char *v)
{
    if (v == NULL || v[0] == '\0') {
        json_object_del(o, key);
        return 0;
    }
    return set(o, key, json_string(v));
}

static int set_slot(json_t *o, const char *key, int slot)
{
    if (slot < 0) {
        json_object_del(o, key);
        return 0;
    }
    return set(o, key, json_string(slot_name(slot)));
}

static json_t *decision_json(const struct rollout_decision *d)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s, s:I}", "reason", d->reason, "metric",
                          d->metric, "step", d->step, "weight", d->weight, "detail", d->detail,
                          "at", (json_int_t)d->at_ms);

    if (o != NULL && d->has_value &&
        (set(o, "value", json_real(d->value)) != 0 ||
         set(o, "threshold", json_real(d->threshold)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *alerts_json(const struct rollout_state *s)
{
    json_t *pending = json_array(), *sent = json_array();
    size_t i;

    for (i = 0; pending != NULL && i < s->n_outbox; i++) {
        const struct rollout_alert *a = &s->outbox[i];

        if (json_array_append_new(pending,
                                  json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", a->id, "kind",
                                            rollout_alert_kind_name(a->kind), "subject", a->subject,
                                            "body", a->body, "at", (json_int_t)a->at_ms)) != 0) {
            json_decref(pending);
            pending = NULL;
        }
    }
    for (i = 0; sent != NULL && i < s->n_sent; i++) {
        if (json_array_append_new(sent, json_string(s->sent[i])) != 0) {
            json_decref(sent);
            sent = NULL;
        }
    }
    if (pending == NULL || sent == NULL) {
        json_decref(pending);
        json_decref(sent);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:i}", "pending", pending, "sent", sent, "seq", s->alert_seq);
}

int rollout_state_to_json(const struct rollout_state *s, json_t *r)
{
    int rc = 0;

    if (!json_is_object(r))
        return -1;
    rc |= set(r, "strategy", json_string(rollout_strategy_name(s->strategy)));
    rc |= set(r, "phase", json_string(rollout_phase_name(s->phase)));
    rc |= set(r, "initial", json_boolean(s->initial));
    rc |= set_str(r, "stableRevision", s->stable_revision);
    rc |= set_str(r, "canaryRevision", s->canary_revision);
    rc |= set_str(r, "rolledBackRevision", s->rolled_back_revision);
    rc |= set_str(r, "previousRevision", s->previous_revision);
    rc |= set_slot(r, "stableSlot", s->stable_slot);
    rc |= set_slot(r, "canarySlot", s->canary_slot);
    rc |= set_slot(r, "scaleDownSlot", s->scale_down_slot);
    rc |= set(r, "step", json_integer(s->step));
    rc |= set(r, "weight", json_integer(s->weight));
    rc |= set(r, "rolloutSeq", json_integer((json_int_t)s->rollout_seq));
    rc |= set_time(r, "startedAt", s->started_at);
    rc |= set_time(r, "stepStartedAt", s->step_started_at);
    rc |= set_time(r, "progressDeadlineAt", s->progress_deadline_at);
    rc |= set_time(r, "rollbackStartedAt", s->rollback_started_at);
    rc |= set_time(r, "analysisSince", s->analysis_since);
    rc |= set_time(r, "lastAnalysisAt", s->last_analysis_at);
    rc |= set_time(r, "scaleDownAt", s->scale_down_at);
    rc |= set(r, "failures", json_integer(s->failures));
    rc |= set(r, "inconclusiveInARow", json_integer(s->inconclusive_in_a_row));
    rc |= set(r, "successes", json_integer(s->successes));
    rc |= set(r, "lastVerdict", json_string(analysis_verdict_name(s->last_verdict)));
    rc |= set_str(r, "pausedReason", s->paused_reason);
    if (s->pinned_min >= 0)
        rc |= set(r, "pinnedMin", json_integer(s->pinned_min));
    else
        json_object_del(r, "pinnedMin");
    rc |= set(r, "testListener", json_boolean(s->test_listener));
    if (s->has_decision)
        rc |= set(r, "decision", decision_json(&s->decision));
    else
        json_object_del(r, "decision");
    rc |= set(r, "alerts", alerts_json(s));
    rc |= set_str(r, "message", s->message);
    return rc != 0 ? -1 : 0;
}

static int get_str(const json_t *o, const char *key, char *dst, size_t len)
{
    const json_t *v = json_object_get(o, key);

    dst[0] = '\0';
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) >= len)
        return -1;
    copy_str(dst, len, json_string_value(v));
    return 0;
}

static int get_int64(const json_t *o, const char *key, int64_t fallback, int64_t *out)
{
    const json_t *v = json_object_get(o, key);

    *out = fallback;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int get_int(const json_t *o, const char *key, int fallback, int lo, int hi, int *out)
{
    int64_t v;

    if (get_int64(o, key, fallback, &v) != 0 || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int get_slot(const json_t *o, const char *key, int fallback, int *out)
{
    const char *v = json_string_value(json_object_get(o, key));

    *out = fallback;
    if (json_object_get(o, key) == NULL)
        return 0;
    if (v == NULL)
        return -1;
    if (strcmp(v, "a") == 0)
        *out = 0;
    else if (strcmp(v, "b") == 0)
        *out = 1;
    else
        return -1;
    return 0;
}

static int get_decision(const json_t *d, struct rollout_decision *out)
{
    int64_t at;

    memset(out, 0, sizeof(*out));
    if (get_str(d, "reason", out->reason, sizeof(out->reason)) != 0 ||
        get_str(d, "metric", out->metric, sizeof(out->metric)) != 0 ||
        get_str(d, "detail", out->detail, sizeof(out->detail)) != 0 ||
        get_int(d, "step", 0, 0, ROLLOUT_MAX_STEPS, &out->step) != 0 ||
        get_int(d, "weight", 0, 0, 100, &out->weight) != 0 || get_int64(d, "at", 0, &at) != 0)
        return -1;
    out->at_ms = at;
    if (json_is_number(json_object_get(d, "value"))) {
        out->has_value = true;
        out->value = json_number_value(json_object_get(d, "value"));
        out->threshold = json_number_value(json_object_get(d, "threshold"));
    }
    return 0;
}

static int get_alerts(const json_t *a, struct rollout_state *s)
{
    const json_t *pending = json_object_get(a, "pending");
    const json_t *sent = json_object_get(a, "sent");
    size_t i;

    if (a == NULL)
        return 0;
    if (get_int(a, "seq", 0, 0, 1 << 30, &s->alert_seq) != 0)
        return -1;
    for (i = 0; i < json_array_size(pending) && s->n_outbox < ROLLOUT_OUTBOX_MAX; i++) {
        const json_t *p = json_array_get(pending, i);
        struct rollout_alert *al = &s->outbox[s->n_outbox];
        char kind[32];
        int k;

        if (get_str(p, "id", al->id, sizeof(al->id)) != 0 ||
            get_str(p, "kind", kind, sizeof(kind)) != 0 ||
            get_str(p, "subject", al->subject, sizeof(al->subject)) != 0 ||
            get_str(p, "body", al->body, sizeof(al->body)) != 0 ||
            get_int64(p, "at", 0, &al->at_ms) != 0 || (k = LOOKUP(alert_names, kind)) < 0)
            return -1;
        al->kind = (enum rollout_alert_kind)k;
        s->n_outbox++;
    }
    for (i = 0; i < json_array_size(sent) && s->n_sent < ROLLOUT_SENT_MAX; i++) {
        const char *id = json_string_value(json_array_get(sent, i));

        if (id == NULL || strlen(id) >= sizeof(s->sent[0]))
            return -1;
        copy_str(s->sent[s->n_sent++], sizeof(s->sent[0]), id);
    }
    return 0;
}

int rollout_state_from_json(const json_t *r, struct rollout_state *s)
{
    const char *strategy = json_string_value(json_object_get(r, "strategy"));
    const char *phase = json_string_value(json_object_get(r, "phase"));
    const char *verdict = json_string_value(json_object_get(r, "lastVerdict"));
    int k;

    rollout_state_init(s);
    if (r == NULL)
        return 0;
    if (!json_is_object(r))
        goto fail;
    if (strategy != NULL && (k = LOOKUP(strategy_names, strategy)) >= 0)
        s->strategy = (enum rollout_strategy)k;
    if (phase != NULL) {
        k = LOOKUP(phase_names, phase);
        if (k >= 0)
            s->phase = (enum rollout_phase)k;
        else if (strcmp(phase, "Completed") != 0 && strcmp(phase, "Progressing") != 0)
            goto fail; /* the older form: Completed / Progressing = idle */
    }
    s->initial = json_is_true(json_object_get(r, "initial"));
    if (get_str(r, "stableRevision", s->stable_revision, sizeof(s->stable_revision)) != 0 ||
        get_str(r, "canaryRevision", s->canary_revision, sizeof(s->canary_revision)) != 0 ||
        get_str(r, "rolledBackRevision", s->rolled_back_revision,
                sizeof(s->rolled_back_revision)) != 0 ||
        get_str(r, "previousRevision", s->previous_revision, sizeof(s->previous_revision)) != 0 ||
        get_slot(r, "stableSlot", 0, &s->stable_slot) != 0 ||
        get_slot(r, "canarySlot", -1, &s->canary_slot) != 0 ||
        get_slot(r, "scaleDownSlot", -1, &s->scale_down_slot) != 0 ||
        get_int(r, "step", 0, 0, ROLLOUT_MAX_STEPS, &s->step) != 0 ||
        get_int(r, "weight", 0, 0, 100, &s->weight) != 0 ||
        get_int64(r, "rolloutSeq", 0, &s->rollout_seq) != 0 ||
        get_int64(r, "startedAt", 0, &s->started_at) != 0 ||
        get_int64(r, "stepStartedAt", 0, &s->step_started_at) != 0 ||
        get_int64(r, "progressDeadlineAt", 0, &s->progress_deadline_at) != 0 ||
        get_int64(r, "rollbackStartedAt", 0, &s->rollback_started_at) != 0 ||
        get_int64(r, "analysisSince", 0, &s->analysis_since) != 0 ||
        get_int64(r, "lastAnalysisAt", 0, &s->last_analysis_at) != 0 ||
        get_int64(r, "scaleDownAt", 0, &s->scale_down_at) != 0 ||
        get_int(r, "failures", 0, 0, 1 << 30, &s->failures) != 0 ||
        get_int(r, "inconclusiveInARow", 0, 0, 1 << 30, &s->inconclusive_in_a_row) != 0 ||
        get_int(r, "successes", 0, 0, 1 << 30, &s->successes) != 0 ||
        get_str(r, "pausedReason", s->paused_reason, sizeof(s->paused_reason)) != 0 ||
        get_int(r, "pinnedMin", -1, -1, 1 << 20, &s->pinned_min) != 0 ||
        get_str(r, "message", s->message, sizeof(s->message)) != 0)
        goto fail;
    if (verdict != NULL && analysis_verdict_parse(verdict, &s->last_verdict) != 0)
        goto fail;
    s->test_listener = json_is_true(json_object_get(r, "testListener"));
    if (json_object_get(r, "decision") != NULL) {
        if (get_decision(json_object_get(r, "decision"), &s->decision) != 0)
            goto fail;
        s->has_decision = true;
    }
    if (get_alerts(json_object_get(r, "alerts"), s) != 0)
        goto fail;
    /* The older form has no canary: whatever it was doing, it is idle now. */
    if (phase != NULL && LOOKUP(phase_names, phase) < 0)
        s->phase = ROLLOUT_IDLE;
    if (rollout_active(s) && s->canary_slot < 0)
        goto fail;
    return 0;
fail:
    rollout_state_init(s);
    return -1;
}
