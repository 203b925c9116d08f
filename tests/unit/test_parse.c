/* Tests of response and error parsing (aws/protocol_parse.c, aws/parse_json.c,
 * aws/parse_xml.c): every golden response botocore parsed
 * (tests/golden/parse, tools/gen_parse_golden.py) must give the same value
 * from aviary, plus hand-built models for the corner cases. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "aws/parse.h"
#include "aws/protocol.h"

static const char *source_dir(void)
{
    const char *d = getenv("AVIARY_SOURCE_DIR");

    return d != NULL ? d : AVIARY_SOURCE_DIR;
}

/* ---- comparing documents ------------------------------------------------ */

/* Like json_equal, but numbers compare by value (an integer equals a real
 * within 1e-6 absolute plus 1e-15 relative, enough for microsecond timestamps), and the first
 * difference is described in why. */
static bool same(const json_t *a, const json_t *b, char *path, size_t plen, char *why, size_t wlen)
{
    size_t n = strlen(path);

    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);

        if (fabs(x - y) <= 1e-6 + 1e-15 * fmax(fabs(x), fabs(y)))
            return true;
        snprintf(why, wlen, "%s: %.17g != %.17g", path, x, y);
        return false;
    }
    if (json_typeof(a) != json_typeof(b)) {
        snprintf(why, wlen, "%s: types differ (%d vs %d)", path, json_typeof(a), json_typeof(b));
        return false;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;

        if (json_object_size(a) != json_object_size(b)) {
            char *sa = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
            char *sb = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);

            snprintf(why, wlen, "%s: %zu vs %zu members\n got:  %.600s\n want: %.600s", path,
                     json_object_size(a), json_object_size(b), sa, sb);
            free(sa);
            free(sb);
            return false;
        }
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);

            snprintf(path + n, plen - n, ".%s", k);
            if (w == NULL) {
                snprintf(why, wlen, "%s: missing in expected", path);
                return false;
            }
            if (!same(v, w, path, plen, why, wlen))
                return false;
            path[n] = '\0';
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            snprintf(why, wlen, "%s: %zu vs %zu items", path, json_array_size(a),
                     json_array_size(b));
            return false;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(path + n, plen - n, "[%zu]", i);
            if (!same(json_array_get(a, i), json_array_get(b, i), path, plen, why, wlen))
                return false;
            path[n] = '\0';
        }
        return true;
    }
    if (!json_equal((json_t *)a, (json_t *)b)) {
        char *sa = json_dumps(a, JSON_ENCODE_ANY), *sb = json_dumps(b, JSON_ENCODE_ANY);

        snprintf(why, wlen, "%s: %s != %s", path, sa ? sa : "?", sb ? sb : "?");
        free(sa);
        free(sb);
        return false;
    }
    return true;
}

static bool docs_equal(const json_t *got, const json_t *want, char *why, size_t wlen)
{
    char path[512] = "$";

    return same(got, want, path, sizeof(path), why, wlen);
}

/* ---- building responses -------------------------------------------------- */

struct fake_response {
    struct aws_http_response resp;
    struct aws_http_header hdrs[40];
};

static void fake(struct fake_response *f, long status, const char *body, ...)
{
    va_list ap;
    const char *name;

    memset(f, 0, sizeof(*f));
    f->resp.status = status;
    f->resp.body = (unsigned char *)(uintptr_t)body;
    f->resp.body_len = body ? strlen(body) : 0;
    f->resp.headers = f->hdrs;
    va_start(ap, body);
    while ((name = va_arg(ap, const char *)) != NULL && f->resp.n_headers < 40) {
        f->hdrs[f->resp.n_headers].name = name;
        f->hdrs[f->resp.n_headers].value = va_arg(ap, const char *);
        f->resp.n_headers++;
    }
    va_end(ap);
}

/* ---- golden files ------------------------------------------------------- */

/* Parses one golden case and compares. Returns the number of failures (0/1). */
static int check_golden(const char *dir, const char *file)
{
    char path[1400], why[2048] = "";
    json_error_t jerr;
    json_t *g, *headers, *v, *got = NULL;
    struct aws_http_response resp = {0};
    struct aws_http_header hdrs[40];
    const struct aws_service_model *svc;
    const struct aws_operation *op;
    struct aws_error err;
    struct aws_buf payload = {0};
    const char *k;
    int bad = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    g = json_load_file(path, 0, &jerr);
    if (g == NULL) {
        fprintf(stderr, "%s: %s\n", file, jerr.text);
        return 1;
    }
    svc = aws_model_service(json_string_value(json_object_get(g, "service")));
    op = aws_model_operation(svc, json_string_value(json_object_get(g, "operation")));
    if (svc == NULL || op == NULL) {
        fprintf(stderr, "%s: operation not in the compiled models\n", file);
        json_decref(g);
        return 1;
    }
    resp.status = (long)json_integer_value(json_object_get(g, "status"));
    resp.body = (unsigned char *)(uintptr_t)json_string_value(json_object_get(g, "body"));
    resp.body_len = json_string_length(json_object_get(g, "body"));
    resp.headers = hdrs;
    headers = json_object_get(g, "headers");
    json_object_foreach(headers, k, v)
    {
        if (resp.n_headers < 40) {
            hdrs[resp.n_headers].name = k;
            hdrs[resp.n_headers].value = json_string_value(v);
            resp.n_headers++;
        }
    }
    if ((v = json_object_get(g, "expected_error")) != NULL) {
        aws_protocol_parse_error(svc, op, &resp, &err);
        if (err.kind != AWS_ERR_SERVICE || err.http_status != resp.status ||
            strcmp(err.code, json_string_value(json_object_get(v, "code"))) != 0 ||
            strcmp(err.message, json_string_value(json_object_get(v, "message"))) != 0 ||
            strcmp(err.request_id, json_string_value(json_object_get(v, "request_id"))) != 0 ||
            err.retryable != json_is_true(json_object_get(v, "retryable")) ||
            err.throttling != json_is_true(json_object_get(v, "throttling"))) {
            char *want = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);

            snprintf(why, sizeof(why),
                     "got kind=%d status=%ld code=%s message=%s request_id=%s retryable=%d "
                     "throttling=%d; want %s",
                     err.kind, err.http_status, err.code, err.message, err.request_id,
                     err.retryable, err.throttling, want);
            free(want);
            bad = 1;
        }
    } else if (aws_protocol_parse_response(svc, op, &resp, &got, &payload, &err) != 0) {
        snprintf(why, sizeof(why), "parse failed: %s: %s", err.code, err.message);
        bad = 1;
    } else if (!docs_equal(got, json_object_get(g, "expected"), why, sizeof(why))) {
        bad = 1;
    } else if ((v = json_object_get(g, "expected_payload")) != NULL &&
               (payload.len != json_string_length(v) ||
                memcmp(payload.data, json_string_value(v), payload.len) != 0)) {
        snprintf(why, sizeof(why), "payload of %zu bytes differs", payload.len);
        bad = 1;
    }
    if (bad)
        fprintf(stderr, "golden %s: %s\n", file, why);
    json_decref(got);
    aws_buf_free(&payload);
    json_decref(g);
    return bad;
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static void test_golden_responses_match_botocore(void **state)
{
    char dir[1024];
    struct dirent **names = NULL;
    int n, bad = 0, errors = 0;
    bool protocols[4] = {false};

    (void)state;
    snprintf(dir, sizeof(dir), "%s/tests/golden/parse", source_dir());
    n = scandir(dir, &names, json_file, alphasort);
    assert_true(n >= 50);
    for (int i = 0; i < n; i++) {
        const struct aws_service_model *svc;
        char service[256];

        snprintf(service, sizeof(service), "%s", names[i]->d_name);
        *strchr(service, '.') = '\0';
        svc = aws_model_service(service);
        if (svc != NULL)
            protocols[svc->protocol] = true;
        if (strstr(names[i]->d_name, ".error_") != NULL)
            errors++;
        bad += check_golden(dir, names[i]->d_name);
        free(names[i]);
    }
    free(names);
    assert_int_equal(bad, 0);
    assert_true(errors >= 8);
    for (int p = 0; p < 4; p++)
        assert_true(protocols[p]);
}

