/* The IAM roles of one Application: its task execution role and its task
 * role, their drift, deletion, and the migration off the shared execution
 * role (see roles.h). Worker threads; one reconcile's context.
 *
 * Why every application has its own execution role, with or without
 * secrets: one code path (no switch between a shared and an own role when
 * spec.secrets appears or goes, which would need a second migration), a
 * grant that can only ever reach the application's own task definitions,
 * and a role that goes with the application instead of one that nobody
 * can delete. The price is one more role per application (IAM allows 1000
 * per account by default, raisable). */
#include "reconcilers/roles.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define PLACEHOLDER     "(known after apply)"
#define TASKS_PRINCIPAL "ecs-tasks.amazonaws.com"
#define MAX_POLICY_DOC  (64 * 1024)
/* While the old grant on the shared role is still used by a running task
 * definition, look again at most this often (it costs several reads). */
#define LEGACY_RECHECK_S 600

static bool is_code(const struct aws_error *err, const char *code)
{
    return err->kind == AWS_ERR_SERVICE && strcmp(err->code, code) == 0;
}

/* An error the caller handles (NotFound and the like): not a failure. */
static void forget_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

void roles_names(const char *app, char execution[ROLES_NAME_MAX], char task[ROLES_NAME_MAX])
{
    snprintf(execution, ROLES_NAME_MAX, "aviary-%.28s-execution", app);
    snprintf(task, ROLES_NAME_MAX, "aviary-%.28s-task", app);
}

/* ---- policy documents ------------------------------------------------------ */

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
    json_t *j;
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

/* True when the trust policy lets ecs-tasks.amazonaws.com assume the role
 * and lets nobody else (a principal added by hand is drift). */
static bool trusts_only_ecs_tasks(const json_t *doc)
{
    const json_t *stmts = json_object_get(doc, "Statement"), *s;
    size_t i;

    if (json_is_object(stmts))
        return statement_trusts(stmts);
    if (json_array_size(stmts) != 1)
        return false;
    json_array_foreach(stmts, i, s)
    {
        if (!statement_trusts(s))
            return false;
    }
    return true;
}

static char *trust_policy_text(void)
{
    json_t *doc =
        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}]}", "Version", "2012-10-17", "Statement", "Effect",
                  "Allow", "Principal", "Service", TASKS_PRINCIPAL, "Action", "sts:AssumeRole");
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(doc);
    return text;
}

