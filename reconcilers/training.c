/* The TrainingEnvironment reconciler: runs the concerns in dependency order
 * (bucket, data, role, network, notebook) to converge an environment, or
 * in reverse to delete it, and turns the outcome into phase, conditions,
 * events and the queue's next step; plus the helpers the concern files
 * share (tags, raw-body calls). Worker threads. */
#include "reconcilers/training.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

/* Default wait while AWS finishes something. */
#define TRAIN_DEFAULT_WAIT_MS 5000
/* Uploads and copies of large parts may take longer than a describe. */
#define TRAIN_PAYLOAD_TIMEOUT_MS 300000L

/* ---- context and helpers ------------------------------------------------ */

static void partition_of(const char *region, char *out, size_t size)
{
    if (strncmp(region, "cn-", 3) == 0)
        snprintf(out, size, "aws-cn");
    else if (strncmp(region, "us-gov-", 7) == 0)
        snprintf(out, size, "aws-us-gov");
    else
        snprintf(out, size, "aws");
}

int train_ctx_init(struct train_ctx *ctx, const struct reconcile_request *req, json_t *status,
                   bool plan)
{
    struct train_names *n;

    memset(ctx, 0, sizeof(*ctx));
    app_ctx_init(&ctx->app, req, status, plan);
    n = &ctx->names;
    snprintf(n->env, sizeof(n->env), "%.40s", req->name);
    snprintf(n->notebook, sizeof(n->notebook), "%s", n->env);
    snprintf(n->role, sizeof(n->role), "aviary-%s-notebook", n->env);
    snprintf(n->vpc, sizeof(n->vpc), "aviary-%s", n->env);
    snprintf(n->subnet, sizeof(n->subnet), "aviary-%s-public", n->env);
    snprintf(n->table, sizeof(n->table), "aviary-%s-public", n->env);
    snprintf(n->igw, sizeof(n->igw), "aviary-%s-igw", n->env);
    snprintf(n->sg, sizeof(n->sg), "aviary-%s-notebook", n->env);
    ctx->region = req->aws != NULL ? aws_client_region(req->aws) : "";
    partition_of(ctx->region, n->partition, sizeof(n->partition));
    ctx->multipart_threshold = TRAIN_MULTIPART_THRESHOLD;
    ctx->part_size = TRAIN_PART_SIZE;
    if (req->aws == NULL) {
        app_fail(&ctx->app, true, "no AWS client: aviary was started without AWS access");
        return -1;
    }
    return 0;
}

void train_ctx_clear(struct train_ctx *ctx)
{
    app_ctx_clear(&ctx->app);
}

json_t *train_tags_list(const struct train_ctx *ctx, const char *key_name, const char *value_name)
{
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", key_name, APP_TAG_MANAGED_BY, value_name,
                     APP_TAG_MANAGED_BY_VALUE, key_name, TRAIN_TAG_TRAINING, value_name,
                     ctx->names.env);
}

bool train_tags_owned(const struct train_ctx *ctx, const json_t *tags)
{
    const char *by = app_tag_value(tags, APP_TAG_MANAGED_BY);
    const char *env = app_tag_value(tags, TRAIN_TAG_TRAINING);

    return by != NULL && env != NULL && strcmp(by, APP_TAG_MANAGED_BY_VALUE) == 0 &&
           strcmp(env, ctx->names.env) == 0;
}

json_t *train_ec2_filters(const struct train_ctx *ctx, ...)
{
    json_t *filters = json_pack("[{s:s, s:[s]}, {s:s, s:[s]}]", "Name", "tag:" APP_TAG_MANAGED_BY,
                                "Values", APP_TAG_MANAGED_BY_VALUE, "Name",
                                "tag:" TRAIN_TAG_TRAINING, "Values", ctx->names.env);
    const char *name;
    va_list ap;

    va_start(ap, ctx);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        json_array_append_new(
            filters, json_pack("{s:s, s:[s]}", "Name", name, "Values", value ? value : ""));
    }
    va_end(ap);
    return filters;
}

void train_note_drift(struct train_ctx *ctx, const char *kind, const char *name, const char *what)
{
    if (ctx->app.plan)
        app_note_change(&ctx->app, "update", kind, name, json_pack("[s+]", what, " (drift)"));
    else
        app_note_drift(&ctx->app, name, what);
}

bool train_is_code(const struct aws_error *err, const char *code)
{
    return err->kind == AWS_ERR_SERVICE && strcmp(err->code, code) == 0;
}

void train_forget_error(struct train_ctx *ctx)
{
    ctx->app.error[0] = '\0';
    ctx->app.terminal = false;
}

