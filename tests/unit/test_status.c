/* Unit tests for status documents: phases, condition transitions, events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "reconcilers/status.h"

static const char *cond_field(json_t *st, const char *type, const char *field)
{
    json_t *conds = json_object_get(st, "conditions");
    size_t i;
    json_t *c;

    json_array_foreach(conds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return json_string_value(json_object_get(c, field));
    }
    return NULL;
}

static void test_phases(void **state)
{
    enum status_phase p;
    json_t *st = status_new("Application", "fraud");
    (void)state;

    assert_string_equal(json_string_value(json_object_get(st, "phase")), "Pending");
    status_set_phase(st, PHASE_ROLLED_BACK);
    assert_string_equal(json_string_value(json_object_get(st, "phase")), "RolledBack");
    assert_int_equal(status_phase_parse("Deleting", &p), 0);
    assert_int_equal(p, PHASE_DELETING);
    assert_int_equal(status_phase_parse("Sleeping", &p), -1);
    json_decref(st);
}

static void test_condition_transition_time_moves_only_on_status_change(void **state)
{
    json_t *st = status_new("Application", "fraud");
    (void)state;

    assert_true(status_set_condition(st, "Synced", "True", "Converged", "ok", 1000));
    assert_string_equal(cond_field(st, "Synced", "lastTransitionTime"), "1970-01-01T00:16:40Z");
    /* Same status, new message: changed, but the transition time stays. */
    assert_true(status_set_condition(st, "Synced", "True", "Converged", "still ok", 2000));
    assert_string_equal(cond_field(st, "Synced", "lastTransitionTime"), "1970-01-01T00:16:40Z");
    assert_false(status_set_condition(st, "Synced", "True", "Converged", "still ok", 3000));
    assert_true(status_set_condition(st, "Synced", "False", "AwsError", "throttled", 4000));
    assert_string_equal(cond_field(st, "Synced", "lastTransitionTime"), "1970-01-01T01:06:40Z");
    assert_string_equal(status_condition(st, "Synced"), "False");
    assert_null(status_condition(st, "Degraded"));
    json_decref(st);
}

static void test_events_are_counted_and_bounded(void **state)
{
    json_t *st = status_new("Application", "fraud");
    json_t *events, *last;
    char msg[32];
    (void)state;

    status_add_event(st, "Warning", "AwsError", "throttled", 10);
    status_add_event(st, "Warning", "AwsError", "throttled", 20);
    events = json_object_get(st, "events");
    assert_int_equal(json_array_size(events), 1);
    last = json_array_get(events, 0);
    assert_int_equal(json_integer_value(json_object_get(last, "count")), 2);
    assert_string_equal(json_string_value(json_object_get(last, "lastTime")),
                        "1970-01-01T00:00:20Z");
    for (int i = 0; i < STATUS_EVENTS_MAX + 10; i++) {
        snprintf(msg, sizeof(msg), "event %d", i);
        status_add_event(st, "Normal", "Created", msg, 30 + i);
    }
    assert_int_equal(json_array_size(events), STATUS_EVENTS_MAX);
    last = json_array_get(events, STATUS_EVENTS_MAX - 1);
    snprintf(msg, sizeof(msg), "event %d", STATUS_EVENTS_MAX + 9);
    assert_string_equal(json_string_value(json_object_get(last, "message")), msg);
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phases),
        cmocka_unit_test(test_condition_transition_time_moves_only_on_status_change),
        cmocka_unit_test(test_events_are_counted_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
