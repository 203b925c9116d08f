/* Structured logging to stderr (see log.h). Any thread. */
#include "controller/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/buffer.h"

#define LOG_LINE_MAX 8192

static enum log_format log_format_current = LOG_FORMAT_TEXT;
static enum log_level log_level_min = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum log_format format, enum log_level level)
{
    log_format_current = format;
    log_level_min = level;
}

void log_set_fd(int fd)
{
    log_fd = fd < 0 ? STDERR_FILENO : fd;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_LEVEL_ERROR)
        return "unknown";
    return level_names[level];
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (unsigned i = 0; i <= LOG_LEVEL_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

/* A text value needs quotes when it is empty or holds spaces, quotes, '=' or
 * control characters. */
static bool text_needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (; *v; v++)
        if ((unsigned char)*v <= ' ' || *v == '"' || *v == '=' || *v == '\\')
            return true;
    return false;
}

/* Appends v escaped for a JSON string or a quoted text value (same rules). */
static void append_escaped(struct aws_buf *b, const char *v)
{
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\') {
            aws_buf_append_char(b, '\\');
            aws_buf_append_char(b, (char)c);
        } else if (c == '\n') {
            aws_buf_append_str(b, "\\n");
        } else if (c < 0x20) {
            aws_buf_printf(b, "\\u%04x", c);
        } else {
            aws_buf_append_char(b, (char)c);
        }
    }
}

static void append_pair(struct aws_buf *b, const char *key, const char *value, bool first)
{
    if (log_format_current == LOG_FORMAT_JSON) {
        aws_buf_append_str(b, first ? "{\"" : ",\"");
        append_escaped(b, key);
        aws_buf_append_str(b, "\":\"");
        append_escaped(b, value);
        aws_buf_append_char(b, '"');
        return;
    }
    if (!first)
        aws_buf_append_char(b, ' ');
    aws_buf_append_str(b, key);
    aws_buf_append_char(b, '=');
    if (text_needs_quotes(value)) {
        aws_buf_append_char(b, '"');
        append_escaped(b, value);
        aws_buf_append_char(b, '"');
    } else {
        aws_buf_append_str(b, value);
    }
}

void log_eventv(enum log_level level, const char *msg, va_list kv)
{
    struct aws_buf line;
    char ts[64];
    struct timespec now;
    struct tm tm;
    const char *key, *value;

    if (level < log_level_min)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(now.tv_nsec / 1000000) % 1000);

    aws_buf_init(&line, LOG_LINE_MAX);
    append_pair(&line, "ts", ts, true);
    append_pair(&line, "level", log_level_name(level), false);
    append_pair(&line, "msg", msg, false);
    while ((key = va_arg(kv, const char *)) != NULL) {
        value = va_arg(kv, const char *);
        append_pair(&line, key, value ? value : "", false);
    }
    if (log_format_current == LOG_FORMAT_JSON)
        aws_buf_append_char(&line, '}');
    /* A line over the limit is cut, never dropped: the prefix still says what happened. */
    if (line.data == NULL)
        return;
    if (aws_buf_append_char(&line, '\n') != 0)
        line.data[line.len - 1] = '\n';
    if (write(log_fd, line.data, line.len) < 0) {
        /* Nowhere left to report a failed log write. */
    }
    aws_buf_free(&line);
}

void log_event(enum log_level level, const char *msg, ...)
{
    va_list ap;

    va_start(ap, msg);
    log_eventv(level, msg, ap);
    va_end(ap);
}
