/* Unit tests for the API's HTTP server: routing to the handler, bodies,
 * limits, malformed requests, and a clean shutdown of the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "controller/httpd.h"

struct client_job {
    int port;
    const char *request;
    size_t request_len;
    char response[4096];
    uv_async_t *done;
};

static void handler(const struct httpd_request *req, struct httpd_response *resp, void *arg)
{
    (void)arg;
    if (strcmp(req->path, "/echo") == 0) {
        resp->content_type = "text/plain";
        aws_buf_printf(&resp->body, "%s %s q=%s body=%.*s", req->method, req->path, req->query,
                       (int)req->body_len, req->body);
        return;
    }
    httpd_json_error(resp, 404, "no such path");
}

static void *client_main(void *p)
{
    struct client_job *job = p;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)job->port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t got = 0;
    ssize_t n;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        size_t off = 0;
        while (off < job->request_len) {
            n = write(fd, job->request + off, job->request_len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        while (got < sizeof(job->response) - 1 &&
               (n = read(fd, job->response + got, sizeof(job->response) - 1 - got)) > 0)
            got += (size_t)n;
    }
    job->response[got] = '\0';
    close(fd);
    uv_async_send(job->done);
    return NULL;
}

static void on_done(uv_async_t *async)
{
    httpd_stop(async->data);
    uv_close((uv_handle_t *)async, NULL);
}

/* Starts a server, sends `request` from a thread, returns the raw response. */
static void exchange(const char *request, size_t len, char *out, size_t out_len)
{
    uv_loop_t loop;
    struct httpd *h;
    uv_async_t done;
    struct client_job job = {0};
    pthread_t th;
    char err[128];

    uv_loop_init(&loop);
    assert_int_equal(httpd_start(&loop, "127.0.0.1:0", handler, NULL, &h, err, sizeof(err)), 0);
    uv_async_init(&loop, &done, on_done);
    done.data = h;
    job.port = httpd_port(h);
    job.request = request;
    job.request_len = len;
    job.done = &done;
    pthread_create(&th, NULL, client_main, &job);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&loop), 0); /* nothing leaked */
    snprintf(out, out_len, "%s", job.response);
}

static void test_get_and_post_reach_the_handler(void **state)
{
    char resp[4096];
    const char *get = "GET /echo?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *post = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    (void)state;

    exchange(get, strlen(get), resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(resp, "Content-Length: 21\r\n"));
    assert_non_null(strstr(resp, "\r\n\r\nGET /echo q=x=1 body="));
    exchange(post, strlen(post), resp, sizeof(resp));
    assert_non_null(strstr(resp, "POST /echo q= body=hello"));
}

static void test_unknown_path_is_json_404(void **state)
{
    char resp[4096];
    const char *get = "GET /nope HTTP/1.1\r\n\r\n";
    (void)state;

    exchange(get, strlen(get), resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(resp, "Content-Type: application/json"));
    assert_non_null(strstr(resp, "{\"error\":{\"code\":404,\"message\":\"no such path\"}}"));
}

static void test_malformed_and_oversized_requests(void **state)
{
    char resp[4096];
    const char *bad = "garbage\r\n\r\n";
    const char *big = "POST /echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n";
    char *huge;
    (void)state;

    exchange(bad, strlen(bad), resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 400 "));
    exchange(big, strlen(big), resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 413 "));
    /* Headers that never end within the limit. */
    huge = malloc(HTTPD_REQUEST_MAX + 10);
    memcpy(huge, "GET / HTTP/1.1\r\nX: ", 19);
    memset(huge + 19, 'a', HTTPD_REQUEST_MAX - 9);
    exchange(huge, HTTPD_REQUEST_MAX + 10, resp, sizeof(resp));
    assert_non_null(strstr(resp, "HTTP/1.1 413 "));
    free(huge);
}

static void test_parse_addr(void **state)
{
    struct sockaddr_storage sa;
    (void)state;

    assert_int_equal(httpd_parse_addr("127.0.0.1:9464", &sa), 0);
    assert_int_equal(sa.ss_family, AF_INET);
    assert_int_equal(httpd_parse_addr("[::1]:9464", &sa), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_true(httpd_parse_addr("localhost", &sa) < 0);
    assert_true(httpd_parse_addr("127.0.0.1:99999", &sa) < 0);
    assert_true(httpd_parse_addr("127.0.0.1:", &sa) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post_reach_the_handler),
        cmocka_unit_test(test_unknown_path_is_json_404),
        cmocka_unit_test(test_malformed_and_oversized_requests),
        cmocka_unit_test(test_parse_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
