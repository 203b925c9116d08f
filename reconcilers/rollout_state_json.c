/* The rollout state in status.rollout: rollout_state_to_json and
 * rollout_state_from_json (strict on types and bounds; the older
 * {"phase": "Completed"} form is read as idle). Any thread. */
#include <stdio.h>
#include <string.h>

#include "reconcilers/rollout_machine.h"
#include "reconcilers/rollout_machine_internal.h"

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
    return set(o, key, json_string(rm_slot_name(slot)));
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
    rm_copy_str(dst, len, json_string_value(v));
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
            get_int64(p, "at", 0, &al->at_ms) != 0 || (k = LOOKUP(rm_alert_names, kind)) < 0)
            return -1;
        al->kind = (enum rollout_alert_kind)k;
        s->n_outbox++;
    }
    for (i = 0; i < json_array_size(sent) && s->n_sent < ROLLOUT_SENT_MAX; i++) {
        const char *id = json_string_value(json_array_get(sent, i));

        if (id == NULL || strlen(id) >= sizeof(s->sent[0]))
            return -1;
        rm_copy_str(s->sent[s->n_sent++], sizeof(s->sent[0]), id);
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
    if (strategy != NULL && (k = LOOKUP(rm_strategy_names, strategy)) >= 0)
        s->strategy = (enum rollout_strategy)k;
    if (phase != NULL) {
        k = LOOKUP(rm_phase_names, phase);
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
    if (phase != NULL && LOOKUP(rm_phase_names, phase) < 0)
        s->phase = ROLLOUT_IDLE;
    if (rollout_active(s) && s->canary_slot < 0)
        goto fail;
    return 0;
fail:
    rollout_state_init(s);
    return -1;
}