/* ---- a hand-built model -------------------------------------------------- */

enum {
    S_OUT,
    S_STRING,
    S_INT,
    S_DOUBLE,
    S_TS,
    S_BOOL,
    S_BLOB,
    S_ITEMS,
    S_ATTRS,
    S_LONG,
    S_ITEM,
    S_FLATLIST,
    S_FLATMAP,
    S_REST,
    S_INTLIST,
    S_GETOUT,
    S_STREAM,
    S_POLICYOUT,
    S_CONFIGOUT,
    S_NODE,
    S_N
};

static const struct aws_member out_members[] = {
    {"Name", NULL, NULL, S_STRING, AWS_LOC_BODY, 0},
    {"Count", NULL, NULL, S_INT, AWS_LOC_BODY, 0},
    {"Ratio", NULL, NULL, S_DOUBLE, AWS_LOC_BODY, 0},
    {"When", NULL, NULL, S_TS, AWS_LOC_BODY, 0},
    {"Flag", NULL, NULL, S_BOOL, AWS_LOC_BODY, 0},
    {"Data", NULL, NULL, S_BLOB, AWS_LOC_BODY, 0},
    {"Items", NULL, NULL, S_ITEMS, AWS_LOC_BODY, 0},
    {"Attrs", NULL, NULL, S_ATTRS, AWS_LOC_BODY, 0},
    {"Big", NULL, NULL, S_LONG, AWS_LOC_BODY, 0},
    {"Renamed", "wireName", NULL, S_STRING, AWS_LOC_BODY, 0},
    {"Entries", NULL, NULL, S_FLATLIST, AWS_LOC_BODY, 0},
    {"Props", "Prop", NULL, S_FLATMAP, AWS_LOC_BODY, 0},
    {"Kind", "xsi:type", NULL, S_STRING, AWS_LOC_BODY, AWS_MEMBER_XML_ATTRIBUTE},
    {"Tree", NULL, NULL, S_NODE, AWS_LOC_BODY, 0},
};

static const struct aws_member node_members[] = {
    {"Id", NULL, NULL, S_STRING, AWS_LOC_BODY, 0},
    {"Child", NULL, NULL, S_NODE, AWS_LOC_BODY, 0},
};

static const struct aws_member item_members[] = {
    {"Id", NULL, NULL, S_STRING, AWS_LOC_BODY, 0},
    {"Count", "count", NULL, S_INT, AWS_LOC_BODY, 0},
};

static const struct aws_member rest_members[] = {
    {"ContentLength", "Content-Length", NULL, S_LONG, AWS_LOC_HEADER, 0},
    {"Modified", "Last-Modified", NULL, S_TS, AWS_LOC_HEADER, 0},
    {"Meta", "x-amz-meta-", NULL, S_ATTRS, AWS_LOC_HEADERS, 0},
    {"Status", NULL, NULL, S_INT, AWS_LOC_STATUS_CODE, 0},
    {"Parts", "x-amz-parts", NULL, S_INTLIST, AWS_LOC_HEADER, 0},
    {"Flag", "x-amz-flag", NULL, S_BOOL, AWS_LOC_HEADER, 0},
    {"Name", NULL, NULL, S_STRING, AWS_LOC_BODY, 0},
    {"Items", NULL, NULL, S_ITEMS, AWS_LOC_BODY, 0},
};

static const struct aws_member get_members[] = {
    {"Body", NULL, NULL, S_STREAM, AWS_LOC_BODY, AWS_MEMBER_PAYLOAD},
    {"ETag", "ETag", NULL, S_STRING, AWS_LOC_HEADER, 0},
};

static const struct aws_member policy_members[] = {
    {"Policy", NULL, NULL, S_STRING, AWS_LOC_BODY, AWS_MEMBER_PAYLOAD},
};

static const struct aws_member config_members[] = {
    {"Config", NULL, NULL, S_ITEM, AWS_LOC_BODY, AWS_MEMBER_PAYLOAD},
};

