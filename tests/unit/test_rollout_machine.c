/* Unit tests for the rollout state machine: a simulated world (two ECS
 * slots, a listener, alerts) driven with an injected clock, checking every
 * rule of DESIGN.md's Rollouts section and, with `restart` on, that the
 * state survives a JSON round trip at every step with identical results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/rollout_machine.h"

#define T0 1699999980000LL /* a start time aligned to the minute (ms) */

struct world {
    struct rollout_spec spec;
    json_t *spec_json;
    struct rollout_state state;
    int64_t now;
    const char *desired;
    char rev[2][ROLLOUT_REVISION_MAX];
    int desired_count[2];
    int healthy[2];
    int64_t ready_at[2];
    int64_t start_ms;   /* how long new tasks take to become healthy */
    const char *bad[4]; /* revisions whose tasks never become healthy */
    bool stable_sick;   /* the stable slot loses its healthy targets */
    int full_min;       /* spec.scaling.min, for the first deployment */
    /* listener */
    int lst_stable, lst_weight;
    int weight_calls;
    int weight_log[32];
    int n_weight_log;
    /* analysis */
    enum analysis_verdict script[64];
    int n_script;
    enum analysis_verdict default_verdict;
    int rounds;
    int round_weight[64]; /* rollout_measured_weight of each round, as recorded */
    /* other actions */
    int pinned;
    int stable_slot_set;
    int test_listener;
    bool fail_alerts;
    int alerts[3];
    int n_alerts;
    char alert_ids[16][ROLLOUT_ALERT_ID_MAX];
    char last_body[1536];
    char log[8192]; /* every action, in order */
    bool restart;
    enum rollout_phase max_phase_seen;
    int steps;
};

static bool is_bad(const struct world *w, const char *rev)
{
    size_t i;

    for (i = 0; i < 4; i++) {
        if (w->bad[i] != NULL && strcmp(w->bad[i], rev) == 0)
            return true;
    }
    return false;
}

static void logf_(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(struct world *w, const char *fmt, ...)
{
    size_t len = strlen(w->log);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(w->log + len, sizeof(w->log) - len, fmt, ap);
    va_end(ap);
}

static void world_init(struct world *w, const char *spec_yamlish_json)
{
    char err[256] = "";
    json_error_t jerr;

    memset(w, 0, sizeof(*w));
    w->spec_json = json_loads(spec_yamlish_json, 0, &jerr);
    assert_non_null(w->spec_json);
    if (rollout_spec_parse(w->spec_json, &w->spec, err, sizeof(err)) != 0)
        fail_msg("spec: %s", err);
    rollout_state_init(&w->state);
    w->now = T0;
    w->start_ms = 10000;
    w->full_min = 2;
    w->default_verdict = ANALYSIS_SUCCESSFUL;
}

/* A world where revision r1 is stable on slot a with `tasks` tasks. */
static void world_stable(struct world *w, const char *r1, int tasks)
{
    snprintf(w->state.stable_revision, sizeof(w->state.stable_revision), "%s", r1);
    w->state.stable_slot = 0;
    snprintf(w->rev[0], sizeof(w->rev[0]), "%s", r1);
    w->desired_count[0] = tasks;
    w->healthy[0] = tasks;
    w->desired = r1;
}

static void world_free(struct world *w)
{
    json_decref(w->spec_json);
}

static void tick(struct world *w)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (w->rev[i][0] == '\0' || is_bad(w, w->rev[i]))
            w->healthy[i] = 0;
        else if (w->now >= w->ready_at[i])
            w->healthy[i] = w->desired_count[i];
        if (w->healthy[i] > w->desired_count[i])
            w->healthy[i] = w->desired_count[i];
    }
    if (w->stable_sick)
        w->healthy[w->state.stable_slot] = 0;
}

static void execute(struct world *w, const struct rollout_result *res, struct rollout_state *next)
{
    size_t i;

    for (i = 0; i < res->n_actions; i++) {
        const struct rollout_action *a = &res->actions[i];

        switch (a->kind) {
        case ROLLOUT_ACT_REGISTER:
            logf_(w, "register %d %s;", a->slot, a->revision);
            snprintf(w->rev[a->slot], sizeof(w->rev[0]), "%s", a->revision);
            w->healthy[a->slot] = 0;
            w->ready_at[a->slot] = w->now + w->start_ms;
            break;
        case ROLLOUT_ACT_SCALE:
            logf_(w, "scale %d %d;", a->slot, a->count);
            if (a->count > w->desired_count[a->slot])
                w->ready_at[a->slot] = w->now + w->start_ms;
            w->desired_count[a->slot] = a->count;
            if (w->healthy[a->slot] > a->count)
                w->healthy[a->slot] = a->count;
            break;
        case ROLLOUT_ACT_SET_WEIGHTS: {
            int canary = 1 - a->stable_slot;

            logf_(w, "weights %d %d;", a->stable_slot, a->canary_weight);
            /* Traffic only moves to healthy targets. */
            if (a->canary_weight > 0)
                assert_true(w->healthy[canary] >= 1);
            if (a->canary_weight < 100)
                assert_true(w->healthy[a->stable_slot] >= 1);
            w->lst_stable = a->stable_slot;
            w->lst_weight = a->canary_weight;
            w->weight_calls++;
            if (w->n_weight_log < 32)
                w->weight_log[w->n_weight_log++] =
                    a->stable_slot == w->state.stable_slot ? a->canary_weight : -a->stable_slot;
            break;
        }
        case ROLLOUT_ACT_PIN_MIN:
            logf_(w, "pin %d;", a->min);
            w->pinned = a->min;
            break;
        case ROLLOUT_ACT_UNPIN_MIN:
            logf_(w, "unpin;");
            w->pinned = -1;
            break;
        case ROLLOUT_ACT_SET_STABLE:
            logf_(w, "stable %d %s;", a->slot, a->revision);
            w->stable_slot_set = a->slot;
            break;
        case ROLLOUT_ACT_TEST_LISTENER:
            logf_(w, "test %d;", a->slot);
            w->test_listener = a->slot;
            break;
        case ROLLOUT_ACT_ALERT:
            if (w->fail_alerts)
                break;
            logf_(w, "alert %s;", rollout_alert_kind_name(a->alert->kind));
            w->alerts[a->alert->kind]++;
            if (w->n_alerts < 16)
                snprintf(w->alert_ids[w->n_alerts], sizeof(w->alert_ids[0]), "%s", a->alert->id);
            w->n_alerts++;
            snprintf(w->last_body, sizeof(w->last_body), "%s", a->alert->body);
            rollout_alert_delivered(next, a->alert->id);
            break;
        }
    }
}

