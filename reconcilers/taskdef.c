/* ECS task definitions of an Application: build, compare, find by tag,
 * register, prune, delete (see taskdef.h). Worker threads. */
#include "reconcilers/taskdef.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"

#define PLACEHOLDER    "(known after apply)"
#define LIST_DESCRIBE  10 /* task definitions described when searching the family */
#define MAX_CACHE      24 /* entries of resources.service.taskDefinitions */
#define DELETE_PER_RUN 50 /* deregistrations per deletion pass */

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

static int cmp_pair(const void *a, const void *b)
{
    const json_t *const *x = a, *const *y = b;
    int c =
        strcmp(json_string_value(json_array_get(*x, 0)), json_string_value(json_array_get(*y, 0)));
    return c != 0 ? c
                  : strcmp(json_string_value(json_array_get(*x, 1)),
                           json_string_value(json_array_get(*y, 1)));
}

/* [{k: K, v: V}, ...] as [[K, V], ...] sorted by K (then V). New reference. */
static json_t *sorted_pairs(const json_t *list, const char *k, const char *v)
{
    size_t n = json_array_size(list), i;
    json_t **items = calloc(n ? n : 1, sizeof(*items)), *out = json_array();
    const json_t *e;

    if (items == NULL)
        return out;
    json_array_foreach(list, i, e) items[i] = json_pack("[s, s]", jstr(e, k), jstr(e, v));
    if (n > 1)
        qsort(items, n, sizeof(*items), cmp_pair);
    for (i = 0; i < n; i++)
        json_array_append_new(out, items[i]);
    free(items);
    return out;
}

/* An array member, or an empty array when absent. New reference. */
static json_t *array_or_empty(const json_t *obj, const char *key)
{
    const json_t *a = json_object_get(obj, key);
    return json_is_array(a) ? json_deep_copy(a) : json_array();
}

/* The fields aviary sets, in one canonical shape, from either a
 * RegisterTaskDefinition input or a described task definition. */
static json_t *normalise(const json_t *td)
{
    const json_t *containers = json_object_get(td, "containerDefinitions"), *c = NULL, *e;
    const json_t *rp = json_object_get(td, "runtimePlatform");
    json_t *ports = json_array(), *log;
    size_t i;

    json_array_foreach(containers, i, e)
    {
        if (strcmp(jstr(e, "name"), "app") == 0)
            c = e;
    }
    json_array_foreach(json_object_get(c, "portMappings"), i, e)
    {
        const char *proto = jstr(e, "protocol");
        json_array_append_new(
            ports, json_pack("[I, s]", json_integer_value(json_object_get(e, "containerPort")),
                             proto[0] ? proto : "tcp"));
    }
    log = json_object_get(c, "logConfiguration");
    /* Both roles count: a changed role ARN (the per-application roles that
     * replaced the shared execution role) needs a new task definition, which
     * is registered once; an absent taskRoleArn compares as "" on both
     * sides, so a definition without one is not registered again. */
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:O}",
        "family", jstr(td, "family"), "executionRoleArn", jstr(td, "executionRoleArn"),
        "taskRoleArn", jstr(td, "taskRoleArn"), "networkMode", jstr(td, "networkMode"), "cpu",
        jstr(td, "cpu"), "memory", jstr(td, "memory"), "arch",
        jstr(rp, "cpuArchitecture")[0] ? jstr(rp, "cpuArchitecture") : "X86_64", "os",
        jstr(rp, "operatingSystemFamily")[0] ? jstr(rp, "operatingSystemFamily") : "LINUX",
        "container", c != NULL, "image", jstr(c, "image"), "ports", ports, "env",
        sorted_pairs(json_object_get(c, "environment"), "name", "value"), "secrets",
        sorted_pairs(json_object_get(c, "secrets"), "name", "valueFrom"), "entryPoint",
        array_or_empty(c, "entryPoint"), "command", array_or_empty(c, "command"), "log",
        log ? log : json_null());
}

bool taskdef_matches(const json_t *desired, const json_t *described)
{
    json_t *a = normalise(desired), *b = normalise(described);
    bool eq = a != NULL && b != NULL && json_equal(a, b);

    json_decref(a);
    json_decref(b);
    return eq;
}

