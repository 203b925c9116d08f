/* The Application's container registry: one ECR repository with
 * scan-on-push and a lifecycle policy keeping the last N images, its URI in
 * the status for CI. Worker threads (one reconcile's context). */
#include "reconcilers/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/status.h"

#define RESOURCE "ECR repository"
/* DescribeImages page size used to count a repository's images on deletion. */
#define REGISTRY_COUNT_PAGE 1000
/* A repository that gained images between the count and the delete: look
 * again soon. */
#define REGISTRY_RETRY_MS 5000

/* The lifecycle policy for keepImages: expire everything beyond the newest
 * `keep` images, tagged or not. New reference. */
static json_t *desired_policy(json_int_t keep)
{
    return json_pack("{s:[{s:i, s:s, s:{s:s, s:s, s:I}, s:{s:s}}]}", "rules", "rulePriority", 1,
                     "description", "aviary: keep the most recent images", "selection", "tagStatus",
                     "any", "countType", "imageCountMoreThan", "countNumber", (json_int_t)keep,
                     "action", "type", "expire");
}

/* True when the policy text in AWS means the same as `want` (parsed and
 * compared as JSON, so whitespace and key order do not count). */
static bool policy_matches(const char *text, const json_t *want)
{
    json_t *have;
    bool same;

    if (text == NULL)
        return false;
    have = json_loads(text, 0, NULL);
    same = have != NULL && json_equal(have, want);
    json_decref(have);
    return same;
}

/* DescribeRepositories by name. Returns 0 with *repo (new reference) or NULL
 * when absent; -1 on failure (ctx->error). */
static int find_repository(struct app_ctx *ctx, json_t **repo)
{
    struct aws_error err;
    json_t *out = NULL;

    *repo = NULL;
    if (app_read(ctx, RESOURCE, "ecr", "DescribeRepositories",
                 json_pack("{s:[s]}", "repositoryNames", ctx->names.repository), &out, &err) != 0) {
        if (strcmp(err.code, "RepositoryNotFoundException") == 0) {
            ctx->error[0] = '\0';
            ctx->terminal = false;
            return 0;
        }
        return -1;
    }
    *repo = json_incref(json_array_get(json_object_get(out, "repositories"), 0));
    json_decref(out);
    return 0;
}

/* ListTagsForResource. Returns 0 with *owned, or -1 (ctx->error). */
static int repository_owned(struct app_ctx *ctx, const char *arn, bool *owned)
{
    json_t *out = NULL;

    *owned = false;
    if (app_read(ctx, RESOURCE, "ecr", "ListTagsForResource",
                 json_pack("{s:s}", "resourceArn", arn), &out, NULL) != 0)
        return -1;
    *owned = app_tags_owned(ctx, json_object_get(out, "tags"));
    json_decref(out);
    return 0;
}

static void record(struct app_ctx *ctx, const char *name, const char *arn, const char *uri)
{
    json_t *r = app_resources(ctx, "registry");

    json_object_set_new(r, "repositoryName", json_string(name));
    json_object_set_new(r, "repositoryArn", json_string(arn));
    json_object_set_new(r, "repositoryUri", json_string(uri));
    json_object_set_new(ctx->status, "registryUri", json_string(uri));
}

/* The lifecycle policy text in AWS, or NULL when there is none. Returns 0 or
 * -1 (ctx->error). *text is a new string reference (caller decrefs). */
static int current_policy(struct app_ctx *ctx, json_t **text)
{
    struct aws_error err;
    json_t *out = NULL;

    *text = NULL;
    if (app_read(ctx, RESOURCE, "ecr", "GetLifecyclePolicy",
                 json_pack("{s:s}", "repositoryName", ctx->names.repository), &out, &err) != 0) {
        if (strcmp(err.code, "LifecyclePolicyNotFoundException") == 0) {
            ctx->error[0] = '\0';
            ctx->terminal = false;
            return 0;
        }
        return -1;
    }
    *text = json_incref(json_object_get(out, "lifecyclePolicyText"));
    json_decref(out);
    return 0;
}

/* What was last applied (status.resources.registry), to tell drift (AWS
 * differs from what aviary set) from an update (the manifest changed). */
static bool last_applied_differs(struct app_ctx *ctx, const char *key, const json_t *now)
{
    const json_t *last = json_object_get(app_resources(ctx, "registry"), key);
    return last == NULL || !json_equal(last, now);
}

/* Drift is an event outside plan mode; in a plan it is an update like any
 * other (app_note_drift records nothing there). */
