/* The Application reconciler's shared helpers (see app.h): names, AWS calls
 * with precise error reports and plan mode, tags, spec access. Worker
 * threads; everything here works on one reconcile's context. */
#include "reconcilers/app.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/duration.h"
#include "reconcilers/read_batch.h"
#include "reconcilers/status.h"

void app_names_init(struct app_names *n, const char *app)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->app, sizeof(n->app), "%.28s", app);
    snprintf(n->vpc, sizeof(n->vpc), "aviary-%s", n->app);
    snprintf(n->cluster, sizeof(n->cluster), "aviary-%s", n->app);
    snprintf(n->service[0], sizeof(n->service[0]), "%s-a", n->app);
    snprintf(n->service[1], sizeof(n->service[1]), "%s-b", n->app);
    snprintf(n->target_group[0], sizeof(n->target_group[0]), "%.28s-tga", n->app);
    snprintf(n->target_group[1], sizeof(n->target_group[1]), "%.28s-tgb", n->app);
    snprintf(n->load_balancer, sizeof(n->load_balancer), "%.28s-alb", n->app);
    snprintf(n->sg_lb, sizeof(n->sg_lb), "aviary-%s-lb", n->app);
    snprintf(n->sg_tasks, sizeof(n->sg_tasks), "aviary-%s-tasks", n->app);
    snprintf(n->repository, sizeof(n->repository), "%s", n->app);
    snprintf(n->log_group, sizeof(n->log_group), "/aviary/%s", n->app);
    snprintf(n->task_family, sizeof(n->task_family), "aviary-%s", n->app);
    snprintf(n->topic, sizeof(n->topic), "aviary-%s", n->app);
    snprintf(n->dashboard, sizeof(n->dashboard), "aviary-%s", n->app);
    snprintf(n->alarm_prefix, sizeof(n->alarm_prefix), "aviary-%s", n->app);
}

const char *app_slot_name(int slot)
{
    return slot == 1 ? "b" : "a";
}

void app_ctx_init(struct app_ctx *ctx, const struct reconcile_request *req, json_t *status,
                  bool plan)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->req = req;
    ctx->spec = req->spec;
    ctx->aws = req->aws;
    ctx->status = status;
    ctx->plan = plan;
    app_names_init(&ctx->names, req->name);
    ctx->resources = json_object_get(status, "resources");
    if (!json_is_object(ctx->resources)) {
        ctx->resources = json_object();
        json_object_set_new(status, "resources", ctx->resources);
    }
    if (plan)
        ctx->plan_actions = json_array();
}

void app_ctx_clear(struct app_ctx *ctx)
{
    json_decref(ctx->plan_actions);
    ctx->plan_actions = NULL;
    json_decref(ctx->services_observed);
    ctx->services_observed = NULL;
}

json_t *app_resources(struct app_ctx *ctx, const char *concern)
{
    json_t *r = json_object_get(ctx->resources, concern);

    if (!json_is_object(r)) {
        r = json_object();
        json_object_set_new(ctx->resources, concern, r);
    }
    return r;
}

void app_wait(struct app_ctx *ctx, long ms)
{
    if (ms <= 0)
        ms = 1000;
    if (ctx->requeue_ms == 0 || ms < ctx->requeue_ms)
        ctx->requeue_ms = ms;
}

void app_fail(struct app_ctx *ctx, bool terminal, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
    va_end(ap);
    ctx->terminal = terminal;
}

/* AWS errors that retrying cannot fix: the request itself is wrong. Not
 * found, conflicts and dependency errors are left transient: the
 * reconcile's next pass re-reads AWS and decides again. */
static bool terminal_code(const struct aws_error *err)
{
    static const char *const codes[] = {
        "ValidationError",
        "ValidationException",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "InvalidParameterException",
        "InvalidParameter",
        "UnsupportedCertificate",
        "CertificateNotFound",
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "MalformedPolicyDocument",
        "InvalidInput",
    };

    if (err->kind != AWS_ERR_SERVICE || err->retryable)
        return err->kind == AWS_ERR_INVALID;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(err->code, codes[i]) == 0)
            return true;
    return false;
}

/* Reports a failed call in ctx (and *err_out). Returns -1. */
static int call_failed(struct app_ctx *ctx, const char *resource, const char *service,
                       const char *operation, const struct aws_error *err,
                       struct aws_error *err_out)
{
    snprintf(ctx->error, sizeof(ctx->error), "%s: %s.%s: %s: %s%s%s", resource, service, operation,
             err->code, err->message, err->request_id[0] ? " (request " : "",
             err->request_id[0] ? err->request_id : "");
    if (err->request_id[0])
        strncat(ctx->error, ")", sizeof(ctx->error) - strlen(ctx->error) - 1);
    ctx->terminal = terminal_code(err);
    if (err_out != NULL)
        *err_out = *err;
    return -1;
}

