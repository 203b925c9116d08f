/* Tests for the task definitions of an Application (reconcilers/taskdef.c):
 * the roles in the desired definition, the comparison that decides whether
 * a new revision is registered, and that a changed role registers exactly
 * one new definition per slot (no churn), against the local emulator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reconcilers/app.h"
#include "reconcilers/status.h"
#include "reconcilers/taskdef.h"
#include "support/emulator.h"

#define ROLE "arn:aws:iam::123456789012:role/"

static const char *SPEC_JSON = "{\"image\": \"registry.example.com/ml/m:1\", \"port\": 8080,"
                               " \"cpu\": 256, \"memory\": 512, \"env\": {\"A\": \"1\"}}";

struct fx {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
};

static int setup(void **state)
{
    static struct fx f;

    memset(&f, 0, sizeof(f));
    if (test_emulator_start(&f.emu, 0.01) != 0)
        return -1;
    f.spec = json_loads(SPEC_JSON, 0, NULL);
    f.status = status_new("Application", "tdapp");
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    json_decref(f->spec);
    json_decref(f->status);
    test_emulator_stop(&f->emu);
    return 0;
}

/* Sets what the cluster concern would have recorded (task may be NULL). */
static void set_roles(struct fx *f, const char *exec, const char *task)
{
    json_t *res = json_object_get(f->status, "resources");
    json_t *cl;

    if (res == NULL) {
        res = json_object();
        json_object_set_new(f->status, "resources", res);
    }
    cl = json_pack("{s:s, s:s}", "executionRoleArn", exec, "logGroup", "/aviary/tdapp");
    if (task != NULL)
        json_object_set_new(cl, "taskRoleArn", json_string(task));
    json_object_set_new(res, "cluster", cl);
}

struct pass {
    enum app_step step;
    int writes;
    char arn[2][512];
};

static struct pass ensure_both(struct fx *f)
{
    struct reconcile_request req = {.kind = "Application",
                                    .name = "tdapp",
                                    .spec = f->spec,
                                    .revision = "r1",
                                    .now = (int64_t)time(NULL),
                                    .aws = f->emu.client};
    struct app_ctx ctx;
    struct taskdef_pass tp = {0};
    struct pass p = {0};

    app_ctx_init(&ctx, &req, f->status, false);
    p.step = APP_STEP_READY;
    for (int slot = 0; slot < 2 && p.step == APP_STEP_READY; slot++)
        p.step = taskdef_ensure(&ctx, &tp, slot, p.arn[slot], sizeof(p.arn[slot]));
    if (p.step == APP_STEP_FAILED)
        fail_msg("%s", ctx.error);
    p.writes = ctx.writes;
    app_ctx_clear(&ctx);
    return p;
}

static json_t *desired(struct fx *f)
{
    struct reconcile_request req = {
        .kind = "Application", .name = "tdapp", .spec = f->spec, .aws = f->emu.client};
    struct app_ctx ctx;
    json_t *td;

    app_ctx_init(&ctx, &req, f->status, false);
    td = taskdef_desired(&ctx, "r1", 0);
    app_ctx_clear(&ctx);
    return td;
}

static void test_desired_carries_both_roles(void **state)
{
    struct fx *f = *state;
    json_t *td;

    set_roles(f, ROLE "aviary-tdapp-execution", ROLE "aviary-tdapp-task");
    td = desired(f);
    assert_string_equal(json_string_value(json_object_get(td, "executionRoleArn")),
                        ROLE "aviary-tdapp-execution");
    assert_string_equal(json_string_value(json_object_get(td, "taskRoleArn")),
                        ROLE "aviary-tdapp-task");
    json_decref(td);
    /* Not known (yet): no taskRoleArn member at all. */
    set_roles(f, ROLE "aviary-tdapp-execution", NULL);
    td = desired(f);
    assert_null(json_object_get(td, "taskRoleArn"));
    json_decref(td);
}

static void test_matches_compares_roles(void **state)
{
    struct fx *f = *state;
    json_t *want, *described;

    set_roles(f, ROLE "aviary-tdapp-execution", ROLE "aviary-tdapp-task");
    want = desired(f);
    described = json_deep_copy(want);
    /* What DescribeTaskDefinition adds does not count. */
    json_object_set_new(described, "revision", json_integer(3));
    json_object_set_new(described, "status", json_string("ACTIVE"));
    assert_true(taskdef_matches(want, described));
    json_object_set_new(described, "taskRoleArn", json_string(ROLE "other"));
    assert_false(taskdef_matches(want, described));
    json_object_del(described, "taskRoleArn");
    assert_false(taskdef_matches(want, described));
    json_object_set_new(described, "taskRoleArn", json_string(ROLE "aviary-tdapp-task"));
    json_object_set_new(described, "executionRoleArn",
                        json_string(ROLE "aviary-ecs-task-execution"));
    assert_false(taskdef_matches(want, described));
    json_decref(described);
    json_decref(want);
}

static void test_role_change_registers_once(void **state)
{
    struct fx *f = *state;
    struct pass p1, p2, p3, p4;
    json_t *o, *in;
    struct aws_error err;

    /* As an earlier version registered them: the shared execution role,
     * no task role. */
    set_roles(f, ROLE "aviary-ecs-task-execution", NULL);
    p1 = ensure_both(f);
    assert_int_equal(p1.step, APP_STEP_READY);
    assert_int_equal(p1.writes, 2);
    p2 = ensure_both(f);
    assert_int_equal(p2.writes, 0);
    assert_string_equal(p2.arn[0], p1.arn[0]);

    /* The per-application roles: one new definition per slot ... */
    set_roles(f, ROLE "aviary-tdapp-execution", ROLE "aviary-tdapp-task");
    p3 = ensure_both(f);
    assert_int_equal(p3.writes, 2);
    assert_string_not_equal(p3.arn[0], p1.arn[0]);
    assert_string_not_equal(p3.arn[1], p1.arn[1]);
    in = json_pack("{s:s}", "taskDefinition", p3.arn[0]);
    assert_int_equal(aws_call(f->emu.client, "ecs", "DescribeTaskDefinition", in, &o, &err), 0);
    json_decref(in);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "taskDefinition"), "taskRoleArn")),
        ROLE "aviary-tdapp-task");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "taskDefinition"),
                                                          "executionRoleArn")),
                        ROLE "aviary-tdapp-execution");
    json_decref(o);
    /* ... and then none, pass after pass, also with the cache lost. */
    for (int i = 0; i < 3; i++) {
        p4 = ensure_both(f);
        assert_int_equal(p4.writes, 0);
        assert_string_equal(p4.arn[0], p3.arn[0]);
        assert_string_equal(p4.arn[1], p3.arn[1]);
    }
    json_object_del(json_object_get(json_object_get(f->status, "resources"), "service"),
                    "taskDefinitions");
    p4 = ensure_both(f);
    assert_int_equal(p4.writes, 0);
    assert_string_equal(p4.arn[0], p3.arn[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_desired_carries_both_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matches_compares_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_change_registers_once, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