const char *train_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int train_write_payload(struct train_ctx *ctx, const char *resource, const char *operation,
                        json_t *in, const void *data, size_t len, json_t **out,
                        struct aws_error *err_out)
{
    struct aws_blob blob = {data, len};
    struct aws_call_options opts = {&blob, NULL, TRAIN_PAYLOAD_TIMEOUT_MS};
    struct aws_error err;
    json_t *result = NULL;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (ctx->app.plan) { /* as app_write: recorded, not sent */
        json_decref(in);
        return app_write(&ctx->app, resource, "s3", operation, NULL, NULL, err_out) < 0 ? -1 : 0;
    }
    ctx->app.writes++;
    rc = aws_call_ex(ctx->app.aws, "s3", operation, in, &opts, &result, &err);
    json_decref(in);
    if (rc != 0) {
        snprintf(ctx->app.error, sizeof(ctx->app.error), "%s: s3.%s: %s: %s%s%s%s", resource,
                 operation, err.code, err.message, err.request_id[0] ? " (request " : "",
                 err.request_id, err.request_id[0] ? ")" : "");
        /* Bad requests cannot be fixed by retrying; the rest (5xx, network,
         * throttling that outlasted the retries) can. */
        ctx->app.terminal =
            err.kind == AWS_ERR_INVALID ||
            (err.kind == AWS_ERR_SERVICE && !err.retryable &&
             (train_is_code(&err, "AccessDenied") || train_is_code(&err, "InvalidArgument") ||
              train_is_code(&err, "KMS.NotFoundException") ||
              train_is_code(&err, "EntityTooLarge")));
        if (err_out != NULL)
            *err_out = err;
        return -1;
    }
    if (err_out != NULL)
        aws_error_clear(err_out);
    if (out != NULL)
        *out = result;
    else
        json_decref(result);
    return 0;
}

int train_head_object(struct train_ctx *ctx, const char *resource, const char *bucket,
                      const char *key, json_t **out, struct aws_error *err_out)
{
    struct aws_error err;
    json_t *in = json_pack("{s:s, s:s}", "Bucket", bucket, "Key", key);
    int rc;

    *out = NULL;
    ctx->app.reads++;
    rc = aws_call(ctx->app.aws, "s3", "HeadObject", in, out, &err);
    json_decref(in);
    if (rc != 0) {
        snprintf(ctx->app.error, sizeof(ctx->app.error), "%s: s3.HeadObject: %s: %s%s%s%s",
                 resource, err.code, err.message, err.request_id[0] ? " (request " : "",
                 err.request_id, err.request_id[0] ? ")" : "");
        ctx->app.terminal =
            err.kind == AWS_ERR_INVALID ||
            (err.kind == AWS_ERR_SERVICE && !err.retryable && train_is_code(&err, "AccessDenied"));
        if (err_out != NULL)
            *err_out = err;
        return -1;
    }
    if (err_out != NULL)
        aws_error_clear(err_out);
    return 0;
}

/* ---- orchestration ---------------------------------------------------------- */

struct concern {
    const char *name;
    enum app_step (*converge)(struct train_ctx *ctx);
    enum app_step (*delete)(struct train_ctx *ctx);
};

/* Dependency order: the role needs the bucket's name, the notebook the role
 * and the network. The bucket is deleted separately (only with deleteData). */
static const struct concern concerns[] = {
    {"bucket", training_bucket_converge, NULL},
    {"data", training_upload_converge, NULL},
    {"role", training_role_converge, training_role_delete},
    {"network", training_network_converge, training_network_delete},
    {"notebook", training_notebook_converge, training_notebook_delete},
};

#define N_CONCERNS (sizeof(concerns) / sizeof(concerns[0]))

static void finish_failed(struct train_ctx *ctx, const char *step, struct reconcile_result *res)
{
    struct app_ctx *a = &ctx->app;
    int64_t now = a->req->now;

    if (status_set_condition(a->status, "Synced", "False",
                             a->terminal ? "InvalidConfiguration" : "AwsError", a->error, now))
        status_add_event(a->status, "Warning", a->terminal ? "InvalidConfiguration" : "AwsError",
                         a->error, now);
    json_object_set_new(a->status, "failedStep", json_string(step));
    if (a->terminal)
        status_set_phase(a->status, PHASE_FAILED);
    res->outcome = a->terminal ? RECONCILE_INVALID : RECONCILE_ERROR;
    snprintf(res->error, sizeof(res->error), "%s", a->error);
}

static void converge(struct train_ctx *ctx, struct reconcile_result *res)
{
    struct app_ctx *a = &ctx->app;
    int64_t now = a->req->now;
    const char *state;
    char msg[256];

    for (size_t i = 0; i < N_CONCERNS; i++) {
        enum app_step step = concerns[i].converge(ctx);
        if (step == APP_STEP_FAILED) {
            finish_failed(ctx, concerns[i].name, res);
            return;
        }
        if (step == APP_STEP_WAITING) {
            snprintf(msg, sizeof(msg), "waiting for %s", concerns[i].name);
            status_set_condition(a->status, "Synced", "False", "Provisioning", msg, now);
            if (!json_is_true(json_object_get(a->status, "provisioned")))
                status_set_phase(a->status, PHASE_PROVISIONING);
            res->outcome = RECONCILE_REQUEUE_AFTER;
            res->requeue_after_ms = a->requeue_ms > 0 ? a->requeue_ms : TRAIN_DEFAULT_WAIT_MS;
            return;
        }
    }
    json_object_del(a->status, "failedStep");
    json_object_set_new(a->status, "provisioned", json_true());
    json_object_set_new(a->status, "observedGeneration", json_integer(a->req->generation));
    if (a->req->revision != NULL)
        json_object_set_new(a->status, "observedRevision", json_string(a->req->revision));
    if (status_set_condition(a->status, "Synced", "True", "Converged", "AWS matches the manifest",
                             now))
        status_add_event(a->status, "Normal", "Converged", "AWS matches the manifest", now);
    state = json_string_value(json_object_get(json_object_get(a->status, "notebook"), "state"));
    if (state != NULL && strcmp(state, "InService") == 0)
        status_set_condition(a->status, "Available", "True", "NotebookInService",
                             train_str(a->status, "notebookUrl"), now);
    else
        status_set_condition(a->status, "Available", "False", "NotebookStopped",
                             "spec.running is false: the notebook instance is stopped (the data "
                             "stays in the bucket)",
                             now);
    status_set_phase(a->status, PHASE_READY);
    res->outcome = a->requeue_ms > 0 ? RECONCILE_REQUEUE_AFTER : RECONCILE_DONE;
    res->requeue_after_ms = a->requeue_ms;
}

