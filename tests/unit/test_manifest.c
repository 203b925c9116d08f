/* Unit tests for manifest loading: the invalid corpus (every .yaml in
 * tests/unit/manifests/invalid with its exact expected errors), the valid
 * corpus, defaults, revisions and generations, data path rules, the
 * embedded CRDs' structure, and `aviary validate`. Runs from the source
 * directory (ctest's WORKING_DIRECTORY). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controller/cmd.h"
#include "controller/manifest.h"

#define INVALID_DIR "tests/unit/manifests/invalid"
#define VALID_DIR   "tests/unit/manifests/valid"

static int setup(void **state)
{
    struct diag_list d = {0};

    (void)state;
    if (chdir(AVIARY_SOURCE_DIR) < 0)
        return -1;
    if (manifest_init(&d) < 0) {
        diag_print(stderr, &d);
        diag_list_clear(&d);
        return -1;
    }
    return 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = calloc(1, (size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a > b && !strcmp(s + a - b, suffix);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir ending in suffix; returns the count. */
static size_t list_dir(const char *dir, const char *suffix, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (!has_suffix(e->d_name, suffix))
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    return n;
}

/* The corpus: each invalid manifest's errors (without the file name)
 * must equal its .expected file line for line. */
static void test_invalid_corpus(void **state)
{
    char **names;
    size_t n = list_dir(INVALID_DIR, ".yaml", &names), i, failures = 0;

    (void)state;
    assert_true(n >= 40);
    for (i = 0; i < n; i++) {
        char path[512], exp_path[512], line[2048], *expected, *got = NULL;
        size_t got_len = 0, k;
        struct manifest_file *mf;
        FILE *g;

        snprintf(path, sizeof(path), "%s/%s", INVALID_DIR, names[i]);
        snprintf(exp_path, sizeof(exp_path), "%.*s.expected", (int)strlen(path) - 5, path);
        expected = read_text(exp_path);
        if (expected == NULL)
            fail_msg("%s: missing %s", path, exp_path);
        mf = manifest_load_file(path);
        assert_non_null(mf);
        g = open_memstream(&got, &got_len);
        for (k = 0; k < mf->errors.n; k++) {
            diag_format(&mf->errors.items[k], line, sizeof(line));
            /* strip "path:" so the expectations do not depend on where the tree is */
            fprintf(g, "%s\n", line + strlen(path) + 1);
        }
        fclose(g);
        if (mf->errors.n == 0 || strcmp(got, expected) != 0) {
            fprintf(stderr, "%s:\n--- expected\n%s--- got\n%s", path, expected, got);
            failures++;
        }
        for (k = 0; k < mf->nobjects; k++)
            if (mf->objects[k].nerrors > 0)
                assert_false(mf->objects[k].valid);
        free(got);
        free(expected);
        manifest_file_free(mf);
        free(names[i]);
    }
    free(names);
    assert_int_equal(failures, 0);
}

