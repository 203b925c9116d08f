/* The "role" concern of a TrainingEnvironment: the notebook instance's IAM
 * role "aviary-<name>-notebook", trusted by sagemaker.amazonaws.com, whose
 * only permission is the inline policy TRAIN_POLICY_NAME: list the
 * environment's bucket and read/write/delete objects in it (plus, with
 * spec.kmsKeyId, the KMS calls S3 makes for that bucket's SSE-KMS: the key
 * itself when kmsKeyId is a key ARN, otherwise any key but only through S3
 * of the region). Hand-made changes are reverted: the trust policy, the
 * inline policy, other inline policies (deleted) and attached managed
 * policies (detached). A role of that name without this environment's tags
 * is never changed. Worker threads; one reconcile's context. */
#include "reconcilers/training.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define MAX_POLICY_DOC (64 * 1024)
#define ROLE_WAIT_MS   5000

static json_t *trust_policy(void)
{
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}]}", "Version", "2012-10-17", "Statement",
                     "Effect", "Allow", "Principal", "Service", "sagemaker.amazonaws.com", "Action",
                     "sts:AssumeRole");
}

static json_t *access_policy(const struct train_ctx *ctx)
{
    const char *kms = app_spec_str(&ctx->app, "kmsKeyId", NULL);
    char objects[128];
    json_t *doc;

    snprintf(objects, sizeof(objects), "%s/*", ctx->bucket_arn);
    doc = json_pack(
        "{s:s, s:[{s:s, s:s, s:[s, s, s], s:s}, {s:s, s:s, s:[s, s, s, s, s, s], s:s}]}", "Version",
        "2012-10-17", "Statement", "Sid", "ListTheBucket", "Effect", "Allow", "Action",
        "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "Resource",
        ctx->bucket_arn, "Sid", "ReadWriteItsObjects", "Effect", "Allow", "Action", "s3:GetObject",
        "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts", "Resource", objects);
    if (kms != NULL) {
        json_t *st;
        char via[96];

        if (strncmp(kms, "arn:", 4) == 0 && strstr(kms, ":key/") != NULL) {
            st = json_pack("{s:s, s:s, s:[s, s], s:s}", "Sid", "UseTheBucketKey", "Effect", "Allow",
                           "Action", "kms:Decrypt", "kms:GenerateDataKey", "Resource", kms);
        } else {
            snprintf(via, sizeof(via), "s3.%s.amazonaws.com", ctx->region);
            st = json_pack("{s:s, s:s, s:[s, s], s:s, s:{s:{s:s}}}", "Sid", "UseTheBucketKey",
                           "Effect", "Allow", "Action", "kms:Decrypt", "kms:GenerateDataKey",
                           "Resource", "*", "Condition", "StringEquals", "kms:ViaService", via);
        }
        json_array_append_new(json_object_get(doc, "Statement"), st);
    }
    return doc;
}

