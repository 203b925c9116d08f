/* The daemon (see daemon.h). Threads: the loop thread runs everything in
 * this file except worker_main and what it calls; workers share only the
 * work queue, the store and the metrics, all thread-safe. The loop thread
 * writes each record's "desired", "validation", "deleting" and "command"
 * members; workers write "status". */
#include "controller/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "aws/client.h"
#include "controller/httpd.h"
#include "controller/log.h"
#include "controller/metrics.h"
#include "controller/objects.h"
#include "controller/source_dir.h"
#include "controller/source_s3.h"
#include "controller/store.h"
#include "controller/workqueue.h"
#include "reconcilers/alerts.h"
#include "reconcilers/metrics_batcher.h"
#include "reconcilers/read_batch.h"
#include "reconcilers/status.h"

#define DAEMON_WORKERS_MAX    64
#define KEY_MAX               WORKQUEUE_KEY_MAX
#define DAEMON_ARENAS         1            /* malloc arenas (M_ARENA_MAX) */
#define TRIM_THRESHOLD        (128 * 1024) /* M_TRIM_THRESHOLD, glibc's initial value */
#define TRIM_CHECK_MS         2000         /* idle malloc_trim check */
#define TRIM_AFTER_RECONCILES 32           /* idle malloc_trim once this many reconciles ran */
#define COMMITS_MAX           8            /* store commits queued on the thread pool at most */
#define TRIM_AFTER_FILES      32 /* malloc_trim after an event that loaded this many files */

/* A desired set's objects sorted by kind and name, for lookups by key. */
struct set_index {
    const struct desired_object **by_key;
    size_t n;
};

/* Loop-thread bookkeeping of an object that disappeared from the source. */
struct missing {
    char key[KEY_MAX];
    int64_t since_ms;
};

struct daemon {
    const struct daemon_config *cfg;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t resync, grace, trim;
    struct httpd *httpd;
    struct source_dir *dir;
    struct source_s3 *s3;
    struct store *store;
    struct workqueue *queue;
    struct metrics *metrics;
    struct metric_family *m_reconciles, *m_duration, *m_queue, *m_phase, *m_aws, *m_weight;
    struct metric_family *m_files_loaded, *m_files_read, *m_read_batch;
    pthread_t workers[DAEMON_WORKERS_MAX];
    int n_workers;
    atomic_ulong reconcile_seq;
    bool ready;
    bool stopping;
    struct missing *missing;
    size_t n_missing, cap_missing;
    json_int_t command_seq;
    struct desired_set current_set; /* last built from the source, specs released */
    struct set_index current_index; /* current_set by key */
    bool *current_applied;          /* per current_set object: applied as valid */
    struct aws_client *aws;         /* owned; NULL when nothing needs AWS */
    unsigned long trimmed_at_seq;   /* reconcile_seq at the last idle malloc_trim */
    int commits_pending;            /* store commits on the thread pool */
};

/* A staged store write committed on libuv's thread pool (see apply_desired). */
struct commit_work {
    uv_work_t req;
    struct daemon *d;
    struct store_txn *txn;
    int rc;
    char kind[64], name[96];
};

static int64_t wall_seconds(void)
{
    return (int64_t)time(NULL);
}

static int64_t wall_milliseconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t monotonic_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

static int split_key(const char *key, char *kind, size_t kind_len, char *name, size_t name_len)
{
    const char *slash = strchr(key, '/');

    if (slash == NULL || (size_t)(slash - key) >= kind_len || strlen(slash + 1) >= name_len)
        return -1;
    memcpy(kind, key, (size_t)(slash - key));
    kind[slash - key] = '\0';
    strcpy(name, slash + 1);
    return 0;
}

static const struct reconciler *find_reconciler(const struct daemon *d, const char *kind)
{
    for (const struct reconciler *const *r = d->cfg->reconcilers; r && *r; r++)
        if (strcmp((*r)->kind, kind) == 0)
            return *r;
    return NULL;
}

/* ---- workers -------------------------------------------------------- */

/* Sets the Valid condition from the loop thread's validation verdict. */
static void apply_validation(json_t *status, const json_t *validation, int64_t now)
{
    const json_t *errors = json_object_get(validation, "errors");
    struct aws_buf msg;
    size_t i;
    const json_t *e;

    if (validation == NULL || json_is_true(json_object_get(validation, "valid"))) {
        status_set_condition(status, "Valid", "True", "Validated", "the manifest is valid", now);
        return;
    }
    aws_buf_init(&msg, 4096);
    json_array_foreach(errors, i, e)
    {
        if (i > 0)
            aws_buf_append_str(&msg, "; ");
        aws_buf_append_str(&msg, json_string_value(e) ? json_string_value(e) : "");
    }
    if (status_set_condition(status, "Valid", "False", "InvalidManifest",
                             msg.data ? msg.data : "invalid", now))
        status_add_event(status, "Warning", "InvalidManifest", msg.data ? msg.data : "invalid",
                         now);
    aws_buf_free(&msg);
}

static enum workqueue_result outcome_to_queue(enum reconcile_outcome o)
{
    switch (o) {
    case RECONCILE_REQUEUE_AFTER:
        return WORKQUEUE_REQUEUE_AFTER;
    case RECONCILE_ERROR:
        return WORKQUEUE_ERROR;
    case RECONCILE_DONE:
    case RECONCILE_INVALID:
        break;
    }
    return WORKQUEUE_DONE;
}

static const char *outcome_name(enum reconcile_outcome o)
{
    static const char *const names[] = {"done", "requeue", "error", "invalid"};
    return (unsigned)o < 4 ? names[o] : "unknown";
}

/* The status goes with a deleted object, so what its last reconcile had to
 * say (e.g. "bucket retained") is logged instead: the events of that
 * reconcile and the warnings, newest last, at most 5. */
