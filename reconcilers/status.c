/* Status documents: phases, conditions, bounded events (see status.h). */
#include "reconcilers/status.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[] = {
    [PHASE_PENDING] = "Pending", [PHASE_PROVISIONING] = "Provisioning",
    [PHASE_READY] = "Ready",     [PHASE_PROGRESSING] = "Progressing",
    [PHASE_PAUSED] = "Paused",   [PHASE_ROLLED_BACK] = "RolledBack",
    [PHASE_FAILED] = "Failed",   [PHASE_DELETING] = "Deleting",
};

#define N_PHASES (sizeof(phase_names) / sizeof(phase_names[0]))

const char *status_phase_name(enum status_phase phase)
{
    return (unsigned)phase < N_PHASES ? phase_names[phase] : "Unknown";
}

int status_phase_parse(const char *name, enum status_phase *out)
{
    for (unsigned i = 0; i < N_PHASES; i++) {
        if (strcmp(name, phase_names[i]) == 0) {
            *out = (enum status_phase)i;
            return 0;
        }
    }
    return -1;
}

void status_format_time(int64_t t, char out[21])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *status_new(const char *kind, const char *name)
{
    return json_pack("{s:s, s:s, s:s, s:[], s:[]}", "kind", kind, "name", name, "phase",
                     status_phase_name(PHASE_PENDING), "conditions", "events");
}

void status_set_phase(json_t *status, enum status_phase phase)
{
    json_object_set_new(status, "phase", json_string(status_phase_name(phase)));
}

static json_t *find_condition(const json_t *status, const char *type)
{
    json_t *conds = json_object_get(status, "conditions");
    size_t i;
    json_t *c;

    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t != NULL && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

const char *status_condition(const json_t *status, const char *type)
{
    return json_string_value(json_object_get(find_condition(status, type), "status"));
}

static bool string_member_equals(const json_t *obj, const char *key, const char *value)
{
    const char *cur = json_string_value(json_object_get(obj, key));
    return cur != NULL && strcmp(cur, value) == 0;
}

bool status_set_condition(json_t *status, const char *type, const char *cond_status,
                          const char *reason, const char *message, int64_t now)
{
    json_t *c = find_condition(status, type);
    json_t *conds;
    char ts[21];
    bool changed = false;

    status_format_time(now, ts);
    if (c == NULL) {
        conds = json_object_get(status, "conditions");
        if (!json_is_array(conds)) {
            conds = json_array();
            json_object_set_new(status, "conditions", conds);
        }
        c = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status", cond_status, "reason",
                      reason, "message", message, "lastTransitionTime", ts);
        json_array_append_new(conds, c);
        return true;
    }
    if (!string_member_equals(c, "status", cond_status)) {
        json_object_set_new(c, "status", json_string(cond_status));
        json_object_set_new(c, "lastTransitionTime", json_string(ts));
        changed = true;
    }
    if (!string_member_equals(c, "reason", reason)) {
        json_object_set_new(c, "reason", json_string(reason));
        changed = true;
    }
    if (!string_member_equals(c, "message", message)) {
        json_object_set_new(c, "message", json_string(message));
        changed = true;
    }
    return changed;
}

void status_add_event(json_t *status, const char *type, const char *reason, const char *message,
                      int64_t now)
{
    json_t *events = json_object_get(status, "events");
    json_t *last;
    char ts[21];

    status_format_time(now, ts);
    if (!json_is_array(events)) {
        events = json_array();
        json_object_set_new(status, "events", events);
    }
    last = json_array_get(events, json_array_size(events) - 1);
    if (last != NULL && string_member_equals(last, "reason", reason) &&
        string_member_equals(last, "message", message) &&
        string_member_equals(last, "type", type)) {
        json_int_t count = json_integer_value(json_object_get(last, "count"));
        json_object_set_new(last, "count", json_integer(count + 1));
        json_object_set_new(last, "lastTime", json_string(ts));
        return;
    }
    json_array_append_new(events, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "type", type,
                                            "reason", reason, "message", message, "count", 1,
                                            "firstTime", ts, "lastTime", ts));
    while (json_array_size(events) > STATUS_EVENTS_MAX)
        json_array_remove(events, 0);
}
