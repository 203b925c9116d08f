/* Unit tests for the rollout's requeue path: which reconciles may skip the
 * other concerns' observation (rollout_tick_due, a pure function of the
 * request and the status, checked with an injected clock), and that every
 * canary with the same analysis interval is due at the same instants
 * whatever its start time, so their rounds meet in the batcher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/rollout.h"
#include "reconcilers/rollout_machine.h"

#define NOW_MS 1700000061000LL /* one second after a minute boundary */

/* A status as a full pass of a canary at 20% leaves it: converged,
 * generation 3, the rollout of revision "r2" due back at wake_ms, the
 * full pass at full_ms. */
static json_t *status_at(const char *phase, int64_t wake_ms, int64_t full_ms)
{
    json_t *st = json_pack("{s:i, s:[{s:s, s:s}], s:{s:s, s:s, s:s, s:i}, s:{s:{}}}",
                           "observedGeneration", 3, "conditions", "type", "Synced", "status",
                           "True", "rollout", "phase", phase, "canaryRevision", "r2",
                           "stableRevision", "r1", "weight", 20, "resources", "rollout");
    json_t *rr = json_object_get(json_object_get(st, "resources"), "rollout");

    assert_non_null(st);
    if (wake_ms != 0)
        json_object_set_new(rr, ROLLOUT_KEY_WAKE_AT, json_integer(wake_ms));
    if (full_ms != 0)
        json_object_set_new(rr, ROLLOUT_KEY_FULL_AT, json_integer(full_ms));
    return st;
}

static struct reconcile_request request(int64_t now_ms)
{
    struct reconcile_request req;

    memset(&req, 0, sizeof(req));
    req.kind = "Application";
    req.name = "tick";
    req.revision = "r2";
    req.generation = 3;
    req.now_ms = now_ms;
    req.now = now_ms / 1000;
    return req;
}

static void test_due_requeue_takes_the_short_path(void **state)
{
    json_t *st = status_at("Progressing", NOW_MS, NOW_MS - 40000);
    struct reconcile_request req = request(NOW_MS);

    (void)state;
    assert_true(rollout_tick_due(&req, st));
    /* A few ms early (the queue's monotonic clock vs the wall clock). */
    req.now_ms = NOW_MS - ROLLOUT_TICK_EARLY_MS;
    assert_true(rollout_tick_due(&req, st));
    /* Late is still due. */
    req.now_ms = NOW_MS + 5000;
    assert_true(rollout_tick_due(&req, st));
    /* Paused, Promoting, RollingBack: still the rollout's own requeues. */
    json_object_set_new(json_object_get(st, "rollout"), "phase", json_string("Paused"));
    assert_true(rollout_tick_due(&req, st));
    json_object_set_new(json_object_get(st, "rollout"), "phase", json_string("RollingBack"));
    assert_true(rollout_tick_due(&req, st));
    /* Post-promotion: the revision is the stable one. */
    json_object_set_new(json_object_get(st, "rollout"), "phase", json_string("ScalingDown"));
    assert_false(rollout_tick_due(&req, st));
    json_object_set_new(json_object_get(st, "rollout"), "stableRevision", json_string("r2"));
    assert_true(rollout_tick_due(&req, st));
    json_decref(st);

    /* The old whole-second clock (a driver without now_ms) still works. */
    st = status_at("Progressing", NOW_MS, NOW_MS - 40000);
    req = request(NOW_MS);
    req.now_ms = 0;
    assert_true(rollout_tick_due(&req, st));
    json_decref(st);
}

