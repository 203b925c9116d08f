/* Unit tests for the AWS client against the loopback test server: retries
 * of throttling (Query and JSON), 5xx, resets and timeouts; no retry of
 * 400s; S3 errors inside a 200; signing, headers, S3 path-style, clock skew,
 * rate limiting and pagination. Sleeps are injected, so nothing waits for real backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "aws/sigv4.h"
#include "support/test_server.h"

#define FAKE_NOW     1700000000 /* 2023-11-14T22:13:20Z */
#define MAX_STEPS    16
#define MAX_RECORDS  200
#define MAX_REC_HDRS 40

struct step {
    int status;
    const char *body;
    const char *headers; /* extra "Name: v\r\n" lines */
    long delay_ms;
    int reset;
};

struct record {
    char method[16];
    char target[512];
    char *names[MAX_REC_HDRS];
    char *values[MAX_REC_HDRS];
    size_t n;
    char body[2048];
};

struct fixture {
    struct test_server *srv;
    struct aws_client *client;
    struct aws_credentials_provider *creds;
    /* script: step i answers request i; the last step repeats */
    struct step steps[MAX_STEPS];
    size_t n_steps;
    size_t served;
    int64_t skew_server_time; /* when set, reject x-amz-date far from it */
    struct record rec[MAX_RECORDS];
    size_t n_rec;
    /* env */
    const char *env_names[8];
    const char *env_values[8];
    size_t n_env;
    /* hooks */
    long sleeps[MAX_RECORDS];
    size_t n_sleeps;
    int64_t mono_ms;
    struct aws_call_record last_call;
    char last_code[128];
    int n_calls;
};

