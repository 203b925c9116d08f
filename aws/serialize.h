/* Internal to the request serializers (aws/protocol_serialize.c and
 * aws/serialize_*.c): the per-protocol entry points and the value formatting
 * they share. Not part of the client's interface. Pure; any thread. */
#ifndef AVIARY_AWS_SERIALIZE_H
#define AVIARY_AWS_SERIALIZE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "aws/buffer.h"
#include "aws/error.h"
#include "aws/model.h"
#include "aws/protocol.h"

/* Per-protocol serializers. They run after the input has been validated
 * against the model (ser_validate), so they only fail on memory or size
 * limits or on rules of their protocol (rest-xml URI labels); they return 0,
 * or -1 with *err set, leaving *out partly filled for the caller to clear.
 * `input` is never NULL here (an empty object stands for no input). */
int ser_json(const struct aws_service_model *svc, const struct aws_operation *op,
             const json_t *input, struct aws_wire_request *out, struct aws_error *err);
int ser_query(const struct aws_service_model *svc, const struct aws_operation *op,
              const json_t *input, struct aws_wire_request *out, struct aws_error *err);
int ser_restxml(const struct aws_service_model *svc, const struct aws_operation *op,
                const json_t *input, const struct aws_blob *payload, struct aws_wire_request *out,
                struct aws_error *err);

/* Checks `v` against the shape at index `shape`: JSON types, unknown members,
 * missing required members (idempotency tokens and streaming payloads, which
 * may come as the raw payload argument, are exempt). Returns 0, or -1 with
 * *err AWS_ERR_INVALID naming the member path ("Tags[1].Value: expected
 * string"). */
int ser_validate(const struct aws_service_model *svc, uint16_t shape, const json_t *v,
                 struct aws_error *err);

/* The value of member m in obj; when it is absent and m is an idempotency
 * token, a new JSON string holding a fresh UUIDv4 is stored in *owned (the
 * caller json_decref()s it) and returned. NULL when absent otherwise, or when
 * no UUID could be made (then *err is set and *failed true). */
const json_t *ser_member_value(const json_t *obj, const struct aws_member *m, json_t **owned,
                               bool *failed, struct aws_error *err);

#define SER_NUM_MAX 64 /* enough for any formatted number or timestamp */

/* Formats a JSON number: integers in decimal, reals as Python's repr() does
 * (shortest round-trip digits, "1.0", "1e+16", "1.5e-05"), which is what
 * botocore sends. Returns 0, or -1 for a non-number or non-finite value. */
int ser_format_number(const json_t *v, char out[SER_NUM_MAX]);

/* Formats a timestamp given as unix seconds (JSON integer or real):
 * AWS_TS_ISO8601 "2023-01-02T03:04:05Z" (".123456" before the Z when there
 * are microseconds), AWS_TS_RFC822 "Mon, 02 Jan 2023 03:04:05 GMT" (whole
 * seconds), AWS_TS_UNIX whole seconds. AWS_TS_DEFAULT must be resolved by
 * the caller. Returns 0, or -1 when the value is not a representable time. */
int ser_format_timestamp(const json_t *v, enum aws_timestamp_format fmt, char out[SER_NUM_MAX]);

/* The timestamp format of a shape, or `dflt` when the model leaves it to the
 * protocol. */
enum aws_timestamp_format ser_ts_format(const struct aws_shape *sh, enum aws_timestamp_format dflt);

/* Appends s[0..n) percent-encoded: unreserved characters (A-Z a-z 0-9 - . _ ~)
 * and the bytes in `also_safe` stay, a space becomes '+' when `space_plus`
 * (form encoding), everything else is %XX with upper-case hex. Returns 0 or
 * -1 (buffer limit). */
int ser_pct_encode(struct aws_buf *b, const char *s, size_t n, const char *also_safe,
                   bool space_plus);

/* Appends the standard base64 encoding (with padding) of d[0..n). Returns 0
 * or -1. */
int ser_base64(struct aws_buf *b, const unsigned char *d, size_t n);

/* Sets *err to AWS_ERR_NO_MEMORY for a failed buffer operation. Returns -1. */
int ser_oom(struct aws_error *err);

#endif
