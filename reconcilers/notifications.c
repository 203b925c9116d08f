/* Notifications concern: the application's SNS topic, its e-mail
 * subscriptions (added and removed as spec.notifications.email changes),
 * and CloudWatch alarms on the scale-out and scale-in conditions of the
 * target-tracking policies that notify the topic, so developers hear about
 * scaling even while aviary is down; also the alerts the rollout logic
 * publishes. Worker threads. */
#include "reconcilers/notifications.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/autoscaling.h"
#include "reconcilers/status.h"

#define NT_PENDING     "(known after apply)"
#define NT_MAX_PAGES   20
#define NT_MAX_MESSAGE 262144

/* The scaling conditions mirrored by alarms, one pair per policy kind. */
struct alarm_kind {
    const char *kind;      /* name suffix and policy ("cpu", "memory", "requests") */
    const char *spec_path; /* the target value */
    const char *namespace;
    const char *metric;
    const char *statistic;
    const char *what; /* for the description */
};

static const struct alarm_kind alarm_kinds[] = {
    {"cpu", "scaling.cpuPercent", "AWS/ECS", "CPUUtilization", "Average", "average CPU (%)"},
    {"memory", "scaling.memoryPercent", "AWS/ECS", "MemoryUtilization", "Average",
     "average memory (%)"},
    {"requests", "scaling.requestsPerTarget", "AWS/ApplicationELB", "RequestCountPerTarget", "Sum",
     "requests per task per minute"},
};

#define N_ALARM_KINDS (sizeof(alarm_kinds) / sizeof(alarm_kinds[0]))

/* Application Auto Scaling's target tracking: scale out after 3 minutes
 * above the target, scale in after 15 minutes below 90% of it. */
#define OUT_PERIODS  3
#define IN_PERIODS   15
#define IN_FRACTION  0.9
#define ALARM_PERIOD 60

/* ---- small helpers ------------------------------------------------------- */

static const char *str_or(const json_t *v, const char *fallback)
{
    const char *s = json_string_value(v);
    return s ? s : fallback;
}

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

/* Equality of AWS values up to list order and integer/real representation. */
static bool same(const json_t *a, const json_t *b)
{
    size_t i, j;
    const char *k;
    json_t *v, *w;

    if (json_is_number(a) && json_is_number(b))
        return fabs(json_number_value(a) - json_number_value(b)) < 1e-9;
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        json_array_foreach(a, i, v)
        {
            bool found = false;
            json_array_foreach(b, j, w)
            {
                if (same(v, w)) {
                    found = true;
                    break;
                }
            }
            if (!found)
                return false;
        }
        return true;
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_foreach((json_t *)a, k, v)
        {
            if (!same(v, json_object_get(b, k)))
                return false;
        }
        return true;
    }
    return json_equal(a, b);
}

static bool is_placeholder(const char *arn)
{
    return arn == NULL || strcmp(arn, NT_PENDING) == 0;
}

static bool code_is(const struct aws_error *err, const char *a, const char *b)
{
    return strcmp(err->code, a) == 0 || (b != NULL && strcmp(err->code, b) == 0);
}

/* ---- topic --------------------------------------------------------------- */

/* The topic's ARN: recorded, else built from the caller's account
 * (sts GetCallerIdentity, a read). Returns 0 with out filled, or -1. */
static int topic_arn(struct app_ctx *ctx, json_t *res, char *out, size_t size)
{
    const char *arn = json_string_value(json_object_get(res, "topicArn"));
    json_t *id = NULL;
    char partition[32] = "aws";
    const char *caller;

    if (arn != NULL && !is_placeholder(arn)) {
        snprintf(out, size, "%s", arn);
        return 0;
    }
    if (app_read(ctx, "SNS topic", "sts", "GetCallerIdentity", NULL, &id, NULL) != 0)
        return -1;
    caller = str_or(json_object_get(id, "Arn"), "");
    if (strncmp(caller, "arn:", 4) == 0) {
        const char *end = strchr(caller + 4, ':');
        if (end != NULL && (size_t)(end - caller - 4) < sizeof(partition))
            snprintf(partition, sizeof(partition), "%.*s", (int)(end - caller - 4), caller + 4);
    }
    snprintf(out, size, "arn:%s:sns:%s:%s:%s", partition, aws_client_region(ctx->aws),
             str_or(json_object_get(id, "Account"), ""), ctx->names.topic);
    json_decref(id);
    return 0;
}

