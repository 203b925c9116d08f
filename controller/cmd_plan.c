/* `aviary plan FILE`: what `aviary apply` would create, change and delete in
 * AWS for the Applications and TrainingEnvironments of one manifest file,
 * found by running their reconcilers in plan mode (read calls only). Main
 * thread. */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "controller/cmd.h"
#include "controller/manifest.h"
#include "reconcilers/app.h"
#include "reconcilers/status.h"
#include "reconcilers/training.h"

static void plan_usage(FILE *out)
{
    fprintf(out, "usage: aviary plan [-o json] FILE\n"
                 "\n"
                 "Shows what `aviary apply FILE` would do in AWS for each Application and\n"
                 "TrainingEnvironment of FILE: resources to create (+), to change (~, field by\n"
                 "field where known) and to delete (-), then \"Plan: N to create, M to change,\n"
                 "K to delete.\" The current state is read from AWS (describe calls only:\n"
                 "nothing is created, changed or deleted). For a TrainingEnvironment this\n"
                 "includes the bucket and its settings, each data file that would be uploaded\n"
                 "(by SHA-256: local files are read and hashed, nothing is sent), the role,\n"
                 "the network and the notebook instance (type, volume, stop/update/start).\n"
                 "Invalid manifests are reported like `aviary validate`.\n"
                 "\n"
                 "  -o json   print {\"applications\": [{\"name\", \"actions\": [...], ...}],\n"
                 "            \"trainingEnvironments\": [...], \"create\", \"change\",\n"
                 "            \"delete\"} instead\n"
                 "\n"
                 "Exit status: 0 the plan was made, 1 an invalid manifest or AWS could not be\n"
                 "read, 2 usage error.\n");
}

/* Resources to create, change and delete. */
struct plan_counts {
    int create, change, remove;
};

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static char action_sign(const char *action)
{
    if (strcmp(action, "create") == 0)
        return '+';
    if (strcmp(action, "delete") == 0)
        return '-';
    return '~';
}

static void count(struct plan_counts *c, const char *action)
{
    if (strcmp(action, "create") == 0)
        c->create++;
    else if (strcmp(action, "delete") == 0)
        c->remove++;
    else
        c->change++;
}

#define PLAN_PLACEHOLDER "(known after apply)"

static json_t *new_block(const char *action, const char *resource, const char *name,
                         const json_t *changes, bool from_call)
{
    json_t *b = json_pack("{s:s, s:s, s:s, s:[], s:b}", "action", action, "resource", resource,
                          "name", name, "calls", "fromCall", from_call);

    json_object_set_new(b, "changes",
                        json_is_array(changes) ? json_deep_copy(changes) : json_array());
    return b;
}

/* True when the call's resource names the block (its name, its kind, or a
 * placeholder id of a resource planned just before). */
static bool call_names_block(const json_t *block, const char *res)
{
    const char *name = jstr(block, "name");

    return strstr(res, PLAN_PLACEHOLDER) != NULL || strcmp(res, jstr(block, "resource")) == 0 ||
           (name[0] != '\0' && strstr(res, name) != NULL);
}

/* True when the kind of resource a note names ("ec2:route-table", "target
 * group", "CloudWatch alarm": its last word, without punctuation) is in the
 * operation of a call ("ec2.CreateRouteTable", "elbv2.ModifyTargetGroup",
 * "cloudwatch.PutMetricAlarm"). */
static bool kind_in_call(const char *resource, const char *call)
{
    char key[64], op[128];
    const char *start = strrchr(resource, ':');
    const char *word;
    size_t k = 0, n = 0;

    start = start ? start + 1 : resource;
    word = strrchr(start, ' ');
    word = word ? word + 1 : start;
    for (; *word && k + 1 < sizeof(key); word++)
        if (isalnum((unsigned char)*word))
            key[k++] = (char)tolower((unsigned char)*word);
    key[k] = '\0';
    for (; *call && n + 1 < sizeof(op); call++)
        op[n++] = (char)tolower((unsigned char)*call);
    op[n] = '\0';
    return k >= 3 && strstr(op, key) != NULL;
}

/* True when a note ({action, resource, name}) describes what a call
 * ({action, resource, call}) does. */
static bool note_matches_call(const json_t *note, const json_t *call)
{
    const char *name = jstr(note, "name");
    const char *res = jstr(call, "resource");

    if (kind_in_call(jstr(note, "resource"), jstr(call, "call")))
        return true;
    return strcmp(jstr(note, "action"), jstr(call, "action")) == 0 &&
           (strcmp(jstr(note, "resource"), res) == 0 ||
            (name[0] != '\0' && strstr(res, name) != NULL));
}

/* The action of a call that no note describes: calls that remove a part of
 * a resource (a security group rule, a route, an association, an
 * attachment, tags) change that resource rather than delete it. */
