/* SigV4 tests: every case of AWS's official suite (one cmocka test per case
 * directory), golden values computed with botocore, the key cache and
 * concurrent signing. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aws/sigv4.h"

#define MAX_CASES   256
#define MAX_HEADERS 32

/* request.txt, parsed. */
struct vector_request {
    char *method;
    char *path;
    char *query;
    char *names[MAX_HEADERS];
    char *values[MAX_HEADERS];
    struct sigv4_header headers[MAX_HEADERS];
    size_t n_headers;
    char *body;
    size_t body_len;
};

static char suite_dir[1024];

static char *read_file(const char *dir, const char *name, size_t *len_out)
{
    char path[2048];
    FILE *f;
    char *data = NULL;
    long len;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    data = malloc((size_t)len + 1);
    if (data == NULL)
        goto out;
    if (fread(data, 1, (size_t)len, f) != (size_t)len) {
        free(data);
        data = NULL;
        goto out;
    }
    data[len] = '\0';
    if (len_out != NULL)
        *len_out = (size_t)len;
out:
    fclose(f);
    return data;
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void strip_trailing_newlines(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Parses "METHOD target HTTP/1.1", header lines (a line starting with white
 * space continues the previous value), a blank line and the body. */
static void parse_request(const char *text, size_t len, struct vector_request *vr)
{
    const char *p = text, *end = text + len, *eol, *sp1, *sp2, *q;

    memset(vr, 0, sizeof(*vr));
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
        eol = end;
    sp1 = memchr(p, ' ', (size_t)(eol - p));
    assert_non_null(sp1);
    sp2 = eol;
    while (sp2 > sp1 && *(sp2 - 1) != ' ')
        sp2--;
    assert_true(sp2 > sp1 + 1);
    sp2--; /* the space before HTTP/1.1 */
    vr->method = dup_range(p, (size_t)(sp1 - p));
    q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
    if (q != NULL) {
        vr->path = dup_range(sp1 + 1, (size_t)(q - sp1 - 1));
        vr->query = dup_range(q + 1, (size_t)(sp2 - q - 1));
    } else {
        vr->path = dup_range(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    }
    p = eol < end ? eol + 1 : end;

    while (p < end) {
        size_t line_len;
        const char *colon;

        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        line_len = (size_t)(eol - p);
        if (line_len > 0 && p[line_len - 1] == '\r')
            line_len--;
        if (line_len == 0) {
            p = eol < end ? eol + 1 : end;
            vr->body = dup_range(p, (size_t)(end - p));
            vr->body_len = (size_t)(end - p);
            return;
        }
        if (p[0] == ' ' || p[0] == '\t') {
            char *prev, *joined;
            size_t prev_len;

            assert_true(vr->n_headers > 0);
            prev = vr->values[vr->n_headers - 1];
            prev_len = strlen(prev);
            joined = malloc(prev_len + 1 + line_len + 1);
            assert_non_null(joined);
            memcpy(joined, prev, prev_len);
            joined[prev_len] = '\n';
            memcpy(joined + prev_len + 1, p, line_len);
            joined[prev_len + 1 + line_len] = '\0';
            free(prev);
            vr->values[vr->n_headers - 1] = joined;
        } else {
            assert_true(vr->n_headers < MAX_HEADERS);
            colon = memchr(p, ':', line_len);
            assert_non_null(colon);
            vr->names[vr->n_headers] = dup_range(p, (size_t)(colon - p));
            vr->values[vr->n_headers] = dup_range(colon + 1, line_len - (size_t)(colon + 1 - p));
            vr->n_headers++;
        }
        p = eol < end ? eol + 1 : end;
    }
}

static void free_request(struct vector_request *vr)
{
    free(vr->method);
    free(vr->path);
    free(vr->query);
    free(vr->body);
    for (size_t i = 0; i < vr->n_headers; i++) {
        free(vr->names[i]);
        free(vr->values[i]);
    }
}

static int64_t parse_timestamp(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    assert_int_equal(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static void copy_field(char *dst, size_t size, const char *src)
{
    assert_non_null(src);
    assert_true(strlen(src) < size);
    strcpy(dst, src);
}

static bool json_flag(json_t *ctx, const char *key)
{
    json_t *v = json_object_get(ctx, key);

    return v != NULL && json_is_true(v);
}

/* One suite case: sign request.txt with context.json and compare the
 * canonical request, string to sign and signature. */
static void run_vector(void **state)
{
    const char *dir = *state;
    struct vector_request vr;
    struct aws_credentials creds;
    struct sigv4_params params;
    struct sigv4_request req;
    struct sigv4_result res;
    json_t *ctx, *jcreds;
    json_error_t jerr;
    char *text, *ctx_text, *want_cr, *want_sts, *want_sig, want_auth_sig[80];
    size_t len;

    text = read_file(dir, "request.txt", &len);
    ctx_text = read_file(dir, "context.json", NULL);
    want_cr = read_file(dir, "header-canonical-request.txt", NULL);
    want_sts = read_file(dir, "header-string-to-sign.txt", NULL);
    want_sig = read_file(dir, "header-signature.txt", NULL);
    assert_non_null(text);
    assert_non_null(ctx_text);
    assert_non_null(want_cr);
    assert_non_null(want_sts);
    assert_non_null(want_sig);
    strip_trailing_newlines(want_cr);
    strip_trailing_newlines(want_sts);
    strip_trailing_newlines(want_sig);

    ctx = json_loads(ctx_text, 0, &jerr);
    assert_non_null(ctx);
    jcreds = json_object_get(ctx, "credentials");
    assert_non_null(jcreds);
    memset(&creds, 0, sizeof(creds));
    copy_field(creds.access_key_id, sizeof(creds.access_key_id),
               json_string_value(json_object_get(jcreds, "access_key_id")));
    copy_field(creds.secret_access_key, sizeof(creds.secret_access_key),
               json_string_value(json_object_get(jcreds, "secret_access_key")));
    if (json_object_get(jcreds, "token") != NULL)
        copy_field(creds.session_token, sizeof(creds.session_token),
                   json_string_value(json_object_get(jcreds, "token")));

    memset(&params, 0, sizeof(params));
    params.region = json_string_value(json_object_get(ctx, "region"));
    params.service = json_string_value(json_object_get(ctx, "service"));
    params.time = parse_timestamp(json_string_value(json_object_get(ctx, "timestamp")));
    params.no_path_normalization = !json_flag(ctx, "normalize");
    params.sign_content_sha256 = json_flag(ctx, "sign_body");
    params.omit_session_token = json_flag(ctx, "omit_session_token");

    parse_request(text, len, &vr);
    for (size_t i = 0; i < vr.n_headers; i++) {
        vr.headers[i].name = vr.names[i];
        vr.headers[i].value = vr.values[i];
    }
    memset(&req, 0, sizeof(req));
    req.method = vr.method;
    req.path = vr.path;
    req.query = vr.query;
    req.headers = vr.headers;
    req.n_headers = vr.n_headers;
    req.payload = (const unsigned char *)vr.body;
    req.payload_len = vr.body_len;

    assert_int_equal(sigv4_sign_debug(NULL, &creds, &params, &req, &res), 0);
    assert_string_equal(res.canonical_request.data, want_cr);
    assert_string_equal(res.string_to_sign.data, want_sts);
    assert_string_equal(res.signature, want_sig);
    snprintf(want_auth_sig, sizeof(want_auth_sig), "Signature=%s", want_sig);
    assert_non_null(strstr(res.authorization, want_auth_sig));
    if (creds.session_token[0] != '\0')
        assert_string_equal(res.security_token, creds.session_token);
    sigv4_result_clear(&res);

    /* The cached path gives the same signature, twice. */
    {
        struct sigv4_signer *signer = sigv4_signer_new();

        assert_non_null(signer);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(sigv4_sign(signer, &creds, &params, &req, &res), 0);
            assert_string_equal(res.signature, want_sig);
            sigv4_result_clear(&res);
        }
        sigv4_signer_free(signer);
    }

    aws_credentials_clear(&creds);
    free_request(&vr);
    json_decref(ctx);
    free(text);
    free(ctx_text);
    free(want_cr);
    free(want_sts);
    free(want_sig);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the case directories (those holding request.txt), sorted. */
static size_t list_cases(char **names, size_t max)
{
    DIR *d = opendir(suite_dir);
    struct dirent *e;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < max) {
        char probe[2048];
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(probe, sizeof(probe), "%s/%s/request.txt", suite_dir, e->d_name);
        f = fopen(probe, "rb");
        if (f == NULL)
            continue;
        fclose(f);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    return n;
}

static void test_suite_present(void **state)
{
    size_t *n = *state;

    /* The official suite has 38 header-form cases; all must be found. */
    assert_true(*n >= 38);
}

static void fill_creds(struct aws_credentials *c, const char *akid, const char *secret,
                       const char *token)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->access_key_id, akid);
    strcpy(c->secret_access_key, secret);
    if (token != NULL)
        strcpy(c->session_token, token);
}

/* 2013-05-24T00:00:00Z, the date of AWS's published S3 examples. */
#define T_20130524 1369353600

/* AWS's S3 GetObject example (also what botocore's S3SigV4Auth produces). */
static void test_s3_get_object_example(void **state)
{
    struct aws_credentials c;
    struct sigv4_params p = {
        .region = "us-east-1", .service = "s3", .time = T_20130524, .s3 = true};
    struct sigv4_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
    struct sigv4_request r = {.method = "GET", .path = "/test.txt", .headers = h, .n_headers = 2};
    struct sigv4_result res;

    (void)state;
    fill_creds(&c, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL);
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), 0);
    assert_string_equal(
        res.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
        "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_string_equal(res.content_sha256,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(res.amz_date, "20130524T000000Z");
    assert_string_equal(res.security_token, "");
    sigv4_result_clear(&res);
}

/* S3 signs the encoded path as sent (no double encoding, no normalisation);
 * query values are sorted; the body hash is signed. Golden from botocore. */
static void test_s3_put_encoded_key(void **state)
{
    struct aws_credentials c;
    struct sigv4_params p = {
        .region = "us-west-2", .service = "s3", .time = T_20130524, .s3 = true};
    struct sigv4_header h[] = {{"host", "b.s3.us-west-2.amazonaws.com"}};
    struct sigv4_request r = {.method = "PUT",
                              .path = "/a%20b/c%2Bd.txt",
                              .query = "uploadId=x%2By&partNumber=2",
                              .headers = h,
                              .n_headers = 1,
                              .payload = (const unsigned char *)"hello",
                              .payload_len = 5};
    struct sigv4_result res;

    (void)state;
    fill_creds(&c, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL);
    assert_int_equal(sigv4_sign_debug(NULL, &c, &p, &r, &res), 0);
    assert_non_null(
        strstr(res.canonical_request.data, "PUT\n/a%20b/c%2Bd.txt\npartNumber=2&uploadId=x%2By\n"));
    assert_string_equal(res.signature,
                        "064b2bde6cb2cdf23cfb896d309d807deefde77b41f6dad7f9003d7a0000f2ad");
    sigv4_result_clear(&res);

    /* S3 with UNSIGNED-PAYLOAD: the given hash is used and echoed. */
    r.payload_hash = "UNSIGNED-PAYLOAD";
    assert_int_equal(sigv4_sign_debug(NULL, &c, &p, &r, &res), 0);
    assert_string_equal(res.content_sha256, "UNSIGNED-PAYLOAD");
    assert_non_null(strstr(res.canonical_request.data, "\nUNSIGNED-PAYLOAD"));
    sigv4_result_clear(&res);
}

/* A non-S3 service double-encodes the wire path. Golden from botocore. */
static void test_double_encoded_path(void **state)
{
    struct aws_credentials c;
    struct sigv4_params p = {.region = "us-east-1", .service = "lambda", .time = T_20130524};
    struct sigv4_header h[] = {{"Host", "lambda.us-east-1.amazonaws.com"}};
    struct sigv4_request r = {.method = "GET",
                              .path = "/2015-03-31/functions/arn%3Aaws%3Alambda/invocations",
                              .headers = h,
                              .n_headers = 1};
    struct sigv4_result res;

    (void)state;
    fill_creds(&c, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL);
    assert_int_equal(sigv4_sign_debug(NULL, &c, &p, &r, &res), 0);
    assert_non_null(strstr(res.canonical_request.data,
                           "\n/2015-03-31/functions/arn%253Aaws%253Alambda/invocations\n"));
    assert_string_equal(res.signature,
                        "12414f9875a82a8e895aac459fb81c9509265cd1eb60339c9fa2b4570dc99c6a");
    sigv4_result_clear(&res);
}

/* An ELBv2 Query POST with a session token, as aviary sends it. Golden from
 * botocore's SigV4Auth. */
static const char elb_body[] =
    "Action=DescribeLoadBalancers&Names.member.1=my-lb&Version=2015-12-01";

static void test_query_post_with_token(void **state)
{
    struct aws_credentials c;
    struct sigv4_params p = {
        .region = "eu-central-1", .service = "elasticloadbalancing", .time = T_20130524};
    struct sigv4_header h[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
        {"Host", "elasticloadbalancing.eu-central-1.amazonaws.com"},
        {"X-Amz-Date", "19990101T000000Z"}, /* replaced by the signer's */
        {"Authorization", "stale"},         /* ignored */
    };
    struct sigv4_request r = {.method = "POST",
                              .path = "/",
                              .headers = h,
                              .n_headers = 4,
                              .payload = (const unsigned char *)elb_body,
                              .payload_len = sizeof(elb_body) - 1};
    struct sigv4_result res;

    (void)state;
    fill_creds(&c, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok/en+==");
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), 0);
    assert_string_equal(
        res.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20130524/eu-central-1/elasticloadbalancing/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
        "Signature=7c87a4d4a313fef1fb98b9e08bafe98df2404cdfd0e257b3920171315921d594");
    assert_string_equal(res.security_token, "tok/en+==");
    assert_string_equal(res.content_sha256, "");
    sigv4_result_clear(&res);

    /* omit_session_token: still returned, no longer signed. */
    p.omit_session_token = true;
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), 0);
    assert_non_null(strstr(res.authorization, "SignedHeaders=content-type;host;x-amz-date, "));
    assert_string_equal(res.security_token, "tok/en+==");
    sigv4_result_clear(&res);
}