#define SCALAR(n, t)                                                                               \
    {                                                                                              \
        n, t, 0, AWS_TS_DEFAULT, NULL, 0, AWS_NO_SHAPE, NULL, AWS_NO_SHAPE, NULL, AWS_NO_SHAPE,    \
            NULL, NULL                                                                             \
    }
#define STRUCT(n, m)                                                                               \
    {                                                                                              \
        n, AWS_SHAPE_STRUCTURE, 0, AWS_TS_DEFAULT, m, sizeof(m) / sizeof(m[0]), AWS_NO_SHAPE,      \
            NULL, AWS_NO_SHAPE, NULL, AWS_NO_SHAPE, NULL, NULL                                     \
    }

static const struct aws_shape shapes[S_N] = {
    [S_OUT] = STRUCT("Out", out_members),
    [S_STRING] = SCALAR("String", AWS_SHAPE_STRING),
    [S_INT] = SCALAR("Integer", AWS_SHAPE_INTEGER),
    [S_DOUBLE] = SCALAR("Double", AWS_SHAPE_DOUBLE),
    [S_TS] = SCALAR("Timestamp", AWS_SHAPE_TIMESTAMP),
    [S_BOOL] = SCALAR("Boolean", AWS_SHAPE_BOOLEAN),
    [S_BLOB] = SCALAR("Blob", AWS_SHAPE_BLOB),
    [S_ITEMS] = {"Items", AWS_SHAPE_LIST, 0, AWS_TS_DEFAULT, NULL, 0, S_ITEM, NULL, AWS_NO_SHAPE,
                 NULL, AWS_NO_SHAPE, NULL, NULL},
    [S_ATTRS] = {"Attrs", AWS_SHAPE_MAP, 0, AWS_TS_DEFAULT, NULL, 0, AWS_NO_SHAPE, NULL, S_STRING,
                 NULL, S_STRING, NULL, NULL},
    [S_LONG] = SCALAR("Long", AWS_SHAPE_LONG),
    [S_ITEM] = STRUCT("Item", item_members),
    [S_FLATLIST] = {"FlatList", AWS_SHAPE_LIST, AWS_SHAPE_FLATTENED, AWS_TS_DEFAULT, NULL, 0,
                    S_STRING, "Entry", AWS_NO_SHAPE, NULL, AWS_NO_SHAPE, NULL, NULL},
    [S_FLATMAP] = {"FlatMap", AWS_SHAPE_MAP, AWS_SHAPE_FLATTENED, AWS_TS_DEFAULT, NULL, 0,
                   AWS_NO_SHAPE, NULL, S_STRING, "Name", S_INT, "Value", NULL},
    [S_REST] = STRUCT("RestOut", rest_members),
    [S_INTLIST] = {"IntList", AWS_SHAPE_LIST, 0, AWS_TS_DEFAULT, NULL, 0, S_INT, NULL, AWS_NO_SHAPE,
                   NULL, AWS_NO_SHAPE, NULL, NULL},
    [S_GETOUT] = STRUCT("GetOut", get_members),
    [S_STREAM] = {"Stream", AWS_SHAPE_BLOB, AWS_SHAPE_STREAMING, AWS_TS_DEFAULT, NULL, 0,
                  AWS_NO_SHAPE, NULL, AWS_NO_SHAPE, NULL, AWS_NO_SHAPE, NULL, NULL},
    [S_POLICYOUT] = STRUCT("PolicyOut", policy_members),
    [S_CONFIGOUT] = STRUCT("ConfigOut", config_members),
    [S_NODE] = STRUCT("Node", node_members),
};

static const struct aws_operation json_ops[] = {
    {"Describe", "POST", "/", AWS_NO_SHAPE, S_OUT, NULL, NULL, NULL, NULL, 0, 0},
    {"Nothing", "POST", "/", AWS_NO_SHAPE, AWS_NO_SHAPE, NULL, NULL, NULL, NULL, 0, 0},
};

static const struct aws_operation query_ops[] = {
    {"Describe", "POST", "/", AWS_NO_SHAPE, S_OUT, "DescribeResult", NULL, NULL, NULL, 0, 0},
    {"Nothing", "POST", "/", AWS_NO_SHAPE, AWS_NO_SHAPE, NULL, NULL, NULL, NULL, 0, 0},
};

static const struct aws_operation rest_ops[] = {
    {"Config", "GET", "/{Bucket}?config", AWS_NO_SHAPE, S_CONFIGOUT, NULL, NULL, NULL, NULL, 0, 0},
    {"Get", "GET", "/{Bucket}/{Key+}", AWS_NO_SHAPE, S_GETOUT, NULL, NULL, NULL, NULL, 0, 0},
    {"List", "GET", "/{Bucket}", AWS_NO_SHAPE, S_REST, NULL, NULL, NULL, NULL, 0, 0},
    {"Policy", "GET", "/{Bucket}?policy", AWS_NO_SHAPE, S_POLICYOUT, NULL, NULL, NULL, NULL, 0, 0},
};

#define SERVICE(nm, proto, ops)                                                                    \
    {                                                                                              \
        .name = nm, .service_id = nm, .endpoint_prefix = nm, .signing_name = nm,                   \
        .protocol = proto, .api_version = "2020-01-01", .shapes = shapes, .n_shapes = S_N,         \
        .operations = ops, .n_operations = sizeof(ops) / sizeof(ops[0])                            \
    }

static const struct aws_service_model json_svc = SERVICE("tjson", AWS_PROTOCOL_JSON, json_ops);
static const struct aws_service_model query_svc = SERVICE("tquery", AWS_PROTOCOL_QUERY, query_ops);
static const struct aws_service_model ec2_svc = SERVICE("tec2", AWS_PROTOCOL_EC2, query_ops);
static const struct aws_service_model rest_svc = SERVICE("trest", AWS_PROTOCOL_REST_XML, rest_ops);

/* Parses body with op of svc; returns the document (asserting success). */
static json_t *parse_ok(const struct aws_service_model *svc, const char *op_name,
                        struct fake_response *f)
{
    const struct aws_operation *op = aws_model_operation(svc, op_name);
    struct aws_error err;
    json_t *out = NULL;

