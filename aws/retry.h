/* Retry rules of the AWS SDKs' "standard" mode (max attempts, exponential
 * backoff with full jitter, retry quota) and a client-side token bucket per
 * service. Pure logic: time, randomness and sleeping are the caller's, so
 * everything here is unit-testable. Quota and bucket are thread-safe.
 *
 * Standard mode, as implemented:
 *  - at most max_attempts attempts (default 3; AWS_MAX_ATTEMPTS; config);
 *  - only errors with err->retryable are retried (throttling codes,
 *    500/502/503/504, transient codes, timeouts, connection errors), never
 *    other 4xx;
 *  - a retry first takes from the retry quota (capacity 500): 10 for a
 *    timeout, 5 for anything else; an empty quota means no retry. A
 *    success gives back what its call's last retry took, or 1 when the call
 *    succeeded without retrying (never above the capacity);
 *  - delay before retry n (n = attempts made so far, from 1):
 *    random[0,1) * min(20 s, 100 ms * 2^(n-1)); when the error carries a
 *    Retry-After, that delay is used instead, capped at 20 s.
 *
 * Token bucket: each HTTP attempt takes one token. Tokens refill at `rate`
 * per second up to `burst`. An attempt that finds the bucket empty reserves
 * the next token and waits for it, unless the wait would exceed the bound,
 * in which case it fails without waiting. Defaults (client.h): 20 calls/s
 * sustained, burst 40, per service — below the published default API rate
 * limits of the services aviary calls (e.g. EC2 Describe* 20/s refill with
 * a 100 burst; ECS, ELBv2 and CloudWatch allow more), so aviary does not
 * spend AWS's throttling budget that other tools in the account share. */
#ifndef AVIARY_AWS_RETRY_H
#define AVIARY_AWS_RETRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "aws/error.h"

#define AWS_RETRY_DEFAULT_MAX_ATTEMPTS 3
#define AWS_RETRY_MAX_ATTEMPTS_LIMIT   20 /* AWS_MAX_ATTEMPTS above this is clamped */
#define AWS_RETRY_BASE_MS              100L
#define AWS_RETRY_MAX_BACKOFF_MS       20000L
#define AWS_RETRY_QUOTA_CAPACITY       500
#define AWS_RETRY_COST                 5
#define AWS_RETRY_TIMEOUT_COST         10
#define AWS_RETRY_NO_RETRY_INCREMENT   1

#define AWS_RATE_DEFAULT_PER_SECOND 20.0
#define AWS_RATE_DEFAULT_BURST      40.0
#define AWS_RATE_MAX_WAIT_MS        60000L

/* The retry quota shared by every call to one service. */
struct aws_retry_quota {
    pthread_mutex_t lock;
    int available;
    int capacity;
};

/* Per-call retry state. Zero-initialise it before the first attempt. */
struct aws_retry_state {
    int attempts;  /* attempts made so far */
    int last_cost; /* quota taken by the latest retry, 0 if none */
};

/* Initialises a full quota of `capacity` (0: 500). Destroy with
 * aws_retry_quota_destroy. */
void aws_retry_quota_init(struct aws_retry_quota *q, int capacity);
void aws_retry_quota_destroy(struct aws_retry_quota *q);

/* Currently available quota (for tests and metrics). */
int aws_retry_quota_available(struct aws_retry_quota *q);

/* Effective max attempts: `configured` when > 0, else AWS_MAX_ATTEMPTS from
 * env (a positive integer, clamped to AWS_RETRY_MAX_ATTEMPTS_LIMIT), else 3.
 * env may be NULL (process environment). */
int aws_retry_max_attempts(const struct aws_env *env, int configured);

/* Decides after a failed attempt (st->attempts already counts it) whether
 * to retry: err retryable, attempts left, and quota taken. Returns true and
 * records the cost in st, or false (nothing taken). */
bool aws_retry_should_retry(struct aws_retry_quota *q, struct aws_retry_state *st,
                            const struct aws_error *err, int max_attempts);

/* The delay in ms before the next attempt, after `attempts` attempts (>= 1)
 * failed with err; r is uniform in [0,1). */
long aws_retry_backoff_ms(int attempts, double r, const struct aws_error *err);

/* Records a successful call in the quota (refund or increment). */
void aws_retry_on_success(struct aws_retry_quota *q, const struct aws_retry_state *st);

/* A token bucket. rate <= 0 disables it (every acquire returns 0). */
struct aws_token_bucket {
    pthread_mutex_t lock;
    double rate;  /* tokens per second */
    double burst; /* capacity */
    double tokens;
    int64_t last_ms;
    bool started;
};

void aws_token_bucket_init(struct aws_token_bucket *b, double rate, double burst);
void aws_token_bucket_destroy(struct aws_token_bucket *b);

/* Takes one token at time now_ms (any monotonic clock in ms). Returns 0
 * when a token was available, the number of ms the caller must wait before
 * using the token it reserved (> 0), or -1 when that wait would exceed
 * max_wait_ms (then nothing is reserved). */
long aws_token_bucket_acquire(struct aws_token_bucket *b, int64_t now_ms, long max_wait_ms);

/* Monotonic clock in ms, and a sleep that tolerates EINTR (the defaults). */
int64_t aws_retry_monotonic_ms(void);
void aws_retry_sleep_ms(long ms);

#endif
