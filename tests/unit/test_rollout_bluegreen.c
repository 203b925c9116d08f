/* Tests for the rollout concern (reconcilers/rollout.c) through the whole
 * Application reconciler against the local AWS emulator: unhealthy canary
 * tasks hit the progress deadline without ever receiving traffic;
 * blue/green waits for `aviary promote` behind the test listener, switches
 * in one call and scales the old slot down after the delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/rollout_fixture.h"

#define STEP_S    2
#define MAX_STEPS 150

static void test_unhealthy_canary_hits_the_deadline(void **state)
{
    struct rfx *f = *state;
    json_t *alerts, *weights;
    const json_t *w;
    size_t i;

    rfx_set_profile(f, RFX_IMAGE2, json_pack("{s:b}", "healthy", 0));
    rfx_first_deployment(f);
    rfx_new_revision(f);
    rfx_run_until(f, "RolledBack", NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rfx_rollout(f), "decision"), "reason")),
        "ProgressDeadlineExceeded");
    assert_int_equal(rfx_desired(f, 1), 0);
    assert_int_equal(rfx_weight(f, 80, 0), 100);

    /* No user was ever sent to the unhealthy canary. */
    weights = test_emulator_control(&f->emu, "GET", "weights", NULL);
    json_array_foreach(weights, i, w)
    {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)json_object_get(w, "weights"), key, v)
        {
            if (strstr(key, RFX_APP "-tgb") != NULL)
                assert_int_equal(json_integer_value(v), 0);
        }
    }
    json_decref(weights);
    alerts = rfx_alerts(f);
    assert_int_equal(json_array_size(alerts), 1);
    json_decref(alerts);
    assert_int_equal(rfx_webhook_calls(f), 1);
}

static void test_blue_green_promote(void **state)
{
    struct rfx *f = *state;
    json_t *ro = json_object_get(f->spec, "rollout");
    int modify_before;

    json_object_set_new(ro, "strategy", json_string("blueGreen"));
    json_object_set_new(ro, "scaleDownDelay", json_string("20s"));
    json_object_set_new(ro, "blueGreen",
                        json_pack("{s:i, s:b, s:{s:i}}", "testPort", 8080, "autoPromote", 0,
                                  "prePromotion", "measurements", 0));
    rfx_first_deployment(f);
    rfx_new_revision(f);

    /* Full size behind the test listener, waiting for `aviary promote`. */
    rfx_run_until(f, "Paused", NULL);
    assert_string_equal(rfx_rollout_str(f, "pausedReason"), "AwaitingPromotion");
    assert_int_equal(rfx_desired(f, 1), 2);
    assert_int_equal(rfx_weight(f, 8080, 1), 100);
    assert_int_equal(rfx_weight(f, 8080, 0), 0);
    assert_int_equal(rfx_weight(f, 80, 0), 100);
    for (int i = 0; i < 3; i++) {
        rfx_advance(f, STEP_S);
        rfx_reconcile(f);
    }
    assert_string_equal(rfx_rollout_str(f, "phase"), "Paused");

    /* Promote: all traffic switches in one call, the old slot stays at
     * full size for the delay, then goes. */
    f->command = json_pack("{s:s}", "action", "promote");
    modify_before = 0;
    {
        json_t *calls =
            test_emulator_control(&f->emu, "GET", "calls?operation=ModifyListener", NULL);
        modify_before = (int)json_array_size(calls);
        json_decref(calls);
    }
    rfx_run_until(f, "ScalingDown", NULL);
    assert_null(f->command);
    assert_int_equal(rfx_weight(f, 80, 1), 100);
    assert_int_equal(rfx_weight(f, 8080, 1), -1); /* the test listener is gone */
    assert_int_equal(rfx_desired(f, 0), 2);
    {
        json_t *calls =
            test_emulator_control(&f->emu, "GET", "calls?operation=ModifyListener", NULL);
        assert_int_equal((int)json_array_size(calls) - modify_before, 1);
        json_decref(calls);
    }
    rfx_run_until(f, "Idle", RFX_REV2);
    assert_string_equal(rfx_rollout_str(f, "stableSlot"), "b");
    assert_int_equal(rfx_desired(f, 0), 0);
    assert_null(
        json_object_get(json_object_get(json_object_get(f->status, "resources"), "loadbalancer"),
                        "testListenerArn"));
}

/* Post-promotion measurements are recorded with the measured revision's
 * share of the traffic: 100 once it took all of it. */
static void test_blue_green_post_promotion_weight(void **state)
{
    struct rfx *f = *state;
    json_t *ro = json_object_get(f->spec, "rollout");
    const json_t *m;
    size_t i, n = 0;

    json_object_set_new(ro, "strategy", json_string("blueGreen"));
    json_object_set_new(ro, "scaleDownDelay", json_string("30s"));
    json_object_set_new(ro, "blueGreen",
                        json_pack("{s:i, s:b, s:{s:i}}", "testPort", 8080, "autoPromote", 1,
                                  "prePromotion", "measurements", 0));
    rfx_first_deployment(f);
    rfx_new_revision(f);
    rfx_run_until(f, "ScalingDown", NULL);
    assert_int_equal(rfx_weight(f, 80, 1), 100);
    rfx_run_until(f, "Idle", RFX_REV2);
    json_array_foreach(json_object_get(rfx_rollout(f), "analysis"), i, m)
    {
        assert_int_equal(json_integer_value(json_object_get(m, "weight")), 100);
        n++;
    }
    assert_true(n >= 1); /* the 30 s delay holds at least one 10 s round */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unhealthy_canary_hits_the_deadline, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_blue_green_promote, rfx_setup, rfx_teardown),
        cmocka_unit_test_setup_teardown(test_blue_green_post_promotion_weight, rfx_setup,
                                        rfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
