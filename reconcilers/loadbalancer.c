/* The Application's load balancer: an internet-facing ALB in the public
 * subnets, one target group per slot (a, b), and listeners whose default
 * action is a weighted forward to both (HTTP on 80, or HTTPS on 443 with 80
 * redirecting). Worker threads (one reconcile's context). */
#include "reconcilers/loadbalancer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define PLACEHOLDER "(known after apply)"

/* Waits: an ALB takes minutes to provision, a few seconds to disappear;
 * target groups stay "in use" for a moment after their listener is gone. */
#define LB_PROVISION_WAIT_MS 15000
#define LB_DELETE_WAIT_MS    5000
#define TG_IN_USE_WAIT_MS    5000

/* Deregistration delay of both target groups. AWS's default (300 s) keeps
 * a replaced task draining for five minutes, which slows every rollout step,
 * rollback and scale-in; model inference requests finish in well under a
 * second, so 30 s covers in-flight requests with a wide margin. */
#define TG_DEREGISTRATION_DELAY "30"
#define TG_ATTR_DEREGISTRATION  "deregistration_delay.timeout_seconds"

#define DEFAULT_SSL_POLICY "ELBSecurityPolicy-TLS13-1-2-2021-06" /* the CRD's default */

/* What AWS has for this application, found by derived name. */
struct observed {
    json_t *tg[2];     /* target groups of slots a and b, or NULL */
    json_t *lb;        /* the load balancer, or NULL */
    json_t *listeners; /* its listeners (array; empty without a load balancer) */
    json_t *tags;      /* {arn: [{Key, Value}]} of everything above (listeners: 80/443) */
};

/* What the manifest asks for. */
struct desired {
    const char *vpc, *sg;
    const json_t *subnets;
    const char *cert;   /* spec.tls.certificateArn or NULL */
    const char *policy; /* SSL policy */
    bool redirect;      /* port 80 redirects to 443 */
    int stable;         /* stable slot (0 = a, 1 = b) */
    int weight[2];      /* forward weight per slot */
    json_t *hc;         /* health check members of Create/ModifyTargetGroup */
};

static bool is_placeholder(const char *s)
{
    return s == NULL || strcmp(s, PLACEHOLDER) == 0;
}

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void observed_clear(struct observed *o)
{
    json_decref(o->tg[0]);
    json_decref(o->tg[1]);
    json_decref(o->lb);
    json_decref(o->listeners);
    json_decref(o->tags);
    memset(o, 0, sizeof(*o));
}

/* Forget an expected error (NotFound and the like) from app_read/app_write. */
static void clear_error(struct app_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->terminal = false;
}

/* Drift is an event outside plan mode; in a plan it is an update like any
 * other (app_note_drift records nothing there). */
static void note_drift(struct app_ctx *ctx, const char *resource, const char *what)
{
    if (ctx->plan)
        app_note_change(ctx, "update", resource, NULL, json_pack("[s]", what));
    else
        app_note_drift(ctx, resource, what);
}

/* The stable slot and canary weight from status.rollout: stableSlot "a"/"b"
 * (absent: a) and weight, the canary's share 0..100 (absent: 0). */
static void rollout_weights(struct app_ctx *ctx, int *stable, int *canary)
{
    const json_t *rollout = json_object_get(ctx->status, "rollout");
    const char *slot = str_at(rollout, "stableSlot");
    const json_t *w = json_object_get(rollout, "weight");
    double v = json_is_number(w) ? json_number_value(w) : 0;

    *stable = slot != NULL && strcmp(slot, "b") == 0 ? 1 : 0;
    *canary = v <= 0 ? 0 : v >= 100 ? 100 : (int)(v + 0.5);
}

/* The listener's default actions: one forward to both target groups with
 * the given weights. New reference. */
static json_t *forward_actions(const char *tga, const char *tgb, int wa, int wb)
{
    return json_pack("[{s:s, s:{s:[{s:s, s:i}, {s:s, s:i}], s:{s:b}}}]", "Type", "forward",
                     "ForwardConfig", "TargetGroups", "TargetGroupArn", tga, "Weight", wa,
                     "TargetGroupArn", tgb, "Weight", wb, "TargetGroupStickinessConfig", "Enabled",
                     0);
}

/* Port 80's default action with TLS: a permanent redirect to HTTPS on 443,
 * keeping host, path and query. New reference. */
static json_t *redirect_actions(void)
{
    return json_pack("[{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}}]", "Type", "redirect",
                     "RedirectConfig", "Protocol", "HTTPS", "Port", "443", "Host", "#{host}",
                     "Path", "/#{path}", "Query", "#{query}", "StatusCode", "HTTP_301");
}

/* Weight of target group `arn` in a forward action, or -1 when absent. A
 * plain TargetGroupArn forward sends everything to that group. */
static long forward_weight(const json_t *action, const char *arn)
{
    const json_t *groups =
        json_object_get(json_object_get(action, "ForwardConfig"), "TargetGroups");
    const json_t *g;
    size_t i;

    if (json_array_size(groups) == 0) {
        const char *single = str_at(action, "TargetGroupArn");
        return single != NULL && strcmp(single, arn) == 0 ? 100 : -1;
    }
    json_array_foreach(groups, i, g)
    {
        const char *a = str_at(g, "TargetGroupArn");
        if (a != NULL && strcmp(a, arn) == 0) {
            const json_t *w = json_object_get(g, "Weight");
            return json_is_integer(w) ? (long)json_integer_value(w) : 1; /* AWS's default */
        }
    }
    return -1;
}

static size_t forward_groups(const json_t *action)
{
    const json_t *groups =
        json_object_get(json_object_get(action, "ForwardConfig"), "TargetGroups");
    return json_array_size(groups) > 0 ? json_array_size(groups)
                                       : (str_at(action, "TargetGroupArn") != NULL ? 1 : 0);
}

/* A redirect member as AWS reports it, with AWS's defaults for absent ones. */
static const char *redirect_member(const json_t *cfg, const char *key)
{
    const char *v = str_at(cfg, key);

    if (v != NULL)
        return v;
    if (strcmp(key, "Host") == 0)
        return "#{host}";
    if (strcmp(key, "Path") == 0)
        return "/#{path}";
    if (strcmp(key, "Query") == 0)
        return "#{query}";
    if (strcmp(key, "Port") == 0)
        return "#{port}";
    if (strcmp(key, "Protocol") == 0)
        return "#{protocol}";
    return "";
}

/* True when a listener's default actions (as DescribeListeners reports
 * them) do what `want` (from forward_actions/redirect_actions) says. AWS's
 * normalisations (a single-group forward's TargetGroupArn, absent stickiness
 * or redirect members) do not count as differences. */