static void results_equal(const struct rollout_result *a, const struct rollout_result *b)
{
    size_t i;

    assert_int_equal(a->n_actions, b->n_actions);
    assert_int_equal(a->requeue_after_ms, b->requeue_after_ms);
    assert_int_equal(a->command_done, b->command_done);
    for (i = 0; i < a->n_actions; i++) {
        assert_int_equal(a->actions[i].kind, b->actions[i].kind);
        assert_int_equal(a->actions[i].slot, b->actions[i].slot);
        assert_int_equal(a->actions[i].count, b->actions[i].count);
        assert_int_equal(a->actions[i].stable_slot, b->actions[i].stable_slot);
        assert_int_equal(a->actions[i].canary_weight, b->actions[i].canary_weight);
        assert_int_equal(a->actions[i].min, b->actions[i].min);
        assert_string_equal(a->actions[i].revision, b->actions[i].revision);
        if (a->actions[i].kind == ROLLOUT_ACT_ALERT) {
            assert_string_equal(a->actions[i].alert->id, b->actions[i].alert->id);
            assert_string_equal(a->actions[i].alert->body, b->actions[i].alert->body);
        }
    }
}

static json_t *state_json(const struct rollout_state *s)
{
    json_t *j = json_object();

    assert_non_null(j);
    assert_int_equal(rollout_state_to_json(s, j), 0);
    return j;
}

/* One reconcile: observe, maybe measure, step, act. */
static struct rollout_result step_cmd(struct world *w, enum rollout_command cmd)
{
    struct rollout_result res, res2;
    struct rollout_state next, restored, next2;
    struct analysis_round round;
    struct rollout_obs obs;
    int64_t ws, we;
    bool have = false;

    tick(w);
    memset(&round, 0, sizeof(round));
    if (rollout_analysis_due(&w->spec, &w->state, w->now, &ws, &we)) {
        assert_true(we <= w->now);
        assert_int_equal(we - ws, (int64_t)w->spec.analysis.period_s * 1000);
        round.window_start_ms = ws;
        round.window_end_ms = we;
        round.verdict = w->rounds < w->n_script ? w->script[w->rounds] : w->default_verdict;
        round.samples = round.verdict == ANALYSIS_INCONCLUSIVE ? 3 : 500;
        snprintf(round.metric, sizeof(round.metric), "error-rate");
        round.has_value = true;
        round.value = round.verdict == ANALYSIS_FAILED ? 0.25 : 0.001;
        round.threshold = 0.05;
        snprintf(round.detail, sizeof(round.detail), "error-rate: %g vs max 0.05", round.value);
        if (w->rounds < 64)
            w->round_weight[w->rounds] = rollout_measured_weight(&w->state);
        w->rounds++;
        have = true;
    }
    memset(&obs, 0, sizeof(obs));
    obs.application = "fraud-model";
    obs.dashboard_url =
        "https://console.aws.amazon.com/cloudwatch/home#dashboards:name=aviary-fraud-model";
    obs.desired_revision = w->desired;
    obs.full_count =
        w->state.stable_revision[0] ? w->desired_count[w->state.stable_slot] : w->full_min;
    obs.slot[0].revision = w->rev[0];
    obs.slot[0].desired = w->desired_count[0];
    obs.slot[0].healthy = w->healthy[0];
    obs.slot[1].revision = w->rev[1];
    obs.slot[1].desired = w->desired_count[1];
    obs.slot[1].healthy = w->healthy[1];
    obs.round = have ? &round : NULL;
    obs.command = cmd;

    if (w->restart) {
        /* A daemon killed after the last step resumes from status alone. */
        json_t *j = state_json(&w->state), *j2;
        char *text = json_dumps(j, JSON_SORT_KEYS);
        json_t *back = json_loads(text, 0, NULL);

        assert_non_null(back);
        assert_int_equal(rollout_state_from_json(back, &restored), 0);
        j2 = state_json(&restored);
        assert_true(json_equal(j, j2));
        rollout_step(&w->spec, &w->state, &obs, w->now, &next2, &res2);
        rollout_step(&w->spec, &restored, &obs, w->now, &next, &res);
        results_equal(&res, &res2);
        json_decref(j2);
        j2 = state_json(&next2);
        json_decref(j);
        j = state_json(&next);
        assert_true(json_equal(j, j2));
        json_decref(j);
        json_decref(j2);
        json_decref(back);
        free(text);
    } else {
        rollout_step(&w->spec, &w->state, &obs, w->now, &next, &res);
    }
    execute(w, &res, &next);
    w->state = next;
    w->steps++;
    if (w->state.phase == ROLLOUT_PROMOTING || w->state.phase == ROLLOUT_SCALING_DOWN)
        w->max_phase_seen = w->state.phase;
    /* Never a split listener without a rollout in progress. */
    if (w->state.phase == ROLLOUT_IDLE || w->state.phase == ROLLOUT_ROLLED_BACK)
        assert_true(w->lst_weight == 0 || w->lst_weight == 100);
    return res;
}

static struct rollout_result step(struct world *w)
{
    return step_cmd(w, ROLLOUT_CMD_NONE);
}