/* Finds or creates the topic. *exists is false when it had to be created
 * (or, in plan mode, would be: then out is the placeholder). */
static enum app_step ensure_topic(struct app_ctx *ctx, json_t *res, char *out, size_t size,
                                  bool *created)
{
    json_t *tags = NULL, *created_out = NULL, *in;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    bool had = json_string_value(json_object_get(res, "topicArn")) != NULL;

    *created = false;
    if (topic_arn(ctx, res, out, size) != 0)
        return APP_STEP_FAILED;
    if (app_read(ctx, "SNS topic", "sns", "ListTagsForResource",
                 json_pack("{s:s}", "ResourceArn", out), &tags, &err) == 0) {
        if (!app_tags_owned(ctx, json_object_get(tags, "Tags"))) {
            app_fail(ctx, true,
                     "SNS topic %s exists but does not carry the aviary tags of application %s; "
                     "aviary does not take it over (delete or rename it, or tag it)",
                     out, ctx->names.app);
            goto out;
        }
        step = APP_STEP_READY;
        goto out;
    }
    if (!code_is(&err, "ResourceNotFound", "NotFound"))
        goto out;
    if (had && !ctx->plan)
        app_note_drift(ctx, "SNS topic", "deleted");
    app_note_change(ctx, "create", "SNS topic", ctx->names.topic, NULL);
    in = json_pack("{s:s, s:o}", "Name", ctx->names.topic, "Tags",
                   app_tags_list(ctx, "Key", "Value", NULL));
    if (app_write(ctx, "SNS topic", "sns", "CreateTopic", in, &created_out, NULL) < 0)
        goto out;
    *created = true;
    snprintf(out, size, "%s",
             ctx->plan ? NT_PENDING : str_or(json_object_get(created_out, "TopicArn"), out));
    step = APP_STEP_READY;
out:
    json_decref(tags);
    json_decref(created_out);
    return step;
}

/* ---- subscriptions -------------------------------------------------------- */

/* Every subscription of the topic (new reference array), or NULL. */
static json_t *list_subscriptions(struct app_ctx *ctx, const char *arn)
{
    json_t *all = json_array(), *page = NULL;
    char token[1024] = "";

    for (int i = 0; i < NT_MAX_PAGES; i++) {
        json_t *in = json_pack("{s:s}", "TopicArn", arn);
        if (token[0])
            json_object_set_new(in, "NextToken", json_string(token));
        if (app_read(ctx, "SNS subscription", "sns", "ListSubscriptionsByTopic", in, &page, NULL) !=
            0) {
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, json_object_get(page, "Subscriptions"));
        snprintf(token, sizeof(token), "%s", str_or(json_object_get(page, "NextToken"), ""));
        json_decref(page);
        if (!token[0])
            return all;
    }
    app_fail(ctx, false, "SNS topic %s: more than %d pages of subscriptions", arn, NT_MAX_PAGES);
    json_decref(all);
    return NULL;
}