static const char *rec_header(const struct record *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

static void handler(const struct test_request *req, struct test_response *resp, void *arg)
{
    struct fixture *f = arg;
    const struct step *s;

    if (f->n_rec < MAX_RECORDS) {
        struct record *r = &f->rec[f->n_rec++];
        snprintf(r->method, sizeof(r->method), "%s", req->method);
        snprintf(r->target, sizeof(r->target), "%.500s", req->target);
        for (size_t i = 0; i < req->n_headers && r->n < MAX_REC_HDRS; i++) {
            r->names[r->n] = strdup(req->header_names[i]);
            r->values[r->n] = strdup(req->header_values[i]);
            r->n++;
        }
        snprintf(r->body, sizeof(r->body), "%.2000s", req->body ? (const char *)req->body : "");
    }
    if (f->skew_server_time != 0) {
        const char *d = test_request_header(req, "x-amz-date");
        char expect[17];

        sigv4_format_amz_date(f->skew_server_time, expect);
        if (d == NULL || strncmp(d, expect, 11) != 0) { /* same day and hour */
            resp->status = 403;
            test_response_header(resp, "Date", "Tue, 14 Nov 2023 23:13:20 GMT");
            test_response_header(resp, "Content-Type", "application/x-amz-json-1.1");
            test_response_body_str(resp, "{\"__type\":\"InvalidSignatureException\","
                                         "\"message\":\"Signature expired\"}");
            return;
        }
    }
    s = &f->steps[f->served < f->n_steps ? f->served : f->n_steps - 1];
    f->served++;
    resp->status = s->status;
    resp->delay_ms = s->delay_ms;
    resp->reset = s->reset != 0;
    test_response_header(resp, "x-amzn-RequestId", "req-%zu", f->served);
    if (s->headers != NULL)
        strncat(resp->headers, s->headers, sizeof(resp->headers) - strlen(resp->headers) - 1);
    if (s->body != NULL)
        test_response_body_str(resp, s->body);
}

static const char *env_get(void *arg, const char *name)
{
    struct fixture *f = arg;
    for (size_t i = 0; i < f->n_env; i++)
        if (strcmp(f->env_names[i], name) == 0)
            return f->env_values[i];
    return NULL;
}

static int64_t env_now(void *arg)
{
    (void)arg;
    return FAKE_NOW;
}

static void hook_sleep(void *arg, long ms)
{
    struct fixture *f = arg;
    if (f->n_sleeps < MAX_RECORDS)
        f->sleeps[f->n_sleeps++] = ms;
    f->mono_ms += ms;
}

static double hook_random(void *arg)
{
    (void)arg;
    return 0.5;
}

static int64_t hook_now_ms(void *arg)
{
    return ((struct fixture *)arg)->mono_ms;
}

static pthread_mutex_t on_call_lock = PTHREAD_MUTEX_INITIALIZER;

static void hook_on_call(void *arg, const struct aws_call_record *rec)
{
    struct fixture *f = arg;

    pthread_mutex_lock(&on_call_lock); /* calls may come from several threads */
    f->last_call = *rec;
    snprintf(f->last_code, sizeof(f->last_code), "%s", rec->error_code);
    f->n_calls++;
    pthread_mutex_unlock(&on_call_lock);
}

static struct aws_env fixture_env;

static void fixture_start(struct fixture *f, int max_attempts, long timeout_ms, double rate,
                          double burst)
{
    struct aws_credentials c;
    struct aws_client_config cfg;
    struct aws_error err;

    f->srv = test_server_start(handler, f);
    assert_non_null(f->srv);
    f->env_names[f->n_env] = "AWS_ENDPOINT_URL";
    f->env_values[f->n_env++] = test_server_url(f->srv);
    fixture_env = (struct aws_env){.get = env_get, .arg = f, .now = env_now};
    memset(&c, 0, sizeof(c));
    snprintf(c.access_key_id, sizeof(c.access_key_id), "AKIDEXAMPLE");
    snprintf(c.secret_access_key, sizeof(c.secret_access_key), "SECRETKEYNEVERONTHEWIRE");
    f->creds = aws_credentials_provider_static_new(&c);
    assert_non_null(f->creds);
    cfg = (struct aws_client_config){.env = &fixture_env,
                                     .region = "eu-central-1",
                                     .max_attempts = max_attempts,
                                     .timeout_ms = timeout_ms,
                                     .credentials = f->creds,
                                     .rate_per_second = rate,
                                     .rate_burst = burst,
                                     .sleep_ms = hook_sleep,
                                     .random = hook_random,
                                     .now_ms = hook_now_ms,
                                     .hook_arg = f,
                                     .on_call = hook_on_call,
                                     .on_call_arg = f};
    assert_int_equal(aws_client_new(&cfg, &f->client, &err), 0);
    assert_string_equal(aws_client_region(f->client), "eu-central-1");
}

static void fixture_stop(struct fixture *f)
{
    aws_client_free(f->client);
    aws_credentials_provider_free(f->creds);
    test_server_stop(f->srv);
    for (size_t i = 0; i < f->n_rec; i++)
        for (size_t k = 0; k < f->rec[i].n; k++) {
            free(f->rec[i].names[k]);
            free(f->rec[i].values[k]);
        }
    free(f);
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    return f;
}

static void add_step(struct fixture *f, int status, const char *body, const char *headers)
{
    assert_true(f->n_steps < MAX_STEPS);
    f->steps[f->n_steps++] = (struct step){.status = status, .body = body, .headers = headers};
}

/* Recomputes the signature of a received request from what arrived on the
 * wire: the client must have signed exactly what it sent. */
static void assert_signed_as_sent(const struct record *r, const char *service, bool s3)
{
    const char *auth = rec_header(r, "authorization");
    char signed_list[512], sig_got[65], cred[256];
    struct sigv4_header hs[MAX_REC_HDRS];
    struct aws_credentials c;
    struct sigv4_params p = {
        .region = "eu-central-1", .service = service, .time = FAKE_NOW, .s3 = s3};
    struct sigv4_request sr;
    struct sigv4_result res;
    char path[512], *q, *name, *save = NULL;
    size_t n = 0;

    assert_non_null(auth);
    assert_int_equal(sscanf(auth,
                            "AWS4-HMAC-SHA256 Credential=%255[^,], SignedHeaders=%511[^,], "
                            "Signature=%64s",
                            cred, signed_list, sig_got),
                     3);
    assert_true(strncmp(cred, "AKIDEXAMPLE/20231114/eu-central-1/", 34) == 0);
    assert_non_null(strstr(signed_list, "host"));
    assert_non_null(strstr(signed_list, "x-amz-date"));
    assert_null(strstr(signed_list, "user-agent"));
    for (name = strtok_r(signed_list, ";", &save); name; name = strtok_r(NULL, ";", &save)) {
        const char *v = rec_header(r, name);
        if (strcmp(name, "x-amz-date") == 0 || strcmp(name, "x-amz-content-sha256") == 0 ||
            strcmp(name, "x-amz-security-token") == 0)
            continue; /* the signer adds these itself */
        assert_non_null(v);
        hs[n++] = (struct sigv4_header){name, v};
    }
    snprintf(path, sizeof(path), "%s", r->target);
    q = strchr(path, '?');
    if (q != NULL)
        *q++ = '\0';
    memset(&c, 0, sizeof(c));
    snprintf(c.access_key_id, sizeof(c.access_key_id), "AKIDEXAMPLE");
    snprintf(c.secret_access_key, sizeof(c.secret_access_key), "SECRETKEYNEVERONTHEWIRE");
    sr = (struct sigv4_request){.method = r->method,
                                .path = path,
                                .query = q ? q : "",
                                .headers = hs,
                                .n_headers = n,
                                .payload = (const unsigned char *)r->body,
                                .payload_len = strlen(r->body)};
    memset(&res, 0, sizeof(res));
    assert_int_equal(sigv4_sign(NULL, &c, &p, &sr, &res), 0);
    assert_string_equal(rec_header(r, "x-amz-date"), res.amz_date);
    assert_string_equal(res.authorization, auth);
    sigv4_result_clear(&res);
}

static void assert_secret_never_sent(const struct fixture *f)
{
    for (size_t i = 0; i < f->n_rec; i++) {
        assert_null(strstr(f->rec[i].body, "SECRETKEY"));
        for (size_t k = 0; k < f->rec[i].n; k++)
            assert_null(strstr(f->rec[i].values[k], "SECRETKEY"));
    }
}

static const char *query_throttle =
    "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">"
    "<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    "</Error><RequestId>r-throttle</RequestId></ErrorResponse>";

static const char *elb_ok =
    "<DescribeLoadBalancersResponse "
    "xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">"
    "<DescribeLoadBalancersResult><LoadBalancers><member>"
    "<LoadBalancerName>web</LoadBalancerName></member></LoadBalancers>"
    "</DescribeLoadBalancersResult><ResponseMetadata><RequestId>r-ok</RequestId>"
    "</ResponseMetadata></DescribeLoadBalancersResponse>";

static void test_query_throttling_retried_then_succeeds(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL;
    (void)state;

    add_step(f, 400, query_throttle, "Content-Type: text/xml\r\n");
    add_step(f, 400, query_throttle, "Content-Type: text/xml\r\n");
    add_step(f, 200, elb_ok, "Content-Type: text/xml\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "elbv2", "DescribeLoadBalancers", NULL, &out, &err), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(out, "LoadBalancers"), 0),
                                          "LoadBalancerName")),
        "web");
    assert_int_equal(f->n_rec, 3);
    /* Full jitter with r = 0.5: 50 ms, then 100 ms. */
    assert_int_equal(f->n_sleeps, 2);
    assert_int_equal(f->sleeps[0], 50);
    assert_int_equal(f->sleeps[1], 100);
    assert_string_equal(rec_header(&f->rec[0], "amz-sdk-request"), "attempt=1; max=3");
    assert_string_equal(rec_header(&f->rec[2], "amz-sdk-request"), "attempt=3; max=3");
    assert_string_equal(rec_header(&f->rec[0], "amz-sdk-invocation-id"),
                        rec_header(&f->rec[2], "amz-sdk-invocation-id"));
    assert_int_equal(strlen(rec_header(&f->rec[0], "amz-sdk-invocation-id")), 36);
    assert_true(strncmp(rec_header(&f->rec[0], "user-agent"), "aviary/", 7) == 0);
    assert_string_equal(f->rec[0].method, "POST");
    assert_non_null(strstr(f->rec[0].body, "Action=DescribeLoadBalancers"));
    assert_non_null(
        strstr(rec_header(&f->rec[0], "content-type"), "application/x-www-form-urlencoded"));
    for (size_t i = 0; i < 3; i++)
        assert_signed_as_sent(&f->rec[i], "elasticloadbalancing", false);
    assert_secret_never_sent(f);
    assert_int_equal(f->n_calls, 1);
    assert_int_equal(f->last_call.attempts, 3);
    assert_int_equal(f->last_call.http_status, 200);
    assert_string_equal(f->last_code, "");
    json_decref(out);
    fixture_stop(f);
}

