/* Test support for the rollout tests: see rollout_fixture.h. */
#include "support/rollout_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reconcilers/alerts.h"
#include "reconcilers/app.h"
#include "reconcilers/metrics_batcher.h"
#include "reconcilers/status.h"

#define MAX_STEPS  150 /* reconciles per phase of a test (bounded loops) */
#define STEP_S     2   /* emulated seconds between reconciles without a requeue */
#define STEP_MAX_S 10

static const char *SPEC_JSON =
    "{\"image\": \"" RFX_IMAGE1 "\", \"port\": 8080,"
    " \"scaling\": {\"min\": 2, \"max\": 4, \"cpuPercent\": 70, \"scaleOutCooldown\": \"1m\","
    "  \"scaleInCooldown\": \"5m\"},"
    " \"network\": {\"cidr\": \"10.7.0.0/16\", \"natGateway\": false},"
    " \"notifications\": {\"onScaling\": false, \"email\": [], \"onPromotion\": false,"
    "  \"webhooks\": [{\"url\": \"WEBHOOK\", \"format\": \"slack\"}]},"
    " \"rollout\": {\"strategy\": \"canary\", \"scaleDownDelay\": \"5s\","
    "  \"progressDeadline\": \"40s\","
    "  \"canary\": {\"steps\": [{\"setWeight\": 20}, {\"pause\": {\"duration\": \"20s\"}},"
    "   {\"setWeight\": 50}, {\"pause\": {\"duration\": \"20s\"}}]},"
    "  \"analysis\": {\"interval\": \"10s\", \"failureLimit\": 0, \"minRequests\": 10,"
    "   \"inconclusiveLimit\": 5,"
    "   \"metrics\": [{\"name\": \"error-rate\", \"type\": \"errorRate\", \"max\": 0.05}]},"
    "  \"blueGreen\": {\"testPort\": 8080, \"autoPromote\": true,"
    "   \"prePromotion\": {\"measurements\": 3}}},"
    " \"cpu\": 256, \"memory\": 512, \"architecture\": \"X86_64\","
    " \"healthCheck\": {\"path\": \"/\", \"interval\": \"15s\", \"timeout\": \"5s\","
    "  \"healthyThreshold\": 3, \"unhealthyThreshold\": 3, \"matcher\": \"200-399\","
    "  \"gracePeriod\": \"30s\"},"
    " \"logs\": {\"retentionDays\": 30}, \"registry\": {\"keepImages\": 20, \"scanOnPush\": true},"
    " \"dashboard\": true, \"deletionPolicy\": \"Delete\"}";

int rfx_setup(void **state)
{
    struct rfx *f = calloc(1, sizeof(*f));
    char url[128];

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0) {
        free(f);
        return -1;
    }
    f->spec = json_loads(SPEC_JSON, 0, NULL);
    snprintf(url, sizeof(url), "%s/_emulator/webhooks/team", f->emu.url);
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(f->spec, "notifications"), "webhooks"), 0),
        "url", json_string(url));
    f->status = status_new("Application", RFX_APP);
    snprintf(f->revision, sizeof(f->revision), "%s", RFX_REV1);
    *state = f;
    return 0;
}

int rfx_teardown(void **state)
{
    struct rfx *f = *state;

    json_decref(f->spec);
    json_decref(f->status);
    json_decref(f->command);
    /* The shared batcher and transport hold this emulator's client. */
    metrics_batcher_shared_free();
    alerts_http_shared_free();
    test_emulator_stop(&f->emu);
    free(f);
    return 0;
}

double rfx_now(struct rfx *f)
{
    json_t *c = test_emulator_control(&f->emu, "GET", "clock", NULL);
    double now = json_number_value(json_object_get(c, "now"));

    json_decref(c);
    assert_true(now > 0);
    return now;
}

void rfx_advance(struct rfx *f, double seconds)
{
    json_t *body = json_pack("{s:f}", "advance", seconds);

    json_decref(test_emulator_control(&f->emu, "POST", "clock", body));
    json_decref(body);
}

const char *rfx_rollout_str(struct rfx *f, const char *key);

/* One reconcile of the whole Application at the emulator's time (a second
 * behind, so the last analysis window's datapoints are all written). */
