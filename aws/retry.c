/* Standard-mode retry decisions, retry quota and token bucket (see
 * retry.h). Any thread. */
#include "aws/retry.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void aws_retry_quota_init(struct aws_retry_quota *q, int capacity)
{
    pthread_mutex_init(&q->lock, NULL);
    q->capacity = capacity > 0 ? capacity : AWS_RETRY_QUOTA_CAPACITY;
    q->available = q->capacity;
}

void aws_retry_quota_destroy(struct aws_retry_quota *q)
{
    pthread_mutex_destroy(&q->lock);
}

int aws_retry_quota_available(struct aws_retry_quota *q)
{
    int n;

    pthread_mutex_lock(&q->lock);
    n = q->available;
    pthread_mutex_unlock(&q->lock);
    return n;
}

int aws_retry_max_attempts(const struct aws_env *env, int configured)
{
    const char *v;
    char *end;
    long n;

    if (configured > 0)
        return configured > AWS_RETRY_MAX_ATTEMPTS_LIMIT ? AWS_RETRY_MAX_ATTEMPTS_LIMIT
                                                         : configured;
    if (env == NULL)
        env = aws_env_default();
    v = env->get ? env->get(env->arg, "AWS_MAX_ATTEMPTS") : NULL;
    if (v == NULL || *v == '\0')
        return AWS_RETRY_DEFAULT_MAX_ATTEMPTS;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1)
        return AWS_RETRY_DEFAULT_MAX_ATTEMPTS;
    return n > AWS_RETRY_MAX_ATTEMPTS_LIMIT ? AWS_RETRY_MAX_ATTEMPTS_LIMIT : (int)n;
}

bool aws_retry_should_retry(struct aws_retry_quota *q, struct aws_retry_state *st,
                            const struct aws_error *err, int max_attempts)
{
    int cost;
    bool ok = false;

    if (err == NULL || !err->retryable || st->attempts >= max_attempts)
        return false;
    cost = err->kind == AWS_ERR_TIMEOUT ? AWS_RETRY_TIMEOUT_COST : AWS_RETRY_COST;
    pthread_mutex_lock(&q->lock);
    if (q->available >= cost) {
        q->available -= cost;
        ok = true;
    }
    pthread_mutex_unlock(&q->lock);
    if (ok)
        st->last_cost = cost;
    return ok;
}

long aws_retry_backoff_ms(int attempts, double r, const struct aws_error *err)
{
    double ceiling;

    if (err != NULL && err->retry_after_ms > 0)
        return err->retry_after_ms > AWS_RETRY_MAX_BACKOFF_MS ? AWS_RETRY_MAX_BACKOFF_MS
                                                              : err->retry_after_ms;
    if (attempts < 1)
        attempts = 1;
    if (!(r >= 0.0) || r >= 1.0) /* also rejects NaN */
        r = 0.0;
    /* 100 ms * 2^(n-1) reaches the 20 s cap at n = 9; avoid overflow. */
    ceiling = attempts > 30 ? (double)AWS_RETRY_MAX_BACKOFF_MS
                            : (double)AWS_RETRY_BASE_MS * ldexp(1.0, attempts - 1);
    if (ceiling > (double)AWS_RETRY_MAX_BACKOFF_MS)
        ceiling = (double)AWS_RETRY_MAX_BACKOFF_MS;
    return (long)(r * ceiling);
}

void aws_retry_on_success(struct aws_retry_quota *q, const struct aws_retry_state *st)
{
    int give = st->last_cost > 0 ? st->last_cost : AWS_RETRY_NO_RETRY_INCREMENT;

    pthread_mutex_lock(&q->lock);
    q->available += give;
    if (q->available > q->capacity)
        q->available = q->capacity;
    pthread_mutex_unlock(&q->lock);
}

void aws_token_bucket_init(struct aws_token_bucket *b, double rate, double burst)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    b->rate = rate;
    b->burst = burst >= 1.0 ? burst : 1.0;
    b->tokens = b->burst;
}

void aws_token_bucket_destroy(struct aws_token_bucket *b)
{
    pthread_mutex_destroy(&b->lock);
}

long aws_token_bucket_acquire(struct aws_token_bucket *b, int64_t now_ms, long max_wait_ms)
{
    long wait = 0;

    if (!(b->rate > 0.0))
        return 0;
    pthread_mutex_lock(&b->lock);
    if (!b->started) {
        b->started = true;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens < 1.0) {
        double w = ceil((1.0 - b->tokens) * 1000.0 / b->rate);

        if (w > (double)max_wait_ms) {
            wait = -1;
            goto out;
        }
        wait = (long)w;
        if (wait < 1)
            wait = 1;
    }
    b->tokens -= 1.0; /* may go negative: later callers queue behind us */
out:
    pthread_mutex_unlock(&b->lock);
    return wait;
}

int64_t aws_retry_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void aws_retry_sleep_ms(long ms)
{
    struct timespec ts, rem;

    if (ms <= 0)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
}
