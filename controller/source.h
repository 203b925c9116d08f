/* What a manifest source (directory or S3 prefix) hands to the daemon: a
 * complete snapshot of the manifest files it currently sees. Sources are
 * level-based: the daemon recomputes the desired objects from the whole
 * snapshot, so a renamed file, or events lost and recovered by a rescan,
 * never look like a delete followed by a create. A snapshot built from a
 * few file-system events says which names changed (the others were not
 * read again), so the daemon can load only those. Loop thread. */
#ifndef AVIARY_CONTROLLER_SOURCE_H
#define AVIARY_CONTROLLER_SOURCE_H

#include <stddef.h>

#define SOURCE_FILE_MAX (1024u * 1024u) /* a manifest file is at most 1 MiB */

struct source_file {
    char *name; /* path relative to the source root ("apps/fraud.yaml") */
    char *path; /* where it was read: absolute file path or s3://bucket/key */
    /* Contents, NUL-terminated; NULL when error is set, or (both NULL) when
     * the source did not keep them: the directory source drops them once a
     * snapshot has been delivered, and source_read_path reads path again. */
    char *data;
    size_t len;
    char id[96]; /* version: stat identity or ETag; equal id = same contents */
    char *error; /* why it could not be read (too large, unreadable), or NULL */
    int is_link; /* a symlink (within the directory): its target may change unseen */
};

struct source_snapshot {
    struct source_file *files; /* sorted by name */
    size_t n;
    /* When partial is non-zero, the snapshot differs from the previous one
     * delivered only in the files named in changed[] (added, modified or
     * removed; sorted); every other file is the previous version, not read
     * again. When zero (first snapshot, rescan), anything may differ.
     * changed is owned by the source; copies never carry it. */
    int partial;
    char **changed;
    size_t n_changed;
};

/* Called on the loop thread with a snapshot that differs from the previous
 * one. The snapshot is borrowed for the duration of the call. */
typedef void (*source_cb)(const struct source_snapshot *snap, void *arg);

/* Reads the local file path (at most SOURCE_FILE_MAX bytes) into a new
 * NUL-terminated *data of *len bytes. Returns 0; 1 when it cannot be read
 * or is too large, with the reason in msg; -1 when out of memory. */
int source_read_path(const char *path, char **data, size_t *len, char *msg, size_t msglen);

/* Frees what f holds and zeroes it. */
void source_file_clear(struct source_file *f);

/* Frees every file in snap and empties it. */
void source_snapshot_clear(struct source_snapshot *snap);

/* Deep-copies src into *dst (empty on failure). Returns 0 or -1. */
int source_snapshot_copy(struct source_snapshot *dst, const struct source_snapshot *src);

/* Index of the file called name in snap (sorted by name), or -1. */
long source_snapshot_find(const struct source_snapshot *snap, const char *name);

/* Where a file called name belongs in snap (sorted by name): the index of
 * the first file whose name is not less than name (snap->n when none). */
size_t source_snapshot_lower_bound(const struct source_snapshot *snap, const char *name);

/* True when both snapshots hold the same names with the same ids and errors. */
int source_snapshot_equal(const struct source_snapshot *a, const struct source_snapshot *b);

/* True when name is a manifest: ends in .yaml or .yml, and is not hidden, an
 * editor's swap/backup file or a temp file (".x", "x~", "#x#", "x.swp",
 * "x.tmp", ".x.yaml.12345"). */
int source_is_manifest_name(const char *name);

#endif