/* Reports the bucket that deletion leaves in place (once). */
static int report_retained(struct train_ctx *ctx)
{
    struct app_ctx *a = &ctx->app;
    char msg[256];

    if (json_is_true(json_object_get(a->status, "dataRetained")))
        return 0;
    if (training_bucket_name(ctx) != 0)
        return -1;
    snprintf(msg, sizeof(msg),
             "bucket %s and every version of the training data are retained (spec.deleteData is "
             "false); delete it by hand when no longer needed",
             ctx->names.bucket);
    status_add_event(a->status, "Normal", "DataRetained", msg, a->req->now);
    json_object_set_new(a->status, "dataRetained", json_true());
    json_object_set_new(a->status, "retainedBucket", json_string(ctx->names.bucket));
    return 0;
}

static void teardown(struct train_ctx *ctx, struct reconcile_result *res)
{
    struct app_ctx *a = &ctx->app;
    int64_t now = a->req->now;
    bool delete_data = app_spec_bool(a, "deleteData", false);
    enum app_step step;
    const char *failed = NULL;
    char msg[256];

    status_set_phase(a->status, PHASE_DELETING);
    if (strcmp(app_spec_str(a, "deletionPolicy", "Delete"), "Retain") == 0) {
        status_add_event(a->status, "Normal", "Retained",
                         "deletionPolicy Retain: every AWS resource is left in place", now);
        res->deleted = true;
        res->outcome = RECONCILE_DONE;
        return;
    }
    if (!delete_data && report_retained(ctx) != 0) {
        failed = "bucket";
        goto failed;
    }
    for (size_t i = N_CONCERNS; i-- > 0;) {
        if (concerns[i].delete == NULL)
            continue;
        step = concerns[i].delete(ctx);
        if (step == APP_STEP_FAILED) {
            failed = concerns[i].name;
            goto failed;
        }
        if (step == APP_STEP_WAITING) {
            snprintf(msg, sizeof(msg), "deleting %s", concerns[i].name);
            goto waiting;
        }
    }
    if (delete_data) {
        step = training_bucket_delete(ctx);
        if (step == APP_STEP_FAILED) {
            failed = "bucket";
            goto failed;
        }
        if (step == APP_STEP_WAITING) {
            snprintf(msg, sizeof(msg), "deleting the bucket's object versions");
            goto waiting;
        }
    }
    res->deleted = true;
    res->outcome = RECONCILE_DONE;
    return;
waiting:
    status_set_condition(a->status, "Synced", "False", "Deleting", msg, now);
    res->outcome = RECONCILE_REQUEUE_AFTER;
    res->requeue_after_ms = a->requeue_ms > 0 ? a->requeue_ms : TRAIN_DEFAULT_WAIT_MS;
    return;
failed:
    finish_failed(ctx, failed, res);
    status_set_phase(a->status, PHASE_DELETING);
    if (res->outcome == RECONCILE_INVALID)
        res->outcome = RECONCILE_ERROR; /* deletion keeps retrying */
}

void training_reconcile_once(const struct reconcile_request *req, json_t *status,
                             struct reconcile_result *res, bool plan, json_t *plan_actions)
{
    struct train_ctx ctx;

    if (train_ctx_init(&ctx, req, status, plan) != 0)
        finish_failed(&ctx, "setup", res);
    else if (req->deleting && !plan)
        teardown(&ctx, res);
    else
        converge(&ctx, res);
    if (plan && plan_actions != NULL && ctx.app.plan_actions != NULL)
        json_array_extend(plan_actions, ctx.app.plan_actions);
    json_object_set_new(status, "lastReconcile",
                        json_pack("{s:i, s:i}", "reads", ctx.app.reads, "writes", ctx.app.writes));
    train_ctx_clear(&ctx);
}

static void training_reconcile(const struct reconcile_request *req, json_t *status,
                               struct reconcile_result *res)
{
    training_reconcile_once(req, status, res, false, NULL);
}

const struct reconciler training_reconciler = {"TrainingEnvironment", training_reconcile};
