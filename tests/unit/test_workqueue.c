/* Unit tests for the work queue: de-duplication, per-key exclusivity,
 * backoff, requeue_after, bounds and shutdown, with an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controller/workqueue.h"

struct fake_clock {
    int64_t now;
    double rnd;
};

static int64_t fake_now(void *arg)
{
    return ((struct fake_clock *)arg)->now;
}

static double fake_random(void *arg)
{
    return ((struct fake_clock *)arg)->rnd;
}

static struct workqueue *new_queue(struct fake_clock *clk, size_t max_keys)
{
    struct workqueue_config cfg = {
        .max_keys = max_keys,
        .backoff_base_ms = 1000,
        .backoff_max_ms = 60000,
        .now_ms = fake_now,
        .random = fake_random,
        .arg = clk,
    };
    return workqueue_new(&cfg);
}

static void test_dedupes_queued_keys(void **state)
{
    struct fake_clock clk = {.now = 1000, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    long wait;
    (void)state;

    assert_int_equal(workqueue_add(q, "Application/a"), 0);
    assert_int_equal(workqueue_add(q, "Application/b"), 0);
    assert_int_equal(workqueue_add(q, "Application/a"), 0);
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), &wait), 0);
    assert_string_equal(key, "Application/a");
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), &wait), 0);
    assert_string_equal(key, "Application/b");
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), &wait), 1);
    assert_int_equal(wait, -1);
    workqueue_free(q);
}

static void test_key_in_progress_is_not_handed_out_twice(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    (void)state;

    workqueue_add(q, "Application/a");
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 0);
    /* Added again while a worker holds it: not available until done. */
    workqueue_add(q, "Application/a");
    workqueue_add(q, "Application/a");
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 1);
    workqueue_done(q, "Application/a", WORKQUEUE_DONE, 0);
    /* ... then exactly once more. */
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 0);
    assert_string_equal(key, "Application/a");
    workqueue_done(q, "Application/a", WORKQUEUE_DONE, 0);
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 1);
    workqueue_free(q);
}

static void test_error_backs_off_exponentially_with_cap(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.999999};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    long wait;
    long expected[] = {999, 1999, 3999, 7999, 15999, 31999, 59999, 59999};
    (void)state;

    workqueue_add(q, "Application/a");
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 0);
        workqueue_done(q, key, WORKQUEUE_ERROR, 0);
        assert_int_equal(workqueue_failures(q, "Application/a"), (int)i + 1);
        assert_int_equal(workqueue_try_get(q, key, sizeof(key), &wait), 1);
        assert_int_equal(wait, expected[i]);
        clk.now += wait - 1;
        assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 1);
        clk.now += 1;
    }
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 0);
    workqueue_done(q, key, WORKQUEUE_DONE, 0);
    assert_int_equal(workqueue_failures(q, "Application/a"), 0);
    workqueue_free(q);
}

static void test_jitter_lowers_the_delay_at_most_by_half(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    long wait;
    (void)state;

    workqueue_add(q, "Application/a");
    workqueue_try_get(q, key, sizeof(key), NULL);
    workqueue_done(q, key, WORKQUEUE_ERROR, 0);
    workqueue_try_get(q, key, sizeof(key), &wait);
    assert_int_equal(wait, 500);
    workqueue_free(q);
}

static void test_requeue_after_and_earliest_wins(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    long wait;
    (void)state;

    workqueue_add(q, "Application/a");
    workqueue_try_get(q, key, sizeof(key), NULL);
    workqueue_done(q, key, WORKQUEUE_REQUEUE_AFTER, 30000);
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), &wait), 1);
    assert_int_equal(wait, 30000);
    /* A resync asking for 60 s does not postpone it; one asking for 5 s advances it. */
    workqueue_add_after(q, "Application/a", 60000);
    workqueue_try_get(q, key, sizeof(key), &wait);
    assert_int_equal(wait, 30000);
    workqueue_add_after(q, "Application/a", 5000);
    workqueue_try_get(q, key, sizeof(key), &wait);
    assert_int_equal(wait, 5000);
    clk.now = 5000;
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 0);
    workqueue_free(q);
}

