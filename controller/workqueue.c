/* Rate-limited, de-duplicating work queue (see workqueue.h). Any thread:
 * every function takes the queue's mutex. Keys live in one array searched
 * linearly: the queue holds at most a few thousand keys and every operation
 * is O(keys), far below a reconcile's cost. */
#include "controller/workqueue.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WQ_QUEUED      0x1u /* due: waiting for a worker */
#define WQ_IN_PROGRESS 0x2u /* a worker is reconciling it */
#define WQ_DIRTY       0x4u /* added while in progress: queue again when done */

struct wq_entry {
    char key[WORKQUEUE_KEY_MAX];
    unsigned flags;
    uint64_t seq;     /* queue order when WQ_QUEUED */
    int64_t ready_at; /* delayed add due time (ms), 0 = none */
    int failures;
};

struct workqueue {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct workqueue_config cfg;
    struct wq_entry *entries;
    size_t n, cap;
    uint64_t next_seq;
    bool shut_down;
};

static int64_t default_now_ms(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double default_random(void *arg)
{
    (void)arg;
    return (double)random() / ((double)RAND_MAX + 1.0);
}

struct workqueue *workqueue_new(const struct workqueue_config *cfg)
{
    struct workqueue *q = calloc(1, sizeof(*q));
    pthread_condattr_t attr;

    if (q == NULL)
        return NULL;
    if (cfg != NULL)
        q->cfg = *cfg;
    if (q->cfg.max_keys == 0)
        q->cfg.max_keys = 10000;
    if (q->cfg.backoff_base_ms <= 0)
        q->cfg.backoff_base_ms = 1000;
    if (q->cfg.backoff_max_ms <= 0)
        q->cfg.backoff_max_ms = 300000;
    if (q->cfg.now_ms == NULL)
        q->cfg.now_ms = default_now_ms;
    if (q->cfg.random == NULL)
        q->cfg.random = default_random;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &attr);
    pthread_condattr_destroy(&attr);
    return q;
}

void workqueue_free(struct workqueue *q)
{
    if (q == NULL)
        return;
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q->entries);
    free(q);
}

static int64_t now_ms(struct workqueue *q)
{
    return q->cfg.now_ms(q->cfg.arg);
}

static struct wq_entry *find(struct workqueue *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->entries[i].key, key) == 0)
            return &q->entries[i];
    return NULL;
}

/* Finds or creates the entry for key. NULL when the key is too long, the
 * bound is reached or memory runs out. */
static struct wq_entry *find_or_add(struct workqueue *q, const char *key)
{
    struct wq_entry *e = find(q, key);
    size_t len = strlen(key);

    if (e != NULL)
        return e;
    if (len == 0 || len >= WORKQUEUE_KEY_MAX || q->n >= q->cfg.max_keys)
        return NULL;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct wq_entry *grown = realloc(q->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        q->entries = grown;
        q->cap = cap;
    }
    e = &q->entries[q->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, len + 1);
    return e;
}

/* Removes an entry that holds no state any more (keeps the array dense). */
static void drop_if_idle(struct workqueue *q, struct wq_entry *e)
{
    if (e->flags != 0 || e->ready_at != 0 || e->failures != 0)
        return;
    *e = q->entries[--q->n];
    /* After a burst (every object queued at start or by a resync) the array
     * shrinks again instead of staying at its peak. */
    if (q->cap > 64 && q->n < q->cap / 4) {
        struct wq_entry *shrunk = realloc(q->entries, (q->cap / 2) * sizeof(*shrunk));
        if (shrunk != NULL) {
            q->entries = shrunk;
            q->cap /= 2;
        }
    }
}

static void mark_queued(struct workqueue *q, struct wq_entry *e)
{
    e->flags |= WQ_QUEUED;
    e->seq = q->next_seq++;
    e->ready_at = 0;
    pthread_cond_signal(&q->cond);
}

