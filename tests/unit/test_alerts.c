/* Tests for rollout alert delivery (reconcilers/alerts.c) against the local
 * AWS emulator's SNS and webhook sink: every channel exactly once, Slack and
 * signed JSON payloads, retries with backoff that never repeat a delivered
 * channel, permanent failures given up, no unsigned send when the key is
 * missing, URLs kept out of status, plan mode sends nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

#include "reconcilers/alerts.h"
#include "reconcilers/app.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define APP "alertapp"
#define KEY "s3cret-hmac-key"

struct fx {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    char topic[256];
    struct rollout_state st;
    struct rollout_alert alert;
};

static json_t *call(struct fx *f, const char *service, const char *op, json_t *in)
{
    json_t *out = NULL;
    struct aws_error err;

    if (aws_call(f->emu.client, service, op, in, &out, &err) != 0)
        fail_msg("%s.%s: %s: %s", service, op, err.code, err.message);
    json_decref(in);
    return out;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    json_t *o;

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0) {
        free(f);
        return -1;
    }
    f->spec =
        json_pack("{s:s, s:{s:[]}}", "image", "docker.io/acme/x:1", "notifications", "webhooks");
    f->status = status_new("Application", APP);
    o = call(f, "sns", "CreateTopic", json_pack("{s:s}", "Name", "aviary-" APP));
    snprintf(f->topic, sizeof(f->topic), "%s", json_string_value(json_object_get(o, "TopicArn")));
    json_decref(o);
    json_object_set_new(f->status, "resources",
                        json_pack("{s:{s:s}}", "notifications", "topicArn", f->topic));
    json_object_set_new(f->status, "dashboardUrl",
                        json_string("https://console.aws.amazon.com/cloudwatch/home#dashboards:"
                                    "name=aviary-" APP));

    /* A rolled-back rollout with one pending alert. */
    rollout_state_init(&f->st);
    f->st.phase = ROLLOUT_ROLLED_BACK;
    snprintf(f->st.stable_revision, sizeof(f->st.stable_revision), "r1");
    snprintf(f->st.rolled_back_revision, sizeof(f->st.rolled_back_revision), "r2");
    f->st.has_decision = true;
    snprintf(f->st.decision.reason, sizeof(f->st.decision.reason), "AnalysisFailed");
    snprintf(f->st.decision.metric, sizeof(f->st.decision.metric), "error-rate");
    f->st.decision.has_value = true;
    f->st.decision.value = 0.25;
    f->st.decision.threshold = 0.05;
    f->st.decision.weight = 20;
    snprintf(f->st.decision.detail, sizeof(f->st.decision.detail), "error-rate: 0.25 > max 0.05");
    snprintf(f->alert.id, sizeof(f->alert.id), APP "/1/1/rollback");
    f->alert.kind = ROLLOUT_ALERT_ROLLBACK;
    snprintf(f->alert.subject, sizeof(f->alert.subject), "aviary: " APP " rolled back revision r2");
    snprintf(f->alert.body, sizeof(f->alert.body),
             "Application " APP ": the rollout of revision r2 was rolled back (AnalysisFailed).\n"
             "Why: error-rate: 0.25 > max 0.05 <&>\n");
    f->alert.at_ms = 1772445600000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    json_decref(f->spec);
    json_decref(f->status);
    alerts_http_shared_free();
    test_emulator_stop(&f->emu);
    free(f);
    return 0;
}

static void add_hook(struct fx *f, const char *path, const char *format, const char *secret_env)
{
    json_t *h = json_pack("{s:s+, s:s}", "url", f->emu.url, path, "format", format);

    if (secret_env != NULL)
        json_object_set_new(h, "secretEnv", json_string(secret_env));
    json_array_append_new(json_object_get(json_object_get(f->spec, "notifications"), "webhooks"),
                          h);
}