/* Runs reconciles at the requested requeue times until `until` or until
 * nothing is scheduled. Returns the number of reconciles. */
static int drive(struct world *w, int64_t until)
{
    int n;

    for (n = 0; n < 20000 && w->now <= until; n++) {
        struct rollout_result r = step(w);

        if (r.requeue_after_ms <= 0)
            return n + 1;
        w->now += r.requeue_after_ms;
    }
    return n;
}

/* Drives until the phase is p (bounded). */
static void drive_to(struct world *w, enum rollout_phase p, int64_t limit_ms)
{
    int64_t end = w->now + limit_ms;
    int n;

    for (n = 0; n < 20000 && w->state.phase != p && w->now <= end; n++) {
        struct rollout_result r = step(w);

        if (w->state.phase == p)
            return;
        w->now += r.requeue_after_ms > 0 ? r.requeue_after_ms : 1000;
    }
    assert_int_equal(w->state.phase, p);
}

#define SPEC_CANARY                                                                                \
    "{\"rollout\": {\"strategy\": \"canary\", \"canary\": {\"steps\": ["                           \
    "{\"setWeight\": 20}, {\"pause\": {\"duration\": \"2m\"}},"                                    \
    "{\"setWeight\": 50}, {\"pause\": {\"duration\": \"2m\"}}]},"                                  \
    "\"analysis\": {\"interval\": \"1m\", \"failureLimit\": 1, \"inconclusiveLimit\": 3,"          \
    "\"metrics\": [{\"name\": \"error-rate\", \"type\": \"errorRate\", \"max\": 0.05}]},"          \
    "\"scaleDownDelay\": \"30s\", \"progressDeadline\": \"10m\"}%s}"

static void canary_world(struct world *w, const char *extra)
{
    char buf[2048];

    snprintf(buf, sizeof(buf), SPEC_CANARY, extra);
    world_init(w, buf);
    world_stable(w, "r1", 4);
}

static void good_release(bool restart)
{
    struct world w;

    canary_world(&w, "");
    w.restart = restart;
    w.desired = "r2";
    drive(&w, T0 + 3600000);
    print_message("good release (%s): %d reconciles, %d rounds: %s\n",
                  restart ? "restart at every step" : "one process", w.steps, w.rounds, w.log);
    assert_int_equal(w.state.phase, ROLLOUT_IDLE);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.state.stable_slot, 1);
    assert_int_equal(w.stable_slot_set, 1);
    /* 20% then 50% on stable a, then slot b takes everything. */
    assert_int_equal(w.n_weight_log, 3);
    assert_int_equal(w.weight_log[0], 20);
    assert_int_equal(w.weight_log[1], 50);
    assert_int_equal(w.lst_stable, 1);
    assert_int_equal(w.lst_weight, 0);
    /* Canary sized 1 (ceil(4*0.2)), 2, then 4 before the switch; old slot to 0. */
    assert_non_null(strstr(w.log, "register 1 r2;scale 1 1;"));
    assert_non_null(strstr(w.log, "scale 1 2;"));
    assert_non_null(strstr(w.log, "scale 1 4;"));
    assert_non_null(strstr(w.log, "scale 0 0;"));
    assert_true(strstr(w.log, "scale 1 4;") < strstr(w.log, "weights 1 0;"));
    assert_non_null(strstr(w.log, "pin 4;"));
    assert_int_equal(w.pinned, -1);
    assert_int_equal(w.n_alerts, 0); /* onPromotion is off */
    /* One round at 20% (the 2m pause), two at 50%. */
    assert_int_equal(w.rounds, 3);
    world_free(&w);
}

static void test_good_release_promotes(void **state)
{
    (void)state;
    good_release(false);
}

static void test_good_release_restart_every_step(void **state)
{
    (void)state;
    good_release(true);
}

static void test_promotion_alert_once(void **state)
{
    struct world w;

    (void)state;
    canary_world(&w, ", \"notifications\": {\"onPromotion\": true}");
    w.restart = true;
    w.desired = "r2";
    drive(&w, T0 + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.alerts[ROLLOUT_ALERT_PROMOTION], 1);
    assert_int_equal(w.n_alerts, 1);
    assert_non_null(strstr(w.last_body, "revision r2 was promoted"));
    world_free(&w);
}

static void bad_release(bool restart)
{
    struct world w;
    const char *weights, *scale0;

    canary_world(&w, "");
    w.restart = restart;
    w.desired = "r2";
    w.default_verdict = ANALYSIS_FAILED;
    drive(&w, T0 + 3600000);
    print_message("bad release: %s\n", w.log);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_string_equal(w.state.stable_revision, "r1");
    assert_string_equal(w.state.rolled_back_revision, "r2");
    /* failureLimit 1: the second failed round rolls back, at the first step. */
    assert_int_equal(w.rounds, 2);
    assert_int_equal(w.state.decision.step, 1);
    assert_int_equal(w.state.decision.weight, 20);
    assert_string_equal(w.state.decision.reason, "AnalysisFailed");
    assert_string_equal(w.state.decision.metric, "error-rate");
    assert_true(w.state.decision.value > 0.2);
    /* Weights back first, then the canary to 0; exactly one alert. */
    weights = strstr(w.log, "weights 0 0;");
    scale0 = strstr(w.log, "scale 1 0;");
    assert_non_null(weights);
    assert_non_null(scale0);
    assert_true(weights < scale0);
    assert_int_equal(w.lst_weight, 0);
    assert_int_equal(w.lst_stable, 0);
    assert_int_equal(w.desired_count[1], 0);
    assert_int_equal(w.n_alerts, 1);
    assert_int_equal(w.alerts[ROLLOUT_ALERT_ROLLBACK], 1);
    assert_non_null(strstr(w.last_body, "fraud-model"));
    assert_non_null(strstr(w.last_body, "error-rate = 0.25 (threshold 0.05)"));
    assert_non_null(strstr(w.last_body, "canary traffic share 20%"));
    assert_non_null(strstr(w.last_body, "Dashboard: https://"));
    assert_int_equal(w.pinned, -1);
    world_free(&w);
}

