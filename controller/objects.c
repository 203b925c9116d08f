/* Desired objects from a source snapshot (see objects.h). Loop thread. */
#include "controller/objects.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/manifest.h"

#define ERROR_LINE_MAX 1024

static int add_error(json_t *arr, const struct diag *dg)
{
    char line[ERROR_LINE_MAX];

    diag_format(dg, line, sizeof(line));
    return json_array_append_new(arr, json_string(line));
}

/* Appends the errors of file mf that fall in [from_line, to_line) to arr;
 * to_line 0 means to the end. */
static int collect_errors(const struct manifest_file *mf, int from_line, int to_line, json_t *arr)
{
    for (size_t i = 0; i < mf->errors.n; i++) {
        const struct diag *dg = &mf->errors.items[i];
        if (dg->line < from_line || (to_line > 0 && dg->line >= to_line))
            continue;
        if (add_error(arr, dg) != 0)
            return -1;
    }
    if (mf->errors.dropped > 0) {
        char more[128];
        snprintf(more, sizeof(more), "%zu more errors not shown", mf->errors.dropped);
        json_array_append_new(arr, json_string(more));
    }
    return 0;
}

static int mark_broken(struct desired_set *out, const char *name, json_t *errors)
{
    json_t *prev = json_object_get(out->broken_files, name);

    if (prev != NULL) {
        json_array_extend(prev, errors);
        json_decref(errors);
        return 0;
    }
    return json_object_set_new(out->broken_files, name, errors);
}

static struct desired_object *add_object(struct desired_set *out, size_t *cap)
{
    if (out->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct desired_object *grown = realloc(out->objs, ncap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        out->objs = grown;
        *cap = ncap;
    }
    memset(&out->objs[out->n], 0, sizeof(out->objs[0]));
    return &out->objs[out->n++];
}

/* Adds the objects of one loaded file. Returns 0 or -1 (out of memory). */
static int add_file(struct desired_set *out, size_t *cap, const struct source_file *sf,
                    const struct manifest_file *mf)
{
    bool any_anonymous = false;
    json_t *anonymous = json_array();

    if (anonymous == NULL)
        return -1;
    for (size_t i = 0; i < mf->nobjects; i++) {
        const struct manifest_object *mo = &mf->objects[i];
        int next_line = i + 1 < mf->nobjects ? mf->objects[i + 1].line : 0;
        struct desired_object *o;

        if (mo->kind == MANIFEST_KIND_UNKNOWN || mo->name[0] == '\0') {
            /* Nothing to attribute the errors to: the file counts as broken. */
            any_anonymous = true;
            if (collect_errors(mf, mo->line, next_line, anonymous) != 0)
                goto fail;
            continue;
        }
        o = add_object(out, cap);
        if (o == NULL)
            goto fail;
        o->kind = strdup(manifest_kind_name(mo->kind));
        o->name = strdup(mo->name);
        o->file = strdup(sf->path ? sf->path : sf->name);
        o->manifest_dir = out->root_dir;
        o->line = mo->line;
        o->errors = json_array();
        if (o->kind == NULL || o->name == NULL || o->file == NULL || o->errors == NULL)
            goto fail;
        if (mo->valid && mo->spec != NULL) {
            o->spec = json_dumps(mo->spec, JSON_COMPACT | JSON_SORT_KEYS);
            if (o->spec == NULL)
                goto fail;
            snprintf(o->revision, sizeof(o->revision), "%s", mo->revision);
            snprintf(o->spec_hash, sizeof(o->spec_hash), "%s", mo->spec_hash);
        } else if (collect_errors(mf, mo->line, next_line, o->errors) != 0) {
            goto fail;
        }
    }
    if (mf->nobjects == 0 && diag_count(&mf->errors) > 0) {
        any_anonymous = true;
        if (collect_errors(mf, 0, 0, anonymous) != 0)
            goto fail;
    }
    if (any_anonymous)
        return mark_broken(out, sf->path ? sf->path : sf->name, anonymous);
    json_decref(anonymous);
    return 0;
fail:
    json_decref(anonymous);
    return -1;
}

/* Where the objects of `file` sit in set: returns 1 with [*first, *first +
 * *count), or 0. A set's objects are in the order of the snapshot it was
 * built from, sorted by file name (a source's paths share their prefix), so
 * this is a binary search; were the order ever different, a file not found
 * is simply loaded again. */
static int file_range(const struct desired_set *set, const char *file, size_t *first, size_t *count)
{
    size_t lo = 0, hi = set->n, end;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(set->objs[mid].file, file) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= set->n || strcmp(set->objs[lo].file, file) != 0)
        return 0;
    for (end = lo + 1; end < set->n && strcmp(set->objs[end].file, file) == 0; end++)
        ;
    *first = lo;
    *count = end - lo;
    return 1;
}