static void test_invalid_input(void **state)
{
    struct aws_credentials c;
    struct sigv4_params p = {.region = "us-east-1", .service = "sts", .time = T_20130524};
    struct sigv4_header h[] = {{"Host", "sts.amazonaws.com"}};
    struct sigv4_request r = {.method = "GET", .path = "/", .headers = h, .n_headers = 1};
    struct sigv4_result res;

    (void)state;
    fill_creds(&c, "AKID", "secret", NULL);
    assert_int_equal(sigv4_sign(NULL, NULL, &p, &r, &res), -1);
    assert_int_equal(sigv4_sign(NULL, &c, NULL, &r, &res), -1);
    assert_int_equal(sigv4_sign(NULL, &c, &p, NULL, &res), -1);
    p.region = "us/east";
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), -1);
    assert_string_equal(res.authorization, "");
    p.region = "";
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), -1);
    p.region = "us-east-1";
    c.secret_access_key[0] = '\0';
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), -1);
    fill_creds(&c, "AKID", "secret", NULL);
    r.payload_len = 3; /* with a NULL payload */
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), -1);
    r.payload_len = 0;
    h[0].value = NULL;
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), -1);
    h[0].value = "sts.amazonaws.com";
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &res), 0);
    sigv4_result_clear(&res);
}