static void test_failure_rolls_back_with_one_alert(void **state)
{
    (void)state;
    bad_release(false);
}

static void test_failure_rollback_restart_every_step(void **state)
{
    (void)state;
    bad_release(true);
}

static void test_failure_limit_tolerated(void **state)
{
    struct world w;
    char buf[2048];

    (void)state;
    snprintf(buf, sizeof(buf), SPEC_CANARY, "");
    /* failureLimit 2 */
    memcpy(strstr(buf, "\"failureLimit\": 1"), "\"failureLimit\": 2", 17);
    world_init(&w, buf);
    world_stable(&w, "r1", 4);
    w.desired = "r2";
    w.script[0] = ANALYSIS_FAILED;
    w.script[1] = ANALYSIS_SUCCESSFUL;
    w.script[2] = ANALYSIS_FAILED;
    w.n_script = 3;
    drive(&w, T0 + 3600000);
    assert_string_equal(w.state.stable_revision, "r2"); /* two failures tolerated */
    assert_int_equal(w.n_alerts, 0);

    world_free(&w);
    world_init(&w, buf);
    world_stable(&w, "r1", 4);
    w.desired = "r2";
    w.script[0] = ANALYSIS_FAILED;
    w.script[1] = ANALYSIS_SUCCESSFUL;
    w.script[2] = ANALYSIS_FAILED;
    w.script[3] = ANALYSIS_FAILED; /* one more */
    w.n_script = 4;
    drive(&w, T0 + 3600000);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_int_equal(w.state.failures, 3);
    assert_int_equal(w.n_alerts, 1);
    world_free(&w);
}

static void test_inconclusive_extends_then_pauses(void **state)
{
    struct world w;
    int i;

    (void)state;
    canary_world(&w, "");
    w.restart = true;
    w.desired = "r2";
    w.script[0] = ANALYSIS_SUCCESSFUL; /* at 20% */
    w.n_script = 1;
    w.default_verdict = ANALYSIS_INCONCLUSIVE; /* at 50%: the pause ends but is extended */
    drive_to(&w, ROLLOUT_PAUSED, 3600000);
    assert_string_equal(w.state.paused_reason, "Inconclusive");
    assert_int_equal(w.state.inconclusive_in_a_row, 3);
    assert_int_equal(w.alerts[ROLLOUT_ALERT_PAUSE], 1);
    /* Never promoted, and more inconclusive rounds send no more alerts. */
    for (i = 0; i < 20; i++) {
        struct rollout_result r = step(&w);

        w.now += r.requeue_after_ms;
    }
    assert_int_equal(w.state.phase, ROLLOUT_PAUSED);
    assert_string_equal(w.state.stable_revision, "r1");
    assert_int_equal(w.n_alerts, 1);
    assert_true(w.lst_weight > 0 && w.lst_weight < 100); /* the canary keeps its share */
    /* Resume: measured again; good data promotes. */
    w.default_verdict = ANALYSIS_SUCCESSFUL;
    step_cmd(&w, ROLLOUT_CMD_RESUME);
    assert_int_not_equal(w.state.phase, ROLLOUT_PAUSED);
    assert_int_equal(w.state.inconclusive_in_a_row, 0);
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.n_alerts, 1);
    world_free(&w);
}

static void test_never_promotes_unmeasured(void **state)
{
    struct world w;

    (void)state;
    /* One setWeight step and no pause: promotion waits for a Successful round. */
    world_init(&w, "{\"rollout\": {\"canary\": {\"steps\": [{\"setWeight\": 50}]},"
                   "\"analysis\": {\"interval\": \"1m\", \"inconclusiveLimit\": 2}}}");
    world_stable(&w, "r1", 4);
    w.restart = true;
    w.desired = "r2";
    w.default_verdict = ANALYSIS_INCONCLUSIVE;
    drive_to(&w, ROLLOUT_PAUSED, 3600000);
    assert_string_equal(w.state.paused_reason, "Inconclusive");
    assert_int_equal(w.rounds, 2);
    assert_string_equal(w.state.stable_revision, "r1");
    assert_int_equal(w.alerts[ROLLOUT_ALERT_PAUSE], 1);
    assert_non_null(strstr(w.last_body, "2 inconclusive measurements in a row"));
    world_free(&w);

    world_init(&w, "{\"rollout\": {\"canary\": {\"steps\": [{\"setWeight\": 50}]},"
                   "\"analysis\": {\"interval\": \"1m\"}}}");
    world_stable(&w, "r1", 4);
    w.desired = "r2";
    drive(&w, T0 + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.rounds, 1); /* promoted after the first Successful round */
    world_free(&w);
}

static void test_inconclusive_step_is_extended(void **state)
{
    struct world w;
    int64_t promoted_plain, promoted_extended;

    (void)state;
    canary_world(&w, "");
    w.desired = "r2";
    drive(&w, T0 + 3600000);
    promoted_plain = w.now;
    world_free(&w);

    canary_world(&w, "");
    w.desired = "r2";
    w.script[0] = ANALYSIS_SUCCESSFUL;
    w.script[1] = ANALYSIS_INCONCLUSIVE;
    w.script[2] = ANALYSIS_INCONCLUSIVE;
    w.n_script = 3;
    drive(&w, T0 + 3600000);
    promoted_extended = w.now;
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.n_alerts, 0);
    /* The second 2m pause ended at +260s but waited for the +301s round. */
    assert_true(promoted_extended >= promoted_plain + 40000);
    world_free(&w);
}