/* Copies the objects previous loaded from file sf (same name, same id) into
 * out. Returns 1 when sf was unchanged and copied, 0 when it must be loaded,
 * -1 when out of memory. */
static int reuse_file(struct desired_set *out, size_t *cap, const struct source_file *sf,
                      const struct desired_set *previous)
{
    const char *shown = sf->path ? sf->path : sf->name;
    json_t *broken;
    const char *broken_id;
    size_t first, count;

    if (previous == NULL || sf->id[0] == '\0')
        return 0;
    broken = json_object_get(previous->broken_files, shown);
    if (broken != NULL) {
        broken_id = json_string_value(json_object_get(previous->file_ids, shown));
        if (broken_id == NULL || strcmp(broken_id, sf->id) != 0)
            return 0;
        return mark_broken(out, shown, json_deep_copy(broken)) == 0 ? 1 : -1;
    }
    if (!file_range(previous, shown, &first, &count))
        return 0;
    if (strcmp(previous->objs[first].file_id, sf->id) != 0)
        return 0;
    for (size_t i = first; i < first + count; i++) {
        const struct desired_object *p = &previous->objs[i];
        struct desired_object *o = add_object(out, cap);
        if (o == NULL)
            return -1;
        o->kind = strdup(p->kind);
        o->name = strdup(p->name);
        o->file = strdup(p->file);
        o->manifest_dir = out->root_dir;
        if (o->kind == NULL || o->name == NULL || o->file == NULL)
            return -1;
        o->line = p->line;
        memcpy(o->revision, p->revision, sizeof(o->revision));
        memcpy(o->spec_hash, p->spec_hash, sizeof(o->spec_hash));
        memcpy(o->file_id, p->file_id, sizeof(o->file_id));
        o->unchanged = true;
        o->prev_index = i;
    }
    return 1;
}

/* The contents of sf: its data, or (when the source did not keep them) the
 * file read again from its path, then owned by the caller (*owned, else
 * NULL). Returns 0; 1 when unreadable, with the reason; -1 when out of
 * memory. */
static int file_contents(const struct source_file *sf, const char **data, size_t *len, char **owned,
                         char *reason, size_t reason_len)
{
    int rc;

    *owned = NULL;
    *data = sf->data;
    *len = sf->len;
    if (sf->data != NULL)
        return 0;
    if (sf->error != NULL || sf->path == NULL) {
        snprintf(reason, reason_len, "%s", sf->error ? sf->error : "unreadable");
        return 1;
    }
    rc = source_read_path(sf->path, owned, len, reason, reason_len);
    *data = *owned;
    return rc;
}

/* Adds the objects of one snapshot file to out: copied from previous when
 * unchanged, else loaded. Returns 0 or -1 (out of memory). */
static int add_snapshot_file(struct desired_set *out, size_t *cap, const struct source_file *sf,
                             const struct desired_set *previous, const char *root_dir)
{
    const char *shown = sf->path ? sf->path : sf->name;
    struct manifest_file *mf;
    const char *data;
    char *owned, reason[256];
    size_t len, first;
    int rc;

    rc = reuse_file(out, cap, sf, previous);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    rc = file_contents(sf, &data, &len, &owned, reason, sizeof(reason));
    if (rc < 0)
        return -1;
    if (rc > 0) {
        char msg[ERROR_LINE_MAX];
        snprintf(msg, sizeof(msg), "%s: %s", shown, reason);
        return mark_broken(out, shown, json_pack("[s]", msg)) == 0 ? 0 : -1;
    }
    mf = manifest_load_buffer(shown, data, len, root_dir);
    free(owned);
    if (mf == NULL)
        return -1;
    out->files_loaded++;
    first = out->n;
    rc = add_file(out, cap, sf, mf);
    manifest_file_free(mf);
    for (size_t k = first; rc == 0 && k < out->n; k++)
        snprintf(out->objs[k].file_id, sizeof(out->objs[k].file_id), "%s", sf->id);
    return rc;
}

