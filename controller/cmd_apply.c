/* `aviary apply FILE [--wait]`: converges the Applications and
 * TrainingEnvironments of one manifest file without the daemon (for CI/CD),
 * pass after pass as the reconcilers ask, and the helpers it shares with
 * `aviary plan`. Main thread. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/client.h"
#include "controller/cmd.h"
#include "controller/manifest.h"
#include "controller/store.h"
#include "reconcilers/app.h"
#include "reconcilers/duration.h"
#include "reconcilers/status.h"
#include "reconcilers/training.h"

#define APPLY_DEFAULT_TIMEOUT_MS (30L * 60 * 1000)
#define APPLY_BACKOFF_MIN_MS     1000L
#define APPLY_BACKOFF_MAX_MS     30000L
#define APPLY_EVENT_LINE         600

static volatile sig_atomic_t apply_stop;

static void apply_usage(FILE *out)
{
    fprintf(out, "usage: aviary apply FILE [--wait] [--timeout DURATION] [--state-dir DIR]\n"
                 "\n"
                 "Converges the Applications and TrainingEnvironments of FILE in AWS without\n"
                 "the daemon (for CI/CD): creates what is missing, corrects drift, applies\n"
                 "changes in place (a TrainingEnvironment's changed data files are uploaded as\n"
                 "new versions). Every pass prints a progress line and the events it recorded.\n"
                 "\n"
                 "  --wait              keep going (as the reconcilers ask: AWS resources become\n"
                 "                      available, tasks turn healthy, a notebook instance comes\n"
                 "                      into service) until every object is Ready, or fails\n"
                 "  --timeout DURATION  give up waiting after this long (default 30m)\n"
                 "  --state-dir DIR     keep the status in the daemon's store in DIR, so that a\n"
                 "                      later `aviary run --state-dir DIR` continues from it (do\n"
                 "                      not point it at the store of a running daemon)\n"
                 "\n"
                 "Without --wait one pass is made. Invalid manifests are reported like\n"
                 "`aviary validate` and nothing in AWS is touched.\n"
                 "\n"
                 "A rollout that pauses (for `aviary promote`, which needs the daemon) or\n"
                 "rolls back ends the wait with a failure.\n"
                 "\n"
                 "A TrainingEnvironment is Ready when its bucket, data, role and network match\n"
                 "the manifest and its notebook instance is InService (or Stopped with\n"
                 "`running: false`); a notebook that fails reports SageMaker's reason.\n"
                 "\n"
                 "Exit status: 0 every object Ready (--wait) or the pass succeeded (without\n"
                 "--wait); 1 an invalid manifest, a failure (the reason on stderr), a paused or\n"
                 "rolled-back rollout, or the timeout; 2 usage error; 130 interrupted.\n");
}

struct manifest_file *cmd_load_valid(const char *cmd, const char *path)
{
    struct diag_list init_errors = {0};
    struct manifest_file *mf;

    if (manifest_init(&init_errors) != 0) {
        diag_print(stderr, &init_errors);
        diag_list_clear(&init_errors);
        return NULL;
    }
    mf = manifest_load_file(path);
    if (mf == NULL) {
        fprintf(stderr, "aviary %s: %s: out of memory\n", cmd, path);
        return NULL;
    }
    if (diag_count(&mf->errors) > 0) {
        diag_print(stderr, &mf->errors);
        manifest_file_free(mf);
        return NULL;
    }
    if (mf->nobjects == 0) {
        fprintf(stderr, "%s: no objects in the file\n", path);
        manifest_file_free(mf);
        return NULL;
    }
    return mf;
}

int cmd_aws_client(const char *cmd, struct aws_client **out)
{
    struct aws_client_config ac = {0};
    struct aws_error err;

    if (aws_client_new(&ac, out, &err) != 0) {
        fprintf(stderr, "aviary %s: cannot set up the AWS client: %s\n", cmd, err.message);
        return -1;
    }
    return 0;
}

void cmd_app_request(const struct manifest_object *obj, const char *manifest_dir,
                     struct aws_client *aws, const char *reconcile_id,
                     struct reconcile_request *req)
{
    struct timespec ts;

    memset(req, 0, sizeof(*req));
    req->kind = manifest_kind_name(obj->kind);
    req->name = obj->name;
    req->spec = obj->spec;
    req->revision = obj->revision;
    req->generation = obj->generation;
    req->manifest_dir = manifest_dir;
    clock_gettime(CLOCK_REALTIME, &ts);
    req->now = (int64_t)ts.tv_sec;
    req->now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    req->reconcile_id = reconcile_id;
    req->aws = aws;
}

int cmd_manifest_dir(const char *path, char *out, size_t len)
{
    char tmp[4096];

    if (strlen(path) >= sizeof(tmp))
        return -1;
    snprintf(tmp, sizeof(tmp), "%s", path);
    if (snprintf(out, len, "%s", dirname(tmp)) >= (int)len)
        return -1;
    return 0;
}

/* ---- one object's progress ------------------------------------------------- */

