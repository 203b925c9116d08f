/* Formatting of status objects for the CLI (see status_view.h). */
#include "controller/status_view.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLS 7
#define CELL 96

static const char *str(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : fallback;
}

void status_view_age(int64_t seconds, char *out, size_t len)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 120)
        snprintf(out, len, "%llds", (long long)seconds);
    else if (seconds < 2 * 3600)
        snprintf(out, len, "%lldm", (long long)(seconds / 60));
    else if (seconds < 2 * 86400)
        snprintf(out, len, "%lldh", (long long)(seconds / 3600));
    else
        snprintf(out, len, "%lldd", (long long)(seconds / 86400));
}

/* Parses "2026-11-27T07:00:00Z"; returns -1 when absent or malformed. */
static int64_t parse_time(const char *s)
{
    struct tm tm;

    if (s == NULL)
        return -1;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static void age_of(const char *ts, int64_t now, char *out, size_t len)
{
    int64_t t = parse_time(ts);

    if (t < 0)
        snprintf(out, len, "-");
    else
        status_view_age(now - t, out, len);
}

void status_view_traffic(const json_t *status, char *out, size_t len)
{
    const json_t *rollout = json_object_get(status, "rollout");
    const json_t *w = json_object_get(rollout, "weight");
    char bar[11];
    long canary, stable, cells;

    if (!json_is_integer(w)) {
        snprintf(out, len, "-");
        return;
    }
    canary = (long)json_integer_value(w);
    if (canary < 0)
        canary = 0;
    if (canary > 100)
        canary = 100;
    stable = 100 - canary;
    cells = (stable + 5) / 10;
    for (long i = 0; i < 10; i++)
        bar[i] = i < cells ? '#' : '-';
    bar[10] = '\0';
    if (canary == 0)
        snprintf(out, len, "[%s] 100", bar);
    else
        snprintf(out, len, "[%s] %ld/%ld", bar, stable, canary);
}

/* Prints rows of cells aligned to the widest cell of each column. */
static void print_rows(FILE *out, char (*rows)[COLS][CELL], size_t n_rows, int n_cols)
{
    size_t width[COLS] = {0};

    for (size_t r = 0; r < n_rows; r++)
        for (int c = 0; c < n_cols; c++)
            if (strlen(rows[r][c]) > width[c])
                width[c] = strlen(rows[r][c]);
    for (size_t r = 0; r < n_rows; r++) {
        for (int c = 0; c < n_cols; c++) {
            if (c == n_cols - 1)
                fprintf(out, "%s\n", rows[r][c]);
            else
                fprintf(out, "%-*s  ", (int)width[c], rows[r][c]);
        }
    }
}

void status_view_table(FILE *out, const json_t *objects, int64_t now)
{
    size_t n = json_array_size(objects), i;
    char(*rows)[COLS][CELL] = calloc(n + 1, sizeof(*rows));
    const json_t *o;

    if (rows == NULL)
        return;
    const char *head[COLS] = {"NAME", "KIND", "PHASE", "REVISION", "TRAFFIC", "ENDPOINT", "AGE"};
    for (int c = 0; c < COLS; c++)
        snprintf(rows[0][c], CELL, "%s", head[c]);
    json_array_foreach(objects, i, o)
    {
        char(*row)[CELL] = rows[i + 1];
        snprintf(row[0], CELL, "%s", str(o, "name", "?"));
        snprintf(row[1], CELL, "%s", str(o, "kind", "?"));
        snprintf(row[2], CELL, "%s", str(o, "phase", "Pending"));
        snprintf(row[3], CELL, "%.10s", str(o, "observedRevision", "-"));
        status_view_traffic(o, row[4], CELL);
        snprintf(row[5], CELL, "%s", str(o, "endpoint", "-"));
        age_of(str(o, "creationTime", NULL), now, row[6], CELL);
    }
    if (n == 0)
        fprintf(out, "No objects.\n");
    else
        print_rows(out, rows, n + 1, COLS);
    free(rows);
}

static void print_conditions(FILE *out, const json_t *obj, int64_t now)
{
    const json_t *conds = json_object_get(obj, "conditions");
    size_t n = json_array_size(conds), i;
    char(*rows)[COLS][CELL];
    const json_t *c;

    if (n == 0)
        return;
    rows = calloc(n + 1, sizeof(*rows));
    if (rows == NULL)
        return;
    const char *head[5] = {"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"};
    for (int k = 0; k < 5; k++)
        snprintf(rows[0][k], CELL, "%s", head[k]);
    json_array_foreach(conds, i, c)
    {
        snprintf(rows[i + 1][0], CELL, "%s", str(c, "type", "?"));
        snprintf(rows[i + 1][1], CELL, "%s", str(c, "status", "?"));
        snprintf(rows[i + 1][2], CELL, "%s", str(c, "reason", "-"));
        age_of(str(c, "lastTransitionTime", NULL), now, rows[i + 1][3], CELL);
        snprintf(rows[i + 1][4], CELL, "%s", str(c, "message", ""));
    }
    fprintf(out, "\nConditions:\n");
    print_rows(out, rows, n + 1, 5);
    free(rows);
}

static void print_analysis(FILE *out, const json_t *rollout)
{
    const json_t *hist = json_object_get(rollout, "analysis");
    size_t n = json_array_size(hist), i;
    char(*rows)[COLS][CELL];
    const json_t *m;

    if (n == 0)
        return;
    rows = calloc(n + 1, sizeof(*rows));
    if (rows == NULL)
        return;
    const char *head[6] = {"TIME", "METRIC", "VALUE", "THRESHOLD", "SAMPLES", "VERDICT"};
    for (int k = 0; k < 6; k++)
        snprintf(rows[0][k], CELL, "%s", head[k]);
    json_array_foreach(hist, i, m)
    {
        const json_t *v = json_object_get(m, "value");
        snprintf(rows[i + 1][0], CELL, "%s", str(m, "time", "-"));
        snprintf(rows[i + 1][1], CELL, "%s", str(m, "metric", "-"));
        if (json_is_number(v))
            snprintf(rows[i + 1][2], CELL, "%.4g", json_number_value(v));
        else
            snprintf(rows[i + 1][2], CELL, "-");
        if (str(m, "thresholdText", NULL) != NULL)
            snprintf(rows[i + 1][3], CELL, "%s", str(m, "thresholdText", "-"));
        else if (json_is_number(json_object_get(m, "threshold")))
            snprintf(rows[i + 1][3], CELL, "%.4g",
                     json_number_value(json_object_get(m, "threshold")));
        else
            snprintf(rows[i + 1][3], CELL, "-");
        snprintf(rows[i + 1][4], CELL, "%lld",
                 (long long)json_integer_value(json_object_get(m, "samples")));
        snprintf(rows[i + 1][5], CELL, "%s", str(m, "verdict", "-"));
    }
    fprintf(out, "\nAnalysis:\n");
    print_rows(out, rows, n + 1, 6);
    free(rows);
}

static void print_events(FILE *out, const json_t *obj, int64_t now)
{
    const json_t *events = json_object_get(obj, "events");
    size_t n = json_array_size(events), i;
    char(*rows)[COLS][CELL];
    const json_t *e;

    if (n == 0)
        return;
    rows = calloc(n + 1, sizeof(*rows));
    if (rows == NULL)
        return;
    const char *head[5] = {"LAST", "TYPE", "REASON", "COUNT", "MESSAGE"};
    for (int k = 0; k < 5; k++)
        snprintf(rows[0][k], CELL, "%s", head[k]);
    json_array_foreach(events, i, e)
    {
        age_of(str(e, "lastTime", NULL), now, rows[i + 1][0], CELL);
        snprintf(rows[i + 1][1], CELL, "%s", str(e, "type", "-"));
        snprintf(rows[i + 1][2], CELL, "%s", str(e, "reason", "-"));
        snprintf(rows[i + 1][3], CELL, "%lld",
                 (long long)json_integer_value(json_object_get(e, "count")));
        snprintf(rows[i + 1][4], CELL, "%s", str(e, "message", ""));
    }
    fprintf(out, "\nEvents:\n");
    print_rows(out, rows, n + 1, 5);
    free(rows);
}

void status_view_detail(FILE *out, const json_t *obj, int64_t now)
{
    const json_t *rollout = json_object_get(obj, "rollout");
    char traffic[64];

    fprintf(out, "Name:       %s\n", str(obj, "name", "?"));
    fprintf(out, "Kind:       %s\n", str(obj, "kind", "?"));
    fprintf(out, "Phase:      %s\n", str(obj, "phase", "Pending"));
    fprintf(out, "Revision:   %s\n", str(obj, "observedRevision", "-"));
    fprintf(out, "Endpoint:   %s\n", str(obj, "endpoint", "-"));
    fprintf(out, "Dashboard:  %s\n", str(obj, "dashboardUrl", "-"));
    if (json_is_object(rollout)) {
        status_view_traffic(obj, traffic, sizeof(traffic));
        fprintf(out, "Rollout:    %s, stable %s (slot %s), canary %s, step %lld, traffic %s, %s\n",
                str(rollout, "strategy", "-"), str(rollout, "stableRevision", "-"),
                str(rollout, "stableSlot", "-"), str(rollout, "canaryRevision", "-"),
                (long long)json_integer_value(json_object_get(rollout, "step")), traffic,
                str(rollout, "phase", "-"));
    }
    print_conditions(out, obj, now);
    print_analysis(out, rollout);
    print_events(out, obj, now);
}