static void log_final_events(const char *key, const char *rid, const json_t *status)
{
    const json_t *events = json_object_get(status, "events");
    size_t n = json_array_size(events), first = n > 5 ? n - 5 : 0;

    for (size_t i = first; i < n; i++) {
        const json_t *e = json_array_get(events, i);
        const char *type = json_string_value(json_object_get(e, "type"));
        log_event(type && strcmp(type, "Warning") == 0 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
                  "final event", "key", key, "reconcile", rid, "reason",
                  json_string_value(json_object_get(e, "reason")), "message",
                  json_string_value(json_object_get(e, "message")), NULL);
    }
}

/* One reconcile of key; returns how the queue should treat it. */
static enum workqueue_result reconcile_key(struct daemon *d, const char *key, long *requeue_ms)
{
    char kind[64], name[96], rid[32], gen[32];
    json_t *rec = NULL, *status = NULL;
    const json_t *desired, *command;
    const struct reconciler *r;
    struct reconcile_request req = {0};
    struct reconcile_result res = {0};
    int64_t now_ms = wall_milliseconds();
    int64_t now = now_ms / 1000;
    uint64_t started = uv_hrtime();
    enum workqueue_result result = WORKQUEUE_DONE;
    char ts[21];

    if (split_key(key, kind, sizeof(kind), name, sizeof(name)) != 0)
        return WORKQUEUE_DONE;
    rec = store_get(d->store, kind, name);
    if (rec == NULL)
        return WORKQUEUE_DONE; /* deleted meanwhile: nothing to do */
    snprintf(rid, sizeof(rid), "r%lu", (unsigned long)atomic_fetch_add(&d->reconcile_seq, 1) + 1);
    status = json_deep_copy(json_object_get(rec, "status"));
    if (!json_is_object(status)) {
        json_decref(status);
        status = status_new(kind, name);
        status_format_time(now, ts);
        json_object_set_new(status, "creationTime", json_string(ts));
    }
    apply_validation(status, json_object_get(rec, "validation"), now);
    desired = json_object_get(rec, "desired");
    r = find_reconciler(d, kind);
    if (!json_is_object(desired)) {
        /* Never valid: nothing in AWS may be touched for it. */
        status_set_phase(status, PHASE_FAILED);
        goto persist;
    }
    if (r == NULL) {
        status_set_condition(status, "Synced", "Unknown", "NoReconciler",
                             "this build of aviary has no reconciler for this kind yet", now);
        goto persist;
    }
    command = json_object_get(rec, "command");
    if (json_integer_value(json_object_get(command, "id")) <=
        json_integer_value(json_object_get(status, "handledCommand")))
        command = NULL;
    req.kind = kind;
    req.name = name;
    req.spec = json_object_get(desired, "spec");
    req.revision = json_string_value(json_object_get(desired, "revision"));
    req.generation = json_integer_value(json_object_get(desired, "generation"));
    req.manifest_dir = json_string_value(json_object_get(desired, "manifestDir"));
    req.deleting = json_is_true(json_object_get(rec, "deleting"));
    req.now = now;
    req.now_ms = now_ms;
    req.reconcile_id = rid;
    req.aws = d->aws;
    req.command = command;
    log_event(LOG_LEVEL_DEBUG, "reconcile started", "key", key, "reconcile", rid, NULL);
    r->reconcile(&req, status, &res);
    if (command != NULL) {
        if (!res.command_done)
            status_add_event(status, "Warning", "CommandNotApplicable",
                             "the command does not apply in the object's current state", now);
        json_object_set(status, "handledCommand", json_object_get(command, "id"));
    }
    result = outcome_to_queue(res.outcome);
    *requeue_ms = res.requeue_after_ms;
    snprintf(gen, sizeof(gen), "%lld", (long long)req.generation);
    {
        const char *labels[] = {kind, outcome_name(res.outcome)};
        const char *klabel[] = {kind};
        double secs = (double)(uv_hrtime() - started) / 1e9;
        metrics_add(d->m_reconciles, labels, 1);
        metrics_observe(d->m_duration, klabel, secs);
    }
    if (res.outcome == RECONCILE_ERROR || res.outcome == RECONCILE_INVALID)
        log_event(LOG_LEVEL_WARN, "reconcile failed", "key", key, "reconcile", rid, "generation",
                  gen, "outcome", outcome_name(res.outcome), "error", res.error, NULL);
    else
        log_event(LOG_LEVEL_INFO, "reconciled", "key", key, "reconcile", rid, "generation", gen,
                  "outcome", outcome_name(res.outcome), NULL);
    if (res.deleted) {
        if (store_delete_if_true(d->store, kind, name, "deleting") == 1) {
            workqueue_forget(d->queue, key);
            log_final_events(key, rid, status);
            log_event(LOG_LEVEL_INFO, "deleted", "key", key, "reconcile", rid, NULL);
            goto out;
        }
    }
persist:
    if (store_set_field(d->store, kind, name, "status", status) != 0) {
        log_event(LOG_LEVEL_ERROR, "cannot persist status", "key", key, NULL);
        result = WORKQUEUE_ERROR;
    }
out:
    json_decref(status);
    json_decref(rec);
    return result;
}

static void *worker_main(void *arg)
{
    struct daemon *d = arg;
    char key[KEY_MAX];

    while (workqueue_get(d->queue, key, sizeof(key)) == 0) {
        long requeue_ms = 0;
        enum workqueue_result result = reconcile_key(d, key, &requeue_ms);
        workqueue_done(d->queue, key, result, requeue_ms);
    }
    return NULL;
}

/* ---- desired state from the source (loop thread) --------------------- */

static void enqueue(struct daemon *d, const char *kind, const char *name)
{
    char key[KEY_MAX];

    snprintf(key, sizeof(key), "%s/%s", kind, name);
    if (workqueue_add(d->queue, key) != 0)
        log_event(LOG_LEVEL_ERROR, "work queue full: object not reconciled", "key", key, NULL);
}