struct apply_app {
    const struct manifest_object *obj;
    json_t *status;
    int passes;
    bool done;   /* Ready, or a failure with nothing more to do */
    bool failed; /* exit status 1 */
    long next_ms;
    long backoff_ms;
};

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void on_signal(int sig)
{
    (void)sig;
    apply_stop = 1;
}

/* Sleeps ms, in slices so that an interrupt is noticed. */
static void sleep_ms(long ms)
{
    while (ms > 0 && !apply_stop) {
        long slice = ms > 200 ? 200 : ms;
        struct timespec ts = {slice / 1000, (slice % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

/* The message of condition `type`, or NULL. */
static const char *condition_message(const json_t *status, const char *type)
{
    const json_t *conds = json_object_get(status, "conditions");
    size_t i;
    const json_t *c;

    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t != NULL && strcmp(t, type) == 0)
            return json_string_value(json_object_get(c, "message"));
    }
    return NULL;
}

static const char *synced_message(const json_t *status)
{
    return condition_message(status, "Synced");
}

/* True for phases no further pass of apply changes: a paused rollout waits
 * for a person (`aviary promote`/`resume` talk to the daemon), a rolled-back
 * revision is not retried until the manifest changes. */
static bool is_stuck(const char *phase)
{
    return phase != NULL && (strcmp(phase, "Paused") == 0 || strcmp(phase, "RolledBack") == 0 ||
                             strcmp(phase, "Failed") == 0);
}

static bool same_event(const json_t *a, const json_t *b)
{
    return json_equal(json_object_get(a, "reason"), json_object_get(b, "reason")) &&
           json_equal(json_object_get(a, "message"), json_object_get(b, "message")) &&
           json_equal(json_object_get(a, "count"), json_object_get(b, "count")) &&
           json_equal(json_object_get(a, "lastTime"), json_object_get(b, "lastTime"));
}

/* Prints the events of `after` that `before` did not have. */
static void print_new_events(const char *name, const json_t *before, const json_t *after)
{
    size_t i, j;
    const json_t *e, *old;

    json_array_foreach(after, i, e)
    {
        bool seen = false;
        json_array_foreach(before, j, old)
        {
            if (same_event(e, old)) {
                seen = true;
                break;
            }
        }
        if (!seen)
            printf("%s:   %s %s: %.*s\n", name,
                   json_string_value(json_object_get(e, "type"))
                       ? json_string_value(json_object_get(e, "type"))
                       : "",
                   json_string_value(json_object_get(e, "reason"))
                       ? json_string_value(json_object_get(e, "reason"))
                       : "",
                   APPLY_EVENT_LINE,
                   json_string_value(json_object_get(e, "message"))
                       ? json_string_value(json_object_get(e, "message"))
                       : "");
    }
}

static bool is_ready(const json_t *status)
{
    const char *phase = json_string_value(json_object_get(status, "phase"));
    const char *synced = status_condition(status, "Synced");

    return phase != NULL && strcmp(phase, "Ready") == 0 && synced != NULL &&
           strcmp(synced, "True") == 0;
}

/* SageMaker's FailureReason when the notebook instance of a
 * TrainingEnvironment's status is Failed, else NULL. */
static const char *notebook_failed(const json_t *status)
{
    const json_t *nb = json_object_get(status, "notebook");
    const char *state = json_string_value(json_object_get(nb, "state"));
    const char *why = json_string_value(json_object_get(nb, "failureReason"));

    if (state == NULL || strcmp(state, "Failed") != 0)
        return NULL;
    return why != NULL && *why ? why : "no reason given";
}

/* "NAME: Ready: ..." with what the object's users need: an Application's
 * endpoint and dashboard, a TrainingEnvironment's notebook URL (or state)
 * and bucket. */
static void print_ready(const struct apply_app *app)
{
    const json_t *st = app->status;
    const char *ep, *dash, *url, *bucket, *state;

    if (app->obj->kind == MANIFEST_KIND_TRAINING_ENVIRONMENT) {
        url = json_string_value(json_object_get(st, "notebookUrl"));
        state = json_string_value(json_object_get(json_object_get(st, "notebook"), "state"));
        bucket = json_string_value(json_object_get(st, "bucket"));
        printf("\n%s: Ready: notebook %s%s%s, bucket %s\n", app->obj->name, state ? state : "?",
               url && state && strcmp(state, "InService") == 0 ? " " : "",
               url && state && strcmp(state, "InService") == 0 ? url : "", bucket ? bucket : "?");
        return;
    }
    ep = json_string_value(json_object_get(st, "endpoint"));
    dash = json_string_value(json_object_get(st, "dashboardUrl"));
    printf("\n%s: Ready%s%s%s%s\n", app->obj->name, ep ? ": " : "", ep ? ep : "",
           dash ? ", dashboard " : "", dash ? dash : "");
}

/* Loads the stored status of the object (or a new one) and records the
 * desired spec as the daemon would, so `aviary run` on the same store
 * continues. Returns the status (caller decrefs) or NULL when out of memory. */
static json_t *load_status(struct store *st, const struct manifest_object *obj, const char *file,
                           const char *manifest_dir)
{
    const char *kind = manifest_kind_name(obj->kind);
    json_t *rec = st ? store_get(st, kind, obj->name) : NULL;
    json_t *status = json_deep_copy(json_object_get(rec, "status"));
    int64_t now = (int64_t)time(NULL);

    if (!json_is_object(status)) {
        char ts[21];
        json_decref(status);
        status = status_new(kind, obj->name);
        if (status == NULL)
            goto out;
        status_format_time(now, ts);
        json_object_set_new(status, "creationTime", json_string(ts));
    }
    if (st != NULL) {
        const json_t *prev = json_object_get(rec, "desired");
        long long gen =
            manifest_next_generation(json_integer_value(json_object_get(prev, "generation")),
                                     json_string_value(json_object_get(prev, "specHash")), obj);
        json_t *desired =
            json_pack("{s:O, s:s, s:s, s:I, s:s, s:i, s:s}", "spec", obj->spec, "revision",
                      obj->revision, "specHash", obj->spec_hash, "generation", (json_int_t)gen,
                      "file", file, "line", obj->line, "manifestDir", manifest_dir);
        json_t *validation = json_pack("{s:b}", "valid", 1);
        if (desired == NULL || validation == NULL ||
            store_set_field(st, kind, obj->name, "desired", desired) != 0 ||
            store_set_field(st, kind, obj->name, "validation", validation) != 0 ||
            (json_is_true(json_object_get(rec, "deleting")) &&
             store_set_field(st, kind, obj->name, "deleting", json_false()) != 0))
            fprintf(stderr, "%s: warning: cannot record the manifest in the state directory\n",
                    obj->name);
        json_decref(desired);
        json_decref(validation);
    }
    status_set_condition(status, "Valid", "True", "Validated", "the manifest is valid", now);
out:
    json_decref(rec);
    return status;
}

/* One converge pass of app; prints its progress and schedules the next. */
static void apply_pass(struct apply_app *app, const char *manifest_dir, struct aws_client *aws,
                       struct store *st, bool wait)
{
    bool training = app->obj->kind == MANIFEST_KIND_TRAINING_ENVIRONMENT;
    struct reconcile_request req;
    struct reconcile_result res = {0};
    json_t *before = json_deep_copy(json_object_get(app->status, "events"));
    const json_t *last;
    const char *phase, *msg;
    char rid[32];
    long next = 0;

    app->passes++;
    snprintf(rid, sizeof(rid), "apply-%d", app->passes);
    cmd_app_request(app->obj, manifest_dir, aws, rid, &req);
    if (training)
        training_reconcile_once(&req, app->status, &res, false, NULL);
    else
        application_reconcile(&req, app->status, &res, false, NULL);
    if (st != NULL && store_set_field(st, manifest_kind_name(app->obj->kind), app->obj->name,
                                      "status", app->status) != 0)
        fprintf(stderr, "%s: warning: cannot persist the status in the state directory\n",
                app->obj->name);
    print_new_events(app->obj->name, before, json_object_get(app->status, "events"));
    json_decref(before);
    last = json_object_get(app->status, "lastReconcile");
    phase = json_string_value(json_object_get(app->status, "phase"));
    msg = synced_message(app->status);
    printf("%s: pass %d: %s: %s (%lld reads, %lld writes)", app->obj->name, app->passes,
           phase ? phase : "?", msg ? msg : "", json_integer_value(json_object_get(last, "reads")),
           json_integer_value(json_object_get(last, "writes")));
    switch (res.outcome) {
    case RECONCILE_DONE:
    case RECONCILE_REQUEUE_AFTER:
        app->backoff_ms = 0;
        if (is_ready(app->status)) {
            print_ready(app);
            app->done = true;
            return;
        }
        if (training && app->passes > 1 && notebook_failed(app->status)) {
            /* It failed after this apply created or started it: starting it
             * again (as the daemon does) would fail the same way. */
            printf("\n");
            fprintf(stderr, "%s: not Ready: the notebook instance failed: %s\n", app->obj->name,
                    notebook_failed(app->status));
            app->done = app->failed = true;
            return;
        }
        if (res.outcome == RECONCILE_DONE || is_stuck(phase)) {
            /* Settled but not Ready (a rolled-back revision, a paused
             * rollout): nothing a further pass changes. */
            const char *why = condition_message(app->status, "Degraded");
            if (why == NULL || *why == '\0')
                why = condition_message(app->status, "Progressing");
            if (why == NULL || *why == '\0')
                why = msg;
            printf("\n");
            fprintf(stderr, "%s: not Ready: phase %s%s%s\n", app->obj->name, phase ? phase : "?",
                    why ? ": " : "", why ? why : "");
            app->done = app->failed = true;
            return;
        }
        next = res.requeue_after_ms > 0 ? res.requeue_after_ms : APPLY_BACKOFF_MIN_MS;
        break;
    case RECONCILE_ERROR:
        app->backoff_ms = app->backoff_ms == 0 ? APPLY_BACKOFF_MIN_MS : app->backoff_ms * 2;
        if (app->backoff_ms > APPLY_BACKOFF_MAX_MS)
            app->backoff_ms = APPLY_BACKOFF_MAX_MS;
        next = app->backoff_ms;
        if (!wait) {
            printf("\n");
            fprintf(stderr, "%s: failed: %s\n", app->obj->name, res.error);
            app->done = app->failed = true;
            return;
        }
        break;
    case RECONCILE_INVALID:
        printf("\n");
        fprintf(stderr, "%s: failed: %s\n", app->obj->name, res.error[0] ? res.error : msg);
        app->done = app->failed = true;
        return;
    }
    if (!wait) {
        printf("\n%s: not Ready yet (one pass without --wait)\n", app->obj->name);
        app->done = true;
        return;
    }
    printf("; next pass in %.1fs\n", (double)next / 1000.0);
    app->next_ms = now_ms() + next;
}

int cmd_apply(int argc, char **argv)
{
    static const struct option opts[] = {
        {"wait", no_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"state-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *state_dir = NULL, *path;
    struct manifest_file *mf = NULL;
    struct aws_client *aws = NULL;
    struct store *st = NULL;
    struct apply_app *apps = NULL;
    struct sigaction sa;
    char manifest_dir[4096], err[1024] = "";
    size_t napps = 0, i;
    int64_t timeout_ms = APPLY_DEFAULT_TIMEOUT_MS;
    long deadline;
    bool wait = false;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *why = NULL;
        switch (c) {
        case 'w':
            wait = true;
            break;
        case 't':
            if (duration_parse(optarg, &timeout_ms, &why) != 0 || timeout_ms <= 0) {
                fprintf(stderr, "aviary apply: --timeout %s: %s\n", optarg,
                        why ? why : "expected a positive duration, e.g. 10m");
                return 2;
            }
            break;
        case 'd':
            state_dir = optarg;
            break;
        case 'h':
            apply_usage(stdout);
            return 0;
        default:
            apply_usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        apply_usage(stderr);
        return 2;
    }
    path = argv[optind];
    mf = cmd_load_valid("apply", path);
    if (mf == NULL)
        goto out;
    if (cmd_manifest_dir(path, manifest_dir, sizeof(manifest_dir)) != 0) {
        fprintf(stderr, "aviary apply: %s: path too long\n", path);
        goto out;
    }
    apps = calloc(mf->nobjects, sizeof(*apps));
    if (apps == NULL)
        goto out;
    for (i = 0; i < mf->nobjects; i++) {
        if (mf->objects[i].kind != MANIFEST_KIND_APPLICATION &&
            mf->objects[i].kind != MANIFEST_KIND_TRAINING_ENVIRONMENT) {
            printf("%s %s: skipped: `aviary apply` converges Applications and "
                   "TrainingEnvironments; run the daemon for this kind\n",
                   manifest_kind_name(mf->objects[i].kind), mf->objects[i].name);
            continue;
        }
        apps[napps++].obj = &mf->objects[i];
    }
    if (napps == 0) {
        rc = 0;
        goto out;
    }
    if (cmd_aws_client("apply", &aws) != 0)
        goto out;
    if (state_dir != NULL) {
        if (store_open(state_dir, &st, err, sizeof(err)) != 0) {
            fprintf(stderr, "aviary apply: --state-dir %s: %s\n", state_dir, err);
            goto out;
        }
        if (err[0] != '\0')
            fprintf(stderr, "aviary apply: warning: %s\n", err);
    }
    for (i = 0; i < napps; i++) {
        apps[i].status = load_status(st, apps[i].obj, path, manifest_dir);
        if (apps[i].status == NULL)
            goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    deadline = now_ms() + (long)timeout_ms;
    for (;;) {
        long soonest = 0;
        size_t pending = 0;

        for (i = 0; i < napps && !apply_stop; i++) {
            if (!apps[i].done && apps[i].next_ms <= now_ms())
                apply_pass(&apps[i], manifest_dir, aws, st, wait);
            fflush(stdout);
        }
        for (i = 0; i < napps; i++) {
            if (apps[i].done)
                continue;
            if (pending++ == 0 || apps[i].next_ms < soonest)
                soonest = apps[i].next_ms;
        }
        if (pending == 0 || apply_stop)
            break;
        if (soonest > deadline) {
            for (i = 0; i < napps; i++) {
                const char *m = synced_message(apps[i].status);
                if (apps[i].done)
                    continue;
                fprintf(stderr, "%s: timed out after %lds: %s\n", apps[i].obj->name,
                        (long)(timeout_ms / 1000), m ? m : "not Ready");
                apps[i].failed = true;
            }
            break;
        }
        sleep_ms(soonest - now_ms());
    }
    rc = 0;
    for (i = 0; i < napps; i++)
        if (apps[i].failed)
            rc = 1;
    if (apply_stop) {
        fprintf(stderr, "aviary apply: interrupted%s\n",
                st ? "; the status is kept in the state directory" : "");
        rc = 130;
    }
out:
    for (i = 0; apps != NULL && i < napps; i++)
        json_decref(apps[i].status);
    free(apps);
    store_close(st);
    aws_client_free(aws);
    manifest_file_free(mf);
    return rc;
}