static bool actions_match(const json_t *have, const json_t *want)
{
    const json_t *h = json_array_get(have, 0), *w = json_array_get(want, 0);
    const char *type = str_at(w, "Type");

    if (json_array_size(have) != 1 || type == NULL || str_at(h, "Type") == NULL ||
        strcmp(str_at(h, "Type"), type) != 0)
        return false;
    if (strcmp(type, "forward") == 0) {
        const json_t *groups = json_object_get(json_object_get(w, "ForwardConfig"), "TargetGroups");
        const json_t *g;
        size_t i;

        if (json_is_true(json_object_get(
                json_object_get(json_object_get(h, "ForwardConfig"), "TargetGroupStickinessConfig"),
                "Enabled")))
            return false;
        if (forward_groups(h) != json_array_size(groups))
            return false;
        json_array_foreach(groups, i, g)
        {
            if (forward_weight(h, str_at(g, "TargetGroupArn")) !=
                (long)json_integer_value(json_object_get(g, "Weight")))
                return false;
        }
        return true;
    }
    if (strcmp(type, "redirect") == 0) {
        static const char *const keys[] = {"Protocol", "Port",  "Host",
                                           "Path",     "Query", "StatusCode"};
        const json_t *hc = json_object_get(h, "RedirectConfig");
        const json_t *wc = json_object_get(w, "RedirectConfig");

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            if (strcmp(redirect_member(hc, keys[i]), redirect_member(wc, keys[i])) != 0)
                return false;
        }
        return true;
    }
    return false;
}

/* "forward a=90 b=10" / "redirect HTTPS:443" / "fixed-response" for events. */
static void describe_actions(const json_t *actions, const char *tg[2], char *out, size_t len)
{
    const json_t *a = json_array_get(actions, 0);
    const char *type = str_at(a, "Type");

    if (type == NULL) {
        snprintf(out, len, "none");
    } else if (strcmp(type, "forward") == 0) {
        /* Shares of the traffic in percent (a lone target group of weight 1
         * gets everything). */
        const json_t *groups = json_object_get(json_object_get(a, "ForwardConfig"), "TargetGroups");
        long wa = is_placeholder(tg[0]) ? -1 : forward_weight(a, tg[0]);
        long wb = is_placeholder(tg[1]) ? -1 : forward_weight(a, tg[1]);
        long total = 0;
        size_t others = forward_groups(a) - (wa >= 0) - (wb >= 0), i;
        const json_t *g;

        json_array_foreach(groups, i, g)
        {
            const json_t *w = json_object_get(g, "Weight");
            total += json_is_integer(w) ? (long)json_integer_value(w) : 1;
        }
        if (json_array_size(groups) == 0)
            total = 100;
        wa = wa < 0 || total == 0 ? 0 : (wa * 100 + total / 2) / total;
        wb = wb < 0 || total == 0 ? 0 : (wb * 100 + total / 2) / total;
        snprintf(out, len, "forward a=%ld b=%ld%s", wa, wb,
                 others > 0 ? " +other target groups" : "");
    } else if (strcmp(type, "redirect") == 0) {
        const json_t *c = json_object_get(a, "RedirectConfig");
        snprintf(out, len, "redirect %s:%s", redirect_member(c, "Protocol"),
                 redirect_member(c, "Port"));
    } else {
        snprintf(out, len, "%s", type);
    }
    if (json_array_size(actions) > 1)
        strncat(out, " (+more actions)", len - strlen(out) - 1);
}

/* ---- observe ------------------------------------------------------------ */

/* Target groups of both slots: one DescribeTargetGroups call with both
 * names; when one is missing AWS fails the whole call, so each name is then
 * asked for alone (only while creating or deleting). */
static int observe_target_groups(struct app_ctx *ctx, struct observed *o)
{
    struct aws_error err;
    json_t *out = NULL, *tg;
    size_t i;

    if (app_read(ctx, "target groups", "elbv2", "DescribeTargetGroups",
                 json_pack("{s:[s, s]}", "Names", ctx->names.target_group[0],
                           ctx->names.target_group[1]),
                 &out, &err) != 0) {
        if (strcmp(err.code, "TargetGroupNotFound") != 0)
            return -1;
        clear_error(ctx);
        for (int s = 0; s < 2; s++) {
            if (app_read(ctx, "target group", "elbv2", "DescribeTargetGroups",
                         json_pack("{s:[s]}", "Names", ctx->names.target_group[s]), &out,
                         &err) != 0) {
                if (strcmp(err.code, "TargetGroupNotFound") != 0)
                    return -1;
                clear_error(ctx);
                continue;
            }
            o->tg[s] = json_incref(json_array_get(json_object_get(out, "TargetGroups"), 0));
            json_decref(out);
            out = NULL;
        }
        return 0;
    }
    json_array_foreach(json_object_get(out, "TargetGroups"), i, tg)
    {
        for (int s = 0; s < 2; s++) {
            const char *name = str_at(tg, "TargetGroupName");
            if (name != NULL && strcmp(name, ctx->names.target_group[s]) == 0 && o->tg[s] == NULL)
                o->tg[s] = json_incref(tg);
        }
    }
    json_decref(out);
    return 0;
}

static int observe_load_balancer(struct app_ctx *ctx, struct observed *o)
{
    struct aws_error err;
    json_t *out = NULL;

    o->listeners = json_array();
    if (app_read(ctx, "load balancer", "elbv2", "DescribeLoadBalancers",
                 json_pack("{s:[s]}", "Names", ctx->names.load_balancer), &out, &err) != 0) {
        if (strcmp(err.code, "LoadBalancerNotFound") != 0)
            return -1;
        clear_error(ctx);
        return 0;
    }
    o->lb = json_incref(json_array_get(json_object_get(out, "LoadBalancers"), 0));
    json_decref(out);
    out = NULL;
    if (o->lb == NULL)
        return 0;
    if (app_read(ctx, "listeners", "elbv2", "DescribeListeners",
                 json_pack("{s:s}", "LoadBalancerArn", str_at(o->lb, "LoadBalancerArn")), &out,
                 &err) != 0) {
        if (strcmp(err.code, "LoadBalancerNotFound") != 0)
            return -1;
        clear_error(ctx); /* deleted meanwhile */
        json_decref(o->lb);
        o->lb = NULL;
        return 0;
    }
    json_array_extend(o->listeners, json_object_get(out, "Listeners"));
    json_decref(out);
    return 0;
}

static const json_t *listener_on(const struct observed *o, int port)
{
    const json_t *ls;
    size_t i;

    json_array_foreach(o->listeners, i, ls)
    {
        if (json_integer_value(json_object_get(ls, "Port")) == port)
            return ls;
    }
    return NULL;
}

/* One DescribeTags call for everything observed (at most 5 ARNs). */
static int observe_tags(struct app_ctx *ctx, struct observed *o)
{
    json_t *arns = json_array(), *out = NULL, *d;
    static const int ports[] = {80, 443};
    size_t i;
    int rc = -1;

    o->tags = json_object();
    for (int s = 0; s < 2; s++) {
        if (o->tg[s] != NULL)
            json_array_append_new(arns, json_string(str_at(o->tg[s], "TargetGroupArn")));
    }
    if (o->lb != NULL)
        json_array_append_new(arns, json_string(str_at(o->lb, "LoadBalancerArn")));
    for (i = 0; i < 2; i++) {
        const json_t *ls = listener_on(o, ports[i]);
        if (ls != NULL)
            json_array_append_new(arns, json_string(str_at(ls, "ListenerArn")));
    }
    if (json_array_size(arns) == 0) {
        rc = 0;
        goto out;
    }
    if (app_read(ctx, "load balancer tags", "elbv2", "DescribeTags",
                 json_pack("{s:O}", "ResourceArns", arns), &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "TagDescriptions"), i, d)
    {
        const char *arn = str_at(d, "ResourceArn");
        if (arn != NULL)
            json_object_set(o->tags, arn, json_object_get(d, "Tags"));
    }
    rc = 0;
out:
    json_decref(arns);
    json_decref(out);
    return rc;
}

