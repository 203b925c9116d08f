/* The rollout concern's observation of the two slots: their ECS services
 * (revision of the primary deployment, desired count, stable-since tag)
 * and the healthy targets that run that revision. Worker threads; one
 * reconcile's context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/rollout_internal.h"
#include "reconcilers/service.h"

#define PLACEHOLDER "(known after apply)"
#define MAX_TASKS   100 /* DescribeTasks takes 100 */

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static void forget_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

static bool known(const char *s)
{
    return s != NULL && s[0] != '\0' && strcmp(s, PLACEHOLDER) != 0;
}

static const json_t *primary_deployment(const json_t *svc)
{
    const json_t *d;
    size_t i;

    json_array_foreach(json_object_get(svc, "deployments"), i, d)
    {
        if (strcmp(jstr(d, "status"), "PRIMARY") == 0)
            return d;
    }
    return NULL;
}

/* resources.rollout.revisions: {task definition ARN: revision}, bounded. */
static json_t *revision_cache(struct app_ctx *ctx)
{
    json_t *r = app_resources(ctx, "rollout");
    json_t *c = json_object_get(r, "revisions");

    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(r, "revisions", c);
    }
    return c;
}

/* The revision of a task definition: the task definition cache of the
 * service concern ("REV/SLOT": ARN), this concern's cache, else its
 * aviary.io/revision tag (one DescribeTaskDefinition, then cached). "" when
 * it is not one of this application's. Returns 0, or -1 on a failed call. */
static int td_revision(struct app_ctx *ctx, const char *arn, char *rev, size_t len)
{
    const json_t *tds =
        json_object_get(json_object_get(ctx->resources, "service"), "taskDefinitions");
    json_t *cache = revision_cache(ctx), *out = NULL;
    const char *key;
    const json_t *v;
    struct aws_error err;

    rev[0] = '\0';
    if (!known(arn))
        return 0;
    json_object_foreach((json_t *)tds, key, v)
    {
        if (json_string_value(v) != NULL && strcmp(json_string_value(v), arn) == 0) {
            snprintf(rev, len, "%.*s", (int)strcspn(key, "/"), key);
            return 0;
        }
    }
    if (json_string_value(json_object_get(cache, arn)) != NULL) {
        snprintf(rev, len, "%s", jstr(cache, arn));
        return 0;
    }
    if (app_read(ctx, arn, "ecs", "DescribeTaskDefinition",
                 json_pack("{s:s, s:[s]}", "taskDefinition", arn, "include", "TAGS"), &out,
                 &err) != 0) {
        if (err.kind == AWS_ERR_SERVICE && strcmp(err.code, "ClientException") == 0) {
            forget_error(ctx); /* gone: not a revision of ours */
            return 0;
        }
        return -1;
    }
    if (app_tags_owned(ctx, json_object_get(out, "tags"))) {
        const char *t = app_tag_value(json_object_get(out, "tags"), APP_TAG_REVISION);
        snprintf(rev, len, "%s", t != NULL ? t : "");
    }
    if (!ctx->plan) {
        if (json_object_size(cache) >= ROLLOUT_REVISIONS_CACHE) {
            void *it = json_object_iter(cache);
            if (it != NULL)
                json_object_del(cache, json_object_iter_key(it));
        }
        json_object_set_new(cache, arn, json_string(rev));
    }
    json_decref(out);
    return 0;
}

/* The private IPv4 addresses of the slot's RUNNING tasks of task definition
 * td (for matching target health entries). New array, or NULL on failure. */
static json_t *task_addresses(struct app_ctx *ctx, int slot, const char *td)
{
    json_t *list = NULL, *desc = NULL, *ips = json_array(), *arns;
    const json_t *t, *a, *d;
    size_t i, j, k;

    if (app_read(ctx, ctx->names.service[slot], "ecs", "ListTasks",
                 json_pack("{s:s, s:s, s:s, s:i}", "cluster", ctx->names.cluster, "serviceName",
                           ctx->names.service[slot], "desiredStatus", "RUNNING", "maxResults",
                           MAX_TASKS),
                 &list, NULL) != 0)
        goto fail;
    arns = json_object_get(list, "taskArns");
    if (json_array_size(arns) == 0)
        goto done;
    if (app_read(ctx, ctx->names.service[slot], "ecs", "DescribeTasks",
                 json_pack("{s:s, s:O}", "cluster", ctx->names.cluster, "tasks", arns), &desc,
                 NULL) != 0)
        goto fail;
    json_array_foreach(json_object_get(desc, "tasks"), i, t)
    {
        if (strcmp(jstr(t, "taskDefinitionArn"), td) != 0 ||
            strcmp(jstr(t, "lastStatus"), "RUNNING") != 0)
            continue;
        json_array_foreach(json_object_get(t, "attachments"), j, a)
        {
            json_array_foreach(json_object_get(a, "details"), k, d)
            {
                if (strcmp(jstr(d, "name"), "privateIPv4Address") == 0)
                    json_array_append_new(ips, json_string(jstr(d, "value")));
            }
        }
    }
done:
    json_decref(list);
    json_decref(desc);
    return ips;
fail:
    json_decref(list);
    json_decref(desc);
    json_decref(ips);
    return NULL;
}

