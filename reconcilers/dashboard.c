/* Dashboard concern: one CloudWatch dashboard per application (requests, 5xx
 * rate and p99 latency per slot, CPU, memory and running tasks per service,
 * canary weight, model age, scaling alarms) built deterministically from
 * the other concerns' resources, compared with GetDashboard's body as JSON so
 * a converged application makes no write, restored when edited by hand.
 * docs/dashboard.md documents what it reads. Worker threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/app.h"
#include "reconcilers/autoscaling.h"

#define DB_PENDING "(known after apply)"
#define DB_PERIOD  60

/* The custom metrics the dashboard shows (docs/dashboard.md). */
#define DB_CANARY_NAMESPACE "Aviary"
#define DB_CANARY_METRIC    "CanaryWeight"
#define DB_MODEL_NAMESPACE  "Aviary/Model"
#define DB_MODEL_METRIC     "ModelAgeSeconds"
#define DB_DIMENSION        "Application"

/* ---- helpers ------------------------------------------------------------- */

static void digest(const json_t *v, char out[17])
{
    char *s = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = s ? s : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    free(s);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static const char *lb_value(struct app_ctx *ctx, const char *key, int index)
{
    json_t *lb = json_object_get(ctx->resources, "loadbalancer");
    json_t *v = json_object_get(lb, key);
    const char *s =
        index < 0 ? json_string_value(v) : json_string_value(json_array_get(v, (size_t)index));

    return s != NULL ? s : DB_PENDING;
}

/* The ownership marker in the header widget (dashboards carry no tags). */
static void marker(struct app_ctx *ctx, char *out, size_t size)
{
    snprintf(out, size, "`" APP_TAG_APPLICATION "=%s`", ctx->names.app);
}

static json_t *widget(const char *type, int x, int y, int w, int h, json_t *properties)
{
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:o}", "type", type, "x", x, "y", y, "width", w,
                     "height", h, "properties", properties);
}

static json_t *metric_properties(struct app_ctx *ctx, const char *title, const char *stat,
                                 json_t *metrics)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:i, s:s, s:o}", "title", title, "view", "timeSeries",
                     "stacked", 0, "region", aws_client_region(ctx->aws), "period", DB_PERIOD,
                     "stat", stat, "metrics", metrics);
}

/* One ALB metric per slot's target group. */
static json_t *alb_per_slot(struct app_ctx *ctx, const char *metric)
{
    json_t *m = json_array();
    char label[16];

    for (int s = 0; s < 2; s++) {
        snprintf(label, sizeof(label), "slot %s", app_slot_name(s));
        json_array_append_new(m, json_pack("[s, s, s, s, s, s, {s:s}]", "AWS/ApplicationELB",
                                           metric, "LoadBalancer", lb_value(ctx, "lbDimension", -1),
                                           "TargetGroup", lb_value(ctx, "tgDimensions", s), "label",
                                           label));
    }
    return m;
}

/* 5xx rate in percent per slot by metric math: 100 * 5xx / requests. */
static json_t *error_rate_per_slot(struct app_ctx *ctx)
{
    json_t *m = json_array();
    char expr[96], label[32], rate[16], errors[16], requests[16];

    for (int s = 0; s < 2; s++) {
        const char *slot = app_slot_name(s);
        snprintf(rate, sizeof(rate), "rate%s", slot);
        snprintf(errors, sizeof(errors), "errors%s", slot);
        snprintf(requests, sizeof(requests), "requests%s", slot);
        snprintf(expr, sizeof(expr), "100 * FILL(%s, 0) / %s", errors, requests);
        snprintf(label, sizeof(label), "slot %s 5xx %%", slot);
        json_array_append_new(
            m, json_pack("[{s:s, s:s, s:s}]", "expression", expr, "label", label, "id", rate));
        json_array_append_new(m, json_pack("[s, s, s, s, s, s, {s:s, s:s, s:b}]",
                                           "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
                                           "LoadBalancer", lb_value(ctx, "lbDimension", -1),
                                           "TargetGroup", lb_value(ctx, "tgDimensions", s), "id",
                                           errors, "stat", "Sum", "visible", 0));
        json_array_append_new(m, json_pack("[s, s, s, s, s, s, {s:s, s:s, s:b}]",
                                           "AWS/ApplicationELB", "RequestCount", "LoadBalancer",
                                           lb_value(ctx, "lbDimension", -1), "TargetGroup",
                                           lb_value(ctx, "tgDimensions", s), "id", requests, "stat",
                                           "Sum", "visible", 0));
    }
    return m;
}

