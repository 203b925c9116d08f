/* The "notebook" concern of a TrainingEnvironment: the SageMaker notebook
 * instance "<name>" of spec.instanceType and spec.volumeSizeGB, with the
 * environment's role, in its subnet and security group, started or stopped
 * per spec.running. Worker threads; one reconcile's context.
 *
 * One step per reconcile, never a sleep: AWS's transitions (Pending,
 * Stopping, Updating, Deleting: minutes on AWS) are waits, polled after
 * half the time the instance has spent in its state so far (1 s to 30 s).
 *  - absent: CreateNotebookInstance (then wait for InService);
 *  - InService: stop it when spec.running is false or when its type, volume
 *    or role must change (UpdateNotebookInstance needs a stopped instance);
 *  - Stopped: update what differs, then start it when spec.running;
 *  - Failed: reported (FailureReason) and started again when spec.running.
 * A volume cannot shrink: a smaller volumeSizeGB is reported (Warning
 * VolumeNotShrunk) and the instance keeps its size. The subnet, security
 * group and KMS key are fixed at creation: a notebook in another subnet than
 * the spec's is a terminal error (delete the environment to move it).
 * An instance of that name is only changed once its tags (ListTags, checked
 * once per instance: ARN and creation time are remembered) say it is this
 * environment's. */
#include "reconcilers/training.h"

#include <stdio.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define POLL_MIN_MS 1000
#define POLL_MAX_MS 30000

/* DescribeNotebookInstance: 1 found (*nb, caller decrefs), 0 absent, -1 failed. */
static int describe(struct train_ctx *ctx, json_t **nb)
{
    struct aws_error err;

    *nb = NULL;
    if (app_read(&ctx->app, ctx->names.notebook, "sagemaker", "DescribeNotebookInstance",
                 json_pack("{s:s}", "NotebookInstanceName", ctx->names.notebook), nb, &err) == 0)
        return 1;
    /* SageMaker answers a missing instance with ValidationException "RecordNotFound". */
    if (train_is_code(&err, "ValidationException") &&
        (strstr(err.message, "RecordNotFound") != NULL ||
         strstr(err.message, "does not exist") != NULL)) {
        train_forget_error(ctx);
        return 0;
    }
    return -1;
}

/* True when the instance carries this environment's tags. The answer for
 * one instance (ARN + creation time) is remembered in status.resources.
 * Returns 1 owned, 0 not owned, -1 failed. */
static int owned(struct train_ctx *ctx, const json_t *nb)
{
    json_t *res = app_resources(&ctx->app, "notebook"), *out = NULL;
    const json_t *created = json_object_get(nb, "CreationTime");
    const char *arn = train_str(nb, "NotebookInstanceArn");
    int rc;

    if (strcmp(train_str(res, "arn"), arn) == 0 && created != NULL &&
        json_equal(json_object_get(res, "creationTime"), (json_t *)created))
        return 1;
    if (app_read(&ctx->app, ctx->names.notebook, "sagemaker", "ListTags",
                 json_pack("{s:s, s:i}", "ResourceArn", arn, "MaxResults", 100), &out, NULL) != 0)
        return -1;
    rc = train_tags_owned(ctx, json_object_get(out, "Tags")) ? 1 : 0;
    json_decref(out);
    if (rc == 1) {
        json_object_set_new(res, "arn", json_string(arn));
        if (created != NULL)
            json_object_set(res, "creationTime", (json_t *)created);
    }
    return rc;
}

/* Asks to come back after half the time spent in the current state. */
static void poll_later(struct train_ctx *ctx, const json_t *nb)
{
    double since = json_number_value(json_object_get(nb, "LastModifiedTime"));
    double elapsed = since > 0 ? (double)ctx->app.req->now - since : 0;
    long ms = elapsed > 0 ? (long)(elapsed * 500.0) : POLL_MIN_MS;

    app_wait(&ctx->app, ms < POLL_MIN_MS ? POLL_MIN_MS : ms > POLL_MAX_MS ? POLL_MAX_MS : ms);
}