static void test_progress_deadline_rolls_back(void **state)
{
    struct world w;

    (void)state;
    canary_world(&w, "");
    w.restart = true;
    w.desired = "r2";
    w.bad[0] = "r2";
    drive(&w, T0 + 3600000);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_string_equal(w.state.decision.reason, "ProgressDeadlineExceeded");
    assert_true(w.now >= T0 + 600000 && w.now < T0 + 600000 + 2 * ROLLOUT_POLL_MS);
    assert_int_equal(w.weight_calls, 0); /* no traffic ever moved */
    assert_int_equal(w.desired_count[1], 0);
    assert_int_equal(w.n_alerts, 1);
    world_free(&w);
}

static void test_manifest_change_restarts(void **state)
{
    struct world w;
    const char *w0, *reg3;

    (void)state;
    canary_world(&w, "");
    w.restart = true;
    w.desired = "r2";
    drive(&w, T0 + 90000); /* at 20% */
    assert_int_equal(w.state.weight, 20);
    assert_int_equal(w.lst_weight, 20);
    w.desired = "r3";
    step(&w);
    w0 = strstr(w.log, "weights 0 0;");
    reg3 = strstr(w.log, "register 1 r3;");
    assert_non_null(w0);
    assert_non_null(reg3);
    assert_true(w0 < reg3); /* traffic back first */
    assert_int_equal(w.state.step, 0);
    assert_int_equal(w.state.weight, 0);
    assert_string_equal(w.state.canary_revision, "r3");
    assert_int_equal(w.state.rollout_seq, 2);
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r3");
    assert_int_equal(w.n_alerts, 0);
    world_free(&w);

    /* Back to the stable revision mid-rollout: the canary is withdrawn. */
    canary_world(&w, "");
    w.desired = "r2";
    drive(&w, T0 + 90000);
    w.desired = "r1";
    step(&w);
    assert_int_equal(w.state.phase, ROLLOUT_IDLE);
    assert_int_equal(w.lst_weight, 0);
    assert_int_equal(w.desired_count[1], 0);
    assert_int_equal(w.pinned, -1);
    world_free(&w);
}

static void test_manual_pause_resume_promote(void **state)
{
    struct world w;
    struct rollout_result r;
    int i;

    (void)state;
    canary_world(&w, "");
    w.restart = true;
    w.desired = "r2";
    drive(&w, T0 + 30000); /* 20% set, in the 2m pause */
    assert_int_equal(w.state.step, 1);
    r = step_cmd(&w, ROLLOUT_CMD_PAUSE);
    assert_true(r.command_done);
    assert_int_equal(w.state.phase, ROLLOUT_PAUSED);
    for (i = 0; i < 10; i++) {
        r = step(&w);
        w.now += r.requeue_after_ms;
    }
    assert_int_equal(w.state.phase, ROLLOUT_PAUSED);
    assert_int_equal(w.state.step, 1); /* paused: no advance past the 2m */
    r = step_cmd(&w, ROLLOUT_CMD_RESUME);
    assert_int_equal(w.state.phase, ROLLOUT_PROGRESSING);
    assert_int_equal(w.state.step, 2); /* the elapsed pause ends at once */
    /* promote skips the current step */
    drive(&w, w.now + 20000);
    assert_int_equal(w.state.step, 3);
    r = step_cmd(&w, ROLLOUT_CMD_PROMOTE);
    assert_string_equal(r.command_message, "promote: skipped to the next step");
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    world_free(&w);

    /* promote --full from the first step */
    canary_world(&w, "");
    w.desired = "r2";
    drive(&w, T0 + 30000);
    r = step_cmd(&w, ROLLOUT_CMD_PROMOTE_FULL);
    assert_int_equal(w.state.phase, ROLLOUT_PROMOTING);
    assert_non_null(strstr(w.log, "scale 1 4;"));
    drive(&w, w.now + 60000);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.n_weight_log, 2); /* 20%, then the switch */
    world_free(&w);
}

static void test_pause_step_waits_for_promote(void **state)
{
    struct world w;
    struct rollout_result r;

    (void)state;
    world_init(&w, "{\"rollout\": {\"canary\": {\"steps\": [{\"setWeight\": 10}, {\"pause\": {}}]},"
                   "\"analysis\": {\"interval\": \"30s\", \"metrics\": []}}}");
    world_stable(&w, "r1", 10);
    w.desired = "r2";
    drive(&w, T0 + 3600000);
    assert_int_equal(w.state.phase, ROLLOUT_PAUSED);
    assert_string_equal(w.state.paused_reason, "PauseStep");
    assert_int_equal(w.state.weight, 10);
    r = step_cmd(&w, ROLLOUT_CMD_RESUME);
    assert_string_equal(r.command_message, "resume: waiting for promotion: use `aviary promote`");
    assert_int_equal(w.state.phase, ROLLOUT_PAUSED);
    step_cmd(&w, ROLLOUT_CMD_PROMOTE);
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    world_free(&w);
}

static void test_abort_retry_and_no_retry_loop(void **state)
{
    struct world w;
    struct rollout_result r;
    size_t loglen;
    int i;

    (void)state;
    canary_world(&w, "");
    w.restart = true;
    w.desired = "r2";
    drive(&w, T0 + 30000);
    r = step_cmd(&w, ROLLOUT_CMD_ABORT);
    assert_true(r.command_done);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_string_equal(w.state.decision.reason, "Aborted");
    assert_int_equal(w.n_alerts, 1);
    /* The rolled-back revision is not retried however long we wait. */
    loglen = strlen(w.log);
    for (i = 0; i < 50; i++) {
        r = step(&w);
        w.now += 60000;
    }
    assert_int_equal(strlen(w.log), loglen);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    /* retry starts it again from the first step */
    r = step_cmd(&w, ROLLOUT_CMD_RETRY);
    assert_int_equal(w.state.phase, ROLLOUT_PROGRESSING);
    assert_int_equal(w.state.step, 0);
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.n_alerts, 1);
    world_free(&w);

    /* After an automatic rollback a new manifest revision starts at once. */
    canary_world(&w, "");
    w.desired = "r2";
    w.default_verdict = ANALYSIS_FAILED;
    drive(&w, T0 + 3600000);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    w.default_verdict = ANALYSIS_SUCCESSFUL;
    w.desired = "r3";
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r3");
    assert_int_equal(w.n_alerts, 1);
    world_free(&w);
}