int objects_build(const struct source_snapshot *snap, const char *root_dir,
                  const struct desired_set *previous, struct desired_set *out)
{
    size_t cap = 0;

    memset(out, 0, sizeof(*out));
    out->broken_files = json_object();
    out->file_ids = json_object();
    out->root_dir = root_dir != NULL ? strdup(root_dir) : NULL;
    if (out->broken_files == NULL || out->file_ids == NULL ||
        (root_dir != NULL && out->root_dir == NULL) || manifest_init(NULL) != 0)
        goto fail;
    for (size_t i = 0; i < snap->n; i++) {
        const struct source_file *sf = &snap->files[i];
        const char *shown = sf->path ? sf->path : sf->name;

        if (add_snapshot_file(out, &cap, sf, previous, root_dir) != 0)
            goto fail;
        /* Only a broken file's version is needed to recognise it later. */
        if (json_object_get(out->broken_files, shown) != NULL &&
            json_object_set_new(out->file_ids, shown, json_string(sf->id)) != 0)
            goto fail;
    }
    return 0;
fail:
    objects_clear(out);
    return -1;
}

/* Moves what a fresh load gave (spec, revision, hash, errors) into the
 * copied object o. */
static void take_loaded(struct desired_object *o, struct desired_object *fresh)
{
    free(o->spec);
    json_decref(o->errors);
    o->spec = fresh->spec;
    o->errors = fresh->errors;
    fresh->spec = NULL;
    fresh->errors = NULL;
    memcpy(o->revision, fresh->revision, sizeof(o->revision));
    memcpy(o->spec_hash, fresh->spec_hash, sizeof(o->spec_hash));
    o->unchanged = false;
}

/* Loads the file of the objects set->objs[first, first+count) again. */
static int reload_range(struct desired_set *set, size_t first, size_t count,
                        const struct source_snapshot *snap, const char *root_dir)
{
    const char *file = set->objs[first].file;
    const struct source_file *sf = NULL;
    struct desired_set fresh = {0};
    struct manifest_file *mf;
    const char *data;
    char *owned, reason[256];
    size_t cap = 0, len;
    int rc;

    for (size_t i = 0; i < snap->n && sf == NULL; i++) {
        const struct source_file *f = &snap->files[i];
        if (strcmp(f->path ? f->path : f->name, file) == 0)
            sf = f;
    }
    if (sf == NULL || strcmp(sf->id, set->objs[first].file_id) != 0)
        return 1;
    rc = file_contents(sf, &data, &len, &owned, reason, sizeof(reason));
    if (rc != 0)
        return rc;
    fresh.broken_files = json_object();
    mf = fresh.broken_files != NULL ? manifest_load_buffer(file, data, len, root_dir) : NULL;
    free(owned);
    if (mf == NULL) {
        objects_clear(&fresh);
        return -1;
    }
    set->files_loaded++;
    rc = add_file(&fresh, &cap, sf, mf);
    manifest_file_free(mf);
    if (rc != 0) {
        objects_clear(&fresh);
        return -1;
    }
    if (fresh.n != count || json_object_size(fresh.broken_files) != 0)
        rc = 1;
    for (size_t k = 0; rc == 0 && k < count; k++) {
        const struct desired_object *o = &set->objs[first + k], *f = &fresh.objs[k];
        if (strcmp(o->kind, f->kind) != 0 || strcmp(o->name, f->name) != 0 || o->line != f->line)
            rc = 1;
    }
    for (size_t k = 0; rc == 0 && k < count; k++)
        take_loaded(&set->objs[first + k], &fresh.objs[k]);
    objects_clear(&fresh);
    return rc;
}

int objects_reload(struct desired_set *set, const struct source_snapshot *snap,
                   const char *root_dir, const bool *need)
{
    for (size_t i = 0; i < set->n;) {
        /* Objects of one file are contiguous: [i, j). */
        size_t j = i + 1;
        bool wanted = need[i] && set->objs[i].unchanged;
        while (j < set->n && strcmp(set->objs[j].file, set->objs[i].file) == 0) {
            wanted = wanted || (need[j] && set->objs[j].unchanged);
            j++;
        }
        if (wanted) {
            int rc = reload_range(set, i, j - i, snap, root_dir);
            if (rc != 0)
                return rc;
        }
        i = j;
    }
    return 0;
}

void objects_clear(struct desired_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct desired_object *o = &set->objs[i];
        free(o->kind);
        free(o->name);
        free(o->file);
        free(o->spec);
        json_decref(o->errors);
    }
    free(set->objs);
    json_decref(set->broken_files);
    json_decref(set->file_ids);
    free(set->root_dir);
    memset(set, 0, sizeof(*set));
}