int workqueue_add_after(struct workqueue *q, const char *key, long delay_ms)
{
    struct wq_entry *e;
    int rc = 0;

    pthread_mutex_lock(&q->mu);
    e = find_or_add(q, key);
    if (e == NULL) {
        rc = -1;
        goto out;
    }
    if (e->flags & WQ_QUEUED)
        goto out;
    if (delay_ms <= 0) {
        if (e->flags & WQ_IN_PROGRESS)
            e->flags |= WQ_DIRTY;
        else
            mark_queued(q, e);
        goto out;
    }
    int64_t due = now_ms(q) + delay_ms;
    if (e->ready_at == 0 || due < e->ready_at)
        e->ready_at = due;
    pthread_cond_signal(&q->cond); /* a waiting worker may need a shorter timeout */
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int workqueue_add(struct workqueue *q, const char *key)
{
    return workqueue_add_after(q, key, 0);
}

/* Moves due delayed keys to the queue, in due order. Returns the time until
 * the next delayed key (ms), or -1 when none. */
static long promote_due(struct workqueue *q)
{
    int64_t now = now_ms(q);
    long next = -1;

    for (;;) {
        struct wq_entry *first = NULL;
        for (size_t i = 0; i < q->n; i++) {
            struct wq_entry *e = &q->entries[i];
            if (e->ready_at == 0 || (e->flags & (WQ_QUEUED | WQ_IN_PROGRESS)))
                continue;
            if (first == NULL || e->ready_at < first->ready_at)
                first = e;
        }
        if (first == NULL)
            break;
        if (first->ready_at > now) {
            next = (long)(first->ready_at - now);
            break;
        }
        mark_queued(q, first);
    }
    return next;
}

/* Takes the oldest queued key; caller holds the mutex. 0 or 1 as try_get. */
static int take_locked(struct workqueue *q, char *out, size_t out_len, long *wait_ms)
{
    struct wq_entry *oldest = NULL;
    long next = promote_due(q);

    for (size_t i = 0; i < q->n; i++) {
        struct wq_entry *e = &q->entries[i];
        if ((e->flags & WQ_QUEUED) && (oldest == NULL || e->seq < oldest->seq))
            oldest = e;
    }
    if (wait_ms != NULL)
        *wait_ms = next;
    if (oldest == NULL || strlen(oldest->key) >= out_len)
        return 1;
    oldest->flags = (oldest->flags & ~WQ_QUEUED) | WQ_IN_PROGRESS;
    strcpy(out, oldest->key);
    return 0;
}

int workqueue_try_get(struct workqueue *q, char *out, size_t out_len, long *wait_ms)
{
    int rc;

    if (out_len > 0)
        out[0] = '\0';
    pthread_mutex_lock(&q->mu);
    rc = q->shut_down ? -1 : take_locked(q, out, out_len, wait_ms);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int workqueue_get(struct workqueue *q, char *out, size_t out_len)
{
    int rc = -1;
    long wait_ms;

    if (out_len > 0)
        out[0] = '\0';
    pthread_mutex_lock(&q->mu);
    while (!q->shut_down) {
        rc = take_locked(q, out, out_len, &wait_ms);
        if (rc == 0)
            break;
        if (wait_ms < 0) {
            pthread_cond_wait(&q->cond, &q->mu);
        } else {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += wait_ms / 1000;
            until.tv_nsec += (wait_ms % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q->cond, &q->mu, &until);
        }
        rc = -1;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

static long backoff_ms(struct workqueue *q, int failures)
{
    double delay = (double)q->cfg.backoff_base_ms;

    for (int i = 1; i < failures && delay < (double)q->cfg.backoff_max_ms; i++)
        delay *= 2.0;
    if (delay > (double)q->cfg.backoff_max_ms)
        delay = (double)q->cfg.backoff_max_ms;
    /* Jitter in [0.5, 1): keys failing together spread out, never exceed the cap. */
    delay *= 0.5 + 0.5 * q->cfg.random(q->cfg.arg);
    return delay < 1.0 ? 1 : (long)delay;
}

void workqueue_done(struct workqueue *q, const char *key, enum workqueue_result result,
                    long requeue_after_ms)
{
    struct wq_entry *e;
    long delay = -1;

    pthread_mutex_lock(&q->mu);
    e = find(q, key);
    if (e == NULL || !(e->flags & WQ_IN_PROGRESS))
        goto out;
    e->flags &= ~WQ_IN_PROGRESS;
    switch (result) {
    case WORKQUEUE_DONE:
        e->failures = 0;
        break;
    case WORKQUEUE_REQUEUE_AFTER:
        e->failures = 0;
        delay = requeue_after_ms > 0 ? requeue_after_ms : 1;
        break;
    case WORKQUEUE_ERROR:
        if (e->failures < 1000)
            e->failures++;
        delay = backoff_ms(q, e->failures);
        break;
    }
    if (e->flags & WQ_DIRTY) {
        e->flags &= ~WQ_DIRTY;
        mark_queued(q, e);
    } else if (delay > 0) {
        int64_t due = now_ms(q) + delay;
        if (e->ready_at == 0 || due < e->ready_at)
            e->ready_at = due;
        pthread_cond_signal(&q->cond);
    }
    drop_if_idle(q, e);
out:
    pthread_mutex_unlock(&q->mu);
}

void workqueue_forget(struct workqueue *q, const char *key)
{
    struct wq_entry *e;

    pthread_mutex_lock(&q->mu);
    e = find(q, key);
    if (e != NULL) {
        e->ready_at = 0;
        e->failures = 0;
        drop_if_idle(q, e);
    }
    pthread_mutex_unlock(&q->mu);
}

void workqueue_shutdown(struct workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    q->shut_down = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

void workqueue_get_stats(struct workqueue *q, struct workqueue_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->n; i++) {
        const struct wq_entry *e = &q->entries[i];
        if (e->flags & WQ_QUEUED)
            out->ready++;
        else if (e->ready_at != 0 && !(e->flags & WQ_IN_PROGRESS))
            out->delayed++;
        if (e->flags & WQ_IN_PROGRESS)
            out->in_progress++;
    }
    pthread_mutex_unlock(&q->mu);
}

int workqueue_failures(struct workqueue *q, const char *key)
{
    struct wq_entry *e;
    int n = 0;

    pthread_mutex_lock(&q->mu);
    e = find(q, key);
    if (e != NULL)
        n = e->failures;
    pthread_mutex_unlock(&q->mu);
    return n;
}
