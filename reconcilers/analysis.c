/* Canary analysis: GetMetricData queries for a rollout's metrics, the
 * evaluation of their results into verdicts, and the bounded measurement
 * history. Pure functions; any thread. */
#include "reconcilers/analysis.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reconcilers/duration.h"
#include "reconcilers/status.h"

static const char *const verdict_names[] = {"None", "Successful", "Failed", "Inconclusive"};

const char *analysis_verdict_name(enum analysis_verdict v)
{
    if ((unsigned)v >= sizeof(verdict_names) / sizeof(verdict_names[0]))
        return "None";
    return verdict_names[v];
}

int analysis_verdict_parse(const char *name, enum analysis_verdict *out)
{
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < sizeof(verdict_names) / sizeof(verdict_names[0]); i++) {
        if (strcmp(name, verdict_names[i]) == 0) {
            *out = (enum analysis_verdict)i;
            return 0;
        }
    }
    return -1;
}

static const struct {
    const char *name;
    enum analysis_metric_type type;
} metric_types[] = {
    {"errorRate", ANALYSIS_ERROR_RATE}, {"latency", ANALYSIS_LATENCY},       {"cpu", ANALYSIS_CPU},
    {"memory", ANALYSIS_MEMORY},        {"cloudwatch", ANALYSIS_CLOUDWATCH},
};

int analysis_period_s(int64_t interval_ms)
{
    static const int small[] = {30, 10, 5, 1};
    int64_t s = interval_ms / 1000;
    size_t i;

    if (s >= 60)
        return (int)((s / 60) * 60 > 86400 ? 86400 : (s / 60) * 60);
    for (i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
        if (s >= small[i])
            return small[i];
    }
    return 1;
}

int64_t analysis_grid_ms(int period_s)
{
    return (int64_t)(period_s < 60 ? period_s : 60) * 1000;
}

static int parse_metric(const json_t *m, size_t i, struct analysis_metric *out, char *err,
                        size_t errlen)
{
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *stat = json_string_value(json_object_get(m, "stat"));
    const char *compare = json_string_value(json_object_get(m, "compare"));
    const json_t *v;
    size_t k;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(m) || name == NULL || type == NULL) {
        snprintf(err, errlen, "metrics[%zu]: name and type are required", i);
        return -1;
    }
    if (strlen(name) >= sizeof(out->name)) {
        snprintf(err, errlen, "metrics[%zu]: name too long", i);
        return -1;
    }
    snprintf(out->name, sizeof(out->name), "%s", name);
    for (k = 0; k < sizeof(metric_types) / sizeof(metric_types[0]); k++) {
        if (strcmp(type, metric_types[k].name) == 0)
            break;
    }
    if (k == sizeof(metric_types) / sizeof(metric_types[0])) {
        snprintf(err, errlen, "metrics[%zu]: unknown type \"%s\"", i, type);
        return -1;
    }
    out->type = metric_types[k].type;
    if (out->type == ANALYSIS_LATENCY) {
        if (stat == NULL)
            stat = "p99";
    } else if (out->type == ANALYSIS_CLOUDWATCH) {
        out->query = json_object_get(m, "query");
        if (!json_is_object(out->query) ||
            !json_is_string(json_object_get(out->query, "namespace")) ||
            !json_is_string(json_object_get(out->query, "metricName"))) {
            snprintf(err, errlen,
                     "metrics[%zu]: cloudwatch needs query.namespace and "
                     "query.metricName",
                     i);
            return -1;
        }
        stat = json_string_value(json_object_get(out->query, "stat"));
        if (stat == NULL)
            stat = "Average";
    } else {
        stat = (out->type == ANALYSIS_ERROR_RATE) ? "Sum" : "Average";
    }
    if (strlen(stat) >= sizeof(out->stat)) {
        snprintf(err, errlen, "metrics[%zu]: stat too long", i);
        return -1;
    }
    snprintf(out->stat, sizeof(out->stat), "%s", stat);
    if ((v = json_object_get(m, "max")) != NULL && json_is_number(v)) {
        out->has_max = true;
        out->max = json_number_value(v);
    }
    if ((v = json_object_get(m, "min")) != NULL && json_is_number(v)) {
        out->has_min = true;
        out->min = json_number_value(v);
    }
    if (compare != NULL) {
        if (strcmp(compare, "stable") != 0) {
            snprintf(err, errlen, "metrics[%zu]: compare must be \"stable\"", i);
            return -1;
        }
        v = json_object_get(m, "maxIncrease");
        if (!json_is_number(v)) {
            snprintf(err, errlen, "metrics[%zu]: compare: stable requires maxIncrease", i);
            return -1;
        }
        out->compare_stable = true;
        out->max_increase = json_number_value(v);
    }
    if (!out->has_max && !out->has_min && !out->compare_stable) {
        snprintf(err, errlen, "metrics[%zu] (%s): needs max, min or compare: stable", i, name);
        return -1;
    }
    return 0;
}

