/* Unit tests for the YAML loader: positions, documents, scalar typing,
 * aliases and their bounds, size/depth/encoding limits, duplicate keys, and
 * the diagnostics list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller/yaml_doc.h"

static struct yfile *load(const char *text, struct diag_list *d)
{
    return yaml_load_buffer("t.yaml", text, strlen(text), NULL, d);
}

/* The first diagnostic formatted, for comparisons. */
static const char *first(const struct diag_list *d)
{
    static char buf[1024];

    assert_true(d->n > 0);
    return diag_format(&d->items[0], buf, sizeof(buf));
}

static void test_positions_of_every_node(void **state)
{
    struct diag_list d = {0};
    struct yfile *f = load("a: 1\n"
                           "b:\n"
                           "  c: [x, \"y\"]\n"
                           "  d:\n"
                           "    - e: true\n",
                           &d);
    struct ynode *root, *b, *c, *k, *e;

    (void)state;
    assert_non_null(f);
    assert_int_equal(f->ndocs, 1);
    root = f->docs[0].root;
    assert_int_equal(root->kind, YNODE_MAPPING);
    assert_int_equal(root->line, 1);
    assert_int_equal(root->column, 1);
    b = ynode_get(root, "b", &k);
    assert_int_equal(k->line, 2);
    assert_int_equal(b->line, 3);
    assert_int_equal(b->column, 3);
    c = ynode_get(b, "c", NULL);
    assert_int_equal(c->kind, YNODE_SEQUENCE);
    assert_int_equal(c->n, 2);
    assert_int_equal(c->items[1]->line, 3);
    assert_int_equal(c->items[1]->column, 10);
    assert_false(c->items[1]->plain);
    e = ynode_get(ynode_get(b, "d", NULL)->items[0], "e", NULL);
    assert_int_equal(e->line, 5);
    assert_int_equal(e->column, 10);
    assert_int_equal(e->type, YSCALAR_BOOL);
    assert_true(e->bval);
    assert_int_equal(d.n, 0);
    yaml_file_free(f);
}

static void test_scalar_types_yaml_1_2(void **state)
{
    static const struct {
        const char *text;
        enum yscalar_type type;
    } cases[] = {
        {"x: 42", YSCALAR_INT},
        {"x: -7", YSCALAR_INT},
        {"x: 0x1F", YSCALAR_INT},
        {"x: 0o17", YSCALAR_INT},
        {"x: 1.5", YSCALAR_FLOAT},
        {"x: 1e3", YSCALAR_FLOAT},
        {"x: .inf", YSCALAR_FLOAT},
        {"x: .nan", YSCALAR_FLOAT},
        {"x: true", YSCALAR_BOOL},
        {"x: False", YSCALAR_BOOL},
        {"x: yes", YSCALAR_STRING},
        {"x: on", YSCALAR_STRING},
        {"x: null", YSCALAR_NULL},
        {"x: ~", YSCALAR_NULL},
        {"x:", YSCALAR_NULL},
        {"x: \"42\"", YSCALAR_STRING},
        {"x: '1.0'", YSCALAR_STRING},
        {"x: !!str 42", YSCALAR_STRING},
        {"x: !!float 3", YSCALAR_FLOAT},
        {"x: 1.2.3", YSCALAR_STRING},
        {"x: 08", YSCALAR_INT},
        {"x: 99999999999999999999", YSCALAR_FLOAT},
        {"x: 10.0.0.0/16", YSCALAR_STRING},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct diag_list d = {0};
        struct yfile *f = load(cases[i].text, &d);
        struct ynode *x;

        assert_non_null(f);
        x = ynode_get(f->docs[0].root, "x", NULL);
        assert_non_null(x);
        if (x->type != cases[i].type)
            fail_msg("%s: type %d, want %d", cases[i].text, x->type, cases[i].type);
        yaml_file_free(f);
    }
    {
        struct diag_list d = {0};
        struct yfile *f = load("a: 0x1F\nb: 0o17\nc: -12\n", &d);

        assert_int_equal(ynode_get(f->docs[0].root, "a", NULL)->ival, 31);
        assert_int_equal(ynode_get(f->docs[0].root, "b", NULL)->ival, 15);
        assert_int_equal(ynode_get(f->docs[0].root, "c", NULL)->ival, -12);
        yaml_file_free(f);
    }
}