/* Query canonicalisation: decoded and re-encoded, sorted by name then value,
 * "name=" for a missing value, empty pieces dropped. */
static void test_canonical_query(void **state)
{
    struct aws_credentials c;
    struct sigv4_params p = {
        .region = "us-east-1", .service = "s3", .time = T_20130524, .s3 = true};
    struct sigv4_header h[] = {{"host", "b.s3.amazonaws.com"}};
    struct sigv4_request r = {.method = "GET",
                              .path = "/",
                              .query = "prefix=a%20b%2Fc&b=2&&a=&list-type=2&a=1&acl&x=%7E+%zz",
                              .headers = h,
                              .n_headers = 1};
    struct sigv4_result res;

    (void)state;
    fill_creds(&c, "AKID", "secret", NULL);
    assert_int_equal(sigv4_sign_debug(NULL, &c, &p, &r, &res), 0);
    assert_non_null(strstr(res.canonical_request.data,
                           "\na=&a=1&acl=&b=2&list-type=2&prefix=a%20b%2Fc&x=~%2B%25zz\n"));
    sigv4_result_clear(&res);
}

static void test_uri_encode(void **state)
{
    struct aws_buf b;

    (void)state;
    aws_buf_init(&b, 0);
    assert_int_equal(sigv4_uri_encode(&b, "a b/c~d-_.%+*", 13, false), 0);
    assert_string_equal(b.data, "a%20b%2Fc~d-_.%25%2B%2A");
    aws_buf_reset(&b);
    assert_int_equal(sigv4_uri_encode(&b, "/x y/\xe1\x88\xb4", 8, true), 0);
    assert_string_equal(b.data, "/x%20y/%E1%88%B4");
    aws_buf_free(&b);
    aws_buf_init(&b, 4);
    assert_int_equal(sigv4_uri_encode(&b, "   ", 3, false), -1);
    aws_buf_free(&b);
}