static void test_weights_only_move_when_healthy(void **state)
{
    struct world w;
    int i;

    (void)state;
    canary_world(&w, "");
    w.desired = "r2";
    w.start_ms = 200000; /* slow tasks */
    for (i = 0; i < 100; i++) {
        struct rollout_result r = step(&w);

        if (w.now < T0 + 200000)
            assert_int_equal(w.weight_calls, 0);
        w.now += r.requeue_after_ms;
    }
    assert_true(w.weight_calls >= 1);
    assert_int_equal(w.weight_log[0], 20);
    world_free(&w);
}

static void test_rollback_waits_for_healthy_stable(void **state)
{
    struct world w;
    int i;

    (void)state;
    canary_world(&w, "");
    w.desired = "r2";
    drive(&w, T0 + 30000);
    assert_int_equal(w.lst_weight, 20);
    w.stable_sick = true;
    step_cmd(&w, ROLLOUT_CMD_ABORT);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLING_BACK);
    assert_int_equal(w.lst_weight, 20); /* not sent to a dead stable */
    assert_int_equal(w.n_alerts, 1);
    for (i = 0; i < 5; i++) {
        struct rollout_result r = step(&w);

        w.now += r.requeue_after_ms;
    }
    assert_int_equal(w.state.phase, ROLLOUT_ROLLING_BACK);
    w.stable_sick = false;
    step(&w);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_int_equal(w.lst_weight, 0);
    assert_int_equal(w.n_alerts, 1);
    world_free(&w);
}

static void test_undelivered_alert_is_retried_once(void **state)
{
    struct world w;

    (void)state;
    canary_world(&w, "");
    w.restart = true;
    w.desired = "r2";
    drive(&w, T0 + 30000);
    w.fail_alerts = true; /* SNS down */
    step_cmd(&w, ROLLOUT_CMD_ABORT);
    assert_int_equal(w.n_alerts, 0);
    assert_int_equal(w.state.n_outbox, 1);
    step(&w);
    assert_int_equal(w.n_alerts, 0);
    w.fail_alerts = false;
    step(&w);
    assert_int_equal(w.n_alerts, 1);
    step(&w);
    step(&w);
    assert_int_equal(w.n_alerts, 1);
    assert_int_equal(w.state.n_outbox, 0);
    assert_int_equal(w.state.n_sent, 1);
    assert_string_equal(w.state.sent[0], w.alert_ids[0]);
    world_free(&w);
}

#define SPEC_BG                                                                                    \
    "{\"rollout\": {\"strategy\": \"blueGreen\", \"blueGreen\": {\"autoPromote\": %s,"             \
    "\"prePromotion\": {\"measurements\": 2}}, \"scaleDownDelay\": \"5m\","                        \
    "\"analysis\": {\"interval\": \"1m\", \"failureLimit\": 0,"                                    \
    "\"metrics\": [{\"name\": \"error-rate\", \"type\": \"errorRate\", \"max\": 0.05}]}}}"

static void test_blue_green_promotes(void **state)
{
    struct world w;
    char buf[1024];

    (void)state;
    snprintf(buf, sizeof(buf), SPEC_BG, "true");
    world_init(&w, buf);
    world_stable(&w, "r1", 3);
    w.restart = true;
    w.desired = "r2";
    drive(&w, T0 + 3600000);
    print_message("blue/green: %s\n", w.log);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.state.phase, ROLLOUT_IDLE);
    assert_non_null(strstr(w.log, "register 1 r2;scale 1 3;"));
    assert_non_null(strstr(w.log, "test 1;"));
    assert_true(strstr(w.log, "test 1;") < strstr(w.log, "weights 1 0;"));
    assert_int_equal(w.weight_calls, 1); /* one switch, no split */
    assert_true(w.rounds >= 2 + 1);      /* pre-promotion, then post-promotion */
    assert_true(strstr(w.log, "weights 1 0;") < strstr(w.log, "scale 0 0;"));
    assert_int_equal(w.n_alerts, 0);
    world_free(&w);
}

static void test_blue_green_switches_back(void **state)
{
    struct world w;
    char buf[1024];

    (void)state;
    snprintf(buf, sizeof(buf), SPEC_BG, "true");
    world_init(&w, buf);
    world_stable(&w, "r1", 3);
    w.restart = true;
    w.desired = "r2";
    w.script[0] = ANALYSIS_SUCCESSFUL;
    w.script[1] = ANALYSIS_SUCCESSFUL;
    w.n_script = 2;
    w.default_verdict = ANALYSIS_FAILED; /* bad once real traffic arrives */
    drive(&w, T0 + 3600000);
    print_message("blue/green switch-back: %s\n", w.log);
    assert_int_equal(w.max_phase_seen, ROLLOUT_SCALING_DOWN);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_string_equal(w.state.stable_revision, "r1");
    assert_int_equal(w.state.stable_slot, 0);
    assert_int_equal(w.stable_slot_set, 0);
    assert_int_equal(w.lst_stable, 0);
    assert_int_equal(w.lst_weight, 0);
    assert_int_equal(w.desired_count[0], 3); /* old slot was kept at full size */
    assert_int_equal(w.desired_count[1], 0);
    assert_int_equal(w.weight_calls, 2); /* switch, switch back */
    assert_true(strstr(w.log, "weights 0 0;") < strstr(w.log, "scale 1 0;"));
    assert_int_equal(w.n_alerts, 1);
    assert_string_equal(w.state.rolled_back_revision, "r2");
    /* Pre-promotion rounds measure the test listener (no user traffic);
     * the post-promotion round that failed measured a revision serving
     * everyone, and says so (the decision too). */
    assert_int_equal(w.rounds, 3);
    assert_int_equal(w.round_weight[0], 0);
    assert_int_equal(w.round_weight[1], 0);
    assert_int_equal(w.round_weight[2], 100);
    assert_int_equal(w.state.decision.weight, 100);
    world_free(&w);
}