static void test_several_documents(void **state)
{
    struct diag_list d = {0};
    struct yfile *f = load("a: 1\n---\nb: 2\n---\n---\nc: 3\n", &d);

    (void)state;
    assert_non_null(f);
    assert_int_equal(f->ndocs, 4);
    assert_int_equal(f->docs[1].root->line, 3);
    assert_int_equal(f->docs[2].root->type, YSCALAR_NULL); /* empty document */
    assert_non_null(ynode_get(f->docs[3].root, "c", NULL));
    yaml_file_free(f);
}

static void test_syntax_error_yields_nothing(void **state)
{
    struct diag_list d = {0};
    struct yfile *f = load("a: 1\n---\nb: [1, 2\n", &d);

    (void)state;
    assert_null(f);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(first(&d), "t.yaml:4:1: yaml: "));
    diag_list_clear(&d);
}

static void test_aliases_are_expanded(void **state)
{
    struct diag_list d = {0};
    struct yfile *f = load("base: &b {cpu: 256, env: {A: x}}\nuse: *b\nlist: [&s hi, *s]\n", &d);
    struct ynode *use;

    (void)state;
    assert_non_null(f);
    use = ynode_get(f->docs[0].root, "use", NULL);
    assert_int_equal(use->kind, YNODE_MAPPING);
    assert_int_equal(ynode_get(use, "cpu", NULL)->ival, 256);
    assert_string_equal(ynode_get(f->docs[0].root, "list", NULL)->items[1]->value, "hi");
    yaml_file_free(f);
}

static void test_alias_errors(void **state)
{
    struct diag_list d = {0};

    (void)state;
    assert_null(load("a: *nope\n", &d));
    assert_string_equal(first(&d), "t.yaml:1:4: yaml: unknown alias *nope");
    diag_list_clear(&d);
    /* an anchor cannot be used inside itself: no cycles */
    assert_null(load("a: &x [1, *x]\n", &d));
    assert_string_equal(first(&d), "t.yaml:1:11: yaml: unknown alias *x");
    diag_list_clear(&d);
    /* anchors do not cross documents */
    assert_null(load("a: &x 1\n---\nb: *x\n", &d));
    diag_list_clear(&d);
}

/* Billion laughs: 9 levels of 9 aliases would be 387 million nodes. */
static void test_alias_bomb_rejected_fast(void **state)
{
    char text[2048];
    size_t off = 0;
    struct diag_list d = {0};
    clock_t start = clock();
    int lvl, i;

    (void)state;
    off += (size_t)snprintf(text + off, sizeof(text) - off,
                            "l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    for (lvl = 1; lvl < 10; lvl++) {
        off += (size_t)snprintf(text + off, sizeof(text) - off, "l%d: &l%d [", lvl, lvl);
        for (i = 0; i < 9; i++)
            off +=
                (size_t)snprintf(text + off, sizeof(text) - off, "%s*l%d", i ? "," : "", lvl - 1);
        off += (size_t)snprintf(text + off, sizeof(text) - off, "]\n");
    }
    assert_null(load(text, &d));
    assert_non_null(strstr(first(&d), "expands to more than 250000 nodes"));
    /* generous bound (sanitizers): the real figure is well under 10 ms */
    assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 2.0);
    diag_list_clear(&d);
}