static void missing_clear(struct daemon *d, const char *key)
{
    for (size_t i = 0; i < d->n_missing; i++) {
        if (strcmp(d->missing[i].key, key) == 0) {
            d->missing[i] = d->missing[--d->n_missing];
            return;
        }
    }
}

/* Returns how long key has been missing (ms), recording it the first time. */
static int64_t missing_for(struct daemon *d, const char *key, int64_t now_ms)
{
    for (size_t i = 0; i < d->n_missing; i++)
        if (strcmp(d->missing[i].key, key) == 0)
            return now_ms - d->missing[i].since_ms;
    if (d->n_missing == d->cap_missing) {
        size_t cap = d->cap_missing ? d->cap_missing * 2 : 16;
        struct missing *grown = realloc(d->missing, cap * sizeof(*grown));
        if (grown == NULL)
            return 0;
        d->missing = grown;
        d->cap_missing = cap;
    }
    snprintf(d->missing[d->n_missing].key, KEY_MAX, "%s", key);
    d->missing[d->n_missing++].since_ms = now_ms;
    return 0;
}

static bool json_member_differs(const json_t *rec, const char *member, const json_t *value)
{
    return !json_equal(json_object_get(rec, member), value);
}

static void commit_work(uv_work_t *req)
{
    struct commit_work *w = req->data;

    w->rc = store_commit(w->txn);
}

static long index_find(const struct set_index *ix, const char *kind, const char *name);

static void commit_done(uv_work_t *req, int status)
{
    struct commit_work *w = req->data;
    struct daemon *d = w->d;

    if (status != 0) /* cancelled at shutdown: commit here */
        w->rc = store_commit(w->txn);
    d->commits_pending--;
    if (w->rc != 0) {
        char key[KEY_MAX];
        long at = index_find(&d->current_index, w->kind, w->name);
        snprintf(key, sizeof(key), "%s/%s", w->kind, w->name);
        log_event(LOG_LEVEL_ERROR, "cannot persist the desired state", "key", key, NULL);
        /* Not applied after all: the next snapshot writes it again. */
        if (at >= 0 && d->current_applied != NULL)
            d->current_applied[d->current_index.by_key[at] - d->current_set.objs] = false;
    }
    free(w);
}

/* Commits txn: on the thread pool when allowed (background) and not too
 * many are pending, else at once. Returns false when a commit made at once
 * failed. */
static bool commit(struct daemon *d, struct store_txn *txn, const struct desired_object *o,
                   bool background)
{
    struct commit_work *w;

    if (txn == NULL)
        return true;
    if (background && d->commits_pending < COMMITS_MAX && (w = calloc(1, sizeof(*w))) != NULL) {
        w->req.data = w;
        w->d = d;
        w->txn = txn;
        snprintf(w->kind, sizeof(w->kind), "%s", o->kind);
        snprintf(w->name, sizeof(w->name), "%s", o->name);
        if (uv_queue_work(&d->loop, &w->req, commit_work, commit_done) == 0) {
            d->commits_pending++;
            return true;
        }
        free(w);
    }
    return store_commit(txn) == 0;
}

/* Applies one desired object to the store; enqueues it when anything
 * changed. With background, the record is written to disk on the thread
 * pool (the loop thread goes on with the next event meanwhile). Returns
 * true when the store holds it as applied (every write succeeded, or is
 * under way in the background). */
static bool apply_desired(struct daemon *d, const struct desired_object *o, bool duplicate,
                          bool background)
{
    json_t *rec = store_get(d->store, o->kind, o->name);
    const json_t *prev = json_object_get(rec, "desired");
    json_t *validation = NULL, *desired = NULL, *updates;
    bool changed = rec == NULL, ok = true;
    char key[KEY_MAX];

    snprintf(key, sizeof(key), "%s/%s", o->kind, o->name);
    missing_clear(d, key);
    if (o->spec != NULL && !duplicate) {
        const char *old_hash = json_string_value(json_object_get(prev, "specHash"));
        json_int_t gen = json_integer_value(json_object_get(prev, "generation"));
        json_t *spec = json_loads(o->spec, 0, NULL);
        if (old_hash == NULL || strcmp(old_hash, o->spec_hash) != 0)
            gen++;
        /* "o": the spec tree is taken (released on failure too). */
        desired = spec == NULL
                      ? NULL
                      : json_pack("{s:o, s:s, s:s, s:I, s:s, s:i}", "spec", spec, "revision",
                                  o->revision, "specHash", o->spec_hash, "generation",
                                  (json_int_t)gen, "file", o->file, "line", o->line);
        if (desired != NULL && o->manifest_dir != NULL)
            json_object_set_new(desired, "manifestDir", json_string(o->manifest_dir));
        validation = json_pack("{s:b}", "valid", 1);
    } else {
        json_t *errors = o->errors != NULL ? json_deep_copy(o->errors) : json_array();
        if (duplicate) {
            char msg[512];
            snprintf(msg, sizeof(msg),
                     "%s:%d: %s %s is defined in more than one file; none of them is applied",
                     o->file, o->line, o->kind, o->name);
            json_array_append_new(errors, json_string(msg));
        }
        validation = json_pack("{s:b, s:o}", "valid", 0, "errors", errors);
        log_event(LOG_LEVEL_WARN, "invalid manifest: last valid version stays in force", "key", key,
                  "file", o->file, NULL);
    }
    /* Every member that changed goes to the store in one write (one fsync). */
    updates = json_object();
    if (updates == NULL)
        ok = false;
    if (updates != NULL && desired != NULL && json_member_differs(rec, "desired", desired))
        json_object_set(updates, "desired", desired);
    if (updates != NULL && validation != NULL && json_member_differs(rec, "validation", validation))
        json_object_set(updates, "validation", validation);
    if (updates != NULL && json_is_true(json_object_get(rec, "deleting")) && desired != NULL) {
        json_object_set(updates, "deleting", json_false());
        log_event(LOG_LEVEL_INFO, "manifest is back: deletion cancelled", "key", key, NULL);
    }
    if (json_object_size(updates) > 0) {
        /* In force in memory first: the reconcile may start while the
         * record is being written (the desired state is derived from the
         * manifest, so a crash before the write loses nothing the next
         * start does not compute again). */
        struct store_txn *txn = NULL;
        if (store_stage_fields(d->store, o->kind, o->name, updates, &txn) != 0) {
            ok = false;
            changed = true;
        } else {
            enqueue(d, o->kind, o->name);
            ok &= commit(d, txn, o, background);
            changed = false; /* queued already */
        }
    }
    if (changed)
        enqueue(d, o->kind, o->name);
    json_decref(updates);
    json_decref(desired);
    json_decref(validation);
    json_decref(rec);
    return ok && desired != NULL && validation != NULL;
}