static void record(struct train_ctx *ctx, const json_t *nb, const char *state)
{
    json_t *s = json_pack("{s:s, s:s, s:s, s:I}", "name", ctx->names.notebook, "state", state,
                          "instanceType", train_str(nb, "InstanceType"), "volumeSizeGB",
                          json_integer_value(json_object_get(nb, "VolumeSizeInGB")));
    const char *url = train_str(nb, "Url");
    char full[512];

    if (train_str(nb, "NotebookInstanceArn")[0])
        json_object_set_new(s, "arn", json_string(train_str(nb, "NotebookInstanceArn")));
    if (train_str(nb, "FailureReason")[0])
        json_object_set_new(s, "failureReason", json_string(train_str(nb, "FailureReason")));
    if (*url) {
        snprintf(full, sizeof(full), "%s%s", strncmp(url, "https://", 8) == 0 ? "" : "https://",
                 url);
        json_object_set_new(s, "url", json_string(full));
        json_object_set_new(ctx->app.status, "notebookUrl", json_string(full));
    }
    json_object_set_new(ctx->app.status, "notebook", s);
}

static enum app_step create(struct train_ctx *ctx)
{
    const char *kms = app_spec_str(&ctx->app, "kmsKeyId", NULL);
    json_t *in, *out = NULL;

    in = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:I, s:s, s:o}", "NotebookInstanceName",
                   ctx->names.notebook, "InstanceType",
                   app_spec_str(&ctx->app, "instanceType", "ml.t3.medium"), "RoleArn",
                   ctx->role_arn, "SubnetId", ctx->subnet_id, "SecurityGroupIds", ctx->sg_id,
                   "VolumeSizeInGB", app_spec_int(&ctx->app, "volumeSizeGB", 5),
                   "DirectInternetAccess", "Enabled", "Tags", train_tags_list(ctx, "Key", "Value"));
    if (kms != NULL)
        json_object_set_new(in, "KmsKeyId", json_string(kms));
    {
        char volume[48];
        snprintf(volume, sizeof(volume), "volumeSizeGB: %lld",
                 (long long)app_spec_int(&ctx->app, "volumeSizeGB", 5));
        app_note_change(&ctx->app, "create", "sagemaker:notebook-instance", ctx->names.notebook,
                        json_pack("[s+, s, s+, s+, s]", "instanceType: ",
                                  app_spec_str(&ctx->app, "instanceType", "ml.t3.medium"), volume,
                                  "role: ", ctx->names.role, "subnet: ", ctx->subnet_id,
                                  app_spec_bool(&ctx->app, "running", true)
                                      ? "state: InService"
                                      : "state: Stopped (spec.running is false: stopped once "
                                        "it is in service)"));
    }
    if (app_write(&ctx->app, ctx->names.notebook, "sagemaker", "CreateNotebookInstance", in, &out,
                  NULL) < 0)
        return APP_STEP_FAILED;
    json_decref(out);
    if (ctx->app.plan)
        return APP_STEP_READY;
    json_object_set_new(ctx->app.status, "notebook",
                        json_pack("{s:s, s:s}", "name", ctx->names.notebook, "state", "Pending"));
    app_wait(&ctx->app, POLL_MIN_MS);
    return APP_STEP_WAITING;
}

/* A state-changing call (Start/Stop/Update/Delete) followed by a wait. */
static enum app_step act(struct train_ctx *ctx, const char *operation, json_t *in)
{
    if (in == NULL)
        in = json_pack("{s:s}", "NotebookInstanceName", ctx->names.notebook);
    if (app_write(&ctx->app, ctx->names.notebook, "sagemaker", operation, in, NULL, NULL) < 0)
        return APP_STEP_FAILED;
    if (ctx->app.plan) /* the plan lists the following steps without waiting */
        return APP_STEP_READY;
    app_wait(&ctx->app, POLL_MIN_MS);
    return APP_STEP_WAITING;
}

/* In plan mode, a state change of the instance as a plan entry (outside
 * plan mode the events say it). */
