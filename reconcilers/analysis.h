/* Canary analysis: the CloudWatch GetMetricData queries for a rollout's
 * metrics (DESIGN.md, Analysis) and the evaluation of their results into
 * measurements (Successful / Failed / Inconclusive), a round's verdict, and
 * the bounded measurement history kept in status.rollout.analysis. Pure
 * functions of their inputs (no AWS calls); any thread. */
#ifndef AVIARY_RECONCILERS_ANALYSIS_H
#define AVIARY_RECONCILERS_ANALYSIS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANALYSIS_MAX_METRICS 20  /* CRD maxItems */
#define ANALYSIS_HISTORY_MAX 50  /* measurements kept in status.rollout.analysis */
#define ANALYSIS_NAME_MAX    64  /* metric names are DNS labels of <= 63 chars */
#define ANALYSIS_DETAIL_MAX  200 /* human-readable reason of a verdict */

enum analysis_verdict {
    ANALYSIS_NONE = 0, /* no measurement (yet) */
    ANALYSIS_SUCCESSFUL,
    ANALYSIS_FAILED,
    ANALYSIS_INCONCLUSIVE,
};

/* "None", "Successful", "Failed", "Inconclusive". */
const char *analysis_verdict_name(enum analysis_verdict v);
/* Parses a verdict name. Returns 0, or -1 when unknown (*out unchanged). */
int analysis_verdict_parse(const char *name, enum analysis_verdict *out);

enum analysis_metric_type {
    ANALYSIS_ERROR_RATE,
    ANALYSIS_LATENCY,
    ANALYSIS_CPU,
    ANALYSIS_MEMORY,
    ANALYSIS_CLOUDWATCH,
};

/* One entry of spec.rollout.analysis.metrics. */
struct analysis_metric {
    char name[ANALYSIS_NAME_MAX];
    enum analysis_metric_type type;
    char stat[16]; /* latency: "p99"; cloudwatch: query.stat ("Average", "p90", ...) */
    bool has_max, has_min;
    double max, min;
    bool compare_stable; /* compare: stable */
    double max_increase;
    const json_t *query; /* cloudwatch: the spec's query object (borrowed from the spec) */
};

/* spec.rollout.analysis, parsed. */
struct analysis_spec {
    int64_t interval_ms; /* measured window and time between measurements */
    int period_s;        /* CloudWatch Period used for interval (analysis_period_s) */
    long min_requests;
    int failure_limit;
    int inconclusive_limit;
    size_t n_metrics;
    struct analysis_metric metrics[ANALYSIS_MAX_METRICS];
};

/* Parses spec.rollout.analysis (defaults applied by the CRD; absent fields
 * get the CRD's defaults here too, and a NULL object gives the defaults with
 * the default error-rate metric). The cloudwatch queries are borrowed from
 * `analysis`, which must outlive *out. Returns 0, or -1 with a message in err
 * (e.g. "metrics[1]: unknown type \"foo\""). */
int analysis_spec_parse(const json_t *analysis, struct analysis_spec *out, char *err,
                        size_t errlen);

/* The CloudWatch Period for an analysis interval: the largest of 1, 5, 10, 30
 * or a multiple of 60 seconds that is not above it (the periods CloudWatch
 * accepts for every resolution), at least 1. E.g. 45s -> 30, 90s -> 60. */
int analysis_period_s(int64_t interval_ms);

/* The alignment of analysis windows: Period below a minute, else 60 s (how
 * CloudWatch rounds StartTime), in milliseconds. A window [end - period,
 * end] with end a multiple of this is exactly one CloudWatch bucket. */
int64_t analysis_grid_ms(int period_s);

/* Where the metrics of one rollout are measured (all borrowed). Slots are 0
 * ("a") and 1 ("b"). load_balancer and target_group are the CloudWatch
 * dimension values "app/NAME/ID" and "targetgroup/NAME/ID"; cluster and
 * service the ECS names. stable_* may be NULL/-1 when no metric compares
 * with stable. */
struct analysis_target {
    const char *application;
    const char *canary_revision;
    const char *stable_revision;
    int canary_slot;
    int stable_slot;
    const char *load_balancer;
    const char *target_group[2];
    const char *cluster;
    const char *service[2];
};

