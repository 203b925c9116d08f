/* Unit tests for the standard retry mode and the token bucket: attempts,
 * backoff bounds, retry quota, Retry-After, non-retryable errors, waits
 * with an injected clock. Pure logic, no sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "aws/retry.h"

static struct aws_error service_error(long status, const char *code)
{
    struct aws_error e;

    memset(&e, 0, sizeof(e));
    e.kind = AWS_ERR_SERVICE;
    e.http_status = status;
    snprintf(e.code, sizeof(e.code), "%s", code);
    aws_error_classify(&e);
    return e;
}

/* Runs a call whose every attempt fails with err; returns attempts made. */
static int attempts_until_give_up(struct aws_retry_quota *q, const struct aws_error *err, int max)
{
    struct aws_retry_state st = {0};

    for (;;) {
        st.attempts++;
        if (!aws_retry_should_retry(q, &st, err, max))
            return st.attempts;
    }
}

static void test_retries_throttling_and_5xx_up_to_max(void **state)
{
    struct aws_retry_quota q;
    const char *codes[] = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown",
                           "TooManyRequestsException"};
    (void)state;

    aws_retry_quota_init(&q, 0);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct aws_error e = service_error(400, codes[i]);
        assert_true(e.throttling);
        assert_int_equal(attempts_until_give_up(&q, &e, 3), 3);
    }
    for (long s = 500; s <= 504; s++) {
        struct aws_error e = service_error(s, "Whatever");
        assert_int_equal(attempts_until_give_up(&q, &e, 3), s == 501 ? 1 : 3);
    }
    {
        struct aws_error e = service_error(400, "RequestTimeout");
        assert_int_equal(attempts_until_give_up(&q, &e, 5), 5);
    }
    aws_retry_quota_destroy(&q);
}

static void test_never_retries_client_errors(void **state)
{
    struct aws_retry_quota q;
    const char *codes[] = {"ValidationError", "AccessDenied", "InvalidParameterValue",
                           "ResourceNotFoundException"};
    (void)state;

    aws_retry_quota_init(&q, 0);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct aws_error e = service_error(400, codes[i]);
        assert_false(e.retryable);
        assert_int_equal(attempts_until_give_up(&q, &e, 3), 1);
    }
    {
        struct aws_error e = service_error(404, "NotFound");
        assert_int_equal(attempts_until_give_up(&q, &e, 3), 1);
    }
    /* Non-retryable local errors. */
    {
        struct aws_error e;
        aws_error_set(&e, AWS_ERR_TOO_LARGE, "big");
        assert_int_equal(attempts_until_give_up(&q, &e, 3), 1);
        aws_error_set(&e, AWS_ERR_PARSE, "bad");
        assert_int_equal(attempts_until_give_up(&q, &e, 3), 1);
    }
    assert_int_equal(aws_retry_quota_available(&q), AWS_RETRY_QUOTA_CAPACITY);
    aws_retry_quota_destroy(&q);
}

static void test_transport_and_timeout_costs(void **state)
{
    struct aws_retry_quota q;
    struct aws_retry_state st = {.attempts = 1};
    struct aws_error e;
    (void)state;

    aws_retry_quota_init(&q, 0);
    aws_error_set(&e, AWS_ERR_TRANSPORT, "reset");
    assert_true(aws_retry_should_retry(&q, &st, &e, 3));
    assert_int_equal(st.last_cost, AWS_RETRY_COST);
    assert_int_equal(aws_retry_quota_available(&q), 495);
    aws_error_set(&e, AWS_ERR_TIMEOUT, "slow");
    st.attempts = 2;
    assert_true(aws_retry_should_retry(&q, &st, &e, 3));
    assert_int_equal(st.last_cost, AWS_RETRY_TIMEOUT_COST);
    assert_int_equal(aws_retry_quota_available(&q), 485);
    /* Success after a retry refunds what the last retry took. */
    aws_retry_on_success(&q, &st);
    assert_int_equal(aws_retry_quota_available(&q), 495);
    aws_retry_quota_destroy(&q);
}

