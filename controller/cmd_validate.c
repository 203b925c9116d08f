/* `aviary validate FILE|DIR...`: checks manifests against the embedded CRDs
 * and the cross-field rules, without AWS access. Main thread. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "controller/cmd.h"
#include "controller/manifest.h"

#define VALIDATE_MAX_FILES 100000

void cmd_validate_usage(FILE *out)
{
    fprintf(out, "usage: aviary validate [-o json] FILE|DIR...\n"
                 "\n"
                 "Checks manifests (Application, TrainingEnvironment) against the schemas\n"
                 "aviary was built with and the rules between fields; needs no AWS access.\n"
                 "A directory stands for its *.yaml and *.yml files (not hidden ones, not\n"
                 "subdirectories). Every error is printed on stderr as\n"
                 "  file:line:column: field.path: message\n"
                 "and each valid file as \"FILE: N objects OK\" on stdout. The same kind and\n"
                 "name defined twice is an error on both definitions.\n"
                 "\n"
                 "  -o json   print the valid objects as they will be applied (defaults\n"
                 "            filled in, revision, spec hash) as a JSON array on stdout\n"
                 "\n"
                 "Exit status: 0 all valid, 1 an error was found, 2 usage error.\n");
}

int cmd_wants_help(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    }
    return 0;
}

struct file_list {
    char **paths;
    size_t n, cap;
};

static int list_add(struct file_list *l, const char *path)
{
    if (l->n >= VALIDATE_MAX_FILES)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->paths, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        l->paths = p;
        l->cap = cap;
    }
    l->paths[l->n] = strdup(path);
    if (l->paths[l->n] == NULL)
        return -1;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_manifest_suffix(const char *name)
{
    size_t n = strlen(name);

    return name[0] != '.' &&
           ((n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")));
}

/* Adds the manifests of directory dir, sorted. Returns 0 or -1. */
static int add_directory(struct file_list *l, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t first = l->n;
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "%s: cannot open directory: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;

        if (!has_manifest_suffix(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                 e->d_name);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (list_add(l, path) < 0) {
            fprintf(stderr, "%s: too many files\n", dir);
            rc = -1;
            break;
        }
    }
    closedir(d);
    qsort(l->paths + first, l->n - first, sizeof(char *), cmp_str);
    return rc;
}

/* Reports kind/name pairs defined in two files, on both, and marks those
 * files in bad[]. Returns the number of errors printed. */
static size_t cross_file_duplicates(struct manifest_file **files, size_t nfiles, char *bad)
{
    size_t errors = 0, i, j, a, b;

    for (i = 0; i < nfiles; i++) {
        for (a = 0; files[i] && a < files[i]->nobjects; a++) {
            const struct manifest_object *x = &files[i]->objects[a];

            if (x->name[0] == '\0')
                continue;
            for (j = 0; j < nfiles; j++) {
                if (j == i || files[j] == NULL)
                    continue;
                for (b = 0; b < files[j]->nobjects; b++) {
                    const struct manifest_object *y = &files[j]->objects[b];

                    if (y->kind != x->kind || strcmp(y->name, x->name) != 0)
                        continue;
                    fprintf(stderr, "%s:%d:%d: metadata.name: %s \"%s\" is also defined in %s:%d\n",
                            files[i]->path, x->line, x->column, manifest_kind_name(x->kind),
                            x->name, files[j]->path, y->line);
                    bad[i] = 1;
                    errors++;
                }
            }
        }
    }
    return errors;
}

/* Appends {kind, name, file, line, revision, specHash, spec} per object. */
static void add_json(json_t *arr, const struct manifest_file *mf)
{
    size_t i;

    for (i = 0; i < mf->nobjects; i++) {
        const struct manifest_object *o = &mf->objects[i];

        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:O}", "kind",
                                             manifest_kind_name(o->kind), "name", o->name, "file",
                                             mf->path, "line", o->line, "revision", o->revision,
                                             "specHash", o->spec_hash, "spec", o->spec));
    }
}

int cmd_validate(int argc, char **argv)
{
    struct file_list list = {0};
    struct manifest_file **files = NULL;
    struct diag_list init_errors = {0};
    size_t i, dup_errors;
    json_t *out_json = NULL;
    char *bad = NULL;
    int rc = 0, only_files = 0;

    if (cmd_wants_help(argc, argv)) {
        cmd_validate_usage(stdout);
        return 0;
    }
    for (i = 1; i < (size_t)argc; i++) {
        struct stat st;

        if (!only_files && !strcmp(argv[i], "--")) {
            only_files = 1;
            continue;
        }
        if (!only_files && !strcmp(argv[i], "-o") && i + 1 < (size_t)argc &&
            !strcmp(argv[i + 1], "json")) {
            out_json = json_array();
            i++;
            continue;
        }
        if (!only_files && argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "aviary validate: unknown option %s\n", argv[i]);
            cmd_validate_usage(stderr);
            rc = 2;
            goto out;
        }
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (add_directory(&list, argv[i]) < 0)
                rc = 1;
        } else if (list_add(&list, argv[i]) < 0) {
            fprintf(stderr, "aviary validate: too many files\n");
            rc = 1;
            goto out;
        }
    }
    if (list.n == 0 && rc == 0) {
        cmd_validate_usage(stderr);
        rc = 2;
        goto out;
    }
    if (manifest_init(&init_errors) < 0) {
        diag_print(stderr, &init_errors);
        rc = 1;
        goto out;
    }
    files = calloc(list.n ? list.n : 1, sizeof(*files));
    if (files == NULL) {
        rc = 1;
        goto out;
    }
    for (i = 0; i < list.n; i++) {
        files[i] = manifest_load_file(list.paths[i]);
        if (files[i] == NULL) {
            fprintf(stderr, "%s: out of memory\n", list.paths[i]);
            rc = 1;
        }
    }
    bad = calloc(list.n ? list.n : 1, 1);
    if (bad == NULL) {
        rc = 1;
        goto out;
    }
    dup_errors = cross_file_duplicates(files, list.n, bad);
    if (dup_errors > 0)
        rc = 1;
    for (i = 0; i < list.n; i++) {
        if (files[i] == NULL || bad[i])
            continue;
        if (diag_count(&files[i]->errors) > 0) {
            diag_print(stderr, &files[i]->errors);
            rc = 1;
        } else if (out_json != NULL) {
            add_json(out_json, files[i]);
        } else {
            printf("%s: %zu object%s OK\n", files[i]->path, files[i]->nobjects,
                   files[i]->nobjects == 1 ? "" : "s");
        }
    }
    if (out_json != NULL && rc == 0) {
        char *text = json_dumps(out_json, JSON_INDENT(2) | JSON_REAL_PRECISION(15));

        if (text != NULL)
            printf("%s\n", text);
        free(text);
    }
out:
    free(bad);
    json_decref(out_json);
    for (i = 0; files != NULL && i < list.n; i++)
        manifest_file_free(files[i]);
    free(files);
    for (i = 0; i < list.n; i++)
        free(list.paths[i]);
    free(list.paths);
    diag_list_clear(&init_errors);
    return rc;
}
