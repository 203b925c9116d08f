/* Directory manifest source (see source_dir.h). Loop thread. Reading a few
 * small files synchronously on the loop is cheaper than a thread hop, and
 * unchanged files (same dev, inode, size, mtime, ctime) are never re-read.
 * An fs event names the entry it is about: a debounced burst of events
 * looks at those names only (plus the symlinks, whose targets change
 * without an event of their own) and updates the last snapshot in place;
 * the periodic rescan, SIGHUP and an event without a usable name (queue
 * overflow, error) scan the whole directory. */
#include "controller/source_dir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PENDING_MAX 512 /* more names in one burst: scan the whole directory */

/* A list of entry names (owned strings). */
struct name_list {
    char **v;
    size_t n, cap;
};

static void names_clear(struct name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends a copy of name. Returns 0 or -1 (out of memory). */
static int names_add(struct name_list *l, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **grown = realloc(l->v, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n] = strdup(name);
    if (l->v[l->n] == NULL)
        return -1;
    l->n++;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts l and drops repeated names. */
static void names_sort_unique(struct name_list *l)
{
    size_t out = 0;

    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), compare_names);
    for (size_t i = 0; i < l->n; i++) {
        if (out > 0 && strcmp(l->v[out - 1], l->v[i]) == 0) {
            free(l->v[i]);
            continue;
        }
        l->v[out++] = l->v[i];
    }
    l->n = out;
}

struct source_dir {
    uv_loop_t *loop;
    uv_fs_event_t watcher;
    uv_timer_t debounce;
    uv_timer_t rescan;
    uv_timer_t settle;
    struct source_dir_config cfg;
    char *dir;
    char *real_dir;
    source_cb cb;
    void *arg;
    struct source_snapshot last; /* last snapshot delivered */
    bool delivered_once;
    int open_handles;
    struct name_list pending; /* names seen in events (or still settling) */
    bool pending_full;        /* the next pass scans the whole directory */
    bool stale;               /* last was changed but not delivered (out of memory) */
    struct source_dir_stats stats;
};

static int64_t realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const struct source_file *)a)->name, ((const struct source_file *)b)->name);
}

/* Reads a regular file of at most SOURCE_FILE_MAX bytes into f->data, or
 * sets f->error. Returns 0, or -1 when out of memory. */
static int read_file(struct source_file *f, const char *path)
{
    char msg[160];
    int rc = source_read_path(path, &f->data, &f->len, msg, sizeof(msg));

    if (rc <= 0)
        return rc;
    f->error = strdup(msg);
    return f->error ? 0 : -1;
}

/* Fills f from the file `name` in dir if it is a manifest we should read:
 * returns 1 when filled, 0 when skipped, 2 when it is still being written
 * (*settle_left_ms: how long until it counts as settled), -1 when out of
 * memory. `previous` (sorted) supplies cached contents by id; *reads counts
 * the files actually read. */