static const char *call_action(const char *call, const char *action)
{
    static const char *const partial[] = {".Revoke", ".DeleteRoute", ".Disassociate", ".Detach",
                                          ".Remove", ".DeleteTags",  ".UntagResource"};
    const char *op = strchr(call, '.');

    for (size_t i = 0; op != NULL && i < sizeof(partial) / sizeof(partial[0]); i++)
        if (strncmp(op, partial[i], strlen(partial[i])) == 0 &&
            strcmp(op, ".DeleteRouteTable") != 0)
            return "update";
    return action;
}

/* Groups the plan entries into resources. A concern records a change note
 * ({action, resource, name, changes}) and the calls that make it ({action,
 * resource, call}), in either order; the calls that follow a create (routes
 * of a new route table, attributes of a new target group) are part of
 * creating it. Any other call is a resource change of its own. Returns a new
 * array of {action, resource, name, changes, calls}. */
static json_t *group_actions(const json_t *actions)
{
    json_t *out = json_array();
    json_t *cur = NULL; /* the block the previous entry went to */
    size_t i;
    const json_t *a;

    json_array_foreach(actions, i, a)
    {
        const char *action = jstr(a, "action");
        const char *res = jstr(a, "resource");
        const json_t *prev = i > 0 ? json_array_get(actions, i - 1) : NULL;
        const json_t *next = json_array_get(actions, i + 1);

        if (json_object_get(a, "call") == NULL) {
            /* A note right after its own call (call first, then note). */
            if (cur != NULL && json_is_true(json_object_get(cur, "fromCall")) &&
                json_array_size(json_object_get(cur, "calls")) == 1 && prev != NULL &&
                note_matches_call(a, prev)) {
                json_object_set_new(cur, "action", json_string(action));
                json_object_set_new(cur, "resource", json_string(res));
                json_object_set_new(cur, "name", json_string(jstr(a, "name")));
                if (json_is_array(json_object_get(a, "changes")))
                    json_object_set_new(cur, "changes",
                                        json_deep_copy(json_object_get(a, "changes")));
                json_object_set_new(cur, "fromCall", json_false());
                continue;
            }
            cur = new_block(action, res, jstr(a, "name"), json_object_get(a, "changes"), false);
            json_array_append_new(out, cur);
            continue;
        }
        if (cur != NULL && json_is_false(json_object_get(cur, "fromCall")) &&
            json_array_size(json_object_get(cur, "calls")) == 0 &&
            (strcmp(jstr(cur, "action"), action) == 0 || note_matches_call(cur, a))) {
            /* the first call after a note makes the noted change */
        } else if (cur == NULL ||
                   (next != NULL && json_object_get(next, "call") == NULL &&
                    note_matches_call(next, a)) ||
                   !((strcmp(jstr(cur, "action"), "create") == 0 ||
                      strcmp(jstr(cur, "action"), action) == 0) &&
                     call_names_block(cur, res))) {
            cur = new_block(call_action(jstr(a, "call"), action), res, "", NULL, true);
            json_array_append_new(out, cur);
        }
        json_array_append_new(json_object_get(cur, "calls"), json_string(jstr(a, "call")));
    }
    json_array_foreach(out, i, a)
    {
        json_object_del((json_t *)a, "fromCall");
    }
    return out;
}

static void print_resources(const json_t *grouped, struct plan_counts *c)
{
    size_t i, j;
    const json_t *r, *ch;

    json_array_foreach(grouped, i, r)
    {
        const char *action = jstr(r, "action");
        const json_t *calls = json_object_get(r, "calls");

        count(c, action);
        printf("  %c %s%s%s", action_sign(action), jstr(r, "resource"),
               jstr(r, "name")[0] ? " " : "", jstr(r, "name"));
        if (json_array_size(calls) > 0) {
            printf("  (");
            json_array_foreach(calls, j, ch)
            {
                printf("%s%s", j ? ", " : "", json_string_value(ch));
            }
            printf(")");
        }
        printf("\n");
        json_array_foreach(json_object_get(r, "changes"), j, ch)
        {
            if (json_is_string(ch))
                printf("      %s\n", json_string_value(ch));
        }
    }
}

/* Plans one Application or TrainingEnvironment; appends its entry to
 * report. Returns 0, or -1 when AWS could not be read (reported in the
 * entry and on stderr). */
static int plan_object(const struct manifest_object *obj, const char *manifest_dir,
                       struct aws_client *aws, bool text, json_t *report, struct plan_counts *total)
{
    bool training = obj->kind == MANIFEST_KIND_TRAINING_ENVIRONMENT;
    struct reconcile_request req;
    struct reconcile_result res = {0};
    json_t *status = status_new(manifest_kind_name(obj->kind), obj->name);
    json_t *actions = json_array();
    json_t *grouped = NULL, *entry;
    const json_t *last;
    struct plan_counts c = {0};
    const char *stopped = NULL;
    int rc = 0;