static void plan_state(struct train_ctx *ctx, const char *change)
{
    if (ctx->app.plan)
        app_note_change(&ctx->app, "update", "sagemaker:notebook-instance", ctx->names.notebook,
                        json_pack("[s]", change));
}

/* The UpdateNotebookInstance input for what differs, or NULL when nothing
 * does; changes gets "field: old -> new" lines. */
static json_t *differences(struct train_ctx *ctx, const json_t *nb, json_t *changes)
{
    const char *type = app_spec_str(&ctx->app, "instanceType", "ml.t3.medium");
    json_int_t volume = app_spec_int(&ctx->app, "volumeSizeGB", 5);
    json_int_t have_volume = json_integer_value(json_object_get(nb, "VolumeSizeInGB"));
    json_t *in = json_pack("{s:s}", "NotebookInstanceName", ctx->names.notebook);
    char line[512];
    bool any = false;

    if (strcmp(train_str(nb, "InstanceType"), type) != 0) {
        snprintf(line, sizeof(line), "instanceType: %s -> %s", train_str(nb, "InstanceType"), type);
        json_array_append_new(changes, json_string(line));
        json_object_set_new(in, "InstanceType", json_string(type));
        any = true;
    }
    if (volume > have_volume) {
        snprintf(line, sizeof(line), "volumeSizeGB: %lld -> %lld", (long long)have_volume,
                 (long long)volume);
        json_array_append_new(changes, json_string(line));
        json_object_set_new(in, "VolumeSizeInGB", json_integer(volume));
        any = true;
    } else if (volume < have_volume) {
        snprintf(line, sizeof(line),
                 "spec.volumeSizeGB is %lld but the notebook's volume has %lld GB: a volume "
                 "cannot shrink, it keeps its size",
                 (long long)volume, (long long)have_volume);
        status_add_event(ctx->app.status, "Warning", "VolumeNotShrunk", line, ctx->app.req->now);
    }
    if (ctx->role_arn[0] && strcmp(ctx->role_arn, TRAIN_PLACEHOLDER) != 0 &&
        strcmp(train_str(nb, "RoleArn"), ctx->role_arn) != 0) {
        snprintf(line, sizeof(line), "roleArn: %s -> %s", train_str(nb, "RoleArn"), ctx->role_arn);
        json_array_append_new(changes, json_string(line));
        json_object_set_new(in, "RoleArn", json_string(ctx->role_arn));
        any = true;
    }
    if (!any) {
        json_decref(in);
        return NULL;
    }
    return in;
}

enum app_step training_notebook_converge(struct train_ctx *ctx)
{
    bool running = app_spec_bool(&ctx->app, "running", true);
    json_t *nb = NULL, *update = NULL, *changes = json_array();
    enum app_step step = APP_STEP_FAILED;
    const char *state;
    int found, own;

