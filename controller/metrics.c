/* Prometheus metrics registry (see metrics.h). Any thread: one mutex per
 * registry. Series are kept in small arrays searched linearly; families are
 * few and series bounded. */
#include "controller/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_BUCKETS_MAX  16
#define METRICS_FAMILIES_MAX 32

struct metric_series {
    char *labels[METRICS_LABELS_MAX];
    double value; /* counter/gauge value; histogram sum */
    unsigned long long count;
    unsigned long long buckets[METRICS_BUCKETS_MAX];
};

struct metric_family {
    struct metrics *owner;
    enum metric_type type;
    char *name;
    char *help;
    char *label_names[METRICS_LABELS_MAX];
    int n_labels;
    double bounds[METRICS_BUCKETS_MAX];
    int n_buckets;
    struct metric_series *series;
    size_t n, cap;
};

struct metrics {
    pthread_mutex_t mu;
    struct metric_family *families[METRICS_FAMILIES_MAX];
    int n_families;
    unsigned long long dropped;
};

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof(*m));

    if (m != NULL)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void series_free(struct metric_family *f, struct metric_series *s)
{
    for (int i = 0; i < f->n_labels; i++)
        free(s->labels[i]);
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->n_families; i++) {
        struct metric_family *f = m->families[i];
        for (size_t j = 0; j < f->n; j++)
            series_free(f, &f->series[j]);
        for (int j = 0; j < f->n_labels; j++)
            free(f->label_names[j]);
        free(f->series);
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

struct metric_family *metrics_register(struct metrics *m, enum metric_type type, const char *name,
                                       const char *help, const char *const *label_names,
                                       const double *buckets, int n_buckets)
{
    struct metric_family *f;

    if (m->n_families >= METRICS_FAMILIES_MAX || n_buckets > METRICS_BUCKETS_MAX)
        return NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->owner = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    for (int i = 0; label_names != NULL && label_names[i] != NULL; i++) {
        if (i >= METRICS_LABELS_MAX)
            goto fail;
        f->label_names[i] = strdup(label_names[i]);
        f->n_labels = i + 1;
        if (f->label_names[i] == NULL)
            goto fail;
    }
    for (int i = 0; i < n_buckets; i++)
        f->bounds[i] = buckets[i];
    f->n_buckets = type == METRIC_HISTOGRAM ? n_buckets : 0;
    if (f->name == NULL || f->help == NULL)
        goto fail;
    pthread_mutex_lock(&m->mu);
    m->families[m->n_families++] = f;
    pthread_mutex_unlock(&m->mu);
    return f;
fail:
    for (int i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f);
    return NULL;
}

/* Finds or adds the series; caller holds the mutex. NULL when full. */
static struct metric_series *series_get(struct metric_family *f, const char *const *values)
{
    struct metric_series *s;

    for (size_t i = 0; i < f->n; i++) {
        bool same = true;
        for (int j = 0; j < f->n_labels && same; j++)
            same = strcmp(f->series[i].labels[j], values[j]) == 0;
        if (same)
            return &f->series[i];
    }
    if (f->n >= METRICS_SERIES_MAX)
        return NULL;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct metric_series *grown = realloc(f->series, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        f->series = grown;
        f->cap = cap;
    }
    s = &f->series[f->n];
    memset(s, 0, sizeof(*s));
    for (int j = 0; j < f->n_labels; j++) {
        s->labels[j] = strdup(values[j] ? values[j] : "");
        if (s->labels[j] == NULL) {
            series_free(f, s);
            return NULL;
        }
    }
    f->n++;
    return s;
}

static void update(struct metric_family *f, const char *const *values, double v, int op)
{
    struct metric_series *s;

    pthread_mutex_lock(&f->owner->mu);
    s = series_get(f, values);
    if (s == NULL) {
        f->owner->dropped++;
    } else if (op == 0) {
        s->value += v;
    } else if (op == 1) {
        s->value = v;
    } else {
        s->value += v;
        s->count++;
        for (int i = 0; i < f->n_buckets; i++)
            if (v <= f->bounds[i])
                s->buckets[i]++;
    }
    pthread_mutex_unlock(&f->owner->mu);
}

void metrics_add(struct metric_family *f, const char *const *label_values, double v)
{
    update(f, label_values, v, 0);
}

void metrics_set(struct metric_family *f, const char *const *label_values, double v)
{
    update(f, label_values, v, 1);
}

void metrics_observe(struct metric_family *f, const char *const *label_values, double v)
{
    update(f, label_values, v, 2);
}

void metrics_reset(struct metric_family *f)
{
    pthread_mutex_lock(&f->owner->mu);
    for (size_t i = 0; i < f->n; i++)
        series_free(f, &f->series[i]);
    f->n = 0;
    pthread_mutex_unlock(&f->owner->mu);
}

static int append_escaped_label(struct aws_buf *out, const char *v)
{
    for (; *v; v++) {
        int rc;
        if (*v == '\\' || *v == '"')
            rc = aws_buf_append_char(out, '\\') | aws_buf_append_char(out, *v);
        else if (*v == '\n')
            rc = aws_buf_append_str(out, "\\n");
        else
            rc = aws_buf_append_char(out, *v);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Writes {a="x",b="y"[,le="..."]} (nothing when there are no labels). */
static int append_labels(struct aws_buf *out, const struct metric_family *f,
                         const struct metric_series *s, const char *le)
{
    bool any = f->n_labels > 0 || le != NULL;

    if (!any)
        return 0;
    if (aws_buf_append_char(out, '{') != 0)
        return -1;
    for (int j = 0; j < f->n_labels; j++) {
        if (aws_buf_printf(out, "%s%s=\"", j ? "," : "", f->label_names[j]) != 0 ||
            append_escaped_label(out, s->labels[j]) != 0 || aws_buf_append_char(out, '"') != 0)
            return -1;
    }
    if (le != NULL && aws_buf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le) != 0)
        return -1;
    return aws_buf_append_char(out, '}');
}

static int compare_series(const void *a, const void *b, void *n_labels)
{
    const struct metric_series *x = a, *y = b;
    int n = *(int *)n_labels;

    for (int j = 0; j < n; j++) {
        int c = strcmp(x->labels[j], y->labels[j]);
        if (c != 0)
            return c;
    }
    return 0;
}

static void sort_series(struct metric_family *f)
{
    /* insertion sort: series counts are small and mostly sorted already */
    for (size_t i = 1; i < f->n; i++) {
        struct metric_series tmp = f->series[i];
        size_t j = i;
        while (j > 0 && compare_series(&f->series[j - 1], &tmp, &f->n_labels) > 0) {
            f->series[j] = f->series[j - 1];
            j--;
        }
        f->series[j] = tmp;
    }
}

static const char *type_name(enum metric_type t)
{
    return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "histogram";
}

static int render_family(struct aws_buf *out, struct metric_family *f)
{
    char le[32];

    if (aws_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                       type_name(f->type)) != 0)
        return -1;
    sort_series(f);
    for (size_t i = 0; i < f->n; i++) {
        struct metric_series *s = &f->series[i];
        if (f->type != METRIC_HISTOGRAM) {
            if (aws_buf_append_str(out, f->name) != 0 || append_labels(out, f, s, NULL) != 0 ||
                aws_buf_printf(out, " %.15g\n", s->value) != 0)
                return -1;
            continue;
        }
        for (int b = 0; b <= f->n_buckets; b++) {
            if (b < f->n_buckets)
                snprintf(le, sizeof(le), "%g", f->bounds[b]);
            else
                snprintf(le, sizeof(le), "+Inf");
            if (aws_buf_printf(out, "%s_bucket", f->name) != 0 ||
                append_labels(out, f, s, le) != 0 ||
                aws_buf_printf(out, " %llu\n", b < f->n_buckets ? s->buckets[b] : s->count) != 0)
                return -1;
        }
        if (aws_buf_printf(out, "%s_sum", f->name) != 0 || append_labels(out, f, s, NULL) != 0 ||
            aws_buf_printf(out, " %.15g\n", s->value) != 0 ||
            aws_buf_printf(out, "%s_count", f->name) != 0 || append_labels(out, f, s, NULL) != 0 ||
            aws_buf_printf(out, " %llu\n", s->count) != 0)
            return -1;
    }
    return 0;
}

int metrics_render(struct metrics *m, struct aws_buf *out)
{
    int rc = 0;

    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_families && rc == 0; i++)
        rc = render_family(out, m->families[i]);
    if (rc == 0)
        rc = aws_buf_printf(out,
                            "# HELP aviary_metrics_dropped_total Metric updates dropped because a "
                            "family reached its series limit.\n"
                            "# TYPE aviary_metrics_dropped_total counter\n"
                            "aviary_metrics_dropped_total %llu\n",
                            m->dropped);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
