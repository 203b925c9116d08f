/* Unit tests for revisions and spec hashes: canonical JSON, golden SHA-256
 * values (computed independently with Python's hashlib), field selection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "controller/revision.h"

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);

    assert_non_null(v);
    return v;
}

static void test_canonical_json_sorts_keys(void **state)
{
    json_t *v =
        parse("{\"port\": 80, \"image\": \"nginx\", \"env\": {\"B\": \"2\", \"A\": \"\\u00e9\"}}");
    char *text = revision_canonical_json(v);

    (void)state;
    assert_string_equal(
        text, "{\"env\":{\"A\":\"\xc3\xa9\",\"B\":\"2\"},\"image\":\"nginx\",\"port\":80}");
    free(text);
    json_decref(v);
}

static void test_golden_hashes(void **state)
{
    json_t *a = parse("{\"image\": \"nginx\", \"port\": 80}");
    json_t *b =
        parse("{\"port\": 80, \"image\": \"nginx\", \"env\": {\"B\": \"2\", \"A\": \"\\u00e9\"}}");
    char rev[REVISION_LEN + 1], hash[SPEC_HASH_LEN + 1];

    (void)state;
    /* sha256('{"image":"nginx","port":80}') = ec4bba73a0... */
    assert_int_equal(revision_spec_hash(a, hash), 0);
    assert_string_equal(hash, "ec4bba73a06262e9c7319b1d671433c84acc168f387f5834fdab8314e85a175e");
    assert_int_equal(revision_compute(a, rev), 0);
    assert_string_equal(rev, "ec4bba73a0");
    assert_int_equal(revision_compute(b, rev), 0);
    assert_string_equal(rev, "7fad1e309b");
    json_decref(a);
    json_decref(b);
}

static void test_only_container_fields_count(void **state)
{
    json_t *base = parse("{\"image\": \"fraud:1\", \"port\": 8080, \"cpu\": 256, \"memory\": 512,"
                         " \"env\": {\"A\": \"1\"}, \"healthCheck\": {\"path\": \"/\"},"
                         " \"scaling\": {\"min\": 1, \"max\": 3}, \"dashboard\": true}");
    char r0[REVISION_LEN + 1], r1[REVISION_LEN + 1], h0[SPEC_HASH_LEN + 1], h1[SPEC_HASH_LEN + 1];
    json_t *copy;
    size_t i;

    (void)state;
    assert_int_equal(revision_compute(base, r0), 0);
    assert_int_equal(revision_spec_hash(base, h0), 0);
    assert_int_equal(strlen(r0), REVISION_LEN);
    assert_int_equal(strspn(r0, "0123456789abcdef"), REVISION_LEN);

    /* scaling and dashboard change the spec hash, not the revision */
    copy = json_deep_copy(base);
    json_object_set_new(json_object_get(copy, "scaling"), "max", json_integer(10));
    json_object_set_new(copy, "dashboard", json_false());
    assert_int_equal(revision_compute(copy, r1), 0);
    assert_int_equal(revision_spec_hash(copy, h1), 0);
    assert_string_equal(r0, r1);
    assert_string_not_equal(h0, h1);
    json_decref(copy);

    /* every container field changes the revision */
    for (i = 0; revision_fields[i] != NULL; i++) {
        copy = json_deep_copy(base);
        json_object_set_new(copy, revision_fields[i], json_string("changed"));
        assert_int_equal(revision_compute(copy, r1), 0);
        assert_string_not_equal(r0, r1);
        json_decref(copy);
    }
    json_decref(base);
}

static void test_errors(void **state)
{
    char rev[REVISION_LEN + 1] = "x", hash[SPEC_HASH_LEN + 1] = "x";
    json_t *arr = json_array();

    (void)state;
    assert_int_equal(revision_compute(arr, rev), -1);
    assert_string_equal(rev, "");
    assert_int_equal(revision_spec_hash(NULL, hash), -1);
    assert_string_equal(hash, "");
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_json_sorts_keys),
        cmocka_unit_test(test_golden_hashes),
        cmocka_unit_test(test_only_container_fields_count),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
