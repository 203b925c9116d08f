/* Duration parsing and formatting for manifest fields ("1h30m", "500ms").
 * Pure functions; any thread. */
#include "reconcilers/duration.h"

#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    int64_t ms;
};

/* Decreasing order: components must appear in this order, each once. */
static const struct unit units[] = {
    {"h", 3600 * 1000},
    {"m", 60 * 1000},
    {"s", 1000},
    {"ms", 1},
};

#define NUNITS (sizeof(units) / sizeof(units[0]))

static void set_why(const char **why, const char *msg)
{
    if (why != NULL)
        *why = msg;
}

int duration_parse(const char *s, int64_t *out_ms, const char **why)
{
    int64_t total = 0;
    size_t next_unit = 0; /* index of the smallest unit still allowed */
    const char *p = s;

    if (s == NULL || *s == '\0') {
        set_why(why, "empty duration");
        return -1;
    }
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    while (*p != '\0') {
        int64_t value = 0;
        size_t digits = 0, u, ulen = 0;

        if (*p < '0' || *p > '9') {
            set_why(why, *p == '-' || *p == '+'
                             ? "a duration has no sign"
                             : "expected a number followed by a unit (ms, s, m, h)");
            return -1;
        }
        while (*p >= '0' && *p <= '9') {
            /* value * 10 + digit must stay below DURATION_MAX_MS. */
            if (value > (DURATION_MAX_MS - (*p - '0')) / 10) {
                set_why(why, "duration is too long (at most 365 days)");
                return -1;
            }
            value = value * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (*p == '.') {
            set_why(why, "fractions are not supported; use a smaller unit (\"1500ms\", \"90s\")");
            return -1;
        }
        for (u = 0; u < NUNITS; u++) {
            size_t n = strlen(units[u].name);

            /* "ms" must win over "m": try the longer match first. */
            if (strncmp(p, units[u].name, n) == 0 && n > ulen) {
                if (n == 1 && p[1] == 's' && units[u].name[0] == 'm')
                    continue;
                ulen = n;
                break;
            }
        }
        if (u < NUNITS && ulen > 0 && p[ulen] >= 'a' && p[ulen] <= 'z')
            u = NUNITS; /* "5min", "3sec": a longer word, not a unit */
        if (digits == 0 || u == NUNITS || ulen == 0) {
            set_why(why,
                    *p == '\0' ? "missing unit (ms, s, m, h)" : "unknown unit; use ms, s, m or h");
            return -1;
        }
        if (u < next_unit) {
            set_why(why, "units must appear once each, largest first (\"1h30m\")");
            return -1;
        }
        next_unit = u + 1;
        if (value > (DURATION_MAX_MS - total) / units[u].ms) {
            set_why(why, "duration is too long (at most 365 days)");
            return -1;
        }
        total += value * units[u].ms;
        p += ulen;
    }
    *out_ms = total;
    return 0;
}

char *duration_format(int64_t ms, char *buf, size_t len)
{
    size_t off = 0;
    uint64_t v;
    size_t u;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (ms < 0) {
        off += (size_t)snprintf(buf, len, "-");
        v = (uint64_t)(-(ms + 1)) + 1;
    } else {
        v = (uint64_t)ms;
    }
    if (v == 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    for (u = 0; u < NUNITS && off < len; u++) {
        uint64_t n = v / (uint64_t)units[u].ms;

        if (n == 0)
            continue;
        off +=
            (size_t)snprintf(buf + off, len - off, "%llu%s", (unsigned long long)n, units[u].name);
        v -= n * (uint64_t)units[u].ms;
    }
    return buf;
}