static int compare_keys(const char *kind_a, const char *name_a, const char *kind_b,
                        const char *name_b)
{
    int c = strcmp(kind_a, kind_b);
    return c != 0 ? c : strcmp(name_a, name_b);
}

static int compare_indexed(const void *a, const void *b)
{
    const struct desired_object *oa = *(const struct desired_object *const *)a;
    const struct desired_object *ob = *(const struct desired_object *const *)b;
    return compare_keys(oa->kind, oa->name, ob->kind, ob->name);
}

/* Indexes set (which must outlive ix). Returns 0, or -1 when out of memory. */
static int index_build(struct set_index *ix, const struct desired_set *set)
{
    ix->n = 0;
    ix->by_key = set->n ? malloc(set->n * sizeof(*ix->by_key)) : NULL;
    if (set->n && ix->by_key == NULL)
        return -1;
    for (size_t i = 0; i < set->n; i++)
        ix->by_key[i] = &set->objs[i];
    ix->n = set->n;
    if (ix->n > 1)
        qsort(ix->by_key, ix->n, sizeof(*ix->by_key), compare_indexed);
    return 0;
}

static void index_free(struct set_index *ix)
{
    free(ix->by_key);
    ix->by_key = NULL;
    ix->n = 0;
}

/* Position in ix of the first object of kind/name, or -1. */
static long index_find(const struct set_index *ix, const char *kind, const char *name)
{
    size_t lo = 0, hi = ix->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (compare_keys(ix->by_key[mid]->kind, ix->by_key[mid]->name, kind, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ix->n && compare_keys(ix->by_key[lo]->kind, ix->by_key[lo]->name, kind, name) == 0)
        return (long)lo;
    return -1;
}

/* True when another object of the indexed set has o's kind and name. */
static bool is_duplicate(const struct set_index *ix, const struct desired_object *o)
{
    long at = index_find(ix, o->kind, o->name);
    return at >= 0 && (size_t)at + 1 < ix->n &&
           compare_keys(ix->by_key[at + 1]->kind, ix->by_key[at + 1]->name, o->kind, o->name) == 0;
}

static bool in_desired(const struct set_index *ix, const char *kind, const char *name)
{
    return index_find(ix, kind, name) >= 0;
}

static bool same_string(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* True when o, valid and not a duplicate, is what the previous snapshot
 * already applied successfully: same spec (hash), revision, file and line.
 * Only the loop thread writes "desired", "validation" and "deleting", and it
 * never marks an object of the current set for deletion, so the store still
 * holds exactly that and applying o again would change nothing. */
static bool applied_before(const struct daemon *d, const struct desired_object *o)
{
    long at;
    const struct desired_object *p;

    if (o->spec == NULL || d->current_applied == NULL)
        return false;
    at = index_find(&d->current_index, o->kind, o->name);
    if (at < 0)
        return false;
    p = d->current_index.by_key[at];
    return d->current_applied[p - d->current_set.objs] && !is_duplicate(&d->current_index, p) &&
           strcmp(p->spec_hash, o->spec_hash) == 0 && strcmp(p->revision, o->revision) == 0 &&
           same_string(p->file, o->file) && p->line == o->line &&
           same_string(p->manifest_dir, o->manifest_dir);
}

struct missing_scan {
    struct daemon *d;
    const struct desired_set *set;
    const struct set_index *index;
    int64_t now_ms;
    long next;
};

static bool missing_want(const char *kind, const char *name, void *arg)
{
    const struct missing_scan *ms = arg;
    return !in_desired(ms->index, kind, name);
}

static int missing_visit(const char *kind, const char *name, json_t *rec, void *arg)
{
    struct missing_scan *ms = arg;
    struct daemon *d = ms->d;
    const char *file = json_string_value(json_object_get(json_object_get(rec, "desired"), "file"));
    char key[KEY_MAX];
    int64_t absent;

    if (json_is_true(json_object_get(rec, "deleting")))
        return 0;
    snprintf(key, sizeof(key), "%s/%s", kind, name);
    if (file != NULL && json_object_get(ms->set->broken_files, file) != NULL) {
        missing_clear(d, key);
        return 0;
    }
    absent = missing_for(d, key, ms->now_ms);
    if (absent < d->cfg->deletion_grace_ms) {
        long left = (long)(d->cfg->deletion_grace_ms - absent);
        if (ms->next < 0 || left < ms->next)
            ms->next = left;
        return 0;
    }
    missing_clear(d, key);
    log_event(LOG_LEVEL_INFO, "manifest removed: deleting", "key", key, NULL);
    store_set_field(d->store, kind, name, "deleting", json_true());
    enqueue(d, kind, name);
    return 0;
}

/* Objects in the store but not in the source are deleted once they have
 * been absent for the grace period — unless the file that defined them is
 * broken (then they are kept: bad input never deletes anything). Returns the
 * time until the next pending deletion is due, or -1. */
static long reconcile_missing(struct daemon *d, const struct desired_set *set,
                              const struct set_index *index)
{
    struct missing_scan ms = {d, set, index, monotonic_ms(), -1};

    store_foreach(d->store, missing_want, missing_visit, &ms);
    return ms.next;
}

static void on_grace(uv_timer_t *t)
{
    struct daemon *d = t->data;
    long next = reconcile_missing(d, &d->current_set, &d->current_index);

    if (next >= 0)
        uv_timer_start(&d->grace, on_grace, (uint64_t)next + 1, 0);
}

/* Loads again the unchanged files of set whose objects need their spec
 * (see on_snapshot); builds the set afresh when a file no longer gives the
 * same objects. Returns 0, or -1 when out of memory (the caller clears set). */
static int reload_needed(struct daemon *d, const struct source_snapshot *snap, const char *root,
                         struct desired_set *set)
{
    struct set_index index;
    bool *need, any = false;
    int rc = 0;

    need = calloc(set->n ? set->n : 1, sizeof(*need));
    if (need == NULL || index_build(&index, set) != 0) {
        free(need);
        return -1;
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct desired_object *o = &set->objs[i];
        need[i] =
            o->unchanged && (is_duplicate(&index, o) || d->current_applied == NULL ||
                             !d->current_applied[o->prev_index] ||
                             is_duplicate(&d->current_index, &d->current_set.objs[o->prev_index]));
        any = any || need[i];
    }
    index_free(&index);
    if (any)
        rc = objects_reload(set, snap, root, need);
    free(need);
    if (rc == 1) {
        size_t loaded = set->files_loaded;
        objects_clear(set);
        rc = objects_build(snap, root, NULL, set);
        set->files_loaded += loaded;
    }
    return rc == 0 ? 0 : -1;
}

static void on_snapshot(const struct source_snapshot *snap, void *arg)
{
    struct daemon *d = arg;
    struct desired_set set;
    struct set_index index;
    bool *applied;
    const char *root = d->s3 == NULL ? d->cfg->source : NULL;
    long next;
    const char *file;
    json_t *errs;
    size_t set_loaded;
    bool scan_missing;

    /* Files that did not change are not loaded again. An unchanged object
     * whose spec is needed after all (it is a duplicate now, was one
     * before, or was not applied) has its file, and only that file, loaded
     * again. */
    if (objects_build(snap, root, &d->current_set, &set) != 0) {
        log_event(LOG_LEVEL_ERROR, "out of memory loading manifests", NULL);
        return;
    }
    if (reload_needed(d, snap, root, &set) != 0) {
        log_event(LOG_LEVEL_ERROR, "out of memory loading manifests", NULL);
        objects_clear(&set);
        return;
    }
    set_loaded = set.files_loaded;
    metrics_add(d->m_files_loaded, NULL, (double)set_loaded);
    applied = calloc(set.n ? set.n : 1, sizeof(*applied));
    if (applied == NULL || index_build(&index, &set) != 0) {
        log_event(LOG_LEVEL_ERROR, "out of memory loading manifests", NULL);
        free(applied);
        objects_clear(&set);
        return;
    }
    json_object_foreach(set.broken_files, file, errs)
    {
        log_event(LOG_LEVEL_WARN,
                  "manifest file not applied: its objects keep their last valid "
                  "version",
                  "file", file, "error", json_string_value(json_array_get(errs, 0)), NULL);
    }
    for (size_t i = 0; i < set.n; i++) {
        const struct desired_object *o = &set.objs[i];
        bool dup = is_duplicate(&index, o);
        if (!dup && (o->unchanged || applied_before(d, o))) {
            char key[KEY_MAX];
            snprintf(key, sizeof(key), "%s/%s", o->kind, o->name);
            missing_clear(d, key);
            applied[i] = true;
            continue;
        }
        /* After an event (a few objects) the fsyncs go to the thread pool;
         * a full snapshot writes at once, keeping few records in flight. */
        applied[i] = apply_desired(d, o, dup, snap->partial) && !dup;
    }
    /* Applied: the store has them now. Only the keys and the broken files
     * are needed later, so the specs (a tree each) are released. */
    for (size_t i = 0; i < set.n; i++) {
        free(set.objs[i].spec);
        set.objs[i].spec = NULL;
        json_decref(set.objs[i].errors);
        set.objs[i].errors = NULL;
    }
    /* After an event, the store holds nothing new that is absent from the
     * source unless an object of the previous set vanished (or one is
     * already waiting out its grace): only then are the records scanned. */
    scan_missing = !snap->partial || d->n_missing > 0 || d->current_applied == NULL;
    for (size_t i = 0; i < d->current_set.n && !scan_missing; i++)
        scan_missing =
            !in_desired(&index, d->current_set.objs[i].kind, d->current_set.objs[i].name);
    objects_clear(&d->current_set);
    index_free(&d->current_index);
    free(d->current_applied);
    d->current_set = set;
    d->current_index = index;
    d->current_applied = applied;
    next = scan_missing ? reconcile_missing(d, &d->current_set, &d->current_index) : -1;
    if (next >= 0)
        uv_timer_start(&d->grace, on_grace, (uint64_t)next + 1, 0);
    if (!d->ready)
        log_event(LOG_LEVEL_INFO, "source loaded", "source", d->cfg->source, NULL);
    d->ready = true;
#ifdef __GLIBC__
    /* Loading every manifest of a large source peaks at several times what
     * stays allocated; hand the freed pages back instead of keeping them
     * resident until the next change (glibc keeps them otherwise). After an
     * event about a few files there is little to return, and walking the
     * heap would only add to the event's latency. */
    if (!snap->partial || set_loaded >= TRIM_AFTER_FILES)
        malloc_trim(0);
#endif
}

/* ---- resync, signals, HTTP ------------------------------------------- */

/* Enqueues every key as the filter of store_foreach: no record is read. */
static bool resync_key(const char *kind, const char *name, void *arg)
{
    enqueue(arg, kind, name);
    return false;
}

static int resync_visit(const char *kind, const char *name, json_t *rec, void *arg)
{
    (void)kind;
    (void)name;
    (void)rec;
    (void)arg;
    return 0;
}

static void on_resync(uv_timer_t *t)
{
    struct daemon *d = t->data;

    store_foreach(d->store, resync_key, resync_visit, d);
}

/* After a burst of reconciles (the initial convergence, a resync) the
 * workers' freed trees stay resident in glibc's heap; once the queue is
 * idle they are handed back. A check costs a counter when nothing ran. */
static void on_trim(uv_timer_t *t)
{
    struct daemon *d = t->data;
    unsigned long seq = atomic_load(&d->reconcile_seq);
    struct workqueue_stats qs;

    /* Not after every event's single reconcile: a trim walks the whole heap
     * and the pages it returns are faulted in again by the next event. */
    if (seq - d->trimmed_at_seq < TRIM_AFTER_RECONCILES)
        return;
    workqueue_get_stats(d->queue, &qs);
    if (qs.ready > 0 || qs.in_progress > 0)
        return;
    d->trimmed_at_seq = seq;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void stop_everything(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    log_event(LOG_LEVEL_INFO, "shutting down: finishing in-flight reconciles", NULL);
    workqueue_shutdown(d->queue);
    if (d->dir != NULL)
        source_dir_stop(d->dir);
    if (d->s3 != NULL)
        source_s3_stop(d->s3);
    httpd_stop(d->httpd);
    uv_close((uv_handle_t *)&d->resync, NULL);
    uv_close((uv_handle_t *)&d->grace, NULL);
    uv_close((uv_handle_t *)&d->trim, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;

    if (signum == SIGHUP) {
        log_event(LOG_LEVEL_INFO, "SIGHUP: rescanning the source", NULL);
        if (d->dir != NULL)
            source_dir_rescan(d->dir);
        if (d->s3 != NULL)
            source_s3_rescan(d->s3);
        on_resync(&d->resync);
        return;
    }
    stop_everything(d);
}

/* Presents a record as the status object of DESIGN.md. New reference. */
static json_t *status_object(const json_t *rec)
{
    json_t *st = json_deep_copy(json_object_get(rec, "status"));
    const json_t *validation = json_object_get(rec, "validation");

    if (!json_is_object(st)) {
        json_decref(st);
        st = status_new(json_string_value(json_object_get(rec, "kind")),
                        json_string_value(json_object_get(rec, "name")));
        if (validation != NULL)
            apply_validation(st, validation, wall_seconds());
    }
    json_object_set(st, "kind", json_object_get(rec, "kind"));
    json_object_set(st, "name", json_object_get(rec, "name"));
    json_object_set(st, "generation",
                    json_object_get(json_object_get(rec, "desired"), "generation"));
    if (json_is_true(json_object_get(rec, "deleting")))
        json_object_set_new(st, "phase", json_string("Deleting"));
    return st;
}

static void respond_json(struct httpd_response *resp, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS);

    resp->status = status;
    resp->content_type = "application/json";
    if (text == NULL) {
        httpd_json_error(resp, 500, "out of memory");
    } else {
        aws_buf_append_str(&resp->body, text);
        aws_buf_append_char(&resp->body, '\n');
    }
    free(text);
    json_decref(body);
}

static int gauge_visit(const char *kind, const char *name, json_t *rec, void *arg)
{
    struct daemon *d = arg;
    json_t *st = status_object(rec);
    const char *labels[] = {json_string_value(json_object_get(st, "kind")),
                            json_string_value(json_object_get(st, "phase"))};
    const json_t *w = json_object_get(json_object_get(st, "rollout"), "weight");

    (void)kind;
    (void)name;
    metrics_add(d->m_phase, labels, 1);
    if (json_is_integer(w)) {
        const char *app[] = {json_string_value(json_object_get(st, "name"))};
        metrics_set(d->m_weight, app, (double)json_integer_value(w));
    }
    json_decref(st);
    return 0;
}

static void update_gauges(struct daemon *d)
{
    struct workqueue_stats qs;

    workqueue_get_stats(d->queue, &qs);
    metrics_set(d->m_queue, NULL, (double)(qs.ready + qs.delayed + qs.in_progress));
    if (d->dir != NULL) {
        struct source_dir_stats ss;
        source_dir_get_stats(d->dir, &ss);
        metrics_set(d->m_files_read, NULL, (double)ss.files_read);
    }
    {
        struct read_batch_stats rb;
        const char *merged[] = {"merged"}, *direct[] = {"direct"}, *served[] = {"served"},
                   *prefetched[] = {"prefetched"}, *expired[] = {"expired"},
                   *fallbacks[] = {"fallback"};
        read_batch_get_stats(&rb);
        metrics_set(d->m_read_batch, merged, (double)rb.merged);
        metrics_set(d->m_read_batch, direct, (double)rb.direct);
        metrics_set(d->m_read_batch, served, (double)rb.served);
        metrics_set(d->m_read_batch, prefetched, (double)rb.prefetched);
        metrics_set(d->m_read_batch, expired, (double)rb.expired);
        metrics_set(d->m_read_batch, fallbacks, (double)rb.fallbacks);
    }
    metrics_reset(d->m_phase);
    metrics_reset(d->m_weight);
    store_foreach(d->store, NULL, gauge_visit, d);
}

static int list_visit(const char *kind, const char *name, json_t *rec, void *arg)
{
    (void)kind;
    (void)name;
    return json_array_append_new(arg, status_object(rec));
}

/* True when the query string has NAME=true or NAME=1 (or a bare NAME). */
static bool query_flag(const char *query, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = query; p != NULL && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= n && strncmp(p, name, n) == 0 &&
            (len == n || (len == n + 5 && strncmp(p + n, "=true", 5) == 0) ||
             (len == n + 2 && strncmp(p + n, "=1", 2) == 0)))
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static bool valid_action(const char *a)
{
    static const char *const actions[] = {"promote", "abort", "pause", "resume", "retry"};
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(a, actions[i]) == 0)
            return true;
    return false;
}

static void handle_object_path(struct daemon *d, const struct httpd_request *req,
                               struct httpd_response *resp)
{
    char kind[64] = "", name[96] = "", action[32] = "", extra[8] = "";
    json_t *rec;
    int n;

    n = sscanf(req->path, "/v1/objects/%63[^/]/%95[^/]/%31[^/]%7s", kind, name, action, extra);
    if (n < 2 || n > 3) {
        httpd_json_error(resp, 404, "no such path");
        return;
    }
    rec = store_get(d->store, kind, name);
    if (n == 2) {
        if (strcmp(req->method, "GET") != 0) {
            httpd_json_error(resp, 405, "use GET");
        } else if (rec == NULL) {
            httpd_json_error(resp, 404, "no such object");
        } else {
            respond_json(resp, 200, status_object(rec));
        }
        json_decref(rec);
        return;
    }
    if (strcmp(kind, "Application") != 0 || !valid_action(action)) {
        httpd_json_error(resp, 404,
                         "actions are promote, abort, pause, resume and retry on "
                         "/v1/objects/Application/NAME/ACTION");
    } else if (strcmp(req->method, "POST") != 0) {
        httpd_json_error(resp, 405, "use POST");
    } else if (rec == NULL) {
        httpd_json_error(resp, 404, "no such object");
    } else {
        json_int_t prev =
            json_integer_value(json_object_get(json_object_get(rec, "command"), "id"));
        char ts[21];
        json_t *cmd;
        if (prev > d->command_seq)
            d->command_seq = prev;
        status_format_time(wall_seconds(), ts);
        cmd = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)++d->command_seq, "action",
                        action, "time", ts, "query", req->query);
        /* promote?full=true (aviary promote --full): skip every remaining step. */
        if (cmd != NULL && query_flag(req->query, "full"))
            json_object_set_new(cmd, "full", json_true());
        if (store_set_field(d->store, kind, name, "command", cmd) != 0) {
            httpd_json_error(resp, 500, "cannot persist the command");
        } else {
            char key[KEY_MAX];
            snprintf(key, sizeof(key), "%s/%s", kind, name);
            log_event(LOG_LEVEL_INFO, "command received", "key", key, "action", action, NULL);
            enqueue(d, kind, name);
            respond_json(
                resp, 202,
                json_pack("{s:b, s:s, s:s}", "accepted", 1, "action", action, "object", key));
        }
        json_decref(cmd);
    }
    json_decref(rec);
}

