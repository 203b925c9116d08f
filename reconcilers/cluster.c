/* The "cluster" concern of an Application: its IAM roles (roles.c: the
 * application's own task execution role and task role), the CloudWatch log
 * group of the containers and the ECS cluster (Container Insights on, put
 * back on when switched off by hand). Worker threads; one reconcile's
 * context.
 *
 * Earlier versions shared one execution role, APP_EXECUTION_ROLE, between
 * all applications and put each application's secrets grant on it; roles.c
 * removes an application's grant from it once nothing runs with it. The
 * shared role itself is never deleted by aviary (remove it by hand once no
 * task definition uses it). */
#include "reconcilers/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/roles.h"

#define PLACEHOLDER "(known after apply)"

static bool is_code(const struct aws_error *err, const char *code)
{
    return err->kind == AWS_ERR_SERVICE && strcmp(err->code, code) == 0;
}

/* An error that the caller handles (NotFound and the like): not a failure
 * of the reconcile, so forget what app_read/app_write recorded. */
static void forget_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

/* "" for a missing string member, so comparisons need no NULL checks. */
static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

/* The log group by exact name (borrowed from *page, which the caller
 * decrefs), or NULL when absent. Returns -1 on a failed call. */
static int find_log_group(struct app_ctx *ctx, json_t **page, const json_t **group)
{
    size_t i;
    const json_t *g;

    *group = NULL;
    if (app_read(ctx, ctx->names.log_group, "logs", "DescribeLogGroups",
                 json_pack("{s:s}", "logGroupNamePrefix", ctx->names.log_group), page, NULL) != 0)
        return -1;
    json_array_foreach(json_object_get(*page, "logGroups"), i, g)
    {
        if (strcmp(jstr(g, "logGroupName"), ctx->names.log_group) == 0)
            *group = g;
    }
    return 0;
}

/* True when the log group carries this application's tags (-1 on error). */
static int log_group_owned(struct app_ctx *ctx)
{
    json_t *out = NULL;
    int owned;

    if (app_read(ctx, ctx->names.log_group, "logs", "ListTagsLogGroup",
                 json_pack("{s:s}", "logGroupName", ctx->names.log_group), &out, NULL) != 0)
        return -1;
    owned = app_tags_owned(ctx, json_object_get(out, "tags")) ? 1 : 0;
    json_decref(out);
    return owned;
}

static enum app_step converge_log_group(struct app_ctx *ctx, json_t *res)
{
    json_t *page = NULL;
    const json_t *group;
    json_int_t days = app_spec_int(ctx, "logs.retentionDays", 30);
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    int owned;

    if (find_log_group(ctx, &page, &group) != 0)
        goto out;
    json_object_set_new(res, "logGroup", json_string(ctx->names.log_group));
    if (group == NULL) {
        app_note_change(ctx, "create", "logs:log-group", ctx->names.log_group, NULL);
        if (app_write(ctx, ctx->names.log_group, "logs", "CreateLogGroup",
                      json_pack("{s:s, s:o}", "logGroupName", ctx->names.log_group, "tags",
                                app_tags_map(ctx, NULL)),
                      NULL, &err) < 0) {
            if (!is_code(&err, "ResourceAlreadyExistsException"))
                goto out;
            forget_error(ctx); /* made meanwhile: its tags are checked next pass */
            app_wait(ctx, 1000);
            step = APP_STEP_WAITING;
            goto out;
        }
    } else {
        owned = log_group_owned(ctx);
        if (owned < 0)
            goto out;
        if (!owned) {
            app_fail(ctx, false,
                     "%s: a log group of this name exists without the aviary tags of "
                     "application %s; aviary does not use or change it (rename the "
                     "application or tag/remove the log group)",
                     ctx->names.log_group, ctx->names.app);
            goto out;
        }
        if (json_integer_value(json_object_get(group, "retentionInDays")) == days) {
            step = APP_STEP_READY;
            goto out;
        }
        app_note_drift(ctx, ctx->names.log_group, "retention");
    }
    if (app_write(
            ctx, ctx->names.log_group, "logs", "PutRetentionPolicy",
            json_pack("{s:s, s:I}", "logGroupName", ctx->names.log_group, "retentionInDays", days),
            NULL, NULL) < 0)
        goto out;
    step = APP_STEP_READY;
out:
    json_decref(page);
    return step;
}

