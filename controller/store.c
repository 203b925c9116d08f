/* Status store with crash-safe persistence (see store.h). Any thread. One
 * mutex (mu) guards the records in memory; the files are written while one
 * of STORE_IO_LOCKS stripes chosen by the record's key is held, taken before
 * mu, so two writers of the same record cannot reorder on disk while writes
 * of different records (a worker's status, the loop's desired state) do not
 * wait for each other's fsync, and readers never wait for a disk write. In memory a record is its
 * compact JSON text (sorted keys), not a jansson tree: a defaulted spec costs several times more as
 * a tree, and every reader gets a fresh copy anyway. */
#include "controller/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_PATH_MAX   4096
#define STORE_RECORD_MAX (4u * 1024u * 1024u)
#define STORE_IO_LOCKS   64
#define STORE_KEY_MAX    130 /* kind or name: safe_component allows 128 characters */

struct store_record {
    char *kind;
    char *name;
    char *text; /* compact JSON, sorted keys */
};

struct store {
    pthread_mutex_t mu;
    /* File writes, by hash of kind/name: a stripe is held from the moment a
     * write is in force in memory until it is on disk, possibly released by
     * another thread (store_commit), hence a flag, not a mutex. */
    pthread_mutex_t io_mu;
    pthread_cond_t io_cond;
    bool io_busy[STORE_IO_LOCKS];
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

/* The compact text of rec (caller frees), or NULL when out of memory. */
static char *compact_text(const json_t *rec)
{
    return json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
}

/* A new tree parsed from a record's text, or NULL when out of memory. */
static json_t *record_tree(const char *text)
{
    return json_loads(text, 0, NULL);
}

/* The stripe of the file of kind/name (FNV-1a of the key). */
static unsigned io_stripe(const char *kind, const char *name)
{
    uint32_t h = 2166136261u;

    for (const char *p = kind; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ '/') * 16777619u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % STORE_IO_LOCKS;
}

static void io_acquire(struct store *st, unsigned io)
{
    pthread_mutex_lock(&st->io_mu);
    while (st->io_busy[io])
        pthread_cond_wait(&st->io_cond, &st->io_mu);
    st->io_busy[io] = true;
    pthread_mutex_unlock(&st->io_mu);
}

static void io_release(struct store *st, unsigned io)
{
    pthread_mutex_lock(&st->io_mu);
    st->io_busy[io] = false;
    pthread_cond_broadcast(&st->io_cond);
    pthread_mutex_unlock(&st->io_mu);
}

static void drop_record(struct store *st, struct store_record *r)
{
    free(r->kind);
    free(r->name);
    free(r->text);
    *r = st->recs[--st->n];
}

/* Takes ownership of text (a record's compact JSON). The text it replaces
 * goes to *old (caller frees; NULL for a new record) when old is not NULL,
 * else is freed. Returns 0 or -1 (out of memory; text freed). */
static int set_record(struct store *st, const char *kind, const char *name, char *text, char **old)
{
    struct store_record *r = find(st, kind, name);

    if (old != NULL)
        *old = NULL;
    if (r != NULL) {
        if (old != NULL)
            *old = r->text;
        else
            free(r->text);
        r->text = text;
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
    r->text = text;
    st->n++;
    return 0;
fail:
    free(text);
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
        char *text;

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
        text = compact_text(rec);
        if (text == NULL || set_record(st, kind, name, text, NULL) != 0) {
            json_decref(rec);
            closedir(d);
            return -1;
        }
        json_decref(rec);
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
    pthread_mutex_init(&st->io_mu, NULL);
    pthread_cond_init(&st->io_cond, NULL);
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
        free(st->recs[i].text);
    }
    free(st->recs);
    free(st->dir);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->io_mu);
    pthread_cond_destroy(&st->io_cond);
    free(st);
}

/* A tree of the record of kind/name, parsed under the mutex (caller holds
 * it), or NULL when absent or out of memory. */
static json_t *get_locked(struct store *st, const char *kind, const char *name)
{
    struct store_record *r = find(st, kind, name);

    return r != NULL ? record_tree(r->text) : NULL;
}

json_t *store_get(struct store *st, const char *kind, const char *name)
{
    struct store_record *r;
    char *text = NULL;
    json_t *copy;

    pthread_mutex_lock(&st->mu);
    r = find(st, kind, name);
    if (r != NULL)
        text = strdup(r->text);
    pthread_mutex_unlock(&st->mu);
    /* Parsed outside the lock: workers and the loop do not wait on each other. */
    copy = text != NULL ? record_tree(text) : NULL;
    free(text);
    return copy;
}

/* A write installed in memory and not yet on disk (see store_stage_fields).
 * It holds the record's stripe lock until committed. */