/* [{name, value}] from a spec object (name -> string) plus extra pairs.
 * Sorted by name, so the definition does not depend on the object's order. */
static json_t *name_values(const json_t *obj, const char *value_key, const char *k1, const char *v1,
                           const char *k2, const char *v2)
{
    json_t *pairs = json_array(), *sorted, *out = json_array();
    const char *name;
    const json_t *v, *p;
    size_t i;

    json_object_foreach((json_t *)obj, name, v)
    {
        if (json_is_string(v))
            json_array_append_new(
                pairs, json_pack("{s:s, s:s}", "name", name, "value", json_string_value(v)));
    }
    if (k1 != NULL)
        json_array_append_new(pairs, json_pack("{s:s, s:s}", "name", k1, "value", v1));
    if (k2 != NULL)
        json_array_append_new(pairs, json_pack("{s:s, s:s}", "name", k2, "value", v2));
    sorted = sorted_pairs(pairs, "name", "value");
    json_array_foreach(sorted, i, p)
    {
        json_array_append_new(out, json_pack("{s:O, s:O}", "name", json_array_get(p, 0), value_key,
                                             json_array_get(p, 1)));
    }
    json_decref(sorted);
    json_decref(pairs);
    return out;
}

json_t *taskdef_desired(struct app_ctx *ctx, const char *revision, int slot)
{
    json_t *cl = app_resources(ctx, "cluster");
    char cpu[16], memory[16];
    const json_t *command = app_spec(ctx, "command"), *args = app_spec(ctx, "args");
    const json_t *secrets = app_spec(ctx, "secrets");
    json_t *container, *td;

    snprintf(cpu, sizeof(cpu), "%lld", (long long)app_spec_int(ctx, "cpu", 256));
    snprintf(memory, sizeof(memory), "%lld", (long long)app_spec_int(ctx, "memory", 512));
    container =
        json_pack("{s:s, s:s, s:b, s:[{s:I, s:s}], s:o, s:{s:s, s:{s:s, s:s, s:s}}}", "name", "app",
                  "image", app_spec_str(ctx, "image", ""), "essential", 1, "portMappings",
                  "containerPort", app_spec_int(ctx, "port", 80), "protocol", "tcp", "environment",
                  name_values(app_spec(ctx, "env"), "value", "AVIARY_REVISION", revision,
                              "AVIARY_SLOT", app_slot_name(slot)),
                  "logConfiguration", "logDriver", "awslogs", "options", "awslogs-group",
                  jstr(cl, "logGroup")[0] ? jstr(cl, "logGroup") : ctx->names.log_group,
                  "awslogs-region", aws_client_region(ctx->aws), "awslogs-stream-prefix", revision);
    if (json_object_size(secrets) > 0)
        json_object_set_new(container, "secrets",
                            name_values(secrets, "valueFrom", NULL, NULL, NULL, NULL));
    if (json_array_size(command) > 0)
        json_object_set_new(container, "entryPoint", json_deep_copy(command));
    if (json_array_size(args) > 0)
        json_object_set_new(container, "command", json_deep_copy(args));
    td = json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s, s:{s:s, s:s}, s:[o], s:o}", "family",
                   ctx->names.task_family, "executionRoleArn", jstr(cl, "executionRoleArn"),
                   "networkMode", "awsvpc", "requiresCompatibilities", "FARGATE", "cpu", cpu,
                   "memory", memory, "runtimePlatform", "cpuArchitecture",
                   app_spec_str(ctx, "architecture", "X86_64"), "operatingSystemFamily", "LINUX",
                   "containerDefinitions", container, "tags",
                   app_tags_list(ctx, "key", "value", APP_TAG_REVISION, revision, APP_TAG_SLOT,
                                 app_slot_name(slot), NULL));
    if (jstr(cl, "taskRoleArn")[0] != '\0')
        json_object_set_new(td, "taskRoleArn", json_string(jstr(cl, "taskRoleArn")));
    return td;
}

static json_t *cache(struct app_ctx *ctx)
{
    json_t *svc = app_resources(ctx, "service");
    json_t *c = json_object_get(svc, "taskDefinitions");

    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(svc, "taskDefinitions", c);
    }
    return c;
}

static void cache_key(char *key, size_t len, const char *revision, int slot)
{
    snprintf(key, len, "%s/%s", revision, app_slot_name(slot));
}