void rfx_reconcile(struct rfx *f)
{
    struct reconcile_request req = {.kind = "Application",
                                    .name = RFX_APP,
                                    .spec = f->spec,
                                    .revision = f->revision,
                                    .generation = 1,
                                    .now = (int64_t)rfx_now(f) - 1,
                                    .aws = f->emu.client,
                                    .command = f->command};

    memset(&f->last, 0, sizeof(f->last));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    application_reconcile(&req, f->status, &f->last, false, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (getenv("ROLLOUT_TEST_TRACE"))
        fprintf(stderr, "reconcile %.0f ms reads %lld writes %lld phase %s requeue %ld\n",
                (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
                json_integer_value(
                    json_object_get(json_object_get(f->status, "lastReconcile"), "reads")),
                json_integer_value(
                    json_object_get(json_object_get(f->status, "lastReconcile"), "writes")),
                rfx_rollout_str(f, "phase"), f->last.requeue_after_ms);
    if (f->last.outcome == RECONCILE_ERROR || f->last.outcome == RECONCILE_INVALID)
        print_message("reconcile: %s\n", f->last.error);
    assert_int_not_equal(f->last.outcome, RECONCILE_INVALID);
    if (f->last.command_done) {
        json_decref(f->command);
        f->command = NULL;
    }
}

const json_t *rfx_rollout(struct rfx *f)
{
    return json_object_get(f->status, "rollout");
}

const char *rfx_rollout_str(struct rfx *f, const char *key)
{
    const char *s = json_string_value(json_object_get(rfx_rollout(f), key));
    return s != NULL ? s : "";
}

static void dump(struct rfx *f)
{
    char *text = json_dumps(f->status, JSON_INDENT(1));
    fprintf(stderr, "status: %s\n", text ? text : "?");
    free(text);
}

/* Moves the clock as the daemon's queue would: by the requeue the last
 * reconcile asked for (1 to STEP_MAX_S seconds). */
void rfx_next_step(struct rfx *f)
{
    long ms = f->last.outcome == RECONCILE_REQUEUE_AFTER ? f->last.requeue_after_ms : 0;
    double s = ms <= 0 ? STEP_S : (double)(ms + 999) / 1000;

    rfx_advance(f, s < 1 ? 1 : s > STEP_MAX_S ? STEP_MAX_S : s);
}

/* Reconciles (moving the clock between them) until the rollout phase is
 * `phase` (and, when given, the stable revision is `stable`). */
void rfx_run_until(struct rfx *f, const char *phase, const char *stable)
{
    for (int i = 0; i < MAX_STEPS; i++) {
        rfx_reconcile(f);
        if (strcmp(rfx_rollout_str(f, "phase"), phase) == 0 &&
            (stable == NULL || strcmp(rfx_rollout_str(f, "stableRevision"), stable) == 0))
            return;
        rfx_next_step(f);
    }
    dump(f);
    fail_msg("rollout did not reach %s within %d reconciles", phase, MAX_STEPS);
}

json_t *rfx_call(struct rfx *f, const char *service, const char *op, json_t *in)
{
    json_t *out = NULL;
    struct aws_error err;

    if (aws_call(f->emu.client, service, op, in, &out, &err) != 0)
        fail_msg("%s.%s: %s: %s", service, op, err.code, err.message);
    json_decref(in);
    return out;
}

long long rfx_desired(struct rfx *f, int slot)
{
    json_t *d = rfx_call(f, "ecs", "DescribeServices",
                         json_pack("{s:s, s:[s]}", "cluster", "aviary-" RFX_APP, "services",
                                   slot == 0 ? RFX_APP "-a" : RFX_APP "-b"));
    long long n = (long long)json_integer_value(
        json_object_get(json_array_get(json_object_get(d, "services"), 0), "desiredCount"));

    json_decref(d);
    return n;
}

/* The port-80 listener's forward weight of a slot's target group, now. */
long rfx_weight(struct rfx *f, int port, int slot)
{
    const json_t *lb = json_object_get(json_object_get(f->status, "resources"), "loadbalancer");
    const char *tg =
        json_string_value(json_array_get(json_object_get(lb, "targetGroupArns"), slot));
    json_t *out = rfx_call(f, "elbv2", "DescribeListeners",
                           json_pack("{s:s}", "LoadBalancerArn",
                                     json_string_value(json_object_get(lb, "loadBalancerArn"))));
    const json_t *ls, *g;
    size_t i, j;
    long w = -1;

    json_array_foreach(json_object_get(out, "Listeners"), i, ls)
    {
        if (json_integer_value(json_object_get(ls, "Port")) != port)
            continue;
        w = 0;
        json_array_foreach(
            json_object_get(
                json_object_get(json_array_get(json_object_get(ls, "DefaultActions"), 0),
                                "ForwardConfig"),
                "TargetGroups"),
            j, g)
        {
            if (strcmp(json_string_value(json_object_get(g, "TargetGroupArn")), tg) == 0)
                w = (long)json_integer_value(json_object_get(g, "Weight"));
        }
    }
    json_decref(out);
    return w;
}

/* SNS publishes of rollout alerts (alarm notifications left out). */
json_t *rfx_alerts(struct rfx *f)
{
    json_t *all = test_emulator_control(&f->emu, "GET", "sns", NULL), *out = json_array();
    const json_t *p;
    size_t i;

    json_array_foreach(all, i, p)
    {
        const char *subject = json_string_value(json_object_get(p, "subject"));
        if (subject != NULL && strncmp(subject, "aviary: ", 8) == 0)
            json_array_append(out, (json_t *)p);
    }
    json_decref(all);
    return out;
}

size_t rfx_webhook_calls(struct rfx *f)
{
    json_t *w = test_emulator_control(&f->emu, "GET", "webhooks/team", NULL);
    size_t n = json_array_size(w);

    json_decref(w);
    return n;
}

const json_t *rfx_condition(struct rfx *f, const char *type)
{
    const json_t *c;
    size_t i;

    json_array_foreach(json_object_get(f->status, "conditions"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return c;
    }
    return NULL;
}

void rfx_set_profile(struct rfx *f, const char *image, json_t *profile)
{
    json_t *body = json_pack("{s:o}", image, profile);

    json_decref(test_emulator_control(&f->emu, "PUT", "profiles", body));
    json_decref(body);
}

/* The first deployment: slot a serves revision 1. */
void rfx_first_deployment(struct rfx *f)
{
    rfx_run_until(f, "Idle", RFX_REV1);
    assert_string_equal(rfx_rollout_str(f, "stableSlot"), "a");
    assert_int_equal(rfx_desired(f, 0), 2);
    assert_int_equal(rfx_weight(f, 80, 0), 100);
    assert_string_equal(json_string_value(json_object_get(f->status, "phase")), "Ready");
    assert_string_equal(json_string_value(json_object_get(f->status, "observedRevision")),
                        RFX_REV1);
}

void rfx_new_revision(struct rfx *f)
{
    json_object_set_new(f->spec, "image", json_string(RFX_IMAGE2));
    snprintf(f->revision, sizeof(f->revision), "%s", RFX_REV2);
}