/* One metric per slot's ECS service. */
static json_t *ecs_per_service(struct app_ctx *ctx, const char *namespace, const char *metric)
{
    json_t *m = json_array();

    for (int s = 0; s < 2; s++)
        json_array_append_new(m, json_pack("[s, s, s, s, s, s]", namespace, metric, "ClusterName",
                                           autoscaling_cluster_name(ctx), "ServiceName",
                                           autoscaling_service_name(ctx, s)));
    return m;
}

/* The dashboard body, the same for the same resources (new reference). */
static json_t *desired_body(struct app_ctx *ctx)
{
    json_t *widgets = json_array(), *props;
    const json_t *alarms =
        json_object_get(json_object_get(ctx->resources, "notifications"), "alarmArns");
    char header[600], mark[96];

    marker(ctx, mark, sizeof(mark));
    snprintf(header, sizeof(header),
             "# %s\nManaged by aviary (%s): changes made here are reverted; change the "
             "manifest instead. Canary weight is published by aviary, model age by the "
             "application (namespace `" DB_MODEL_NAMESPACE "`, metric `" DB_MODEL_METRIC
             "`, dimension `" DB_DIMENSION "=%s`).",
             ctx->names.app, mark, ctx->names.app);
    json_array_append_new(widgets,
                          widget("text", 0, 0, 24, 2, json_pack("{s:s}", "markdown", header)));
    json_array_append_new(widgets, widget("metric", 0, 2, 12, 6,
                                          metric_properties(ctx, "Requests per slot", "Sum",
                                                            alb_per_slot(ctx, "RequestCount"))));
    json_array_append_new(widgets, widget("metric", 12, 2, 12, 6,
                                          metric_properties(ctx, "5xx rate per slot (%)", "Sum",
                                                            error_rate_per_slot(ctx))));
    json_array_append_new(widgets,
                          widget("metric", 0, 8, 12, 6,
                                 metric_properties(ctx, "p99 latency per slot (seconds)", "p99",
                                                   alb_per_slot(ctx, "TargetResponseTime"))));
    json_array_append_new(widgets,
                          widget("metric", 12, 8, 12, 6,
                                 metric_properties(ctx, "Running tasks per service", "Average",
                                                   ecs_per_service(ctx, "ECS/ContainerInsights",
                                                                   "RunningTaskCount"))));
    json_array_append_new(
        widgets, widget("metric", 0, 14, 12, 6,
                        metric_properties(ctx, "CPU per service (%)", "Average",
                                          ecs_per_service(ctx, "AWS/ECS", "CPUUtilization"))));
    json_array_append_new(
        widgets, widget("metric", 12, 14, 12, 6,
                        metric_properties(ctx, "Memory per service (%)", "Average",
                                          ecs_per_service(ctx, "AWS/ECS", "MemoryUtilization"))));
    props = metric_properties(ctx, "Canary weight (%)", "Maximum",
                              json_pack("[[s, s, s, s]]", DB_CANARY_NAMESPACE, DB_CANARY_METRIC,
                                        DB_DIMENSION, ctx->names.app));
    json_object_set_new(props, "yAxis", json_pack("{s:{s:i, s:i}}", "left", "min", 0, "max", 100));
    json_array_append_new(widgets, widget("metric", 0, 20, 12, 6, props));
    json_array_append_new(
        widgets,
        widget("metric", 12, 20, 12, 6,
               metric_properties(ctx, "Model age (seconds)", "Maximum",
                                 json_pack("[[s, s, s, s]]", DB_MODEL_NAMESPACE, DB_MODEL_METRIC,
                                           DB_DIMENSION, ctx->names.app))));
    if (json_array_size(alarms) > 0)
        json_array_append_new(
            widgets, widget("alarm", 0, 26, 24, 3,
                            json_pack("{s:s, s:O}", "title", "Scaling alarms", "alarms", alarms)));
    return json_pack("{s:o}", "widgets", widgets);
}

/* True when the body carries this application's marker in a text widget. */
static bool body_owned(struct app_ctx *ctx, const json_t *body)
{
    char mark[96];
    json_t *w;
    size_t i;

    marker(ctx, mark, sizeof(mark));
    json_array_foreach(json_object_get(body, "widgets"), i, w)
    {
        const char *md =
            json_string_value(json_object_get(json_object_get(w, "properties"), "markdown"));
        if (md != NULL && strstr(md, mark) != NULL)
            return true;
    }
    return false;
}

