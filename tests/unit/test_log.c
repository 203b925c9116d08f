/* Unit tests for structured logging: text and JSON lines, quoting, levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "controller/log.h"

/* Runs one log call into a temporary file and returns the line read back. */
static void capture(char *out, size_t out_len, void (*fn)(void))
{
    FILE *f = tmpfile();
    size_t n;

    assert_non_null(f);
    log_set_fd(fileno(f));
    fn();
    log_set_fd(-1);
    rewind(f);
    n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void emit_info(void)
{
    log_event(LOG_LEVEL_INFO, "reconciled", "key", "Application/fraud", "note", "two words",
              "quote", "a\"b", NULL);
}

static void emit_debug(void)
{
    log_event(LOG_LEVEL_DEBUG, "noise", NULL);
}

static void test_text_format_quotes_when_needed(void **state)
{
    char line[1024];
    (void)state;

    log_init(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    capture(line, sizeof(line), emit_info);
    assert_non_null(strstr(line, " level=info msg=reconciled key=Application/fraud "));
    assert_non_null(strstr(line, "note=\"two words\""));
    assert_non_null(strstr(line, "quote=\"a\\\"b\""));
    assert_int_equal(strncmp(line, "ts=", 3), 0);
    assert_int_equal(line[strlen(line) - 1], '\n');
}

static void test_json_format_is_one_object_per_line(void **state)
{
    char line[1024];
    (void)state;

    log_init(LOG_FORMAT_JSON, LOG_LEVEL_INFO);
    capture(line, sizeof(line), emit_info);
    assert_int_equal(line[0], '{');
    assert_non_null(strstr(line, "\"level\":\"info\",\"msg\":\"reconciled\""));
    assert_non_null(strstr(line, "\"quote\":\"a\\\"b\"}\n"));
}

static void test_level_filter(void **state)
{
    char line[256];
    (void)state;

    log_init(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    capture(line, sizeof(line), emit_debug);
    assert_string_equal(line, "");
    log_init(LOG_FORMAT_TEXT, LOG_LEVEL_DEBUG);
    capture(line, sizeof(line), emit_debug);
    assert_non_null(strstr(line, "msg=noise"));
}

static void test_parsers(void **state)
{
    enum log_level lvl;
    enum log_format fmt;
    (void)state;

    assert_int_equal(log_level_parse("warn", &lvl), 0);
    assert_int_equal(lvl, LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("loud", &lvl), -1);
    assert_int_equal(log_format_parse("json", &fmt), 0);
    assert_int_equal(fmt, LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("xml", &fmt), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format_quotes_when_needed),
        cmocka_unit_test(test_json_format_is_one_object_per_line),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
