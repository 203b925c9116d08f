/* A loopback HTTP/1.1 server for unit tests: one accept thread plus one
 * thread per connection, keep-alive, Content-Length and chunked request
 * bodies, and a handler callback that decides each answer (status, headers,
 * body, delay, connection reset). Bound to 127.0.0.1 on an ephemeral port. */
#ifndef AVIARY_TEST_SERVER_H
#define AVIARY_TEST_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#define TEST_SERVER_MAX_HEADERS      64
#define TEST_SERVER_MAX_HEAD_BYTES   (64u * 1024u)         /* request line + headers */
#define TEST_SERVER_MAX_BODY_BYTES   (32u * 1024u * 1024u) /* request body */
#define TEST_SERVER_MAX_DELAY_MS     10000L
#define TEST_SERVER_MAX_RESP_HEADERS 8192
#define TEST_SERVER_MAX_CONNECTIONS  64

/* One parsed request. Everything is owned by the server and valid only
 * during the handler call. Header names are lower-cased; values are trimmed.
 * body is NUL-terminated (not counted in body_len). */
struct test_request {
    char method[16];
    char target[4096]; /* path and query as sent, e.g. "/a/b?x=1" */
    char *header_names[TEST_SERVER_MAX_HEADERS];
    char *header_values[TEST_SERVER_MAX_HEADERS];
    size_t n_headers;
    unsigned char *body;
    size_t body_len;
    unsigned connection_seq; /* 1-based number of the connection it came on */
};

/* The handler's answer. Starts as 200, no headers, empty body. */
struct test_response {
    int status;
    /* Extra header lines, each "Name: value\r\n". The server adds
     * Content-Length (unless Content-Length or Transfer-Encoding is present
     * here; with Transfer-Encoding the body is sent as given) and "Connection: close" when
     * close_after is set. Use test_response_header to append. */
    char headers[TEST_SERVER_MAX_RESP_HEADERS];
    unsigned char *body; /* owned by the server; set with test_response_body */
    size_t body_len;
    long delay_ms;    /* wait before answering (capped at TEST_SERVER_MAX_DELAY_MS) */
    bool reset;       /* close the connection with RST instead of answering */
    bool close_after; /* answer, then close the connection */
};

/* Called on a connection thread for each request; calls are serialized by
 * the server (one at a time), so handler state needs no locking of its own
 * against other handler calls (tests reading it from the main thread after
 * the client returned see a complete request). */
typedef void (*test_handler)(const struct test_request *req, struct test_response *resp, void *arg);

struct test_server;

/* Starts a server on 127.0.0.1:0. Returns NULL on failure (socket, thread,
 * memory). Stop and free with test_server_stop. */
struct test_server *test_server_start(test_handler fn, void *arg);

/* "http://127.0.0.1:PORT"; owned by the server. */
const char *test_server_url(const struct test_server *s);
int test_server_port(const struct test_server *s);

/* Connections accepted and requests handled so far. */
unsigned test_server_connections(const struct test_server *s);
unsigned test_server_requests(const struct test_server *s);

/* Stops accepting, closes every connection, joins every thread and frees
 * the server. NULL is a no-op. */
void test_server_stop(struct test_server *s);

/* Take and release the lock that serializes handler calls: a test that
 * changes its handler's state between requests does it under this lock so
 * that the change is ordered with the handler's reads. */
void test_server_lock(struct test_server *s);
void test_server_unlock(struct test_server *s);

/* First value of header `name` (case-insensitive), or NULL. */
const char *test_request_header(const struct test_request *req, const char *name);

/* Appends "name: value\r\n" (value printf-style). Returns 0, or -1 if the
 * header block is full. */
int test_response_header(struct test_response *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies len bytes as the body (replacing any previous one). Returns 0, or
 * -1 on allocation failure. test_response_body_str copies a C string. */
int test_response_body(struct test_response *resp, const void *data, size_t len);
int test_response_body_str(struct test_response *resp, const char *s);

#endif
