/* The load balancer concern's listener actions: the weighted forward to
 * both target groups and the redirect to HTTPS as aviary sets them, whether
 * the actions AWS reports do the same (its normalisations aside), and how
 * they read in events and plans. Worker threads (pure functions). */
#include "reconcilers/loadbalancer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- listener actions ---------------------------------------------------------- */

/* The listener's default actions: one forward to both target groups with
 * the given weights. New reference. */
json_t *lb_forward_actions(const char *tga, const char *tgb, int wa, int wb)
{
    return json_pack("[{s:s, s:{s:[{s:s, s:i}, {s:s, s:i}], s:{s:b}}}]", "Type", "forward",
                     "ForwardConfig", "TargetGroups", "TargetGroupArn", tga, "Weight", wa,
                     "TargetGroupArn", tgb, "Weight", wb, "TargetGroupStickinessConfig", "Enabled",
                     0);
}

/* Port 80's default action with TLS: a permanent redirect to HTTPS on 443,
 * keeping host, path and query. New reference. */
json_t *lb_redirect_actions(void)
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
        const char *single = lb_str(action, "TargetGroupArn");
        return single != NULL && strcmp(single, arn) == 0 ? 100 : -1;
    }
    json_array_foreach(groups, i, g)
    {
        const char *a = lb_str(g, "TargetGroupArn");
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
                                       : (lb_str(action, "TargetGroupArn") != NULL ? 1 : 0);
}

/* A redirect member as AWS reports it, with AWS's defaults for absent ones. */
static const char *redirect_member(const json_t *cfg, const char *key)
{
    const char *v = lb_str(cfg, key);

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
 * them) do what `want` (from lb_forward_actions/lb_redirect_actions) says. AWS's
 * normalisations (a single-group forward's TargetGroupArn, absent stickiness
 * or redirect members) do not count as differences. */
bool lb_actions_match(const json_t *have, const json_t *want)
{
    const json_t *h = json_array_get(have, 0), *w = json_array_get(want, 0);
    const char *type = lb_str(w, "Type");

    if (json_array_size(have) != 1 || type == NULL || lb_str(h, "Type") == NULL ||
        strcmp(lb_str(h, "Type"), type) != 0)
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
            if (forward_weight(h, lb_str(g, "TargetGroupArn")) !=
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
void lb_describe_actions(const json_t *actions, const char *tg[2], char *out, size_t len)
{
    const json_t *a = json_array_get(actions, 0);
    const char *type = lb_str(a, "Type");

    if (type == NULL) {
        snprintf(out, len, "none");
    } else if (strcmp(type, "forward") == 0) {
        /* Shares of the traffic in percent (a lone target group of weight 1
         * gets everything). */
        const json_t *groups = json_object_get(json_object_get(a, "ForwardConfig"), "TargetGroups");
        long wa = lb_is_placeholder(tg[0]) ? -1 : forward_weight(a, tg[0]);
        long wb = lb_is_placeholder(tg[1]) ? -1 : forward_weight(a, tg[1]);
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
