/* Snapshot helpers shared by the directory and S3 sources (see source.h). */
#include "controller/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int source_read_path(const char *path, char **data, size_t *len, char *msg, size_t msglen)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    *data = NULL;
    *len = 0;
    if (fp == NULL) {
        snprintf(msg, msglen, "cannot read: %s", strerror(errno));
        return 1;
    }
    buf = malloc(SOURCE_FILE_MAX + 2);
    if (buf == NULL) {
        fclose(fp);
        return -1;
    }
    n = fread(buf, 1, SOURCE_FILE_MAX + 1, fp);
    if (ferror(fp)) {
        snprintf(msg, msglen, "cannot read: %s", strerror(errno));
        fclose(fp);
        free(buf);
        return 1;
    }
    fclose(fp);
    if (n > SOURCE_FILE_MAX) {
        snprintf(msg, msglen, "file is larger than the 1 MiB limit for a manifest");
        free(buf);
        return 1;
    }
    /* Read with room for the limit, kept at its size: many small files must
     * pin neither 1 MiB nor a page-sized mapping each. */
    *data = malloc(n + 1);
    if (*data == NULL) {
        free(buf);
        return -1;
    }
    memcpy(*data, buf, n);
    (*data)[n] = '\0';
    free(buf);
    *len = n;
    return 0;
}

void source_file_clear(struct source_file *f)
{
    free(f->name);
    free(f->path);
    free(f->data);
    free(f->error);
    memset(f, 0, sizeof(*f));
}

void source_snapshot_clear(struct source_snapshot *snap)
{
    for (size_t i = 0; i < snap->n; i++)
        source_file_clear(&snap->files[i]);
    free(snap->files);
    snap->files = NULL;
    snap->n = 0;
    for (size_t i = 0; i < snap->n_changed; i++)
        free(snap->changed[i]);
    free(snap->changed);
    snap->changed = NULL;
    snap->n_changed = 0;
    snap->partial = 0;
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

int source_snapshot_copy(struct source_snapshot *dst, const struct source_snapshot *src)
{
    int failed = 0;

    memset(dst, 0, sizeof(*dst));
    dst->files = src->n ? calloc(src->n, sizeof(*dst->files)) : NULL;
    if (src->n && dst->files == NULL)
        return -1;
    for (size_t i = 0; i < src->n; i++) {
        const struct source_file *s = &src->files[i];
        struct source_file *d = &dst->files[i];
        d->name = dup_or_null(s->name, &failed);
        d->path = dup_or_null(s->path, &failed);
        d->error = dup_or_null(s->error, &failed);
        if (s->data != NULL) {
            d->data = malloc(s->len + 1);
            if (d->data == NULL)
                failed = 1;
            else
                memcpy(d->data, s->data, s->len + 1);
        }
        d->len = s->len;
        d->is_link = s->is_link;
        memcpy(d->id, s->id, sizeof(d->id));
        dst->n = i + 1;
        if (failed) {
            source_snapshot_clear(dst);
            return -1;
        }
    }
    return 0;
}

size_t source_snapshot_lower_bound(const struct source_snapshot *snap, const char *name)
{
    size_t lo = 0, hi = snap->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(snap->files[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

long source_snapshot_find(const struct source_snapshot *snap, const char *name)
{
    size_t at = source_snapshot_lower_bound(snap, name);

    return at < snap->n && strcmp(snap->files[at].name, name) == 0 ? (long)at : -1;
}

static int same_string(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

int source_snapshot_equal(const struct source_snapshot *a, const struct source_snapshot *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->files[i].name, b->files[i].name) != 0 ||
            strcmp(a->files[i].id, b->files[i].id) != 0 ||
            !same_string(a->files[i].error, b->files[i].error))
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int source_is_manifest_name(const char *name)
{
    const char *base = strrchr(name, '/');

    base = base ? base + 1 : name;
    if (base[0] == '.' || base[0] == '#' || base[0] == '~' || base[0] == '\0')
        return 0;
    if (!ends_with(base, ".yaml") && !ends_with(base, ".yml"))
        return 0;
    /* "x.yaml" must have a stem */
    return strcmp(base, ".yaml") != 0 && strcmp(base, ".yml") != 0;
}