/* Hands a successful call's result to the caller (or drops it). Returns 0. */
static int call_done(json_t *result, json_t **out, struct aws_error *err_out)
{
    if (err_out != NULL)
        aws_error_clear(err_out);
    if (out != NULL)
        *out = result;
    else
        json_decref(result);
    return 0;
}

int app_read(struct app_ctx *ctx, const char *resource, const char *service, const char *operation,
             json_t *in, json_t **out, struct aws_error *err_out)
{
    struct aws_error err;
    json_t *result = NULL;
    int rc = 1;

    ctx->reads++;
    if (out != NULL)
        *out = NULL;
    /* Plan mode reads alone: a one-off pass has no resync to batch with. */
    if (!ctx->plan)
        rc = read_batch_call(ctx->aws, ctx->names.app, service, operation, in, &result, &err);
    if (rc == 1)
        rc = aws_call(ctx->aws, service, operation, in, &result, &err);
    json_decref(in);
    if (rc != 0)
        return call_failed(ctx, resource, service, operation, &err, err_out);
    return call_done(result, out, err_out);
}

/* "CreateVpc" -> "create", "ModifyListener" -> "update", "DeleteVpc" ->
 * "delete". Put* (PutDashboard, PutScalingPolicy, PutMetricAlarm,
 * PutRetentionPolicy, ...) creates or overwrites: the concerns note a
 * create before the Put when the thing does not exist yet (`aviary plan`
 * groups the call under that note), so a Put alone overwrites what exists
 * and is an update. */
static const char *action_of(const char *operation)
{
    if (strncmp(operation, "Create", 6) == 0 || strncmp(operation, "Register", 8) == 0 ||
        strncmp(operation, "Allocate", 8) == 0 || strncmp(operation, "Subscribe", 9) == 0)
        return "create";
    if (strncmp(operation, "Delete", 6) == 0 || strncmp(operation, "Deregister", 10) == 0 ||
        strncmp(operation, "Release", 7) == 0 || strncmp(operation, "Unsubscribe", 11) == 0 ||
        strncmp(operation, "Detach", 6) == 0 || strncmp(operation, "Disassociate", 12) == 0 ||
        strncmp(operation, "Revoke", 6) == 0 || strncmp(operation, "Remove", 6) == 0)
        return "delete";
    return "update";
}

int app_write(struct app_ctx *ctx, const char *resource, const char *service, const char *operation,
              json_t *in, json_t **out, struct aws_error *err)
{
    struct aws_error e;
    json_t *result = NULL;
    int rc;

    if (ctx->plan) {
        char what[128];
        snprintf(what, sizeof(what), "%s.%s", service, operation);
        json_array_append_new(ctx->plan_actions,
                              json_pack("{s:s, s:s, s:s}", "action", action_of(operation),
                                        "resource", resource, "call", what));
        json_decref(in);
        if (out != NULL)
            *out = NULL;
        if (err != NULL)
            aws_error_clear(err);
        return 1;
    }
    ctx->writes++;
    if (out != NULL)
        *out = NULL;
    rc = aws_call(ctx->aws, service, operation, in, &result, &e);
    json_decref(in);
    /* Whatever the outcome, answers fetched before now no longer show this
     * application's state. */
    read_batch_note_write(ctx->aws, ctx->names.app, service);
    if (rc != 0)
        return call_failed(ctx, resource, service, operation, &e, err);
    return call_done(result, out, err);
}

void app_note_change(struct app_ctx *ctx, const char *action, const char *resource,
                     const char *name, json_t *changes)
{
    char msg[512];

    if (ctx->plan) {
        json_t *entry = json_pack("{s:s, s:s, s:s}", "action", action, "resource", resource, "name",
                                  name ? name : "");
        if (changes != NULL)
            json_object_set_new(entry, "changes", changes);
        json_array_append_new(ctx->plan_actions, entry);
        return;
    }
    snprintf(msg, sizeof(msg), "%s %s %s", action, resource, name ? name : "");
    status_add_event(ctx->status, "Normal",
                     strcmp(action, "create") == 0   ? "Created"
                     : strcmp(action, "delete") == 0 ? "Deleted"
                                                     : "Updated",
                     msg, ctx->req->now);
    json_decref(changes);
}

