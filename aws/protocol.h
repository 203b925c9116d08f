/* AWS wire protocols (awsJson, Query, EC2, REST-XML): model-driven request
 * serialization from json_t and response/error parsing into json_t.
 * Pure functions of their inputs; any thread.
 *
 * Data model shared by every protocol: an operation's input and output are
 * JSON objects keyed by the model's member names. Strings are JSON strings;
 * integer/long JSON integers; float/double JSON reals (integers accepted on
 * input); booleans JSON booleans; timestamps JSON numbers of unix seconds
 * (fractions allowed); blobs (other than streaming payloads) base64 strings;
 * lists arrays; maps objects. Absent members are omitted, never null. */
#ifndef AVIARY_AWS_PROTOCOL_H
#define AVIARY_AWS_PROTOCOL_H

#include <jansson.h>
#include <stddef.h>

#include "aws/buffer.h"
#include "aws/error.h"
#include "aws/http.h"
#include "aws/model.h"

#define AWS_WIRE_MAX_HEADERS 32

/* Raw bytes of a streaming blob payload (S3 PutObject/UploadPart body).
 * Borrowed. */
struct aws_blob {
    const unsigned char *data;
    size_t len;
};

/* A serialized request, before endpoint, host and signature are added.
 * Owns its strings; release with aws_wire_request_clear. */
struct aws_wire_request {
    const char *method;   /* static string from the model */
    struct aws_buf path;  /* URI-encoded path starting with '/', e.g. "/b/k%20x" (no host) */
    struct aws_buf query; /* URI-encoded query string without '?', may be empty */
    char *header_names[AWS_WIRE_MAX_HEADERS]; /* lower-case; owned */
    char *header_values[AWS_WIRE_MAX_HEADERS];
    size_t n_headers;
    struct aws_buf body;     /* serialized body (JSON, form, XML), may be empty */
    struct aws_blob payload; /* borrowed raw payload; when data != NULL it is the body */
};

/* Serializes `input` (may be NULL for "no members") for `op`. Idempotency
 * tokens that are absent are filled with fresh UUIDs. For rest-xml, the
 * bucket and key go into the path (path-style addressing; the client
 * rewrites for virtual-hosted style if it uses it). Returns 0, or -1 with
 * *err (AWS_ERR_INVALID naming the member, e.g. "Tags[0].Key: expected
 * string") and *out cleared. */
int aws_protocol_serialize(const struct aws_service_model *svc, const struct aws_operation *op,
                           const json_t *input, const struct aws_blob *payload,
                           struct aws_wire_request *out, struct aws_error *err);

void aws_wire_request_clear(struct aws_wire_request *req);

/* Adds a header (copied). Returns 0, or -1 when full or out of memory. */
int aws_wire_request_add_header(struct aws_wire_request *req, const char *name, const char *value);

/* Parses a successful (2xx) response of `op` into a new JSON object (*out,
 * owned by the caller; an empty object when the operation has no output).
 * For outputs with a streaming blob payload (S3 GetObject) the body bytes are
 * copied into *payload_out (which may be NULL to discard them) and not put in
 * the JSON. XML is parsed without network access, DTDs or entity expansion.
 * Returns 0, or -1 with *out NULL and *err of kind:
 *  - AWS_ERR_PARSE: the body is malformed or does not match the model
 *    (the message names the member, e.g. "Contents[2].Size: ...");
 *  - AWS_ERR_TOO_LARGE: a JSON or XML body exceeds 16 MiB
 *    (AWS_PARSE_MAX_BODY), or a streaming payload does not fit payload_out's
 *    maximum (payload_out is then left unchanged);
 *  - AWS_ERR_NO_MEMORY;
 *  - AWS_ERR_SERVICE: S3 answered 200 with an <Error> document (late
 *    failures of CompleteMultipartUpload, CopyObject, UploadPartCopy); *err
 *    is filled as aws_protocol_parse_error does for a 500 (code, message,
 *    request id, http_status 500, retryable), and the call may be retried;
 *  - AWS_ERR_INTERNAL: svc, op or resp is NULL, or body_len > 0 with no body.
 * The client retries only the AWS_ERR_SERVICE case (when err->retryable). */
int aws_protocol_parse_response(const struct aws_service_model *svc, const struct aws_operation *op,
                                const struct aws_http_response *resp, json_t **out,
                                struct aws_buf *payload_out, struct aws_error *err);

/* Fills *err from an error response (non-2xx) of `op`: kind AWS_ERR_SERVICE,
 * http_status, code (namespace and "#"/":" decorations stripped), message,
 * request id (x-amzn-RequestId, x-amz-request-id, or the body's RequestId),
 * then classifies it (aws_error_classify). Bodiless errors (S3 HEAD) get the
 * code from the status (404 -> "NotFound", 403 -> "Forbidden", ...). Never
 * fails; always returns -1 for convenience. */
int aws_protocol_parse_error(const struct aws_service_model *svc, const struct aws_operation *op,
                             const struct aws_http_response *resp, struct aws_error *err);

#endif