static bool insights_enabled(const json_t *cluster)
{
    size_t i;
    const json_t *s;

    json_array_foreach(json_object_get(cluster, "settings"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *value = json_string_value(json_object_get(s, "value"));
        if (name != NULL && strcmp(name, "containerInsights") == 0)
            return value != NULL &&
                   (strcmp(value, "enabled") == 0 || strcmp(value, "enhanced") == 0);
    }
    return false;
}

/* The ACTIVE cluster of this application (borrowed from *out) or NULL. */
static int describe_cluster(struct app_ctx *ctx, json_t **out, const json_t **cluster)
{
    size_t i;
    const json_t *c;

    *cluster = NULL;
    if (app_read(ctx, ctx->names.cluster, "ecs", "DescribeClusters",
                 json_pack("{s:[s], s:[s,s]}", "clusters", ctx->names.cluster, "include", "TAGS",
                           "SETTINGS"),
                 out, NULL) != 0)
        return -1;
    json_array_foreach(json_object_get(*out, "clusters"), i, c)
    {
        if (strcmp(jstr(c, "status"), "ACTIVE") == 0 &&
            strcmp(jstr(c, "clusterName"), ctx->names.cluster) == 0)
            *cluster = c;
    }
    return 0;
}

static enum app_step converge_ecs_cluster(struct app_ctx *ctx, json_t *res)
{
    json_t *out = NULL, *created = NULL;
    const json_t *cluster;
    enum app_step step = APP_STEP_FAILED;

    if (describe_cluster(ctx, &out, &cluster) != 0)
        goto out;
    json_object_set_new(res, "clusterName", json_string(ctx->names.cluster));
    if (cluster == NULL) {
        app_note_change(ctx, "create", "ecs:cluster", ctx->names.cluster, NULL);
        /* CreateCluster of an existing ACTIVE name returns it: idempotent. */
        if (app_write(ctx, ctx->names.cluster, "ecs", "CreateCluster",
                      json_pack("{s:s, s:o, s:[{s:s, s:s}]}", "clusterName", ctx->names.cluster,
                                "tags", app_tags_list(ctx, "key", "value", NULL), "settings",
                                "name", "containerInsights", "value", "enabled"),
                      &created, NULL) < 0)
            goto out;
        json_object_set_new(
            res, "clusterArn",
            json_string(ctx->plan ? PLACEHOLDER
                                  : jstr(json_object_get(created, "cluster"), "clusterArn")));
        step = APP_STEP_READY;
        goto out;
    }
    json_object_set_new(res, "clusterArn", json_copy(json_object_get(cluster, "clusterArn")));
    if (!app_tags_owned(ctx, json_object_get(cluster, "tags"))) {
        app_fail(ctx, false,
                 "%s: an ECS cluster of this name exists without the aviary tags of application "
                 "%s; aviary does not use or change it",
                 ctx->names.cluster, ctx->names.app);
        goto out;
    }
    if (!insights_enabled(cluster)) {
        /* Turned off by hand: Container Insights feeds the dashboard's
         * running-task widget, so it is switched back on. */
        app_note_drift(ctx, ctx->names.cluster, "Container Insights disabled");
        app_note_change(ctx, "update", "ecs:cluster", ctx->names.cluster,
                        json_pack("[s]", "containerInsights: disabled -> enabled"));
        if (app_write(ctx, ctx->names.cluster, "ecs", "UpdateClusterSettings",
                      json_pack("{s:s, s:[{s:s, s:s}]}", "cluster", ctx->names.cluster, "settings",
                                "name", "containerInsights", "value", "enabled"),
                      NULL, NULL) < 0)
            goto out;
    }
    step = APP_STEP_READY;
out:
    json_decref(created);
    json_decref(out);
    return step;
}

enum app_step cluster_converge(struct app_ctx *ctx)
{
    json_t *res = app_resources(ctx, "cluster");
    enum app_step step;

    step = roles_converge(ctx, res);
    if (step != APP_STEP_READY)
        return step;
    step = converge_log_group(ctx, res);
    if (step != APP_STEP_READY)
        return step;
    return converge_ecs_cluster(ctx, res);
}

/* Deletion: the ECS cluster (its services are gone: the service concern is
 * deleted before this one), the log group and the application's roles;
 * never the shared role of earlier versions. */
enum app_step cluster_delete(struct app_ctx *ctx)
{
    json_t *out = NULL, *page = NULL;
    const json_t *cluster, *group;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    int owned;

    if (describe_cluster(ctx, &out, &cluster) != 0)
        goto out;
    if (cluster != NULL && app_tags_owned(ctx, json_object_get(cluster, "tags"))) {
        app_note_change(ctx, "delete", "ecs:cluster", ctx->names.cluster, NULL);
        if (app_write(ctx, ctx->names.cluster, "ecs", "DeleteCluster",
                      json_pack("{s:s}", "cluster", ctx->names.cluster), NULL, &err) < 0) {
            if (is_code(&err, "ClusterContainsServicesException") ||
                is_code(&err, "ClusterContainsTasksException") ||
                is_code(&err, "UpdateInProgressException")) {
                /* Services draining or tasks stopping: AWS gets there. */
                forget_error(ctx);
                app_wait(ctx, 3000);
                step = APP_STEP_WAITING;
                goto out;
            }
            if (!is_code(&err, "ClusterNotFoundException"))
                goto out;
            forget_error(ctx);
        }
    }
    if (find_log_group(ctx, &page, &group) != 0)
        goto out;
    if (group != NULL) {
        owned = log_group_owned(ctx);
        if (owned < 0)
            goto out;
        if (owned) {
            app_note_change(ctx, "delete", "logs:log-group", ctx->names.log_group, NULL);
            if (app_write(ctx, ctx->names.log_group, "logs", "DeleteLogGroup",
                          json_pack("{s:s}", "logGroupName", ctx->names.log_group), NULL,
                          &err) < 0) {
                if (!is_code(&err, "ResourceNotFoundException"))
                    goto out;
                forget_error(ctx);
            }
        }
    }
    /* Its roles, after the services and task definitions that used them. */
    if (roles_delete(ctx) != APP_STEP_READY)
        goto out;
    json_object_del(ctx->resources, "cluster");
    step = APP_STEP_READY;
out:
    json_decref(page);
    json_decref(out);
    return step;
}