/* GetDashboard: 0 with *body (parsed, new reference, NULL when absent) or -1. */
static int get_body(struct app_ctx *ctx, json_t **body)
{
    json_t *out = NULL;
    struct aws_error err;
    json_error_t jerr;

    *body = NULL;
    if (app_read(ctx, "CloudWatch dashboard", "cloudwatch", "GetDashboard",
                 json_pack("{s:s}", "DashboardName", ctx->names.dashboard), &out, &err) != 0)
        return strcmp(err.code, "ResourceNotFound") == 0 ||
                       strcmp(err.code, "ResourceNotFoundException") == 0
                   ? 0
                   : -1;
    *body = json_loads(json_string_value(json_object_get(out, "DashboardBody"))
                           ? json_string_value(json_object_get(out, "DashboardBody"))
                           : "",
                       0, &jerr);
    if (*body == NULL)
        *body = json_object(); /* unreadable: differs from anything we want */
    json_decref(out);
    return 0;
}

static bool recorded(struct app_ctx *ctx)
{
    const char *n = json_string_value(
        json_object_get(json_object_get(ctx->resources, "dashboard"), "dashboardName"));
    return n != NULL && strcmp(n, ctx->names.dashboard) == 0;
}

/* Deletes the dashboard when it exists and is ours; READY when gone. */
static enum app_step remove_dashboard(struct app_ctx *ctx)
{
    json_t *body = NULL;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;

    if (get_body(ctx, &body) != 0)
        goto out;
    if (body != NULL && (body_owned(ctx, body) || recorded(ctx))) {
        app_note_change(ctx, "delete", "CloudWatch dashboard", ctx->names.dashboard, NULL);
        if (app_write(ctx, "CloudWatch dashboard", "cloudwatch", "DeleteDashboards",
                      json_pack("{s:[s]}", "DashboardNames", ctx->names.dashboard), NULL,
                      &err) < 0 &&
            strcmp(err.code, "ResourceNotFound") != 0)
            goto out;
    }
    if (!ctx->plan) {
        json_object_del(ctx->resources, "dashboard");
        json_object_del(ctx->status, "dashboardUrl");
    }
    step = APP_STEP_READY;
out:
    json_decref(body);
    return step;
}

/* ---- converge / delete ----------------------------------------------------- */

enum app_step dashboard_converge(struct app_ctx *ctx)
{
    json_t *res, *want = NULL, *have = NULL;
    enum app_step step = APP_STEP_FAILED;
    const char *region = aws_client_region(ctx->aws), *applied;
    char url[512], hash[17];
    char *text = NULL;

    if (!app_spec_bool(ctx, "dashboard", true))
        return remove_dashboard(ctx);
    res = app_resources(ctx, "dashboard");
    want = desired_body(ctx);
    digest(want, hash);
    if (get_body(ctx, &have) != 0)
        goto out;
    if (have != NULL && json_equal(have, want))
        goto record;
    if (have != NULL && !body_owned(ctx, have) && !recorded(ctx)) {
        app_fail(ctx, true,
                 "CloudWatch dashboard %s exists but was not made by aviary for application %s; "
                 "aviary does not take it over (delete or rename it)",
                 ctx->names.dashboard, ctx->names.app);
        goto out;
    }
    applied = json_string_value(json_object_get(res, "applied"));
    if (have == NULL) {
        app_note_change(ctx, "create", "CloudWatch dashboard", ctx->names.dashboard, NULL);
    } else {
        if (applied != NULL && strcmp(applied, hash) == 0)
            app_note_drift(ctx, "CloudWatch dashboard", "edited by hand");
        app_note_change(ctx, "update", "CloudWatch dashboard", ctx->names.dashboard,
                        json_pack("[s]", "DashboardBody: widgets rebuilt from the manifest"));
    }
    text = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    if (text == NULL) {
        app_fail(ctx, false, "CloudWatch dashboard: out of memory");
        goto out;
    }
    if (app_write(
            ctx, "CloudWatch dashboard", "cloudwatch", "PutDashboard",
            json_pack("{s:s, s:s}", "DashboardName", ctx->names.dashboard, "DashboardBody", text),
            NULL, NULL) < 0)
        goto out;
record:
    if (!ctx->plan) {
        json_object_set_new(res, "dashboardName", json_string(ctx->names.dashboard));
        json_object_set_new(res, "applied", json_string(hash));
    }
    snprintf(url, sizeof(url),
             "https://%s.console.aws.amazon.com/cloudwatch/home?region=%s#dashboards:name=%s",
             region, region, ctx->names.dashboard);
    json_object_set_new(ctx->status, "dashboardUrl", json_string(url));
    step = APP_STEP_READY;
out:
    free(text);
    json_decref(want);
    json_decref(have);
    return step;
}

enum app_step dashboard_delete(struct app_ctx *ctx)
{
    return remove_dashboard(ctx);
}
