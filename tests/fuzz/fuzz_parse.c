/* libFuzzer target for the response and error parsers: the input picks an
 * operation (all four protocols), a status and some headers; the rest is the
 * body. Checks that parsing never crashes or leaks and that results honour
 * the documented contract. Built separately: see tests/fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *service;
    const char *operation;
} targets[] = {
    {"ecs", "DescribeServices"},
    {"ecs", "RegisterTaskDefinition"},
    {"sagemaker", "DescribeNotebookInstance"},
    {"logs", "DescribeLogGroups"},
    {"elbv2", "DescribeListeners"},
    {"elbv2", "DescribeTargetGroups"},
    {"cloudwatch", "GetMetricData"},
    {"sns", "GetTopicAttributes"},
    {"iam", "GetRole"},
    {"ec2", "DescribeSecurityGroups"},
    {"ec2", "DescribeNatGateways"},
    {"s3", "ListObjectsV2"},
    {"s3", "ListObjectVersions"},
    {"s3", "GetObject"},
    {"s3", "HeadObject"},
    {"s3", "CompleteMultipartUpload"},
};

static const long statuses[] = {200, 200, 200, 206, 301, 304, 400, 403, 404, 429, 500, 503};

/* Header names whose values come from the input. */
static const char *const header_names[] = {
    "last-modified",        "content-length",     "x-amz-meta-owner", "x-amzn-errortype",
    "x-amz-mp-parts-count", "x-amzn-query-error", "retry-after",      "x-amz-request-id",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void check_error(const struct aws_error *err)
{
    /* Every string is terminated inside its array. */
    if (memchr(err->code, '\0', sizeof(err->code)) == NULL ||
        memchr(err->message, '\0', sizeof(err->message)) == NULL ||
        memchr(err->request_id, '\0', sizeof(err->request_id)) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct aws_service_model *svc;
    const struct aws_operation *op;
    struct aws_http_header headers[N(header_names)];
    char values[N(header_names)][64];
    struct aws_http_response resp = {0};
    struct aws_error err;
    struct aws_buf payload;
    unsigned char *body;
    json_t *out = NULL;
    size_t pos = 3;

    if (size < 3)
        return 0;
    svc = aws_model_service(targets[data[0] % N(targets)].service);
    op = aws_model_operation(svc, targets[data[0] % N(targets)].operation);
    if (svc == NULL || op == NULL)
        abort(); /* the table names operations that must be compiled in */
    resp.status = statuses[data[1] % N(statuses)];
    resp.headers = headers;
    /* data[2]: which headers are present; each value runs to the next '\n'. */
    for (size_t i = 0; i < N(header_names); i++) {
        size_t n = 0;

        if (!(data[2] & (1u << i)))
            continue;
        while (pos < size && data[pos] != '\n' && n < sizeof(values[i]) - 1)
            values[i][n++] = (char)data[pos++];
        values[i][n] = '\0';
        if (pos < size)
            pos++;
        headers[resp.n_headers].name = header_names[i];
        headers[resp.n_headers].value = values[i];
        resp.n_headers++;
    }
    /* The HTTP layer hands bodies over NUL-terminated. */
    body = malloc(size - pos + 1);
    if (body == NULL)
        return 0;
    memcpy(body, data + pos, size - pos);
    body[size - pos] = '\0';
    resp.body = body;
    resp.body_len = size - pos;

    aws_buf_init(&payload, 1u << 20);
    if (aws_protocol_parse_response(svc, op, &resp, &out, &payload, &err) == 0) {
        if (!json_is_object(out))
            abort();
        json_decref(out);
    } else {
        if (out != NULL || err.kind == AWS_ERR_NONE)
            abort();
        check_error(&err);
    }
    aws_buf_free(&payload);

    if (aws_protocol_parse_error(svc, op, &resp, &err) != -1 || err.kind != AWS_ERR_SERVICE ||
        err.http_status != resp.status || err.code[0] == '\0' || err.message[0] == '\0')
        abort();
    check_error(&err);
    free(body);
    return 0;
}