    assert_non_null(op);
    if (aws_protocol_parse_response(svc, op, &f->resp, &out, NULL, &err) != 0)
        fail_msg("parse failed: %s: %s", err.code, err.message);
    assert_non_null(out);
    return out;
}

static void expect_doc(json_t *got, const char *want_text)
{
    json_error_t jerr;
    json_t *want = json_loads(want_text, 0, &jerr);
    char why[2048];

    if (want == NULL)
        fail_msg("bad expectation: %s", jerr.text);
    if (!docs_equal(got, want, why, sizeof(why)))
        fail_msg("%s", why);
    json_decref(want);
    json_decref(got);
}

static void parse_fails(const struct aws_service_model *svc, const char *op_name,
                        struct fake_response *f, enum aws_error_kind kind, const char *needle)
{
    const struct aws_operation *op = aws_model_operation(svc, op_name);
    struct aws_error err;
    json_t *out = (json_t *)(uintptr_t)1;

    assert_int_equal(aws_protocol_parse_response(svc, op, &f->resp, &out, NULL, &err), -1);
    assert_null(out);
    assert_int_equal(err.kind, kind);
    if (needle != NULL && strstr(err.message, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

/* ---- timestamps ----------------------------------------------------------- */

static void test_timestamp_formats(void **state)
{
    static const struct {
        const char *text;
        double want;
    } ok[] = {
        {"2023-11-14T22:13:20Z", 1700000000},
        {"2023-11-14T22:13:20.123Z", 1700000000.123},
        {"2023-11-14T22:13:20.123456789Z", 1700000000.123456789},
        {"2023-11-14T22:13:20z", 1700000000},
        {"2023-11-14T23:13:20+01:00", 1700000000},
        {"2023-11-14T14:13:20-0800", 1700000000},
        {"2023-11-14T22:13:20+00", 1700000000},
        {"2023-11-14T22:13:20", 1700000000},
        {"2023-11-14 22:13:20Z", 1700000000},
        {"2023-11-14T22:13Z", 1699999980},
        {"20231114T221320Z", 1700000000},
        {"2023-11-14", 1699920000},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},
        {"2024-02-29T00:00:00Z", 1709164800},
        {"Tue, 14 Nov 2023 22:13:20 GMT", 1700000000},
        {"Tue, 14 Nov 2023 22:13:20 UTC", 1700000000},
        {"Tue, 14 Nov 2023 23:13:20 +0100", 1700000000},
        {"14 Nov 2023 22:13:20 GMT", 1700000000},
        {"Tuesday, 14-Nov-23 22:13:20 GMT", 1700000000},
        {"Tue Nov 14 22:13:20 2023", 1700000000},
        {"Thu Jan  1 00:00:00 1970", 0},
        {"1700000000", 1700000000},
        {"1700000000.5", 1700000000.5},
        {"  1700000000 ", 1700000000},
    };
    static const char *const bad[] = {
        "",
        "yesterday",
        "2023-13-01T00:00:00Z",
        "2023-02-30T00:00:00Z",
        "2023-11-14T25:00:00Z",
        "2023-11-14T22:13:20Q",
        "2023-11-14T22:13:20.Z",
        "Tue, 14 Foo 2023 22:13:20 GMT",
        "Tue, 14 Nov 2023 22:13:20 GMT trailing",
        "1e400",
        "nan",
        "inf",
        "99999999999999999999",
    };
    double v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (parse_timestamp(ok[i].text, &v) != 0)
            fail_msg("\"%s\" not parsed", ok[i].text);
        if (fabs(v - ok[i].want) > 1e-6)
            fail_msg("\"%s\" -> %.9f, want %.9f", ok[i].text, v, ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_timestamp(bad[i], &v) == 0)
            fail_msg("\"%s\" parsed as %f", bad[i], v);
}

static void test_timestamp_json_form(void **state)
{
    json_t *v;

    (void)state;
    v = parse_timestamp_json(1700000000.0);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 1700000000);
    json_decref(v);
    v = parse_timestamp_json(1700000000.25);
    assert_true(json_is_real(v));
    assert_true(json_real_value(v) == 1700000000.25);
    json_decref(v);
    assert_null(parse_timestamp_json(NAN));
}

/* ---- awsJson ------------------------------------------------------------ */

static void test_json_conversion(void **state)
{
    struct fake_response f;

    (void)state;
    fake(&f, 200,
         "{\"Name\":\"a &amp; b\",\"Count\":\"42\",\"Ratio\":3,\"When\":\"2023-11-14T22:13:20.5Z\","
         "\"Flag\":\"true\",\"Data\":\"aGVsbG8=\",\"Big\":9007199254740993,"
         "\"wireName\":\"renamed\",\"Renamed\":\"not me\",\"Unknown\":{\"x\":1},"
         "\"Items\":[{\"Id\":\"i-1\",\"count\":2.0},null,{\"Id\":\"i-2\"}],"
         "\"Attrs\":{\"k\":\"v\",\"empty\":\"\",\"nil\":null}}",
         NULL);
    expect_doc(parse_ok(&json_svc, "Describe", &f),
               "{\"Name\":\"a &amp; b\",\"Count\":42,\"Ratio\":3.0,\"When\":1700000000.5,"
               "\"Flag\":true,\"Data\":\"aGVsbG8=\",\"Big\":9007199254740993,"
               "\"Renamed\":\"renamed\",\"Items\":[{\"Id\":\"i-1\",\"Count\":2},null,"
               "{\"Id\":\"i-2\"}],\"Attrs\":{\"k\":\"v\",\"empty\":\"\",\"nil\":null}}");
}

static void test_json_types_are_exact(void **state)
{
    struct fake_response f;
    const struct aws_operation *op = aws_model_operation(&json_svc, "Describe");
    struct aws_error err;
    json_t *out;

    (void)state;
    /* Ratio is a real even when sent as an integer; Count an integer. */
    fake(&f, 200, "{\"Ratio\":3,\"Count\":7,\"When\":1700000000}", NULL);
    assert_int_equal(aws_protocol_parse_response(&json_svc, op, &f.resp, &out, NULL, &err), 0);
    assert_true(json_is_real(json_object_get(out, "Ratio")));
    assert_true(json_is_integer(json_object_get(out, "Count")));
    assert_true(json_is_integer(json_object_get(out, "When")));
    json_decref(out);
    /* Nulls for members mean absent; an empty body is an empty output. */
    fake(&f, 200, "{\"Name\":null,\"Items\":null}", NULL);
    expect_doc(parse_ok(&json_svc, "Describe", &f), "{}");
    fake(&f, 200, NULL, NULL);
    expect_doc(parse_ok(&json_svc, "Describe", &f), "{}");
    fake(&f, 200, "{\"ignored\":1}", NULL);
    expect_doc(parse_ok(&json_svc, "Nothing", &f), "{}");
}

static void test_json_mismatch_names_member(void **state)
{
    struct fake_response f;

    (void)state;
    fake(&f, 200, "{\"Items\":[{\"Id\":\"a\"},{\"Id\":\"b\",\"count\":\"many\"}]}", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "Items[1].Count: invalid integer");
    fake(&f, 200, "{\"Items\":{\"Id\":\"a\"}}", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "Items: expected an array");
    fake(&f, 200, "{\"Name\":5}", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "Name: expected a string");
    fake(&f, 200, "{\"When\":\"soon\"}", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "When: invalid timestamp");
    fake(&f, 200, "{\"Count\":3000000000}", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "Count: integer out of range");
    fake(&f, 200, "{\"Count\":1.5}", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "Count: expected an integer");
    fake(&f, 200, "{\"Attrs\":{\"k\":1}}", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "Attrs[\"k\"]: expected a string");
    fake(&f, 200, "{\"Name\":\"x\"", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "invalid JSON");
    fake(&f, 200, "[1,2]", NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "expected an object");
}

/* ---- XML protocols ------------------------------------------------------ */

static void test_query_unwraps_result(void **state)
{
    struct fake_response f;

    (void)state;
    fake(&f, 200,
         "<?xml version=\"1.0\"?><DescribeResponse xmlns=\"urn:x\" "
         "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
         "<DescribeResult xsi:type=\"Ignored\"><Name>a &amp; b &lt;c&gt; &#233;</Name>"
         "<Count> 42 </Count><Ratio>1.5E1</Ratio><When>2023-11-14T22:13:20.500Z</When>"
         "<Flag>false</Flag><Data>aGVs\n bG8=</Data><Big>-9007199254740993</Big>"
         "<wireName><![CDATA[<raw & cdata>]]></wireName><Unknown><x>1</x></Unknown>"
         "<Items><member><Id>i-1</Id><count>2</count></member>"
         "<member><Id>i-2</Id><Extra/></member></Items>"
         "<Attrs><entry><key>k</key><value>v</value></entry>"
         "<entry><key>empty</key><value/></entry></Attrs>"
         "<Entry>one</Entry><Other/><Entry>two</Entry>"
         "<Prop><Name>a</Name><Value>1</Value></Prop><Prop><Value>2</Value><Name>b</Name></Prop>"
         "</DescribeResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
         "</DescribeResponse>",
         NULL);
    expect_doc(parse_ok(&query_svc, "Describe", &f),
               "{\"Name\":\"a & b <c> \u00e9\",\"Count\":42,\"Ratio\":15.0,"
               "\"When\":1700000000.5,\"Flag\":false,\"Data\":\"aGVsbG8=\","
               "\"Big\":-9007199254740993,\"Renamed\":\"<raw & cdata>\","
               "\"Items\":[{\"Id\":\"i-1\",\"Count\":2},{\"Id\":\"i-2\"}],"
               "\"Attrs\":{\"k\":\"v\",\"empty\":\"\"},\"Entries\":[\"one\",\"two\"],"
               "\"Props\":{\"a\":1,\"b\":2},\"Kind\":\"Ignored\"}");
}

static void test_query_edge_cases(void **state)
{
    struct fake_response f;

    (void)state;
    /* Empty list element: empty array; a single flattened item: one-item array. */
    fake(&f, 200,
         "<DescribeResponse><DescribeResult><Items/><Attrs></Attrs><Entry/>"
         "<Name/></DescribeResult></DescribeResponse>",
         NULL);
    expect_doc(parse_ok(&query_svc, "Describe", &f),
               "{\"Items\":[],\"Attrs\":{},\"Entries\":[\"\"],\"Name\":\"\"}");
    /* No output shape: {} (the body must still be XML). */
    fake(&f, 200, "<NothingResponse><ResponseMetadata/></NothingResponse>", NULL);
    expect_doc(parse_ok(&query_svc, "Nothing", &f), "{}");
    fake(&f, 200, "<NothingResponse>", NULL);
    parse_fails(&query_svc, "Nothing", &f, AWS_ERR_PARSE, "invalid XML");
    /* A missing result wrapper is an error, not an empty result. */
    fake(&f, 200, "<DescribeResponse><Other/></DescribeResponse>", NULL);
    parse_fails(&query_svc, "Describe", &f, AWS_ERR_PARSE, "no <DescribeResult>");
    fake(&f, 200,
         "<DescribeResponse><DescribeResult><Count>x1</Count></DescribeResult>"
         "</DescribeResponse>",
         NULL);
    parse_fails(&query_svc, "Describe", &f, AWS_ERR_PARSE, "Count: invalid integer");
    fake(&f, 200,
         "<DescribeResponse><DescribeResult><Items><member><count>1e3</count></member>"
         "</Items></DescribeResult></DescribeResponse>",
         NULL);
    parse_fails(&query_svc, "Describe", &f, AWS_ERR_PARSE, "Items[0].Count: invalid integer");
    fake(&f, 200,
         "<DescribeResponse><DescribeResult><Ratio>NaN</Ratio></DescribeResult>"
         "</DescribeResponse>",
         NULL);
    parse_fails(&query_svc, "Describe", &f, AWS_ERR_PARSE, "Ratio: invalid number");
    fake(&f, 200,
         "<DescribeResponse><DescribeResult><Flag>TRUE</Flag><Count>-0</Count>"
         "</DescribeResult></DescribeResponse>",
         NULL);
    expect_doc(parse_ok(&query_svc, "Describe", &f), "{\"Flag\":false,\"Count\":0}");
}

static void test_ec2_root_is_output(void **state)
{
    struct fake_response f;

    (void)state;
    fake(&f, 200,
         "<DescribeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
         "<requestId>r</requestId><Name>n</Name><Items><item><Id>a</Id></item>"
         "<item><Id>b</Id></item></Items></DescribeResponse>",
         NULL);
    expect_doc(parse_ok(&ec2_svc, "Describe", &f),
               "{\"Name\":\"n\",\"Items\":[{\"Id\":\"a\"},{\"Id\":\"b\"}]}");
}

static void test_restxml_headers_and_status(void **state)
{
    struct fake_response f;

    (void)state;
    fake(&f, 206,
         "<ListResult><Name>b</Name><Items><member><Id>x</Id></member></Items></ListResult>",
         "content-length", "74", "last-modified", "Tue, 14 Nov 2023 22:13:20 GMT",
         "x-amz-meta-color", "blue", "X-Amz-Meta-Size", "L", "x-amz-parts", "1, 2,3", "x-amz-flag",
         "true", "x-amz-request-id", "req", NULL);
    expect_doc(parse_ok(&rest_svc, "List", &f),
               "{\"ContentLength\":74,\"Modified\":1700000000,\"Meta\":{\"color\":\"blue\","
               "\"Size\":\"L\"},\"Status\":206,\"Parts\":[1,2,3],\"Flag\":true,\"Name\":\"b\","
               "\"Items\":[{\"Id\":\"x\"}]}");
    /* The headers map is always there, as botocore returns it. */
    fake(&f, 200, NULL, NULL);
    expect_doc(parse_ok(&rest_svc, "List", &f), "{\"Meta\":{},\"Status\":200}");
    /* Header bytes that are not UTF-8 are read as ISO-8859-1, never refused. */
    fake(&f, 200, NULL, "x-amz-meta-note", "caf\xe9", "x-amz-meta-ok", "caf\xc3\xa9", NULL);
    expect_doc(parse_ok(&rest_svc, "List", &f),
               "{\"Meta\":{\"note\":\"caf\u00e9\",\"ok\":\"caf\u00e9\"},\"Status\":200}");
    fake(&f, 200, NULL, "content-length", "seven", NULL);
    parse_fails(&rest_svc, "List", &f, AWS_ERR_PARSE, "ContentLength: invalid integer");
    fake(&f, 200, NULL, "last-modified", "someday", NULL);
    parse_fails(&rest_svc, "List", &f, AWS_ERR_PARSE, "Modified: invalid timestamp");
}

static void test_restxml_payloads(void **state)
{
    struct fake_response f;
    const struct aws_operation *op = aws_model_operation(&rest_svc, "Get");
    struct aws_buf payload;
    struct aws_error err;
    json_t *out;
    static const char binary[] = "\x00\x01<not xml>\xff";

    (void)state;
    /* A streaming blob is moved to payload_out and not parsed as XML. */
    fake(&f, 200, NULL, "etag", "\"abc\"", NULL);
    f.resp.body = (unsigned char *)(uintptr_t)binary;
    f.resp.body_len = sizeof(binary) - 1;
    aws_buf_init(&payload, 0);
    assert_int_equal(aws_protocol_parse_response(&rest_svc, op, &f.resp, &out, &payload, &err), 0);
    assert_int_equal(payload.len, sizeof(binary) - 1);
    assert_memory_equal(payload.data, binary, payload.len);
    expect_doc(out, "{\"ETag\":\"\\\"abc\\\"\"}");
    aws_buf_free(&payload);
    /* Discarded when payload_out is NULL; bounded by payload_out's maximum. */
    assert_int_equal(aws_protocol_parse_response(&rest_svc, op, &f.resp, &out, NULL, &err), 0);
    json_decref(out);
    aws_buf_init(&payload, 4);
    assert_int_equal(aws_protocol_parse_response(&rest_svc, op, &f.resp, &out, &payload, &err), -1);
    assert_null(out);
    assert_int_equal(err.kind, AWS_ERR_TOO_LARGE);
    aws_buf_free(&payload);
    /* A string payload is the body text. */
    fake(&f, 200, "{\"Version\":\"2012-10-17\"}", NULL);
    expect_doc(parse_ok(&rest_svc, "Policy", &f),
               "{\"Policy\":\"{\\\"Version\\\":\\\"2012-10-17\\\"}\"}");
    /* A structure payload is the root element, whatever its name. */
    fake(&f, 200, "<Anything><Id>c1</Id><count>3</count></Anything>", NULL);
    expect_doc(parse_ok(&rest_svc, "Config", &f), "{\"Config\":{\"Id\":\"c1\",\"Count\":3}}");
    fake(&f, 200, NULL, NULL);
    expect_doc(parse_ok(&rest_svc, "Config", &f), "{\"Config\":{}}");
}

static void test_restxml_error_in_200(void **state)
{
    struct fake_response f;
    const struct aws_operation *op = aws_model_operation(&rest_svc, "List");
    struct aws_error err;
    json_t *out;

    (void)state;
    fake(&f, 200,
         "<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code><Message>We encountered an "
         "internal error.</Message><RequestId>656c76696e6727732072657175657374</RequestId>"
         "</Error>",
         NULL);
    assert_int_equal(aws_protocol_parse_response(&rest_svc, op, &f.resp, &out, NULL, &err), -1);
    assert_null(out);
    assert_int_equal(err.kind, AWS_ERR_SERVICE);
    assert_int_equal(err.http_status, 500);
    assert_string_equal(err.code, "InternalError");
    assert_string_equal(err.request_id, "656c76696e6727732072657175657374");
    assert_true(err.retryable);
}

/* ---- errors --------------------------------------------------------------- */

static void parse_err(const struct aws_service_model *svc, struct fake_response *f,
                      struct aws_error *err)
{
    memset(err, 0x5a, sizeof(*err));
    assert_int_equal(aws_protocol_parse_error(svc, &svc->operations[0], &f->resp, err), -1);
    assert_int_equal(err->kind, AWS_ERR_SERVICE);
    assert_int_equal(err->http_status, f->resp.status);
}

static void test_json_error_codes(void **state)
{
    struct fake_response f;
    struct aws_error err;

    (void)state;
    fake(&f, 400,
         "{\"__type\":\"com.amazon.coral.service#UnrecognizedClientException:http://internal."
         "amazon.com/coral/com.amazon.coral.service/\",\"message\":\"The security token is "
         "invalid.\"}",
         "x-amzn-RequestId", "rid-1", NULL);
    parse_err(&json_svc, &f, &err);
    assert_string_equal(err.code, "UnrecognizedClientException");
    assert_string_equal(err.message, "The security token is invalid.");
    assert_string_equal(err.request_id, "rid-1");
    assert_false(err.retryable);
    /* x-amzn-ErrorType wins over the body. */
    fake(&f, 400, "{\"__type\":\"Other\",\"Message\":\"m\"}", "x-amzn-errortype",
         "ThrottlingException:http://internal.amazon.com/coral/", NULL);
    parse_err(&json_svc, &f, &err);
    assert_string_equal(err.code, "ThrottlingException");
    assert_string_equal(err.message, "m");
    assert_true(err.throttling);
    assert_true(err.retryable);
    /* "code" member, no request id header: the body's RequestId. */
    fake(&f, 409, "{\"code\":\"ResourceInUse\",\"message\":\"busy\",\"RequestId\":\"b-1\"}", NULL);
    parse_err(&json_svc, &f, &err);
    assert_string_equal(err.code, "ResourceInUse");
    assert_string_equal(err.request_id, "b-1");
    /* awsQueryCompatible services. */
    fake(&f, 400, "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\"}", "x-amzn-query-error",
         "AWS.SimpleQueueService.NonExistentQueue;Sender", NULL);
    parse_err(&json_svc, &f, &err);
    assert_string_equal(err.code, "AWS.SimpleQueueService.NonExistentQueue");
    assert_string_equal(err.message, "Bad Request");
}

static void test_malformed_error_bodies(void **state)
{
    static const char *const bodies[] = {
        "<html><body><b>Http/1.1 Service Unavailable</b></body></html>",
        "{\"__type\":",
        "<Error><Code>unterminated",
        "\x01\x02\xff garbage",
        "[]",
        "<ErrorResponse><Error><Message>no code</Message></Error></ErrorResponse>",
    };
    const struct aws_service_model *svcs[] = {&json_svc, &query_svc, &ec2_svc, &rest_svc};
    struct fake_response f;
    struct aws_error err;

    (void)state;
    for (size_t s = 0; s < 4; s++)
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
            fake(&f, 500, bodies[i], NULL);
            parse_err(svcs[s], &f, &err);
            assert_string_equal(err.code, "Http500");
            assert_true(err.retryable);
            assert_false(err.throttling);
            assert_true(strlen(err.message) > 0);
            for (const char *p = err.message; *p; p++)
                assert_true((unsigned char)*p >= 0x20);
        }
    /* Empty bodies: named after the status when it has a name. */
    fake(&f, 404, NULL, NULL);
    parse_err(&json_svc, &f, &err);
    assert_string_equal(err.code, "NotFound");
    assert_string_equal(err.message, "Not Found");
    fake(&f, 503, NULL, "retry-after", "7", NULL);
    parse_err(&rest_svc, &f, &err);
    assert_string_equal(err.code, "Http503");
    assert_string_equal(err.message, "Service Unavailable");
    assert_int_equal(err.retry_after_ms, 7000);
    assert_true(err.retryable);
    fake(&f, 418, NULL, NULL);
    parse_err(&query_svc, &f, &err);
    assert_string_equal(err.code, "Http418");
    assert_string_equal(err.message, "HTTP status 418");
    assert_false(err.retryable);
    fake(&f, 429, NULL, NULL);
    parse_err(&query_svc, &f, &err);
    assert_true(err.throttling);
}