static void test_limits_configurable(void **state)
{
    struct yaml_limits lim = {.max_aliases = 2, .max_depth = 4, .max_expanded = 10};
    struct diag_list d = {0};
    const char *aliases = "a: &a 1\nb: [*a, *a, *a]\n";
    const char *deep = "a: {b: {c: {d: {e: 1}}}}\n";
    const char *wide = "[1,2,3,4,5,6,7,8,9,10,11]\n";

    (void)state;
    assert_null(yaml_load_buffer("t", aliases, strlen(aliases), &lim, &d));
    assert_non_null(strstr(first(&d), "more than 2 aliases"));
    diag_list_clear(&d);
    assert_null(yaml_load_buffer("t", deep, strlen(deep), &lim, &d));
    assert_non_null(strstr(first(&d), "nesting deeper than 4 levels"));
    diag_list_clear(&d);
    assert_null(yaml_load_buffer("t", wide, strlen(wide), &lim, &d));
    assert_non_null(strstr(first(&d), "expands to more than 10 nodes"));
    diag_list_clear(&d);
}

static void test_depth_through_aliases(void **state)
{
    struct yaml_limits lim = {.max_depth = 6};
    struct diag_list d = {0};
    /* each tree alone is 4 deep; the alias nests one inside the other */
    const char *text = "a: &a [[[1]]]\nb: [[[*a]]]\n";

    (void)state;
    assert_null(yaml_load_buffer("t", text, strlen(text), &lim, &d));
    assert_non_null(strstr(first(&d), "nesting deeper than 6 levels"));
    diag_list_clear(&d);
}

static void test_size_limit(void **state)
{
    size_t n = YAML_MAX_BYTES + 1;
    char *big = malloc(n);
    char path[] = "/tmp/aviary-yaml-XXXXXX";
    struct diag_list d = {0};
    int fd;

    (void)state;
    assert_non_null(big);
    memset(big, '#', n);
    assert_null(yaml_load_buffer("big", big, n, NULL, &d));
    assert_string_equal(first(&d), "big: file is larger than 1048576 bytes");
    diag_list_clear(&d);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, big, n), (ssize_t)n);
    close(fd);
    assert_null(yaml_load_file(path, NULL, &d));
    assert_non_null(strstr(first(&d), "file is larger than 1048576 bytes"));
    diag_list_clear(&d);
    /* exactly at the limit is fine (a comment) */
    assert_int_equal(truncate(path, YAML_MAX_BYTES), 0);
    {
        struct yfile *f = yaml_load_file(path, NULL, &d);

        assert_non_null(f);
        yaml_file_free(f);
    }
    unlink(path);
    assert_null(yaml_load_file("/nonexistent/x.yaml", NULL, &d));
    assert_non_null(strstr(first(&d), "cannot open"));
    diag_list_clear(&d);
    free(big);
}

static void test_encodings(void **state)
{
    struct diag_list d = {0};
    static const char utf16_bom[] = "\xff\xfe"
                                    "a\0:\0 \0"
                                    "1\0";
    static const char utf16_nobom[] = "a\0:\0 \0"
                                      "1\0";
    static const char overlong[] = "a: \xc0\xaf\n";
    static const char surrogate[] = "a: x\nb: \xed\xa0\x80\n";
    static const char truncated[] = "a: \xe2\x82";
    static const char bom_utf8[] = "\xef\xbb\xbf"
                                   "a: \xc3\xa9\n";
    struct yfile *f;

    (void)state;
    assert_null(yaml_load_buffer("t", utf16_bom, sizeof(utf16_bom) - 1, NULL, &d));
    assert_string_equal(first(&d),
                        "t:1:1: file is UTF-16 or UTF-32 encoded; manifests must be UTF-8");
    diag_list_clear(&d);
    assert_null(yaml_load_buffer("t", utf16_nobom, sizeof(utf16_nobom) - 1, NULL, &d));
    assert_non_null(strstr(first(&d), "looks UTF-16"));
    diag_list_clear(&d);
    assert_null(yaml_load_buffer("t", overlong, sizeof(overlong) - 1, NULL, &d));
    assert_string_equal(first(&d), "t:1:4: invalid UTF-8 byte sequence (byte 0xc0)");
    diag_list_clear(&d);
    assert_null(yaml_load_buffer("t", surrogate, sizeof(surrogate) - 1, NULL, &d));
    assert_string_equal(first(&d), "t:2:4: invalid UTF-8 byte sequence (byte 0xed)");
    diag_list_clear(&d);
    assert_null(yaml_load_buffer("t", truncated, sizeof(truncated) - 1, NULL, &d));
    diag_list_clear(&d);
    f = yaml_load_buffer("t", bom_utf8, sizeof(bom_utf8) - 1, NULL, &d);
    assert_non_null(f);
    assert_string_equal(ynode_get(f->docs[0].root, "a", NULL)->value, "\xc3\xa9");
    assert_int_equal(f->docs[0].root->line, 1);
    assert_int_equal(f->docs[0].root->column, 1);
    yaml_file_free(f);
}