static void test_helpers(void **state)
{
    char out[65], date[17];

    (void)state;
    sigv4_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sigv4_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sigv4_format_amz_date(1440938160, date);
    assert_string_equal(date, "20150830T123600Z");
    sigv4_format_amz_date(0, date);
    assert_string_equal(date, "19700101T000000Z");
}

/* The cache keys on secret, date, region and service: changing any of them
 * changes the signature, and cached results equal uncached ones. */
static void test_key_cache(void **state)
{
    struct sigv4_signer *signer = sigv4_signer_new();
    struct aws_credentials c;
    struct sigv4_params p = {.region = "us-east-1", .service = "ecs", .time = T_20130524};
    struct sigv4_header h[] = {{"host", "ecs.us-east-1.amazonaws.com"}};
    struct sigv4_request r = {.method = "POST", .path = "/", .headers = h, .n_headers = 1};
    struct sigv4_result res, ref;
    char first[65];

    (void)state;
    assert_non_null(signer);
    fill_creds(&c, "AKID", "secret-one", NULL);
    assert_int_equal(sigv4_sign(signer, &c, &p, &r, &res), 0);
    strcpy(first, res.signature);
    sigv4_result_clear(&res);

    strcpy(c.secret_access_key, "secret-two"); /* same key id, new secret */
    assert_int_equal(sigv4_sign(signer, &c, &p, &r, &res), 0);
    assert_string_not_equal(res.signature, first);
    assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &ref), 0);
    assert_string_equal(res.signature, ref.signature);
    sigv4_result_clear(&res);
    sigv4_result_clear(&ref);

    /* More distinct scopes than cache slots, twice round: evictions. */
    for (int round = 0; round < 2; round++) {
        for (int day = 0; day < 20; day++) {
            p.time = T_20130524 + (int64_t)day * 86400;
            assert_int_equal(sigv4_sign(signer, &c, &p, &r, &res), 0);
            assert_int_equal(sigv4_sign(NULL, &c, &p, &r, &ref), 0);
            assert_string_equal(res.signature, ref.signature);
            sigv4_result_clear(&res);
            sigv4_result_clear(&ref);
        }
    }
    aws_credentials_clear(&c);
    sigv4_signer_free(signer);
}