static bool in_list(const json_t *list, const char *s)
{
    const json_t *v;
    size_t i;

    json_array_foreach(list, i, v)
    {
        if (json_string_value(v) != NULL && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* Healthy targets of the slot's target group that run its primary
 * deployment's task definition. With one deployment every registered task
 * runs it; during an ECS deployment the tasks are matched by address so old
 * tasks still in the target group do not count. */
static int count_healthy(struct app_ctx *ctx, int slot, const json_t *svc, const char *td,
                         int *healthy)
{
    const char *tg = json_string_value(json_array_get(
        json_object_get(json_object_get(ctx->resources, "loadbalancer"), "targetGroupArns"),
        (size_t)slot));
    json_t *out = NULL, *ips = NULL;
    const json_t *h;
    size_t i;
    int n = 0, rc = -1;

    *healthy = 0;
    if (!known(tg))
        return 0;
    if (app_read(ctx, ctx->names.target_group[slot], "elbv2", "DescribeTargetHealth",
                 json_pack("{s:s}", "TargetGroupArn", tg), &out, NULL) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "TargetHealthDescriptions"), i, h)
    {
        if (strcmp(jstr(json_object_get(h, "TargetHealth"), "State"), "healthy") == 0)
            n++;
    }
    if (n > 0 && json_array_size(json_object_get(svc, "deployments")) > 1) {
        ips = task_addresses(ctx, slot, td);
        if (ips == NULL)
            goto out;
        n = 0;
        json_array_foreach(json_object_get(out, "TargetHealthDescriptions"), i, h)
        {
            if (strcmp(jstr(json_object_get(h, "TargetHealth"), "State"), "healthy") == 0 &&
                in_list(ips, jstr(json_object_get(h, "Target"), "Id")))
                n++;
        }
    }
    *healthy = n;
    rc = 0;
out:
    json_decref(out);
    json_decref(ips);
    return rc;
}

void rollout_observed_clear(struct rollout_observed *o)
{
    json_decref(o->described);
    memset(o, 0, sizeof(*o));
}

/* The healthy targets of a slot that serves or may serve (a slot scaled to
 * zero with no task left has none: no DescribeTargetHealth for it, so a
 * converged resync reads the serving slot's only). */
int rollout_observe_health(struct app_ctx *ctx, struct rollout_observed *o, int slot)
{
    const json_t *svc = o->svc[slot];

    o->health_read[slot] = true;
    o->healthy[slot] = 0;
    if (svc == NULL)
        return 0;
    if ((o->desired[slot] > 0 || o->rev[slot][0] != '\0') &&
        (o->desired[slot] > 0 || json_integer_value(json_object_get(svc, "runningCount")) > 0 ||
         json_integer_value(json_object_get(svc, "pendingCount")) > 0))
        return count_healthy(ctx, slot, svc, o->td[slot], &o->healthy[slot]);
    return 0;
}

/* Observes both slots: the services (one DescribeServices unless service.c
 * left its own) and the healthy targets of each slot except skip_health
 * (-1: none), which observe_health reads later if the decision needs it. */
int rollout_observe(struct app_ctx *ctx, struct rollout_observed *o, int skip_health)
{
    struct aws_error err;
    const json_t *s;
    size_t i;

    memset(o, 0, sizeof(*o));
    if (ctx->services_observed != NULL) {
        /* service.c's observation of this pass, nothing written since */
        o->described = ctx->services_observed;
        ctx->services_observed = NULL;
    } else if (app_read(ctx, ctx->names.cluster, "ecs", "DescribeServices",
                        json_pack("{s:s, s:[s, s], s:[s]}", "cluster", ctx->names.cluster,
                                  "services", ctx->names.service[0], ctx->names.service[1],
                                  "include", "TAGS"),
                        &o->described, &err) != 0) {
        if (err.kind == AWS_ERR_SERVICE && strcmp(err.code, "ClusterNotFoundException") == 0) {
            forget_error(ctx); /* plan mode from nothing */
            return 0;
        }
        return -1;
    }
    json_array_foreach(json_object_get(o->described, "services"), i, s)
    {
        for (int slot = 0; slot < 2; slot++) {
            if (strcmp(jstr(s, "serviceName"), ctx->names.service[slot]) == 0 &&
                strcmp(jstr(s, "status"), "ACTIVE") == 0 &&
                app_tags_owned(ctx, json_object_get(s, "tags")))
                o->svc[slot] = s;
        }
    }
    for (int slot = 0; slot < 2; slot++) {
        const json_t *svc = o->svc[slot], *p = primary_deployment(svc);
        const char *since;

        if (svc == NULL)
            continue;
        o->desired[slot] = (int)json_integer_value(json_object_get(svc, "desiredCount"));
        snprintf(o->td[slot], sizeof(o->td[slot]), "%s",
                 p != NULL ? jstr(p, "taskDefinition") : jstr(svc, "taskDefinition"));
        if (td_revision(ctx, o->td[slot], o->rev[slot], sizeof(o->rev[slot])) != 0)
            return -1;
        since = app_tag_value(json_object_get(svc, "tags"), SERVICE_TAG_STABLE_SINCE);
        o->stable_since[slot] = since != NULL ? strtoll(since, NULL, 10) : 0;
    }
    for (int slot = 0; slot < 2; slot++) {
        if (slot != skip_health && rollout_observe_health(ctx, o, slot) != 0)
            return -1;
        if (o->svc[slot] == NULL)
            o->health_read[slot] = true;
    }
    return 0;
}
