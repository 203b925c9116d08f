/* HTTP transport on libcurl: one shared connection pool for all worker
 * threads, timeouts, bounded response bodies. Thread-safe. */
#ifndef AVIARY_AWS_HTTP_H
#define AVIARY_AWS_HTTP_H

#include <stddef.h>

#include "aws/error.h"

struct aws_http_header {
    const char *name;
    const char *value;
};

/* One request. Borrowed pointers: the caller keeps them alive for the call. */
struct aws_http_request {
    const char *method; /* "GET", "POST", "PUT", "HEAD", "DELETE" */
    const char *url;    /* absolute, already encoded as it goes on the wire */
    const struct aws_http_header *headers;
    size_t n_headers;
    const unsigned char *body;
    size_t body_len;
    long connect_timeout_ms;   /* 0: the client's default */
    long timeout_ms;           /* whole transfer; 0: the client's default */
    size_t max_response_bytes; /* 0: the client's default */
};

/* A response owned by the caller; release with aws_http_response_clear.
 * Header names are lower-cased; body is NUL-terminated (not counted). */
struct aws_http_response {
    long status;
    struct aws_http_header *headers; /* owned strings */
    size_t n_headers;
    unsigned char *body;
    size_t body_len;
};

struct aws_http_options {
    long connect_timeout_ms;   /* default 3000 */
    long timeout_ms;           /* default 30000 */
    size_t max_response_bytes; /* default 16 MiB */
    const char *ca_file;       /* optional extra CA bundle */
};

/* Counters for benchmarks and /metrics. */
struct aws_http_stats {
    unsigned long requests;
    unsigned long connections_opened;
};

struct aws_http;

/* Creates a transport. opts may be NULL for defaults. Returns NULL on
 * allocation or libcurl failure. Free with aws_http_free. */
struct aws_http *aws_http_new(const struct aws_http_options *opts);
void aws_http_free(struct aws_http *http);

/* Performs one request (no retries here). Returns 0 when an HTTP response of
 * any status arrived (*out filled, caller clears it), or -1 with *err set to
 * AWS_ERR_TRANSPORT, AWS_ERR_TIMEOUT or AWS_ERR_TOO_LARGE and *out empty.
 * TLS peer and host verification are always on for https. */
int aws_http_perform(struct aws_http *http, const struct aws_http_request *req,
                     struct aws_http_response *out, struct aws_error *err);

/* First value of a (case-insensitive) header, or NULL. */
const char *aws_http_response_header(const struct aws_http_response *resp, const char *name);

void aws_http_response_clear(struct aws_http_response *resp);

void aws_http_get_stats(struct aws_http *http, struct aws_http_stats *out);

#endif
