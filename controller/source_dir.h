/* The directory manifest source: libuv fs events on the directory, debounced,
 * plus a periodic full rescan (events can be lost) and rescans on demand
 * (SIGHUP). Only .yaml and .yml files directly in the directory are read;
 * hidden, editor and temp files are ignored, as are symlinks that leave the
 * directory. A file is read only once its modification time has been quiet
 * for settle_ms, so a partial write is not acted on; atomic renames (how
 * editors and kubectl-style tools save) are seen at once. Events are
 * handled incrementally: only the files they name are looked at again and
 * the snapshot says which changed; the rescans look at everything. Loop
 * thread. */
#ifndef AVIARY_CONTROLLER_SOURCE_DIR_H
#define AVIARY_CONTROLLER_SOURCE_DIR_H

#include <uv.h>

#include "controller/source.h"

struct source_dir_config {
    const char *dir;
    long debounce_ms; /* after an event, wait this long for more; 0: 10 */
    long settle_ms;   /* a file modified more recently is not read yet; 0: 20 */
    long rescan_ms;   /* periodic full rescan; 0: 30000 */
    size_t max_files; /* 0: 10000 */
};

struct source_dir;

/* What the source did so far (for tests and metrics). */
struct source_dir_stats {
    unsigned long files_read;   /* manifest files opened and read */
    unsigned long full_scans;   /* scans of the whole directory */
    unsigned long event_passes; /* passes over the names events reported */
};

/* Starts watching and schedules the first scan at once. cb receives a
 * snapshot whenever the set of manifest files or their contents change.
 * Returns 0 and *out, or a negative libuv error with a message in errbuf. */
int source_dir_start(uv_loop_t *loop, const struct source_dir_config *cfg, source_cb cb, void *arg,
                     struct source_dir **out, char *errbuf, size_t errlen);

/* Scans now (SIGHUP). */
void source_dir_rescan(struct source_dir *src);

/* Copies the counters into *out. */
void source_dir_get_stats(const struct source_dir *src, struct source_dir_stats *out);

/* Stops watching; memory is freed when libuv has closed the handles. */
void source_dir_stop(struct source_dir *src);

/* Scans dir once without a loop (for `aviary validate DIR` and tests): fills
 * *out with every manifest file. Returns 0, or -1 with errbuf when the
 * directory cannot be read. */
int source_dir_read_once(const char *dir, struct source_snapshot *out, char *errbuf, size_t errlen);

#endif
