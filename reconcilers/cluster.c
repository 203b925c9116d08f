/* The "cluster" concern of an Application: the shared IAM task execution role
 * (and the application's secrets grant on it), the CloudWatch log group of
 * the containers and the ECS cluster. Worker threads; one reconcile's context.
 *
 * The execution role APP_EXECUTION_ROLE belongs to no single application: it
 * is created once (trusting ecs-tasks.amazonaws.com, with AWS's
 * AmazonECSTaskExecutionRolePolicy attached, tagged aviary.io/managed-by only),
 * reused by every application, and never deleted by an application's
 * deletion; remove it by hand once no aviary application is left. A role of
 * that name without the managed-by tag is used as it is and never changed.
 * An application with spec.secrets gets its own inline policy on the role
 * ("aviary-<name>-secrets", read access to exactly those ARNs); the policy
 * is removed with the application. */
#include "reconcilers/app.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define PLACEHOLDER          "(known after apply)"
#define EXECUTION_POLICY_ARN "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
#define TASKS_PRINCIPAL      "ecs-tasks.amazonaws.com"
#define MAX_POLICY_DOC       (64 * 1024)

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

/* IAM returns policy documents URL-encoded. Decodes into a new string
 * (caller frees), or NULL when too long or out of memory. */
static char *url_decode(const char *s)
{
    size_t n = strlen(s), j = 0;
    char *out;

    if (n > MAX_POLICY_DOC || (out = malloc(n + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            out[j++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else if (s[i] == '+') {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* A policy document as JSON: plain or URL-encoded. New reference or NULL. */
static json_t *policy_json(const char *doc)
{
    json_t *j = NULL;
    char *dec;

    if (doc == NULL)
        return NULL;
    j = json_loads(doc, 0, NULL);
    if (j != NULL)
        return j;
    dec = url_decode(doc);
    if (dec != NULL)
        j = json_loads(dec, 0, NULL);
    free(dec);
    return j;
}

/* "" for a missing string member, so comparisons need no NULL checks. */
static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

/* True when v is the string want or an array holding it. */
static bool has_value(const json_t *v, const char *want)
{
    size_t k;
    const json_t *e;

    if (json_is_string(v))
        return strcmp(json_string_value(v), want) == 0;
    json_array_foreach(v, k, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), want) == 0)
            return true;
    }
    return false;
}

static bool statement_trusts(const json_t *s)
{
    return strcmp(jstr(s, "Effect"), "Allow") == 0 &&
           has_value(json_object_get(json_object_get(s, "Principal"), "Service"),
                     TASKS_PRINCIPAL) &&
           has_value(json_object_get(s, "Action"), "sts:AssumeRole");
}

/* True when the trust policy lets ecs-tasks.amazonaws.com assume the role. */
static bool trusts_ecs_tasks(const json_t *doc)
{
    const json_t *stmts = json_object_get(doc, "Statement"), *s;
    size_t i;

    if (json_is_object(stmts))
        return statement_trusts(stmts);
    json_array_foreach(stmts, i, s)
    {
        if (statement_trusts(s))
            return true;
    }
    return false;
}

static char *trust_policy_text(void)
{
    json_t *doc =
        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}]}", "Version", "2012-10-17", "Statement", "Effect",
                  "Allow", "Principal", "Service", TASKS_PRINCIPAL, "Action", "sts:AssumeRole");
    char *text = json_dumps(doc, JSON_COMPACT);

    json_decref(doc);
    return text;
}

/* The inline policy granting read access to spec.secrets, or NULL when the
 * application has none. New reference. */