static void on_http(const struct httpd_request *req, struct httpd_response *resp, void *arg)
{
    struct daemon *d = arg;

    if (strcmp(req->path, "/healthz") == 0) {
        aws_buf_append_str(&resp->body, "ok\n");
    } else if (strcmp(req->path, "/readyz") == 0) {
        if (d->ready) {
            aws_buf_append_str(&resp->body, "ready\n");
        } else {
            resp->status = 503;
            aws_buf_append_str(&resp->body, "source not loaded yet\n");
        }
    } else if (strcmp(req->path, "/metrics") == 0) {
        update_gauges(d);
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        if (metrics_render(d->metrics, &resp->body) != 0)
            httpd_json_error(resp, 500, "metrics too large");
    } else if (strcmp(req->path, "/v1/objects") == 0) {
        json_t *out = json_array();
        if (out == NULL || store_foreach(d->store, NULL, list_visit, out) != 0) {
            json_decref(out);
            httpd_json_error(resp, 500, "out of memory");
        } else {
            respond_json(resp, 200, out);
        }
    } else if (strncmp(req->path, "/v1/objects/", 12) == 0) {
        handle_object_path(d, req, resp);
    } else {
        httpd_json_error(resp, 404, "no such path");
    }
}

/* ---- startup ---------------------------------------------------------- */