static void cache_put(struct app_ctx *ctx, const char *key, const char *arn)
{
    json_t *c = cache(ctx);

    if (json_object_get(c, key) == NULL && json_object_size(c) >= MAX_CACHE) {
        /* Drop an arbitrary entry: the cache only saves reads. */
        void *it = json_object_iter(c);
        if (it != NULL)
            json_object_del(c, json_object_iter_key(it));
    }
    json_object_set_new(c, key, json_string(arn));
}

/* Describes arn with its tags. Returns 1 when it is ACTIVE, this
 * application's, tagged for revision/slot and matching desired; 0 when not
 * (or gone); -1 on a failed call. */
static int check_one(struct app_ctx *ctx, const char *arn, const char *revision, int slot,
                     const json_t *desired)
{
    json_t *out = NULL;
    struct aws_error err;
    const json_t *td, *tags;
    int ok;

    if (app_read(ctx, arn, "ecs", "DescribeTaskDefinition",
                 json_pack("{s:s, s:[s]}", "taskDefinition", arn, "include", "TAGS"), &out,
                 &err) != 0) {
        if (err.kind == AWS_ERR_SERVICE && strcmp(err.code, "ClientException") == 0) {
            forget_error(ctx); /* "Unable to describe task definition": gone */
            return 0;
        }
        return -1;
    }
    td = json_object_get(out, "taskDefinition");
    tags = json_object_get(out, "tags");
    ok = strcmp(jstr(td, "status"), "ACTIVE") == 0 && app_tags_owned(ctx, tags) &&
         strcmp(app_tag_value(tags, APP_TAG_REVISION) ? app_tag_value(tags, APP_TAG_REVISION) : "",
                revision) == 0 &&
         strcmp(app_tag_value(tags, APP_TAG_SLOT) ? app_tag_value(tags, APP_TAG_SLOT) : "",
                app_slot_name(slot)) == 0 &&
         taskdef_matches(desired, td);
    json_decref(out);
    return ok;
}

enum app_step taskdef_ensure(struct app_ctx *ctx, struct taskdef_pass *pass, int slot, char *arn,
                             size_t len)
{
    const char *revision = ctx->req->revision ? ctx->req->revision : "";
    json_t *desired = taskdef_desired(ctx, revision, slot), *out = NULL, *in;
    const char *cached = NULL;
    enum app_step step = APP_STEP_FAILED;
    char key[128], cached_copy[512];
    size_t i;
    const json_t *a;
    int rc;

    cache_key(key, sizeof(key), revision, slot);
    /* A copy: the cache entry is dropped below when it no longer matches
     * (a changed role, say), and the search skips it by name. */
    if (json_string_value(json_object_get(cache(ctx), key)) != NULL) {
        snprintf(cached_copy, sizeof(cached_copy), "%s",
                 json_string_value(json_object_get(cache(ctx), key)));
        cached = cached_copy;
    }
    if (cached != NULL && strcmp(cached, PLACEHOLDER) != 0) {
        rc = check_one(ctx, cached, revision, slot, desired);
        if (rc < 0)
            goto out;
        if (rc == 1) {
            snprintf(arn, len, "%s", cached);
            step = APP_STEP_READY;
            goto out;
        }
        json_object_del(cache(ctx), key);
    }
    /* Not cached (a crash after registering, a lost status): search the
     * newest of the family by tag before registering another. */
    if (pass->listed < 2) {
        pass->listed++;
        if (app_read(ctx, ctx->names.task_family, "ecs", "ListTaskDefinitions",
                     json_pack("{s:s, s:s, s:s, s:i}", "familyPrefix", ctx->names.task_family,
                               "status", "ACTIVE", "sort", "DESC", "maxResults", LIST_DESCRIBE),
                     &out, NULL) != 0)
            goto out;
        json_array_foreach(json_object_get(out, "taskDefinitionArns"), i, a)
        {
            const char *cand = json_string_value(a);
            if (cand == NULL || (cached != NULL && strcmp(cand, cached) == 0))
                continue;
            rc = check_one(ctx, cand, revision, slot, desired);
            if (rc < 0)
                goto out;
            if (rc == 1) {
                cache_put(ctx, key, cand);
                snprintf(arn, len, "%s", cand);
                step = APP_STEP_READY;
                goto out;
            }
        }
        json_decref(out);
        out = NULL;
    }
    app_note_change(ctx, "create", "ecs:task-definition", key, NULL);
    in = json_deep_copy(desired);
    rc = app_write(ctx, ctx->names.task_family, "ecs", "RegisterTaskDefinition", in, &out, NULL);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        snprintf(arn, len, "%s", PLACEHOLDER);
    } else {
        snprintf(arn, len, "%s", jstr(json_object_get(out, "taskDefinition"), "taskDefinitionArn"));
        cache_put(ctx, key, arn);
    }
    step = APP_STEP_READY;