static json_t *secrets_policy(struct app_ctx *ctx)
{
    const json_t *secrets = app_spec(ctx, "secrets");
    json_t *sm = json_array(), *ssm = json_array(), *stmts = json_array(), *doc;
    const char *name;
    const json_t *arn;

    json_object_foreach((json_t *)secrets, name, arn)
    {
        const char *a = json_string_value(arn);
        if (a == NULL)
            continue;
        json_array_append_new(strstr(a, ":ssm:") ? ssm : sm, json_string(a));
    }
    /* Sorted, so the document compares equal whatever the object's order. */
    for (int pass = 0; pass < 2; pass++) {
        json_t *list = pass == 0 ? sm : ssm;
        size_t n = json_array_size(list);
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0; j--) {
                json_t *a = json_array_get(list, j - 1), *b = json_array_get(list, j);
                if (strcmp(json_string_value(a), json_string_value(b)) <= 0)
                    break;
                json_incref(a);
                json_array_set(list, j - 1, b);
                json_array_set_new(list, j, a);
            }
    }
    if (json_array_size(sm) > 0)
        json_array_append_new(stmts, json_pack("{s:s, s:[s], s:O}", "Effect", "Allow", "Action",
                                               "secretsmanager:GetSecretValue", "Resource", sm));
    if (json_array_size(ssm) > 0)
        json_array_append_new(stmts, json_pack("{s:s, s:[s], s:O}", "Effect", "Allow", "Action",
                                               "ssm:GetParameters", "Resource", ssm));
    json_decref(sm);
    json_decref(ssm);
    if (json_array_size(stmts) == 0) {
        json_decref(stmts);
        return NULL;
    }
    doc = json_pack("{s:s, s:o}", "Version", "2012-10-17", "Statement", stmts);
    return doc;
}

static void secrets_policy_name(const struct app_ctx *ctx, char *out, size_t len)
{
    snprintf(out, len, "aviary-%s-secrets", ctx->names.app);
}

/* The application's secrets grant on the shared role: present and equal to
 * the spec's ARNs, or absent when there are none. Only on an aviary role. */
static enum app_step converge_secrets_grant(struct app_ctx *ctx)
{
    json_t *want = secrets_policy(ctx), *out = NULL, *have = NULL;
    struct aws_error err;
    char pname[96];
    bool present = false;
    enum app_step step = APP_STEP_FAILED;

    secrets_policy_name(ctx, pname, sizeof(pname));
    if (app_read(ctx, APP_EXECUTION_ROLE, "iam", "ListRolePolicies",
                 json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE), &out, NULL) != 0)
        goto out;
    present = has_value(json_object_get(out, "PolicyNames"), pname);
    json_decref(out);
    out = NULL;
    if (want == NULL) {
        if (present &&
            app_write(ctx, APP_EXECUTION_ROLE, "iam", "DeleteRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyName", pname),
                      NULL, &err) < 0 &&
            !is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
        step = APP_STEP_READY;
        goto out;
    }
    if (present) {
        if (app_read(ctx, APP_EXECUTION_ROLE, "iam", "GetRolePolicy",
                     json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyName", pname),
                     &out, &err) != 0) {
            if (!is_code(&err, "NoSuchEntity"))
                goto out;
            forget_error(ctx);
        }
        have = policy_json(json_string_value(json_object_get(out, "PolicyDocument")));
    }
    if (!json_equal(have, want)) {
        char *text = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        if (present)
            app_note_drift(ctx, pname, "secrets policy");
        else
            app_note_change(ctx, "create", "iam:role-policy", pname, NULL);
        int rc = app_write(ctx, APP_EXECUTION_ROLE, "iam", "PutRolePolicy",
                           json_pack("{s:s, s:s, s:s}", "RoleName", APP_EXECUTION_ROLE,
                                     "PolicyName", pname, "PolicyDocument", text ? text : "{}"),
                           NULL, NULL);
        free(text);
        if (rc < 0)
            goto out;
    }
    step = APP_STEP_READY;
out:
    json_decref(want);
    json_decref(have);
    json_decref(out);
    return step;
}

/* The shared task execution role: exists, trusts ECS tasks, has the AWS
 * managed execution policy. Records its ARN in *res. */
static enum app_step converge_role(struct app_ctx *ctx, json_t *res)
{
    json_t *out = NULL, *trust = NULL;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    const json_t *role;
    bool managed, attached = false;
    const char *tag;
    size_t i;
    const json_t *p;