static void test_valid_corpus_and_examples(void **state)
{
    const char *dirs[] = {VALID_DIR, "examples"};
    size_t total = 0, di;

    (void)state;
    for (di = 0; di < 2; di++) {
        char **names;
        size_t n = list_dir(dirs[di], "l", &names), i, k;

        for (i = 0; i < n; i++) {
            char path[512];
            struct manifest_file *mf;

            if (!has_suffix(names[i], ".yaml") && !has_suffix(names[i], ".yml")) {
                free(names[i]);
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", dirs[di], names[i]);
            mf = manifest_load_file(path);
            if (diag_count(&mf->errors) > 0) {
                diag_print(stderr, &mf->errors);
                fail_msg("%s is not valid", path);
            }
            assert_true(mf->nobjects >= 1);
            for (k = 0; k < mf->nobjects; k++) {
                assert_true(mf->objects[k].valid);
                assert_int_equal(strlen(mf->objects[k].spec_hash), SPEC_HASH_LEN);
                assert_int_equal(mf->objects[k].generation, 1);
                if (mf->objects[k].kind == MANIFEST_KIND_APPLICATION)
                    assert_int_equal(strlen(mf->objects[k].revision), REVISION_LEN);
                else
                    assert_string_equal(mf->objects[k].revision, "");
                total++;
            }
            manifest_file_free(mf);
            free(names[i]);
        }
        free(names);
    }
    assert_true(total >= 9);
}

static struct manifest_file *load_text(const char *text)
{
    return manifest_load_buffer("m.yaml", text, strlen(text), NULL);
}

static const char *minimal_app = "apiVersion: aviary.io/v1alpha1\n"
                                 "kind: Application\n"
                                 "metadata: {name: hello}\n"
                                 "spec: {image: nginx, port: 80}\n";

static void test_image_and_port_alone_get_every_default(void **state)
{
    struct manifest_file *mf = load_text(minimal_app);
    const json_t *s;

    (void)state;
    assert_int_equal(diag_count(&mf->errors), 0);
    assert_int_equal(mf->nobjects, 1);
    assert_string_equal(mf->objects[0].name, "hello");
    assert_int_equal(mf->objects[0].kind, MANIFEST_KIND_APPLICATION);
    s = mf->objects[0].spec;
    assert_int_equal(json_integer_value(manifest_get(s, "cpu")), 256);
    assert_int_equal(json_integer_value(manifest_get(s, "memory")), 512);
    assert_string_equal(json_string_value(manifest_get(s, "healthCheck.path")), "/");
    assert_string_equal(json_string_value(manifest_get(s, "network.cidr")), "10.0.0.0/16");
    assert_true(json_is_true(manifest_get(s, "network.natGateway")));
    assert_int_equal(json_integer_value(manifest_get(s, "scaling.min")), 1);
    assert_int_equal(json_integer_value(manifest_get(s, "scaling.max")), 3);
    assert_string_equal(json_string_value(manifest_get(s, "rollout.strategy")), "canary");
    assert_int_equal(json_integer_value(manifest_get(s, "rollout.canary.steps[0].setWeight")), 20);
    assert_int_equal(manifest_get_duration_ms(s, "rollout.canary.steps[1].pause.duration", 0),
                     60000);
    assert_int_equal(manifest_get_duration_ms(s, "rollout.progressDeadline", 0), 600000);
    assert_int_equal(manifest_get_duration_ms(s, "rollout.scaleDownDelay", 0), 30000);
    assert_int_equal(manifest_get_duration_ms(s, "rollout.nothing", -7), -7);
    assert_int_equal(json_integer_value(manifest_get(s, "rollout.analysis.inconclusiveLimit")), 5);
    assert_string_equal(json_string_value(manifest_get(s, "rollout.analysis.metrics[0].type")),
                        "errorRate");
    assert_string_equal(json_string_value(manifest_get(s, "deletionPolicy")), "Delete");
    assert_true(json_is_true(manifest_get(s, "dashboard")));
    assert_int_equal(json_array_size(manifest_get(s, "notifications.email")), 0);
    assert_null(manifest_get(s, "tls"));
    manifest_file_free(mf);
}

static void test_revision_and_generation(void **state)
{
    const char *explicit_defaults = "apiVersion: aviary.io/v1alpha1\n"
                                    "kind: Application\n"
                                    "metadata: {name: hello}\n"
                                    "spec: {image: nginx, port: 80, cpu: 256, memory: 512}\n";
    const char *scaled = "apiVersion: aviary.io/v1alpha1\n"
                         "kind: Application\n"
                         "metadata: {name: hello}\n"
                         "spec: {image: nginx, port: 80, scaling: {max: 9}}\n";
    const char *new_image = "apiVersion: aviary.io/v1alpha1\n"
                            "kind: Application\n"
                            "metadata: {name: hello}\n"
                            "spec: {image: nginx:2, port: 80}\n";
    struct manifest_file *a = load_text(minimal_app), *b = load_text(explicit_defaults),
                         *c = load_text(scaled), *d = load_text(new_image);
    const struct manifest_object *oa = &a->objects[0];

    (void)state;
    /* writing a default out changes nothing */
    assert_string_equal(oa->revision, b->objects[0].revision);
    assert_string_equal(oa->spec_hash, b->objects[0].spec_hash);
    assert_int_equal(manifest_next_generation(4, oa->spec_hash, &b->objects[0]), 4);
    /* scaling: same revision (no rollout), new spec hash (new generation) */
    assert_string_equal(oa->revision, c->objects[0].revision);
    assert_string_not_equal(oa->spec_hash, c->objects[0].spec_hash);
    assert_int_equal(manifest_next_generation(4, oa->spec_hash, &c->objects[0]), 5);
    /* image: new revision */
    assert_string_not_equal(oa->revision, d->objects[0].revision);
    /* never seen */
    assert_int_equal(manifest_next_generation(0, NULL, oa), 1);
    manifest_file_free(a);
    manifest_file_free(b);
    manifest_file_free(c);
    manifest_file_free(d);
}

static void test_data_paths_relative_to_manifest(void **state)
{
    char dir[] = "/tmp/aviary-manifest-XXXXXX", path[PATH_MAX], link[PATH_MAX];
    const char *te = "apiVersion: aviary.io/v1alpha1\n"
                     "kind: TrainingEnvironment\n"
                     "metadata: {name: t}\n"
                     "spec:\n"
                     "  data:\n"
                     "    - path: train.csv\n"
                     "    - path: sub/../train.csv\n"
                     "    - path: escape.csv\n"
                     "    - path: sub\n";
    struct manifest_file *mf;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/train.csv", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("a,b\n1,2\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(link, sizeof(link), "%s/escape.csv", dir);
    assert_int_equal(symlink("/etc/hostname", link), 0);

    mf = manifest_load_buffer("m.yaml", te, strlen(te), dir);
    assert_int_equal(mf->errors.n, 3);
    assert_string_equal(mf->errors.items[0].path, "spec.data[1].path");
    assert_string_equal(mf->errors.items[1].message,
                        "\"escape.csv\" resolves outside the manifest's directory (symlink)");
    assert_string_equal(mf->errors.items[2].message, "\"sub\" is not a regular file");
    assert_false(mf->objects[0].valid);
    manifest_file_free(mf);

    /* without a base directory (S3 source) existence is not checked, the
     * syntax rules still are */
    mf = manifest_load_buffer("m.yaml", te, strlen(te), NULL);
    assert_int_equal(mf->errors.n, 1);
    assert_string_equal(mf->errors.items[0].path, "spec.data[1].path");
    manifest_file_free(mf);

    unlink(link);
    snprintf(path, sizeof(path), "%s/train.csv", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

/* The embedded CRDs are the files in crds/, and they are well-formed
 * apiextensions.k8s.io/v1 CRDs with a description on every field. */
static void check_descriptions(const struct schema *s, const char *path)
{
    size_t i;
    char sub[512];

    if (s->description == NULL || s->description[0] == '\0')
        fail_msg("%s has no description", path);
    for (i = 0; i < s->nprops; i++) {
        snprintf(sub, sizeof(sub), "%s.%s", path, s->prop_names[i]);
        check_descriptions(s->props[i], sub);
    }
    if (s->items != NULL) {
        snprintf(sub, sizeof(sub), "%s[]", path);
        check_descriptions(s->items, sub);
    }
    if (s->additional != NULL) {
        snprintf(sub, sizeof(sub), "%s.*", path);
        check_descriptions(s->additional, sub);
    }
}

static void test_crds_are_embedded_and_well_formed(void **state)
{
    size_t i;

    (void)state;
    assert_int_equal(aviary_embedded_crds_count, 2);
    for (i = 0; i < aviary_embedded_crds_count; i++) {
        const struct embedded_file *ef = &aviary_embedded_crds[i];
        char *disk = read_text(ef->name);
        struct diag_list d = {0};
        struct yfile *y;
        json_t *crd, *v;
        const char *kind, *plural;
        char want_name[128];

        assert_non_null(disk);
        assert_int_equal(strlen(disk), ef->len);
        assert_memory_equal(disk, ef->data, ef->len);
        free(disk);
        y = yaml_load_buffer(ef->name, (const char *)ef->data, ef->len, NULL, &d);
        assert_non_null(y);
        crd = ynode_to_json(y->docs[0].root);
        assert_string_equal(json_string_value(json_object_get(crd, "apiVersion")),
                            "apiextensions.k8s.io/v1");
        assert_string_equal(json_string_value(json_object_get(crd, "kind")),
                            "CustomResourceDefinition");
        assert_string_equal(json_string_value(manifest_get(crd, "spec.group")), "aviary.io");
        assert_string_equal(json_string_value(manifest_get(crd, "spec.scope")), "Namespaced");
        kind = json_string_value(manifest_get(crd, "spec.names.kind"));
        plural = json_string_value(manifest_get(crd, "spec.names.plural"));
        assert_non_null(kind);
        assert_non_null(plural);
        assert_non_null(manifest_get(crd, "spec.names.singular"));
        assert_non_null(manifest_get(crd, "spec.names.listKind"));
        snprintf(want_name, sizeof(want_name), "%s.aviary.io", plural);
        assert_string_equal(json_string_value(manifest_get(crd, "metadata.name")), want_name);
        v = manifest_get(crd, "spec.versions[0]");
        assert_string_equal(json_string_value(json_object_get(v, "name")), "v1alpha1");
        assert_true(json_is_true(json_object_get(v, "served")));
        assert_true(json_is_true(json_object_get(v, "storage")));
        assert_int_equal(json_array_size(manifest_get(crd, "spec.versions")), 1);
        assert_true(json_is_object(manifest_get(v, "schema.openAPIV3Schema")));
        assert_string_equal(json_string_value(manifest_get(v, "schema.openAPIV3Schema.type")),
                            "object");
        assert_true(json_is_object(manifest_get(v, "subresources.status")));
        json_decref(crd);
        yaml_file_free(y);
    }
    check_descriptions(manifest_schema(MANIFEST_KIND_APPLICATION), "Application");
    check_descriptions(manifest_schema(MANIFEST_KIND_TRAINING_ENVIRONMENT), "TrainingEnvironment");
}

static void test_validate_command(void **state)
{
    char dir[] = "/tmp/aviary-validate-XXXXXX", a[PATH_MAX], b[PATH_MAX];
    char *ok_args[] = {"validate", "examples", NULL};
    char *dup_args[] = {"validate", a, b, NULL};
    char *bad_args[] = {"validate", INVALID_DIR "/05-unknown-field-suggest.yaml", NULL};
    char *usage_args[] = {"validate", NULL};
    char *help_args[] = {"validate", "--help", NULL};
    FILE *f;

    (void)state;
    assert_int_equal(cmd_validate(2, ok_args), 0);
    assert_int_equal(cmd_validate(2, bad_args), 1);
    assert_int_equal(cmd_validate(1, usage_args), 2);
    assert_int_equal(cmd_validate(2, help_args), 0);
    /* the same name in two files is an error */
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof(a), "%s/a.yaml", dir);
    snprintf(b, sizeof(b), "%s/b.yaml", dir);
    f = fopen(a, "w");
    fputs(minimal_app, f);
    fclose(f);
    f = fopen(b, "w");
    fputs(minimal_app, f);
    fclose(f);
    assert_int_equal(cmd_validate(3, dup_args), 1);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_corpus),
        cmocka_unit_test(test_valid_corpus_and_examples),
        cmocka_unit_test(test_image_and_port_alone_get_every_default),
        cmocka_unit_test(test_revision_and_generation),
        cmocka_unit_test(test_data_paths_relative_to_manifest),
        cmocka_unit_test(test_crds_are_embedded_and_well_formed),
        cmocka_unit_test(test_validate_command),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
