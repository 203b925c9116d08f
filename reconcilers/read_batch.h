/* Cross-application read batching for the Application reconciler: the same
 * describe call of several applications merged into one AWS call, each
 * application's share of the answer kept for a few seconds and served to it
 * once. Worker threads; process-wide state behind one mutex. */
#ifndef AVIARY_RECONCILERS_READ_BATCH_H
#define AVIARY_RECONCILERS_READ_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/client.h"
#include "aws/error.h"

/* The freshness bound: no share is served later than this after its merged
 * call was sent (milliseconds). */
#define READ_BATCH_MAX_AGE_MS 5000

/* Counters since start (or the last read_batch_reset). */
struct read_batch_stats {
    long merged;     /* merged calls sent (more than one request in them) */
    long direct;     /* batchable reads sent alone (nothing to merge with) */
    long served;     /* reads answered from a share fetched by a merged call */
    long prefetched; /* shares stored for other requests */
    long expired;    /* shares dropped unserved (too old, or a write came after) */
    long fallbacks;  /* merged calls that failed (the requester then called directly) */
};

/* Answers one read of application `app` (service.operation with input `in`,
 * borrowed) through the batcher. Returns 1 when the operation is not
 * batchable (or batching is off): nothing was sent, the caller makes the
 * call itself. Otherwise the result of the read as aws_call's: 0 with *out
 * (caller decrefs) or -1 with *err filled. A share of a merged call is
 * served only to the request it was fetched for, once, within
 * READ_BATCH_MAX_AGE_MS of the merged call and only when no write by that
 * application (or, for answers shared by every application, no write to
 * that service) completed after it was sent; a failed or paginated merged
 * call is never served: the requester repeats its own request alone. */
int read_batch_call(struct aws_client *aws, const char *app, const char *service,
                    const char *operation, const json_t *in, json_t **out, struct aws_error *err);

/* Records that `app` completed (or attempted) a mutating call to `service`:
 * its stored shares are dropped, and merged calls sent before now will not
 * store any for it. */
void read_batch_note_write(struct aws_client *aws, const char *app, const char *service);

/* Turns batching on or off, sets the freshness bound (ms, <= 0: the default)
 * and the clock (monotonic ms; NULL: CLOCK_MONOTONIC). For tests and for
 * AVIARY_READ_BATCH=off (read at first use). */
void read_batch_configure(bool enabled, long max_age_ms, int64_t (*now_ms)(void));

/* Copies the counters. */
void read_batch_get_stats(struct read_batch_stats *stats);

/* Frees every stored request and share and zeroes the counters (also run at
 * exit); requests in flight in a worker's merged call are left to it. */
void read_batch_reset(void);

#endif
