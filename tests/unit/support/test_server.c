/* Loopback HTTP/1.1 test server (see test_server.h): an accept thread and
 * one thread per connection; handler calls serialized by a mutex. */
#include "test_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

struct conn_slot {
    struct test_server *srv;
    int fd;
    unsigned seq;
    pthread_t thread;
    enum slot_state state; /* guarded by srv->lock */
};

struct test_server {
    int listen_fd;
    int wake[2]; /* written once at stop; never read, so it stays readable */
    int port;
    char url[64];
    test_handler fn;
    void *arg;
    pthread_t accept_thread;
    pthread_mutex_t lock;         /* slots and counters */
    pthread_mutex_t handler_lock; /* one handler call at a time */
    unsigned connections;
    unsigned requests;
    struct conn_slot slots[TEST_SERVER_MAX_CONNECTIONS];
};

/* Bytes read from a connection and not yet consumed. */
struct rbuf {
    unsigned char *data;
    size_t len;
    size_t cap;
};

#define RBUF_MAX (TEST_SERVER_MAX_HEAD_BYTES + TEST_SERVER_MAX_BODY_BYTES + 65536u)

/* Waits until fd is readable. Returns 1 when readable, 0 when the server is
 * stopping (or timeout_ms passed), -1 on error. */
static int wait_readable(struct test_server *srv, int fd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = srv->wake[0], .events = POLLIN}};
    int n;

    for (;;) {
        n = poll(p, 2, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0 || (p[1].revents & POLLIN))
            return 0;
        return 1;
    }
}

/* Reads more bytes into rb. Returns 1 when some arrived, 0 on EOF or stop,
 * -1 on error or when the buffer bound is reached. */