static void on_aws_call(void *arg, const struct aws_call_record *rec)
{
    struct daemon *d = arg;
    char status[16];
    const char *labels[] = {rec->service, rec->operation, status};

    snprintf(status, sizeof(status), "%ld", rec->http_status);
    metrics_add(d->m_aws, labels, 1);
}

static int register_metrics(struct daemon *d)
{
    static const double buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    const char *kind_result[] = {"kind", "result", NULL};
    const char *kind[] = {"kind", NULL};
    const char *kind_phase[] = {"kind", "phase", NULL};
    const char *aws[] = {"service", "operation", "status", NULL};
    const char *app[] = {"application", NULL};
    const char *event[] = {"event", NULL};

    d->metrics = metrics_new();
    if (d->metrics == NULL)
        return -1;
    d->m_reconciles = metrics_register(d->metrics, METRIC_COUNTER, "aviary_reconciles_total",
                                       "Reconciles by kind and result.", kind_result, NULL, 0);
    d->m_duration =
        metrics_register(d->metrics, METRIC_HISTOGRAM, "aviary_reconcile_duration_seconds",
                         "Wall time of one reconcile.", kind, buckets, 11);
    d->m_queue =
        metrics_register(d->metrics, METRIC_GAUGE, "aviary_queue_depth",
                         "Keys queued, waiting for a delay or in progress.", NULL, NULL, 0);
    d->m_phase = metrics_register(d->metrics, METRIC_GAUGE, "aviary_objects",
                                  "Objects by kind and phase.", kind_phase, NULL, 0);
    d->m_aws = metrics_register(d->metrics, METRIC_COUNTER, "aviary_aws_calls_total",
                                "AWS API calls by service, operation and HTTP status (0: no "
                                "response).",
                                aws, NULL, 0);
    d->m_weight = metrics_register(d->metrics, METRIC_GAUGE, "aviary_canary_weight",
                                   "Traffic share of the canary, percent.", app, NULL, 0);
    d->m_files_loaded = metrics_register(
        d->metrics, METRIC_COUNTER, "aviary_manifest_files_loaded_total",
        "Manifest files parsed and validated (an unchanged file is not loaded again).", NULL, NULL,
        0);
    d->m_files_read =
        metrics_register(d->metrics, METRIC_COUNTER, "aviary_source_files_read_total",
                         "Manifest files read from the source directory.", NULL, NULL, 0);
    d->m_read_batch = metrics_register(
        d->metrics, METRIC_COUNTER, "aviary_read_batch_total",
        "Reads shared between applications: merged calls sent, batchable reads sent alone "
        "(direct), reads served from a share, shares prefetched, shares expired unserved, "
        "merged calls that failed (fallback).",
        event, NULL, 0);
    return d->m_reconciles && d->m_duration && d->m_queue && d->m_phase && d->m_aws &&
                   d->m_weight && d->m_files_loaded && d->m_files_read && d->m_read_batch
               ? 0
               : -1;
}

