/* Unit tests for the desired set (controller/objects.c): files whose id did
 * not change are copied, not parsed again (counted by files_loaded), and
 * objects_reload parses again only the files whose objects need a spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/objects.h"

#define APP                                                                                        \
    "apiVersion: aviary.io/v1alpha1\n"                                                             \
    "kind: Application\n"                                                                          \
    "metadata:\n"                                                                                  \
    "  name: %s\n"                                                                                 \
    "spec:\n"                                                                                      \
    "  image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/%s:%s\n"                                \
    "  port: 8080\n"

/* Sets file i of snap to an Application called name with image tag tag. */
static void set_file(struct source_snapshot *snap, size_t i, const char *file, const char *name,
                     const char *tag, const char *id)
{
    char text[512];
    struct source_file *f = &snap->files[i];

    source_file_clear(f);
    snprintf(text, sizeof(text), APP, name, name, tag);
    f->name = strdup(file);
    f->data = strdup(text);
    assert_non_null(f->name);
    assert_non_null(f->data);
    f->len = strlen(text);
    snprintf(f->id, sizeof(f->id), "%s", id);
}

static const struct desired_object *find(const struct desired_set *set, const char *file,
                                         const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->objs[i].file, file) == 0 && strcmp(set->objs[i].name, name) == 0)
            return &set->objs[i];
    return NULL;
}

static void test_unchanged_files_are_not_loaded_again(void **state)
{
    struct source_snapshot snap = {0};
    struct desired_set first, second, third;
    const struct desired_object *o;
    char file[32], name[32];
    bool need[20] = {false};
    (void)state;

    snap.files = calloc(20, sizeof(*snap.files));
    assert_non_null(snap.files);
    snap.n = 20;
    for (size_t i = 0; i < 20; i++) {
        snprintf(file, sizeof(file), "f%02zu.yaml", i);
        snprintf(name, sizeof(name), "app-%02zu", i);
        set_file(&snap, i, file, name, "1", "v1");
    }
    assert_int_equal(objects_build(&snap, NULL, NULL, &first), 0);
    assert_int_equal(first.n, 20);
    assert_int_equal(first.files_loaded, 20);
    for (size_t i = 0; i < first.n; i++) {
        assert_false(first.objs[i].unchanged);
        assert_non_null(first.objs[i].spec);
    }

    /* One file changes: only it is parsed; the others are copied. */
    set_file(&snap, 7, "f07.yaml", "app-07", "2", "v2");
    assert_int_equal(objects_build(&snap, NULL, &first, &second), 0);
    assert_int_equal(second.n, 20);
    assert_int_equal(second.files_loaded, 1);
    for (size_t i = 0; i < second.n; i++) {
        const struct desired_object *s = &second.objs[i];
        bool is7 = strcmp(s->file, "f07.yaml") == 0;
        assert_int_equal(s->unchanged, !is7);
        assert_int_equal(s->spec != NULL, is7);
        if (!is7) {
            assert_int_equal(s->prev_index, i);
            assert_string_equal(s->spec_hash, first.objs[i].spec_hash);
        }
    }
    o = find(&second, "f07.yaml", "app-07");
    assert_non_null(o);
    assert_string_not_equal(o->spec_hash, first.objs[7].spec_hash);

    /* A duplicate name in a changed file: the unchanged file defining it too
     * is loaded again, and nothing else. */
    set_file(&snap, 12, "f12.yaml", "app-03", "9", "v2");
    assert_int_equal(objects_build(&snap, NULL, &second, &third), 0);
    assert_int_equal(third.files_loaded, 1);
    o = find(&third, "f03.yaml", "app-03");
    assert_non_null(o);
    assert_true(o->unchanged);
    assert_null(o->spec);
    need[o - third.objs] = true;
    assert_int_equal(objects_reload(&third, &snap, NULL, need), 0);
    assert_int_equal(third.files_loaded, 2);
    assert_false(o->unchanged);
    assert_non_null(o->spec);
    assert_string_equal(o->spec_hash, first.objs[3].spec_hash);
    for (size_t i = 0; i < third.n; i++)
        if (&third.objs[i] != o && strcmp(third.objs[i].file, "f12.yaml") != 0)
            assert_true(third.objs[i].unchanged);

    /* A file that no longer gives the same objects cannot be reloaded in
     * place: the caller is told to build afresh. */
    objects_clear(&third);
    assert_int_equal(objects_build(&snap, NULL, &second, &third), 0);
    o = find(&third, "f05.yaml", "app-05");
    assert_non_null(o);
    memset(need, 0, sizeof(need));
    need[o - third.objs] = true;
    set_file(&snap, 5, "f05.yaml", "app-55", "1", "v1"); /* same id, other contents */
    assert_int_equal(objects_reload(&third, &snap, NULL, need), 1);

    objects_clear(&first);
    objects_clear(&second);
    objects_clear(&third);
    source_snapshot_clear(&snap);
}

/* The directory source does not keep contents once delivered: a file
 * without data (and without error) is read again from its path. */
static void test_contents_not_kept_are_read_from_the_path(void **state)
{
    char dir[] = "/tmp/aviary-objects-XXXXXX", path[256], text[512];
    struct source_snapshot snap = {0};
    struct desired_set set;
    FILE *fp;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.yaml", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    snprintf(text, sizeof(text), APP, "alpha", "alpha", "1");
    fputs(text, fp);
    fclose(fp);
    snap.files = calloc(2, sizeof(*snap.files));
    assert_non_null(snap.files);
    snap.n = 2;
    snap.files[0].name = strdup("a.yaml");
    snap.files[0].path = strdup(path);
    snprintf(snap.files[0].id, sizeof(snap.files[0].id), "v1");
    snprintf(path, sizeof(path), "%s/gone.yaml", dir);
    snap.files[1].name = strdup("gone.yaml");
    snap.files[1].path = strdup(path);
    snprintf(snap.files[1].id, sizeof(snap.files[1].id), "v1");

    assert_int_equal(objects_build(&snap, dir, NULL, &set), 0);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.files_loaded, 1);
    assert_string_equal(set.objs[0].name, "alpha");
    assert_non_null(set.objs[0].spec);
    /* A file gone meanwhile is unreadable: broken, so its objects are kept. */
    assert_non_null(json_object_get(set.broken_files, path));
    objects_clear(&set);
    source_snapshot_clear(&snap);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_files_are_not_loaded_again),
        cmocka_unit_test(test_contents_not_kept_are_read_from_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
