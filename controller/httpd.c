/* Minimal HTTP/1.1 server on libuv (see httpd.h). Loop thread only. Each
 * connection owns a bounded read buffer; a complete request is handed to the
 * handler, the response is written and the connection closed. */
#include "controller/httpd.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTPD_IDLE_MS 10000

struct httpd_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    struct httpd *server;
    struct httpd_conn *next, *prev;
    char buf[HTTPD_REQUEST_MAX + 1];
    size_t len;
    char *out;
    size_t out_len;
    bool responded;
    int open_handles;
};

struct httpd {
    uv_tcp_t listener;
    httpd_handler fn;
    void *arg;
    struct httpd_conn *conns;
    bool stopping;
    int port;
};

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

void httpd_json_error(struct httpd_response *resp, int status, const char *message)
{
    resp->status = status;
    resp->content_type = "application/json";
    aws_buf_reset(&resp->body);
    aws_buf_printf(&resp->body, "{\"error\":{\"code\":%d,\"message\":\"", status);
    for (const char *p = message; *p; p++) {
        if (*p == '"' || *p == '\\')
            aws_buf_append_char(&resp->body, '\\');
        if ((unsigned char)*p >= 0x20)
            aws_buf_append_char(&resp->body, *p);
    }
    aws_buf_append_str(&resp->body, "\"}}\n");
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct httpd_conn *c = handle->data;

    if (--c->open_handles > 0)
        return;
    free(c->out);
    free(c);
}

static void conn_close(struct httpd_conn *c)
{
    struct httpd *s = c->server;

    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void send_response(struct httpd_conn *c, struct httpd_response *resp)
{
    struct aws_buf out;
    uv_buf_t b;

    aws_buf_init(&out, HTTPD_RESPONSE_MAX + 1024);
    if (aws_buf_printf(&out,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\nCache-Control: no-store\r\n\r\n",
                       resp->status, status_text(resp->status),
                       resp->content_type ? resp->content_type : "text/plain; charset=utf-8",
                       resp->body.len) != 0 ||
        aws_buf_append(&out, resp->body.data ? resp->body.data : "", resp->body.len) != 0) {
        aws_buf_free(&out);
        conn_close(c);
        return;
    }
    c->responded = true;
    c->out = aws_buf_steal(&out, &c->out_len);
    b = uv_buf_init(c->out, (unsigned)c->out_len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c);
}

static void respond_error(struct httpd_conn *c, int status, const char *message)
{
    struct httpd_response resp = {0};

    aws_buf_init(&resp.body, HTTPD_RESPONSE_MAX);
    httpd_json_error(&resp, status, message);
    send_response(c, &resp);
    aws_buf_free(&resp.body);
}

/* Finds header `name` in the header block (lines after the request line). */
static const char *find_header(char *headers, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);

    for (char *line = headers; line && *line;) {
        char *eol = strstr(line, "\r\n");
        if (eol == NULL || eol == line)
            break;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            char *v = line + nlen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

/* Tries to parse a complete request from c->buf. Returns 1 when handled, 0
 * when more bytes are needed. */
static int try_dispatch(struct httpd_conn *c)
{
    char *end, *sp1, *sp2, *q;
    const char *cl;
    size_t head_len, body_len = 0, vlen;
    struct httpd_request req;
    struct httpd_response resp = {0};

    c->buf[c->len] = '\0';
    end = strstr(c->buf, "\r\n\r\n");
    if (end == NULL)
        return 0;
    head_len = (size_t)(end - c->buf) + 4;
    sp1 = strchr(c->buf, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp2 > end || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond_error(c, 400, "malformed request line");
        return 1;
    }
    cl = find_header(strstr(c->buf, "\r\n") + 2, "Content-Length", &vlen);
    if (cl != NULL) {
        char *stop;
        unsigned long long n = strtoull(cl, &stop, 10);
        if (stop == cl || !isdigit((unsigned char)*cl) || n > HTTPD_REQUEST_MAX) {
            respond_error(c, n > HTTPD_REQUEST_MAX ? 413 : 400, "bad Content-Length");
            return 1;
        }
        body_len = (size_t)n;
    }
    if (find_header(strstr(c->buf, "\r\n") + 2, "Transfer-Encoding", &vlen) != NULL) {
        respond_error(c, 400, "chunked requests are not supported");
        return 1;
    }
    if (head_len + body_len > HTTPD_REQUEST_MAX) {
        respond_error(c, 413, "request too large");
        return 1;
    }
    if (c->len < head_len + body_len)
        return 0;

    *sp1 = '\0';
    *sp2 = '\0';
    q = strchr(sp1 + 1, '?');
    if (q != NULL)
        *q = '\0';
    req.method = c->buf;
    req.path = sp1 + 1;
    req.query = q ? q + 1 : "";
    req.body = c->buf + head_len;
    req.body_len = body_len;
    aws_buf_init(&resp.body, HTTPD_RESPONSE_MAX);
    resp.status = 200;
    c->server->fn(&req, &resp, c->server->arg);
    send_response(c, &resp);
    aws_buf_free(&resp.body);
    return 1;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct httpd_conn *c = handle->data;
    (void)suggested;

    *buf = uv_buf_init(c->buf + c->len, (unsigned)(HTTPD_REQUEST_MAX - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct httpd_conn *c = stream->data;
    (void)buf;

    if (c->responded)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    if (try_dispatch(c))
        uv_read_stop(stream);
    else if (c->len >= HTTPD_REQUEST_MAX)
        respond_error(c, 413, "request too large");
}

static void on_idle_timeout(uv_timer_t *timer)
{
    conn_close(timer->data);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct httpd *s = listener->data;
    struct httpd_conn *c;

    if (status < 0 || s->stopping)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->server = s;
    uv_tcp_init(listener->loop, &c->tcp);
    uv_timer_init(listener->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_idle_timeout, HTTPD_IDLE_MS, 0);
}

static void on_listener_closed(uv_handle_t *handle)
{
    free(handle->data);
}

int httpd_parse_addr(const char *addr, struct sockaddr_storage *out)
{
    char host[128];
    const char *colon;
    char *stop;
    long port;
    size_t hlen;

    colon = strrchr(addr, ':');
    if (colon == NULL)
        return UV_EINVAL;
    port = strtol(colon + 1, &stop, 10);
    if (*stop != '\0' || stop == colon + 1 || port < 0 || port > 65535)
        return UV_EINVAL;
    hlen = (size_t)(colon - addr);
    if (hlen >= sizeof(host))
        return UV_EINVAL;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    memset(out, 0, sizeof(*out));
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out);
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out);
}

int httpd_start(uv_loop_t *loop, const char *addr, httpd_handler fn, void *arg, struct httpd **out,
                char *errbuf, size_t errlen)
{
    struct sockaddr_storage sa;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    struct httpd *s;
    int rc;

    *out = NULL;
    rc = httpd_parse_addr(addr, &sa);
    if (rc != 0) {
        snprintf(errbuf, errlen, "--listen %s: expected HOST:PORT", addr);
        return rc;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return UV_ENOMEM;
    s->fn = fn;
    s->arg = arg;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
    if (rc != 0) {
        snprintf(errbuf, errlen, "listen on %s: %s", addr, uv_strerror(rc));
        s->stopping = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return rc;
    }
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *out = s;
    return 0;
}

int httpd_port(const struct httpd *h)
{
    return h->port;
}

void httpd_stop(struct httpd *h)
{
    if (h == NULL)
        return;
    h->stopping = true;
    while (h->conns != NULL)
        conn_close(h->conns);
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
}
