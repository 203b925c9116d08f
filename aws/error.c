/* The AWS client's error structure: filling and classifying (see error.h). */
#include "aws/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {
    [AWS_ERR_NONE] = "none",
    [AWS_ERR_SERVICE] = "service",
    [AWS_ERR_TRANSPORT] = "transport",
    [AWS_ERR_TIMEOUT] = "timeout",
    [AWS_ERR_TOO_LARGE] = "response_too_large",
    [AWS_ERR_PARSE] = "parse",
    [AWS_ERR_CREDENTIALS] = "credentials",
    [AWS_ERR_INVALID] = "invalid_argument",
    [AWS_ERR_NO_MEMORY] = "no_memory",
    [AWS_ERR_INTERNAL] = "internal",
};

/* AWS's throttling codes, as the SDKs' standard retry mode lists them. */
static const char *const throttling_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

/* Transient service codes retried regardless of status. */
static const char *const transient_codes[] = {
    "RequestTimeout",     "RequestTimeoutException",     "InternalError",         "InternalFailure",
    "ServiceUnavailable", "ServiceUnavailableException", "IDPCommunicationError",
};

void aws_error_clear(struct aws_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
}

const char *aws_error_kind_name(enum aws_error_kind kind)
{
    if ((unsigned)kind >= sizeof(kind_names) / sizeof(kind_names[0]) || !kind_names[kind])
        return "unknown";
    return kind_names[kind];
}

int aws_error_set(struct aws_error *err, enum aws_error_kind kind, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    memset(err, 0, sizeof(*err));
    err->kind = kind;
    snprintf(err->code, sizeof(err->code), "%s", aws_error_kind_name(kind));
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->retryable = kind == AWS_ERR_TRANSPORT || kind == AWS_ERR_TIMEOUT;
    return -1;
}

static bool code_in(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return true;
    return false;
}

bool aws_error_code_is_throttling(const char *code)
{
    return code != NULL &&
           code_in(code, throttling_codes, sizeof(throttling_codes) / sizeof(throttling_codes[0]));
}

void aws_error_classify(struct aws_error *err)
{
    long s = err->http_status;

    err->throttling = aws_error_code_is_throttling(err->code) || s == 429;
    err->retryable =
        err->throttling || s == 500 || s == 502 || s == 503 || s == 504 ||
        code_in(err->code, transient_codes, sizeof(transient_codes) / sizeof(transient_codes[0]));
}
