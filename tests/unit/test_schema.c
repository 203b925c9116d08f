/* Unit tests for the OpenAPI schema subset: compiling (and refusing what is
 * unsupported), validating node trees with every error in one pass, unknown
 * fields with suggestions, and defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/schema.h"

static const char *test_schema_json =
    "{\"type\": \"object\", \"required\": [\"name\"], \"properties\": {"
    " \"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 8,"
    "            \"pattern\": \"^[a-z]+$\"},"
    " \"count\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 10, \"default\": 2},"
    " \"ratio\": {\"type\": \"number\", \"minimum\": 0, \"exclusiveMinimum\": true},"
    " \"mode\": {\"type\": \"string\", \"enum\": [\"fast\", \"careful\"], \"default\": \"fast\"},"
    " \"wait\": {\"type\": \"string\", \"format\": \"duration\"},"
    " \"on\": {\"type\": \"boolean\"},"
    " \"tags\": {\"type\": \"object\", \"maxProperties\": 2,"
    "           \"additionalProperties\": {\"type\": \"string\"}},"
    " \"list\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 3,"
    "           \"items\": {\"type\": \"integer\"}},"
    " \"nested\": {\"type\": \"object\", \"default\": {}, \"properties\": {"
    "    \"deep\": {\"type\": \"object\", \"default\": {\"x\": 1}, \"properties\": {"
    "        \"x\": {\"type\": \"integer\"}, \"y\": {\"type\": \"string\", \"default\": \"why\"}}},"
    "    \"failureLimit\": {\"type\": \"integer\", \"default\": 1}}},"
    " \"any\": {\"type\": \"object\", \"x-kubernetes-preserve-unknown-fields\": true},"
    " \"port\": {\"x-kubernetes-int-or-string\": true}"
    "}}";

static struct schema *compile_text(const char *text, struct diag_list *d)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    struct schema *s;

    if (j == NULL)
        fail_msg("bad test JSON: %s", err.text);
    s = schema_compile(j, "test", d);
    json_decref(j);
    return s;
}

/* Validates yaml against the test schema; returns the JSON and fills d. */
static json_t *run(const char *yaml, struct diag_list *d)
{
    struct diag_list cd = {0};
    struct schema *s = compile_text(test_schema_json, &cd);
    struct yfile *f;
    json_t *out;

    if (s == NULL)
        fail_msg("schema: %s", cd.items[0].message);
    f = yaml_load_buffer("m.yaml", yaml, strlen(yaml), NULL, d);
    assert_non_null(f);
    out = schema_validate(s, f->docs[0].root, "m.yaml", "spec", d);
    yaml_file_free(f);
    schema_free(s);
    return out;
}

/* Asserts the formatted diagnostics equal the expected lines. */
static void expect(const struct diag_list *d, const char *const *lines)
{
    char buf[1024];
    size_t i;

    for (i = 0; lines[i] != NULL; i++) {
        if (i >= d->n)
            fail_msg("missing diagnostic: %s", lines[i]);
        diag_format(&d->items[i], buf, sizeof(buf));
        if (strcmp(buf, lines[i]) != 0)
            fail_msg("diagnostic %zu:\n got  %s\n want %s", i, buf, lines[i]);
    }
    if (d->n != i)
        fail_msg("unexpected diagnostic: %s", diag_format(&d->items[i], buf, sizeof(buf)));
}

static void test_valid_with_defaults(void **state)
{
    struct diag_list d = {0};
    json_t *v = run("name: abc\nnested: {deep: {y: set}}\ntags: {a: b}\nport: http\n", &d);
    static const char *const none[] = {NULL};

    (void)state;
    expect(&d, none);
    assert_int_equal(json_integer_value(json_object_get(v, "count")), 2);
    assert_string_equal(json_string_value(json_object_get(v, "mode")), "fast");
    /* a present object gets the defaults of its missing children */
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v, "nested"), "failureLimit")), 1);
    /* a written child is kept and the default object is not merged in */
    assert_null(json_object_get(json_object_get(json_object_get(v, "nested"), "deep"), "x"));
    assert_string_equal(json_string_value(json_object_get(v, "port")), "http");
    json_decref(v);
}

static void test_defaults_inside_defaults_and_null(void **state)
{
    struct diag_list d = {0};
    json_t *v = run("name: abc\ncount: null\n", &d);
    json_t *deep;

    (void)state;
    assert_int_equal(d.n, 0);
    /* null is treated as absent, as Kubernetes prunes it: the default applies */
    assert_int_equal(json_integer_value(json_object_get(v, "count")), 2);
    /* nested: {} default -> deep: {x: 1} default -> y: "why" default */
    deep = json_object_get(json_object_get(v, "nested"), "deep");
    assert_int_equal(json_integer_value(json_object_get(deep, "x")), 1);
    assert_string_equal(json_string_value(json_object_get(deep, "y")), "why");
    json_decref(v);
}