static long get_long(const json_t *obj, const char *key, long fallback)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? (long)json_integer_value(v) : fallback;
}

int analysis_spec_parse(const json_t *analysis, struct analysis_spec *out, char *err, size_t errlen)
{
    const char *interval = json_string_value(json_object_get(analysis, "interval"));
    const json_t *metrics = json_object_get(analysis, "metrics");
    const char *why = NULL;
    size_t i;

    memset(out, 0, sizeof(*out));
    out->interval_ms = 60000;
    if (interval != NULL && duration_parse(interval, &out->interval_ms, &why) != 0) {
        snprintf(err, errlen, "interval: %s", why);
        return -1;
    }
    if (out->interval_ms < 1000) {
        snprintf(err, errlen, "interval: at least 1s");
        return -1;
    }
    out->period_s = analysis_period_s(out->interval_ms);
    out->min_requests = get_long(analysis, "minRequests", 50);
    out->failure_limit = (int)get_long(analysis, "failureLimit", 1);
    out->inconclusive_limit = (int)get_long(analysis, "inconclusiveLimit", 5);
    if (out->min_requests < 0 || out->failure_limit < 0 || out->inconclusive_limit < 1) {
        snprintf(err, errlen, "minRequests, failureLimit >= 0 and inconclusiveLimit >= 1");
        return -1;
    }
    if (metrics == NULL) {
        /* The CRD's default: one error-rate metric. */
        out->n_metrics = 1;
        snprintf(out->metrics[0].name, sizeof(out->metrics[0].name), "error-rate");
        out->metrics[0].type = ANALYSIS_ERROR_RATE;
        snprintf(out->metrics[0].stat, sizeof(out->metrics[0].stat), "Sum");
        out->metrics[0].has_max = true;
        out->metrics[0].max = 0.05;
        return 0;
    }
    if (!json_is_array(metrics) || json_array_size(metrics) > ANALYSIS_MAX_METRICS) {
        snprintf(err, errlen, "metrics: an array of at most %d", ANALYSIS_MAX_METRICS);
        return -1;
    }
    for (i = 0; i < json_array_size(metrics); i++) {
        if (parse_metric(json_array_get(metrics, i), i, &out->metrics[i], err, errlen) != 0)
            return -1;
    }
    out->n_metrics = json_array_size(metrics);
    return 0;
}

/* ---- queries -------------------------------------------------------------- */

static json_t *dim(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "Name", name, "Value", value);
}

static json_t *query(const char *id, const char *ns, const char *metric, json_t *dims, int period,
                     const char *stat)
{
    if (dims == NULL)
        return NULL;
    return json_pack("{s:s, s:{s:{s:s, s:s, s:o}, s:i, s:s}, s:b}", "Id", id, "MetricStat",
                     "Metric", "Namespace", ns, "MetricName", metric, "Dimensions", dims, "Period",
                     period, "Stat", stat, "ReturnData", 1);
}

