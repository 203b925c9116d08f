/* Duration strings as manifests write them ("500ms", "30s", "5m", "1h",
 * "1h30m"): parsing to milliseconds, overflow-safe. Any thread (pure). */
#ifndef AVIARY_RECONCILERS_DURATION_H
#define AVIARY_RECONCILERS_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Largest accepted duration: 365 days, in milliseconds. Longer values are
 * almost certainly mistakes and would overflow timers on some platforms. */
#define DURATION_MAX_MS ((int64_t)365 * 24 * 3600 * 1000)

/* Parses s: one or more <digits><unit> components, units ms, s, m, h, each
 * unit at most once and in decreasing order ("1h30m", "2m30s", "1s500ms"),
 * or the bare "0". No sign, no spaces, no fractions.
 * Returns 0 and stores the value in *out_ms, or -1 with a static, human
 * readable reason in *why (when why is non-NULL); *out_ms is unchanged on
 * error. */
int duration_parse(const char *s, int64_t *out_ms, const char **why);

/* Formats ms as the shortest canonical duration ("1h30m", "500ms", "0s")
 * into buf (at most len bytes, NUL-terminated). Negative values are written
 * with a leading '-'. Returns buf. */
char *duration_format(int64_t ms, char *buf, size_t len);

#endif