struct store_txn {
    struct store *st;
    unsigned io; /* stripe held */
    char kind[STORE_KEY_MAX], name[STORE_KEY_MAX];
    char *text;    /* the new record as written to disk (indented), or NULL */
    char *compact; /* its text, in force in memory */
    char *old;     /* the text it replaced, NULL for a new record */
};

/* Installs rec (taken) in memory. The caller holds the record's stripe lock
 * io and mu; mu is released here, io is not (it goes with the returned
 * transaction). A record equal to the one in force is not written again (an
 * idle resync rewrites nothing). Returns 0 with *out (NULL when nothing
 * changed: io is then released), or -1 with io released and nothing
 * changed. */
static int stage_and_unlock(struct store *st, unsigned io, const char *kind, const char *name,
                            json_t *rec, struct store_txn **out)
{
    struct store_txn *t = NULL;
    struct store_record *prev;
    char *compact = NULL, *old = NULL;
    int rc = -1;

    *out = NULL;
    /* The record names itself so a reload needs nothing but the file. */
    if (json_object_set_new(rec, "kind", json_string(kind)) != 0 ||
        json_object_set_new(rec, "name", json_string(name)) != 0)
        goto fail;
    compact = compact_text(rec);
    if (compact == NULL || strlen(compact) > STORE_RECORD_MAX)
        goto fail;
    prev = find(st, kind, name);
    if (prev != NULL && strcmp(prev->text, compact) == 0) {
        rc = 0;
        goto fail;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto fail;
    if (st->dir != NULL) {
        t->text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (t->text == NULL)
            goto fail;
    }
    /* In force in memory at once: readers see it; no other writer of this
     * record can run before it is on disk (the stripe lock). */
    if (set_record(st, kind, name, compact, &old) != 0) {
        compact = NULL;
        goto fail;
    }
    pthread_mutex_unlock(&st->mu);
    t->st = st;
    t->io = io;
    snprintf(t->kind, sizeof(t->kind), "%s", kind);
    snprintf(t->name, sizeof(t->name), "%s", name);
    json_decref(rec);
    t->compact = compact;
    t->old = old;
    *out = t;
    return 0;
fail:
    pthread_mutex_unlock(&st->mu);
    io_release(st, io);
    if (t != NULL)
        free(t->text);
    free(t);
    free(compact);
    json_decref(rec);
    return rc;
}

int store_commit(struct store_txn *t)
{
    char path[STORE_PATH_MAX], tmp[STORE_PATH_MAX], objdir[STORE_PATH_MAX];
    struct store *st;
    struct store_record *r;
    int rc = 0;

    if (t == NULL)
        return 0;
    st = t->st;
    if (st->dir != NULL) {
        snprintf(objdir, sizeof(objdir), "%s/objects", st->dir);
        if (record_path(st, t->kind, t->name, "", path, sizeof(path)) != 0 ||
            record_path(st, t->kind, t->name, ".tmp", tmp, sizeof(tmp)) != 0 ||
            write_atomic(objdir, path, tmp, t->text) != 0)
            rc = -1;
    }
    if (rc != 0) {
        /* Not written: put the previous record back in memory. */
        pthread_mutex_lock(&st->mu);
        r = find(st, t->kind, t->name);
        if (r != NULL && r->text == t->compact) {
            if (t->old != NULL) {
                r->text = t->old;
                t->old = NULL;
                free(t->compact);
            } else {
                drop_record(st, r);
            }
        }
        pthread_mutex_unlock(&st->mu);
    }
    io_release(st, t->io);
    free(t->text);
    free(t->old);
    free(t);
    return rc;
}

int store_put(struct store *st, const char *kind, const char *name, const json_t *rec)
{
    struct store_txn *t;
    unsigned io;
    json_t *copy;

    if (!safe_component(kind) || !safe_component(name) || !json_is_object(rec))
        return -1;
    copy = json_deep_copy(rec);
    if (copy == NULL)
        return -1;
    io = io_stripe(kind, name);
    io_acquire(st, io);
    pthread_mutex_lock(&st->mu);
    if (stage_and_unlock(st, io, kind, name, copy, &t) != 0)
        return -1;
    return store_commit(t);
}

int store_set_field(struct store *st, const char *kind, const char *name, const char *key,
                    const json_t *value)
{
    json_t *members;
    int rc;

    members = json_object();
    if (members == NULL || json_object_set(members, key, (json_t *)value) != 0) {
        json_decref(members);
        return -1;
    }
    rc = store_set_fields(st, kind, name, members);
    json_decref(members);
    return rc;
}

int store_stage_fields(struct store *st, const char *kind, const char *name, const json_t *members,
                       struct store_txn **out)
{
    struct store_record *r;
    unsigned io;
    const char *key;
    json_t *rec, *value;
    int rc = -1;

    *out = NULL;
    if (!safe_component(kind) || !safe_component(name) || !json_is_object(members))
        return -1;
    io = io_stripe(kind, name);
    io_acquire(st, io);
    pthread_mutex_lock(&st->mu);
    r = find(st, kind, name);
    rec = r != NULL ? record_tree(r->text) : json_object();
    if (rec != NULL) {
        rc = 0;
        json_object_foreach((json_t *)members, key, value)
        {
            if (json_object_set_new(rec, key, json_deep_copy(value)) != 0)
                rc = -1;
        }
    }
    if (rc != 0) {
        pthread_mutex_unlock(&st->mu);
        io_release(st, io);
        json_decref(rec);
        return -1;
    }
    return stage_and_unlock(st, io, kind, name, rec, out);
}

int store_set_fields(struct store *st, const char *kind, const char *name, const json_t *members)
{
    struct store_txn *t;

    if (store_stage_fields(st, kind, name, members, &t) != 0)
        return -1;
    return store_commit(t);
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
    if (r != NULL)
        drop_record(st, r);
    return 0;
}

int store_delete_if_true(struct store *st, const char *kind, const char *name, const char *key)
{
    unsigned io = io_stripe(kind, name);
    json_t *rec;
    int rc = 0;

    /* The stripe lock first: no write of this record is in flight. */
    io_acquire(st, io);
    pthread_mutex_lock(&st->mu);
    rec = get_locked(st, kind, name);
    if (rec != NULL && json_is_true(json_object_get(rec, key)))
        rc = delete_locked(st, kind, name) == 0 ? 1 : -1;
    pthread_mutex_unlock(&st->mu);
    io_release(st, io);
    json_decref(rec);
    return rc;
}

int store_delete(struct store *st, const char *kind, const char *name)
{
    unsigned io = io_stripe(kind, name);
    int rc;

    io_acquire(st, io);
    pthread_mutex_lock(&st->mu);
    rc = delete_locked(st, kind, name);
    pthread_mutex_unlock(&st->mu);
    io_release(st, io);
    return rc;
}

/* A copy of one record taken under the mutex, for listing outside it. */
struct record_copy {
    char *kind;
    char *name;
    char *text;
};

static int compare_copies(const void *a, const void *b)
{
    const struct record_copy *ra = a, *rb = b;
    int c = strcmp(ra->kind, rb->kind);

    return c != 0 ? c : strcmp(ra->name, rb->name);
}

static void free_copies(struct record_copy *c, size_t n)
{
    for (size_t i = 0; c != NULL && i < n; i++) {
        free(c[i].kind);
        free(c[i].name);
        free(c[i].text);
    }
    free(c);
}

/* Copies the key of every record as it is now, and its text when
 * with_text, sorted by kind then name. Returns 0 with *out (NULL when empty;
 * free_copies) and *n, or -1 when out of memory. */
static int copy_all(struct store *st, bool with_text, struct record_copy **out, size_t *n)
{
    struct record_copy *c = NULL;
    size_t count;
    int rc = 0;

    pthread_mutex_lock(&st->mu);
    count = st->n;
    if (count > 0) {
        c = calloc(count, sizeof(*c));
        for (size_t i = 0; c != NULL && i < count; i++) {
            c[i].kind = strdup(st->recs[i].kind);
            c[i].name = strdup(st->recs[i].name);
            c[i].text = with_text ? strdup(st->recs[i].text) : NULL;
            if (c[i].kind == NULL || c[i].name == NULL || (with_text && c[i].text == NULL))
                rc = -1;
        }
        if (c == NULL)
            rc = -1;
    }
    pthread_mutex_unlock(&st->mu);
    if (rc != 0) {
        free_copies(c, count);
        return -1;
    }
    if (count > 1)
        qsort(c, count, sizeof(*c), compare_copies);
    *out = c;
    *n = count;
    return 0;
}

json_t *store_list(struct store *st)
{
    json_t *arr = json_array();
    struct record_copy *c = NULL;
    size_t n = 0;

    if (arr == NULL || copy_all(st, true, &c, &n) != 0) {
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, record_tree(c[i].text)) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
        /* The text is not needed once parsed: keep the peak low. */
        free(c[i].text);
        c[i].text = NULL;
    }
    free_copies(c, n);
    return arr;
}

int store_foreach(struct store *st, store_want_fn want, store_visit_fn fn, void *arg)
{
    struct record_copy *c = NULL;
    size_t n = 0;
    int rc = 0;

    if (copy_all(st, false, &c, &n) != 0)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *rec;
        if (want != NULL && !want(c[i].kind, c[i].name, arg))
            continue;
        rec = store_get(st, c[i].kind, c[i].name);
        if (rec != NULL) /* else removed meanwhile */
            rc = fn(c[i].kind, c[i].name, rec, arg);
        json_decref(rec);
    }
    free_copies(c, n);
    return rc;
}

size_t store_count(struct store *st)
{
    size_t n;

    pthread_mutex_lock(&st->mu);
    n = st->n;
    pthread_mutex_unlock(&st->mu);
    return n;
}