static json_t *alb_dims(const struct analysis_target *t, int slot)
{
    if (t->load_balancer == NULL || slot < 0 || slot > 1 || t->target_group[slot] == NULL)
        return NULL;
    return json_pack("[o, o]", dim("LoadBalancer", t->load_balancer),
                     dim("TargetGroup", t->target_group[slot]));
}

static json_t *ecs_dims(const struct analysis_target *t, int slot)
{
    if (t->cluster == NULL || slot < 0 || slot > 1 || t->service[slot] == NULL)
        return NULL;
    return json_pack("[o, o]", dim("ClusterName", t->cluster),
                     dim("ServiceName", t->service[slot]));
}

/* Replaces ${revision}, ${slot} and ${application} in s into out. Returns 0,
 * or -1 when the result does not fit. */
static int substitute(const char *s, const char *revision, const char *slot, const char *app,
                      char *out, size_t len)
{
    static const char *const keys[] = {"${revision}", "${slot}", "${application}"};
    const char *vals[] = {revision ? revision : "", slot ? slot : "", app ? app : ""};
    size_t o = 0;

    while (*s != '\0') {
        size_t k, klen = 0, vlen;

        for (k = 0; k < 3; k++) {
            klen = strlen(keys[k]);
            if (strncmp(s, keys[k], klen) == 0)
                break;
        }
        if (k < 3) {
            vlen = strlen(vals[k]);
            if (o + vlen >= len)
                return -1;
            memcpy(out + o, vals[k], vlen);
            o += vlen;
            s += klen;
        } else {
            if (o + 1 >= len)
                return -1;
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    return 0;
}

static json_t *cloudwatch_dims(const struct analysis_metric *m, const struct analysis_target *t,
                               bool stable)
{
    const json_t *dims = json_object_get(m->query, "dimensions");
    int slot = stable ? t->stable_slot : t->canary_slot;
    const char *slot_name = slot == 0 ? "a" : slot == 1 ? "b" : "";
    const char *rev = stable ? t->stable_revision : t->canary_revision;
    const char *key;
    const json_t *val;
    json_t *out = json_array();
    char buf[1100];

    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)dims, key, val)
    {
        const char *s = json_string_value(val);

        if (s == NULL || substitute(s, rev, slot_name, t->application, buf, sizeof(buf)) != 0 ||
            json_array_append_new(out, dim(key, buf)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *metric_query(const struct analysis_spec *spec, const struct analysis_metric *m,
                            const struct analysis_target *t, const char *id, bool stable)
{
    int slot = stable ? t->stable_slot : t->canary_slot;
    int p = spec->period_s;

    switch (m->type) {
    case ANALYSIS_ERROR_RATE:
        return query(id, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb_dims(t, slot), p,
                     "Sum");
    case ANALYSIS_LATENCY:
        return query(id, "AWS/ApplicationELB", "TargetResponseTime", alb_dims(t, slot), p, m->stat);
    case ANALYSIS_CPU:
        return query(id, "AWS/ECS", "CPUUtilization", ecs_dims(t, slot), p, "Average");
    case ANALYSIS_MEMORY:
        return query(id, "AWS/ECS", "MemoryUtilization", ecs_dims(t, slot), p, "Average");
    case ANALYSIS_CLOUDWATCH:
        return query(id, json_string_value(json_object_get(m->query, "namespace")),
                     json_string_value(json_object_get(m->query, "metricName")),
                     cloudwatch_dims(m, t, stable), p, m->stat);
    }
    return NULL;
}

json_t *analysis_build_queries(const struct analysis_spec *spec, const struct analysis_target *t,
                               char *err, size_t errlen)
{
    json_t *qs = json_array();
    json_t *q;
    bool stable_requests = false;
    char id[32];
    size_t i;

    if (qs == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* The canary's request count: minRequests for every metric, and the
     * divisor of errorRate. */
    q = query("req_c", "AWS/ApplicationELB", "RequestCount", alb_dims(t, t->canary_slot),
              spec->period_s, "Sum");
    if (q == NULL || json_array_append_new(qs, q) != 0) {
        snprintf(err, errlen,
                 "request count: no load balancer or target group dimension "
                 "for slot %d",
                 t->canary_slot);
        goto fail;
    }
    for (i = 0; i < spec->n_metrics; i++) {
        const struct analysis_metric *m = &spec->metrics[i];
        int side;

        for (side = 0; side < (m->compare_stable ? 2 : 1); side++) {
            bool stable = side == 1;

            if (stable && (t->stable_slot < 0 || t->stable_slot > 1)) {
                snprintf(err, errlen, "%s: compare: stable without a stable slot", m->name);
                goto fail;
            }
            snprintf(id, sizeof(id), "m%zu_%c", i, stable ? 's' : 'c');
            q = metric_query(spec, m, t, id, stable);
            if (q == NULL || json_array_append_new(qs, q) != 0) {
                snprintf(err, errlen, "%s: missing dimensions for slot %d", m->name,
                         stable ? t->stable_slot : t->canary_slot);
                goto fail;
            }
            if (stable && m->type == ANALYSIS_ERROR_RATE)
                stable_requests = true;
        }
    }
    if (stable_requests) {
        q = query("req_s", "AWS/ApplicationELB", "RequestCount", alb_dims(t, t->stable_slot),
                  spec->period_s, "Sum");
        if (q == NULL || json_array_append_new(qs, q) != 0) {
            snprintf(err, errlen, "stable request count: missing dimensions");
            goto fail;
        }
    }
    return qs;
fail:
    json_decref(qs);
    return NULL;
}

json_t *analysis_request(const json_t *queries, int64_t start_s, int64_t end_s)
{
    return json_pack("{s:O, s:I, s:I, s:s}", "MetricDataQueries", queries, "StartTime",
                     (json_int_t)start_s, "EndTime", (json_int_t)end_s, "ScanBy",
                     "TimestampAscending");
}

/* ---- evaluation ----------------------------------------------------------- */

enum combine { COMBINE_SUM, COMBINE_MEAN, COMBINE_MAX, COMBINE_MIN };

static enum combine combine_for(const char *stat)
{
    if (strcmp(stat, "Sum") == 0 || strcmp(stat, "SampleCount") == 0)
        return COMBINE_SUM;
    if (strcmp(stat, "Average") == 0)
        return COMBINE_MEAN;
    if (strcmp(stat, "Minimum") == 0)
        return COMBINE_MIN;
    return COMBINE_MAX; /* Maximum, pNN: the worst bucket */
}

/* The values of query `id` in results combined; returns the number of
 * datapoints (0: *out untouched). */
static size_t series_value(const json_t *results, const char *id, enum combine how, double *out)
{
    size_t i, j, n = 0;
    double acc = 0;

    for (i = 0; i < json_array_size(results); i++) {
        const json_t *r = json_array_get(results, i);
        const json_t *vals;

        if (!json_is_string(json_object_get(r, "Id")) ||
            strcmp(json_string_value(json_object_get(r, "Id")), id) != 0)
            continue;
        vals = json_object_get(r, "Values");
        for (j = 0; j < json_array_size(vals); j++) {
            const json_t *v = json_array_get(vals, j);
            double x;

            if (!json_is_number(v))
                continue;
            x = json_number_value(v);
            if (!isfinite(x))
                continue;
            if (n == 0)
                acc = x;
            else if (how == COMBINE_SUM || how == COMBINE_MEAN)
                acc += x;
            else if (how == COMBINE_MAX)
                acc = x > acc ? x : acc;
            else
                acc = x < acc ? x : acc;
            n++;
        }
    }
    if (n > 0)
        *out = how == COMBINE_MEAN ? acc / (double)n : acc;
    return n;
}

/* The canary (stable) value of metric i: errorRate divides the 5xx sum by
 * the request sum. Returns false when there is nothing to measure. */
static bool metric_value(const struct analysis_metric *m, size_t i, const json_t *results,
                         bool stable, double *out)
{
    char id[32];
    double v = 0, req = 0;

    snprintf(id, sizeof(id), "m%zu_%c", i, stable ? 's' : 'c');
    if (m->type == ANALYSIS_ERROR_RATE) {
        if (series_value(results, stable ? "req_s" : "req_c", COMBINE_SUM, &req) == 0 || req <= 0)
            return false;
        if (series_value(results, id, COMBINE_SUM, &v) == 0)
            v = 0; /* ALB writes 5XX counts only when non-zero */
        *out = v / req;
        return true;
    }
    if (series_value(results, id, combine_for(m->stat), &v) == 0)
        return false;
    *out = v;
    return true;
}

static void judge(const struct analysis_spec *spec, const struct analysis_metric *m, size_t i,
                  const json_t *results, long samples, bool have_requests,
                  struct analysis_measurement *out)
{
    double v = 0, s = 0;

    if (m->has_max) {
        out->threshold = m->max;
        snprintf(out->threshold_text, sizeof(out->threshold_text), "max %g", m->max);
    } else if (m->has_min) {
        out->threshold = m->min;
        snprintf(out->threshold_text, sizeof(out->threshold_text), "min %g", m->min);
    }
    if (metric_value(m, i, results, false, &v)) {
        out->has_value = true;
        out->value = v;
    }
    if (m->compare_stable && metric_value(m, i, results, true, &s)) {
        out->has_stable = true;
        out->stable_value = s;
        if (!m->has_max && !m->has_min) {
            out->threshold = s + m->max_increase;
            snprintf(out->threshold_text, sizeof(out->threshold_text), "stable %g + %g", s,
                     m->max_increase);
        }
    }
    if (!have_requests) {
        out->verdict = ANALYSIS_INCONCLUSIVE;
        snprintf(out->reason, sizeof(out->reason), "%ld canary requests < minRequests %ld", samples,
                 spec->min_requests);
        return;
    }
    if (!out->has_value) {
        out->verdict = ANALYSIS_INCONCLUSIVE;
        snprintf(out->reason, sizeof(out->reason), "no datapoints");
        return;
    }
    if (m->has_max && v > m->max) {
        out->verdict = ANALYSIS_FAILED;
        out->threshold = m->max;
        snprintf(out->threshold_text, sizeof(out->threshold_text), "max %g", m->max);
        snprintf(out->reason, sizeof(out->reason), "%g > max %g", v, m->max);
        return;
    }
    if (m->has_min && v < m->min) {
        out->verdict = ANALYSIS_FAILED;
        out->threshold = m->min;
        snprintf(out->threshold_text, sizeof(out->threshold_text), "min %g", m->min);
        snprintf(out->reason, sizeof(out->reason), "%g < min %g", v, m->min);
        return;
    }
    if (m->compare_stable) {
        if (!out->has_stable) {
            out->verdict = ANALYSIS_INCONCLUSIVE;
            snprintf(out->reason, sizeof(out->reason), "no stable datapoints to compare with");
            return;
        }
        if (v - s > m->max_increase) {
            out->verdict = ANALYSIS_FAILED;
            out->threshold = s + m->max_increase;
            snprintf(out->threshold_text, sizeof(out->threshold_text), "stable %g + %g", s,
                     m->max_increase);
            snprintf(out->reason, sizeof(out->reason), "%g > stable %g + maxIncrease %g", v, s,
                     m->max_increase);
            return;
        }
    }
    out->verdict = ANALYSIS_SUCCESSFUL;
    snprintf(out->reason, sizeof(out->reason), "%g within %s", v, out->threshold_text);
}

int analysis_evaluate(const struct analysis_spec *spec, const json_t *results,
                      int64_t window_start_ms, int64_t window_end_ms,
                      struct analysis_measurement *out, struct analysis_round *round)
{
    double req = 0;
    long samples = 0;
    bool have_requests;
    int inconclusive = -1, failed = -1;
    size_t i;

    if (series_value(results, "req_c", COMBINE_SUM, &req) > 0 && req > 0)
        samples = req > 1e15 ? (long)1e15 : (long)llround(req);
    /* minRequests 0 turns the request gate off (a smoke test reporting its
     * own metric); a metric without datapoints stays Inconclusive anyway. */
    have_requests = spec->min_requests <= 0 || (samples > 0 && samples >= spec->min_requests);
    for (i = 0; i < spec->n_metrics; i++) {
        struct analysis_measurement *m = &out[i];

        memset(m, 0, sizeof(*m));
        m->time_ms = window_end_ms;
        m->window_start_ms = window_start_ms;
        m->window_end_ms = window_end_ms;
        snprintf(m->metric, sizeof(m->metric), "%s", spec->metrics[i].name);
        m->samples = samples;
        judge(spec, &spec->metrics[i], i, results, samples, have_requests, m);
        if (m->verdict == ANALYSIS_FAILED && failed < 0)
            failed = (int)i;
        if (m->verdict == ANALYSIS_INCONCLUSIVE && inconclusive < 0)
            inconclusive = (int)i;
    }
    memset(round, 0, sizeof(*round));
    round->window_start_ms = window_start_ms;
    round->window_end_ms = window_end_ms;
    round->samples = samples;
    round->verdict = ANALYSIS_SUCCESSFUL;
    if (failed >= 0 || inconclusive >= 0) {
        const struct analysis_measurement *m = &out[failed >= 0 ? failed : inconclusive];

        round->verdict = m->verdict;
        snprintf(round->metric, sizeof(round->metric), "%s", m->metric);
        round->has_value = m->has_value;
        round->value = m->value;
        round->threshold = m->threshold;
        snprintf(round->detail, sizeof(round->detail), "%.63s: %.130s", m->metric, m->reason);
    } else {
        snprintf(round->detail, sizeof(round->detail), "%zu metric%s within thresholds",
                 spec->n_metrics, spec->n_metrics == 1 ? "" : "s");
    }
    return 0;
}

int analysis_history_append(json_t *history, const struct analysis_measurement *m, size_t n,
                            int step, int weight)
{
    char t[21], ws[21], we[21];
    size_t i;

    if (!json_is_array(history))
        return -1;
    for (i = 0; i < n; i++) {
        json_t *e;

        status_format_time(m[i].time_ms / 1000, t);
        status_format_time(m[i].window_start_ms / 1000, ws);
        status_format_time(m[i].window_end_ms / 1000, we);
        e = json_pack("{s:s, s:s, s:{s:s, s:s}, s:f, s:s, s:I, s:s, s:s, s:i, s:i}", "time", t,
                      "metric", m[i].metric, "window", "start", ws, "end", we, "threshold",
                      m[i].threshold, "thresholdText", m[i].threshold_text, "samples",
                      (json_int_t)m[i].samples, "verdict", analysis_verdict_name(m[i].verdict),
                      "reason", m[i].reason, "step", step, "weight", weight);
        if (e == NULL)
            return -1;
        if ((m[i].has_value && json_object_set_new(e, "value", json_real(m[i].value)) != 0) ||
            (m[i].has_stable &&
             json_object_set_new(e, "stableValue", json_real(m[i].stable_value)) != 0) ||
            json_array_append_new(history, e) != 0) {
            json_decref(e);
            return -1;
        }
    }
    while (json_array_size(history) > ANALYSIS_HISTORY_MAX)
        json_array_remove(history, 0);
    return 0;
}