static void test_json_throttling_retried_then_succeeds(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL, *in = json_pack("{s:s,s:[s]}", "cluster", "c1", "services", "svc-a");
    (void)state;

    add_step(f, 400, "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}",
             "Content-Type: application/x-amz-json-1.1\r\n");
    add_step(f, 200, "{\"services\":[{\"serviceName\":\"svc-a\"}],\"failures\":[]}",
             "Content-Type: application/x-amz-json-1.1\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeServices", in, &out, &err), 0);
    assert_int_equal(err.kind, AWS_ERR_NONE);
    assert_int_equal(err.attempts, 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "services"), 0), "serviceName")),
                        "svc-a");
    assert_int_equal(f->n_rec, 2);
    assert_string_equal(rec_header(&f->rec[1], "x-amz-target"),
                        "AmazonEC2ContainerServiceV20141113.DescribeServices");
    assert_string_equal(rec_header(&f->rec[1], "content-type"), "application/x-amz-json-1.1");
    assert_non_null(strstr(f->rec[1].body, "\"cluster\""));
    assert_signed_as_sent(&f->rec[1], "ecs", false);
    json_decref(in);
    json_decref(out);
    fixture_stop(f);
}

static void test_5xx_retried_up_to_max_attempts(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL;
    (void)state;

    add_step(f, 500, "{\"__type\":\"InternalFailure\",\"message\":\"boom\"}",
             "Content-Type: application/x-amz-json-1.1\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, &out, &err), -1);
    assert_null(out);
    assert_int_equal(err.kind, AWS_ERR_SERVICE);
    assert_int_equal(err.http_status, 500);
    assert_string_equal(err.code, "InternalFailure");
    assert_int_equal(err.attempts, 3);
    assert_int_equal(f->n_rec, 3);
    assert_int_equal(f->last_call.attempts, 3);
    assert_string_equal(f->last_code, "InternalFailure");
    fixture_stop(f);

    /* AWS_MAX_ATTEMPTS from the environment. */
    f = fixture_new();
    f->env_names[f->n_env] = "AWS_MAX_ATTEMPTS";
    f->env_values[f->n_env++] = "5";
    add_step(f, 503, "{\"__type\":\"ServiceUnavailableException\",\"message\":\"x\"}", NULL);
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, NULL, &err), -1);
    assert_int_equal(err.attempts, 5);
    assert_int_equal(f->n_rec, 5);
    assert_string_equal(rec_header(&f->rec[4], "amz-sdk-request"), "attempt=5; max=5");
    /* Backoff ceilings double: 50, 100, 200, 400 with r = 0.5. */
    assert_int_equal(f->n_sleeps, 4);
    assert_int_equal(f->sleeps[3], 400);
    fixture_stop(f);
}

