/* Prometheus metrics: counters, gauges and histograms with label values,
 * rendered in the text exposition format for /metrics. Thread-safe: workers
 * count reconciles and AWS calls, the loop thread renders. Bounded: a family
 * holds at most METRICS_SERIES_MAX label combinations (more are dropped and
 * counted in aviary_metrics_dropped_total). */
#ifndef AVIARY_CONTROLLER_METRICS_H
#define AVIARY_CONTROLLER_METRICS_H

#include "aws/buffer.h"

#define METRICS_SERIES_MAX 2000
#define METRICS_LABELS_MAX 4

enum metric_type {
    METRIC_COUNTER,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

struct metrics;
struct metric_family;

/* A new, empty registry; NULL when out of memory. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Registers a family. label_names is NULL-terminated (at most
 * METRICS_LABELS_MAX). For histograms, buckets are the upper bounds
 * (ascending, n_buckets of them; +Inf is implicit). Returns the family
 * (owned by the registry) or NULL. */
struct metric_family *metrics_register(struct metrics *m, enum metric_type type, const char *name,
                                       const char *help, const char *const *label_names,
                                       const double *buckets, int n_buckets);

/* Adds v to a counter/gauge series, sets a gauge, observes a histogram
 * sample. label_values has one value per label name. */
void metrics_add(struct metric_family *f, const char *const *label_values, double v);
void metrics_set(struct metric_family *f, const char *const *label_values, double v);
void metrics_observe(struct metric_family *f, const char *const *label_values, double v);

/* Removes every series of a gauge family (before re-setting a snapshot,
 * e.g. objects by phase). */
void metrics_reset(struct metric_family *f);

/* Renders every family in the text format (families in registration order,
 * series in label order). Returns 0, or -1 when the buffer's limit is hit. */
int metrics_render(struct metrics *m, struct aws_buf *out);

#endif
