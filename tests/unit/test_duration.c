/* Unit tests for duration parsing and formatting ("500ms", "1h30m"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "reconcilers/duration.h"

static void test_valid_durations(void **state)
{
    static const struct {
        const char *s;
        int64_t ms;
    } cases[] = {
        {"0", 0},
        {"0s", 0},
        {"500ms", 500},
        {"30s", 30000},
        {"5m", 300000},
        {"1h", 3600000},
        {"1h30m", 5400000},
        {"2m30s", 150000},
        {"1s500ms", 1500},
        {"1h1m1s1ms", 3661001},
        {"8760h", DURATION_MAX_MS},
        {"007s", 7000},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;

        assert_int_equal(duration_parse(cases[i].s, &ms, NULL), 0);
        assert_int_equal(ms, cases[i].ms);
    }
}

static void test_malformed_durations(void **state)
{
    static const struct {
        const char *s;
        const char *why;
    } cases[] = {
        {"", "empty duration"},
        {"5", "missing unit (ms, s, m, h)"},
        {"5 m", "unknown unit; use ms, s, m or h"},
        {"5min", "unknown unit; use ms, s, m or h"},
        {"1d", "unknown unit; use ms, s, m or h"},
        {"-5s", "a duration has no sign"},
        {"+5s", "a duration has no sign"},
        {"1.5h", "fractions are not supported; use a smaller unit (\"1500ms\", \"90s\")"},
        {"30s5m", "units must appear once each, largest first (\"1h30m\")"},
        {"1m1m", "units must appear once each, largest first (\"1h30m\")"},
        {"m", "expected a number followed by a unit (ms, s, m, h)"},
        {"1h ", "expected a number followed by a unit (ms, s, m, h)"},
        {"8761h", "duration is too long (at most 365 days)"},
        {"99999999999999999999999s", "duration is too long (at most 365 days)"},
        {"8760h1ms", "duration is too long (at most 365 days)"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 42;
        const char *why = NULL;

        assert_int_equal(duration_parse(cases[i].s, &ms, &why), -1);
        assert_int_equal(ms, 42); /* unchanged on error */
        assert_non_null(why);
        assert_string_equal(why, cases[i].why);
    }
    assert_int_equal(duration_parse(NULL, &(int64_t){0}, NULL), -1);
}

static void test_format_round_trips(void **state)
{
    static const int64_t values[] = {0,     1,     999,     1000,    1500,
                                     60000, 90000, 3600000, 5400500, DURATION_MAX_MS};
    char buf[32];
    size_t i;

    (void)state;
    assert_string_equal(duration_format(5400000, buf, sizeof(buf)), "1h30m");
    assert_string_equal(duration_format(500, buf, sizeof(buf)), "500ms");
    assert_string_equal(duration_format(0, buf, sizeof(buf)), "0s");
    assert_string_equal(duration_format(-1500, buf, sizeof(buf)), "-1s500ms");
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int64_t back = -1;

        duration_format(values[i], buf, sizeof(buf));
        assert_int_equal(duration_parse(buf, &back, NULL), 0);
        assert_int_equal(back, values[i]);
    }
    /* truncation stays NUL-terminated */
    assert_string_equal(duration_format(5400000, buf, 3), "1h");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_durations),
        cmocka_unit_test(test_malformed_durations),
        cmocka_unit_test(test_format_round_trips),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