static void test_400_validation_error_not_retried(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL;
    (void)state;

    add_step(f, 400,
             "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>"
             "<Message>bad name</Message></Error><RequestId>r-400</RequestId></ErrorResponse>",
             "Content-Type: text/xml\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "elbv2", "DescribeLoadBalancers", NULL, &out, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_SERVICE);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "ValidationError");
    assert_string_equal(err.message, "bad name");
    assert_false(err.retryable);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(f->n_rec, 1);
    assert_int_equal(f->n_sleeps, 0);
    assert_null(strstr(err.message, "SECRET"));
    fixture_stop(f);
}

static void test_reset_connection_retried(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL;
    (void)state;

    f->steps[f->n_steps++] = (struct step){.reset = 1};
    add_step(f, 200, "{\"clusters\":[]}", NULL);
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, &out, &err), 0);
    assert_int_equal(err.attempts, 2);
    assert_true(json_is_array(json_object_get(out, "clusters")));
    json_decref(out);
    fixture_stop(f);
}

static void test_slow_answer_times_out_and_is_retried(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL;
    (void)state;

    f->steps[f->n_steps++] = (struct step){.status = 200, .body = "{}", .delay_ms = 3000};
    add_step(f, 200, "{\"clusters\":[{\"clusterName\":\"a\"}]}", NULL);
    fixture_start(f, 0, 300, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, &out, &err), 0);
    assert_int_equal(err.attempts, 2);
    assert_int_equal(json_array_size(json_object_get(out, "clusters")), 1);
    json_decref(out);
    /* All attempts slow: a timeout error after max attempts. */
    test_server_lock(f->srv);
    f->steps[1].delay_ms = 3000;
    test_server_unlock(f->srv);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, &out, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_TIMEOUT);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(err.http_status, 0);
    fixture_stop(f);
}

