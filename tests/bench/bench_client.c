/* Benchmark of the AWS client against a loopback responder: 1,000
 * DescribeServices calls from 1 and from 4 threads; prints calls/s,
 * connections opened and the process RSS. Figures only, no assertions. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"

#define CALLS     1000
#define MAX_CONNS 32

/* ---- a tiny keep-alive HTTP/1.1 responder (one thread per connection) --- */

static const char answer_body[] =
    "{\"services\":[{\"serviceName\":\"web-a\",\"status\":\"ACTIVE\",\"desiredCount\":2,"
    "\"runningCount\":2}],\"failures\":[]}";

struct responder {
    int listen_fd;
    int wake[2];
    int port;
    pthread_t accept_thread;
    pthread_t conn_threads[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    int n_conns;
    pthread_mutex_t lock;
};

struct conn_arg {
    struct responder *r;
    int fd;
};

/* End of the request head ("\r\n\r\n") in buf[0..len), or NULL. */
static char *head_end(char *buf, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return buf + i;
    return NULL;
}

/* Content-Length of a NUL-terminated request head, 0 when absent. */
static size_t content_length(const char *head)
{
    for (const char *p = head; p != NULL; p = strchr(p, '\n')) {
        p++;
        if (strncasecmp(p, "content-length:", 15) == 0)
            return strtoul(p + 15, NULL, 10);
    }
    return 0;
}

/* Serves requests until the peer closes or the responder stops. */
static void *conn_main(void *p)
{
    struct conn_arg *a = p;
    char buf[65536], resp[512];
    size_t len = 0;
    int resp_len = snprintf(resp, sizeof(resp),
                            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                            "x-amzn-RequestId: bench\r\nContent-Length: %zu\r\n\r\n%s",
                            sizeof(answer_body) - 1, answer_body);

    for (;;) {
        struct pollfd pf[2] = {{.fd = a->fd, .events = POLLIN},
                               {.fd = a->r->wake[0], .events = POLLIN}};
        char *end;
        size_t head, clen = 0;
        ssize_t n;

        end = head_end(buf, len);
        if (end != NULL) {
            head = (size_t)(end - buf) + 4;
            buf[head - 1] = '\0';
            clen = content_length(buf);
            if (clen > sizeof(buf) - head)
                break;
            if (len >= head + clen) {
                if (send(a->fd, resp, (size_t)resp_len, MSG_NOSIGNAL) != resp_len)
                    break;
                memmove(buf, buf + head + clen, len - head - clen);
                len -= head + clen;
                continue;
            }
            buf[head - 1] = '\n';
        }
        if (len == sizeof(buf))
            break;
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN)
            break;
        n = recv(a->fd, buf + len, sizeof(buf) - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(a->fd);
    free(a);
    return NULL;
}

static void *accept_main(void *p)
{
    struct responder *r = p;

    for (;;) {
        struct pollfd pf[2] = {{.fd = r->listen_fd, .events = POLLIN},
                               {.fd = r->wake[0], .events = POLLIN}};
        struct conn_arg *a;
        int fd;

        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN)
            break;
        fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&r->lock);
        a = r->n_conns < MAX_CONNS ? malloc(sizeof(*a)) : NULL;
        if (a != NULL) {
            a->r = r;
            a->fd = fd;
            if (pthread_create(&r->conn_threads[r->n_conns], NULL, conn_main, a) == 0) {
                r->n_conns++;
                fd = -1;
            } else {
                free(a);
            }
        }
        pthread_mutex_unlock(&r->lock);
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

static int responder_start(struct responder *r)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t alen = sizeof(addr);

    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    if (pipe(r->wake) != 0)
        return -1;
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(r->listen_fd, 64) != 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&addr, &alen) != 0)
        return -1;
    r->port = ntohs(addr.sin_port);
    return pthread_create(&r->accept_thread, NULL, accept_main, r) == 0 ? 0 : -1;
}

static void responder_stop(struct responder *r)
{
    if (write(r->wake[1], "x", 1) != 1)
        perror("write");
    pthread_join(r->accept_thread, NULL);
    for (int i = 0; i < r->n_conns; i++)
        pthread_join(r->conn_threads[i], NULL);
    close(r->listen_fd);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->lock);
}

/* ---- the benchmark ------------------------------------------------------ */

static char endpoint_url[64];

static const char *bench_env_get(void *arg, const char *name)
{
    (void)arg;
    if (strcmp(name, "AWS_ENDPOINT_URL") == 0)
        return endpoint_url;
    return NULL;
}

static int64_t bench_env_now(void *arg)
{
    (void)arg;
    return (int64_t)time(NULL);
}

static const struct aws_env bench_env = {.get = bench_env_get, .now = bench_env_now};

struct worker {
    struct aws_client *client;
    int calls;
    int failures;
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    json_t *in = json_pack("{s:s,s:[s]}", "cluster", "bench", "services", "web-a");

    for (int i = 0; i < w->calls; i++) {
        struct aws_error err;
        json_t *out = NULL;

        if (aws_call(w->client, "ecs", "DescribeServices", in, &out, &err) != 0)
            w->failures++;
        json_decref(out);
    }
    json_decref(in);
    return NULL;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(int threads)
{
    struct aws_credentials creds;
    struct aws_credentials_provider *prov;
    struct aws_client_config cfg;
    struct aws_client *client = NULL;
    struct aws_http *http;
    struct aws_http_stats st;
    struct responder r;
    struct worker w[8];
    pthread_t t[8];
    struct aws_error err;
    int failures = 0;
    double t0, dt;

    if (responder_start(&r) != 0) {
        fprintf(stderr, "bench_client: cannot start the loopback responder\n");
        return -1;
    }
    snprintf(endpoint_url, sizeof(endpoint_url), "http://127.0.0.1:%d", r.port);
    memset(&creds, 0, sizeof(creds));
    snprintf(creds.access_key_id, sizeof(creds.access_key_id), "AKIDBENCH");
    snprintf(creds.secret_access_key, sizeof(creds.secret_access_key), "bench-secret");
    prov = aws_credentials_provider_static_new(&creds);
    aws_credentials_clear(&creds);
    http = aws_http_new(NULL);
    cfg =
        (struct aws_client_config){.env = &bench_env,
                                   .region = "eu-central-1",
                                   .credentials = prov,
                                   .http = http,
                                   .rate_per_second = 1e9, /* measure the client, not the limiter */
                                   .rate_burst = 1e9};
    if (prov == NULL || http == NULL || aws_client_new(&cfg, &client, &err) != 0) {
        fprintf(stderr, "bench_client: setup failed: %s\n", err.message);
        responder_stop(&r);
        return -1;
    }
    t0 = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.client = client, .calls = CALLS / threads};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    dt = now_s() - t0;
    aws_http_get_stats(http, &st);
    printf("threads=%d calls=%d failures=%d seconds=%.3f calls_per_s=%.0f "
           "connections_opened=%lu server_connections=%d rss_kib=%ld\n",
           threads, CALLS, failures, dt, CALLS / dt, st.connections_opened, r.n_conns, rss_kib());
    aws_client_free(client);
    aws_http_free(http);
    aws_credentials_provider_free(prov);
    responder_stop(&r);
    return 0;
}

int main(void)
{
    if (run(1) != 0 || run(4) != 0)
        return 1;
    return 0;
}