static bool in_list(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static bool is_arn(const char *s)
{
    return s != NULL && strncmp(s, "arn:", 4) == 0;
}

/* Subscribes the spec's addresses that are neither confirmed nor pending,
 * unsubscribes the e-mail subscriptions the spec no longer lists. A pending
 * subscription has no ARN in ListSubscriptionsByTopic: aviary subscribes
 * with ReturnSubscriptionArn and keeps the pending ARN
 * (resources.notifications.pendingSubscriptions) to be able to remove it
 * before it is confirmed; a pending one it did not create cannot be
 * addressed and is left to expire (listed in unremovablePending). */
static enum app_step converge_subscriptions(struct app_ctx *ctx, json_t *res, const char *arn,
                                            bool topic_created)
{
    const json_t *want = app_spec(ctx, "notifications.email");
    json_t *have = NULL, *pending = json_object_get(res, "pendingSubscriptions");
    json_t *applied = json_object_get(res, "emails"), *stuck = json_array(), *s, *v;
    json_t *new_pending = json_object();
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    size_t i;

    if (!topic_created) {
        have = list_subscriptions(ctx, arn);
        if (have == NULL)
            goto out;
    }
    json_array_foreach(want, i, v)
    {
        const char *email = json_string_value(v);
        bool listed = false;
        size_t j;
        json_t *out = NULL, *in;
        json_array_foreach(have, j, s)
        {
            if (strcmp(str_or(json_object_get(s, "Protocol"), ""), "email") == 0 &&
                strcmp(str_or(json_object_get(s, "Endpoint"), ""), email) == 0)
                listed = true;
        }
        if (listed) {
            const char *p = json_string_value(json_object_get(pending, email));
            if (p != NULL)
                json_object_set_new(new_pending, email, json_string(p));
            continue;
        }
        if (in_list(applied, email))
            app_note_drift(ctx, "SNS subscription", email);
        app_note_change(ctx, "create", "SNS e-mail subscription", email, NULL);
        in = json_pack("{s:s, s:s, s:s, s:b}", "TopicArn", arn, "Protocol", "email", "Endpoint",
                       email, "ReturnSubscriptionArn", 1);
        if (app_write(ctx, "SNS subscription", "sns", "Subscribe", in, &out, NULL) < 0)
            goto out;
        if (is_arn(json_string_value(json_object_get(out, "SubscriptionArn"))))
            json_object_set(new_pending, email, json_object_get(out, "SubscriptionArn"));
        json_decref(out);
    }
    json_array_foreach(have, i, s)
    {
        const char *email = str_or(json_object_get(s, "Endpoint"), "");
        const char *sarn = json_string_value(json_object_get(s, "SubscriptionArn"));
        if (strcmp(str_or(json_object_get(s, "Protocol"), ""), "email") != 0 ||
            in_list(want, email))
            continue;
        if (!is_arn(sarn))
            sarn = json_string_value(json_object_get(pending, email));
        if (!is_arn(sarn)) {
            json_array_append_new(stuck, json_string(email));
            if (!in_list(json_object_get(res, "unremovablePending"), email) && !ctx->plan) {
                char msg[512];
                snprintf(msg, sizeof(msg),
                         "e-mail subscription of %s is pending confirmation and was not made by "
                         "aviary: it cannot be removed until it is confirmed or SNS expires it",
                         email);
                status_add_event(ctx->status, "Warning", "SubscriptionPending", msg, ctx->req->now);
            }
            continue;
        }
        app_note_change(ctx, "delete", "SNS e-mail subscription", email, NULL);
        if (app_write(ctx, "SNS subscription", "sns", "Unsubscribe",
                      json_pack("{s:s}", "SubscriptionArn", sarn), NULL, &err) < 0 &&
            !code_is(&err, "NotFound", "ResourceNotFound"))
            goto out;
    }
    if (!ctx->plan) {
        json_object_set(res, "pendingSubscriptions", new_pending);
        json_object_set_new(res, "emails", want ? json_deep_copy(want) : json_array());
        if (json_array_size(stuck) > 0)
            json_object_set(res, "unremovablePending", stuck);
        else
            json_object_del(res, "unremovablePending");
    }
    step = APP_STEP_READY;
out:
    json_decref(have);
    json_decref(stuck);
    json_decref(new_pending);
    return step;
}

/* ---- alarms --------------------------------------------------------------- */

static void alarm_name(struct app_ctx *ctx, const char *direction, const char *kind, char *out,
                       size_t size)
{
    snprintf(out, size, "%s-scale-%s-%s", ctx->names.alarm_prefix, direction, kind);
}

/* Every alarm name this concern may own (the DescribeAlarms filter). */
static json_t *all_alarm_names(struct app_ctx *ctx)
{
    json_t *names = json_array();
    char name[160];

    for (size_t i = 0; i < N_ALARM_KINDS; i++) {
        alarm_name(ctx, "out", alarm_kinds[i].kind, name, sizeof(name));
        json_array_append_new(names, json_string(name));
        alarm_name(ctx, "in", alarm_kinds[i].kind, name, sizeof(name));
        json_array_append_new(names, json_string(name));
    }
    return names;
}

/* The desired alarms as PutMetricAlarm inputs without tags, keyed by name. */
static json_t *desired_alarms(struct app_ctx *ctx, const char *topic)
{
    json_t *out = json_object();
    int stable = autoscaling_stable_slot(ctx);
    const char *service = autoscaling_service_name(ctx, stable);
    json_t *lb = json_object_get(ctx->resources, "loadbalancer");
    const char *tg =
        json_string_value(json_array_get(json_object_get(lb, "tgDimensions"), (size_t)stable));
    char name[160], desc[512];

    if (!app_spec_bool(ctx, "notifications.onScaling", true))
        return out;
    for (size_t i = 0; i < N_ALARM_KINDS; i++) {
        const struct alarm_kind *k = &alarm_kinds[i];
        const json_t *target = app_spec(ctx, k->spec_path);
        json_t *dims;
        if (!json_is_integer(target))
            continue;
        if (strcmp(k->kind, "requests") == 0) {
            if (tg == NULL && !ctx->plan)
                continue; /* the load balancer is not known yet */
            dims = json_pack("[{s:s, s:s}]", "Name", "TargetGroup", "Value", tg ? tg : NT_PENDING);
        } else {
            dims =
                json_pack("[{s:s, s:s}, {s:s, s:s}]", "Name", "ClusterName", "Value",
                          autoscaling_cluster_name(ctx), "Name", "ServiceName", "Value", service);
        }
        for (int dir = 0; dir < 2; dir++) {
            double t = (double)json_integer_value(target) * (dir ? IN_FRACTION : 1.0);
            int periods = dir ? IN_PERIODS : OUT_PERIODS;
            alarm_name(ctx, dir ? "in" : "out", k->kind, name, sizeof(name));
            snprintf(desc, sizeof(desc),
                     "aviary: application %s scales %s (service %s): %s %s %g for %d minutes",
                     ctx->names.app, dir ? "in" : "out", service, k->what, dir ? "below" : "above",
                     t, periods);
            json_object_set_new(
                out, name,
                json_pack("{s:s, s:s, s:b, s:[s], s:[s], s:[], s:s, s:s, s:s, s:O, s:i, s:i, "
                          "s:i, s:f, s:s, s:s}",
                          "AlarmName", name, "AlarmDescription", desc, "ActionsEnabled", 1,
                          "AlarmActions", topic, "OKActions", topic, "InsufficientDataActions",
                          "MetricName", k->metric, "Namespace", k->namespace, "Statistic",
                          k->statistic, "Dimensions", dims, "Period", ALARM_PERIOD,
                          "EvaluationPeriods", periods, "DatapointsToAlarm", periods, "Threshold",
                          t, "ComparisonOperator",
                          dir ? "LessThanThreshold" : "GreaterThanThreshold", "TreatMissingData",
                          "notBreaching"));
        }
        json_decref(dims);
    }
    return out;
}

/* Fields of `want` that differ in `have` ("Field" strings). */
static json_t *alarm_diff(const json_t *want, const json_t *have)
{
    json_t *changes = json_array(), *v;
    const char *k;

    json_object_foreach((json_t *)want, k, v)
    {
        const json_t *h = json_object_get(have, k);
        if (h == NULL && json_is_array(v) && json_array_size(v) == 0)
            continue;
        if (!same(v, h)) {
            char line[600];
            char *hs = h ? json_dumps(h, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            char *ws = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            snprintf(line, sizeof(line), "%s: %s -> %s", k, hs ? hs : "(none)", ws ? ws : "");
            free(hs);
            free(ws);
            json_array_append_new(changes, json_string(line));
        }
    }
    return changes;
}

/* True when the alarm carries this application's tags (a read). */
static int alarm_owned(struct app_ctx *ctx, const json_t *alarm, bool *owned)
{
    json_t *tags = NULL;
    int rc =
        app_read(ctx, "CloudWatch alarm", "cloudwatch", "ListTagsForResource",
                 json_pack("{s:s}", "ResourceARN", str_or(json_object_get(alarm, "AlarmArn"), "")),
                 &tags, NULL);
    *owned = rc == 0 && app_tags_owned(ctx, json_object_get(tags, "Tags"));
    json_decref(tags);
    return rc;
}

static json_t *describe_alarms(struct app_ctx *ctx)
{
    json_t *out = NULL, *found = json_object(), *a;
    size_t i;

    if (app_read(ctx, "CloudWatch alarm", "cloudwatch", "DescribeAlarms",
                 json_pack("{s:o}", "AlarmNames", all_alarm_names(ctx)), &out, NULL) != 0) {
        json_decref(found);
        return NULL;
    }
    json_array_foreach(json_object_get(out, "MetricAlarms"), i, a)
        json_object_set(found, str_or(json_object_get(a, "AlarmName"), ""), a);
    json_decref(out);
    return found;
}

/* The alarm's ARN: as AWS reports it, else built from the topic's account. */
static void alarm_arn(struct app_ctx *ctx, const char *topic, const json_t *have, const char *name,
                      char *out, size_t size)
{
    const char *arn = json_string_value(json_object_get(have, "AlarmArn"));
    char part[32] = "aws", acct[32] = "";

    if (arn != NULL) {
        snprintf(out, size, "%s", arn);
        return;
    }
    /* arn:PARTITION:sns:REGION:ACCOUNT:NAME */
    if (sscanf(topic, "arn:%31[^:]:sns:%*[^:]:%31[^:]:", part, acct) != 2) {
        snprintf(out, size, "%s", NT_PENDING);
        return;
    }
    snprintf(out, size, "arn:%s:cloudwatch:%s:%s:alarm:%s", part, aws_client_region(ctx->aws), acct,
             name);
}

static enum app_step converge_alarms(struct app_ctx *ctx, json_t *res, const char *topic)
{
    json_t *want = desired_alarms(ctx, topic), *have = describe_alarms(ctx);
    json_t *names = json_array(), *arns = json_array(), *gone = json_array(), *w, *h;
    enum app_step step = APP_STEP_FAILED;
    const char *name, *applied;
    char hash[17], arn[300];
    bool drift;

    if (have == NULL)
        goto out;
    digest(want, hash);
    applied = json_string_value(json_object_get(res, "appliedAlarms"));
    drift = applied != NULL && strcmp(applied, hash) == 0;
    json_object_foreach(want, name, w)
    {
        json_t *in, *changes;
        h = json_object_get(have, name);
        if (h == NULL) {
            app_note_change(ctx, "create", "CloudWatch alarm", name, NULL);
        } else {
            bool owned;
            changes = alarm_diff(w, h);
            if (json_array_size(changes) == 0) {
                json_decref(changes);
                goto record;
            }
            if (alarm_owned(ctx, h, &owned) != 0) {
                json_decref(changes);
                goto out;
            }
            if (!owned) {
                json_decref(changes);
                app_fail(ctx, true,
                         "CloudWatch alarm %s exists but does not carry the aviary tags of "
                         "application %s; aviary does not change it",
                         name, ctx->names.app);
                goto out;
            }
            if (drift) {
                char *what = json_dumps(changes, JSON_COMPACT);
                char label[200];
                snprintf(label, sizeof(label), "CloudWatch alarm %s", name);
                app_note_drift(ctx, label, what ? what : "settings");
                free(what);
            }
            app_note_change(ctx, "update", "CloudWatch alarm", name, changes);
        }
        in = json_deep_copy(w);
        json_object_set_new(in, "Tags", app_tags_list(ctx, "Key", "Value", NULL));
        if (app_write(ctx, "CloudWatch alarm", "cloudwatch", "PutMetricAlarm", in, NULL, NULL) < 0)
            goto out;
    record:
        alarm_arn(ctx, topic, h, name, arn, sizeof(arn));
        json_array_append_new(names, json_string(name));
        json_array_append_new(arns, json_string(arn));
    }
    /* Alarms of ours the spec no longer asks for (onScaling off, a policy
     * removed): only when tagged for this application. */
    json_object_foreach(have, name, h)
    {
        bool owned;
        if (json_object_get(want, name) != NULL)
            continue;
        if (alarm_owned(ctx, h, &owned) != 0)
            goto out;
        if (!owned)
            continue;
        app_note_change(ctx, "delete", "CloudWatch alarm", name, NULL);
        json_array_append_new(gone, json_string(name));
    }
    if (json_array_size(gone) > 0 &&
        app_write(ctx, "CloudWatch alarm", "cloudwatch", "DeleteAlarms",
                  json_pack("{s:O}", "AlarmNames", gone), NULL, NULL) < 0)
        goto out;
    json_object_set(res, "alarmNames", names);
    json_object_set(res, "alarmArns", arns);
    if (!ctx->plan)
        json_object_set_new(res, "appliedAlarms", json_string(hash));
    step = APP_STEP_READY;
out:
    json_decref(want);
    json_decref(have);
    json_decref(names);
    json_decref(arns);
    json_decref(gone);
    return step;
}

/* ---- converge / delete ------------------------------------------------------ */

enum app_step notifications_converge(struct app_ctx *ctx)
{
    json_t *res = app_resources(ctx, "notifications");
    enum app_step step;
    char arn[300];
    bool created;

    step = ensure_topic(ctx, res, arn, sizeof(arn), &created);
    if (step != APP_STEP_READY)
        return step;
    json_object_set_new(res, "topicArn", json_string(arn));
    step = converge_subscriptions(ctx, res, arn, created);
    if (step != APP_STEP_READY)
        return step;
    return converge_alarms(ctx, res, arn);
}

enum app_step notifications_delete(struct app_ctx *ctx)
{
    json_t *res = app_resources(ctx, "notifications");
    json_t *have = NULL, *gone = json_array(), *tags = NULL, *h;
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    const char *name;
    char arn[300];

    have = describe_alarms(ctx);
    if (have == NULL)
        goto out;
    json_object_foreach(have, name, h)
    {
        bool owned;
        if (alarm_owned(ctx, h, &owned) != 0)
            goto out;
        if (owned) {
            app_note_change(ctx, "delete", "CloudWatch alarm", name, NULL);
            json_array_append_new(gone, json_string(name));
        }
    }
    if (json_array_size(gone) > 0 &&
        app_write(ctx, "CloudWatch alarm", "cloudwatch", "DeleteAlarms",
                  json_pack("{s:O}", "AlarmNames", gone), NULL, &err) < 0 &&
        !code_is(&err, "ResourceNotFound", NULL))
        goto out;
    if (topic_arn(ctx, res, arn, sizeof(arn)) != 0)
        goto out;
    /* DeleteTopic also deletes every subscription, pending ones included. */
    if (app_read(ctx, "SNS topic", "sns", "ListTagsForResource",
                 json_pack("{s:s}", "ResourceArn", arn), &tags, &err) == 0) {
        if (app_tags_owned(ctx, json_object_get(tags, "Tags"))) {
            app_note_change(ctx, "delete", "SNS topic", arn, NULL);
            if (app_write(ctx, "SNS topic", "sns", "DeleteTopic",
                          json_pack("{s:s}", "TopicArn", arn), NULL, NULL) < 0)
                goto out;
        }
    } else if (!code_is(&err, "ResourceNotFound", "NotFound")) {
        goto out;
    }
    json_object_del(ctx->resources, "notifications");
    step = APP_STEP_READY;
out:
    json_decref(have);
    json_decref(gone);
    json_decref(tags);
    return step;
}

/* ---- alerts ------------------------------------------------------------------- */

int notifications_publish(struct app_ctx *ctx, const char *subject, const char *message)
{
    const char *arn = json_string_value(
        json_object_get(json_object_get(ctx->resources, "notifications"), "topicArn"));
    char subj[NOTIFICATIONS_SUBJECT_MAX + 1];
    size_t n = 0, len;
    json_t *in;
    char *msg;
    int rc;

    if (is_placeholder(arn)) {
        app_fail(ctx, false, "notifications: the SNS topic of %s is not known yet", ctx->names.app);
        return -1;
    }
    /* ASCII, no control characters, starting with a letter, digit or mark. */
    for (const char *p = subject ? subject : ""; *p && n < NOTIFICATIONS_SUBJECT_MAX; p++) {
        unsigned char c = (unsigned char)*p;
        if (n == 0 && (c <= ' ' || c >= 127))
            continue;
        subj[n++] = c < ' ' || c == 127 ? ' ' : c > 127 ? '?' : (char)c;
    }
    while (n > 0 && subj[n - 1] == ' ')
        n--;
    subj[n] = '\0';
    len = message ? strlen(message) : 0;
    if (len == 0) {
        msg = strdup("(no message)");
    } else {
        if (len > NT_MAX_MESSAGE - 1024)
            len = NT_MAX_MESSAGE - 1024;
        /* never cut a UTF-8 sequence in half */
        while (len > 0 && len < strlen(message) && ((unsigned char)message[len] & 0xC0) == 0x80)
            len--;
        msg = strndup(message, len);
    }
    if (msg == NULL) {
        app_fail(ctx, false, "notifications: out of memory");
        return -1;
    }
    in = json_pack("{s:s, s:s}", "TopicArn", arn, "Message", msg);
    if (n > 0)
        json_object_set_new(in, "Subject", json_string(subj));
    free(msg);
    rc = app_write(ctx, "SNS topic", "sns", "Publish", in, NULL, NULL);
    return rc < 0 ? -1 : 0;
}