/* Builds the MetricDataQueries (a JSON array, new reference) of one round:
 *  - "req_c" (and "req_s" with a compare: stable errorRate): RequestCount
 *    Sum of the canary (stable) target group, for minRequests and errorRate;
 *  - per metric i "m<i>_c" (and "m<i>_s" with compare: stable): errorRate
 *    HTTPCode_Target_5XX_Count Sum, latency TargetResponseTime pNN,
 *    cpu/memory AWS/ECS CPUUtilization/MemoryUtilization Average of the slot's
 *    service, cloudwatch the given metric with ${revision}, ${slot} and
 *    ${application} substituted in dimension values (the stable side gets
 *    the stable revision and slot).
 * Every MetricStat has Period = spec->period_s. Ids are unique and match
 * ^[a-z][a-zA-Z0-9_]*$. Returns NULL with a message in err when a dimension
 * needed by a metric is missing from t (e.g. no load balancer yet). */
json_t *analysis_build_queries(const struct analysis_spec *spec, const struct analysis_target *t,
                               char *err, size_t errlen);

/* A complete GetMetricData input for queries (borrowed) over [start_s,
 * end_s] (unix seconds). New reference. */
json_t *analysis_request(const json_t *queries, int64_t start_s, int64_t end_s);

/* One metric's measurement. */
struct analysis_measurement {
    int64_t time_ms; /* when it was evaluated (the window's end) */
    int64_t window_start_ms, window_end_ms;
    char metric[ANALYSIS_NAME_MAX];
    bool has_value;
    double value;
    bool has_stable;
    double stable_value;     /* compare: stable */
    double threshold;        /* the bound that decides (max, min, or stable + maxIncrease) */
    char threshold_text[64]; /* "max 0.02", "min 5", "stable 0.01 + 0.01", "" */
    long samples;            /* canary requests in the window */
    enum analysis_verdict verdict;
    char reason[ANALYSIS_DETAIL_MAX]; /* "0.15 > max 0.02", "12 requests < minRequests 50" */
};

/* A round's summary: Failed when any metric failed (the first one is named),
 * else Inconclusive when any was inconclusive, else Successful. */
struct analysis_round {
    int64_t window_start_ms, window_end_ms;
    enum analysis_verdict verdict;
    char metric[ANALYSIS_NAME_MAX];
    bool has_value;
    double value;
    double threshold;
    long samples;
    char detail[ANALYSIS_DETAIL_MAX];
};

/* Evaluates GetMetricData results (`results`: the MetricDataResults array,
 * [{Id, Timestamps, Values}], ids as analysis_build_queries made them) for
 * the window [window_start_ms, window_end_ms] into one measurement per
 * metric (out[spec->n_metrics], caller-provided) and the round summary.
 * Datapoints of one query are combined as the statistic allows: Sum and
 * SampleCount add up, Average is averaged, Maximum/pNN take the largest,
 * Minimum the smallest. Rules: fewer than minRequests canary requests, or no
 * datapoints -> Inconclusive; above max or below min -> Failed; compare:
 * stable with value - stable value > maxIncrease -> Failed (no stable
 * datapoints -> Inconclusive); else Successful. A missing 5XX datapoint with
 * requests present counts as no errors (ALB writes only non-zero counts).
 * Returns 0 (a round with no metrics is Successful). */
int analysis_evaluate(const struct analysis_spec *spec, const json_t *results,
                      int64_t window_start_ms, int64_t window_end_ms,
                      struct analysis_measurement *out, struct analysis_round *round);

/* Appends the measurements (with the rollout's step and canary weight at the
 * time) to `history` (a JSON array, e.g. status.rollout.analysis), keeping
 * the newest ANALYSIS_HISTORY_MAX. Each entry: {"time" (RFC 3339), "metric",
 * "window": {"start", "end"} (RFC 3339), "value" (absent when none),
 * "stableValue" (compare: stable), "threshold", "samples", "verdict",
 * "reason", "step", "weight"}. Returns 0, or -1 when history is not an array
 * or memory ran out (entries appended so far stay). */
int analysis_history_append(json_t *history, const struct analysis_measurement *m, size_t n,
                            int step, int weight);

#endif