static void test_duplicate_keys(void **state)
{
    struct diag_list d = {0};

    (void)state;
    assert_null(load("spec:\n  steps:\n    - {a: 1, b: 2, a: 3}\n", &d));
    assert_int_equal(d.n, 1);
    assert_string_equal(first(&d),
                        "t.yaml:3:20: spec.steps[0].a: duplicate key (first defined at line 3)");
    diag_list_clear(&d);
    assert_null(load("x: 1\ny: 2\nx: 3\n", &d));
    assert_string_equal(first(&d), "t.yaml:3:1: x: duplicate key (first defined at line 1)");
    diag_list_clear(&d);
}

static void test_rejected_constructs(void **state)
{
    struct diag_list d = {0};

    (void)state;
    assert_null(load("? [a, b]\n: 1\n", &d));
    assert_non_null(strstr(first(&d), "mapping keys must be scalars"));
    diag_list_clear(&d);
    assert_null(load("a: !custom 1\n", &d));
    assert_non_null(strstr(first(&d), "unsupported tag !custom"));
    diag_list_clear(&d);
    assert_null(load("a: !!int abc\n", &d));
    assert_non_null(strstr(first(&d), "does not match its tag !!int"));
    diag_list_clear(&d);
    assert_null(load("b: &m {x: 1}\na:\n  <<: *m\n", &d));
    assert_non_null(strstr(first(&d), "merge keys"));
    diag_list_clear(&d);
    assert_null(load("a: \"nul \\0 inside\"\n", &d));
    assert_non_null(strstr(first(&d), "NUL character"));
    diag_list_clear(&d);
}

static void test_diag_sort_and_format(void **state)
{
    struct diag_list d = {0}, other = {0};
    char buf[256];
    size_t i;

    (void)state;
    diag_add(&d, "f.yaml", 9, 2, "spec.port", "late");
    diag_add(&d, "f.yaml", 3, 7, "spec.image", "first");
    diag_add(&d, "f.yaml", 3, 7, "spec.image", "same place, kept after");
    diag_add(&other, "f.yaml", 0, 0, "", "whole file");
    diag_move(&d, &other);
    assert_int_equal(other.n, 0);
    diag_sort(&d);
    assert_string_equal(diag_format(&d.items[0], buf, sizeof(buf)), "f.yaml: whole file");
    assert_string_equal(diag_format(&d.items[1], buf, sizeof(buf)),
                        "f.yaml:3:7: spec.image: first");
    assert_string_equal(d.items[2].message, "same place, kept after");
    assert_string_equal(diag_format(&d.items[3], buf, sizeof(buf)), "f.yaml:9:2: spec.port: late");
    for (i = 0; i < DIAG_MAX + 5; i++)
        diag_add(&d, "f.yaml", 1, 1, "", "many");
    assert_int_equal(d.n, DIAG_MAX);
    assert_int_equal(diag_count(&d), DIAG_MAX + 9);
    diag_list_clear(&d);
    assert_int_equal(diag_count(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions_of_every_node),
        cmocka_unit_test(test_scalar_types_yaml_1_2),
        cmocka_unit_test(test_several_documents),
        cmocka_unit_test(test_syntax_error_yields_nothing),
        cmocka_unit_test(test_aliases_are_expanded),
        cmocka_unit_test(test_alias_errors),
        cmocka_unit_test(test_alias_bomb_rejected_fast),
        cmocka_unit_test(test_limits_configurable),
        cmocka_unit_test(test_depth_through_aliases),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_rejected_constructs),
        cmocka_unit_test(test_diag_sort_and_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