static bool owned(struct app_ctx *ctx, const struct observed *o, const char *arn)
{
    return arn != NULL && app_tags_owned(ctx, json_object_get(o->tags, arn));
}

static void fail_not_owned(struct app_ctx *ctx, const char *what, const char *name)
{
    app_fail(ctx, false,
             "%s %s exists without the aviary tags of application %s: aviary does not modify "
             "resources it did not create (delete or rename it)",
             what, name, ctx->names.app);
}

/* Everything found by name that converge would change must carry this
 * application's tags; checked before any change so a conflict leaves AWS
 * untouched. Listeners: the ports the spec wants. */
static int check_owned(struct app_ctx *ctx, const struct observed *o, bool https)
{
    char what[64];

    for (int s = 0; s < 2; s++) {
        if (o->tg[s] != NULL && !owned(ctx, o, str_at(o->tg[s], "TargetGroupArn"))) {
            fail_not_owned(ctx, "target group", ctx->names.target_group[s]);
            return -1;
        }
    }
    if (o->lb != NULL && !owned(ctx, o, str_at(o->lb, "LoadBalancerArn"))) {
        fail_not_owned(ctx, "load balancer", ctx->names.load_balancer);
        return -1;
    }
    static const int ports[] = {80, 443};
    for (size_t i = 0; i < 2; i++) {
        int port = ports[i];
        const json_t *ls = listener_on(o, port);
        if (ls == NULL || (port == 443 && !https) || owned(ctx, o, str_at(ls, "ListenerArn")))
            continue;
        snprintf(what, sizeof(what), "listener :%d of", port);
        fail_not_owned(ctx, what, ctx->names.load_balancer);
        return -1;
    }
    return 0;
}

/* ---- target groups ---------------------------------------------------------- */

/* The health check members for Create/ModifyTargetGroup from spec.healthCheck
 * (CRD defaults as fallbacks). New reference. */
static json_t *desired_health_check(struct app_ctx *ctx)
{
    return json_pack(
        "{s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:{s:s}}", "HealthCheckProtocol", "HTTP",
        "HealthCheckPort", "traffic-port", "HealthCheckEnabled", 1, "HealthCheckPath",
        app_spec_str(ctx, "healthCheck.path", "/"), "HealthCheckIntervalSeconds",
        (json_int_t)app_spec_seconds(ctx, "healthCheck.interval", 15), "HealthCheckTimeoutSeconds",
        (json_int_t)app_spec_seconds(ctx, "healthCheck.timeout", 5), "HealthyThresholdCount",
        app_spec_int(ctx, "healthCheck.healthyThreshold", 3), "UnhealthyThresholdCount",
        app_spec_int(ctx, "healthCheck.unhealthyThreshold", 3), "Matcher", "HttpCode",
        app_spec_str(ctx, "healthCheck.matcher", "200-399"));
}

/* "Member: old -> new" for each health check member that differs; an empty
 * array when the target group matches. New reference. */
static json_t *health_check_changes(const json_t *tg, const json_t *want)
{
    json_t *changes = json_array();
    const char *key;
    json_t *w;

    json_object_foreach((json_t *)want, key, w)
    {
        const json_t *h = json_object_get(tg, key);
        char line[512], *hs, *ws;

        if (strcmp(key, "Matcher") == 0) {
            h = json_object_get(h, "HttpCode");
            w = json_object_get(w, "HttpCode");
        }
        if (h != NULL && json_equal((json_t *)h, w))
            continue;
        hs = h ? json_dumps(h, JSON_ENCODE_ANY) : NULL;
        ws = json_dumps(w, JSON_ENCODE_ANY);
        snprintf(line, sizeof(line), "%s: %s -> %s", key, hs ? hs : "(none)", ws ? ws : "?");
        free(hs);
        free(ws);
        json_array_append_new(changes, json_string(line));
    }
    return changes;
}

/* Sets the deregistration delay unless the target group is known to have it
 * (status.resources.loadbalancer.attributesVerified lists the ARNs checked
 * since they were created, so a converged resync reads no attributes). */
static int converge_tg_attributes(struct app_ctx *ctx, const char *arn, bool created)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    json_t *verified = json_object_get(r, "attributesVerified");
    json_t *out = NULL, *a;
    char resource[96];
    bool ok = false;
    size_t i;

    json_array_foreach(verified, i, a)
    {
        if (json_string_value(a) != NULL && strcmp(json_string_value(a), arn) == 0)
            return 0;
    }
    snprintf(resource, sizeof(resource), "target group %s", arn);
    if (!created && !is_placeholder(arn)) {
        if (app_read(ctx, resource, "elbv2", "DescribeTargetGroupAttributes",
                     json_pack("{s:s}", "TargetGroupArn", arn), &out, NULL) != 0)
            return -1;
        json_array_foreach(json_object_get(out, "Attributes"), i, a)
        {
            if (strcmp(str_at(a, "Key") ? str_at(a, "Key") : "", TG_ATTR_DEREGISTRATION) == 0)
                ok = str_at(a, "Value") != NULL &&
                     strcmp(str_at(a, "Value"), TG_DEREGISTRATION_DELAY) == 0;
        }
        json_decref(out);
    }
    if (!ok && app_write(ctx, resource, "elbv2", "ModifyTargetGroupAttributes",
                         json_pack("{s:s, s:[{s:s, s:s}]}", "TargetGroupArn", arn, "Attributes",
                                   "Key", TG_ATTR_DEREGISTRATION, "Value", TG_DEREGISTRATION_DELAY),
                         NULL, NULL) < 0)
        return -1;
    if (!ctx->plan) {
        if (!json_is_array(verified)) {
            verified = json_array();
            json_object_set_new(r, "attributesVerified", verified);
        }
        json_array_append_new(verified, json_string(arn));
    }
    return 0;
}

/* Creates the slot's target group or brings its health check back to the
 * spec. *arn receives its ARN (PLACEHOLDER in plan mode). */