    if (app_read(ctx, APP_EXECUTION_ROLE, "iam", "GetRole",
                 json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE), &out, &err) != 0) {
        char *text;
        json_t *created = NULL;
        int rc;

        if (!is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
        app_note_change(ctx, "create", "iam:role", APP_EXECUTION_ROLE, NULL);
        text = trust_policy_text();
        rc = app_write(
            ctx, APP_EXECUTION_ROLE, "iam", "CreateRole",
            json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "RoleName", APP_EXECUTION_ROLE,
                      "AssumeRolePolicyDocument", text ? text : "{}", "Description",
                      "ECS task execution role shared by every aviary application (image pulls, "
                      "logs, secrets)",
                      "Tags", "Key", APP_TAG_MANAGED_BY, "Value", APP_TAG_MANAGED_BY_VALUE),
            &created, &err);
        free(text);
        if (rc < 0 && !is_code(&err, "EntityAlreadyExists"))
            goto out;
        if (rc < 0) {
            /* Another application created it meanwhile: read it next pass. */
            forget_error(ctx);
            app_wait(ctx, 1000);
            step = APP_STEP_WAITING;
            goto out;
        }
        if (app_write(ctx, APP_EXECUTION_ROLE, "iam", "AttachRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyArn",
                                EXECUTION_POLICY_ARN),
                      NULL, NULL) < 0) {
            json_decref(created);
            goto out;
        }
        role = json_object_get(created, "Role");
        json_object_set_new(res, "executionRoleArn",
                            json_string(ctx->plan ? PLACEHOLDER : jstr(role, "Arn")));
        json_decref(created);
        if (ctx->plan && app_spec(ctx, "secrets") != NULL)
            app_note_change(ctx, "create", "iam:role-policy", "secrets", NULL);
        step = ctx->plan ? APP_STEP_READY : converge_secrets_grant(ctx);
        goto out;
    }
    role = json_object_get(out, "Role");
    json_object_set_new(res, "executionRoleArn", json_string(jstr(role, "Arn")));
    tag = app_tag_value(json_object_get(role, "Tags"), APP_TAG_MANAGED_BY);
    managed = tag != NULL && strcmp(tag, APP_TAG_MANAGED_BY_VALUE) == 0;
    if (!managed) {
        /* Made by someone else: used as it is, never changed. */
        step = APP_STEP_READY;
        goto out;
    }
    trust = policy_json(json_string_value(json_object_get(role, "AssumeRolePolicyDocument")));
    if (!trusts_ecs_tasks(trust)) {
        char *text = trust_policy_text();
        app_note_drift(ctx, APP_EXECUTION_ROLE, "trust policy");
        int rc = app_write(ctx, APP_EXECUTION_ROLE, "iam", "UpdateAssumeRolePolicy",
                           json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyDocument",
                                     text ? text : "{}"),
                           NULL, NULL);
        free(text);
        if (rc < 0)
            goto out;
    }
    json_decref(out);
    out = NULL;
    if (app_read(ctx, APP_EXECUTION_ROLE, "iam", "ListAttachedRolePolicies",
                 json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE), &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "AttachedPolicies"), i, p)
    {
        if (strcmp(jstr(p, "PolicyArn"), EXECUTION_POLICY_ARN) == 0)
            attached = true;
    }
    if (!attached) {
        app_note_drift(ctx, APP_EXECUTION_ROLE, "AmazonECSTaskExecutionRolePolicy detached");
        if (app_write(ctx, APP_EXECUTION_ROLE, "iam", "AttachRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyArn",
                                EXECUTION_POLICY_ARN),
                      NULL, NULL) < 0)
            goto out;
    }
    step = converge_secrets_grant(ctx);
out:
    json_decref(trust);
    json_decref(out);
    return step;
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

    step = converge_role(ctx, res);
    if (step != APP_STEP_READY)
        return step;
    step = converge_log_group(ctx, res);
    if (step != APP_STEP_READY)
        return step;
    return converge_ecs_cluster(ctx, res);
}

/* Deletion: the ECS cluster (its services are gone: the service concern is
 * deleted before this one), the log group and the application's secrets
 * grant; never the shared role. */
enum app_step cluster_delete(struct app_ctx *ctx)
{
    json_t *out = NULL, *page = NULL;
    const json_t *cluster, *group;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    char pname[96];
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
    /* The application's grant on the shared role (the role itself stays). */
    secrets_policy_name(ctx, pname, sizeof(pname));
    json_decref(out);
    out = NULL;
    if (app_read(ctx, APP_EXECUTION_ROLE, "iam", "ListRolePolicies",
                 json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE), &out, &err) != 0) {
        if (!is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
    }
    if (has_value(json_object_get(out, "PolicyNames"), pname)) {
        app_note_change(ctx, "delete", "iam:role-policy", pname, NULL);
        if (app_write(ctx, APP_EXECUTION_ROLE, "iam", "DeleteRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyName", pname),
                      NULL, &err) < 0) {
            if (!is_code(&err, "NoSuchEntity"))
                goto out;
            forget_error(ctx);
        }
    }
    json_object_del(ctx->resources, "cluster");
    step = APP_STEP_READY;
out:
    json_decref(page);
    json_decref(out);
    return step;
}