static void test_add_while_in_progress_beats_backoff(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    (void)state;

    workqueue_add(q, "Application/a");
    workqueue_try_get(q, key, sizeof(key), NULL);
    workqueue_add(q, "Application/a"); /* the manifest changed meanwhile */
    workqueue_done(q, key, WORKQUEUE_ERROR, 0);
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), NULL), 0);
    workqueue_free(q);
}

static void test_delayed_keys_come_out_in_due_order(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    (void)state;

    workqueue_add_after(q, "Application/late", 300);
    workqueue_add_after(q, "Application/early", 100);
    workqueue_add_after(q, "Application/middle", 200);
    clk.now = 1000;
    workqueue_try_get(q, key, sizeof(key), NULL);
    assert_string_equal(key, "Application/early");
    workqueue_try_get(q, key, sizeof(key), NULL);
    assert_string_equal(key, "Application/middle");
    workqueue_try_get(q, key, sizeof(key), NULL);
    assert_string_equal(key, "Application/late");
    workqueue_free(q);
}

static void test_bounded_number_of_keys(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 2);
    char long_key[WORKQUEUE_KEY_MAX + 8];
    (void)state;

    assert_int_equal(workqueue_add(q, "a"), 0);
    assert_int_equal(workqueue_add(q, "b"), 0);
    assert_int_equal(workqueue_add(q, "c"), -1);
    assert_int_equal(workqueue_add(q, "a"), 0); /* known keys still fine */
    memset(long_key, 'x', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(workqueue_add(q, long_key), -1);
    assert_int_equal(workqueue_add(q, ""), -1);
    workqueue_free(q);
}

static void test_forget_drops_pending_retry(void **state)
{
    struct fake_clock clk = {.now = 0, .rnd = 0.0};
    struct workqueue *q = new_queue(&clk, 0);
    char key[WORKQUEUE_KEY_MAX];
    struct workqueue_stats st;
    long wait;
    (void)state;

    workqueue_add(q, "Application/a");
    workqueue_try_get(q, key, sizeof(key), NULL);
    workqueue_done(q, key, WORKQUEUE_ERROR, 0);
    workqueue_get_stats(q, &st);
    assert_int_equal(st.delayed, 1);
    workqueue_forget(q, "Application/a");
    assert_int_equal(workqueue_try_get(q, key, sizeof(key), &wait), 1);
    assert_int_equal(wait, -1);
    assert_int_equal(workqueue_failures(q, "Application/a"), 0);
    workqueue_free(q);
}

struct worker_arg {
    struct workqueue *q;
    int got;
};

static void *worker(void *p)
{
    struct worker_arg *w = p;
    char key[WORKQUEUE_KEY_MAX];

    while (workqueue_get(w->q, key, sizeof(key)) == 0) {
        w->got++;
        workqueue_done(w->q, key, WORKQUEUE_DONE, 0);
    }
    return NULL;
}

static void test_blocking_get_and_shutdown_wake_workers(void **state)
{
    struct workqueue *q = workqueue_new(NULL);
    struct worker_arg w[2] = {{q, 0}, {q, 0}};
    pthread_t th[2];
    struct workqueue_stats st;
    (void)state;

    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, &w[i]);
    for (int i = 0; i < 50; i++) {
        char k[32];
        snprintf(k, sizeof(k), "Application/k%d", i);
        workqueue_add(q, k);
    }
    /* Bounded wait for the workers to drain the queue. */
    for (int spins = 0; spins < 2000; spins++) {
        workqueue_get_stats(q, &st);
        if (st.ready == 0 && st.in_progress == 0)
            break;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    workqueue_shutdown(q);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(w[0].got + w[1].got, 50);
    workqueue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedupes_queued_keys),
        cmocka_unit_test(test_key_in_progress_is_not_handed_out_twice),
        cmocka_unit_test(test_error_backs_off_exponentially_with_cap),
        cmocka_unit_test(test_jitter_lowers_the_delay_at_most_by_half),
        cmocka_unit_test(test_requeue_after_and_earliest_wins),
        cmocka_unit_test(test_add_while_in_progress_beats_backoff),
        cmocka_unit_test(test_delayed_keys_come_out_in_due_order),
        cmocka_unit_test(test_bounded_number_of_keys),
        cmocka_unit_test(test_forget_drops_pending_retry),
        cmocka_unit_test(test_blocking_get_and_shutdown_wake_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