static int converge_target_group(struct app_ctx *ctx, struct observed *o, const struct desired *d,
                                 int slot, const char **arn)
{
    const char *name = ctx->names.target_group[slot];
    json_t *in, *out = NULL, *changes = NULL;
    char resource[96];
    int rc = -1;

    snprintf(resource, sizeof(resource), "target group %s", name);
    if (o->tg[slot] == NULL) {
        in = json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "Name", name, "Protocol", "HTTP", "Port",
                       app_spec_int(ctx, "port", 80), "VpcId", d->vpc, "TargetType", "ip", "Tags",
                       app_tags_list(ctx, "Key", "Value", APP_TAG_SLOT, app_slot_name(slot), NULL));
        json_object_update(in, d->hc);
        rc = app_write(ctx, resource, "elbv2", "CreateTargetGroup", in, &out, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "target group", name, NULL);
        if (rc == 1) {
            *arn = PLACEHOLDER;
        } else {
            o->tg[slot] = json_incref(json_array_get(json_object_get(out, "TargetGroups"), 0));
            *arn = str_at(o->tg[slot], "TargetGroupArn");
            if (*arn == NULL) {
                app_fail(ctx, false, "%s: CreateTargetGroup answered without an ARN", resource);
                rc = -1;
                goto out;
            }
        }
        rc = converge_tg_attributes(ctx, *arn, true);
        goto out;
    }
    /* Port and protocol are fixed at creation; a changed spec.port needs no
     * new target group: ECS registers each task with its container port,
     * and the health check probes the traffic port of each target. */
    *arn = str_at(o->tg[slot], "TargetGroupArn");
    changes = health_check_changes(o->tg[slot], d->hc);
    if (json_array_size(changes) > 0) {
        const json_t *last = json_object_get(app_resources(ctx, "loadbalancer"), "healthCheck");
        bool drift = last != NULL && json_equal((json_t *)last, d->hc);
        char what[512];
        size_t n = 0, i;
        json_t *c;

        in = json_pack("{s:s}", "TargetGroupArn", *arn);
        json_object_update(in, d->hc);
        if (app_write(ctx, resource, "elbv2", "ModifyTargetGroup", in, NULL, NULL) < 0)
            goto out;
        if (drift) {
            what[0] = '\0';
            json_array_foreach(changes, i, c)
            {
                n += (size_t)snprintf(what + n, n < sizeof(what) ? sizeof(what) - n : 0, "%s%s",
                                      i ? "; " : "", json_string_value(c));
            }
            note_drift(ctx, resource, what);
        } else {
            app_note_change(ctx, "update", "target group", name, json_incref(changes));
        }
    }
    rc = converge_tg_attributes(ctx, *arn, false);
out:
    json_decref(out);
    json_decref(changes);
    return rc;
}

/* ---- listeners ---------------------------------------------------------------- */

/* Sets the forward weights on `n` listeners (one ModifyListener each) and
 * reads them back in one DescribeListeners call. */
static int apply_weights(struct app_ctx *ctx, const char *const *arns, size_t n, const char *tg[2],
                         const int weight[2])
{
    json_t *want = forward_actions(tg[0], tg[1], weight[0], weight[1]);
    json_t *list = json_array(), *out = NULL, *ls;
    char resource[128];
    size_t i;
    int rc = -1;

    for (i = 0; i < n; i++) {
        snprintf(resource, sizeof(resource), "listener %s", arns[i]);
        if (app_write(ctx, resource, "elbv2", "ModifyListener",
                      json_pack("{s:s, s:O}", "ListenerArn", arns[i], "DefaultActions", want), NULL,
                      NULL) < 0)
            goto out;
        json_array_append_new(list, json_string(arns[i]));
    }
    if (ctx->plan || n == 0) {
        rc = 0;
        goto out;
    }
    if (app_read(ctx, "listeners", "elbv2", "DescribeListeners",
                 json_pack("{s:O}", "ListenerArns", list), &out, NULL) != 0)
        goto out;
    if (json_array_size(json_object_get(out, "Listeners")) != n) {
        app_fail(ctx, false, "listeners: DescribeListeners returned %zu of %zu listeners",
                 json_array_size(json_object_get(out, "Listeners")), n);
        goto out;
    }
    json_array_foreach(json_object_get(out, "Listeners"), i, ls)
    {
        if (!actions_match(json_object_get(ls, "DefaultActions"), want)) {
            char seen[160];
            describe_actions(json_object_get(ls, "DefaultActions"), tg, seen, sizeof(seen));
            app_fail(ctx, false,
                     "listener %s: weights read back as %s after ModifyListener set a=%d b=%d",
                     str_at(ls, "ListenerArn"), seen, weight[0], weight[1]);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(want);
    json_decref(list);
    json_decref(out);
    return rc;
}

static void record_weights(struct app_ctx *ctx, const int weight[2])
{
    if (ctx->plan)
        return;
    json_object_set_new(app_resources(ctx, "loadbalancer"), "weights",
                        json_pack("{s:i, s:i}", "a", weight[0], "b", weight[1]));
}

int loadbalancer_set_weights(struct app_ctx *ctx, int stable_slot, int canary_weight)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    const json_t *tgs = json_object_get(r, "targetGroupArns");
    const char *tg[2] = {json_string_value(json_array_get(tgs, 0)),
                         json_string_value(json_array_get(tgs, 1))};
    const char *http = str_at(r, "httpListenerArn"), *https = str_at(r, "httpsListenerArn");
    const char *arns[2];
    int weight[2];
    size_t n = 0;

    if (stable_slot < 0 || stable_slot > 1 || canary_weight < 0 || canary_weight > 100) {
        app_fail(ctx, false,
                 "load balancer weights: stable slot %d / canary weight %d out of range",
                 stable_slot, canary_weight);
        return -1;
    }
    if (tg[0] == NULL || tg[1] == NULL || (http == NULL && https == NULL)) {
        app_fail(ctx, false,
                 "load balancer %s: listeners and target groups are not converged yet (no ARNs "
                 "recorded)",
                 ctx->names.load_balancer);
        return -1;
    }
    weight[stable_slot] = 100 - canary_weight;
    weight[1 - stable_slot] = canary_weight;
    if (https != NULL)
        arns[n++] = https;
    /* With TLS and redirectHttp, port 80 redirects and carries no weights. */
    if (http != NULL && !(app_spec_str(ctx, "tls.certificateArn", NULL) != NULL &&
                          app_spec_bool(ctx, "tls.redirectHttp", true)))
        arns[n++] = http;
    if (apply_weights(ctx, arns, n, tg, weight) != 0)
        return -1;
    record_weights(ctx, weight);
    return 0;
}

/* The blue/green test listener: HTTP on `port`, forwarding only to `slot`'s
 * target group (see loadbalancer.h). */
int loadbalancer_set_test_listener(struct app_ctx *ctx, int slot, int port)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    const json_t *tgs = json_object_get(r, "targetGroupArns");
    const char *tg[2] = {json_string_value(json_array_get(tgs, 0)),
                         json_string_value(json_array_get(tgs, 1))};
    const char *lb = str_at(r, "loadBalancerArn"), *arn = NULL;
    json_t *out = NULL, *tags = NULL, *want = NULL, *created = NULL;
    const json_t *ls, *found = NULL;
    struct aws_error err;
    char resource[64];
    size_t i;
    int rc = -1;

    snprintf(resource, sizeof(resource), "test listener :%d", port);
    if (port < 1 || port > 65535 || port == 80 || port == 443) {
        app_fail(ctx, true, "%s: the test port must be 1-65535 and not 80 or 443", resource);
        return -1;
    }
    if (is_placeholder(lb) || is_placeholder(tg[0]) || is_placeholder(tg[1])) {
        app_fail(ctx, false, "%s: the load balancer and target groups are not converged yet",
                 resource);
        return -1;
    }
    if (app_read(ctx, "listeners", "elbv2", "DescribeListeners",
                 json_pack("{s:s}", "LoadBalancerArn", lb), &out, NULL) != 0)
        goto out;
    json_array_foreach(json_object_get(out, "Listeners"), i, ls)
    {
        if (json_integer_value(json_object_get(ls, "Port")) == port)
            found = ls;
    }
    if (found != NULL) {
        arn = str_at(found, "ListenerArn");
        if (app_read(ctx, resource, "elbv2", "DescribeTags",
                     json_pack("{s:[s]}", "ResourceArns", arn), &tags, NULL) != 0)
            goto out;
        if (!app_tags_owned(
                ctx, json_object_get(json_array_get(json_object_get(tags, "TagDescriptions"), 0),
                                     "Tags"))) {
            fail_not_owned(ctx, resource, ctx->names.load_balancer);
            goto out;
        }
    }
    if (slot < 0) {
        if (found != NULL) {
            app_note_change(ctx, "delete", "listener", resource, NULL);
            if (app_write(ctx, resource, "elbv2", "DeleteListener",
                          json_pack("{s:s}", "ListenerArn", arn), NULL, &err) < 0) {
                if (strcmp(err.code, "ListenerNotFound") != 0)
                    goto out;
                clear_error(ctx);
            }
        }
        if (!ctx->plan) {
            json_object_del(r, "testListenerArn");
            json_object_del(r, "testListenerSlot");
        }
        rc = 0;
        goto out;
    }
    if (slot > 1) {
        app_fail(ctx, false, "%s: slot %d out of range", resource, slot);
        goto out;
    }
    want = forward_actions(tg[0], tg[1], slot == 0 ? 100 : 0, slot == 1 ? 100 : 0);
    if (found == NULL) {
        app_note_change(ctx, "create", "listener", resource,
                        json_pack("[s]", slot == 0 ? "forward a=100 b=0" : "forward a=0 b=100"));
        if (app_write(ctx, resource, "elbv2", "CreateListener",
                      json_pack("{s:s, s:s, s:i, s:O, s:o}", "LoadBalancerArn", lb, "Protocol",
                                "HTTP", "Port", port, "DefaultActions", want, "Tags",
                                app_tags_list(ctx, "Key", "Value", NULL)),
                      &created, NULL) < 0)
            goto out;
        arn = str_at(json_array_get(json_object_get(created, "Listeners"), 0), "ListenerArn");
    } else if (!actions_match(json_object_get(found, "DefaultActions"), want)) {
        app_note_change(ctx, "update", "listener", resource,
                        json_pack("[s]", slot == 0 ? "forward a=100 b=0" : "forward a=0 b=100"));
        if (app_write(ctx, resource, "elbv2", "ModifyListener",
                      json_pack("{s:s, s:O}", "ListenerArn", arn, "DefaultActions", want), NULL,
                      NULL) < 0)
            goto out;
    }
    if (!ctx->plan && arn != NULL) {
        json_object_set_new(r, "testListenerArn", json_string(arn));
        json_object_set_new(r, "testListenerSlot", json_string(app_slot_name(slot)));
    }
    rc = 0;
out:
    json_decref(out);
    json_decref(tags);
    json_decref(want);
    json_decref(created);
    return rc;
}