struct thread_arg {
    struct sigv4_signer *signer;
    int id;
    int failures;
};

static void *sign_thread(void *arg)
{
    struct thread_arg *ta = arg;
    static const char *regions[] = {"us-east-1",  "us-west-2",  "eu-west-1",    "eu-central-1",
                                    "ap-south-1", "sa-east-1",  "ca-central-1", "af-south-1",
                                    "me-south-1", "eu-north-1", "ap-east-1",    "us-east-2"};
    struct aws_credentials c;
    struct sigv4_header h[] = {{"host", "example.amazonaws.com"}};
    struct sigv4_request r = {.method = "GET", .path = "/", .headers = h, .n_headers = 1};

    fill_creds(&c, "AKID", "threaded-secret", NULL);
    for (int i = 0; i < 300; i++) {
        struct sigv4_params p = {.region = regions[(i + ta->id) % 12],
                                 .service = "service",
                                 .time = T_20130524 + i % 3 * 86400};
        struct sigv4_result a, b;

        if (sigv4_sign(ta->signer, &c, &p, &r, &a) != 0 || sigv4_sign(NULL, &c, &p, &r, &b) != 0 ||
            strcmp(a.signature, b.signature) != 0)
            ta->failures++;
        sigv4_result_clear(&a);
        sigv4_result_clear(&b);
    }
    aws_credentials_clear(&c);
    return NULL;
}