/* One delivery attempt at now_ms in its own reconcile context. */
static enum alerts_outcome deliver(struct fx *f, json_t *record, int64_t now_ms, long *retry,
                                   bool plan)
{
    struct reconcile_request req = {.kind = "Application",
                                    .name = APP,
                                    .spec = f->spec,
                                    .revision = "r2",
                                    .now = now_ms / 1000,
                                    .aws = f->emu.client};
    struct app_ctx ctx;
    enum alerts_outcome out;

    app_ctx_init(&ctx, &req, f->status, plan);
    out = alerts_deliver(&ctx, NULL, &f->alert, &f->st, record, now_ms, retry);
    assert_string_equal(ctx.error, ""); /* delivery failures never fail the reconcile */
    if (plan)
        assert_true(json_array_size(ctx.plan_actions) > 0);
    app_ctx_clear(&ctx);
    return out;
}

static size_t sns_count(struct fx *f)
{
    json_t *p = test_emulator_control(&f->emu, "GET", "sns", NULL);
    size_t n = json_array_size(p);

    json_decref(p);
    return n;
}

static json_t *hooks(struct fx *f, const char *name)
{
    char path[64];

    snprintf(path, sizeof(path), "webhooks/%s", name);
    return test_emulator_control(&f->emu, "GET", path, NULL);
}

static const char *header(const json_t *entry, const char *name)
{
    const char *k;
    const json_t *v;

    json_object_foreach((json_t *)json_object_get(entry, "headers"), k, v)
    {
        if (strcasecmp(k, name) == 0)
            return json_string_value(v);
    }
    return NULL;
}

static bool has_event(const json_t *status, const char *reason)
{
    const json_t *e;
    size_t i;

    json_array_foreach(json_object_get(status, "events"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "reason")), reason) == 0)
            return true;
    }
    return false;
}

static void test_every_channel_once(void **state)
{
    struct fx *f = *state;
    json_t *record = json_object(), *sl, *js, *sns, *expected;
    const json_t *body;
    char *payload, sig[80];
    long retry = 0;

    setenv("AVIARY_TEST_HOOK_KEY", KEY, 1);
    add_hook(f, "/_emulator/webhooks/slack", "slack", NULL);
    add_hook(f, "/_emulator/webhooks/json", "json", "AVIARY_TEST_HOOK_KEY");
    assert_int_equal(deliver(f, record, f->alert.at_ms, &retry, false), ALERTS_DELIVERED);

    /* SNS: subject and the readable body. */
    sns = test_emulator_control(&f->emu, "GET", "sns", NULL);
    assert_int_equal(json_array_size(sns), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sns, 0), "subject")),
                        f->alert.subject);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sns, 0), "message")),
                        f->alert.body);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sns, 0), "topic_arn")),
                        f->topic);
    json_decref(sns);

    /* Slack: text, header, escaped mrkdwn section, the id as context. */
    sl = hooks(f, "slack");
    assert_int_equal(json_array_size(sl), 1);
    body = json_object_get(json_array_get(sl, 0), "body");
    assert_non_null(strstr(json_string_value(json_object_get(body, "text")), "rolled back"));
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(body, "blocks"), 0), "text"), "text")),
        f->alert.subject);
    assert_non_null(strstr(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(body, "blocks"), 1), "text"), "text")),
        "&lt;&amp;&gt;"));
    assert_null(header(json_array_get(sl, 0), "X-Aviary-Signature"));
    assert_string_equal(header(json_array_get(sl, 0), "X-Aviary-Alert-Id"), f->alert.id);
    json_decref(sl);

    /* JSON: the documented event, signed over the exact body. */
    js = hooks(f, "json");
    assert_int_equal(json_array_size(js), 1);
    body = json_object_get(json_array_get(js, 0), "body");
    assert_string_equal(json_string_value(json_object_get(body, "type")), "aviary.rollout.alert");
    assert_string_equal(json_string_value(json_object_get(body, "id")), f->alert.id);
    assert_string_equal(json_string_value(json_object_get(body, "kind")), "rollback");
    assert_string_equal(json_string_value(json_object_get(body, "application")), APP);
    assert_string_equal(json_string_value(json_object_get(body, "time")), "2026-03-02T10:00:00Z");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(body, "rollout"), "revision")), "r2");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(body, "decision"), "metric")),
        "error-rate");
    assert_true(json_number_value(json_object_get(json_object_get(body, "decision"), "value")) ==
                0.25);
    assert_non_null(json_string_value(json_object_get(body, "dashboardUrl")));
    {
        struct reconcile_request req = {
            .kind = "Application", .name = APP, .spec = f->spec, .now = 1, .aws = f->emu.client};
        struct app_ctx ctx;
        app_ctx_init(&ctx, &req, f->status, false);
        payload = alerts_payload(&ctx, "json", &f->alert, &f->st);
        app_ctx_clear(&ctx);
    }
    assert_non_null(payload);
    expected = json_loads(payload, 0, NULL);
    assert_true(json_equal(expected, (json_t *)body));
    assert_int_equal(alerts_sign((const unsigned char *)KEY, strlen(KEY), payload, strlen(payload),
                                 sig, sizeof(sig)),
                     0);
    assert_string_equal(header(json_array_get(js, 0), "X-Aviary-Signature"), sig);
    json_decref(expected);
    free(payload);
    json_decref(js);

    /* Delivered means done: a repeat with the same record (a reconcile that
     * died before recording the delivery in the state) sends nothing. */
    assert_int_equal(json_array_size(json_object_get(record, "done")), 3);
    assert_int_equal(deliver(f, record, f->alert.at_ms + 1000, &retry, false), ALERTS_DELIVERED);
    assert_int_equal(sns_count(f), 1);
    sl = hooks(f, "slack");
    js = hooks(f, "json");
    assert_int_equal(json_array_size(sl) + json_array_size(js), 2);
    json_decref(sl);
    json_decref(js);
    json_decref(record);
}

