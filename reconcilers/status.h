/* The status object of DESIGN.md (phase, conditions, events, rollout) as a
 * jansson document, and the rules for changing it: conditions keep their
 * lastTransitionTime unless their status changes, events are bounded and
 * repeated ones are counted instead of appended. Pure functions; the caller
 * owns the document (any thread, not shared). */
#ifndef AVIARY_RECONCILERS_STATUS_H
#define AVIARY_RECONCILERS_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum status_phase {
    PHASE_PENDING,
    PHASE_PROVISIONING,
    PHASE_READY,
    PHASE_PROGRESSING,
    PHASE_PAUSED,
    PHASE_ROLLED_BACK,
    PHASE_FAILED,
    PHASE_DELETING,
};

#define STATUS_EVENTS_MAX 50

/* "Pending", "Provisioning", ... */
const char *status_phase_name(enum status_phase phase);

/* Parses a phase name. Returns 0, or -1 if unknown. */
int status_phase_parse(const char *name, enum status_phase *out);

/* A new status for kind/name: phase Pending, no conditions, no events. NULL
 * when out of memory. Caller decrefs. */
json_t *status_new(const char *kind, const char *name);

void status_set_phase(json_t *status, enum status_phase phase);

/* Sets condition `type` ("Valid", "Synced", "Available", "Progressing",
 * "Degraded") to cond_status ("True", "False", "Unknown") with a reason
 * (CamelCase) and message. lastTransitionTime (RFC 3339, from now) changes
 * only when cond_status does. Returns true when anything changed. */
bool status_set_condition(json_t *status, const char *type, const char *cond_status,
                          const char *reason, const char *message, int64_t now);

/* The condition's status string, or NULL when the condition is absent. */
const char *status_condition(const json_t *status, const char *type);

/* Records an event ("Normal"/"Warning", reason, message). The same reason and
 * message as the newest event bump its count and lastTime instead; the list
 * keeps the newest STATUS_EVENTS_MAX. */
void status_add_event(json_t *status, const char *type, const char *reason, const char *message,
                      int64_t now);

/* Formats unix seconds as RFC 3339 UTC ("2026-11-27T07:00:00Z") into out[21]. */
void status_format_time(int64_t t, char out[21]);

#endif