/* One listener as the spec wants it. */
struct listener_want {
    int port;
    const char *protocol;
    const char *cert; /* HTTPS only */
    json_t *actions;  /* owned */
    bool forward;
};

/* Differences of an existing listener other than its default actions
 * ("Protocol: HTTP -> HTTPS", certificate, SSL policy). New reference. */
static json_t *listener_shape_changes(const json_t *ls, const struct listener_want *w,
                                      const struct desired *d)
{
    json_t *changes = json_array();
    const char *proto = str_at(ls, "Protocol");
    const char *cert =
        str_at(json_array_get(json_object_get(ls, "Certificates"), 0), "CertificateArn");
    const char *policy = str_at(ls, "SslPolicy");
    char line[600];

    if (proto == NULL || strcmp(proto, w->protocol) != 0) {
        snprintf(line, sizeof(line), "Protocol: %s -> %s", proto ? proto : "(none)", w->protocol);
        json_array_append_new(changes, json_string(line));
    }
    if (w->cert != NULL) {
        if (cert == NULL || strcmp(cert, w->cert) != 0) {
            snprintf(line, sizeof(line), "Certificate: %s -> %s", cert ? cert : "(none)", w->cert);
            json_array_append_new(changes, json_string(line));
        }
        if (policy == NULL || strcmp(policy, d->policy) != 0) {
            snprintf(line, sizeof(line), "SslPolicy: %s -> %s", policy ? policy : "(none)",
                     d->policy);
            json_array_append_new(changes, json_string(line));
        }
    }
    return changes;
}

static void listener_resource(const struct listener_want *w, const struct app_ctx *ctx, char *out,
                              size_t len)
{
    if (w->cert != NULL)
        snprintf(out, len, "%s listener :%d of %s (certificate %s)", w->protocol, w->port,
                 ctx->names.load_balancer, w->cert);
    else
        snprintf(out, len, "%s listener :%d of %s", w->protocol, w->port, ctx->names.load_balancer);
}

/* Full listener parameters (for CreateListener with LoadBalancerArn, or
 * ModifyListener with ListenerArn). New reference. */
static json_t *listener_params(const struct listener_want *w, const struct desired *d)
{
    json_t *in = json_pack("{s:s, s:i, s:O}", "Protocol", w->protocol, "Port", w->port,
                           "DefaultActions", w->actions);
    if (w->cert != NULL) {
        json_object_set_new(in, "Certificates", json_pack("[{s:s}]", "CertificateArn", w->cert));
        json_object_set_new(in, "SslPolicy", json_string(d->policy));
    }
    return in;
}

/* The TLS settings the listeners were last converged to ("" without TLS),
 * to tell drift (AWS differs from what aviary set) from a manifest change. */
static void tls_key(const struct desired *d, char *out, size_t len)
{
    if (d->cert == NULL)
        snprintf(out, len, "%s", "");
    else
        snprintf(out, len, "%s %s %s", d->cert, d->policy, d->redirect ? "redirect" : "forward");
}

static bool tls_unchanged(struct app_ctx *ctx, const struct desired *d)
{
    const char *last = str_at(app_resources(ctx, "loadbalancer"), "appliedTls");
    char now[600];

    tls_key(d, now, sizeof(now));
    return last != NULL && strcmp(last, now) == 0;
}

/* Creates or corrects one listener; its ARN goes to arn[ARN_MAX]. A forward
 * listener whose only difference is the forward action is left to
 * apply_weights: it is appended to fwd[] (*n_fwd). */
#define ARN_MAX 256
struct fwd_item {
    const char *arn; /* the caller's buffer */
    char resource[400];
    char change[400];
};

