/* Unit tests for the libcurl transport against the loopback test server:
 * keep-alive reuse, timeouts, resets, response size limits, headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/http.h"
#include "support/test_server.h"

/* What the handler saw last, and how it answers. */
struct echo {
    char method[16];
    char target[4096];
    char content_type[64];
    char content_length[32];
    int had_expect;
    int had_accept;
    char custom[64];
    char body[256];
    size_t body_len;
    /* answer */
    int status;
    long delay_ms;
    int reset;
    size_t answer_len; /* body of this many 'x' bytes */
    int chunked;       /* send the answer chunked (no Content-Length) */
};

static void echo_handler(const struct test_request *req, struct test_response *resp, void *arg)
{
    struct echo *e = arg;
    const char *v;

    snprintf(e->method, sizeof(e->method), "%s", req->method);
    snprintf(e->target, sizeof(e->target), "%s", req->target);
    v = test_request_header(req, "content-type");
    snprintf(e->content_type, sizeof(e->content_type), "%s", v ? v : "");
    v = test_request_header(req, "content-length");
    snprintf(e->content_length, sizeof(e->content_length), "%s", v ? v : "");
    e->had_expect = test_request_header(req, "expect") != NULL;
    e->had_accept = test_request_header(req, "accept") != NULL;
    v = test_request_header(req, "x-custom");
    snprintf(e->custom, sizeof(e->custom), "%s", v ? v : "");
    e->body_len = req->body_len < sizeof(e->body) - 1 ? req->body_len : sizeof(e->body) - 1;
    memcpy(e->body, req->body, e->body_len);
    e->body[e->body_len] = '\0';

    resp->status = e->status ? e->status : 200;
    resp->delay_ms = e->delay_ms;
    resp->reset = e->reset != 0;
    test_response_header(resp, "X-Amzn-RequestId", "req-%u", req->connection_seq);
    test_response_header(resp, "Content-Type", "text/xml");
    if (e->answer_len > 0) {
        char *b = malloc(e->answer_len + 64);
        size_t off = 0;

        assert_non_null(b);
        if (e->chunked) {
            off = (size_t)sprintf(b, "%zx\r\n", e->answer_len);
            test_response_header(resp, "Transfer-Encoding", "chunked");
        }
        memset(b + off, 'x', e->answer_len);
        off += e->answer_len;
        if (e->chunked)
            off += (size_t)sprintf(b + off, "\r\n0\r\n\r\n");
        test_response_body(resp, b, off);
        free(b);
    } else {
        test_response_body_str(resp, "<ok/>");
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void get(struct aws_http *http, const char *url, long timeout_ms, size_t max,
                struct aws_http_response *resp, struct aws_error *err, int *rc)
{
    struct aws_http_request req = {
        .method = "GET", .url = url, .timeout_ms = timeout_ms, .max_response_bytes = max};
    *rc = aws_http_perform(http, &req, resp, err);
}

static void test_keepalive_reuses_one_connection(void **state)
{
    struct echo e = {0};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_stats st;
    char url[128];
    (void)state;

    assert_non_null(srv);
    assert_non_null(http);
    snprintf(url, sizeof(url), "%s/path?x=1", test_server_url(srv));
    for (int i = 0; i < 20; i++) {
        struct aws_http_response resp;
        struct aws_error err;
        int rc;

        get(http, url, 0, 0, &resp, &err, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(resp.status, 200);
        assert_int_equal(resp.body_len, 5);
        assert_string_equal((char *)resp.body, "<ok/>");
        aws_http_response_clear(&resp);
    }
    assert_string_equal(e.target, "/path?x=1");
    assert_int_equal(test_server_requests(srv), 20);
    assert_int_equal(test_server_connections(srv), 1);
    aws_http_get_stats(http, &st);
    assert_int_equal(st.requests, 20);
    assert_int_equal(st.connections_opened, 1);
    aws_http_free(http);
    test_server_stop(srv);
}

static void test_headers_lower_cased_and_body_sent(void **state)
{
    struct echo e = {.status = 400};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_header hdrs[] = {{"X-Custom", "v1"},
                                     {"Content-Type", "application/x-amz-json-1.1"}};
    struct aws_http_request req = {.method = "POST",
                                   .headers = hdrs,
                                   .n_headers = 2,
                                   .body = (const unsigned char *)"{\"a\":1}",
                                   .body_len = 7};
    struct aws_http_response resp;
    struct aws_error err;
    (void)state;

    assert_non_null(srv);
    req.url = test_server_url(srv);
    assert_int_equal(aws_http_perform(http, &req, &resp, &err), 0);
    assert_int_equal(resp.status, 400); /* any status is a response, not an error */
    assert_string_equal(e.method, "POST");
    assert_string_equal(e.body, "{\"a\":1}");
    assert_string_equal(e.custom, "v1");
    assert_string_equal(e.content_type, "application/x-amz-json-1.1");
    assert_string_equal(e.content_length, "7");
    assert_false(e.had_expect);
    assert_false(e.had_accept);
    for (size_t i = 0; i < resp.n_headers; i++)
        for (const char *p = resp.headers[i].name; *p; p++)
            assert_false(*p >= 'A' && *p <= 'Z');
    assert_string_equal(aws_http_response_header(&resp, "x-amzn-requestid"), "req-1");
    assert_string_equal(aws_http_response_header(&resp, "X-AMZN-REQUESTID"), "req-1");
    assert_null(aws_http_response_header(&resp, "x-missing"));
    aws_http_response_clear(&resp);
    aws_http_free(http);
    test_server_stop(srv);
}

static void test_put_without_body_and_no_default_content_type(void **state)
{
    struct echo e = {0};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_request req = {.method = "PUT"};
    struct aws_http_response resp;
    struct aws_error err;
    (void)state;

    req.url = test_server_url(srv);
    assert_int_equal(aws_http_perform(http, &req, &resp, &err), 0);
    assert_string_equal(e.method, "PUT");
    assert_string_equal(e.content_length, "0");
    assert_string_equal(e.content_type, "");
    aws_http_response_clear(&resp);

    req.method = "DELETE";
    assert_int_equal(aws_http_perform(http, &req, &resp, &err), 0);
    assert_string_equal(e.method, "DELETE");
    aws_http_response_clear(&resp);

    req.method = "HEAD";
    assert_int_equal(aws_http_perform(http, &req, &resp, &err), 0);
    assert_string_equal(e.method, "HEAD");
    assert_int_equal(resp.body_len, 0);
    assert_non_null(resp.body);
    aws_http_response_clear(&resp);
    aws_http_free(http);
    test_server_stop(srv);
}

static void test_slow_answer_times_out(void **state)
{
    struct echo e = {.delay_ms = 3000};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_response resp;
    struct aws_error err;
    double t0;
    int rc;
    (void)state;

    t0 = now_s();
    get(http, test_server_url(srv), 200, 0, &resp, &err, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, AWS_ERR_TIMEOUT);
    assert_true(err.retryable);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    assert_true(now_s() - t0 < 2.0);
    aws_http_free(http);
    test_server_stop(srv);
}

static void test_reset_connection_is_transport_error(void **state)
{
    struct echo e = {.reset = 1};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_response resp;
    struct aws_error err;
    int rc;
    (void)state;

    get(http, test_server_url(srv), 0, 0, &resp, &err, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, AWS_ERR_TRANSPORT);
    assert_true(err.retryable);
    /* The transport recovers on the next request. */
    test_server_lock(srv);
    e.reset = 0;
    test_server_unlock(srv);
    get(http, test_server_url(srv), 0, 0, &resp, &err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(resp.status, 200);
    aws_http_response_clear(&resp);
    aws_http_free(http);
    test_server_stop(srv);
}

static void test_connection_refused(void **state)
{
    struct echo e = {0};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_response resp;
    struct aws_error err;
    char url[64];
    int rc;
    (void)state;

    snprintf(url, sizeof(url), "%s/", test_server_url(srv));
    test_server_stop(srv); /* nothing listens on the port any more */
    get(http, url, 0, 0, &resp, &err, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, AWS_ERR_TRANSPORT);
    assert_true(err.retryable);
    assert_int_equal(err.http_status, 0);
    aws_http_free(http);
}

static void test_max_response_size(void **state)
{
    struct echo e = {.answer_len = 1000};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_response resp;
    struct aws_error err;
    int rc;
    (void)state;

    /* Exactly at the limit: accepted. */
    get(http, test_server_url(srv), 0, 1000, &resp, &err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(resp.body_len, 1000);
    aws_http_response_clear(&resp);
    /* One byte over, announced by Content-Length. */
    test_server_lock(srv);
    e.answer_len = 1001;
    test_server_unlock(srv);
    get(http, test_server_url(srv), 0, 1000, &resp, &err, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, AWS_ERR_TOO_LARGE);
    assert_false(err.retryable);
    assert_null(resp.body);
    /* Over, without Content-Length (chunked): stopped while receiving. */
    test_server_lock(srv);
    e.answer_len = 200000;
    e.chunked = 1;
    test_server_unlock(srv);
    get(http, test_server_url(srv), 0, 1000, &resp, &err, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, AWS_ERR_TOO_LARGE);
    /* The transport's default applies when the request sets none. */
    aws_http_free(http);
    {
        struct aws_http_options o = {.max_response_bytes = 100};
        http = aws_http_new(&o);
    }
    test_server_lock(srv);
    e.chunked = 0;
    e.answer_len = 101;
    test_server_unlock(srv);
    get(http, test_server_url(srv), 0, 0, &resp, &err, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, AWS_ERR_TOO_LARGE);
    /* A HEAD answer only announces the size (S3 HeadObject of a large
     * object): accepted whatever it says. */
    {
        struct aws_http_request head = {.method = "HEAD", .url = test_server_url(srv)};

        test_server_lock(srv);
        e.answer_len = 100000;
        test_server_unlock(srv);
        rc = aws_http_perform(http, &head, &resp, &err);
        assert_int_equal(rc, 0);
        assert_int_equal(resp.status, 200);
        assert_int_equal(resp.body_len, 0);
        aws_http_response_clear(&resp);
    }
    aws_http_free(http);
    test_server_stop(srv);
}

static void test_rejects_header_injection_and_bad_scheme(void **state)
{
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_header bad[] = {{"X-A", "v\r\nX-Injected: 1"}};
    struct aws_http_request req = {
        .method = "GET", .url = "http://127.0.0.1:1/", .headers = bad, .n_headers = 1};
    struct aws_http_response resp;
    struct aws_error err;
    (void)state;

    assert_int_equal(aws_http_perform(http, &req, &resp, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    req.n_headers = 0;
    req.url = "file:///etc/passwd";
    assert_int_equal(aws_http_perform(http, &req, &resp, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    aws_http_free(http);
}

struct worker_arg {
    struct aws_http *http;
    const char *url;
    int failures;
};

static void *worker(void *p)
{
    struct worker_arg *w = p;

    for (int i = 0; i < 50; i++) {
        struct aws_http_response resp;
        struct aws_error err;
        int rc;

        get(w->http, w->url, 0, 0, &resp, &err, &rc);
        if (rc != 0 || resp.status != 200)
            w->failures++;
        aws_http_response_clear(&resp);
    }
    return NULL;
}

static void test_threads_share_transport(void **state)
{
    struct echo e = {0};
    struct test_server *srv = test_server_start(echo_handler, &e);
    struct aws_http *http = aws_http_new(NULL);
    struct worker_arg w[4];
    pthread_t t[4];
    struct aws_http_stats st;
    (void)state;

    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker_arg){.http = http, .url = test_server_url(srv)};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    aws_http_get_stats(http, &st);
    assert_int_equal(st.requests, 200);
    assert_true(st.connections_opened <= 4);
    assert_int_equal(test_server_connections(srv), st.connections_opened);
    aws_http_free(http);
    test_server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_reuses_one_connection),
        cmocka_unit_test(test_headers_lower_cased_and_body_sent),
        cmocka_unit_test(test_put_without_body_and_no_default_content_type),
        cmocka_unit_test(test_slow_answer_times_out),
        cmocka_unit_test(test_reset_connection_is_transport_error),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_max_response_size),
        cmocka_unit_test(test_rejects_header_injection_and_bad_scheme),
        cmocka_unit_test(test_threads_share_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