static void test_everything_else_takes_the_full_pass(void **state)
{
    json_t *st = status_at("Progressing", NOW_MS, NOW_MS - 40000);
    struct reconcile_request req = request(NOW_MS);
    json_t *cmd = json_pack("{s:s}", "action", "promote");

    (void)state;
    /* A resync before the wake time. */
    req.now_ms = NOW_MS - 1000;
    assert_false(rollout_tick_due(&req, st));
    req.now_ms = NOW_MS;
    /* A spec change (generation), a new revision, a command, a deletion. */
    req.generation = 4;
    assert_false(rollout_tick_due(&req, st));
    req.generation = 3;
    req.revision = "r3";
    assert_false(rollout_tick_due(&req, st));
    req.revision = "r2";
    req.command = cmd;
    assert_false(rollout_tick_due(&req, st));
    req.command = NULL;
    req.deleting = true;
    assert_false(rollout_tick_due(&req, st));
    req.deleting = false;
    assert_true(rollout_tick_due(&req, st));
    json_decref(st);

    /* The last full pass failed (Synced False), is too old, or never was. */
    st = status_at("Progressing", NOW_MS, NOW_MS - 40000);
    json_object_set_new(json_array_get(json_object_get(st, "conditions"), 0), "status",
                        json_string("False"));
    assert_false(rollout_tick_due(&req, st));
    json_decref(st);
    st = status_at("Progressing", NOW_MS, NOW_MS - ROLLOUT_FULL_MAX_AGE_MS);
    assert_false(rollout_tick_due(&req, st));
    json_decref(st);
    st = status_at("Progressing", NOW_MS, 0);
    assert_false(rollout_tick_due(&req, st));
    json_decref(st);
    /* Nothing asked for (no wake time), or no rollout running. */
    st = status_at("Progressing", 0, NOW_MS - 40000);
    assert_false(rollout_tick_due(&req, st));
    json_decref(st);
    st = status_at("Idle", NOW_MS, NOW_MS - 40000);
    assert_false(rollout_tick_due(&req, st));
    json_decref(st);
    st = status_at("RolledBack", NOW_MS, NOW_MS - 40000);
    assert_false(rollout_tick_due(&req, st));
    json_decref(st);
    json_decref(cmd);
}

#define SPEC_TEXT                                                                                  \
    "{\"rollout\": {\"strategy\": \"canary\", \"canary\": {\"steps\": ["                           \
    "{\"setWeight\": 20}, {\"pause\": {\"duration\": \"30m\"}}]},"                                 \
    "\"analysis\": {\"interval\": \"%s\", \"metrics\": [{\"name\": \"error-rate\", "               \
    "\"type\": \"errorRate\", \"max\": 0.05}]}}}"

/* Canaries started at different times, with the same interval, come back
 * for their rounds at the same instants: the window end on the analysis
 * grid plus ROLLOUT_SLACK_MS. */
static void test_rounds_of_all_canaries_are_aligned(void **state)
{
    static const struct {
        const char *interval;
        int64_t grid_ms;
    } cases[] = {{"1m", 60000}, {"10s", 10000}, {"5s", 5000}, {"45s", 30000}};
    const int64_t base = 1700000040000LL; /* a minute boundary */
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char text[1024], err[256];
        json_t *spec_json;
        struct rollout_spec spec;
        int64_t first = 0;

        snprintf(text, sizeof(text), SPEC_TEXT, cases[k].interval);
        spec_json = json_loads(text, 0, NULL);
        assert_non_null(spec_json);
        assert_int_equal(rollout_spec_parse(spec_json, &spec, err, sizeof(err)), 0);
        for (int c = 0; c < 7; c++) {
            struct rollout_state s, next;
            struct rollout_obs obs;
            struct rollout_result res;
            int64_t since = base + 1234 + c * 3917, now = since + 2500, at;

            rollout_state_init(&s);
            snprintf(s.stable_revision, sizeof(s.stable_revision), "r1");
            snprintf(s.canary_revision, sizeof(s.canary_revision), "r2");
            s.phase = ROLLOUT_PROGRESSING;
            s.canary_slot = 1;
            s.step = 1;
            s.weight = 20;
            s.step_started_at = since;
            s.analysis_since = since;
            memset(&obs, 0, sizeof(obs));
            obs.desired_revision = "r2";
            obs.full_count = 2;
            obs.slot[0].revision = "r1";
            obs.slot[0].desired = 2;
            obs.slot[0].healthy = 2;
            obs.slot[1].revision = "r2";
            obs.slot[1].desired = 1;
            obs.slot[1].healthy = 1;
            rollout_step(&spec, &s, &obs, now, &next, &res);
            at = rollout_next_round_at(&spec, &next);
            /* On the grid plus the slack, and asked for by the step. */
            assert_int_equal((at - ROLLOUT_SLACK_MS) % cases[k].grid_ms, 0);
            assert_int_equal(now + res.requeue_after_ms, at);
            /* The first whole window after the analysis began. */
            assert_true(at - ROLLOUT_SLACK_MS - (int64_t)spec.analysis.period_s * 1000 >= since);
            if (c == 0)
                first = at;
            /* Canaries started within one window of each other share it. */
            if (since + (int64_t)spec.analysis.period_s * 1000 <= first - ROLLOUT_SLACK_MS)
                assert_int_equal(at, first);
            else
                assert_int_equal((at - first) % cases[k].grid_ms, 0);
        }
        json_decref(spec_json);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_requeue_takes_the_short_path),
        cmocka_unit_test(test_everything_else_takes_the_full_pass),
        cmocka_unit_test(test_rounds_of_all_canaries_are_aligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
