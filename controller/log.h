/* Structured logging: one line per event on stderr, key=value text or JSON,
 * with a level filter. Thread-safe (one write(2) per line). Never pass a
 * secret to these functions. */
#ifndef AVIARY_CONTROLLER_LOG_H
#define AVIARY_CONTROLLER_LOG_H

#include <stdarg.h>

enum log_level {
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
};

enum log_format {
    LOG_FORMAT_TEXT, /* ts=... level=info msg="..." key=value ... */
    LOG_FORMAT_JSON, /* {"ts":"...","level":"info","msg":"...","key":"value"} */
};

/* Sets the format and minimum level. Call before starting threads. */
void log_init(enum log_format format, enum log_level level);

/* Parses "debug|info|warn|error" / "text|json". Return 0, or -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
const char *log_level_name(enum log_level level);

/* Logs msg with key/value pairs: a NULL-terminated list of alternating
 * const char *key, const char *value (values are quoted/escaped as needed).
 * Example: log_event(LOG_LEVEL_INFO, "reconciled", "key", "Application/x",
 *                    "duration_ms", "12", NULL); */
void log_event(enum log_level level, const char *msg, ...) __attribute__((sentinel));
void log_eventv(enum log_level level, const char *msg, va_list kv);

/* Redirects output to fd (tests); -1 restores stderr. */
void log_set_fd(int fd);

#endif