static void test_error_fields_are_bounded(void **state)
{
    struct fake_response f;
    struct aws_error err;
    struct aws_buf body = {0};
    json_t *msg;

    (void)state;
    assert_int_equal(aws_buf_append_str(&body, "<ErrorResponse><Error><Code>"), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(aws_buf_append_str(&body, "Long"), 0);
    assert_int_equal(aws_buf_append_str(&body, "</Code><Message>"), 0);
    for (int i = 0; i < 400; i++) /* 2-byte UTF-8 characters straddle the cut */
        assert_int_equal(aws_buf_append_str(&body, "\xc3\xa9"), 0);
    assert_int_equal(aws_buf_append_str(&body, "\nline\t2</Message></Error><RequestId>"), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(aws_buf_append_str(&body, "id"), 0);
    assert_int_equal(aws_buf_append_str(&body, "</RequestId></ErrorResponse>"), 0);
    fake(&f, 400, body.data, NULL);
    parse_err(&query_svc, &f, &err);
    assert_int_equal(strlen(err.code), sizeof(err.code) - 1);
    assert_true(strlen(err.message) < sizeof(err.message));
    msg = json_string(err.message); /* still valid UTF-8 */
    assert_non_null(msg);
    json_decref(msg);
    assert_int_equal(strlen(err.request_id), sizeof(err.request_id) - 1);
    aws_buf_free(&body);
}

static void test_error_request_id_sources(void **state)
{
    struct fake_response f;
    struct aws_error err;

    (void)state;
    /* Header first (S3's x-amz-request-id), then the body. */
    fake(&f, 404, "<Error><Code>NoSuchBucket</Code><RequestId>body-id</RequestId></Error>",
         "x-amz-request-id", "hdr-id", NULL);
    parse_err(&rest_svc, &f, &err);
    assert_string_equal(err.code, "NoSuchBucket");
    assert_string_equal(err.request_id, "hdr-id");
    fake(&f, 404, "<Error><Code>NoSuchBucket</Code><RequestId>body-id</RequestId></Error>", NULL);
    parse_err(&rest_svc, &f, &err);
    assert_string_equal(err.request_id, "body-id");
    /* EC2 says RequestID. */
    fake(&f, 400,
         "<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>bad</Message>"
         "</Error></Errors><RequestID>ec2-id</RequestID></Response>",
         NULL);
    parse_err(&ec2_svc, &f, &err);
    assert_string_equal(err.code, "InvalidParameterValue");
    assert_string_equal(err.request_id, "ec2-id");
    assert_false(err.retryable);
}

/* ---- hostile input -------------------------------------------------------- */

static void test_entity_attacks_refused(void **state)
{
    static const char *const attacks[] = {
        /* billion laughs */
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
        "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
        "<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
        "<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
        "<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
        "<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
        "<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">]>"
        "<DescribeResponse><DescribeResult><Name>&lol9;</Name></DescribeResult>"
        "</DescribeResponse>",
        /* external entity (XXE) */
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
        "<DescribeResponse><DescribeResult><Name>&xxe;</Name></DescribeResult>"
        "</DescribeResponse>",
        /* external DTD */
        "<?xml version=\"1.0\"?><!DOCTYPE DescribeResponse SYSTEM \"http://127.0.0.1:9/x.dtd\">"
        "<DescribeResponse><DescribeResult><Name>n</Name></DescribeResult></DescribeResponse>",
        /* undeclared entity */
        "<DescribeResponse><DescribeResult><Name>&undeclared;</Name></DescribeResult>"
        "</DescribeResponse>",
    };
    struct fake_response f;
    struct aws_error err;

    (void)state;
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        fake(&f, 200, attacks[i], NULL);
        parse_fails(&query_svc, "Describe", &f, AWS_ERR_PARSE, NULL);
        /* The error path reads the same body without expanding anything. */
        fake(&f, 400, attacks[i], NULL);
        parse_err(&query_svc, &f, &err);
        assert_string_equal(err.code, "Http400");
    }
}