/* IAM returns policy documents URL-encoded. A new JSON value or NULL. */
static json_t *decode_policy(const char *s)
{
    size_t n, j = 0;
    char *text;
    json_t *doc;

    if (s == NULL || (n = strlen(s)) > MAX_POLICY_DOC)
        return NULL;
    doc = json_loads(s, 0, NULL);
    if (doc != NULL)
        return doc;
    if ((text = malloc(n + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char h[3] = {s[i + 1], s[i + 2], '\0'};
            text[j++] = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            text[j++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    text[j] = '\0';
    doc = json_loads(text, 0, NULL);
    free(text);
    return doc;
}

static char *dump(const json_t *doc)
{
    return json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
}

static int put_access_policy(struct train_ctx *ctx)
{
    json_t *doc = access_policy(ctx);
    char *text = dump(doc);
    int rc = -1;

    if (text == NULL) {
        app_fail(&ctx->app, false, "%s: out of memory", ctx->names.role);
        goto out;
    }
    if (app_write(&ctx->app, ctx->names.role, "iam", "PutRolePolicy",
                  json_pack("{s:s, s:s, s:s}", "RoleName", ctx->names.role, "PolicyName",
                            TRAIN_POLICY_NAME, "PolicyDocument", text),
                  NULL, NULL) < 0)
        goto out;
    rc = 0;
out:
    free(text);
    json_decref(doc);
    return rc;
}

/* Reverts added inline policies and attached managed policies. */
static int remove_extras(struct train_ctx *ctx, bool keep_ours)
{
    const char *r = ctx->names.role;
    json_t *out = NULL;
    const json_t *v;
    size_t i;
    int rc = -1;

    if (app_read(&ctx->app, r, "iam", "ListRolePolicies", json_pack("{s:s}", "RoleName", r), &out,
                 NULL) != 0)
        return -1;
    json_array_foreach(json_object_get(out, "PolicyNames"), i, v)
    {
        const char *name = json_string_value(v);
        if (name == NULL || (keep_ours && strcmp(name, TRAIN_POLICY_NAME) == 0))
            continue;
        if (keep_ours)
            train_note_drift(ctx, "iam:role", r, "inline policy added");
        if (app_write(&ctx->app, r, "iam", "DeleteRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", r, "PolicyName", name), NULL, NULL) < 0)
            goto out;
    }
    json_decref(out);
    out = NULL;
    if (app_read(&ctx->app, r, "iam", "ListAttachedRolePolicies", json_pack("{s:s}", "RoleName", r),
                 &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "AttachedPolicies"), i, v)
    {
        if (keep_ours)
            train_note_drift(ctx, "iam:role", r, "managed policy attached");
        if (app_write(
                &ctx->app, r, "iam", "DetachRolePolicy",
                json_pack("{s:s, s:s}", "RoleName", r, "PolicyArn", train_str(v, "PolicyArn")),
                NULL, NULL) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

/* GetRole: 1 found (*role set, caller decrefs), 0 absent, -1 failed. */
static int get_role(struct train_ctx *ctx, json_t **role)
{
    struct aws_error err;
    json_t *out = NULL;

    *role = NULL;
    if (app_read(&ctx->app, ctx->names.role, "iam", "GetRole",
                 json_pack("{s:s}", "RoleName", ctx->names.role), &out, &err) != 0) {
        if (!train_is_code(&err, "NoSuchEntity"))
            return -1;
        train_forget_error(ctx);
        return 0;
    }
    *role = json_incref(json_object_get(out, "Role"));
    json_decref(out);
    return *role != NULL ? 1 : 0;
}

static int create_role(struct train_ctx *ctx, json_t **role)
{
    json_t *trust = trust_policy(), *out = NULL;
    char *text = dump(trust), desc[160];
    int rc = -1;

    snprintf(desc, sizeof(desc), "SageMaker notebook of aviary training environment %s",
             ctx->names.env);
    app_note_change(&ctx->app, "create", "iam:role", ctx->names.role,
                    json_pack("[s, s+]", "trusts: sagemaker.amazonaws.com",
                              "inline policy " TRAIN_POLICY_NAME ": the bucket ",
                              ctx->names.bucket));
    if (text == NULL || app_write(&ctx->app, ctx->names.role, "iam", "CreateRole",
                                  json_pack("{s:s, s:s, s:s, s:o}", "RoleName", ctx->names.role,
                                            "AssumeRolePolicyDocument", text, "Description", desc,
                                            "Tags", train_tags_list(ctx, "Key", "Value")),
                                  &out, NULL) < 0)
        goto out;
    *role = json_incref(json_object_get(out, "Role"));
    rc = 0;
out:
    json_decref(out);
    free(text);
    json_decref(trust);
    return rc;
}

static int converge_trust(struct train_ctx *ctx, const json_t *role)
{
    json_t *want = trust_policy();
    json_t *have = decode_policy(train_str(role, "AssumeRolePolicyDocument"));
    char *text = NULL;
    int rc = -1;

    if (have != NULL && json_equal(have, want)) {
        rc = 0;
        goto out;
    }
    train_note_drift(ctx, "iam:role", ctx->names.role, "trust policy changed");
    text = dump(want);
    if (text == NULL ||
        app_write(&ctx->app, ctx->names.role, "iam", "UpdateAssumeRolePolicy",
                  json_pack("{s:s, s:s}", "RoleName", ctx->names.role, "PolicyDocument", text),
                  NULL, NULL) < 0)
        goto out;
    rc = 0;
out:
    free(text);
    json_decref(have);
    json_decref(want);
    return rc;
}

static int converge_access(struct train_ctx *ctx)
{
    struct aws_error err;
    json_t *out = NULL, *have = NULL, *want = NULL;
    int rc = -1;

    if (app_read(
            &ctx->app, ctx->names.role, "iam", "GetRolePolicy",
            json_pack("{s:s, s:s}", "RoleName", ctx->names.role, "PolicyName", TRAIN_POLICY_NAME),
            &out, &err) != 0) {
        if (!train_is_code(&err, "NoSuchEntity"))
            return -1;
        train_forget_error(ctx);
    }
    have = decode_policy(json_string_value(json_object_get(out, "PolicyDocument")));
    want = access_policy(ctx);
    if (have != NULL && json_equal(have, want)) {
        rc = 0;
        goto out;
    }
    if (out != NULL)
        train_note_drift(ctx, "iam:role", ctx->names.role, "bucket access policy changed");
    rc = put_access_policy(ctx);
out:
    json_decref(want);
    json_decref(have);
    json_decref(out);
    return rc;
}

enum app_step training_role_converge(struct train_ctx *ctx)
{
    json_t *role = NULL, *res;
    enum app_step step = APP_STEP_FAILED;
    int found;

    if (training_bucket_name(ctx) != 0)
        return APP_STEP_FAILED;
    found = get_role(ctx, &role);
    if (found < 0)
        return APP_STEP_FAILED;
    if (found == 0) {
        if (create_role(ctx, &role) != 0 || put_access_policy(ctx) != 0)
            goto out;
    } else {
        if (!train_tags_owned(ctx, json_object_get(role, "Tags"))) {
            app_fail(&ctx->app, true,
                     "%s: an IAM role of this name exists without this environment's tags; "
                     "aviary does not change it (rename the environment or remove the role)",
                     ctx->names.role);
            goto out;
        }
        if (converge_trust(ctx, role) != 0 || converge_access(ctx) != 0 ||
            remove_extras(ctx, true) != 0)
            goto out;
    }
    snprintf(ctx->role_arn, sizeof(ctx->role_arn), "%s",
             role == NULL && ctx->app.plan ? TRAIN_PLACEHOLDER : train_str(role, "Arn"));
    res = app_resources(&ctx->app, "role");
    json_object_set_new(res, "roleName", json_string(ctx->names.role));
    json_object_set_new(res, "roleArn", json_string(ctx->role_arn));
    step = APP_STEP_READY;
out:
    json_decref(role);
    return step;
}

enum app_step training_role_delete(struct train_ctx *ctx)
{
    json_t *role = NULL;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    int found = get_role(ctx, &role);

    if (found < 0)
        return APP_STEP_FAILED;
    if (found == 0 || !train_tags_owned(ctx, json_object_get(role, "Tags"))) {
        step = APP_STEP_READY; /* gone, or never ours */
        goto out;
    }
    if (remove_extras(ctx, false) != 0)
        goto out;
    app_note_change(&ctx->app, "delete", "iam:role", ctx->names.role, NULL);
    if (app_write(&ctx->app, ctx->names.role, "iam", "DeleteRole",
                  json_pack("{s:s}", "RoleName", ctx->names.role), NULL, &err) < 0) {
        if (train_is_code(&err, "NoSuchEntity")) {
            train_forget_error(ctx);
        } else if (train_is_code(&err, "DeleteConflict")) {
            train_forget_error(ctx);
            app_wait(&ctx->app, ROLE_WAIT_MS);
            step = APP_STEP_WAITING;
            goto out;
        } else {
            goto out;
        }
    }
    step = APP_STEP_READY;
out:
    if (step == APP_STEP_READY)
        json_object_del(ctx->app.resources, "role");
    json_decref(role);
    return step;
}
