/* A small HTTP/1.1 server on the libuv loop for aviary's API (/healthz,
 * /readyz, /metrics, /v1/...): bounded requests, one request per connection
 * (Connection: close), an idle timeout, handlers called on the loop thread.
 * Loop thread only. */
#ifndef AVIARY_CONTROLLER_HTTPD_H
#define AVIARY_CONTROLLER_HTTPD_H

#include <stddef.h>
#include <uv.h>

#include "aws/buffer.h"

#define HTTPD_REQUEST_MAX  (64u * 1024u)
#define HTTPD_RESPONSE_MAX (8u * 1024u * 1024u)

/* A parsed request; valid during the handler call only. */
struct httpd_request {
    const char *method;
    const char *path;  /* decoded of nothing: as received, without the query */
    const char *query; /* after '?', or "" */
    const char *body;
    size_t body_len;
};

/* The handler fills status, content_type (static string) and body. */
struct httpd_response {
    int status;
    const char *content_type;
    struct aws_buf body;
};

typedef void (*httpd_handler)(const struct httpd_request *req, struct httpd_response *resp,
                              void *arg);

struct httpd;

/* Listens on addr ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:80"; port 0 picks
 * a free one). Returns 0 and *out, or a negative libuv error with a message
 * in errbuf (then nothing was started). */
int httpd_start(uv_loop_t *loop, const char *addr, httpd_handler fn, void *arg, struct httpd **out,
                char *errbuf, size_t errlen);

/* The port actually bound. */
int httpd_port(const struct httpd *h);

/* Closes the listener and every open connection; the server's memory is
 * freed once libuv has closed them (run the loop until it is idle). */
void httpd_stop(struct httpd *h);

/* Fills resp with a JSON error {"error": {"code": status, "message": msg}}. */
void httpd_json_error(struct httpd_response *resp, int status, const char *message);

/* Splits "host:port" / "[v6]:port" into a sockaddr. Returns 0 or a negative
 * libuv error. */
int httpd_parse_addr(const char *addr, struct sockaddr_storage *out);

#endif