static int rbuf_fill(struct test_server *srv, int fd, struct rbuf *rb)
{
    ssize_t n;
    int r;

    if (rb->len == rb->cap) {
        size_t cap = rb->cap ? rb->cap * 2 : 16384;
        unsigned char *d;

        if (cap > RBUF_MAX)
            cap = RBUF_MAX;
        if (cap <= rb->len)
            return -1;
        d = realloc(rb->data, cap + 1);
        if (d == NULL)
            return -1;
        rb->data = d;
        rb->cap = cap;
    }
    r = wait_readable(srv, fd, -1);
    if (r <= 0)
        return r;
    do
        n = recv(fd, rb->data + rb->len, rb->cap - rb->len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    rb->len += (size_t)n;
    return 1;
}

static void rbuf_consume(struct rbuf *rb, size_t n)
{
    memmove(rb->data, rb->data + n, rb->len - n);
    rb->len -= n;
}

/* Index just past the first "\r\n" at or after `from`, or 0 if none yet. */
static size_t find_crlf(const struct rbuf *rb, size_t from)
{
    for (size_t i = from; i + 1 < rb->len; i++)
        if (rb->data[i] == '\r' && rb->data[i + 1] == '\n')
            return i + 2;
    return 0;
}

/* Index just past "\r\n\r\n", or 0 if the head is not complete yet. */
static size_t find_head_end(const struct rbuf *rb)
{
    for (size_t i = 0; i + 3 < rb->len; i++)
        if (memcmp(rb->data + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

static int send_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

const char *test_request_header(const struct test_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->header_names[i], name) == 0)
            return req->header_values[i];
    return NULL;
}

int test_response_header(struct test_response *resp, const char *name, const char *fmt, ...)
{
    size_t used = strlen(resp->headers);
    size_t room = sizeof(resp->headers) - used;
    char value[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(value))
        return -1;
    n = snprintf(resp->headers + used, room, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= room) {
        resp->headers[used] = '\0';
        return -1;
    }
    return 0;
}

int test_response_body(struct test_response *resp, const void *data, size_t len)
{
    unsigned char *b = malloc(len + 1);

    if (b == NULL)
        return -1;
    if (len > 0)
        memcpy(b, data, len);
    b[len] = '\0';
    free(resp->body);
    resp->body = b;
    resp->body_len = len;
    return 0;
}

int test_response_body_str(struct test_response *resp, const char *s)
{
    return test_response_body(resp, s, strlen(s));
}

/* Parses the head (request line and headers, NUL-terminated in place) into
 * req. Returns 0 or -1 when malformed. */
static int parse_head(char *head, struct test_request *req)
{
    char *line, *save = NULL, *sp1, *sp2;

    line = strtok_r(head, "\r\n", &save);
    if (line == NULL)
        return -1;
    sp1 = strchr(line, ' ');
    if (sp1 == NULL)
        return -1;
    sp2 = strchr(sp1 + 1, ' ');
    if (sp2 == NULL || (size_t)(sp1 - line) >= sizeof(req->method) ||
        (size_t)(sp2 - sp1 - 1) >= sizeof(req->target))
        return -1;
    memcpy(req->method, line, (size_t)(sp1 - line));
    req->method[sp1 - line] = '\0';
    memcpy(req->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    req->target[sp2 - sp1 - 1] = '\0';

    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':'), *v, *end;

        if (colon == NULL)
            return -1;
        if (req->n_headers == TEST_SERVER_MAX_HEADERS)
            return -1;
        *colon = '\0';
        for (char *p = line; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        req->header_names[req->n_headers] = line;
        req->header_values[req->n_headers] = v;
        req->n_headers++;
    }
    return 0;
}

/* Reads a chunked body starting at rb->data[*pos]; appends the decoded bytes
 * to *body. Advances *pos past the final CRLF. Returns 0, or -1. */
static int read_chunked(struct test_server *srv, int fd, struct rbuf *rb, size_t *pos,
                        unsigned char **body, size_t *body_len)
{
    for (;;) {
        size_t eol, size;
        char *end;
        unsigned char *nb;

        while ((eol = find_crlf(rb, *pos)) == 0)
            if (rbuf_fill(srv, fd, rb) <= 0)
                return -1;
        rb->data[eol - 2] = '\0';
        errno = 0;
        size = strtoul((char *)rb->data + *pos, &end, 16);
        if (errno != 0 || end == (char *)rb->data + *pos)
            return -1;
        *pos = eol;
        if (size == 0) {
            /* Trailers until an empty line. */
            for (;;) {
                while ((eol = find_crlf(rb, *pos)) == 0)
                    if (rbuf_fill(srv, fd, rb) <= 0)
                        return -1;
                if (eol == *pos + 2) {
                    *pos = eol;
                    return 0;
                }
                *pos = eol;
            }
        }
        if (size > TEST_SERVER_MAX_BODY_BYTES - *body_len)
            return -1;
        while (rb->len < *pos + size + 2)
            if (rbuf_fill(srv, fd, rb) <= 0)
                return -1;
        nb = realloc(*body, *body_len + size + 1);
        if (nb == NULL)
            return -1;
        *body = nb;
        memcpy(*body + *body_len, rb->data + *pos, size);
        *body_len += size;
        (*body)[*body_len] = '\0';
        *pos += size + 2;
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

static bool has_header_line(const char *block, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = block; *p;) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return true;
        p = strstr(p, "\r\n");
        if (p == NULL)
            break;
        p += 2;
    }
    return false;
}

/* Sends the response. Returns 0, or -1 when the peer is gone. */
static int send_response(int fd, const struct test_request *req, const struct test_response *resp)
{
    char head[TEST_SERVER_MAX_RESP_HEADERS + 256];
    int n;

    n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s", resp->status,
                 reason_phrase(resp->status), resp->headers);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    /* A handler that sets Transfer-Encoding frames the body itself. */
    if (!has_header_line(resp->headers, "content-length") &&
        !has_header_line(resp->headers, "transfer-encoding"))
        n +=
            snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", resp->body_len);
    if (resp->close_after && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Connection: close\r\n");
    if ((size_t)n + 2 >= sizeof(head))
        return -1;
    memcpy(head + n, "\r\n", 3);
    n += 2;
    if (send_all(fd, head, (size_t)n) != 0)
        return -1;
    if (strcmp(req->method, "HEAD") != 0 && resp->body_len > 0)
        return send_all(fd, resp->body, resp->body_len);
    return 0;
}

static void reset_connection(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* Serves requests on one connection until it closes or the server stops. */
static void *conn_main(void *p)
{
    struct conn_slot *slot = p;
    struct test_server *srv = slot->srv;
    int fd = slot->fd;
    struct rbuf rb = {0};
    bool reset = false;

    for (;;) {
        struct test_request req;
        struct test_response resp;
        size_t head_end, pos;
        const char *v;
        char *head = NULL;
        bool keep = true;

        while ((head_end = find_head_end(&rb)) == 0) {
            if (rb.len > TEST_SERVER_MAX_HEAD_BYTES || rbuf_fill(srv, fd, &rb) <= 0)
                goto out;
        }
        memset(&req, 0, sizeof(req));
        memset(&resp, 0, sizeof(resp));
        req.connection_seq = slot->seq;
        head = malloc(head_end + 1);
        if (head == NULL)
            goto out;
        memcpy(head, rb.data, head_end);
        head[head_end] = '\0';
        if (parse_head(head, &req) != 0) {
            free(head);
            goto out;
        }
        pos = head_end;
        v = test_request_header(&req, "expect");
        if (v != NULL && strcasecmp(v, "100-continue") == 0 &&
            send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
            free(head);
            goto out;
        }
        v = test_request_header(&req, "transfer-encoding");
        if (v != NULL && strcasecmp(v, "chunked") == 0) {
            if (read_chunked(srv, fd, &rb, &pos, &req.body, &req.body_len) != 0) {
                free(req.body);
                free(head);
                goto out;
            }
        } else {
            size_t clen = 0;

            v = test_request_header(&req, "content-length");
            if (v != NULL) {
                char *end;
                errno = 0;
                clen = strtoul(v, &end, 10);
                if (errno != 0 || *end != '\0' || clen > TEST_SERVER_MAX_BODY_BYTES) {
                    free(head);
                    goto out;
                }
            }
            while (rb.len < pos + clen) {
                if (rbuf_fill(srv, fd, &rb) <= 0) {
                    free(head);
                    goto out;
                }
            }
            req.body = malloc(clen + 1);
            if (req.body == NULL) {
                free(head);
                goto out;
            }
            memcpy(req.body, rb.data + pos, clen);
            req.body[clen] = '\0';
            req.body_len = clen;
            pos += clen;
        }
        rbuf_consume(&rb, pos);
        v = test_request_header(&req, "connection");
        if (v != NULL && strcasecmp(v, "close") == 0)
            keep = false;

        resp.status = 200;
        pthread_mutex_lock(&srv->handler_lock);
        srv->fn(&req, &resp, srv->arg);
        pthread_mutex_unlock(&srv->handler_lock);
        pthread_mutex_lock(&srv->lock);
        srv->requests++;
        pthread_mutex_unlock(&srv->lock);

        if (resp.delay_ms > 0) {
            long d =
                resp.delay_ms > TEST_SERVER_MAX_DELAY_MS ? TEST_SERVER_MAX_DELAY_MS : resp.delay_ms;
            struct pollfd pw = {.fd = srv->wake[0], .events = POLLIN};
            (void)poll(&pw, 1, (int)d);
        }
        if (resp.reset) {
            reset = true;
        } else if (send_response(fd, &req, &resp) != 0 || resp.close_after) {
            keep = false;
        }
        free(resp.body);
        free(req.body);
        free(head);
        if (reset || !keep)
            goto out;
    }
out:
    if (reset)
        reset_connection(fd);
    else
        shutdown(fd, SHUT_WR);
    close(fd);
    free(rb.data);
    pthread_mutex_lock(&srv->lock);
    slot->state = SLOT_DONE;
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* Joins finished connection threads; returns a free slot or NULL. Called
 * with srv->lock held. */
static struct conn_slot *reap_and_find_slot(struct test_server *srv)
{
    struct conn_slot *free_slot = NULL;

    for (size_t i = 0; i < TEST_SERVER_MAX_CONNECTIONS; i++) {
        struct conn_slot *s = &srv->slots[i];
        if (s->state == SLOT_DONE) {
            pthread_join(s->thread, NULL);
            s->state = SLOT_FREE;
        }
        if (s->state == SLOT_FREE && free_slot == NULL)
            free_slot = s;
    }
    return free_slot;
}

static void *accept_main(void *p)
{
    struct test_server *srv = p;

    for (;;) {
        struct conn_slot *slot;
        struct timeval tv = {.tv_sec = 10};
        int one = 1, fd, r;

        r = wait_readable(srv, srv->listen_fd, -1);
        if (r <= 0)
            break;
        fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        pthread_mutex_lock(&srv->lock);
        srv->connections++;
        slot = reap_and_find_slot(srv);
        if (slot != NULL) {
            slot->srv = srv;
            slot->fd = fd;
            slot->seq = srv->connections;
            slot->state = SLOT_RUNNING;
            if (pthread_create(&slot->thread, NULL, conn_main, slot) != 0) {
                slot->state = SLOT_FREE;
                slot = NULL;
            }
        }
        pthread_mutex_unlock(&srv->lock);
        if (slot == NULL)
            close(fd);
    }
    return NULL;
}

struct test_server *test_server_start(test_handler fn, void *arg)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t alen = sizeof(addr);
    struct test_server *srv;
    int one = 1;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->listen_fd = -1;
    srv->wake[0] = srv->wake[1] = -1;
    srv->fn = fn;
    srv->arg = arg;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_mutex_init(&srv->handler_lock, NULL);
    if (pipe(srv->wake) != 0)
        goto fail;
    srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (srv->listen_fd < 0)
        goto fail;
    setsockopt(srv->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(srv->listen_fd, 64) != 0 ||
        getsockname(srv->listen_fd, (struct sockaddr *)&addr, &alen) != 0)
        goto fail;
    srv->port = ntohs(addr.sin_port);
    snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:%d", srv->port);
    if (pthread_create(&srv->accept_thread, NULL, accept_main, srv) != 0)
        goto fail;
    return srv;
fail:
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->wake[0] >= 0) {
        close(srv->wake[0]);
        close(srv->wake[1]);
    }
    pthread_mutex_destroy(&srv->lock);
    pthread_mutex_destroy(&srv->handler_lock);
    free(srv);
    return NULL;
}

const char *test_server_url(const struct test_server *s)
{
    return s->url;
}

int test_server_port(const struct test_server *s)
{
    return s->port;
}

unsigned test_server_connections(const struct test_server *s)
{
    struct test_server *m = (struct test_server *)s; /* the lock is not part of the value */
    unsigned n;

    pthread_mutex_lock(&m->lock);
    n = m->connections;
    pthread_mutex_unlock(&m->lock);
    return n;
}

unsigned test_server_requests(const struct test_server *s)
{
    struct test_server *m = (struct test_server *)s;
    unsigned n;

    pthread_mutex_lock(&m->lock);
    n = m->requests;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void test_server_lock(struct test_server *s)
{
    pthread_mutex_lock(&s->handler_lock);
}

void test_server_unlock(struct test_server *s)
{
    pthread_mutex_unlock(&s->handler_lock);
}

void test_server_stop(struct test_server *srv)
{
    ssize_t w;

    if (srv == NULL)
        return;
    do
        w = write(srv->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(srv->accept_thread, NULL);
    /* Connection threads see the wake pipe and exit; join them all. */
    for (size_t i = 0; i < TEST_SERVER_MAX_CONNECTIONS; i++) {
        struct conn_slot *s = &srv->slots[i];
        pthread_mutex_lock(&srv->lock);
        enum slot_state st = s->state;
        pthread_mutex_unlock(&srv->lock);
        if (st != SLOT_FREE)
            pthread_join(s->thread, NULL);
    }
    close(srv->listen_fd);
    close(srv->wake[0]);
    close(srv->wake[1]);
    pthread_mutex_destroy(&srv->lock);
    pthread_mutex_destroy(&srv->handler_lock);
    free(srv);
}