static void test_failed_webhook_retried_without_repeating_others(void **state)
{
    struct fx *f = *state;
    json_t *record = json_object(), *ok;
    int64_t now = f->alert.at_ms;
    long retry = 0;
    char *text;
    int attempts = 0;

    add_hook(f, "/_emulator/webhooks/ok", "json", NULL);
    /* A receiver that refuses connections, with a token in its path. */
    json_array_append_new(json_object_get(json_object_get(f->spec, "notifications"), "webhooks"),
                          json_pack("{s:s, s:s}", "url",
                                    "http://127.0.0.1:1/hooks/T000/SECRET-TOKEN", "format",
                                    "slack"));
    assert_int_equal(deliver(f, record, now, &retry, false), ALERTS_PENDING);
    assert_int_equal(retry, ALERTS_RETRY_FIRST_MS);
    assert_int_equal(sns_count(f), 1);
    ok = hooks(f, "ok");
    assert_int_equal(json_array_size(ok), 1);
    json_decref(ok);
    assert_int_equal(json_integer_value(json_object_get(record, "attempts")), 1);
    assert_non_null(
        strstr(json_string_value(json_object_get(record, "lastError")), "webhook 2 (127.0.0.1:1)"));

    /* Before the backoff ends nothing is tried. */
    assert_int_equal(deliver(f, record, now + 1000, &retry, false), ALERTS_PENDING);
    assert_int_equal(retry, ALERTS_RETRY_FIRST_MS - 1000);
    assert_int_equal(json_integer_value(json_object_get(record, "attempts")), 1);

    /* Retries back off (5 s, 10 s, 20 s, ...) and never repeat SNS or the
     * webhook that answered; in the end the dead one is given up. */
    now += ALERTS_RETRY_FIRST_MS;
    for (attempts = 1; attempts < ALERTS_MAX_ATTEMPTS; attempts++) {
        long expect = ALERTS_RETRY_FIRST_MS << attempts;
        enum alerts_outcome o = deliver(f, record, now, &retry, false);
        if (attempts + 1 == ALERTS_MAX_ATTEMPTS) {
            assert_int_equal(o, ALERTS_DELIVERED);
            break;
        }
        assert_int_equal(o, ALERTS_PENDING);
        assert_int_equal(retry, expect > ALERTS_RETRY_MAX_MS ? ALERTS_RETRY_MAX_MS : expect);
        now += retry;
    }
    assert_int_equal(attempts + 1, ALERTS_MAX_ATTEMPTS);
    assert_int_equal(sns_count(f), 1);
    ok = hooks(f, "ok");
    assert_int_equal(json_array_size(ok), 1);
    json_decref(ok);
    assert_true(has_event(f->status, "AlertUndeliverable"));

    /* The URL's token appears nowhere in the status or the record. */
    text = json_dumps(f->status, 0);
    assert_null(strstr(text, "SECRET-TOKEN"));
    free(text);
    text = json_dumps(record, 0);
    assert_null(strstr(text, "SECRET-TOKEN"));
    free(text);
    json_decref(record);
}

