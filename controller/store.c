/* Status store with crash-safe persistence (see store.h). Any thread; one
 * mutex guards the records, and writes happen under it so two writers of the
 * same record cannot reorder on disk. */
#include "controller/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_PATH_MAX   4096
#define STORE_RECORD_MAX (4u * 1024u * 1024u)

struct store_record {
    char *kind;
    char *name;
    json_t *rec;
};

struct store {
    pthread_mutex_t mu;
    char *dir; /* NULL: memory only */
    struct store_record *recs;
    size_t n, cap;
};

/* Object names are DNS labels and kinds are identifiers, so they are safe as
 * file names; anything else is refused rather than escaped. */
static bool safe_component(const char *s)
{
    if (*s == '\0' || strlen(s) > 128 || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static int record_path(const struct store *st, const char *kind, const char *name,
                       const char *suffix, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/objects/%s_%s.json%s", st->dir, kind, name, suffix);
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes text to path atomically: temp file, fsync, rename, fsync dir. */
static int write_atomic(const char *dir, const char *path, const char *tmp, const char *text)
{
    size_t len = strlen(text), off = 0;
    int fd, rc = -1;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    rc = fsync_dir(dir);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static struct store_record *find(struct store *st, const char *kind, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->recs[i].kind, kind) == 0 && strcmp(st->recs[i].name, name) == 0)
            return &st->recs[i];
    return NULL;
}

/* Takes ownership of rec. Returns 0 or -1 (out of memory; rec released). */
static int set_record(struct store *st, const char *kind, const char *name, json_t *rec)
{
    struct store_record *r = find(st, kind, name);

    if (r != NULL) {
        json_decref(r->rec);
        r->rec = rec;
        return 0;
    }
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 32;
        struct store_record *grown = realloc(st->recs, cap * sizeof(*grown));
        if (grown == NULL)
            goto fail;
        st->recs = grown;
        st->cap = cap;
    }
    r = &st->recs[st->n];
    r->kind = strdup(kind);
    r->name = strdup(name);
    if (r->kind == NULL || r->name == NULL) {
        free(r->kind);
        free(r->name);
        goto fail;
    }
    r->rec = rec;
    st->n++;
    return 0;
fail:
    json_decref(rec);
    return -1;
}

/* Appends "path: unreadable record moved to aside; " to errbuf. */
static void append_corrupt(char *errbuf, size_t errlen, const char *path, const char *aside)
{
    size_t used;

    if (errbuf == NULL || errlen == 0)
        return;
    used = strlen(errbuf);
    if (used + 1 >= errlen)
        return;
    snprintf(errbuf + used, errlen - used, "%s: unreadable record moved to %s; ", path, aside);
}

/* Loads every record file in dir/objects; removes the temp files a crash left. */
static int load_all(struct store *st, char *errbuf, size_t errlen)
{
    char objdir[STORE_PATH_MAX], path[STORE_PATH_MAX], aside[STORE_PATH_MAX + 16];
    DIR *d;
    struct dirent *de;

    snprintf(objdir, sizeof(objdir), "%s/objects", st->dir);
    d = opendir(objdir);
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        json_error_t jerr;
        json_t *rec;
        const char *kind, *name;

        if (de->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", objdir, de->d_name) >= (int)sizeof(path))
            continue;
        if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
            unlink(path); /* an interrupted write: the previous record is intact */
            continue;
        }
        if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        rec = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        kind = json_string_value(json_object_get(rec, "kind"));
        name = json_string_value(json_object_get(rec, "name"));
        if (rec == NULL || kind == NULL || name == NULL || !safe_component(kind) ||
            !safe_component(name)) {
            if (snprintf(aside, sizeof(aside), "%.4000s.corrupt", path) < (int)sizeof(aside))
                rename(path, aside);
            append_corrupt(errbuf, errlen, path, aside);
            json_decref(rec);
            continue;
        }
        if (set_record(st, kind, name, rec) != 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

int store_open(const char *dir, struct store **out, char *errbuf, size_t errlen)
{
    struct store *st;
    char objdir[STORE_PATH_MAX];

    *out = NULL;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -1;
    pthread_mutex_init(&st->mu, NULL);
    if (dir != NULL) {
        st->dir = strdup(dir);
        if (st->dir == NULL)
            goto fail;
        if (snprintf(objdir, sizeof(objdir), "%s/objects", dir) >= (int)sizeof(objdir))
            goto fail;
        if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
            (mkdir(objdir, 0700) != 0 && errno != EEXIST)) {
            if (errbuf != NULL)
                snprintf(errbuf, errlen, "%s: %s", objdir, strerror(errno));
            goto fail;
        }
        if (load_all(st, errbuf, errlen) != 0) {
            if (errbuf != NULL && errbuf[0] == '\0')
                snprintf(errbuf, errlen, "%s: cannot load records", objdir);
            goto fail;
        }
    }
    *out = st;
    return 0;
fail:
    store_close(st);
    return -1;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++) {
        free(st->recs[i].kind);
        free(st->recs[i].name);
        json_decref(st->recs[i].rec);
    }
    free(st->recs);
    free(st->dir);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

json_t *store_get(struct store *st, const char *kind, const char *name)
{
    struct store_record *r;
    json_t *copy = NULL;

    pthread_mutex_lock(&st->mu);
    r = find(st, kind, name);
    if (r != NULL)
        copy = json_deep_copy(r->rec);
    pthread_mutex_unlock(&st->mu);
    return copy;
}

/* Persists and installs rec (taking ownership); caller holds the mutex.
 * Returns 0, or -1 with the previous record untouched. */
static int put_locked(struct store *st, const char *kind, const char *name, json_t *rec)
{
    char path[STORE_PATH_MAX], tmp[STORE_PATH_MAX], objdir[STORE_PATH_MAX];
    char *text = NULL;
    int rc = -1;

    /* The record names itself so a reload needs nothing but the file. */
    if (json_object_set_new(rec, "kind", json_string(kind)) != 0 ||
        json_object_set_new(rec, "name", json_string(name)) != 0)
        goto out;
    if (st->dir != NULL) {
        text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (text == NULL || strlen(text) > STORE_RECORD_MAX ||
            record_path(st, kind, name, "", path, sizeof(path)) != 0 ||
            record_path(st, kind, name, ".tmp", tmp, sizeof(tmp)) != 0)
            goto out;
        snprintf(objdir, sizeof(objdir), "%s/objects", st->dir);
        if (write_atomic(objdir, path, tmp, text) != 0)
            goto out;
    }
    rc = set_record(st, kind, name, rec);
    rec = NULL;
out:
    free(text);
    json_decref(rec);
    return rc;
}

int store_put(struct store *st, const char *kind, const char *name, const json_t *rec)
{
    json_t *copy;
    int rc;

    if (!safe_component(kind) || !safe_component(name) || !json_is_object(rec))
        return -1;
    copy = json_deep_copy(rec);
    if (copy == NULL)
        return -1;
    pthread_mutex_lock(&st->mu);
    rc = put_locked(st, kind, name, copy);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_set_field(struct store *st, const char *kind, const char *name, const char *key,
                    const json_t *value)
{
    struct store_record *r;
    json_t *rec;
    int rc = -1;

    if (!safe_component(kind) || !safe_component(name))
        return -1;
    pthread_mutex_lock(&st->mu);
    r = find(st, kind, name);
    rec = r != NULL ? json_deep_copy(r->rec) : json_object();
    if (rec != NULL && json_object_set_new(rec, key, json_deep_copy(value)) == 0)
        rc = put_locked(st, kind, name, rec);
    else
        json_decref(rec);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int delete_locked(struct store *st, const char *kind, const char *name)
{
    char path[STORE_PATH_MAX], objdir[STORE_PATH_MAX];
    struct store_record *r;

    if (st->dir != NULL && safe_component(kind) && safe_component(name) &&
        record_path(st, kind, name, "", path, sizeof(path)) == 0) {
        if (unlink(path) != 0 && errno != ENOENT)
            return -1;
        snprintf(objdir, sizeof(objdir), "%s/objects", st->dir);
        fsync_dir(objdir);
    }
    r = find(st, kind, name);
    if (r != NULL) {
        free(r->kind);
        free(r->name);
        json_decref(r->rec);
        *r = st->recs[--st->n];
    }
    return 0;
}

int store_delete_if_true(struct store *st, const char *kind, const char *name, const char *key)
{
    struct store_record *r;
    int rc = 0;

    pthread_mutex_lock(&st->mu);
    r = find(st, kind, name);
    if (r != NULL && json_is_true(json_object_get(r->rec, key)))
        rc = delete_locked(st, kind, name) == 0 ? 1 : -1;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_delete(struct store *st, const char *kind, const char *name)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = delete_locked(st, kind, name);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int compare_records(const void *a, const void *b)
{
    const json_t *ra = *(json_t *const *)a, *rb = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(ra, "kind")),
                   json_string_value(json_object_get(rb, "kind")));
    return c != 0 ? c
                  : strcmp(json_string_value(json_object_get(ra, "name")),
                           json_string_value(json_object_get(rb, "name")));
}

json_t *store_list(struct store *st)
{
    json_t *arr = json_array();
    json_t **tmp = NULL;
    size_t n;

    if (arr == NULL)
        return NULL;
    pthread_mutex_lock(&st->mu);
    n = st->n;
    tmp = n ? calloc(n, sizeof(*tmp)) : NULL;
    for (size_t i = 0; tmp != NULL && i < n; i++)
        tmp[i] = json_deep_copy(st->recs[i].rec);
    pthread_mutex_unlock(&st->mu);
    if (n && tmp == NULL) {
        json_decref(arr);
        return NULL;
    }
    if (n > 1)
        qsort(tmp, n, sizeof(*tmp), compare_records);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, tmp[i]);
    free(tmp);
    return arr;
}

size_t store_count(struct store *st)
{
    size_t n;

    pthread_mutex_lock(&st->mu);
    n = st->n;
    pthread_mutex_unlock(&st->mu);
    return n;
}