static void test_quota_exhaustion_stops_retries_and_refills(void **state)
{
    struct aws_retry_quota q;
    struct aws_error e = service_error(503, "ServiceUnavailable");
    int retried = 0;
    (void)state;

    aws_retry_quota_init(&q, 0);
    /* 500 / 5 = 100 retries possible, then none. */
    for (int i = 0; i < 150; i++) {
        struct aws_retry_state st = {.attempts = 1};
        if (aws_retry_should_retry(&q, &st, &e, 3))
            retried++;
    }
    assert_int_equal(retried, 100);
    assert_int_equal(aws_retry_quota_available(&q), 0);
    {
        struct aws_retry_state st = {0};
        assert_int_equal(attempts_until_give_up(&q, &e, 3), 1);
        /* Successes without retry add 1 each; 5 of them allow one retry. */
        for (int i = 0; i < 4; i++)
            aws_retry_on_success(&q, &st);
        st.attempts = 1;
        assert_false(aws_retry_should_retry(&q, &st, &e, 3));
        aws_retry_on_success(&q, &st);
        assert_true(aws_retry_should_retry(&q, &st, &e, 3));
    }
    /* Refunds never exceed the capacity. */
    {
        struct aws_retry_state st = {0};
        for (int i = 0; i < 1000; i++)
            aws_retry_on_success(&q, &st);
        assert_int_equal(aws_retry_quota_available(&q), AWS_RETRY_QUOTA_CAPACITY);
    }
    aws_retry_quota_destroy(&q);
}

static void test_backoff_full_jitter_bounds(void **state)
{
    struct aws_error e = service_error(500, "InternalError");
    (void)state;

    /* r = 0 gives 0; r close to 1 gives just under the ceiling. */
    assert_int_equal(aws_retry_backoff_ms(1, 0.0, &e), 0);
    assert_int_equal(aws_retry_backoff_ms(1, 0.5, &e), 50);
    assert_int_equal(aws_retry_backoff_ms(2, 0.5, &e), 100);
    assert_int_equal(aws_retry_backoff_ms(3, 0.5, &e), 200);
    assert_int_equal(aws_retry_backoff_ms(4, 0.999, &e), 799);
    /* The ceiling is 20 s: 100 ms * 2^8 = 25.6 s is capped. */
    assert_int_equal(aws_retry_backoff_ms(8, 0.5, &e), 6400);
    assert_int_equal(aws_retry_backoff_ms(9, 0.5, &e), 10000);
    assert_int_equal(aws_retry_backoff_ms(50, 0.5, &e), 10000);
    assert_int_equal(aws_retry_backoff_ms(1000, 0.75, &e), 15000);
    for (int n = 1; n < 40; n++)
        for (double r = 0.0; r < 1.0; r += 0.125) {
            long d = aws_retry_backoff_ms(n, r, &e);
            assert_true(d >= 0 && d < AWS_RETRY_MAX_BACKOFF_MS);
        }
    /* Out-of-range random values are treated as 0. */
    assert_int_equal(aws_retry_backoff_ms(3, 1.5, &e), 0);
    assert_int_equal(aws_retry_backoff_ms(3, -0.5, &e), 0);
}

static void test_retry_after_is_honoured_and_capped(void **state)
{
    struct aws_error e = service_error(503, "SlowDown");
    (void)state;

    e.retry_after_ms = 3000;
    assert_int_equal(aws_retry_backoff_ms(1, 0.1, &e), 3000);
    e.retry_after_ms = 120000;
    assert_int_equal(aws_retry_backoff_ms(1, 0.1, &e), AWS_RETRY_MAX_BACKOFF_MS);
}

struct fake_env {
    const char *max_attempts;
};

static const char *fake_get(void *arg, const char *name)
{
    struct fake_env *f = arg;
    return strcmp(name, "AWS_MAX_ATTEMPTS") == 0 ? f->max_attempts : NULL;
}