    found = describe(ctx, &nb);
    if (found < 0)
        goto out;
    if (found == 0) {
        step = create(ctx);
        goto out;
    }
    own = owned(ctx, nb);
    if (own < 0)
        goto out;
    if (own == 0) {
        app_fail(&ctx->app, true,
                 "%s: a notebook instance of this name exists without this environment's tags; "
                 "aviary does not change it",
                 ctx->names.notebook);
        goto out;
    }
    state = train_str(nb, "NotebookInstanceStatus");
    record(ctx, nb, state);
    if (ctx->subnet_id[0] && train_str(nb, "SubnetId")[0] &&
        strcmp(train_str(nb, "SubnetId"), ctx->subnet_id) != 0) {
        app_fail(&ctx->app, true,
                 "%s: the notebook instance is in subnet %s, the spec's network is %s; a notebook "
                 "cannot move (delete the environment and apply it again)",
                 ctx->names.notebook, train_str(nb, "SubnetId"), ctx->subnet_id);
        goto out;
    }
    update = differences(ctx, nb, changes);
    if (strcmp(state, "InService") == 0) {
        if (update != NULL) {
            if (ctx->app.plan)
                json_array_append_new(
                    changes, json_string(running ? "state: InService -> Stopped -> InService "
                                                   "(an update needs a stopped instance)"
                                                 : "state: InService -> Stopped"));
            app_note_change(&ctx->app, "update", "sagemaker:notebook-instance", ctx->names.notebook,
                            json_incref(changes));
            status_add_event(ctx->app.status, "Normal", "Stopping",
                             "stopping the notebook instance to change it", ctx->app.req->now);
            step = act(ctx, "StopNotebookInstance", NULL);
            /* A plan goes on with what the next passes do. */
            if (ctx->app.plan && step == APP_STEP_READY) {
                step = act(ctx, "UpdateNotebookInstance", update);
                update = NULL;
                if (running && step == APP_STEP_READY)
                    step = act(ctx, "StartNotebookInstance", NULL);
            }
        } else if (!running) {
            plan_state(ctx, "state: InService -> Stopped (spec.running is false)");
            status_add_event(ctx->app.status, "Normal", "Stopping",
                             "spec.running is false: stopping the notebook instance",
                             ctx->app.req->now);
            step = act(ctx, "StopNotebookInstance", NULL);
        } else {
            step = APP_STEP_READY;
        }
    } else if (strcmp(state, "Stopped") == 0) {
        if (update != NULL) {
            if (ctx->app.plan) {
                json_array_append_new(changes, json_string(running ? "state: Stopped -> InService"
                                                                   : "state: Stopped"));
                app_note_change(&ctx->app, "update", "sagemaker:notebook-instance",
                                ctx->names.notebook, json_incref(changes));
            }
            step = act(ctx, "UpdateNotebookInstance", update);
            update = NULL;
            if (ctx->app.plan && running && step == APP_STEP_READY)
                step = act(ctx, "StartNotebookInstance", NULL);
        } else if (running) {
            plan_state(ctx, "state: Stopped -> InService");
            status_add_event(ctx->app.status, "Normal", "Starting",
                             "starting the notebook instance", ctx->app.req->now);
            step = act(ctx, "StartNotebookInstance", NULL);
        } else {
            step = APP_STEP_READY;
        }
    } else if (strcmp(state, "Failed") == 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "notebook instance failed: %s",
                 train_str(nb, "FailureReason")[0] ? train_str(nb, "FailureReason") : "unknown");
        status_add_event(ctx->app.status, "Warning", "NotebookFailed", msg, ctx->app.req->now);
        if (running) {
            plan_state(ctx, "state: Failed -> InService");
            step = act(ctx, "StartNotebookInstance", NULL);
        } else {
            step = APP_STEP_READY;
        }
    } else {
        /* Pending, Stopping, Updating, Deleting: AWS is on its way. */
        poll_later(ctx, nb);
        step = APP_STEP_WAITING;
    }
out:
    json_decref(update);
    json_decref(changes);
    json_decref(nb);
    return step;
}

enum app_step training_notebook_delete(struct train_ctx *ctx)
{
    json_t *nb = NULL;
    enum app_step step = APP_STEP_FAILED;
    const char *state;
    int found, own;

    found = describe(ctx, &nb);
    if (found < 0)
        goto out;
    if (found == 0)
        goto gone;
    own = owned(ctx, nb);
    if (own < 0)
        goto out;
    if (own == 0)
        goto gone; /* not ours: left alone */
    state = train_str(nb, "NotebookInstanceStatus");
    record(ctx, nb, state);
    if (strcmp(state, "InService") == 0) {
        step = act(ctx, "StopNotebookInstance", NULL);
    } else if (strcmp(state, "Stopped") == 0 || strcmp(state, "Failed") == 0) {
        app_note_change(&ctx->app, "delete", "sagemaker:notebook-instance", ctx->names.notebook,
                        NULL);
        step = act(ctx, "DeleteNotebookInstance", NULL);
    } else {
        poll_later(ctx, nb);
        step = APP_STEP_WAITING;
    }
    goto out;
gone:
    json_object_del(ctx->app.resources, "notebook");
    json_object_del(ctx->app.status, "notebook");
    json_object_del(ctx->app.status, "notebookUrl");
    step = APP_STEP_READY;
out:
    json_decref(nb);
    return step;
}