static void test_retry_quota_exhaustion_stops_retrying(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    int calls = 0;
    (void)state;

    add_step(f, 500, "{\"__type\":\"InternalFailure\"}", NULL);
    fixture_start(f, 0, 0, 0, 0);
    /* Each failing call takes 2 x 5 from the 500 quota: 50 calls drain it. */
    do {
        assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, NULL, &err), -1);
        calls++;
    } while (err.attempts > 1 && calls < 100);
    assert_int_equal(calls, 51);
    assert_int_equal(err.attempts, 1);
    /* The quota is per service: another service still retries. */
    assert_int_equal(aws_call(f->client, "logs", "DescribeLogGroups", NULL, NULL, &err), -1);
    assert_int_equal(err.attempts, 3);
    fixture_stop(f);
}

static void test_retry_after_header_honoured(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    (void)state;

    add_step(f, 503, "{\"__type\":\"ServiceUnavailableException\"}", "Retry-After: 2\r\n");
    add_step(f, 200, "{\"clusters\":[]}", NULL);
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, NULL, &err), 0);
    assert_int_equal(f->n_sleeps, 1);
    assert_int_equal(f->sleeps[0], 2000);
    fixture_stop(f);
}

static void test_clock_skew_corrected(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    (void)state;

    f->skew_server_time = FAKE_NOW + 3600; /* the server is an hour ahead */
    add_step(f, 200, "{\"clusters\":[]}", NULL);
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, NULL, &err), 0);
    assert_int_equal(f->n_rec, 2);
    assert_string_equal(rec_header(&f->rec[0], "x-amz-date"), "20231114T221320Z");
    assert_string_equal(rec_header(&f->rec[1], "x-amz-date"), "20231114T231320Z");
    assert_int_equal(f->n_sleeps, 0);
    /* The offset sticks for later calls. */
    assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, NULL, &err), 0);
    assert_int_equal(f->n_rec, 3);
    assert_string_equal(rec_header(&f->rec[2], "x-amz-date"), "20231114T231320Z");
    fixture_stop(f);
}

static const char *s3_error_in_200 =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try "
    "again.</Message><RequestId>r-500</RequestId><HostId>h</HostId></Error>";

static const char *s3_complete_ok =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Location>http://127.0.0.1/b/k</Location><Bucket>b</Bucket><Key>k</Key>"
    "<ETag>&quot;3858f62230ac3c915f300c664312c11f-2&quot;</ETag>"
    "</CompleteMultipartUploadResult>";

static json_t *complete_input(void)
{
    json_t *in = json_pack("{s:s,s:s,s:s,s:{s:[{s:s,s:i},{s:s,s:i}]}}", "Bucket", "b", "Key", "k",
                           "UploadId", "up-1", "MultipartUpload", "Parts", "ETag", "\"e1\"",
                           "PartNumber", 1, "ETag", "\"e2\"", "PartNumber", 2);
    assert_non_null(in);
    return in;
}

/* S3 can answer CompleteMultipartUpload (and CopyObject) with 200 and an
 * <Error> document; that is a retryable 500, retried within the attempts
 * and the retry quota. A 200 whose body is not XML is not retried. */