void app_note_drift(struct app_ctx *ctx, const char *resource, const char *what)
{
    char msg[512];

    if (ctx->plan)
        return;
    snprintf(msg, sizeof(msg), "%s changed outside aviary (%s); reverted", resource, what);
    status_add_event(ctx->status, "Warning", "DriftCorrected", msg, ctx->req->now);
}

static int append_extra_tags(json_t *list, const char *kn, const char *vn, va_list ap)
{
    const char *k;

    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        if (kn != NULL)
            json_array_append_new(list, json_pack("{s:s, s:s}", kn, k, vn, v ? v : ""));
        else
            json_object_set_new(list, k, json_string(v ? v : ""));
    }
    return 0;
}

json_t *app_tags_list(const struct app_ctx *ctx, const char *key_name, const char *value_name, ...)
{
    json_t *list = json_pack("[{s:s, s:s}, {s:s, s:s}]", key_name, APP_TAG_MANAGED_BY, value_name,
                             APP_TAG_MANAGED_BY_VALUE, key_name, APP_TAG_APPLICATION, value_name,
                             ctx->names.app);
    va_list ap;

    va_start(ap, value_name);
    append_extra_tags(list, key_name, value_name, ap);
    va_end(ap);
    return list;
}

json_t *app_tags_map(const struct app_ctx *ctx, ...)
{
    json_t *map = json_pack("{s:s, s:s}", APP_TAG_MANAGED_BY, APP_TAG_MANAGED_BY_VALUE,
                            APP_TAG_APPLICATION, ctx->names.app);
    va_list ap;

    va_start(ap, ctx);
    append_extra_tags(map, NULL, NULL, ap);
    va_end(ap);
    return map;
}

const char *app_tag_value(const json_t *tags, const char *key)
{
    size_t i;
    const json_t *t;

    if (json_is_object(tags))
        return json_string_value(json_object_get(tags, key));
    json_array_foreach(tags, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "Key"));
        const char *v = json_string_value(json_object_get(t, "Value"));
        if (k == NULL) {
            k = json_string_value(json_object_get(t, "key"));
            v = json_string_value(json_object_get(t, "value"));
        }
        if (k != NULL && strcmp(k, key) == 0)
            return v;
    }
    return NULL;
}

bool app_tags_owned(const struct app_ctx *ctx, const json_t *tags)
{
    const char *by = app_tag_value(tags, APP_TAG_MANAGED_BY);
    const char *app = app_tag_value(tags, APP_TAG_APPLICATION);

    return by != NULL && app != NULL && strcmp(by, APP_TAG_MANAGED_BY_VALUE) == 0 &&
           strcmp(app, ctx->names.app) == 0;
}

json_t *app_ec2_filters(const struct app_ctx *ctx, ...)
{
    json_t *filters = json_pack("[{s:s, s:[s]}, {s:s, s:[s]}]", "Name", "tag:" APP_TAG_MANAGED_BY,
                                "Values", APP_TAG_MANAGED_BY_VALUE, "Name",
                                "tag:" APP_TAG_APPLICATION, "Values", ctx->names.app);
    va_list ap;
    const char *name;

    va_start(ap, ctx);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        json_array_append_new(
            filters, json_pack("{s:s, s:[s]}", "Name", name, "Values", value ? value : ""));
    }
    va_end(ap);
    return filters;
}

const json_t *app_spec(const struct app_ctx *ctx, const char *path)
{
    const json_t *cur = ctx->spec;
    char part[128];

    while (cur != NULL && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (len >= sizeof(part))
            return NULL;
        memcpy(part, path, len);
        part[len] = '\0';
        cur = json_object_get(cur, part);
        path += len + (dot ? 1 : 0);
    }
    return cur;
}

json_int_t app_spec_int(const struct app_ctx *ctx, const char *path, json_int_t fallback)
{
    const json_t *v = app_spec(ctx, path);
    return json_is_integer(v) ? json_integer_value(v) : fallback;
}

const char *app_spec_str(const struct app_ctx *ctx, const char *path, const char *fallback)
{
    const char *s = json_string_value(app_spec(ctx, path));
    return s ? s : fallback;
}

bool app_spec_bool(const struct app_ctx *ctx, const char *path, bool fallback)
{
    const json_t *v = app_spec(ctx, path);
    return json_is_boolean(v) ? json_is_true(v) : fallback;
}

long app_spec_seconds(const struct app_ctx *ctx, const char *path, long fallback)
{
    const char *s = app_spec_str(ctx, path, NULL);
    int64_t ms;

    /* Durations were validated by the schema; a bad one here means fallback. */
    if (s == NULL || duration_parse(s, &ms, NULL) != 0)
        return fallback;
    return (long)((ms + 999) / 1000);
}