static int scan_entry(const char *dir, const char *real_dir, const char *name, long settle_ms,
                      const struct source_snapshot *previous, struct source_file *f,
                      long *settle_left_ms, unsigned long *reads)
{
    long at;

    char path[PATH_MAX], resolved[PATH_MAX];
    struct stat lst, st;
    size_t rlen = strlen(real_dir);

    if (!source_is_manifest_name(name))
        return 0;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return 0;
    if (lstat(path, &lst) != 0)
        return 0;
    if (S_ISLNK(lst.st_mode)) {
        /* A symlink may point within the directory, never outside it. */
        if (realpath(path, resolved) == NULL || strncmp(resolved, real_dir, rlen) != 0 ||
            resolved[rlen] != '/')
            return 0;
    }
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    /* A file renamed into place after its last write (what editors and
     * kubectl-style tools do) has a ctime later than its mtime: it is
     * complete, read it at once. A file written in place has ctime == mtime
     * and must stay quiet for settle_ms first. */
    bool renamed_after_write =
        st.st_ctim.tv_sec > st.st_mtim.tv_sec ||
        (st.st_ctim.tv_sec == st.st_mtim.tv_sec && st.st_ctim.tv_nsec > st.st_mtim.tv_nsec);
    if (settle_ms > 0 && !renamed_after_write) {
        int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        int64_t age_ms = realtime_ms() - mtime_ms;
        if (age_ms < settle_ms) {
            /* A clock step backwards makes the age negative: wait a full period. */
            *settle_left_ms = age_ms < 0 ? settle_ms : (long)(settle_ms - age_ms);
            return 2;
        }
    }
    memset(f, 0, sizeof(*f));
    snprintf(f->id, sizeof(f->id), "%lx:%lx:%lld:%lld.%09ld:%lld.%09ld", (unsigned long)st.st_dev,
             (unsigned long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
    f->is_link = S_ISLNK(lst.st_mode);
    f->name = strdup(name);
    f->path = strdup(path);
    if (f->name == NULL || f->path == NULL)
        return -1;
    at = previous != NULL ? source_snapshot_find(previous, name) : -1;
    if (at >= 0 && strcmp(previous->files[at].id, f->id) == 0) {
        const struct source_file *p = &previous->files[at];
        f->len = p->len;
        if (p->data == NULL && p->error == NULL)
            return 1; /* unchanged, contents not kept: nothing to read */
        if (p->data != NULL) {
            f->data = malloc(p->len + 1);
            if (f->data == NULL)
                return -1;
            memcpy(f->data, p->data, p->len + 1);
            return 1;
        }
    }
    (*reads)++;
    return read_file(f, path) == 0 ? 1 : -1;
}

/* Scans the directory into *out. *unsettled is set to how long until the
 * youngest file skipped because it is still being written counts as settled
 * (0: none skipped); for such a file the previous version, if any, is kept,
 * and its name is added to settling (when not NULL). *reads counts the files
 * read. Returns 0, or -1 with errbuf. */
static int scan(const char *dir, const char *real_dir, long settle_ms, size_t max_files,
                const struct source_snapshot *previous, struct source_snapshot *out,
                long *unsettled, struct name_list *settling, unsigned long *reads, char *errbuf,
                size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    *unsettled = 0;
    if (d == NULL) {
        snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        struct source_file f;
        long left = 0;
        int r;

        if (out->n >= max_files)
            break;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct source_file *grown = realloc(out->files, ncap * sizeof(*grown));
            if (grown == NULL) {
                rc = -1;
                break;
            }
            out->files = grown;
            cap = ncap;
        }
        r = scan_entry(dir, real_dir, de->d_name, settle_ms, previous, &f, &left, reads);
        if (r == 1) {
            out->files[out->n++] = f;
        } else if (r == 2) {
            long at = previous != NULL ? source_snapshot_find(previous, de->d_name) : -1;
            if (left < 1)
                left = 1;
            if (left > *unsettled)
                *unsettled = left;
            if (settling != NULL && names_add(settling, de->d_name) != 0) {
                rc = -1;
                break;
            }
            if (at >= 0) {
                struct source_snapshot one = {.files = &previous->files[at], .n = 1}, copy;
                if (source_snapshot_copy(&copy, &one) == 0) {
                    out->files[out->n++] = copy.files[0];
                    free(copy.files);
                }
            }
        } else if (r < 0) {
            free(f.name);
            free(f.path);
            free(f.data);
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (rc != 0) {
        snprintf(errbuf, errlen, "%s: out of memory while scanning", dir);
        source_snapshot_clear(out);
        return -1;
    }
    if (out->n > 1)
        qsort(out->files, out->n, sizeof(*out->files), compare_files);
    return 0;
}

int source_dir_read_once(const char *dir, struct source_snapshot *out, char *errbuf, size_t errlen)
{
    char real_dir[PATH_MAX];
    long unsettled;
    unsigned long reads = 0;

    if (realpath(dir, real_dir) == NULL) {
        snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    return scan(dir, real_dir, 0, SIZE_MAX, NULL, out, &unsettled, NULL, &reads, errbuf, errlen);
}

static void on_settled(uv_timer_t *t);

/* Hands the (updated) last snapshot to the daemon. */
static void deliver(struct source_dir *src)
{
    src->delivered_once = true;
    src->stale = false;
    src->cb(&src->last, src->arg);
    /* The daemon has loaded what it needed: the contents are not kept (the
     * files are on disk; source_read_path reads one again if needed). */
    for (size_t i = 0; i < src->last.n; i++) {
        free(src->last.files[i].data);
        src->last.files[i].data = NULL;
    }
    for (size_t i = 0; i < src->last.n_changed; i++)
        free(src->last.changed[i]);
    free(src->last.changed);
    src->last.changed = NULL;
    src->last.n_changed = 0;
    src->last.partial = 0;
}

static void full_scan(struct source_dir *src)
{
    struct source_snapshot snap;
    long unsettled;
    char err[512];

    /* The scan looks at every name: what events named is covered. */
    names_clear(&src->pending);
    src->pending_full = false;
    src->stats.full_scans++;
    if (scan(src->dir, src->real_dir, src->cfg.settle_ms, src->cfg.max_files, &src->last, &snap,
             &unsettled, &src->pending, &src->stats.files_read, err, sizeof(err)) != 0)
        return; /* directory gone for a moment: keep the last desired state */
    /* Look again as soon as the youngest file being written has settled. */
    if (unsettled > 0)
        uv_timer_start(&src->settle, on_settled, (uint64_t)unsettled, 0);
    if (src->delivered_once && !src->stale && source_snapshot_equal(&snap, &src->last)) {
        source_snapshot_clear(&snap);
        return;
    }
    source_snapshot_clear(&src->last);
    src->last = snap;
    deliver(src);
}

/* Puts f (taken) in the last snapshot in place of the file of its name, or
 * removes that file when f is NULL. Returns 1 when the snapshot changed, 0
 * when not (f freed), -1 when out of memory (f freed). */
static int update_last(struct source_dir *src, const char *name, struct source_file *f)
{
    struct source_snapshot *last = &src->last;
    long at = source_snapshot_find(last, name);

    if (f == NULL) {
        if (at < 0)
            return 0;
        source_file_clear(&last->files[at]);
        memmove(&last->files[at], &last->files[at + 1],
                (last->n - (size_t)at - 1) * sizeof(*last->files));
        last->n--;
        return 1;
    }
    if (at >= 0) {
        struct source_file *p = &last->files[at];
        bool same_error = p->error == NULL || f->error == NULL ? p->error == f->error
                                                               : strcmp(p->error, f->error) == 0;
        if (strcmp(p->id, f->id) == 0 && same_error) {
            source_file_clear(f);
            return 0;
        }
        source_file_clear(p);
        *p = *f;
        return 1;
    }
    if (last->n >= src->cfg.max_files) {
        source_file_clear(f);
        return 0;
    }
    struct source_file *grown = realloc(last->files, (last->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        source_file_clear(f);
        return -1;
    }
    last->files = grown;
    size_t pos = source_snapshot_lower_bound(last, name);
    memmove(&last->files[pos + 1], &last->files[pos], (last->n - pos) * sizeof(*last->files));
    last->files[pos] = *f;
    last->n++;
    return 1;
}

/* Looks at the names events reported (and at every symlink) and nothing
 * else; delivers the snapshot when one of them changed. */
static void incremental_scan(struct source_dir *src)
{
    struct name_list names = src->pending, changed = {0};
    long unsettled = 0;
    bool failed = false;

    memset(&src->pending, 0, sizeof(src->pending));
    src->stats.event_passes++;
    /* A symlink's target can be written without an event for the link. */
    for (size_t i = 0; i < src->last.n && !failed; i++)
        if (src->last.files[i].is_link && names_add(&names, src->last.files[i].name) != 0)
            failed = true;
    names_sort_unique(&names);
    for (size_t i = 0; i < names.n && !failed; i++) {
        struct source_file f;
        long left = 0;
        int r = scan_entry(src->dir, src->real_dir, names.v[i], src->cfg.settle_ms, &src->last, &f,
                           &left, &src->stats.files_read);
        if (r == 2) {
            /* Still being written: keep the previous version, look again. */
            if (left < 1)
                left = 1;
            if (left > unsettled)
                unsettled = left;
            failed = names_add(&src->pending, names.v[i]) != 0;
            continue;
        }
        if (r < 0) {
            source_file_clear(&f);
            failed = true;
            break;
        }
        r = update_last(src, names.v[i], r == 1 ? &f : NULL);
        if (r < 0 || (r == 1 && names_add(&changed, names.v[i]) != 0))
            failed = true;
    }
    names_clear(&names);
    if (failed) {
        /* Out of memory half-way: the whole directory decides next time,
         * and what was updated in place is delivered then. */
        names_clear(&changed);
        src->pending_full = true;
        src->stale = true;
        uv_timer_start(&src->debounce, on_settled, (uint64_t)src->cfg.debounce_ms, 0);
        return;
    }
    if (unsettled > 0)
        uv_timer_start(&src->settle, on_settled, (uint64_t)unsettled, 0);
    if (changed.n == 0)
        return;
    src->last.partial = 1;
    src->last.changed = changed.v;
    src->last.n_changed = changed.n;
    deliver(src);
}

/* What events (or files still settling) asked for: the names they reported,
 * or the whole directory. */
static void process_pending(struct source_dir *src)
{
    if (src->pending_full || !src->delivered_once)
        full_scan(src);
    else
        incremental_scan(src);
}

void source_dir_rescan(struct source_dir *src)
{
    full_scan(src);
}

void source_dir_get_stats(const struct source_dir *src, struct source_dir_stats *out)
{
    *out = src->stats;
}

static void on_rescan(uv_timer_t *t)
{
    full_scan(t->data);
}

static void on_settled(uv_timer_t *t)
{
    struct source_dir *src = t->data;

    /* A burst of events still being debounced is handled when it ends. */
    if (t != &src->debounce && uv_is_active((uv_handle_t *)&src->debounce))
        return;
    process_pending(src);
}

static void on_fs_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    struct source_dir *src = handle->data;
    (void)events;

    /* No name (or an error such as a queue overflow): events may have been
     * lost, so the whole directory is looked at. */
    if (status < 0 || filename == NULL || filename[0] == '\0' || strchr(filename, '/') != NULL ||
        src->pending.n >= PENDING_MAX || names_add(&src->pending, filename) != 0)
        src->pending_full = true;
    uv_timer_start(&src->debounce, on_settled, (uint64_t)src->cfg.debounce_ms, 0);
}

static void on_closed(uv_handle_t *h)
{
    struct source_dir *src = h->data;

    if (--src->open_handles > 0)
        return;
    source_snapshot_clear(&src->last);
    names_clear(&src->pending);
    free(src->dir);
    free(src->real_dir);
    free(src);
}

int source_dir_start(uv_loop_t *loop, const struct source_dir_config *cfg, source_cb cb, void *arg,
                     struct source_dir **out, char *errbuf, size_t errlen)
{
    struct source_dir *src;
    char real_dir[PATH_MAX];
    int rc;

    *out = NULL;
    if (realpath(cfg->dir, real_dir) == NULL) {
        snprintf(errbuf, errlen, "--source %s: %s", cfg->dir, strerror(errno));
        return uv_translate_sys_error(errno);
    }
    src = calloc(1, sizeof(*src));
    if (src == NULL)
        return UV_ENOMEM;
    src->cfg = *cfg;
    if (src->cfg.debounce_ms <= 0)
        src->cfg.debounce_ms = 10;
    if (src->cfg.settle_ms <= 0)
        src->cfg.settle_ms = 20;
    if (src->cfg.rescan_ms <= 0)
        src->cfg.rescan_ms = 30000;
    if (src->cfg.max_files == 0)
        src->cfg.max_files = 10000;
    src->dir = strdup(cfg->dir);
    src->real_dir = strdup(real_dir);
    if (src->dir == NULL || src->real_dir == NULL) {
        free(src->dir);
        free(src->real_dir);
        free(src);
        return UV_ENOMEM;
    }
    src->loop = loop;
    src->cb = cb;
    src->arg = arg;
    uv_fs_event_init(loop, &src->watcher);
    uv_timer_init(loop, &src->debounce);
    uv_timer_init(loop, &src->rescan);
    uv_timer_init(loop, &src->settle);
    src->watcher.data = src->debounce.data = src->rescan.data = src->settle.data = src;
    src->open_handles = 4;
    rc = uv_fs_event_start(&src->watcher, on_fs_event, src->real_dir, 0);
    if (rc != 0) {
        snprintf(errbuf, errlen, "watch %s: %s", cfg->dir, uv_strerror(rc));
        source_dir_stop(src);
        return rc;
    }
    uv_timer_start(&src->rescan, on_rescan, 0, (uint64_t)src->cfg.rescan_ms);
    *out = src;
    return 0;
}

void source_dir_stop(struct source_dir *src)
{
    if (src == NULL)
        return;
    uv_fs_event_stop(&src->watcher);
    uv_close((uv_handle_t *)&src->watcher, on_closed);
    uv_close((uv_handle_t *)&src->debounce, on_closed);
    uv_close((uv_handle_t *)&src->rescan, on_closed);
    uv_close((uv_handle_t *)&src->settle, on_closed);
}