static int converge_listener(struct app_ctx *ctx, const struct observed *o, const char *lb_arn,
                             const struct desired *d, const char *tg[2],
                             const struct listener_want *w, char *arn, struct fwd_item *fwd,
                             size_t *n_fwd)
{
    const json_t *ls = listener_on(o, w->port);
    json_t *in, *out = NULL, *changes = NULL;
    char resource[400], was[160], now[160], line[400];
    int rc = -1;

    listener_resource(w, ctx, resource, sizeof(resource));
    if (ls == NULL) {
        in = listener_params(w, d);
        json_object_set_new(in, "LoadBalancerArn", json_string(lb_arn));
        json_object_set_new(in, "Tags", app_tags_list(ctx, "Key", "Value", NULL));
        rc = app_write(ctx, resource, "elbv2", "CreateListener", in, &out, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "listener", resource, NULL);
        if (rc == 1) {
            snprintf(arn, ARN_MAX, "%s", PLACEHOLDER);
        } else {
            const char *a =
                str_at(json_array_get(json_object_get(out, "Listeners"), 0), "ListenerArn");
            if (a == NULL) {
                app_fail(ctx, false, "%s: CreateListener answered without an ARN", resource);
                rc = -1;
                goto out;
            }
            snprintf(arn, ARN_MAX, "%s", a);
        }
        rc = 0;
        goto out;
    }
    snprintf(arn, ARN_MAX, "%s", str_at(ls, "ListenerArn") ? str_at(ls, "ListenerArn") : "");
    changes = listener_shape_changes(ls, w, d);
    describe_actions(json_object_get(ls, "DefaultActions"), tg, was, sizeof(was));
    describe_actions(w->actions, tg, now, sizeof(now));
    snprintf(line, sizeof(line), "DefaultActions: %s -> %s", was, now);
    if (json_array_size(changes) > 0) {
        /* Protocol, certificate or policy: one ModifyListener with
         * everything (the forward weights included). */
        if (!actions_match(json_object_get(ls, "DefaultActions"), w->actions))
            json_array_append_new(changes, json_string(line));
        in = listener_params(w, d);
        json_object_set_new(in, "ListenerArn", json_string(arn));
        if (app_write(ctx, resource, "elbv2", "ModifyListener", in, NULL, NULL) < 0)
            goto out;
        if (tls_unchanged(ctx, d)) {
            char *text = json_dumps(changes, JSON_COMPACT);
            note_drift(ctx, resource, text ? text : "settings");
            free(text);
        } else {
            app_note_change(ctx, "update", "listener", resource, json_incref(changes));
        }
    } else if (!actions_match(json_object_get(ls, "DefaultActions"), w->actions)) {
        if (w->forward) {
            struct fwd_item *item = &fwd[(*n_fwd)++];
            item->arn = arn;
            snprintf(item->resource, sizeof(item->resource), "%s", resource);
            snprintf(item->change, sizeof(item->change), "%s", line);
        } else {
            if (app_write(ctx, resource, "elbv2", "ModifyListener",
                          json_pack("{s:s, s:O}", "ListenerArn", arn, "DefaultActions", w->actions),
                          NULL, NULL) < 0)
                goto out;
            if (tls_unchanged(ctx, d))
                note_drift(ctx, resource, line);
            else
                app_note_change(ctx, "update", "listener", resource, json_pack("[s]", line));
        }
    }
    rc = 0;
out:
    json_decref(out);
    json_decref(changes);
    return rc;
}

/* ---- converge ------------------------------------------------------------------ */

/* Fills d from the spec, status.rollout and the network concern's records.
 * Returns 0, or -1 (ctx->error) when a prerequisite is missing or the
 * certificate cannot work. */
static int desired_init(struct app_ctx *ctx, struct desired *d)
{
    json_t *net = app_resources(ctx, "network");
    int canary;

    memset(d, 0, sizeof(*d));
    d->vpc = str_at(net, "vpcId");
    d->sg = str_at(net, "lbSecurityGroup");
    d->subnets = json_object_get(net, "publicSubnets");
    if (d->vpc == NULL || d->sg == NULL || json_array_size(d->subnets) < 2) {
        app_fail(ctx, false,
                 "load balancer %s: the network has not recorded vpcId, publicSubnets and "
                 "lbSecurityGroup",
                 ctx->names.load_balancer);
        return -1;
    }
    d->cert = app_spec_str(ctx, "tls.certificateArn", NULL);
    d->policy = app_spec_str(ctx, "tls.sslPolicy", DEFAULT_SSL_POLICY);
    d->redirect = app_spec_bool(ctx, "tls.redirectHttp", true);
    if (d->cert != NULL) {
        /* arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID: an ALB can only use
         * a certificate of its own region. */
        char region[64] = "";
        const char *p = d->cert;
        for (int i = 0; i < 3 && p != NULL; i++) {
            p = strchr(p, ':');
            p = p ? p + 1 : NULL;
        }
        if (p != NULL)
            snprintf(region, sizeof(region), "%.*s", (int)strcspn(p, ":"), p);
        if (strncmp(d->cert, "arn:", 4) != 0 || strstr(d->cert, ":acm:") == NULL ||
            region[0] == '\0') {
            app_fail(ctx, true, "spec.tls.certificateArn %s: not an ACM certificate ARN", d->cert);
            return -1;
        }
        if (strcmp(region, aws_client_region(ctx->aws)) != 0) {
            app_fail(ctx, true,
                     "spec.tls.certificateArn %s: the certificate is in region %s, the load "
                     "balancer in %s (an ALB can only use a certificate of its own region)",
                     d->cert, region, aws_client_region(ctx->aws));
            return -1;
        }
    }
    rollout_weights(ctx, &d->stable, &canary);
    d->weight[d->stable] = 100 - canary;
    d->weight[1 - d->stable] = canary;
    d->hc = desired_health_check(ctx);
    return 0;
}

/* "app/NAME/ID" from a load balancer ARN, "targetgroup/NAME/ID" from a
 * target group ARN (the CloudWatch dimension values). */
static json_t *dimension(const char *arn, const char *marker)
{
    const char *p = arn ? strstr(arn, marker) : NULL;

    if (p == NULL)
        return json_string(PLACEHOLDER);
    if (strcmp(marker, ":loadbalancer/") == 0)
        return json_string(p + strlen(marker));
    return json_string(p + 1);
}

static void record(struct app_ctx *ctx, const struct desired *d, const char *lb_arn,
                   const char *dns, const char *tg[2], const char *http, const char *https)
{
    json_t *r = app_resources(ctx, "loadbalancer");
    char tls[600];

    json_object_set_new(r, "loadBalancerArn", json_string(lb_arn));
    json_object_set_new(r, "dnsName", json_string(dns ? dns : PLACEHOLDER));
    json_object_set_new(r, "lbDimension", dimension(lb_arn, ":loadbalancer/"));
    json_object_set_new(r, "targetGroupArns", json_pack("[s, s]", tg[0], tg[1]));
    json_object_set_new(
        r, "tgDimensions",
        json_pack("[o, o]", dimension(tg[0], ":targetgroup/"), dimension(tg[1], ":targetgroup/")));
    if (http != NULL)
        json_object_set_new(r, "httpListenerArn", json_string(http));
    else
        json_object_del(r, "httpListenerArn");
    if (https != NULL)
        json_object_set_new(r, "httpsListenerArn", json_string(https));
    else
        json_object_del(r, "httpsListenerArn");
    if (!ctx->plan) {
        /* Keep only the current target groups in the attribute cache. */
        json_t *verified = json_object_get(r, "attributesVerified"), *kept = json_array(), *a;
        size_t i;
        json_array_foreach(verified, i, a)
        {
            const char *v = json_string_value(a);
            if (v != NULL && ((tg[0] && strcmp(v, tg[0]) == 0) || (tg[1] && strcmp(v, tg[1]) == 0)))
                json_array_append(kept, a);
        }
        json_object_set_new(r, "attributesVerified", kept);
        json_object_set(r, "healthCheck", d->hc);
        json_object_set_new(r, "subnets", json_deep_copy(d->subnets));
        json_object_set_new(r, "securityGroups", json_pack("[s]", d->sg));
        tls_key(d, tls, sizeof(tls));
        json_object_set_new(r, "appliedTls", json_string(tls));
    }
}

