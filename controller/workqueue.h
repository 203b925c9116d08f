/* The rate-limited work queue between the loop thread (which adds keys) and
 * the worker threads (which reconcile them): keys are de-duplicated, one
 * reconcile per key runs at a time, failures back off per key
 * (exponential with jitter, capped), reconcilers may ask to be re-queued
 * after a delay, and the number of keys is bounded. Thread-safe. */
#ifndef AVIARY_CONTROLLER_WORKQUEUE_H
#define AVIARY_CONTROLLER_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

#define WORKQUEUE_KEY_MAX 160 /* "Kind/name" */

struct workqueue_config {
    size_t max_keys;      /* keys tracked at once; 0: 10000 */
    long backoff_base_ms; /* first retry delay after an error; 0: 1000 */
    long backoff_max_ms;  /* cap; 0: 300000 (5 min) */
    /* Monotonic milliseconds; NULL: CLOCK_MONOTONIC. Tests inject their own
     * and use workqueue_try_get (workqueue_get waits on the real clock). */
    int64_t (*now_ms)(void *arg);
    /* Uniform [0,1) for jitter; NULL: random(). */
    double (*random)(void *arg);
    void *arg;
};

enum workqueue_result {
    WORKQUEUE_DONE,          /* converged: forget any backoff */
    WORKQUEUE_REQUEUE_AFTER, /* come back after the given delay (a wait, not an error) */
    WORKQUEUE_ERROR,         /* failed: retry with this key's backoff */
};

struct workqueue;

/* Returns a new queue (cfg may be NULL for defaults), or NULL when out of
 * memory. Free with workqueue_free after every worker has returned. */
struct workqueue *workqueue_new(const struct workqueue_config *cfg);
void workqueue_free(struct workqueue *q);

/* Queues key now. A key already queued is not queued twice; a key being
 * reconciled is queued again once its reconcile is done. Returns 0, or -1
 * when the key is too long or the queue already tracks max_keys keys. */
int workqueue_add(struct workqueue *q, const char *key);

/* Queues key after delay_ms (<= 0: now). If the key is already due sooner,
 * the earlier time wins. Returns as workqueue_add. */
int workqueue_add_after(struct workqueue *q, const char *key, long delay_ms);

/* Worker side: waits until a key is due, marks it in progress and copies it
 * to out. Returns 0, or -1 once the queue is shut down (then out is empty). */
int workqueue_get(struct workqueue *q, char *out, size_t out_len);

/* Non-blocking get: returns 0 with a key, 1 when none is due (*wait_ms is the
 * time until the next delayed key, or -1 when there is none), -1 when shut
 * down. wait_ms may be NULL. */
int workqueue_try_get(struct workqueue *q, char *out, size_t out_len, long *wait_ms);

/* Ends the reconcile of key (obtained from a get). DONE forgets its failures;
 * REQUEUE_AFTER forgets them and queues the key after requeue_after_ms;
 * ERROR counts a failure and queues it after the backoff
 * min(max, base * 2^(failures-1)) scaled by a jitter in [0.5, 1). A key added
 * while it was in progress is queued at once in every case. */
void workqueue_done(struct workqueue *q, const char *key, enum workqueue_result result,
                    long requeue_after_ms);

/* Drops a key's pending delayed add and failure count (object deleted). A key
 * in progress is not affected until it is done. */
void workqueue_forget(struct workqueue *q, const char *key);

/* Wakes every waiting worker; gets return -1 from now on. */
void workqueue_shutdown(struct workqueue *q);

/* Keys due now, keys waiting for a delay, keys in progress. */
struct workqueue_stats {
    size_t ready;
    size_t delayed;
    size_t in_progress;
};
void workqueue_get_stats(struct workqueue *q, struct workqueue_stats *out);

/* Consecutive failures of key (0 when unknown). */
int workqueue_failures(struct workqueue *q, const char *key);

#endif