static void note_drift(struct app_ctx *ctx, const char *what, const char *change)
{
    if (ctx->plan)
        app_note_change(ctx, "update", RESOURCE, ctx->names.repository, json_pack("[s]", change));
    else
        app_note_drift(ctx, what, change);
}

static int put_policy(struct app_ctx *ctx, const json_t *policy)
{
    char *text = json_dumps(policy, JSON_COMPACT | JSON_SORT_KEYS);
    int rc;

    if (text == NULL) {
        app_fail(ctx, false, RESOURCE " %s: out of memory", ctx->names.repository);
        return -1;
    }
    rc = app_write(ctx, RESOURCE, "ecr", "PutLifecyclePolicy",
                   json_pack("{s:s, s:s}", "repositoryName", ctx->names.repository,
                             "lifecyclePolicyText", text),
                   NULL, NULL);
    free(text);
    return rc < 0 ? -1 : 0;
}

enum app_step registry_converge(struct app_ctx *ctx)
{
    const char *name = ctx->names.repository;
    bool scan = app_spec_bool(ctx, "registry.scanOnPush", true);
    json_int_t keep = app_spec_int(ctx, "registry.keepImages", 20);
    json_t *policy = desired_policy(keep);
    json_t *repo = NULL, *text = NULL, *out = NULL, *applied_keep = json_integer(keep);
    json_t *applied_scan = json_boolean(scan);
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    bool owned, created = false;
    int rc;

    if (find_repository(ctx, &repo) != 0)
        goto out;
    if (repo == NULL) {
        rc = app_write(ctx, RESOURCE, "ecr", "CreateRepository",
                       json_pack("{s:s, s:{s:b}, s:s, s:o}", "repositoryName", name,
                                 "imageScanningConfiguration", "scanOnPush", scan,
                                 "imageTagMutability", "MUTABLE", "tags",
                                 app_tags_list(ctx, "Key", "Value", NULL)),
                       &out, &err);
        if (rc < 0 && strcmp(err.code, "RepositoryAlreadyExistsException") == 0) {
            /* Created between our look-up and the create (another pass):
             * look again next time instead of guessing. */
            app_wait(ctx, REGISTRY_RETRY_MS);
            step = APP_STEP_WAITING;
            goto out;
        }
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", RESOURCE, name, NULL);
        if (rc == 1) { /* plan: nothing more can be read about it */
            json_t *r = app_resources(ctx, "registry");
            json_object_set_new(r, "repositoryName", json_string(name));
            json_object_set_new(r, "repositoryUri", json_string("(known after apply)"));
            step = APP_STEP_READY;
            goto out;
        }
        repo = json_incref(json_object_get(out, "repository"));
        created = true;
    }

    {
        const char *arn = json_string_value(json_object_get(repo, "repositoryArn"));
        const char *uri = json_string_value(json_object_get(repo, "repositoryUri"));

        if (arn == NULL || uri == NULL) {
            app_fail(ctx, false, RESOURCE " %s: AWS answered without an ARN or URI", name);
            goto out;
        }
        if (!created && repository_owned(ctx, arn, &owned) != 0)
            goto out;
        if (!created && !owned) {
            /* A repository of this name that aviary did not create (often
             * made by a CI pipeline before the manifest existed): its URI is
             * useful, so it is reported, but it is never changed or deleted.
             * Said once, not at every resync. */
            json_t *r = app_resources(ctx, "registry");
            if (!json_is_false(json_object_get(r, "managed"))) {
                char msg[256];
                snprintf(msg, sizeof(msg),
                         "repository %s exists without the aviary tags: its URI is used, its "
                         "settings are left as they are and it is never deleted",
                         name);
                if (!ctx->plan)
                    status_add_event(ctx->status, "Warning", "NotOwned", msg, ctx->req->now);
            }
            record(ctx, name, arn, uri);
            json_object_set_new(r, "managed", json_false());
            step = APP_STEP_READY;
            goto out;
        }
        record(ctx, name, arn, uri);
        json_object_set_new(app_resources(ctx, "registry"), "managed", json_true());
    }

    /* Scan on push. */
    if (json_is_true(json_object_get(json_object_get(repo, "imageScanningConfiguration"),
                                     "scanOnPush")) != scan) {
        rc = app_write(ctx, RESOURCE, "ecr", "PutImageScanningConfiguration",
                       json_pack("{s:s, s:{s:b}}", "repositoryName", name,
                                 "imageScanningConfiguration", "scanOnPush", scan),
                       NULL, NULL);
        if (rc < 0)
            goto out;
        if (!last_applied_differs(ctx, "scanOnPush", applied_scan))
            note_drift(ctx, RESOURCE " scan on push",
                       scan ? "scanOnPush: false -> true" : "scanOnPush: true -> false");
        else
            app_note_change(
                ctx, "update", RESOURCE, name,
                json_pack("[s]", scan ? "scanOnPush: false -> true" : "scanOnPush: true -> false"));
    }