static void test_blue_green_waits_for_promote(void **state)
{
    struct world w;
    char buf[1024];

    (void)state;
    snprintf(buf, sizeof(buf), SPEC_BG, "false");
    world_init(&w, buf);
    world_stable(&w, "r1", 3);
    w.desired = "r2";
    drive_to(&w, ROLLOUT_PAUSED, 3600000);
    assert_string_equal(w.state.paused_reason, "AwaitingPromotion");
    assert_int_equal(w.weight_calls, 0);
    step_cmd(&w, ROLLOUT_CMD_PROMOTE);
    assert_int_equal(w.state.phase, ROLLOUT_SCALING_DOWN);
    assert_int_equal(w.lst_stable, 1);
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    world_free(&w);
}

static void test_first_deployment_and_all_at_once(void **state)
{
    struct world w;

    (void)state;
    canary_world(&w, "");
    rollout_state_init(&w.state);
    memset(w.rev, 0, sizeof(w.rev));
    memset(w.desired_count, 0, sizeof(w.desired_count));
    memset(w.healthy, 0, sizeof(w.healthy));
    w.restart = true;
    w.desired = "r1";
    w.full_min = 2;
    drive(&w, T0 + 3600000);
    assert_string_equal(w.log, "register 0 r1;scale 0 2;weights 0 0;stable 0 r1;");
    assert_int_equal(w.state.phase, ROLLOUT_IDLE);
    assert_false(w.state.initial);
    assert_int_equal(w.rounds, 0);
    world_free(&w);

    world_init(&w, "{\"rollout\": {\"strategy\": \"allAtOnce\"}}");
    world_stable(&w, "r1", 3);
    w.desired = "r2";
    drive(&w, T0 + 3600000);
    assert_string_equal(w.log, "pin 3;register 1 r2;scale 1 3;weights 1 0;stable 1 r2;unpin;"
                               "scale 0 0;");
    assert_int_equal(w.rounds, 0);
    world_free(&w);
}

static void test_first_deployment_deadline(void **state)
{
    struct world w;
    int i;

    (void)state;
    canary_world(&w, "");
    rollout_state_init(&w.state);
    memset(w.rev, 0, sizeof(w.rev));
    memset(w.desired_count, 0, sizeof(w.desired_count));
    memset(w.healthy, 0, sizeof(w.healthy));
    w.restart = true;
    w.desired = "r1";
    w.bad[0] = "r1";
    drive(&w, T0 + 3600000);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_string_equal(w.log, "register 0 r1;scale 0 2;scale 0 0;alert rollback;");
    assert_non_null(strstr(w.last_body, "first deployment"));
    for (i = 0; i < 10; i++)
        step(&w);
    assert_int_equal(w.n_alerts, 1);
    w.bad[0] = NULL;
    w.desired = "r1b";
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r1b");
    assert_int_equal(w.state.phase, ROLLOUT_IDLE);
    world_free(&w);
}

static void test_abort_during_scale_down_switches_back(void **state)
{
    struct world w;

    (void)state;
    canary_world(&w, "");
    w.restart = true;
    w.desired = "r2";
    drive_to(&w, ROLLOUT_SCALING_DOWN, 3600000);
    assert_int_equal(w.lst_stable, 1);
    assert_int_equal(w.desired_count[0], 4); /* old slot still full */
    step_cmd(&w, ROLLOUT_CMD_ABORT);
    assert_int_equal(w.state.phase, ROLLOUT_ROLLED_BACK);
    assert_int_equal(w.state.stable_slot, 0);
    assert_string_equal(w.state.stable_revision, "r1");
    assert_string_equal(w.state.rolled_back_revision, "r2");
    assert_int_equal(w.lst_stable, 0);
    assert_int_equal(w.lst_weight, 0);
    assert_int_equal(w.stable_slot_set, 0);
    assert_int_equal(w.desired_count[1], 0);
    assert_int_equal(w.n_alerts, 1);
    world_free(&w);
}

static void test_status_conditions(void **state)
{
    struct world w;
    json_t *status = status_new("Application", "fraud-model");

    (void)state;
    canary_world(&w, "");
    w.desired = "r2";
    w.default_verdict = ANALYSIS_FAILED;
    drive(&w, T0 + 90000);
    rollout_set_conditions(&w.state, status, w.now / 1000);
    assert_int_equal(rollout_status_phase(&w.state), PHASE_PROGRESSING);
    assert_string_equal(status_condition(status, "Progressing"), "True");
    drive(&w, T0 + 3600000);
    rollout_set_conditions(&w.state, status, w.now / 1000);
    assert_int_equal(rollout_status_phase(&w.state), PHASE_ROLLED_BACK);
    assert_string_equal(status_condition(status, "Degraded"), "True");
    assert_string_equal(status_condition(status, "Progressing"), "False");
    assert_false(rollout_active(&w.state));
    json_decref(status);
    world_free(&w);
}

static void test_lost_status_adopts_serving_slot(void **state)
{
    struct world w;

    (void)state;
    canary_world(&w, "");
    /* slot b serves r1 (4 tasks), but the status store was lost */
    rollout_state_init(&w.state);
    memset(w.rev, 0, sizeof(w.rev));
    snprintf(w.rev[1], sizeof(w.rev[1]), "r1");
    w.desired_count[0] = 0;
    w.desired_count[1] = 4;
    w.healthy[1] = 4;
    w.desired = "r2";
    step(&w);
    assert_int_equal(w.state.stable_slot, 1);
    assert_string_equal(w.state.stable_revision, "r1");
    assert_false(w.state.initial);
    assert_int_equal(w.state.canary_slot, 0);
    assert_null(strstr(w.log, "register 1")); /* the serving slot is left alone */
    drive(&w, w.now + 3600000);
    assert_string_equal(w.state.stable_revision, "r2");
    assert_int_equal(w.state.stable_slot, 0);
    world_free(&w);
}