static int start_source(struct daemon *d, char *err, size_t errlen)
{
    if (strncmp(d->cfg->source, "s3://", 5) == 0) {
        struct source_s3_config sc = {
            .url = d->cfg->source, .interval_ms = d->cfg->s3_interval_ms, .client = d->aws};
        if (d->aws == NULL) {
            snprintf(err, errlen, "an S3 source needs AWS access");
            return -1;
        }
        return source_s3_start(&d->loop, &sc, on_snapshot, d, &d->s3, err, errlen);
    }
    struct source_dir_config dc = {.dir = d->cfg->source};
    return source_dir_start(&d->loop, &dc, on_snapshot, d, &d->dir, err, errlen) == 0 ? 0 : -1;
}

int daemon_run(const struct daemon_config *cfg)
{
    struct daemon *d = calloc(1, sizeof(*d));
    struct workqueue_config qc = {0};
    char err[1024] = "";
    int rc = 1;

    if (d == NULL)
        return 1;
#ifdef __GLIBC__
    /* glibc gives each thread that allocates its own arena (up to 8 per
     * core); each keeps its freed memory resident. The workers spend their
     * time waiting for AWS, not in malloc, so they share the main arena
     * with the loop thread: at 1,000 objects that is MiBs less RSS. */
    mallopt(M_ARENA_MAX, DAEMON_ARENAS);
    /* A fixed trim threshold: glibc otherwise raises it to 2 MiB after the
     * first large block (a file read) is freed, and keeps that much free
     * memory resident at the top of the heap. */
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
#endif
    d->cfg = cfg;
    if (uv_loop_init(&d->loop) != 0)
        goto out_free;
    if (store_open(cfg->state_dir, &d->store, err, sizeof(err)) != 0) {
        log_event(LOG_LEVEL_ERROR, "cannot open the state directory", "dir", cfg->state_dir,
                  "error", err, NULL);
        goto out_loop;
    }
    if (err[0] != '\0')
        log_event(LOG_LEVEL_WARN, "state directory had damaged records", "error", err, NULL);
    d->queue = workqueue_new(&qc);
    if (d->queue == NULL || register_metrics(d) != 0)
        goto out_store;
    if (cfg->use_aws) {
        struct aws_client_config ac = {.on_call = on_aws_call, .on_call_arg = d};
        struct aws_error aerr;
        if (aws_client_new(&ac, &d->aws, &aerr) != 0) {
            log_event(LOG_LEVEL_ERROR, "cannot set up the AWS client", "error", aerr.message, NULL);
            goto out_store;
        }
    }
    uv_timer_init(&d->loop, &d->resync);
    uv_timer_init(&d->loop, &d->grace);
    uv_timer_init(&d->loop, &d->trim);
    d->resync.data = d->grace.data = d->trim.data = d;
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sighup);
    d->sigterm.data = d->sigint.data = d->sighup.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sighup, on_signal, SIGHUP);
    if (httpd_start(&d->loop, cfg->listen, on_http, d, &d->httpd, err, sizeof(err)) != 0) {
        log_event(LOG_LEVEL_ERROR, "cannot start the HTTP API", "error", err, NULL);
        d->httpd = NULL;
        goto out_stop;
    }
    if (start_source(d, err, sizeof(err)) != 0) {
        log_event(LOG_LEVEL_ERROR, "cannot start the manifest source", "error", err, NULL);
        goto out_stop;
    }
    d->n_workers = cfg->workers > 0 && cfg->workers <= DAEMON_WORKERS_MAX ? cfg->workers : 4;
    for (int i = 0; i < d->n_workers; i++) {
        if (pthread_create(&d->workers[i], NULL, worker_main, d) != 0) {
            d->n_workers = i;
            log_event(LOG_LEVEL_ERROR, "cannot start worker threads", NULL);
            goto out_stop;
        }
    }
    /* Records loaded from the state dir resume their work at once. */
    on_resync(&d->resync);
    uv_timer_start(&d->resync, on_resync, (uint64_t)cfg->resync_ms, (uint64_t)cfg->resync_ms);
    uv_timer_start(&d->trim, on_trim, TRIM_CHECK_MS, TRIM_CHECK_MS);
    {
        char port[16];
        snprintf(port, sizeof(port), "%d", httpd_port(d->httpd));
        log_event(LOG_LEVEL_INFO, "aviary running", "source", cfg->source, "state_dir",
                  cfg->state_dir, "listen", cfg->listen, "port", port, NULL);
    }
    rc = 0;
out_stop:
    if (rc != 0)
        stop_everything(d);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    workqueue_shutdown(d->queue);
    for (int i = 0; i < d->n_workers; i++)
        pthread_join(d->workers[i], NULL);
    if (rc == 0)
        log_event(LOG_LEVEL_INFO, "stopped", NULL);
out_store:
    workqueue_free(d->queue);
    metrics_free(d->metrics);
    store_close(d->store);
    objects_clear(&d->current_set);
    index_free(&d->current_index);
    free(d->current_applied);
    free(d->missing);
    /* The shared GetMetricData batcher and webhook transport outlive every
     * reconcile; the workers are joined, so nothing uses them any more. */
    metrics_batcher_shared_free();
    alerts_http_shared_free();
    aws_client_free(d->aws);
out_loop:
    uv_loop_close(&d->loop);
out_free:
    free(d);
    return rc;
}