/* True when two arrays of id strings hold the same set. */
static bool same_ids(const json_t *a, const json_t *b)
{
    const json_t *x, *y;
    size_t i, j;

    json_array_foreach(a, i, x)
    {
        bool found = false;
        json_array_foreach(b, j, y)
        {
            if (json_is_string(x) && json_is_string(y) &&
                strcmp(json_string_value(x), json_string_value(y)) == 0)
                found = true;
        }
        if (!found)
            return false;
    }
    json_array_foreach(b, j, y)
    {
        bool found = false;
        json_array_foreach(a, i, x)
        {
            if (json_is_string(x) && json_is_string(y) &&
                strcmp(json_string_value(x), json_string_value(y)) == 0)
                found = true;
        }
        if (!found)
            return false;
    }
    return true;
}

/* "id1, id2" (truncated to len) for events and plans. */
static void join_ids(const json_t *ids, char *out, size_t len)
{
    const json_t *id;
    size_t i, n = 0;

    out[0] = '\0';
    json_array_foreach(ids, i, id)
    {
        if (n >= len)
            break;
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "",
                              json_is_string(id) ? json_string_value(id) : "?");
    }
    if (json_array_size(ids) == 0)
        snprintf(out, len, "(none)");
}

/* One of the load balancer's network settings ("Subnets" with SetSubnets,
 * "SecurityGroups" with SetSecurityGroups): `have` as AWS reports it, `want`
 * from the network concern. A difference from what the last converge applied
 * (resources.loadbalancer.<record_key>) is drift; otherwise the network's
 * records changed and it is an update. Returns 0, or -1 (ctx->error). */
static int converge_lb_setting(struct app_ctx *ctx, const char *resource, const char *lb_arn,
                               const char *member, const char *operation, const char *record_key,
                               const json_t *have, const json_t *want)
{
    const json_t *last = json_object_get(app_resources(ctx, "loadbalancer"), record_key);
    char was[240], now[240], line[500];

    if (same_ids(have, want))
        return 0;
    if (app_write(ctx, resource, "elbv2", operation,
                  json_pack("{s:s, s:O}", "LoadBalancerArn", lb_arn, member, want), NULL, NULL) < 0)
        return -1;
    join_ids(have, was, sizeof(was));
    join_ids(want, now, sizeof(now));
    snprintf(line, sizeof(line), "%s: %s -> %s", member, was, now);
    if (last != NULL && same_ids(last, want))
        note_drift(ctx, resource, line);
    else
        app_note_change(ctx, "update", "load balancer", ctx->names.load_balancer,
                        json_pack("[s]", line));
    return 0;
}

/* Puts an existing load balancer back in the public subnets and behind the
 * load balancer security group the network concern recorded: subnets or
 * groups changed by hand (an extra group attached, a subnet swapped) are
 * reverted. DescribeLoadBalancers already reported both, so a converged
 * load balancer costs no call. Returns 0, or -1 (ctx->error). */
static int converge_lb_network(struct app_ctx *ctx, const json_t *lb, const struct desired *d,
                               const char *resource)
{
    const char *arn = str_at(lb, "LoadBalancerArn");
    json_t *subnets = json_array(), *groups = json_pack("[s]", d->sg);
    const json_t *z;
    size_t i;
    int rc = -1;

    json_array_foreach(json_object_get(lb, "AvailabilityZones"), i, z)
    {
        if (str_at(z, "SubnetId") != NULL)
            json_array_append_new(subnets, json_string(str_at(z, "SubnetId")));
    }
    if (converge_lb_setting(ctx, resource, arn, "Subnets", "SetSubnets", "subnets", subnets,
                            d->subnets) != 0 ||
        converge_lb_setting(ctx, resource, arn, "SecurityGroups", "SetSecurityGroups",
                            "securityGroups", json_object_get(lb, "SecurityGroups"), groups) != 0)
        goto out;
    rc = 0;
out:
    json_decref(subnets);
    json_decref(groups);
    return rc;
}

static bool weights_unchanged(struct app_ctx *ctx, const struct desired *d)
{
    const json_t *w = json_object_get(app_resources(ctx, "loadbalancer"), "weights");

    return w != NULL && json_integer_value(json_object_get(w, "a")) == d->weight[0] &&
           json_integer_value(json_object_get(w, "b")) == d->weight[1];
}

enum app_step loadbalancer_converge(struct app_ctx *ctx)
{
    struct observed o = {0};
    struct desired d;
    struct listener_want want[2];
    size_t n_want = 0, n_fwd = 0;
    const char *tg[2] = {NULL, NULL}, *lb_arn = NULL, *dns = NULL, *state = NULL;
    struct fwd_item fwd[2];
    char arns[2][ARN_MAX];
    const char *http = NULL, *https = NULL;
    json_t *out = NULL;
    enum app_step step = APP_STEP_FAILED;
    char resource[128];
    int rc;

    memset(want, 0, sizeof(want));
    if (desired_init(ctx, &d) != 0)
        goto out;
    if (observe_target_groups(ctx, &o) != 0 || observe_load_balancer(ctx, &o) != 0 ||
        observe_tags(ctx, &o) != 0 || check_owned(ctx, &o, d.cert != NULL) != 0)
        goto out;

    /* Target groups first: the listeners forward to them. */
    for (int s = 0; s < 2; s++) {
        if (converge_target_group(ctx, &o, &d, s, &tg[s]) != 0)
            goto out;
    }

    /* The load balancer. */
    snprintf(resource, sizeof(resource), "load balancer %s", ctx->names.load_balancer);
    if (o.lb == NULL) {
        rc = app_write(ctx, resource, "elbv2", "CreateLoadBalancer",
                       json_pack("{s:s, s:O, s:[s], s:s, s:s, s:s, s:o}", "Name",
                                 ctx->names.load_balancer, "Subnets", d.subnets, "SecurityGroups",
                                 d.sg, "Scheme", "internet-facing", "Type", "application",
                                 "IpAddressType", "ipv4", "Tags",
                                 app_tags_list(ctx, "Key", "Value", NULL)),
                       &out, NULL);
        if (rc < 0)
            goto out;
        app_note_change(ctx, "create", "load balancer", ctx->names.load_balancer, NULL);
        if (rc == 0)
            o.lb = json_incref(json_array_get(json_object_get(out, "LoadBalancers"), 0));
    } else if (converge_lb_network(ctx, o.lb, &d, resource) != 0) {
        goto out;
    }
    if (o.lb != NULL) {
        lb_arn = str_at(o.lb, "LoadBalancerArn");
        dns = str_at(o.lb, "DNSName");
        state = str_at(json_object_get(o.lb, "State"), "Code");
        if (lb_arn == NULL) {
            app_fail(ctx, false, "%s: AWS answered without an ARN", resource);
            goto out;
        }
    } else {
        lb_arn = PLACEHOLDER; /* plan mode */
    }
    if (state != NULL && strcmp(state, "failed") == 0) {
        app_fail(ctx, false, "%s: the load balancer is in state failed (%s)", resource,
                 str_at(json_object_get(o.lb, "State"), "Reason")
                     ? str_at(json_object_get(o.lb, "State"), "Reason")
                     : "no reason given");
        goto out;
    }