static void test_canary_sizing(void **state)
{
    static const struct {
        int full, weight, want;
    } cases[] = {
        {4, 20, 1}, {4, 25, 1}, {4, 26, 2}, {4, 50, 2}, {4, 100, 4}, {10, 10, 1},   {10, 11, 2},
        {3, 33, 1}, {3, 34, 2}, {1, 1, 1},  {0, 50, 1}, {7, 0, 1},   {100, 99, 99}, {9, 70, 7},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rollout_canary_count(cases[i].full, cases[i].weight), cases[i].want);
}

static void test_analysis_windows(void **state)
{
    struct world w;
    struct rollout_state s;
    int64_t a, b;

    (void)state;
    canary_world(&w, "");
    s = w.state;
    s.phase = ROLLOUT_PROGRESSING;
    s.canary_slot = 1;
    s.analysis_since = T0 + 12300;
    assert_false(rollout_analysis_due(&w.spec, &s, T0 + 70000, &a, &b));
    assert_true(rollout_analysis_due(&w.spec, &s, T0 + 121000, &a, &b));
    assert_int_equal(a, T0 + 60000);
    assert_int_equal(b, T0 + 120000);
    s.last_analysis_at = b;
    assert_false(rollout_analysis_due(&w.spec, &s, T0 + 170000, &a, &b));
    assert_true(rollout_analysis_due(&w.spec, &s, T0 + 180000, &a, &b));
    assert_int_equal(a, T0 + 120000);
    world_free(&w);
}

static void test_state_json(void **state)
{
    struct rollout_state s;
    json_t *legacy = json_pack("{s:s, s:s, s:s, s:i, s:i}", "strategy", "allAtOnce", "phase",
                               "Completed", "stableRevision", "abc123", "weight", 0, "step", 0);
    json_t *bad = json_pack("{s:s}", "stableSlot", "c");
    json_t *out = json_pack("{s:[]}", "analysis");

    (void)state;
    assert_int_equal(rollout_state_from_json(legacy, &s), 0);
    assert_int_equal(s.phase, ROLLOUT_IDLE);
    assert_string_equal(s.stable_revision, "abc123");
    assert_int_equal(rollout_state_from_json(NULL, &s), 0);
    assert_int_equal(s.stable_slot, 0);
    assert_int_equal(rollout_state_from_json(bad, &s), -1);
    /* to_json keeps keys it does not own (the analysis history) */
    assert_int_equal(rollout_state_to_json(&s, out), 0);
    assert_true(json_is_array(json_object_get(out, "analysis")));
    assert_string_equal(json_string_value(json_object_get(out, "phase")), "Idle");
    json_decref(legacy);
    json_decref(bad);
    json_decref(out);
}

static void test_spec_parse(void **state)
{
    struct rollout_spec spec;
    char err[256];
    json_t *j = json_loads("{\"rollout\": {\"canary\": {\"steps\": [{\"setWeight\": 10, "
                           "\"pause\": {}}]}}}",
                           0, NULL);

    (void)state;
    assert_int_equal(rollout_spec_parse(j, &spec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exactly one of setWeight or pause"));
    json_decref(j);
    j = json_object();
    assert_int_equal(rollout_spec_parse(j, &spec, err, sizeof(err)), 0);
    assert_int_equal(spec.strategy, ROLLOUT_CANARY);
    assert_int_equal(spec.n_steps, 4);
    assert_int_equal(spec.steps[0].weight, 20);
    assert_int_equal(spec.steps[1].pause_ms, 60000);
    assert_int_equal(spec.progress_deadline_ms, 600000);
    assert_int_equal(spec.scale_down_delay_ms, 30000);
    assert_int_equal(spec.analysis.n_metrics, 1);
    assert_int_equal(spec.analysis.inconclusive_limit, 5);
    assert_true(spec.auto_promote);
    assert_int_equal(spec.pre_promotion_measurements, 3);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_release_promotes),
        cmocka_unit_test(test_good_release_restart_every_step),
        cmocka_unit_test(test_promotion_alert_once),
        cmocka_unit_test(test_failure_rolls_back_with_one_alert),
        cmocka_unit_test(test_failure_rollback_restart_every_step),
        cmocka_unit_test(test_failure_limit_tolerated),
        cmocka_unit_test(test_inconclusive_extends_then_pauses),
        cmocka_unit_test(test_inconclusive_step_is_extended),
        cmocka_unit_test(test_never_promotes_unmeasured),
        cmocka_unit_test(test_progress_deadline_rolls_back),
        cmocka_unit_test(test_manifest_change_restarts),
        cmocka_unit_test(test_manual_pause_resume_promote),
        cmocka_unit_test(test_pause_step_waits_for_promote),
        cmocka_unit_test(test_abort_retry_and_no_retry_loop),
        cmocka_unit_test(test_weights_only_move_when_healthy),
        cmocka_unit_test(test_rollback_waits_for_healthy_stable),
        cmocka_unit_test(test_undelivered_alert_is_retried_once),
        cmocka_unit_test(test_blue_green_promotes),
        cmocka_unit_test(test_blue_green_switches_back),
        cmocka_unit_test(test_blue_green_waits_for_promote),
        cmocka_unit_test(test_first_deployment_and_all_at_once),
        cmocka_unit_test(test_first_deployment_deadline),
        cmocka_unit_test(test_abort_during_scale_down_switches_back),
        cmocka_unit_test(test_status_conditions),
        cmocka_unit_test(test_lost_status_adopts_serving_slot),
        cmocka_unit_test(test_canary_sizing),
        cmocka_unit_test(test_analysis_windows),
        cmocka_unit_test(test_state_json),
        cmocka_unit_test(test_spec_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