static void test_all_errors_in_one_pass(void **state)
{
    struct diag_list d = {0};
    static const char *const want[] = {
        "m.yaml:1:7: spec.name: must be at most 8 characters long, got 9",
        "m.yaml:1:7: spec.name: \"ABCDEFGHI\" does not match the pattern ^[a-z]+$",
        "m.yaml:2:8: spec.count: must be at most 10, got 11",
        "m.yaml:3:8: spec.ratio: must be greater than 0, got 0",
        "m.yaml:4:7: spec.mode: unsupported value \"fst\" (did you mean \"fast\"?); must be one "
        "of: "
        "fast, careful",
        "m.yaml:5:7: spec.wait: invalid duration \"2 days\": unknown unit; use ms, s, m or h",
        "m.yaml:6:5: spec.on: expected boolean, got string \"yes\" (write true or false)",
        "m.yaml:7:17: spec.tags.b: expected string, got integer 2 (quote it: \"2\")",
        "m.yaml:7:7: spec.tags: must have at most 2 fields, got 3",
        "m.yaml:8:7: spec.list: must have at least 1 item",
        "m.yaml:9:9: spec.nested: expected object, got string \"x\"",
        "m.yaml:10:1: spec.nestd: unknown field \"nestd\" (did you mean \"nested\"?)",
        "m.yaml:11:1: spec.colour: unknown field \"colour\"",
        "m.yaml:12:7: spec.port: expected integer or string, got boolean true",
        NULL,
    };

    (void)state;
    json_decref(run("name: ABCDEFGHI\n"
                    "count: 11\n"
                    "ratio: 0\n"
                    "mode: fst\n"
                    "wait: 2 days\n"
                    "on: yes\n"
                    "tags: {a: x, b: 2, c: z}\n"
                    "list: []\n"
                    "nested: x\n"
                    "nestd: {}\n"
                    "colour: red\n"
                    "port: true\n",
                    &d));
    expect(&d, want);
    diag_list_clear(&d);
}

static void test_required_and_types(void **state)
{
    struct diag_list d = {0};
    static const char *const want[] = {
        "m.yaml:1:1: spec.name: required field is missing",
        "m.yaml:1:7: spec.list: must have at most 3 items, got 4",
        "m.yaml:1:11: spec.list[1]: expected integer, got number 2.5",
        "m.yaml:1:16: spec.list[2]: expected integer, got object",
        "m.yaml:1:20: spec.list[3]: expected integer, got string \"4\"",
        NULL,
    };

    (void)state;
    json_decref(run("list: [1, 2.5, {}, \"4\"]\n", &d));
    diag_sort(&d);
    expect(&d, want);
    diag_list_clear(&d);
    json_decref(run("name: ~\n", &d));
    assert_string_equal(d.items[0].message, "required field is missing");
    diag_list_clear(&d);
}

static void test_preserve_unknown_keeps_everything(void **state)
{
    struct diag_list d = {0};
    json_t *v = run("name: a\nany: {free: [1, {x: y}], n: 1.5}\n", &d);

    (void)state;
    assert_int_equal(d.n, 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(v, "any"), "free")), 2);
    json_decref(v);
}

static void test_compile_rejects_unsupported(void **state)
{
    static const struct {
        const char *schema;
        const char *message;
    } cases[] = {
        {"{\"type\": \"object\", \"oneOf\": []}", "schema: unsupported keyword \"oneOf\""},
        {"{\"type\": \"object\", \"properties\": {\"a\": {}}}", "schema: missing type"},
        {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": "
         "\"^\\\\d+$\"}}}",
         "schema: pattern must be a string without \\d \\w \\s \\b escapes (POSIX ERE and "
         "ECMA-262 must agree)"},
        {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": "
         "\"([a-z\"}}}",
         "schema: pattern does not compile: ([a-z"},
        {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\", \"maximum\": 5, "
         "\"default\": 6}}}",
         "schema: default is not valid for its own schema: must be at most 5, got 6"},
        {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"format\": "
         "\"duration\", \"default\": \"5 min\"}}}",
         "schema: default is not valid for its own schema: invalid duration \"5 min\": unknown "
         "unit; use ms, s, m or h"},
        {"{\"type\": \"object\", \"required\": [\"b\"], \"properties\": {\"a\": {\"type\": "
         "\"string\"}}}",
         "schema: required entry 0 is not a declared property"},
        {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\"}}, "
         "\"additionalProperties\": {\"type\": \"string\"}}",
         "schema: properties and additionalProperties are exclusive"},
        {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\"}}}",
         "schema: arrays need items"},
        {"{\"type\": \"string\"}", "schema: the root must be an object"},
        {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"date\"}}}",
         "schema: unsupported type \"date\""},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct diag_list d = {0};
        struct schema *s = compile_text(cases[i].schema, &d);

        if (s != NULL)
            fail_msg("case %zu compiled", i);
        assert_true(d.n >= 1);
        if (strcmp(d.items[0].message, cases[i].message) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, d.items[0].message, cases[i].message);
        diag_list_clear(&d);
    }
}

static void test_edit_distance_and_lookup(void **state)
{
    struct diag_list d = {0};
    struct schema *s = compile_text(test_schema_json, &d);

    (void)state;
    assert_int_equal(schema_edit_distance("failureLimt", "failureLimit"), 1);
    assert_int_equal(schema_edit_distance("setwieght", "setweight"), 1); /* transposition */
    assert_int_equal(schema_edit_distance("", "abc"), 3);
    assert_int_equal(schema_edit_distance("kitten", "sitting"), 3);
    assert_non_null(s);
    assert_ptr_equal(schema_lookup(s, "nested.deep.y"),
                     schema_property(schema_property(schema_property(s, "nested"), "deep"), "y"));
    assert_int_equal(schema_lookup(s, "list[]")->type, SCHEMA_INTEGER);
    assert_null(schema_lookup(s, "nested.nope"));
    schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_with_defaults),
        cmocka_unit_test(test_defaults_inside_defaults_and_null),
        cmocka_unit_test(test_all_errors_in_one_pass),
        cmocka_unit_test(test_required_and_types),
        cmocka_unit_test(test_preserve_unknown_keeps_everything),
        cmocka_unit_test(test_compile_rejects_unsupported),
        cmocka_unit_test(test_edit_distance_and_lookup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
