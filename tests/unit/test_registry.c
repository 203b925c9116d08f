/* Unit tests of the registry concern (reconcilers/registry.c) against the
 * local AWS emulator: creation, quiet resyncs, drift, in-place updates,
 * deletion (empty repositories go, repositories with images are kept),
 * repositories aviary did not create, plan mode. Test main thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/app.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define APP "regtest"

struct fixture {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    struct reconcile_request req;
};

static const char *SPEC = "{\"image\": \"123456789012.dkr.ecr.us-east-1.amazonaws.com/regtest:1\","
                          " \"port\": 8080, \"registry\": {\"keepImages\": 20, \"scanOnPush\": "
                          "true}, \"deletionPolicy\": \"Delete\"}";

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0) {
        free(f);
        return -1;
    }
    f->spec = json_loads(SPEC, 0, NULL);
    f->status = status_new("Application", APP);
    f->req.kind = "Application";
    f->req.name = APP;
    f->req.spec = f->spec;
    f->req.revision = "r1";
    f->req.generation = 1;
    f->req.now = 1700000000;
    f->req.reconcile_id = "test";
    f->req.aws = f->emu.client;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    test_emulator_stop(&f->emu);
    json_decref(f->spec);
    json_decref(f->status);
    free(f);
    return 0;
}

/* One AWS call that must succeed; returns its output (caller decrefs). */
static json_t *aws(struct fixture *f, const char *svc, const char *op, json_t *in)
{
    struct aws_error err;
    json_t *out = NULL;
    int rc = aws_call(f->emu.client, svc, op, in, &out, &err);

    if (rc != 0)
        fail_msg("%s.%s: %s: %s", svc, op, err.code, err.message);
    json_decref(in);
    return out;
}

/* One converge (or delete) pass; ctx is cleared afterwards. */
static enum app_step pass(struct fixture *f, bool plan, bool del, int *writes, char *error,
                          json_t **plan_actions)
{
    struct app_ctx ctx;
    enum app_step step;

    app_ctx_init(&ctx, &f->req, f->status, plan);
    step = del ? registry_delete(&ctx) : registry_converge(&ctx);
    if (writes != NULL)
        *writes = ctx.writes;
    if (error != NULL)
        snprintf(error, 1024, "%s", ctx.error);
    if (plan_actions != NULL)
        *plan_actions = json_incref(ctx.plan_actions);
    app_ctx_clear(&ctx);
    return step;
}

static void converge_ready(struct fixture *f)
{
    char error[1024];
    enum app_step step = pass(f, false, false, NULL, error, NULL);

    if (step != APP_STEP_READY)
        fail_msg("registry_converge: %d: %s", step, error);
}