    /* Lifecycle policy (a new repository has none: no need to read it). */
    if (!created && current_policy(ctx, &text) != 0)
        goto out;
    if (!policy_matches(json_string_value(text), policy)) {
        if (put_policy(ctx, policy) != 0)
            goto out;
        if (created) {
            /* part of the creation: no separate event */
        } else if (!last_applied_differs(ctx, "keepImages", applied_keep)) {
            note_drift(ctx, RESOURCE " lifecycle policy",
                       text != NULL ? "lifecycle policy: changed" : "lifecycle policy: removed");
        } else {
            char change[96];
            snprintf(change, sizeof(change), "lifecycle policy: keep the last %lld images",
                     (long long)keep);
            app_note_change(ctx, "update", RESOURCE, name, json_pack("[s]", change));
        }
    }
    if (!ctx->plan) {
        json_object_set(app_resources(ctx, "registry"), "scanOnPush", applied_scan);
        json_object_set(app_resources(ctx, "registry"), "keepImages", applied_keep);
    }
    step = APP_STEP_READY;
out:
    json_decref(policy);
    json_decref(repo);
    json_decref(text);
    json_decref(out);
    json_decref(applied_keep);
    json_decref(applied_scan);
    return step;
}

/* Number of images in the repository (at most REGISTRY_COUNT_PAGE counted;
 * *more set when there are more). Returns 0 or -1 (ctx->error). */
static int count_images(struct app_ctx *ctx, size_t *n, bool *more)
{
    json_t *out = NULL;

    *n = 0;
    *more = false;
    if (app_read(ctx, RESOURCE, "ecr", "DescribeImages",
                 json_pack("{s:s, s:i}", "repositoryName", ctx->names.repository, "maxResults",
                           REGISTRY_COUNT_PAGE),
                 &out, NULL) != 0)
        return -1;
    *n = json_array_size(json_object_get(out, "imageDetails"));
    *more = json_string_value(json_object_get(out, "nextToken")) != NULL;
    json_decref(out);
    return 0;
}

static void forget(struct app_ctx *ctx)
{
    json_object_del(ctx->resources, "registry");
    json_object_del(ctx->status, "registryUri");
}

/* Deletion keeps a repository that holds images: they are the users' build
 * artefacts (often the only copy of a model version), the manifest's removal
 * does not say they are unwanted, and ECR's force-delete cannot be undone.
 * aviary never force-deletes. The concern still counts as done (READY) so
 * the rest of the stack goes away; a Warning event says what was kept and
 * how to remove it. An empty repository is deleted. */
enum app_step registry_delete(struct app_ctx *ctx)
{
    const char *name = ctx->names.repository;
    json_t *repo = NULL;
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    size_t n;
    bool owned, more;
    int rc;

    if (find_repository(ctx, &repo) != 0)
        goto out;
    if (repo == NULL) {
        forget(ctx);
        step = APP_STEP_READY;
        goto out;
    }
    if (repository_owned(ctx, json_string_value(json_object_get(repo, "repositoryArn")), &owned) !=
        0)
        goto out;
    if (!owned) {
        forget(ctx);
        step = APP_STEP_READY;
        goto out;
    }
    if (count_images(ctx, &n, &more) != 0)
        goto out;
    if (n > 0) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "Retained: repository %s holds %zu%s images (delete them or the repository by "
                 "hand)",
                 name, n, more ? "+" : "");
        status_add_event(ctx->status, "Warning", "Retained", msg, ctx->req->now);
        forget(ctx);
        step = APP_STEP_READY;
        goto out;
    }
    rc = app_write(ctx, RESOURCE, "ecr", "DeleteRepository",
                   json_pack("{s:s}", "repositoryName", name), NULL, &err);
    if (rc < 0 && strcmp(err.code, "RepositoryNotEmptyException") == 0) {
        /* An image was pushed after the count: count again. */
        ctx->error[0] = '\0';
        app_wait(ctx, REGISTRY_RETRY_MS);
        step = APP_STEP_WAITING;
        goto out;
    }
    if (rc < 0 && strcmp(err.code, "RepositoryNotFoundException") != 0)
        goto out;
    app_note_change(ctx, "delete", RESOURCE, name, NULL);
    forget(ctx);
    step = APP_STEP_READY;
out:
    json_decref(repo);
    return step;
}
