/* Human-readable views of status objects for `aviary status`: an aligned
 * table of every object, and the detail of one (conditions, rollout,
 * analysis history, events). Pure formatting; any thread. */
#ifndef AVIARY_CONTROLLER_STATUS_VIEW_H
#define AVIARY_CONTROLLER_STATUS_VIEW_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* Prints NAME KIND PHASE REVISION TRAFFIC ENDPOINT AGE for every status
 * object in the array `objects`; now is unix seconds (for ages). */
void status_view_table(FILE *out, const json_t *objects, int64_t now);

/* Prints one status object in full. */
void status_view_detail(FILE *out, const json_t *obj, int64_t now);

/* Formats an age in seconds as "45s", "12m", "3h", "5d" into out. */
void status_view_age(int64_t seconds, char *out, size_t len);

/* Formats a traffic split as a 10-cell bar plus percentages, e.g.
 * "[#########-] 90/10"; "-" when there is no weight information. */
void status_view_traffic(const json_t *status, char *out, size_t len);

#endif