out:
    json_decref(desired);
    json_decref(out);
    return step;
}

static bool in_list(const json_t *list, const char *s)
{
    size_t i;
    const json_t *e;

    json_array_foreach(list, i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
            return true;
    }
    return false;
}

/* Deregisters arn when it carries this application's tags. Returns 1 when
 * deregistered, 0 when left alone, -1 on a failed call. */
static int deregister_owned(struct app_ctx *ctx, const char *arn)
{
    json_t *out = NULL;
    struct aws_error err;
    int owned;

    if (app_read(ctx, arn, "ecs", "DescribeTaskDefinition",
                 json_pack("{s:s, s:[s]}", "taskDefinition", arn, "include", "TAGS"), &out,
                 &err) != 0) {
        if (err.kind == AWS_ERR_SERVICE && strcmp(err.code, "ClientException") == 0) {
            forget_error(ctx);
            return 0;
        }
        return -1;
    }
    owned = app_tags_owned(ctx, json_object_get(out, "tags")) &&
            strcmp(jstr(json_object_get(out, "taskDefinition"), "status"), "ACTIVE") == 0;
    json_decref(out);
    if (!owned)
        return 0;
    app_note_change(ctx, "delete", "ecs:task-definition", arn, NULL);
    if (app_write(ctx, arn, "ecs", "DeregisterTaskDefinition",
                  json_pack("{s:s}", "taskDefinition", arn), NULL, NULL) < 0)
        return -1;
    /* Forget it in the cache. */
    {
        json_t *c = cache(ctx);
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(c, tmp, key, v)
        {
            if (strcmp(json_string_value(v) ? json_string_value(v) : "", arn) == 0)
                json_object_del(c, key);
        }
    }
    return 1;
}

int taskdef_prune(struct app_ctx *ctx, const json_t *in_use)
{
    json_t *out = NULL;
    size_t i;
    const json_t *a;
    int rc = -1;

    if (app_read(ctx, ctx->names.task_family, "ecs", "ListTaskDefinitions",
                 json_pack("{s:s, s:s, s:s, s:i}", "familyPrefix", ctx->names.task_family, "status",
                           "ACTIVE", "sort", "DESC", "maxResults", 100),
                 &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "taskDefinitionArns"), i, a)
    {
        const char *arn = json_string_value(a);
        if (i < TASKDEF_KEEP || arn == NULL || in_list(in_use, arn))
            continue;
        if (deregister_owned(ctx, arn) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

enum app_step taskdef_delete_all(struct app_ctx *ctx)
{
    json_t *out = NULL;
    size_t i;
    const json_t *a;
    enum app_step step = APP_STEP_FAILED;
    int done = 0, n;

    if (app_read(ctx, ctx->names.task_family, "ecs", "ListTaskDefinitions",
                 json_pack("{s:s, s:s, s:i}", "familyPrefix", ctx->names.task_family, "status",
                           "ACTIVE", "maxResults", 100),
                 &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "taskDefinitionArns"), i, a)
    {
        if (done >= DELETE_PER_RUN)
            break;
        n = deregister_owned(ctx, json_string_value(a) ? json_string_value(a) : "");
        if (n < 0)
            goto out;
        done += n;
    }
    /* Another page (or the rest of this one) may hold more of ours. */
    if (done > 0 && (done >= DELETE_PER_RUN || json_object_get(out, "nextToken") != NULL)) {
        app_wait(ctx, 1000);
        step = APP_STEP_WAITING;
    } else {
        step = APP_STEP_READY;
    }
out:
    json_decref(out);
    return step;
}
