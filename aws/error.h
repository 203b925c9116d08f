/* The one error structure of the AWS client: HTTP status, AWS error code,
 * message, request id, and how the retry layer should treat it. Any thread. */
#ifndef AVIARY_AWS_ERROR_H
#define AVIARY_AWS_ERROR_H

#include <stdbool.h>

/* What kind of failure an aws_error describes. */
enum aws_error_kind {
    AWS_ERR_NONE = 0,
    AWS_ERR_SERVICE,     /* AWS answered with an error response (code set) */
    AWS_ERR_TRANSPORT,   /* connection refused/reset, DNS, TLS */
    AWS_ERR_TIMEOUT,     /* connect or total timeout */
    AWS_ERR_TOO_LARGE,   /* response body over the configured maximum */
    AWS_ERR_PARSE,       /* a response that does not match the model */
    AWS_ERR_CREDENTIALS, /* no credentials could be resolved */
    AWS_ERR_INVALID,     /* the caller's input is not valid for the model */
    AWS_ERR_NO_MEMORY,
    AWS_ERR_INTERNAL,
};

/* An error from an AWS call. Plain data: copy freely; holds no secrets. */
struct aws_error {
    enum aws_error_kind kind;
    long http_status;  /* 0 when there was no HTTP response */
    char code[128];    /* AWS error code, e.g. "ThrottlingException" */
    char message[512]; /* AWS's message or a description of the failure */
    char request_id[128];
    bool retryable;      /* transient: 5xx, timeouts, connection errors, throttling */
    bool throttling;     /* one of AWS's throttling codes */
    int attempts;        /* attempts made by the retry layer */
    long retry_after_ms; /* from a Retry-After header, or 0 */
};

/* Resets *err to "no error". */
void aws_error_clear(struct aws_error *err);

/* Fills *err with a failure of `kind` and a printf-style message; code is set
 * to the kind's name. Returns -1 so callers can `return aws_error_set(...)`. */
int aws_error_set(struct aws_error *err, enum aws_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Static name of an error kind ("transport", "timeout", ...). */
const char *aws_error_kind_name(enum aws_error_kind kind);

/* True when `code` is one of AWS's throttling error codes (Throttling,
 * ThrottlingException, RequestLimitExceeded, SlowDown, TooManyRequestsException,
 * ProvisionedThroughputExceededException, RequestThrottled, ...). */
bool aws_error_code_is_throttling(const char *code);

/* Classifies a filled service error: sets retryable/throttling from the HTTP
 * status and code as the SDKs' standard retry mode does (throttling codes,
 * 500/502/503/504, transient codes such as RequestTimeout, never other 4xx). */
void aws_error_classify(struct aws_error *err);

#endif
