/* Directory manifest source (see source_dir.h). Loop thread. Reading a few
 * small files synchronously on the loop is cheaper than a thread hop, and
 * unchanged files (same dev, inode, size, mtime, ctime) are never re-read. */
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
    FILE *fp = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0;
    char msg[160];

    if (fp == NULL) {
        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
        goto error;
    }
    data = malloc(SOURCE_FILE_MAX + 2);
    if (data == NULL) {
        fclose(fp);
        return -1;
    }
    len = fread(data, 1, SOURCE_FILE_MAX + 1, fp);
    if (ferror(fp)) {
        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
        fclose(fp);
        goto error;
    }
    fclose(fp);
    if (len > SOURCE_FILE_MAX) {
        snprintf(msg, sizeof(msg), "file is larger than the 1 MiB limit for a manifest");
        goto error;
    }
    /* Read with room for the limit, kept at its size: a snapshot of many
     * small files must pin neither 1 MiB nor a page-sized mapping each. */
    f->data = malloc(len + 1);
    if (f->data == NULL) {
        free(data);
        return -1;
    }
    memcpy(f->data, data, len);
    f->data[len] = '\0';
    free(data);
    f->len = len;
    return 0;
error:
    free(data);
    f->error = strdup(msg);
    return f->error ? 0 : -1;
}

/* Fills f from the file `name` in dir if it is a manifest we should read:
 * returns 1 when filled, 0 when skipped, 2 when it is still being written
 * (*settle_left_ms: how long until it counts as settled), -1 when out of
 * memory. `previous` supplies cached contents by id. */
static int scan_entry(const char *dir, const char *real_dir, const char *name, long settle_ms,
                      const struct source_snapshot *previous, struct source_file *f,
                      long *settle_left_ms)
{
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
    f->name = strdup(name);
    f->path = strdup(path);
    if (f->name == NULL || f->path == NULL)
        return -1;
    for (size_t i = 0; previous != NULL && i < previous->n; i++) {
        const struct source_file *p = &previous->files[i];
        if (strcmp(p->name, name) == 0 && strcmp(p->id, f->id) == 0 && p->data != NULL) {
            f->data = malloc(p->len + 1);
            if (f->data == NULL)
                return -1;
            memcpy(f->data, p->data, p->len + 1);
            f->len = p->len;
            return 1;
        }
    }
    return read_file(f, path) == 0 ? 1 : -1;
}

/* Scans the directory into *out. *unsettled is set to how long until the
 * youngest file skipped because it is still being written counts as settled
 * (0: none skipped); for such a file the previous version, if any, is kept.
 * Returns 0, or -1 with errbuf. */
static int scan(const char *dir, const char *real_dir, long settle_ms, size_t max_files,
                const struct source_snapshot *previous, struct source_snapshot *out,
                long *unsettled, char *errbuf, size_t errlen)
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
        r = scan_entry(dir, real_dir, de->d_name, settle_ms, previous, &f, &left);
        if (r == 1) {
            out->files[out->n++] = f;
        } else if (r == 2) {
            if (left < 1)
                left = 1;
            if (left > *unsettled)
                *unsettled = left;
            for (size_t i = 0; previous != NULL && i < previous->n; i++) {
                if (strcmp(previous->files[i].name, de->d_name) != 0)
                    continue;
                struct source_snapshot one = {&previous->files[i], 1}, copy;
                if (source_snapshot_copy(&copy, &one) == 0) {
                    out->files[out->n++] = copy.files[0];
                    free(copy.files);
                }
                break;
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

    if (realpath(dir, real_dir) == NULL) {
        snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    return scan(dir, real_dir, 0, SIZE_MAX, NULL, out, &unsettled, errbuf, errlen);
}

static void on_timer(uv_timer_t *t);

static void do_scan(struct source_dir *src)
{
    struct source_snapshot snap;
    long unsettled;
    char err[512];

    if (scan(src->dir, src->real_dir, src->cfg.settle_ms, src->cfg.max_files, &src->last, &snap,
             &unsettled, err, sizeof(err)) != 0)
        return; /* directory gone for a moment: keep the last desired state */
    /* Rescan as soon as the youngest file being written has settled. */
    if (unsettled > 0)
        uv_timer_start(&src->settle, on_timer, (uint64_t)unsettled, 0);
    if (src->delivered_once && source_snapshot_equal(&snap, &src->last)) {
        source_snapshot_clear(&snap);
        return;
    }
    source_snapshot_clear(&src->last);
    src->last = snap;
    src->delivered_once = true;
    src->cb(&src->last, src->arg);
}

void source_dir_rescan(struct source_dir *src)
{
    do_scan(src);
}

static void on_timer(uv_timer_t *t)
{
    do_scan(t->data);
}

static void on_fs_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    struct source_dir *src = handle->data;
    (void)filename;
    (void)events;
    (void)status;

    uv_timer_start(&src->debounce, on_timer, (uint64_t)src->cfg.debounce_ms, 0);
}

static void on_closed(uv_handle_t *h)
{
    struct source_dir *src = h->data;

    if (--src->open_handles > 0)
        return;
    source_snapshot_clear(&src->last);
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
    uv_timer_start(&src->rescan, on_timer, 0, (uint64_t)src->cfg.rescan_ms);
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