static void test_concurrent_signing(void **state)
{
    struct sigv4_signer *signer = sigv4_signer_new();
    pthread_t th[4];
    struct thread_arg args[4];

    (void)state;
    assert_non_null(signer);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){signer, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, sign_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    sigv4_signer_free(signer);
}

int main(void)
{
    const char *shared = getenv("AVIARY_SHARED_DIR");
    char *names[MAX_CASES];
    char *dirs[MAX_CASES];
    struct CMUnitTest tests[MAX_CASES + 16];
    size_t n_cases, n = 0;
    int rc;

    if (shared != NULL && shared[0] != '\0')
        snprintf(suite_dir, sizeof(suite_dir), "%s/testdata/aws-sigv4", shared);
    else
        snprintf(suite_dir, sizeof(suite_dir), "%s/../shared/testdata/aws-sigv4",
                 AVIARY_SOURCE_DIR);
    n_cases = list_cases(names, MAX_CASES);

    tests[n++] = (struct CMUnitTest){"suite_present", test_suite_present, NULL, NULL, &n_cases};
    for (size_t i = 0; i < n_cases; i++) {
        size_t len = strlen(suite_dir) + strlen(names[i]) + 2;

        dirs[i] = malloc(len);
        if (dirs[i] == NULL)
            return 1;
        snprintf(dirs[i], len, "%s/%s", suite_dir, names[i]);
        tests[n++] = (struct CMUnitTest){names[i], run_vector, NULL, NULL, dirs[i]};
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_s3_get_object_example);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_s3_put_encoded_key);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_double_encoded_path);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_query_post_with_token);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_invalid_input);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_canonical_query);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_uri_encode);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_helpers);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_key_cache);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_concurrent_signing);

    rc = _cmocka_run_group_tests("sigv4", tests, n, NULL, NULL);
    for (size_t i = 0; i < n_cases; i++) {
        free(names[i]);
        free(dirs[i]);
    }
    return rc;
}