    /* Listeners: HTTPS (when TLS is on) before port 80, so port 80 only
     * redirects once 443 serves. */
    if (d.cert != NULL) {
        want[n_want++] = (struct listener_want){443, "HTTPS", d.cert, NULL, true};
        want[n_want++] = (struct listener_want){80, "HTTP", NULL, NULL, !d.redirect};
    } else {
        want[n_want++] = (struct listener_want){80, "HTTP", NULL, NULL, true};
    }
    for (size_t i = 0; i < n_want; i++) {
        want[i].actions = want[i].forward ? forward_actions(tg[0], tg[1], d.weight[0], d.weight[1])
                                          : redirect_actions();
        if (converge_listener(ctx, &o, lb_arn, &d, tg, &want[i], arns[i], fwd, &n_fwd) != 0)
            goto out;
        if (want[i].port == 443)
            https = arns[i];
        else
            http = arns[i];
    }
    if (n_fwd > 0) {
        bool drift = weights_unchanged(ctx, &d);
        const char *fwd_arns[2];
        for (size_t i = 0; i < n_fwd; i++)
            fwd_arns[i] = fwd[i].arn;
        if (apply_weights(ctx, fwd_arns, n_fwd, tg, d.weight) != 0)
            goto out;
        for (size_t i = 0; i < n_fwd; i++) {
            if (drift)
                note_drift(ctx, fwd[i].resource, fwd[i].change);
            else
                app_note_change(ctx, "update", "listener", fwd[i].resource,
                                json_pack("[s]", fwd[i].change));
        }
    }
    /* TLS turned off: port 80 serves again, the HTTPS listener goes. */
    if (d.cert == NULL) {
        const json_t *ls = listener_on(&o, 443);
        const char *arn = str_at(ls, "ListenerArn");
        if (ls != NULL && owned(ctx, &o, arn)) {
            if (app_write(ctx, "HTTPS listener :443", "elbv2", "DeleteListener",
                          json_pack("{s:s}", "ListenerArn", arn), NULL, NULL) < 0)
                goto out;
            app_note_change(ctx, "delete", "listener", "HTTPS listener :443", NULL);
        }
    }

    record(ctx, &d, lb_arn, dns, tg, http, https);
    record_weights(ctx, d.weight);
    if (ctx->plan || state == NULL || strcmp(state, "active") == 0 ||
        strcmp(state, "active_impaired") == 0) {
        if (dns != NULL) {
            char url[300];
            snprintf(url, sizeof(url), "%s://%s", d.cert != NULL ? "https" : "http", dns);
            json_object_set_new(ctx->status, "endpoint", json_string(url));
        }
        step = APP_STEP_READY;
    } else {
        /* provisioning: the listeners are in place, traffic flows once AWS
         * says active. */
        app_wait(ctx, LB_PROVISION_WAIT_MS);
        step = APP_STEP_WAITING;
    }
out:
    for (size_t i = 0; i < n_want; i++)
        json_decref(want[i].actions);
    json_decref(d.hc);
    json_decref(out);
    observed_clear(&o);
    return step;
}

/* ---- delete ---------------------------------------------------------------------- */

static void forget(struct app_ctx *ctx)
{
    json_object_del(ctx->resources, "loadbalancer");
    json_object_del(ctx->status, "endpoint");
}

enum app_step loadbalancer_delete(struct app_ctx *ctx)
{
    struct observed o = {0};
    enum app_step step = APP_STEP_FAILED;
    struct aws_error err;
    bool waiting = false;

    if (observe_load_balancer(ctx, &o) != 0 || observe_target_groups(ctx, &o) != 0 ||
        observe_tags(ctx, &o) != 0)
        goto out;

    /* Listeners, then the load balancer; a load balancer aviary did not
     * create is left alone (and so are its listeners). */
    if (o.lb != NULL && owned(ctx, &o, str_at(o.lb, "LoadBalancerArn"))) {
        const char *lb_arn = str_at(o.lb, "LoadBalancerArn");
        static const int ports[] = {443, 80};
        json_t *again = NULL;

        for (size_t i = 0; i < 2; i++) {
            const char *arn = str_at(listener_on(&o, ports[i]), "ListenerArn");
            if (arn == NULL || !owned(ctx, &o, arn))
                continue;
            if (app_write(ctx, "listener", "elbv2", "DeleteListener",
                          json_pack("{s:s}", "ListenerArn", arn), NULL, &err) < 0) {
                if (strcmp(err.code, "ListenerNotFound") != 0)
                    goto out;
                clear_error(ctx);
            }
        }
        if (app_write(ctx, "load balancer", "elbv2", "DeleteLoadBalancer",
                      json_pack("{s:s}", "LoadBalancerArn", lb_arn), NULL, NULL) < 0)
            goto out;
        app_note_change(ctx, "delete", "load balancer", ctx->names.load_balancer, NULL);
        /* AWS removes it asynchronously: the target groups wait until
         * DescribeLoadBalancers no longer knows it. */
        if (app_read(ctx, "load balancer", "elbv2", "DescribeLoadBalancers",
                     json_pack("{s:[s]}", "LoadBalancerArns", lb_arn), &again, &err) == 0) {
            bool gone = json_array_size(json_object_get(again, "LoadBalancers")) == 0;
            json_decref(again);
            if (!gone) {
                app_wait(ctx, LB_DELETE_WAIT_MS);
                step = APP_STEP_WAITING;
                goto out;
            }
        } else if (strcmp(err.code, "LoadBalancerNotFound") != 0) {
            goto out;
        }
        clear_error(ctx);
    }

    /* Target groups: "in use" for a while after their listener is gone. */
    for (int s = 0; s < 2; s++) {
        const char *arn = str_at(o.tg[s], "TargetGroupArn");
        if (arn == NULL || !owned(ctx, &o, arn))
            continue;
        if (app_write(ctx, "target group", "elbv2", "DeleteTargetGroup",
                      json_pack("{s:s}", "TargetGroupArn", arn), NULL, &err) < 0) {
            if (strcmp(err.code, "ResourceInUse") == 0) {
                clear_error(ctx);
                waiting = true;
                continue;
            }
            if (strcmp(err.code, "TargetGroupNotFound") != 0)
                goto out;
            clear_error(ctx);
        }
        app_note_change(ctx, "delete", "target group", ctx->names.target_group[s], NULL);
    }
    if (waiting) {
        app_wait(ctx, TG_IN_USE_WAIT_MS);
        step = APP_STEP_WAITING;
        goto out;
    }
    forget(ctx);
    step = APP_STEP_READY;
out:
    observed_clear(&o);
    return step;
}
