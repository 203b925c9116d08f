/* The AWS client: one call = resolve endpoint, serialize from the model,
 * sign, send, retry (standard mode), parse. One client is shared by all
 * worker threads; every function here is thread-safe.
 *
 * Each attempt carries User-Agent "aviary/VERSION", amz-sdk-invocation-id
 * (one UUID per call) and amz-sdk-request "attempt=N; max=M", and is signed
 * afresh (new X-Amz-Date). Retry quota and token bucket are per service
 * (see retry.h); endpoints per endpoint.h (S3 path-style). Clock skew: when
 * a request is rejected as skewed or badly signed (RequestTimeTooSkewed,
 * RequestExpired, SignatureDoesNotMatch, InvalidSignatureException,
 * AuthFailure, ...) and the response's Date is more than 4 minutes from
 * the client's clock, the client keeps the offset for all later calls and
 * retries once at once (this extra attempt is not counted against
 * max_attempts or the retry quota). The client never logs; credentials
 * never appear in errors or call records. */
#ifndef AVIARY_AWS_CLIENT_H
#define AVIARY_AWS_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/buffer.h"
#include "aws/credentials.h"
#include "aws/error.h"
#include "aws/http.h"
#include "aws/protocol.h"

/* One finished call, reported to the on_call hook (for logs and /metrics). */
struct aws_call_record {
    const char *service; /* botocore name */
    const char *operation;
    long http_status;       /* of the last attempt; 0 when none */
    const char *error_code; /* "" on success */
    int attempts;
    double seconds; /* wall time including retries */
};

struct aws_client_config {
    const struct aws_env *env; /* NULL: the process environment and clock */
    const char *region;        /* NULL: aws_region_resolve; none: aws_client_new fails */
    int max_attempts;          /* 0: AWS_MAX_ATTEMPTS or 3 */
    long connect_timeout_ms;   /* 0: 3000 */
    long timeout_ms;           /* 0: 30000 */
    size_t max_response_bytes; /* 0: 16 MiB */
    /* Borrowed; NULL: the client builds and owns the default chain. */
    struct aws_credentials_provider *credentials;
    /* Borrowed; NULL: the client owns its transport. */
    struct aws_http *http;
    /* Client-side rate limit per service (token bucket): sustained calls per
     * second and burst. 0: 20/s and 40. */
    double rate_per_second;
    double rate_burst;
    /* Hooks for tests and metrics; all optional. */
    void (*sleep_ms)(void *arg, long ms); /* backoff waits; default nanosleep */
    double (*random)(void *arg);          /* uniform [0,1) for jitter; default OpenSSL RAND */
    int64_t (*now_ms)(void *arg);         /* monotonic ms for the token bucket and timing */
    void *hook_arg;
    void (*on_call)(void *arg, const struct aws_call_record *rec);
    void *on_call_arg;
};

struct aws_client;

/* Creates a client. cfg may be NULL for defaults. Returns 0 and *out, or -1
 * with *err (e.g. no region could be resolved and none given). */
int aws_client_new(const struct aws_client_config *cfg, struct aws_client **out,
                   struct aws_error *err);
void aws_client_free(struct aws_client *client);

/* The region the client signs for. */
const char *aws_client_region(const struct aws_client *client);

/* Calls `operation` of `service` (botocore names, e.g. "elbv2",
 * "DescribeLoadBalancers") with `input` (may be NULL). On success returns 0
 * and *output is a new JSON object owned by the caller. On failure returns
 * -1, *output is NULL and *err says why (for AWS errors: HTTP status, code,
 * message, request id; attempts made). Retries transient failures with
 * exponential backoff and full jitter, within the retry quota. */
int aws_call(struct aws_client *client, const char *service, const char *operation,
             const json_t *input, json_t **output, struct aws_error *err);

/* Options for calls that carry raw bytes (S3 objects). */
struct aws_call_options {
    const struct aws_blob *payload_in; /* request body for a streaming payload */
    struct aws_buf *payload_out;       /* receives a streaming response body */
    long timeout_ms;                   /* 0: the client's */
};

int aws_call_ex(struct aws_client *client, const char *service, const char *operation,
                const json_t *input, const struct aws_call_options *opts, json_t **output,
                struct aws_error *err);

/* Calls a paginated operation until the last page (at most max_pages; 0 =
 * 1000), and returns in *output the last page's document with every result
 * key's array holding the items of all pages. Returns as aws_call.
 * Pagination follows the model (botocore's paginators): the output tokens
 * (dotted paths, "a || b" alternatives and [N]/[-1] indexes allowed) feed
 * the input tokens of the next call; it ends when the tokens are absent or
 * empty, when more_results (e.g. IsTruncated) is false, or when a page
 * repeats the previous page's tokens. More than max_pages pages is an error
 * (AWS_ERR_INTERNAL, code "TooManyPages"), never a silent truncation. An
 * operation without pagination is called once. */
int aws_call_all(struct aws_client *client, const char *service, const char *operation,
                 const json_t *input, int max_pages, json_t **output, struct aws_error *err);

/* Calls fn once per page (the page is borrowed for the callback only). fn
 * returns 0 to continue, 1 to stop early, -1 to fail (then -1 is returned
 * with err->kind AWS_ERR_INTERNAL unless fn filled err). Pages end as for
 * aws_call_all. Returns 0 when every page was delivered or fn stopped. */
typedef int (*aws_page_fn)(const json_t *page, void *arg, struct aws_error *err);
int aws_paginate(struct aws_client *client, const char *service, const char *operation,
                 const json_t *input, int max_pages, aws_page_fn fn, void *arg,
                 struct aws_error *err);

#endif