static void test_permanent_rejection_and_missing_key(void **state)
{
    struct fx *f = *state;
    json_t *record = json_object(), *all;
    long retry = 0;

    unsetenv("AVIARY_TEST_MISSING_KEY");
    /* 404 from the receiver: retrying cannot help. */
    add_hook(f, "/_emulator/webhooks", "json", NULL);
    /* A signing key that is not there: never sent unsigned. */
    add_hook(f, "/_emulator/webhooks/signed", "json", "AVIARY_TEST_MISSING_KEY");
    assert_int_equal(deliver(f, record, f->alert.at_ms, &retry, false), ALERTS_DELIVERED);
    assert_true(has_event(f->status, "AlertUndeliverable"));
    all = test_emulator_control(&f->emu, "GET", "webhooks", NULL);
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
    assert_int_equal(sns_count(f), 1);
    json_decref(record);
}

static void test_topic_unknown_waits(void **state)
{
    struct fx *f = *state;
    json_t *record = json_object(), *h;
    long retry = 0;

    json_object_del(json_object_get(json_object_get(f->status, "resources"), "notifications"),
                    "topicArn");
    add_hook(f, "/_emulator/webhooks/team", "slack", NULL);
    assert_int_equal(deliver(f, record, f->alert.at_ms, &retry, false), ALERTS_PENDING);
    assert_true(retry > 0);
    assert_non_null(strstr(json_string_value(json_object_get(record, "lastError")), "SNS"));
    /* The topic appears (the notifications concern ran): SNS follows, the
     * webhook is not posted twice. */
    json_object_set_new(json_object_get(json_object_get(f->status, "resources"), "notifications"),
                        "topicArn", json_string(f->topic));
    assert_int_equal(deliver(f, record, f->alert.at_ms + retry, &retry, false), ALERTS_DELIVERED);
    assert_int_equal(sns_count(f), 1);
    h = hooks(f, "team");
    assert_int_equal(json_array_size(h), 1);
    json_decref(h);
    json_decref(record);
}

static void test_plan_sends_nothing(void **state)
{
    struct fx *f = *state;
    json_t *record = json_object(), *all;
    long retry = 0;

    add_hook(f, "/_emulator/webhooks/team", "slack", NULL);
    assert_int_equal(deliver(f, record, f->alert.at_ms, &retry, true), ALERTS_PENDING);
    assert_int_equal(sns_count(f), 0);
    all = test_emulator_control(&f->emu, "GET", "webhooks", NULL);
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
    assert_int_equal(json_object_size(record), 0);
    json_decref(record);
}

static void test_sign_vector(void **state)
{
    char sig[80];

    (void)state;
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". */
    assert_int_equal(alerts_sign((const unsigned char *)"Jefe", 4, "what do ya want for nothing?",
                                 28, sig, sizeof(sig)),
                     0);
    assert_string_equal(sig,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(alerts_sign((const unsigned char *)"k", 1, "x", 1, sig, 20), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vector),
        cmocka_unit_test_setup_teardown(test_every_channel_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_webhook_retried_without_repeating_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_permanent_rejection_and_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topic_unknown_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_sends_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
