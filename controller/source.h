/* What a manifest source (directory or S3 prefix) hands to the daemon: a
 * complete snapshot of the manifest files it currently sees. Sources are
 * level-based: the daemon recomputes the desired objects from the whole
 * snapshot, so a renamed file, or events lost and recovered by a rescan,
 * never look like a delete followed by a create. Loop thread. */
#ifndef AVIARY_CONTROLLER_SOURCE_H
#define AVIARY_CONTROLLER_SOURCE_H

#include <stddef.h>

#define SOURCE_FILE_MAX (1024u * 1024u) /* a manifest file is at most 1 MiB */

struct source_file {
    char *name; /* path relative to the source root ("apps/fraud.yaml") */
    char *path; /* where it was read: absolute file path or s3://bucket/key */
    char *data; /* contents, NUL-terminated; NULL when error is set */
    size_t len;
    char id[96]; /* version: stat identity or ETag; equal id = same contents */
    char *error; /* why it could not be read (too large, unreadable), or NULL */
};

struct source_snapshot {
    struct source_file *files; /* sorted by name */
    size_t n;
};

/* Called on the loop thread with a snapshot that differs from the previous
 * one. The snapshot is borrowed for the duration of the call. */
typedef void (*source_cb)(const struct source_snapshot *snap, void *arg);

/* Frees every file in snap and empties it. */
void source_snapshot_clear(struct source_snapshot *snap);

/* Deep-copies src into *dst (empty on failure). Returns 0 or -1. */
int source_snapshot_copy(struct source_snapshot *dst, const struct source_snapshot *src);

/* True when both snapshots hold the same names with the same ids and errors. */
int source_snapshot_equal(const struct source_snapshot *a, const struct source_snapshot *b);

/* True when name is a manifest: ends in .yaml or .yml, and is not hidden, an
 * editor's swap/backup file or a temp file (".x", "x~", "#x#", "x.swp",
 * "x.tmp", ".x.yaml.12345"). */
int source_is_manifest_name(const char *name);

#endif
