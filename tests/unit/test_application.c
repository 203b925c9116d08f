/* Tests of the Application reconciler as a whole (reconcilers/application.c)
 * against the local AWS emulator: status.observedGeneration is the
 * generation of the last spec a pass finished converging, and a converged
 * resync reads each ECS service (and target health) once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "reconcilers/app.h"
#include "support/rollout_fixture.h"

#define MAX_PASSES 60

/* One reconcile of generation `gen` (rfx_reconcile always sends 1). */
static void reconcile_gen(struct rfx *f, int64_t gen)
{
    struct reconcile_request req = {.kind = "Application",
                                    .name = RFX_APP,
                                    .spec = f->spec,
                                    .revision = f->revision,
                                    .generation = gen,
                                    .now = (int64_t)rfx_now(f) - 1,
                                    .aws = f->emu.client};

    memset(&f->last, 0, sizeof(f->last));
    application_reconcile(&req, f->status, &f->last, false, NULL);
    if (f->last.outcome == RECONCILE_ERROR)
        print_message("reconcile: %s\n", f->last.error);
    assert_int_not_equal(f->last.outcome, RECONCILE_INVALID);
}

static const char *synced(struct rfx *f)
{
    const json_t *c = rfx_condition(f, "Synced");
    return c != NULL ? json_string_value(json_object_get(c, "status")) : "";
}

static json_int_t observed_generation(struct rfx *f)
{
    const json_t *g = json_object_get(f->status, "observedGeneration");
    return json_is_integer(g) ? json_integer_value(g) : -1;
}

static void test_observed_generation(void **state)
{
    struct rfx *f = *state;
    int i;

    /* The first pass waits for AWS: nothing converged yet. */
    reconcile_gen(f, 1);
    assert_string_equal(synced(f), "False");
    assert_int_equal(observed_generation(f), -1);
    rfx_first_deployment(f);
    assert_int_equal(observed_generation(f), 1);

    /* A new spec (generation 2): observed once a pass converges it. */
    json_object_set_new(json_object_get(f->spec, "scaling"), "max", json_integer(7));
    for (i = 0; i < MAX_PASSES; i++) {
        reconcile_gen(f, 2);
        if (strcmp(synced(f), "True") == 0)
            break;
        assert_int_equal(observed_generation(f), 1);
        rfx_next_step(f);
    }
    assert_true(i < MAX_PASSES);
    assert_int_equal(observed_generation(f), 2);

    /* A failed pass leaves it where it was. */
    {
        struct reconcile_request req = {.kind = "Application",
                                        .name = RFX_APP,
                                        .spec = f->spec,
                                        .revision = f->revision,
                                        .generation = 3,
                                        .now = (int64_t)rfx_now(f) - 1,
                                        .aws = NULL};
        struct reconcile_result res;
        memset(&res, 0, sizeof(res));
        application_reconcile(&req, f->status, &res, false, NULL);
        assert_int_equal(res.outcome, RECONCILE_INVALID);
        assert_int_equal(observed_generation(f), 2);
    }
}

/* Calls of one operation in the emulator's log (all services). */
static int calls_of(const json_t *calls, const char *operation)
{
    const json_t *c;
    size_t i;
    int n = 0;

    json_array_foreach(calls, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "operation")), operation) == 0)
            n++;
    }
    return n;
}

/* A converged resync reads each thing once: the ECS services in one
 * DescribeServices shared by service.c and rollout.c, target health once per
 * serving target group. Prints the reads per resync. */
static void test_converged_resync_reads_once(void **state)
{
    struct rfx *f = *state;
    json_t *calls;
    const json_t *c;
    size_t i;
    int reads;

    rfx_first_deployment(f);
    rfx_reconcile(f);
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
    rfx_reconcile(f);
    calls = test_emulator_control(&f->emu, "GET", "calls", NULL);
    assert_non_null(calls);
    reads = (int)json_integer_value(
        json_object_get(json_object_get(f->status, "lastReconcile"), "reads"));
    print_message("converged resync: %d reads (%zu calls logged)\n", reads, json_array_size(calls));
    json_array_foreach(calls, i, c)
    {
        print_message("  %s.%s\n", json_string_value(json_object_get(c, "service")),
                      json_string_value(json_object_get(c, "operation")));
        assert_false(json_is_true(json_object_get(c, "mutating")));
    }
    assert_int_equal(calls_of(calls, "DescribeServices"), 1);
    assert_true(calls_of(calls, "DescribeTargetHealth") <= 1); /* slot a serves */
    assert_int_equal((int)json_array_size(calls), reads);
    json_decref(calls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_observed_generation, rfx_setup, rfx_teardown),
        cmocka_unit_test_setup_teardown(test_converged_resync_reads_once, rfx_setup, rfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
