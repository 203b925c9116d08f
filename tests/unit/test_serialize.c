/* Unit tests for the request serializers (aws/protocol_serialize.c,
 * aws/serialize_*.c): every golden request botocore produced
 * (tests/golden/serialize, tools/gen_serialize_golden.py) must come out the
 * same, plus the error paths and formatting rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aws/protocol.h"
#include "aws/serialize.h"

static const char *source_dir(void)
{
    const char *dir = getenv("AVIARY_SOURCE_DIR");

    return dir != NULL && dir[0] != '\0' ? dir : AVIARY_SOURCE_DIR;
}

/* ---- helpers ---------------------------------------------------------------- */

static unsigned char *b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    unsigned char *out = malloc(n / 4 * 3 + 1);
    int w;

    assert_non_null(out);
    w = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    assert_true(w >= 0);
    for (size_t i = n; i > 0 && s[i - 1] == '='; i--)
        w--;
    *len = (size_t)w;
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Form-decodes s[0..n) ('+' is a space) into a new string. */
static char *form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;

    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Compares two form bodies as ordered, decoded key=value lists. Returns 0,
 * or -1 after printing the first difference. */
static int compare_form(const char *name, const char *want, const char *got)
{
    size_t idx = 0;

    for (;;) {
        size_t wl = strcspn(want, "&");
        size_t gl = strcspn(got, "&");
        char *w = form_decode(want, wl);
        char *g = form_decode(got, gl);
        int same = strcmp(w, g) == 0;

        if (!same)
            print_error("%s: form pair %zu: want \"%s\", got \"%s\"\n", name, idx, w, g);
        free(w);
        free(g);
        if (!same)
            return -1;
        want += wl;
        got += gl;
        if (*want == '\0' || *got == '\0')
            break;
        want++;
        got++;
        idx++;
    }
    if (*want != '\0' || *got != '\0') {
        print_error("%s: form bodies differ in length after pair %zu\n", name, idx);
        return -1;
    }
    return 0;
}

static const char *header_value(const struct aws_wire_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strcasecmp(req->header_names[i], name) == 0)
            return req->header_values[i];
    }
    return NULL;
}

static const char *body_str(const struct aws_wire_request *req)
{
    return req->body.data != NULL ? req->body.data : "";
}

/* ---- golden files ------------------------------------------------------------ */

/* Serializes one golden case and compares it field by field. Returns the
 * number of mismatches (each printed). */