/* Sorts an array of strings in place (insertion sort: a few entries). */
static void sort_strings(json_t *list)
{
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

json_t *roles_secrets_policy(const struct app_ctx *ctx)
{
    const json_t *secrets = app_spec(ctx, "secrets");
    json_t *sm = json_array(), *ssm = json_array(), *stmts = json_array();
    const char *name;
    const json_t *arn;

    json_object_foreach((json_t *)secrets, name, arn)
    {
        const char *a = json_string_value(arn);
        if (a == NULL || has_value(strstr(a, ":ssm:") ? ssm : sm, a))
            continue;
        json_array_append_new(strstr(a, ":ssm:") ? ssm : sm, json_string(a));
    }
    /* Sorted, so the document compares equal whatever the object's order. */
    sort_strings(sm);
    sort_strings(ssm);
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
    return json_pack("{s:s, s:o}", "Version", "2012-10-17", "Statement", stmts);
}

json_t *roles_metrics_policy(void)
{
    return json_pack("{s:s, s:[{s:s, s:s, s:s, s:{s:{s:s}}}]}", "Version", "2012-10-17",
                     "Statement", "Effect", "Allow", "Action", "cloudwatch:PutMetricData",
                     "Resource", "*", "Condition", "StringEquals", "cloudwatch:namespace",
                     ROLES_METRICS_NAMESPACE);
}

/* ---- one role ----------------------------------------------------------------- */

/* What one role should be. */
struct role_want {
    char name[ROLES_NAME_MAX];
    const char *description;
    const char *managed;     /* the one AWS managed policy attached, or NULL */
    const char *inline_name; /* the one inline policy, or NULL */
    json_t *inline_doc;      /* its document (owned), NULL when none is wanted */
    const char *res_key;     /* where the ARN goes in the cluster resources */
};

static int put_inline(struct app_ctx *ctx, const struct role_want *w)
{
    char *text = json_dumps(w->inline_doc, JSON_COMPACT | JSON_SORT_KEYS);
    int rc;

    if (text == NULL) {
        app_fail(ctx, false, "%s: out of memory", w->name);
        return -1;
    }
    rc = app_write(ctx, w->name, "iam", "PutRolePolicy",
                   json_pack("{s:s, s:s, s:s}", "RoleName", w->name, "PolicyName", w->inline_name,
                             "PolicyDocument", text),
                   NULL, NULL);
    free(text);
    return rc < 0 ? -1 : 0;
}

static int attach_managed(struct app_ctx *ctx, const struct role_want *w)
{
    return app_write(ctx, w->name, "iam", "AttachRolePolicy",
                     json_pack("{s:s, s:s}", "RoleName", w->name, "PolicyArn", w->managed), NULL,
                     NULL) < 0
               ? -1
               : 0;
}

static enum app_step create_role(struct app_ctx *ctx, json_t *res, const struct role_want *w)
{
    json_t *created = NULL;
    struct aws_error err;
    char *trust = trust_policy_text();
    enum app_step step = APP_STEP_FAILED;
    int rc;

    app_note_change(ctx, "create", "iam:role", w->name, NULL);
    rc = app_write(ctx, w->name, "iam", "CreateRole",
                   json_pack("{s:s, s:s, s:s, s:o}", "RoleName", w->name,
                             "AssumeRolePolicyDocument", trust ? trust : "{}", "Description",
                             w->description, "Tags", app_tags_list(ctx, "Key", "Value", NULL)),
                   &created, &err);
    free(trust);
    if (rc < 0) {
        if (!is_code(&err, "EntityAlreadyExists"))
            goto out;
        /* Made meanwhile (another pass before a crash): its tags are
         * checked on the next pass. */
        forget_error(ctx);
        app_wait(ctx, 1000);
        step = APP_STEP_WAITING;
        goto out;
    }
    json_object_set_new(
        res, w->res_key,
        json_string(ctx->plan ? PLACEHOLDER : jstr(json_object_get(created, "Role"), "Arn")));
    if (w->managed != NULL && attach_managed(ctx, w) != 0)
        goto out;
    if (w->inline_doc != NULL) {
        app_note_change(ctx, "create", "iam:role-policy", w->inline_name, NULL);
        if (put_inline(ctx, w) != 0)
            goto out;
    }
    step = APP_STEP_READY;
out:
    json_decref(created);
    return step;
}

/* Attached managed policies: exactly w->managed. */
static int converge_attached(struct app_ctx *ctx, const struct role_want *w)
{
    json_t *out = NULL;
    const json_t *p;
    bool found = false;
    size_t i;
    int rc = -1;

    if (app_read(ctx, w->name, "iam", "ListAttachedRolePolicies",
                 json_pack("{s:s}", "RoleName", w->name), &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "AttachedPolicies"), i, p)
    {
        const char *arn = jstr(p, "PolicyArn");
        char what[320];

        if (w->managed != NULL && strcmp(arn, w->managed) == 0) {
            found = true;
            continue;
        }
        snprintf(what, sizeof(what), "policy %.256s attached", arn);
        app_note_drift(ctx, w->name, what);
        if (app_write(ctx, w->name, "iam", "DetachRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", w->name, "PolicyArn", arn), NULL,
                      NULL) < 0)
            goto out;
    }
    if (w->managed != NULL && !found) {
        app_note_drift(ctx, w->name, "managed policy detached");
        if (attach_managed(ctx, w) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

/* Inline policies: exactly w->inline_name with w->inline_doc (or none).
 * A document that differs from the wanted one was changed by hand when
 * the wanted one is what aviary last wrote (res[<key>Policy]); otherwise
 * the manifest changed it. */
static int converge_inline(struct app_ctx *ctx, json_t *res, const struct role_want *w)
{
    json_t *out = NULL, *have = NULL;
    const json_t *n;
    struct aws_error err;
    bool present = false;
    size_t i;
    int rc = -1;
    char applied_key[64], *want_text = NULL;

    snprintf(applied_key, sizeof(applied_key), "%sPolicy", w->res_key);
    if (app_read(ctx, w->name, "iam", "ListRolePolicies", json_pack("{s:s}", "RoleName", w->name),
                 &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "PolicyNames"), i, n)
    {
        const char *pname = json_string_value(n);
        char what[160];

        if (pname == NULL)
            continue;
        if (w->inline_doc != NULL && strcmp(pname, w->inline_name) == 0) {
            present = true;
            continue;
        }
        if (w->inline_name != NULL && strcmp(pname, w->inline_name) == 0) {
            /* No longer wanted (spec.secrets removed): an update. */
            app_note_change(ctx, "delete", "iam:role-policy", pname, NULL);
        } else {
            snprintf(what, sizeof(what), "inline policy %.100s added", pname);
            app_note_drift(ctx, w->name, what);
        }
        if (app_write(ctx, w->name, "iam", "DeleteRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", w->name, "PolicyName", pname), NULL,
                      &err) < 0) {
            if (!is_code(&err, "NoSuchEntity"))
                goto out;
            forget_error(ctx);
        }
    }
    if (w->inline_doc == NULL) {
        if (!ctx->plan)
            json_object_del(res, applied_key);
        rc = 0;
        goto out;
    }
    want_text = json_dumps(w->inline_doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (present) {
        json_decref(out);
        out = NULL;
        if (app_read(ctx, w->name, "iam", "GetRolePolicy",
                     json_pack("{s:s, s:s}", "RoleName", w->name, "PolicyName", w->inline_name),
                     &out, &err) != 0) {
            if (!is_code(&err, "NoSuchEntity"))
                goto out;
            forget_error(ctx);
            present = false;
        } else {
            have = policy_json(json_string_value(json_object_get(out, "PolicyDocument")));
        }
    }
    if (!present || !json_equal(have, w->inline_doc)) {
        const char *applied = json_string_value(json_object_get(res, applied_key));
        bool drift = applied != NULL && want_text != NULL && strcmp(applied, want_text) == 0;

        if (drift)
            app_note_drift(ctx, w->name,
                           present ? "inline policy changed" : "inline policy deleted");
        else
            app_note_change(ctx, present ? "update" : "create", "iam:role-policy", w->inline_name,
                            NULL);
        if (put_inline(ctx, w) != 0)
            goto out;
    }
    if (!ctx->plan && want_text != NULL)
        json_object_set_new(res, applied_key, json_string(want_text));
    rc = 0;
out:
    free(want_text);
    json_decref(have);
    json_decref(out);
    return rc;
}

static enum app_step converge_role(struct app_ctx *ctx, json_t *res, const struct role_want *w)
{
    json_t *out = NULL, *trust = NULL;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    const json_t *role;

    if (app_read(ctx, w->name, "iam", "GetRole", json_pack("{s:s}", "RoleName", w->name), &out,
                 &err) != 0) {
        if (!is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
        step = create_role(ctx, res, w);
        goto out;
    }
    role = json_object_get(out, "Role");
    if (!app_tags_owned(ctx, json_object_get(role, "Tags"))) {
        app_fail(ctx, false,
                 "%s: an IAM role of this name exists without the aviary tags of application %s; "
                 "aviary does not use or change it (rename the application, or tag or remove the "
                 "role)",
                 w->name, ctx->names.app);
        goto out;
    }
    json_object_set_new(res, w->res_key, json_string(jstr(role, "Arn")));
    trust = policy_json(json_string_value(json_object_get(role, "AssumeRolePolicyDocument")));
    if (!trusts_only_ecs_tasks(trust)) {
        char *text = trust_policy_text();
        int rc;

        app_note_drift(ctx, w->name, "trust policy");
        rc = app_write(
            ctx, w->name, "iam", "UpdateAssumeRolePolicy",
            json_pack("{s:s, s:s}", "RoleName", w->name, "PolicyDocument", text ? text : "{}"),
            NULL, NULL);
        free(text);
        if (rc < 0)
            goto out;
    }
    if (converge_attached(ctx, w) != 0 || converge_inline(ctx, res, w) != 0)
        goto out;
    step = APP_STEP_READY;
out:
    json_decref(trust);
    json_decref(out);
    return step;
}

/* Deletes one role of this application: inline policies, attachments, the
 * role. 0 when gone (or not ours), -1 on a failed call. */
static int delete_role(struct app_ctx *ctx, const char *name)
{
    json_t *out = NULL;
    struct aws_error err;
    const json_t *e;
    size_t i;
    int rc = -1;

    if (app_read(ctx, name, "iam", "GetRole", json_pack("{s:s}", "RoleName", name), &out, &err) !=
        0) {
        if (!is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
        rc = 0;
        goto out;
    }
    if (!app_tags_owned(ctx, json_object_get(json_object_get(out, "Role"), "Tags"))) {
        rc = 0; /* not aviary's: left alone */
        goto out;
    }
    json_decref(out);
    out = NULL;
    app_note_change(ctx, "delete", "iam:role", name, NULL);
    if (app_read(ctx, name, "iam", "ListRolePolicies", json_pack("{s:s}", "RoleName", name), &out,
                 NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "PolicyNames"), i, e)
    {
        if (json_string_value(e) == NULL)
            continue;
        if (app_write(ctx, name, "iam", "DeleteRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", name, "PolicyName", json_string_value(e)),
                      NULL, &err) < 0) {
            if (!is_code(&err, "NoSuchEntity"))
                goto out;
            forget_error(ctx);
        }
    }
    json_decref(out);
    out = NULL;
    if (app_read(ctx, name, "iam", "ListAttachedRolePolicies", json_pack("{s:s}", "RoleName", name),
                 &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "AttachedPolicies"), i, e)
    {
        if (app_write(ctx, name, "iam", "DetachRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", name, "PolicyArn", jstr(e, "PolicyArn")),
                      NULL, &err) < 0) {
            if (!is_code(&err, "NoSuchEntity"))
                goto out;
            forget_error(ctx);
        }
    }
    if (app_write(ctx, name, "iam", "DeleteRole", json_pack("{s:s}", "RoleName", name), NULL,
                  &err) < 0) {
        if (!is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
    }
    rc = 0;
out:
    json_decref(out);
    return rc;
}

/* ---- the shared role of earlier versions ---------------------------------------- */

static void legacy_policy_name(const struct app_ctx *ctx, char *out, size_t len)
{
    snprintf(out, len, "aviary-%s-secrets", ctx->names.app);
}

/* The shared role when it is aviary's (managed-by tag) and holds this
 * application's old grant: 1, with its ARN in arn; 0 when there is nothing
 * to remove; -1 on a failed call. */
static int legacy_grant_present(struct app_ctx *ctx, char *arn, size_t len)
{
    json_t *out = NULL;
    struct aws_error err;
    const char *tag;
    char pname[96];
    int rc = -1;

    legacy_policy_name(ctx, pname, sizeof(pname));
    if (app_read(ctx, APP_EXECUTION_ROLE, "iam", "GetRole",
                 json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE), &out, &err) != 0) {
        if (!is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
        rc = 0;
        goto out;
    }
    tag = app_tag_value(json_object_get(json_object_get(out, "Role"), "Tags"), APP_TAG_MANAGED_BY);
    if (tag == NULL || strcmp(tag, APP_TAG_MANAGED_BY_VALUE) != 0) {
        rc = 0; /* someone else's role: never changed */
        goto out;
    }
    snprintf(arn, len, "%s", jstr(json_object_get(out, "Role"), "Arn"));
    json_decref(out);
    out = NULL;
    if (app_read(ctx, APP_EXECUTION_ROLE, "iam", "ListRolePolicies",
                 json_pack("{s:s}", "RoleName", APP_EXECUTION_ROLE), &out, &err) != 0) {
        if (!is_code(&err, "NoSuchEntity"))
            goto out;
        forget_error(ctx);
        rc = 0;
        goto out;
    }
    rc = has_value(json_object_get(out, "PolicyNames"), pname) ? 1 : 0;
out:
    json_decref(out);
    return rc;
}

static bool has_tasks(const json_t *o)
{
    return json_integer_value(json_object_get(o, "desiredCount")) > 0 ||
           json_integer_value(json_object_get(o, "runningCount")) > 0 ||
           json_integer_value(json_object_get(o, "pendingCount")) > 0;
}

/* 1 when a deployment with tasks (desired, running or pending) of one of
 * the application's services runs a task definition whose execution role
 * is shared_arn (its tasks still need the old grant to start), 0 when none
 * does, -1 on a failed call. A slot scaled to zero does not count: it is
 * given the current task definition before it is scaled up again. */
static int legacy_grant_in_use(struct app_ctx *ctx, const char *shared_arn)
{
    json_t *out = NULL, *seen = json_array();
    struct aws_error err;
    const json_t *s, *d;
    size_t i, j;
    int rc = -1, used = 0;

    if (app_read(ctx, ctx->names.cluster, "ecs", "DescribeServices",
                 json_pack("{s:s, s:[s, s]}", "cluster", ctx->names.cluster, "services",
                           ctx->names.service[0], ctx->names.service[1]),
                 &out, &err) != 0) {
        if (!is_code(&err, "ClusterNotFoundException"))
            goto out;
        forget_error(ctx);
        rc = 0;
        goto out;
    }
    json_array_foreach(json_object_get(out, "services"), i, s)
    {
        const json_t *deps = json_object_get(s, "deployments");

        if (strcmp(jstr(s, "status"), "INACTIVE") == 0 || !has_tasks(s))
            continue;
        if (json_array_size(deps) == 0 && jstr(s, "taskDefinition")[0] &&
            !has_value(seen, jstr(s, "taskDefinition")))
            json_array_append_new(seen, json_string(jstr(s, "taskDefinition")));
        json_array_foreach(deps, j, d)
        {
            const char *td = jstr(d, "taskDefinition");
            if (td[0] && has_tasks(d) && !has_value(seen, td))
                json_array_append_new(seen, json_string(td));
        }
    }
    json_array_foreach(seen, i, d)
    {
        json_t *td = NULL;

        if (used)
            break;
        if (app_read(ctx, json_string_value(d), "ecs", "DescribeTaskDefinition",
                     json_pack("{s:s}", "taskDefinition", json_string_value(d)), &td, &err) != 0) {
            if (!is_code(&err, "ClientException"))
                goto out;
            forget_error(ctx); /* gone */
            continue;
        }
        used = strcmp(jstr(json_object_get(td, "taskDefinition"), "executionRoleArn"),
                      shared_arn) == 0;
        json_decref(td);
    }
    rc = used;
out:
    json_decref(seen);
    json_decref(out);
    return rc;
}

/* Deletes the application's grant of earlier versions from the shared role
 * (gone already counts as done). Returns 0, or -1 with ctx->error. */
static int delete_legacy_grant(struct app_ctx *ctx)
{
    char pname[96];
    struct aws_error err;

    legacy_policy_name(ctx, pname, sizeof(pname));
    app_note_change(ctx, "delete", "iam:role-policy", pname, NULL);
    if (app_write(ctx, APP_EXECUTION_ROLE, "iam", "DeleteRolePolicy",
                  json_pack("{s:s, s:s}", "RoleName", APP_EXECUTION_ROLE, "PolicyName", pname),
                  NULL, &err) < 0) {
        if (!is_code(&err, "NoSuchEntity"))
            return -1;
        forget_error(ctx);
    }
    return 0;
}

/* Removes the application's grant from the shared role once nothing runs
 * with it; remembered in res.legacyGrant ("removed", or "in use" with the
 * time of the check) so a converged application checks once. */
static enum app_step migrate_legacy(struct app_ctx *ctx, json_t *res)
{
    const char *state = jstr(res, "legacyGrant");
    json_int_t checked = json_integer_value(json_object_get(res, "legacyGrantCheckedAt"));
    char arn[512] = "", pname[96];
    int present, used;

    if (strcmp(state, "removed") == 0)
        return APP_STEP_READY;
    if (strcmp(state, "in use") == 0 && ctx->req->now - checked < LEGACY_RECHECK_S)
        return APP_STEP_READY;
    present = legacy_grant_present(ctx, arn, sizeof(arn));
    if (present < 0)
        return APP_STEP_FAILED;
    used = present ? legacy_grant_in_use(ctx, arn) : 0;
    if (used < 0)
        return APP_STEP_FAILED;
    if (used) {
        char msg[256];

        legacy_policy_name(ctx, pname, sizeof(pname));
        snprintf(msg, sizeof(msg),
                 "%s: policy %s is kept until no service runs a task definition with the shared "
                 "execution role",
                 APP_EXECUTION_ROLE, pname);
        if (!ctx->plan) {
            status_add_event(ctx->status, "Normal", "LegacyGrantInUse", msg, ctx->req->now);
            json_object_set_new(res, "legacyGrant", json_string("in use"));
            json_object_set_new(res, "legacyGrantCheckedAt", json_integer(ctx->req->now));
        }
        return APP_STEP_READY;
    }
    if (present && delete_legacy_grant(ctx) != 0)
        return APP_STEP_FAILED;
    if (!ctx->plan) {
        json_object_set_new(res, "legacyGrant", json_string("removed"));
        json_object_del(res, "legacyGrantCheckedAt");
    }
    return APP_STEP_READY;
}

/* ---- the concern's entry points ------------------------------------------------- */

static void wants(const struct app_ctx *ctx, struct role_want *exec, struct role_want *task)
{
    memset(exec, 0, sizeof(*exec));
    memset(task, 0, sizeof(*task));
    roles_names(ctx->names.app, exec->name, task->name);
    exec->description = "ECS task execution role of one aviary application (image pulls, logs, "
                        "its own secrets)";
    exec->managed = ROLES_EXECUTION_POLICY_ARN;
    exec->inline_name = ROLES_SECRETS_POLICY;
    exec->inline_doc = roles_secrets_policy(ctx);
    exec->res_key = "executionRoleArn";
    task->description = "ECS task role of one aviary application (publishes its model-age metric)";
    task->inline_name = ROLES_METRICS_POLICY;
    task->inline_doc = roles_metrics_policy();
    task->res_key = "taskRoleArn";
}

enum app_step roles_converge(struct app_ctx *ctx, json_t *res)
{
    struct role_want exec, task;
    enum app_step step;

    wants(ctx, &exec, &task);
    step = converge_role(ctx, res, &exec);
    if (step == APP_STEP_READY)
        step = converge_role(ctx, res, &task);
    if (step == APP_STEP_READY)
        step = migrate_legacy(ctx, res);
    json_decref(exec.inline_doc);
    json_decref(task.inline_doc);
    return step;
}

enum app_step roles_delete(struct app_ctx *ctx)
{
    char exec[ROLES_NAME_MAX], task[ROLES_NAME_MAX], arn[512];
    int present;

    roles_names(ctx->names.app, exec, task);
    if (delete_role(ctx, exec) != 0 || delete_role(ctx, task) != 0)
        return APP_STEP_FAILED;
    /* The grant of earlier versions on the shared role (the role stays:
     * other applications' old task definitions may still use it). */
    present = legacy_grant_present(ctx, arn, sizeof(arn));
    if (present < 0)
        return APP_STEP_FAILED;
    if (present && delete_legacy_grant(ctx) != 0)
        return APP_STEP_FAILED;
    return APP_STEP_READY;
}
