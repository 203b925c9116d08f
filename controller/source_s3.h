/* The S3 manifest source (`--source s3://bucket/prefix/`): polls
 * ListObjectsV2 (all pages) every interval, compares ETags, and fetches
 * only new or changed manifests with GetObject. The AWS calls run on
 * libuv's thread pool; snapshots are delivered on the loop thread. An S3
 * outage (any failed call) delivers nothing: the last known desired state
 * stays in force and nothing is deleted. Loop thread. */
#ifndef AVIARY_CONTROLLER_SOURCE_S3_H
#define AVIARY_CONTROLLER_SOURCE_S3_H

#include <uv.h>

#include "aws/client.h"
#include "controller/source.h"

struct source_s3_config {
    const char *url;           /* "s3://bucket/prefix/" (prefix may be empty) */
    long interval_ms;          /* between polls; 0: 30000 */
    struct aws_client *client; /* borrowed; shared with the reconcilers */
    size_t max_files;          /* 0: 10000 */
};

struct source_s3;

/* Parses "s3://bucket/prefix". Writes the bucket and the prefix (with a
 * trailing '/' added when non-empty). Returns 0, or -1 when malformed (no
 * bucket, bad bucket name, too long). */
int source_s3_parse_url(const char *url, char *bucket, size_t bucket_len, char *prefix,
                        size_t prefix_len);

/* Starts polling (the first poll at once). Returns 0 and *out, or -1 with
 * errbuf (bad URL, out of memory). */
int source_s3_start(uv_loop_t *loop, const struct source_s3_config *cfg, source_cb cb, void *arg,
                    struct source_s3 **out, char *errbuf, size_t errlen);

/* Polls now unless a poll is running (SIGHUP). */
void source_s3_rescan(struct source_s3 *src);

/* Stops polling; a poll in flight finishes on its thread and is discarded.
 * Memory is freed once libuv has closed the timer and the work is done. */
void source_s3_stop(struct source_s3 *src);

/* The last poll's error ("" when it succeeded): for /readyz and logs. */
const char *source_s3_last_error(const struct source_s3 *src);

/* One synchronous poll (used by the loop's worker and by tests): lists the
 * prefix and fills *out, reusing contents from `previous` when the ETag is
 * unchanged. Returns 0, or -1 with *err (and *out empty). */
int source_s3_poll_once(struct aws_client *client, const char *bucket, const char *prefix,
                        size_t max_files, const struct source_snapshot *previous,
                        struct source_snapshot *out, struct aws_error *err);

#endif