static bool has_event(struct fixture *f, const char *reason, const char *text)
{
    json_t *e;
    size_t i;

    json_array_foreach(json_object_get(f->status, "events"), i, e)
    {
        const char *r = json_string_value(json_object_get(e, "reason"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (r != NULL && strcmp(r, reason) == 0 && (text == NULL || (m && strstr(m, text))))
            return true;
    }
    return false;
}

static bool plan_has(const json_t *actions, const char *action)
{
    const json_t *a;
    size_t i;

    json_array_foreach(actions, i, a)
    {
        const char *s = json_string_value(json_object_get(a, "action"));
        if (s != NULL && strcmp(s, action) == 0)
            return true;
    }
    return false;
}

static json_t *describe_repo(struct fixture *f)
{
    json_t *out =
        aws(f, "ecr", "DescribeRepositories", json_pack("{s:[s]}", "repositoryNames", APP));
    json_t *repo = json_incref(json_array_get(json_object_get(out, "repositories"), 0));

    json_decref(out);
    return repo;
}

static json_int_t policy_count(struct fixture *f)
{
    json_t *out = aws(f, "ecr", "GetLifecyclePolicy", json_pack("{s:s}", "repositoryName", APP));
    json_t *doc =
        json_loads(json_string_value(json_object_get(out, "lifecyclePolicyText")), 0, NULL);
    json_int_t n = json_integer_value(json_object_get(
        json_object_get(json_array_get(json_object_get(doc, "rules"), 0), "selection"),
        "countNumber"));

    json_decref(doc);
    json_decref(out);
    return n;
}

static bool repo_exists(struct fixture *f)
{
    struct aws_error err;
    json_t *out = NULL;
    json_t *in = json_pack("{s:[s]}", "repositoryNames", APP);
    int rc = aws_call(f->emu.client, "ecr", "DescribeRepositories", in, &out, &err);

    json_decref(in);
    json_decref(out);
    if (rc != 0)
        assert_string_equal(err.code, "RepositoryNotFoundException");
    return rc == 0;
}

static void test_converge_from_nothing_then_quiet(void **state)
{
    struct fixture *f = *state;
    json_t *repo, *tags, *r;
    int writes = -1;
    const char *uri;

    converge_ready(f);
    repo = describe_repo(f);
    assert_true(json_is_true(
        json_object_get(json_object_get(repo, "imageScanningConfiguration"), "scanOnPush")));
    assert_int_equal(policy_count(f), 20);
    tags = aws(f, "ecr", "ListTagsForResource",
               json_pack("{s:s}", "resourceArn",
                         json_string_value(json_object_get(repo, "repositoryArn"))));
    r = json_object_get(json_object_get(f->status, "resources"), "registry");
    assert_string_equal(json_string_value(json_object_get(r, "repositoryName")), APP);
    assert_string_equal(json_string_value(json_object_get(r, "repositoryArn")),
                        json_string_value(json_object_get(repo, "repositoryArn")));
    uri = json_string_value(json_object_get(repo, "repositoryUri"));
    assert_string_equal(json_string_value(json_object_get(r, "repositoryUri")), uri);
    assert_string_equal(json_string_value(json_object_get(f->status, "registryUri")), uri);
    {
        struct app_ctx ctx;
        app_ctx_init(&ctx, &f->req, f->status, false);
        assert_true(app_tags_owned(&ctx, json_object_get(tags, "tags")));
        app_ctx_clear(&ctx);
    }

    /* Converged means quiet: reads only. */
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
    assert_int_equal(pass(f, false, false, &writes, NULL, NULL), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_true(test_emulator_count_calls(&f->emu, "ecr", 0) <= 3);
    json_decref(tags);
    json_decref(repo);
}

static void test_drift_reverted_and_equivalent_policy_kept(void **state)
{
    struct fixture *f = *state;
    json_t *repo;
    int writes = -1;

    converge_ready(f);
    /* The same policy written differently (spacing, key order) is not drift. */
    json_decref(
        aws(f, "ecr", "PutLifecyclePolicy",
            json_pack("{s:s, s:s}", "repositoryName", APP, "lifecyclePolicyText",
                      "{ \"rules\" : [ { \"action\": {\"type\": \"expire\"}, \"selection\": "
                      "{\"countNumber\": 20, \"countType\": \"imageCountMoreThan\", \"tagStatus\": "
                      "\"any\"}, \"description\": \"aviary: keep the most recent images\", "
                      "\"rulePriority\": 1 } ] }")));
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
    assert_int_equal(pass(f, false, false, &writes, NULL, NULL), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);

    /* By hand: scanning off, keep 3 images. */
    json_decref(aws(f, "ecr", "PutImageScanningConfiguration",
                    json_pack("{s:s, s:{s:b}}", "repositoryName", APP, "imageScanningConfiguration",
                              "scanOnPush", 0)));
    json_decref(aws(
        f, "ecr", "PutLifecyclePolicy",
        json_pack("{s:s, s:s}", "repositoryName", APP, "lifecyclePolicyText",
                  "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\","
                  "\"countType\":\"imageCountMoreThan\",\"countNumber\":3},\"action\":{\"type\":"
                  "\"expire\"}}]}")));
    converge_ready(f);
    repo = describe_repo(f);
    assert_true(json_is_true(
        json_object_get(json_object_get(repo, "imageScanningConfiguration"), "scanOnPush")));
    assert_int_equal(policy_count(f), 20);
    assert_true(has_event(f, "DriftCorrected", "scan on push"));
    assert_true(has_event(f, "DriftCorrected", "lifecycle policy"));
    json_decref(repo);
}

static void test_update_in_place(void **state)
{
    struct fixture *f = *state;
    json_t *repo;

    converge_ready(f);
    json_object_set_new(json_object_get(f->spec, "registry"), "keepImages", json_integer(5));
    json_object_set_new(json_object_get(f->spec, "registry"), "scanOnPush", json_false());
    converge_ready(f);
    assert_int_equal(policy_count(f), 5);
    repo = describe_repo(f);
    assert_true(json_is_false(
        json_object_get(json_object_get(repo, "imageScanningConfiguration"), "scanOnPush")));
    assert_false(has_event(f, "DriftCorrected", NULL));
    assert_true(has_event(f, "Updated", NULL));
    json_decref(repo);
}

static void test_delete_empty_repository(void **state)
{
    struct fixture *f = *state;

    converge_ready(f);
    assert_int_equal(pass(f, false, true, NULL, NULL, NULL), APP_STEP_READY);
    assert_false(repo_exists(f));
    assert_null(json_object_get(f->status, "registryUri"));
    /* Gone counts as deleted. */
    assert_int_equal(pass(f, false, true, NULL, NULL, NULL), APP_STEP_READY);
}

static void test_repository_with_images_is_retained(void **state)
{
    struct fixture *f = *state;
    char image[256];
    json_t *body, *res;

    converge_ready(f);
    snprintf(image, sizeof(image), "%s:v1",
             json_string_value(json_object_get(f->status, "registryUri")));
    body = json_pack("{s:s}", "image", image);
    res = test_emulator_control(&f->emu, "POST", "images", body);
    assert_non_null(json_object_get(res, "imageDigest"));
    json_decref(res);
    json_decref(body);

    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
    assert_int_equal(pass(f, false, true, NULL, NULL, NULL), APP_STEP_READY);
    assert_true(repo_exists(f));
    assert_true(has_event(f, "Retained", "holds 1 images"));
    /* Never force-deleted: no delete call at all. */
    assert_int_equal(test_emulator_count_calls(&f->emu, "ecr", 1), 0);
}

static void test_repository_not_created_by_aviary(void **state)
{
    struct fixture *f = *state;
    json_t *repo;
    int writes = -1;

    /* As a CI pipeline would: no tags, scanning off, no lifecycle policy. */
    json_decref(aws(f, "ecr", "CreateRepository", json_pack("{s:s}", "repositoryName", APP)));
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
    assert_int_equal(pass(f, false, false, &writes, NULL, NULL), APP_STEP_READY);
    assert_int_equal(writes, 0);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    repo = describe_repo(f);
    assert_string_equal(json_string_value(json_object_get(f->status, "registryUri")),
                        json_string_value(json_object_get(repo, "repositoryUri")));
    assert_true(has_event(f, "NotOwned", NULL));
    assert_int_equal(pass(f, false, true, NULL, NULL, NULL), APP_STEP_READY);
    assert_true(repo_exists(f));
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    json_decref(repo);
}

static void test_plan_mode_makes_no_mutating_call(void **state)
{
    struct fixture *f = *state;
    json_t *actions = NULL;

    assert_int_equal(pass(f, true, false, NULL, NULL, &actions), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_true(plan_has(actions, "create"));
    assert_false(repo_exists(f));
    json_decref(actions);

    /* Drift shows up as an update in the plan, and still nothing is changed. */
    converge_ready(f);
    json_decref(aws(f, "ecr", "PutImageScanningConfiguration",
                    json_pack("{s:s, s:{s:b}}", "repositoryName", APP, "imageScanningConfiguration",
                              "scanOnPush", 0)));
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
    assert_int_equal(pass(f, true, false, NULL, NULL, &actions), APP_STEP_READY);
    assert_int_equal(test_emulator_count_calls(&f->emu, NULL, 1), 0);
    assert_true(plan_has(actions, "update"));
    json_decref(actions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_converge_from_nothing_then_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift_reverted_and_equivalent_policy_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_update_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_empty_repository, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repository_with_images_is_retained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repository_not_created_by_aviary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_mode_makes_no_mutating_call, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