static void test_oversized_responses_refused(void **state)
{
    size_t n = AWS_PARSE_MAX_BODY + 1;
    char *big = malloc(n + 1);
    struct fake_response f;
    struct aws_error err;

    (void)state;
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "<a>", 3);
    memcpy(big + n - 4, "</a>", 4);
    big[n] = '\0';
    fake(&f, 200, big, NULL);
    parse_fails(&query_svc, "Describe", &f, AWS_ERR_TOO_LARGE, NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_TOO_LARGE, NULL);
    parse_fails(&rest_svc, "List", &f, AWS_ERR_TOO_LARGE, NULL);
    /* An oversized error body still yields an error with the status. */
    fake(&f, 500, big, NULL);
    parse_err(&query_svc, &f, &err);
    assert_string_equal(err.code, "Http500");
    free(big);
}

/* Builds {"Tree":{"Child":{"Child":...}}} (or the XML equivalent) depth deep. */
static void nested(struct aws_buf *b, int depth, bool xml)
{
    aws_buf_reset(b);
    assert_int_equal(aws_buf_append_str(b, xml ? "<R><Tree>" : "{\"Tree\":"), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(
            aws_buf_append_str(b, xml ? "<Child><Id>x</Id>" : "{\"Id\":\"x\",\"Child\":"), 0);
    assert_int_equal(aws_buf_append_str(b, xml ? "" : "{}"), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(aws_buf_append_str(b, xml ? "</Child>" : "}"), 0);
    assert_int_equal(aws_buf_append_str(b, xml ? "</Tree></R>" : "}"), 0);
}

static void test_deep_nesting_refused(void **state)
{
    struct aws_buf b = {0};
    struct fake_response f;
    json_t *out;

    (void)state;
    /* Within the limit: parsed. */
    nested(&b, 40, false);
    fake(&f, 200, b.data, NULL);
    out = parse_ok(&json_svc, "Describe", &f);
    assert_non_null(json_object_get(json_object_get(json_object_get(out, "Tree"), "Child"), "Id"));
    json_decref(out);
    nested(&b, 40, true);
    fake(&f, 200, b.data, NULL);
    json_decref(parse_ok(&ec2_svc, "Describe", &f));
    /* Past AWS_PARSE_MAX_DEPTH (shapes), jansson's and libxml2's own limits. */
    nested(&b, 100, false);
    fake(&f, 200, b.data, NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, "nesting too deep");
    nested(&b, 100, true);
    fake(&f, 200, b.data, NULL);
    parse_fails(&ec2_svc, "Describe", &f, AWS_ERR_PARSE, "nesting too deep");
    nested(&b, 5000, false);
    fake(&f, 200, b.data, NULL);
    parse_fails(&json_svc, "Describe", &f, AWS_ERR_PARSE, NULL);
    nested(&b, 5000, true);
    fake(&f, 200, b.data, NULL);
    parse_fails(&ec2_svc, "Describe", &f, AWS_ERR_PARSE, NULL);
    aws_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_responses_match_botocore),
        cmocka_unit_test(test_timestamp_formats),
        cmocka_unit_test(test_timestamp_json_form),
        cmocka_unit_test(test_json_conversion),
        cmocka_unit_test(test_json_types_are_exact),
        cmocka_unit_test(test_json_mismatch_names_member),
        cmocka_unit_test(test_query_unwraps_result),
        cmocka_unit_test(test_query_edge_cases),
        cmocka_unit_test(test_ec2_root_is_output),
        cmocka_unit_test(test_restxml_headers_and_status),
        cmocka_unit_test(test_restxml_payloads),
        cmocka_unit_test(test_restxml_error_in_200),
        cmocka_unit_test(test_json_error_codes),
        cmocka_unit_test(test_malformed_error_bodies),
        cmocka_unit_test(test_error_fields_are_bounded),
        cmocka_unit_test(test_error_request_id_sources),
        cmocka_unit_test(test_entity_attacks_refused),
        cmocka_unit_test(test_oversized_responses_refused),
        cmocka_unit_test(test_deep_nesting_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