    cmd_app_request(obj, manifest_dir, aws, "plan", &req);
    if (training)
        training_reconcile_once(&req, status, &res, true, actions);
    else
        application_reconcile(&req, status, &res, true, actions);
    grouped = group_actions(actions);
    last = json_object_get(status, "lastReconcile");
    if (res.outcome == RECONCILE_ERROR || res.outcome == RECONCILE_INVALID) {
        rc = -1;
    } else if (res.outcome == RECONCILE_REQUEUE_AFTER &&
               strcmp(status_condition(status, "Synced") ? status_condition(status, "Synced") : "",
                      "True") != 0) {
        /* A concern waits for AWS (e.g. a NAT gateway still pending): what
         * comes after it cannot be planned yet. */
        const json_t *conds = json_object_get(status, "conditions");
        size_t i;
        const json_t *cd;
        json_array_foreach(conds, i, cd)
        {
            if (strcmp(jstr(cd, "type"), "Synced") == 0)
                stopped = jstr(cd, "message");
        }
    }
    if (text) {
        if (obj->revision[0] != '\0')
            printf("%s %s (revision %s):\n", manifest_kind_name(obj->kind), obj->name,
                   obj->revision);
        else /* TrainingEnvironments have no revision */
            printf("%s %s:\n", manifest_kind_name(obj->kind), obj->name);
        if (json_array_size(grouped) == 0 && rc == 0)
            printf("  no changes: AWS matches the manifest\n");
        print_resources(grouped, &c);
        if (stopped != NULL)
            printf("  (the plan stops here: %s; run plan again when AWS has finished)\n", stopped);
        printf("  (%lld read calls)\n\n", json_integer_value(json_object_get(last, "reads")));
    } else {
        size_t i;
        const json_t *r;
        json_array_foreach(grouped, i, r)
        {
            count(&c, jstr(r, "action"));
        }
    }
    if (rc != 0)
        fprintf(stderr, "%s: cannot plan: %s\n", obj->name, res.error);
    entry = json_pack("{s:s, s:s, s:o, s:O, s:i, s:i, s:i}", "name", obj->name, "revision",
                      obj->revision, "actions", grouped, "reads", json_object_get(last, "reads"),
                      "create", c.create, "change", c.change, "delete", c.remove);
    if (entry != NULL && rc != 0)
        json_object_set_new(entry, "error", json_string(res.error));
    if (entry != NULL && stopped != NULL)
        json_object_set_new(entry, "incomplete", json_string(stopped));
    json_array_append_new(report, entry);
    total->create += c.create;
    total->change += c.change;
    total->remove += c.remove;
    json_decref(actions);
    json_decref(status);
    return rc;
}

int cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct manifest_file *mf = NULL;
    struct aws_client *aws = NULL;
    json_t *report = json_array(), *training_report = json_array();
    struct plan_counts total = {0};
    char manifest_dir[4096];
    const char *path;
    bool text = true;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (strcmp(optarg, "json") != 0) {
                fprintf(stderr, "aviary plan: -o must be json\n");
                rc = 2;
                goto out;
            }
            text = false;
            break;
        case 'h':
            plan_usage(stdout);
            rc = 0;
            goto out;
        default:
            plan_usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (optind + 1 != argc) {
        plan_usage(stderr);
        rc = 2;
        goto out;
    }
    path = argv[optind];
    mf = cmd_load_valid("plan", path);
    if (mf == NULL)
        goto out;
    if (cmd_manifest_dir(path, manifest_dir, sizeof(manifest_dir)) != 0) {
        fprintf(stderr, "aviary plan: %s: path too long\n", path);
        goto out;
    }
    if (cmd_aws_client("plan", &aws) != 0)
        goto out;
    rc = 0;
    for (size_t i = 0; i < mf->nobjects; i++) {
        const struct manifest_object *o = &mf->objects[i];
        bool training = o->kind == MANIFEST_KIND_TRAINING_ENVIRONMENT;
        if (o->kind != MANIFEST_KIND_APPLICATION && !training) {
            if (text)
                printf("%s %s: not planned: `aviary plan` covers Applications and "
                       "TrainingEnvironments\n\n",
                       manifest_kind_name(o->kind), o->name);
            continue;
        }
        if (plan_object(o, manifest_dir, aws, text, training ? training_report : report, &total) !=
            0)
            rc = 1;
    }
    if (text) {
        printf("Plan: %d to create, %d to change, %d to delete.\n", total.create, total.change,
               total.remove);
    } else {
        json_t *doc = json_pack("{s:O, s:O, s:i, s:i, s:i}", "applications", report,
                                "trainingEnvironments", training_report, "create", total.create,
                                "change", total.change, "delete", total.remove);
        char *s = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(doc);
    }
out:
    json_decref(training_report);
    json_decref(report);
    aws_client_free(aws);
    manifest_file_free(mf);
    return rc;
}