static void test_max_attempts_configuration(void **state)
{
    struct fake_env f = {0};
    struct aws_env env = {.get = fake_get, .arg = &f};
    (void)state;

    assert_int_equal(aws_retry_max_attempts(&env, 0), 3);
    f.max_attempts = "5";
    assert_int_equal(aws_retry_max_attempts(&env, 0), 5);
    assert_int_equal(aws_retry_max_attempts(&env, 2), 2); /* explicit config wins */
    f.max_attempts = "1";
    assert_int_equal(aws_retry_max_attempts(&env, 0), 1);
    f.max_attempts = "0";
    assert_int_equal(aws_retry_max_attempts(&env, 0), 3);
    f.max_attempts = "abc";
    assert_int_equal(aws_retry_max_attempts(&env, 0), 3);
    f.max_attempts = "1000";
    assert_int_equal(aws_retry_max_attempts(&env, 0), AWS_RETRY_MAX_ATTEMPTS_LIMIT);
    {
        struct aws_retry_quota q;
        struct aws_error e = service_error(500, "InternalError");
        aws_retry_quota_init(&q, 0);
        assert_int_equal(attempts_until_give_up(&q, &e, 1), 1);
        aws_retry_quota_destroy(&q);
    }
}

static void test_token_bucket_burst_then_waits(void **state)
{
    struct aws_token_bucket b;
    int64_t now = 1000000;
    (void)state;

    aws_token_bucket_init(&b, 10.0, 5.0); /* 10/s, burst 5 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(aws_token_bucket_acquire(&b, now, 60000), 0);
    /* Empty: the next caller waits 100 ms for its token, the one after 200. */
    assert_int_equal(aws_token_bucket_acquire(&b, now, 60000), 100);
    assert_int_equal(aws_token_bucket_acquire(&b, now, 60000), 200);
    /* 300 ms later the two reservations are paid and one token is there. */
    now += 300;
    assert_int_equal(aws_token_bucket_acquire(&b, now, 60000), 0);
    assert_int_equal(aws_token_bucket_acquire(&b, now, 60000), 100);
    /* A long idle time refills only up to the burst. */
    now += 100000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(aws_token_bucket_acquire(&b, now, 60000), 0);
    assert_true(aws_token_bucket_acquire(&b, now, 60000) > 0);
    aws_token_bucket_destroy(&b);
}

static void test_token_bucket_bounded_wait(void **state)
{
    struct aws_token_bucket b;
    int64_t now = 0;
    int ok = 0;
    (void)state;

    aws_token_bucket_init(&b, 1.0, 1.0); /* 1/s */
    assert_int_equal(aws_token_bucket_acquire(&b, now, 2500), 0);
    for (int i = 0; i < 10; i++)
        if (aws_token_bucket_acquire(&b, now, 2500) > 0)
            ok++;
    /* Reservations at 1 s and 2 s fit the 2.5 s bound; the rest fail. */
    assert_int_equal(ok, 2);
    assert_int_equal(aws_token_bucket_acquire(&b, now, 2500), -1);
    /* A failed acquire reserved nothing: after 3 s one token is free again. */
    now += 3000;
    assert_int_equal(aws_token_bucket_acquire(&b, now, 2500), 0);
    aws_token_bucket_destroy(&b);
}

static void test_token_bucket_disabled(void **state)
{
    struct aws_token_bucket b;
    (void)state;

    aws_token_bucket_init(&b, 0.0, 0.0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(aws_token_bucket_acquire(&b, 0, 0), 0);
    aws_token_bucket_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries_throttling_and_5xx_up_to_max),
        cmocka_unit_test(test_never_retries_client_errors),
        cmocka_unit_test(test_transport_and_timeout_costs),
        cmocka_unit_test(test_quota_exhaustion_stops_retries_and_refills),
        cmocka_unit_test(test_backoff_full_jitter_bounds),
        cmocka_unit_test(test_retry_after_is_honoured_and_capped),
        cmocka_unit_test(test_max_attempts_configuration),
        cmocka_unit_test(test_token_bucket_burst_then_waits),
        cmocka_unit_test(test_token_bucket_bounded_wait),
        cmocka_unit_test(test_token_bucket_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