static void test_s3_error_in_200_retried(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL, *in = complete_input();
    int calls = 0;
    (void)state;

    add_step(f, 200, s3_error_in_200, "Content-Type: application/xml\r\n");
    add_step(f, 200, s3_complete_ok, "Content-Type: application/xml\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "s3", "CompleteMultipartUpload", in, &out, &err), 0);
    assert_int_equal(err.kind, AWS_ERR_NONE);
    assert_int_equal(err.attempts, 2);
    assert_string_equal(json_string_value(json_object_get(out, "ETag")),
                        "\"3858f62230ac3c915f300c664312c11f-2\"");
    assert_int_equal(f->n_rec, 2);
    assert_string_equal(f->rec[0].method, "POST");
    assert_string_equal(f->rec[0].target, "/b/k?uploadId=up-1");
    assert_string_equal(f->rec[0].body, f->rec[1].body);
    assert_string_equal(rec_header(&f->rec[1], "amz-sdk-request"), "attempt=2; max=3");
    assert_signed_as_sent(&f->rec[1], "s3", true);
    assert_int_equal(f->n_sleeps, 1);
    assert_int_equal(f->sleeps[0], 50);
    assert_int_equal(f->last_call.attempts, 2);
    assert_string_equal(f->last_code, "");
    json_decref(out);
    out = NULL;

    /* Every answer an <Error>: the service error after max attempts. */
    test_server_lock(f->srv);
    f->served = 0;
    f->n_steps = 0;
    add_step(f, 200, s3_error_in_200, "Content-Type: application/xml\r\n");
    test_server_unlock(f->srv);
    assert_int_equal(aws_call(f->client, "s3", "CompleteMultipartUpload", in, &out, &err), -1);
    assert_null(out);
    assert_int_equal(err.kind, AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InternalError");
    assert_int_equal(err.http_status, 500);
    assert_true(err.retryable);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(f->served, 3);
    assert_string_equal(f->last_code, "InternalError");

    /* The retries draw on the service's quota: once it is empty, no retry. */
    do {
        assert_int_equal(aws_call(f->client, "s3", "CompleteMultipartUpload", in, NULL, &err), -1);
        calls++;
    } while (err.attempts > 1 && calls < 100);
    /* 490 left after the failed call: 49 calls take 2 x 5 each, the 50th
     * finds the quota empty. */
    assert_int_equal(calls, 50);
    assert_int_equal(err.attempts, 1);
    assert_string_equal(err.code, "InternalError");
    fixture_stop(f);

    /* A 200 that is not XML is a parse error, and is not retried. */
    f = fixture_new();
    add_step(f, 200, "<CompleteMultipartUploadResult><ETag>", "Content-Type: application/xml\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "s3", "CompleteMultipartUpload", in, &out, &err), -1);
    assert_null(out);
    assert_int_equal(err.kind, AWS_ERR_PARSE);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(f->n_rec, 1);
    assert_int_equal(f->n_sleeps, 0);
    json_decref(in);
    fixture_stop(f);
}

static void test_s3_path_style_and_pagination(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL, *in = json_pack("{s:s,s:s}", "Bucket", "my-bucket", "Prefix", "data/");
    const json_t *contents;
    (void)state;

    add_step(f, 200,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
             "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
             "<Name>my-bucket</Name><IsTruncated>true</IsTruncated>"
             "<NextContinuationToken>tok/1=</NextContinuationToken>"
             "<Contents><Key>data/a</Key><Size>1</Size></Contents>"
             "<Contents><Key>data/b</Key><Size>2</Size></Contents></ListBucketResult>",
             "Content-Type: application/xml\r\n");
    add_step(f, 200,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
             "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
             "<Name>my-bucket</Name><IsTruncated>false</IsTruncated>"
             "<Contents><Key>data/c</Key><Size>3</Size></Contents></ListBucketResult>",
             "Content-Type: application/xml\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call_all(f->client, "s3", "ListObjectsV2", in, 0, &out, &err), 0);
    contents = json_object_get(out, "Contents");
    assert_int_equal(json_array_size(contents), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(contents, 2), "Key")),
                        "data/c");
    assert_int_equal(f->n_rec, 2);
    assert_string_equal(f->rec[0].method, "GET");
    assert_true(strncmp(f->rec[0].target, "/my-bucket?", 11) == 0);
    assert_non_null(strstr(f->rec[0].target, "list-type=2"));
    assert_null(strstr(f->rec[0].target, "continuation-token"));
    assert_non_null(strstr(f->rec[1].target, "continuation-token=tok%2F1%3D"));
    assert_non_null(rec_header(&f->rec[0], "x-amz-content-sha256"));
    assert_true(strncmp(rec_header(&f->rec[0], "host"), "127.0.0.1:", 10) == 0);
    assert_signed_as_sent(&f->rec[0], "s3", true);
    assert_signed_as_sent(&f->rec[1], "s3", true);
    json_decref(in);
    json_decref(out);
    fixture_stop(f);
}

static void test_json_pagination_merges_and_stops(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *out = NULL, *in = json_pack("{s:s}", "cluster", "c1");
    const json_t *arns;
    (void)state;

    add_step(f, 200, "{\"serviceArns\":[\"a\",\"b\"],\"nextToken\": \"t1\"}", NULL);
    add_step(f, 200, "{\"serviceArns\":[\"c\"],\"nextToken\":\"t2\"}", NULL);
    add_step(f, 200, "{\"serviceArns\":[\"d\"]}", NULL);
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call_all(f->client, "ecs", "ListServices", in, 0, &out, &err), 0);
    arns = json_object_get(out, "serviceArns");
    assert_int_equal(json_array_size(arns), 4);
    assert_string_equal(json_string_value(json_array_get(arns, 3)), "d");
    assert_null(json_object_get(out, "nextToken"));
    assert_int_equal(f->n_rec, 3);
    assert_null(strstr(f->rec[0].body, "nextToken"));
    assert_non_null(strstr(f->rec[1].body, "\"nextToken\": \"t1\""));
    assert_non_null(strstr(f->rec[2].body, "\"nextToken\": \"t2\""));
    assert_non_null(strstr(f->rec[2].body, "\"cluster\": \"c1\""));
    json_decref(out);

    /* A repeated token ends the pagination. */
    test_server_lock(f->srv);
    f->served = 0;
    f->n_steps = 0;
    add_step(f, 200, "{\"serviceArns\":[\"a\"],\"nextToken\":\"same\"}", NULL);
    test_server_unlock(f->srv);
    assert_int_equal(aws_call_all(f->client, "ecs", "ListServices", in, 0, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "serviceArns")), 2);
    json_decref(out);

    /* More pages than allowed is an error, not a silent truncation. */
    test_server_lock(f->srv);
    f->served = 0;
    f->n_steps = 0;
    add_step(f, 200, "{\"serviceArns\":[\"a\"],\"nextToken\": \"t1\"}", NULL);
    add_step(f, 200, "{\"serviceArns\":[\"b\"],\"nextToken\":\"t2\"}", NULL);
    add_step(f, 200, "{\"serviceArns\":[\"c\"]}", NULL);
    test_server_unlock(f->srv);
    assert_int_equal(aws_call_all(f->client, "ecs", "ListServices", in, 2, &out, &err), -1);
    assert_null(out);
    assert_string_equal(err.code, "TooManyPages");
    json_decref(in);
    fixture_stop(f);
}