static int check_golden(const char *dir, const char *file)
{
    char path[4096];
    json_error_t jerr;
    json_t *doc;
    json_t *exp;
    const char *svc_name;
    const char *op_name;
    const char *protocol;
    const struct aws_service_model *svc;
    const struct aws_operation *op;
    struct aws_wire_request req;
    struct aws_error err;
    struct aws_blob blob = {0};
    unsigned char *payload = NULL;
    const char *key;
    json_t *val;
    int bad = 0;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return 1;
    doc = json_load_file(path, 0, &jerr);
    if (doc == NULL) {
        print_error("%s: %s\n", file, jerr.text);
        return 1;
    }
    svc_name = json_string_value(json_object_get(doc, "service"));
    op_name = json_string_value(json_object_get(doc, "operation"));
    protocol = json_string_value(json_object_get(doc, "protocol"));
    exp = json_object_get(doc, "expected");
    svc = aws_model_service(svc_name);
    op = aws_model_operation(svc, op_name);
    assert_non_null(op);
    if (json_object_get(doc, "payload_base64") != NULL) {
        payload = b64_decode(json_string_value(json_object_get(doc, "payload_base64")), &blob.len);
        blob.data = payload;
    }
    if (aws_protocol_serialize(svc, op, json_object_get(doc, "input"),
                               payload != NULL ? &blob : NULL, &req, &err) < 0) {
        print_error("%s: serialize failed: %s\n", file, err.message);
        bad++;
        goto out;
    }
    if (strcmp(req.method, json_string_value(json_object_get(exp, "method"))) != 0) {
        print_error("%s: method %s\n", file, req.method);
        bad++;
    }
    if (strcmp(req.path.data, json_string_value(json_object_get(exp, "path"))) != 0) {
        print_error("%s: path\n  want %s\n  got  %s\n", file,
                    json_string_value(json_object_get(exp, "path")), req.path.data);
        bad++;
    }
    if (strcmp(req.query.data != NULL ? req.query.data : "",
               json_string_value(json_object_get(exp, "query"))) != 0) {
        print_error("%s: query\n  want %s\n  got  %s\n", file,
                    json_string_value(json_object_get(exp, "query")),
                    req.query.data != NULL ? req.query.data : "");
        bad++;
    }
    /* Headers: exactly the expected set (names case-insensitive). */
    json_object_foreach(json_object_get(exp, "headers"), key, val)
    {
        const char *got = header_value(&req, key);

        if (got == NULL || strcmp(got, json_string_value(val)) != 0) {
            print_error("%s: header %s: want \"%s\", got \"%s\"\n", file, key,
                        json_string_value(val), got != NULL ? got : "(absent)");
            bad++;
        }
    }
    if (req.n_headers != json_object_size(json_object_get(exp, "headers"))) {
        print_error("%s: %zu headers, want %zu\n", file, req.n_headers,
                    json_object_size(json_object_get(exp, "headers")));
        bad++;
    }
    if (json_object_get(exp, "payload_base64") != NULL) {
        size_t n;
        unsigned char *want =
            b64_decode(json_string_value(json_object_get(exp, "payload_base64")), &n);

        if (req.payload.data == NULL || req.payload.len != n ||
            memcmp(req.payload.data, want, n) != 0 || req.body.len != 0) {
            print_error("%s: raw payload differs\n", file);
            bad++;
        }
        free(want);
        goto out;
    }
    {
        const char *want = json_string_value(json_object_get(exp, "body"));
        const char *got = body_str(&req);

        if (strcmp(protocol, "json") == 0) {
            json_t *wj = json_loads(want, 0, NULL);
            json_t *gj = json_loads(got, 0, NULL);

            if (gj == NULL || !json_equal(wj, gj)) {
                print_error("%s: JSON body differs\n  want %s\n  got  %s\n", file, want, got);
                bad++;
            }
            json_decref(wj);
            json_decref(gj);
        } else if (strcmp(protocol, "query") == 0 || strcmp(protocol, "ec2") == 0) {
            if (compare_form(file, want, got) < 0)
                bad++;
        }
        /* Every protocol: the bytes are botocore's too. */
        if (strcmp(want, got) != 0) {
            print_error("%s: body bytes differ\n  want %s\n  got  %s\n", file, want, got);
            bad++;
        }
    }
out:
    aws_wire_request_clear(&req);
    free(payload);
    json_decref(doc);
    return bad;
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static void test_golden_requests_match_botocore(void **state)
{
    char dir[4096];
    struct dirent **names = NULL;
    int n;
    int bad = 0;
    bool protocols[4] = {false, false, false, false};

    (void)state;
    snprintf(dir, sizeof(dir), "%s/tests/golden/serialize", source_dir());
    n = scandir(dir, &names, json_file, alphasort);
    assert_true(n >= 40);
    for (int i = 0; i < n; i++) {
        const struct aws_service_model *svc;
        char svc_name[64];

        if (sscanf(names[i]->d_name, "%63[^.]", svc_name) == 1 &&
            (svc = aws_model_service(svc_name)) != NULL)
            protocols[svc->protocol] = true;
        bad += check_golden(dir, names[i]->d_name);
        free(names[i]);
    }
    free(names);
    for (int p = 0; p < 4; p++)
        assert_true(protocols[p]);
    assert_int_equal(bad, 0);
}

/* ---- error paths ---------------------------------------------------------------- */

static void expect_invalid(const char *service, const char *operation, const char *input_json,
                           const char *want_message)
{
    const struct aws_service_model *svc = aws_model_service(service);
    const struct aws_operation *op = aws_model_operation(svc, operation);
    json_t *input = json_loads(input_json, 0, NULL);
    struct aws_wire_request req;
    struct aws_error err;

    assert_non_null(op);
    assert_non_null(input);
    assert_int_equal(aws_protocol_serialize(svc, op, input, NULL, &req, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    assert_string_equal(err.message, want_message);
    /* *out is cleared on failure. */
    assert_int_equal(req.n_headers, 0);
    assert_int_equal(req.body.len, 0);
    assert_null(req.body.data);
    json_decref(input);
}

static void test_wrong_type_names_member_path(void **state)
{
    (void)state;
    expect_invalid("elbv2", "AddTags",
                   "{\"ResourceArns\": [\"arn\"], \"Tags\": [{\"Key\": \"a\", \"Value\": \"b\"},"
                   " {\"Key\": \"c\", \"Value\": 5}]}",
                   "Tags[1].Value: expected string");
    expect_invalid("ecs", "CreateService", "{\"serviceName\": \"s\", \"desiredCount\": \"2\"}",
                   "desiredCount: expected integer");
    expect_invalid("ecs", "CreateService", "{\"serviceName\": \"s\", \"desiredCount\": 4294967296}",
                   "desiredCount: integer out of 32-bit range");
    expect_invalid("logs", "CreateLogGroup", "{\"logGroupName\": \"g\", \"tags\": {\"a\": 1}}",
                   "tags.a: expected string");
    expect_invalid("cloudwatch", "GetMetricData",
                   "{\"MetricDataQueries\": [], \"StartTime\": \"yesterday\", \"EndTime\": 1}",
                   "StartTime: expected timestamp (unix seconds, years 1-9999)");
    expect_invalid("ec2", "DescribeSubnets", "{\"Filters\": {\"Name\": \"x\"}}",
                   "Filters: expected list (array)");
    expect_invalid("ec2", "ModifyVpcAttribute",
                   "{\"VpcId\": \"v\", \"EnableDnsHostnames\": {\"Value\": \"yes\"}}",
                   "EnableDnsHostnames.Value: expected boolean");
    expect_invalid("sns", "Publish",
                   "{\"Message\": \"m\", \"MessageAttributes\": {\"a\": "
                   "{\"DataType\": \"Binary\", \"BinaryValue\": \"not base64!\"}}}",
                   "MessageAttributes.a.BinaryValue: expected base64 string");
}

static void test_unknown_member_is_an_error(void **state)
{
    (void)state;
    expect_invalid("ecs", "CreateService", "{\"serviceName\": \"s\", \"clustr\": \"c\"}",
                   "unknown member clustr");
    expect_invalid("elbv2", "AddTags",
                   "{\"ResourceArns\": [\"arn\"], \"Tags\": [{\"Kye\": \"a\", \"Value\": \"b\"}]}",
                   "Tags[0]: unknown member Kye");
    expect_invalid("sts", "GetCallerIdentity", "{\"x\": 1}", "unknown member x");
}

static void test_missing_required_member(void **state)
{
    (void)state;
    expect_invalid("elbv2", "AddTags", "{\"Tags\": []}", "missing required member ResourceArns");
    expect_invalid("elbv2", "AddTags", "{\"ResourceArns\": [], \"Tags\": [{\"Value\": \"v\"}]}",
                   "Tags[0]: missing required member Key");
}

static void test_uri_labels(void **state)
{
    (void)state;
    expect_invalid("s3", "GetObject", "{\"Key\": \"k\"}", "missing required member Bucket");
    expect_invalid("s3", "GetObject", "{\"Bucket\": \"\", \"Key\": \"k\"}",
                   "Bucket: URI label must not be empty");
    expect_invalid("s3", "PutObject",
                   "{\"Bucket\": \"b\", \"Key\": \"k\", \"ContentType\": \"a\\r\\nX-Evil: 1\"}",
                   "ContentType: header text contains a line break");
}

/* botocore's S3 parameter checks (handlers.py), mirrored. */
static void test_s3_parameter_checks(void **state)
{
    (void)state;
    expect_invalid("s3", "HeadBucket", "{\"Bucket\": \"a/b\"}",
                   "Bucket: invalid bucket name \"a/b\"");
    expect_invalid("s3", "PutObject",
                   "{\"Bucket\": \"b\", \"Key\": \"k\", \"Metadata\": {\"a\": \"\u00e9\"}}",
                   "Metadata.a: S3 metadata must be US-ASCII");
    expect_invalid("s3", "PutObject",
                   "{\"Bucket\": \"b\", \"Key\": \"k\", \"ChecksumAlgorithm\": \"CRC32\"}",
                   "ChecksumAlgorithm: flexible checksums are not supported (Content-MD5 is sent "
                   "where needed)");
}

static void test_payload_rules(void **state)
{
    const struct aws_service_model *s3 = aws_model_service("s3");
    struct aws_blob blob = {(const unsigned char *)"abc", 3};
    struct aws_wire_request req;
    struct aws_error err;
    json_t *in = json_pack("{s:s, s:s, s:s}", "Bucket", "b", "Key", "k", "Body", "xyz");
    json_t *in2 = json_pack("{s:s}", "Bucket", "b");

    (void)state;
    assert_int_equal(
        aws_protocol_serialize(s3, aws_model_operation(s3, "PutObject"), in, &blob, &req, &err),
        -1);
    assert_string_equal(err.message, "Body: given both in the input and as the raw payload");
    assert_int_equal(
        aws_protocol_serialize(s3, aws_model_operation(s3, "HeadBucket"), in2, &blob, &req, &err),
        -1);
    assert_string_equal(err.message, "HeadBucket takes no raw payload");
    /* A string Body in the input is sent as it is. */
    assert_int_equal(
        aws_protocol_serialize(s3, aws_model_operation(s3, "PutObject"), in, NULL, &req, &err), 0);
    assert_null(req.payload.data);
    assert_int_equal(req.body.len, 3);
    assert_memory_equal(req.body.data, "xyz", 3);
    aws_wire_request_clear(&req);
    json_decref(in);
    json_decref(in2);
}

static void test_input_must_be_object(void **state)
{
    const struct aws_service_model *ecs = aws_model_service("ecs");
    struct aws_wire_request req;
    struct aws_error err;
    json_t *arr = json_array();

    (void)state;
    assert_int_equal(aws_protocol_serialize(ecs, aws_model_operation(ecs, "ListServices"), arr,
                                            NULL, &req, &err),
                     -1);
    assert_int_equal(err.kind, AWS_ERR_INVALID);
    json_decref(arr);
    /* NULL input is "no members". */
    assert_int_equal(aws_protocol_serialize(ecs, aws_model_operation(ecs, "ListServices"), NULL,
                                            NULL, &req, &err),
                     0);
    assert_string_equal(req.body.data, "{}");
    assert_string_equal(req.path.data, "/");
    aws_wire_request_clear(&req);
}

/* ---- idempotency tokens ------------------------------------------------------ */

static bool is_uuid_v4(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void token_from(const char *body, char out[64])
{
    const char *t = strstr(body, "ClientToken=");
    size_t n;

    assert_non_null(t);
    t += strlen("ClientToken=");
    n = strcspn(t, "&");
    assert_true(n < 64);
    memcpy(out, t, n);
    out[n] = '\0';
}

static void test_idempotency_token_filled(void **state)
{
    const struct aws_service_model *ec2 = aws_model_service("ec2");
    const struct aws_operation *op = aws_model_operation(ec2, "CreateNatGateway");
    json_t *in = json_pack("{s:s}", "SubnetId", "subnet-1");
    struct aws_wire_request req;
    struct aws_error err;
    char t1[64];
    char t2[64];

    (void)state;
    assert_int_equal(aws_protocol_serialize(ec2, op, in, NULL, &req, &err), 0);
    token_from(req.body.data, t1);
    assert_true(is_uuid_v4(t1, strlen(t1)));
    /* Model order: ClientToken comes before SubnetId in CreateNatGatewayRequest. */
    assert_non_null(strstr(req.body.data, "&SubnetId=subnet-1"));
    aws_wire_request_clear(&req);
    assert_int_equal(aws_protocol_serialize(ec2, op, in, NULL, &req, &err), 0);
    token_from(req.body.data, t2);
    assert_string_not_equal(t1, t2);
    aws_wire_request_clear(&req);
    /* The caller's input is not modified and a given token is kept. */
    assert_null(json_object_get(in, "ClientToken"));
    json_object_set_new(in, "ClientToken", json_string("mine"));
    assert_int_equal(aws_protocol_serialize(ec2, op, in, NULL, &req, &err), 0);
    token_from(req.body.data, t1);
    assert_string_equal(t1, "mine");
    aws_wire_request_clear(&req);
    json_decref(in);
}

/* ---- formatting ------------------------------------------------------------------ */

static void expect_number(json_t *v, const char *want)
{
    char out[SER_NUM_MAX];

    assert_int_equal(ser_format_number(v, out), 0);
    assert_string_equal(out, want);
    json_decref(v);
}

/* Reals as Python's repr() (botocore sends str(float)). */
static void test_number_format(void **state)
{
    char out[SER_NUM_MAX];
    json_t *inf = json_real(1.0);

    (void)state;
    expect_number(json_real(0.1), "0.1");
    expect_number(json_real(70.0), "70.0");
    expect_number(json_real(-2.5), "-2.5");
    expect_number(json_real(0.0001), "0.0001");
    expect_number(json_real(0.00001), "1e-05");
    expect_number(json_real(1e15), "1000000000000000.0");
    expect_number(json_real(1e16), "1e+16");
    expect_number(json_real(123456789.125), "123456789.125");
    expect_number(json_real(0.1 + 0.2), "0.30000000000000004");
    expect_number(json_real(1.7976931348623157e308), "1.7976931348623157e+308");
    expect_number(json_real(5e-324), "5e-324");
    expect_number(json_real(-0.0), "-0.0");
    expect_number(json_integer(-42), "-42");
    expect_number(json_integer(9007199254740993LL), "9007199254740993");
    /* jansson cannot hold inf/nan; a non-number is refused. */
    assert_int_equal(json_real_set(inf, 1.0 / 0.0), -1);
    json_decref(inf);
    inf = json_string("1.0");
    assert_int_equal(ser_format_number(inf, out), -1);
    json_decref(inf);
}

static void expect_ts(json_t *v, enum aws_timestamp_format fmt, const char *want)
{
    char out[SER_NUM_MAX];

    assert_int_equal(ser_format_timestamp(v, fmt, out), 0);
    assert_string_equal(out, want);
    json_decref(v);
}

static void test_timestamp_format(void **state)
{
    char out[SER_NUM_MAX];
    json_t *v;

    (void)state;
    expect_ts(json_integer(0), AWS_TS_ISO8601, "1970-01-01T00:00:00Z");
    expect_ts(json_real(1700000300.25), AWS_TS_ISO8601, "2023-11-14T22:18:20.250000Z");
    expect_ts(json_real(1700000300.9999999), AWS_TS_ISO8601, "2023-11-14T22:18:21Z");
    expect_ts(json_integer(951782400), AWS_TS_ISO8601, "2000-02-29T00:00:00Z");
    expect_ts(json_integer(1700000000), AWS_TS_RFC822, "Tue, 14 Nov 2023 22:13:20 GMT");
    expect_ts(json_real(1700000000.75), AWS_TS_RFC822, "Tue, 14 Nov 2023 22:13:20 GMT");
    expect_ts(json_real(1700000000.75), AWS_TS_UNIX, "1700000000");
    expect_ts(json_integer(-1), AWS_TS_ISO8601, "1969-12-31T23:59:59Z");
    v = json_integer(253402300800LL); /* year 10000 */
    assert_int_equal(ser_format_timestamp(v, AWS_TS_ISO8601, out), -1);
    json_decref(v);
}

static void test_percent_encoding(void **state)
{
    struct aws_buf b = {0};

    (void)state;
    assert_int_equal(ser_pct_encode(&b, "a b/c~d_e.f-g+h=&\xc3\xa9", 19, NULL, true), 0);
    assert_string_equal(b.data, "a+b%2Fc~d_e.f-g%2Bh%3D%26%C3%A9");
    aws_buf_reset(&b);
    assert_int_equal(ser_pct_encode(&b, "dir one/k+y", 11, "/", false), 0);
    assert_string_equal(b.data, "dir%20one/k%2By");
    aws_buf_reset(&b);
    assert_int_equal(ser_base64(&b, (const unsigned char *)"hello", 5), 0);
    assert_string_equal(b.data, "aGVsbG8=");
    aws_buf_free(&b);
}

/* Booleans in headers are "true"/"false" (the REST protocols' rule; botocore
 * 1.29 writes Python's "True"), and an empty list header is left out. */
static void test_boolean_header(void **state)
{
    const struct aws_service_model *s3 = aws_model_service("s3");
    json_t *in = json_pack("{s:s, s:s, s:b}", "Bucket", "b", "Key", "k", "BucketKeyEnabled", 1);
    struct aws_wire_request req;
    struct aws_error err;

    (void)state;
    assert_int_equal(
        aws_protocol_serialize(s3, aws_model_operation(s3, "PutObject"), in, NULL, &req, &err), 0);
    assert_string_equal(header_value(&req, "x-amz-server-side-encryption-bucket-key-enabled"),
                        "true");
    assert_string_equal(req.method, "PUT");
    assert_string_equal(req.path.data, "/b/k");
    aws_wire_request_clear(&req);
    json_decref(in);
}

static void test_add_header_limit(void **state)
{
    struct aws_wire_request req;

    (void)state;
    memset(&req, 0, sizeof(req));
    for (int i = 0; i < AWS_WIRE_MAX_HEADERS; i++)
        assert_int_equal(aws_wire_request_add_header(&req, "X-Test", "v"), 0);
    assert_int_equal(aws_wire_request_add_header(&req, "X-Test", "v"), -1);
    assert_string_equal(req.header_names[0], "x-test");
    aws_wire_request_clear(&req);
    assert_int_equal(req.n_headers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_requests_match_botocore),
        cmocka_unit_test(test_wrong_type_names_member_path),
        cmocka_unit_test(test_unknown_member_is_an_error),
        cmocka_unit_test(test_missing_required_member),
        cmocka_unit_test(test_uri_labels),
        cmocka_unit_test(test_s3_parameter_checks),
        cmocka_unit_test(test_payload_rules),
        cmocka_unit_test(test_input_must_be_object),
        cmocka_unit_test(test_idempotency_token_filled),
        cmocka_unit_test(test_number_format),
        cmocka_unit_test(test_timestamp_format),
        cmocka_unit_test(test_percent_encoding),
        cmocka_unit_test(test_boolean_header),
        cmocka_unit_test(test_add_header_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