static int stop_after_first(const json_t *page, void *arg, struct aws_error *err)
{
    (void)err;
    (*(int *)arg)++;
    return json_array_size(json_object_get(page, "serviceArns")) > 0 ? 1 : 0;
}

static void test_paginate_callback_stops_early(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    int pages = 0;
    (void)state;

    add_step(f, 200, "{\"serviceArns\":[\"a\"],\"nextToken\": \"t1\"}", NULL);
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(
        aws_paginate(f->client, "ecs", "ListServices", NULL, 0, stop_after_first, &pages, &err), 0);
    assert_int_equal(pages, 1);
    assert_int_equal(f->n_rec, 1);
    fixture_stop(f);
}

static void test_unknown_operation_and_unsigned_operation(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    json_t *in, *out = NULL;
    (void)state;

    add_step(f, 200,
             "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/"
             "2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials>"
             "<AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
             "<SessionToken>t</SessionToken><Expiration>2023-11-15T00:00:00Z</Expiration>"
             "</Credentials></AssumeRoleWithWebIdentityResult>"
             "</AssumeRoleWithWebIdentityResponse>",
             "Content-Type: text/xml\r\n");
    fixture_start(f, 0, 0, 0, 0);
    assert_int_equal(aws_call(f->client, "ecs", "NoSuchOperation", NULL, &out, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    assert_int_equal(aws_call(f->client, "nosuchservice", "X", NULL, &out, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    assert_int_equal(f->n_rec, 0);
    in = json_pack("{s:s,s:s,s:s}", "RoleArn", "arn:aws:iam::123456789012:role/r",
                   "RoleSessionName", "s", "WebIdentityToken", "jwt");
    assert_int_equal(aws_call(f->client, "sts", "AssumeRoleWithWebIdentity", in, &out, &err), 0);
    assert_int_equal(f->n_rec, 1);
    assert_null(rec_header(&f->rec[0], "authorization"));
    assert_null(rec_header(&f->rec[0], "x-amz-date"));
    json_decref(in);
    json_decref(out);
    fixture_stop(f);
}

static void test_token_bucket_paces_calls(void **state)
{
    struct fixture *f = fixture_new();
    struct aws_error err;
    (void)state;

    add_step(f, 200, "{\"clusters\":[]}", NULL);
    fixture_start(f, 0, 0, 2.0, 2.0); /* 2 calls/s, burst 2 */
    for (int i = 0; i < 4; i++)
        assert_int_equal(aws_call(f->client, "ecs", "DescribeClusters", NULL, NULL, &err), 0);
    /* Two calls from the burst, then one token every 500 ms. */
    assert_int_equal(f->n_sleeps, 2);
    assert_int_equal(f->sleeps[0], 500);
    assert_int_equal(f->sleeps[1], 500);
    assert_int_equal(f->n_rec, 4);
    fixture_stop(f);
}

struct client_worker {
    struct aws_client *client;
    int failures;
};

static void *client_worker_main(void *p)
{
    struct client_worker *w = p;

    for (int i = 0; i < 25; i++) {
        struct aws_error err;
        json_t *out = NULL;

        if (aws_call(w->client, "ecs", "DescribeClusters", NULL, &out, &err) != 0 ||
            !json_is_array(json_object_get(out, "clusters")))
            w->failures++;
        json_decref(out);
    }
    return NULL;
}

static void test_threads_share_one_client(void **state)
{
    struct fixture *f = fixture_new();
    struct client_worker w[4];
    pthread_t t[4];
    (void)state;

    add_step(f, 200, "{\"clusters\":[]}", NULL);
    fixture_start(f, 0, 0, 1e6, 1e6);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct client_worker){.client = f->client};
        assert_int_equal(pthread_create(&t[i], NULL, client_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(test_server_requests(f->srv), 100);
    assert_true(test_server_connections(f->srv) <= 4);
    fixture_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_throttling_retried_then_succeeds),
        cmocka_unit_test(test_json_throttling_retried_then_succeeds),
        cmocka_unit_test(test_5xx_retried_up_to_max_attempts),
        cmocka_unit_test(test_400_validation_error_not_retried),
        cmocka_unit_test(test_reset_connection_retried),
        cmocka_unit_test(test_slow_answer_times_out_and_is_retried),
        cmocka_unit_test(test_retry_quota_exhaustion_stops_retrying),
        cmocka_unit_test(test_retry_after_header_honoured),
        cmocka_unit_test(test_clock_skew_corrected),
        cmocka_unit_test(test_s3_error_in_200_retried),
        cmocka_unit_test(test_s3_path_style_and_pagination),
        cmocka_unit_test(test_json_pagination_merges_and_stops),
        cmocka_unit_test(test_paginate_callback_stops_early),
        cmocka_unit_test(test_unknown_operation_and_unsigned_operation),
        cmocka_unit_test(test_token_bucket_paces_calls),
        cmocka_unit_test(test_threads_share_one_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
