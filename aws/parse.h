/* Internal to the response parsers (aws/protocol_parse.c, aws/parse_json.c,
 * aws/parse_xml.c): per-protocol entry points and the helpers they share.
 * Not part of the client's interface. Pure; any thread. */
#ifndef AVIARY_AWS_PARSE_H
#define AVIARY_AWS_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "aws/buffer.h"
#include "aws/error.h"
#include "aws/http.h"
#include "aws/model.h"

/* Largest response body the parsers will look at (streaming payloads are
 * copied, not parsed, and bounded only by the HTTP layer). */
#define AWS_PARSE_MAX_BODY (16u * 1024u * 1024u)

/* Deepest shape nesting followed; deeper documents are a parse error. */
#define AWS_PARSE_MAX_DEPTH 64

/* Per-protocol halves of aws_protocol_parse_response, same contract:
 * return 0 and a new object in *out, or -1 with *err and *out NULL. */
int parse_json_response(const struct aws_service_model *svc, const struct aws_operation *op,
                        const struct aws_http_response *resp, json_t **out, struct aws_error *err);
int parse_xml_response(const struct aws_service_model *svc, const struct aws_operation *op,
                       const struct aws_http_response *resp, json_t **out,
                       struct aws_buf *payload_out, struct aws_error *err);

/* Parses a timestamp in any form AWS sends one: epoch seconds ("1700000000",
 * "1700000000.25"), ISO 8601 ("2023-01-02T03:04:05Z", fractional seconds,
 * "+01:00"/"-0800" offsets or none meaning UTC, "20230102T030405Z", a date
 * alone), RFC 822/1123 ("Mon, 02 Jan 2023 03:04:05 GMT"), RFC 850 and
 * asctime dates. Returns 0 and *out in unix seconds, or -1. */
int parse_timestamp(const char *text, double *out);

/* The data model's form of a timestamp: a JSON integer when whole, else a
 * real. New reference, or NULL when out of memory or not finite. */
json_t *parse_timestamp_json(double secs);

/* First value of a response header, compared case-insensitively, or NULL. */
const char *parse_header(const struct aws_http_response *resp, const char *name);

/* A member path for error messages: "Services[0].Deployments[2].CreatedAt".
 * Truncated (never overflowing) when deeper than the buffer. */
struct parse_path {
    char buf[256];
    size_t len;
};

/* Appends ".name" (or "name" at the start) or "[i]"; each returns the
 * previous length, to give back to parse_path_pop. */
size_t parse_path_push_name(struct parse_path *p, const char *name);
size_t parse_path_push_index(struct parse_path *p, size_t i);
size_t parse_path_push_key(struct parse_path *p, const char *key);
void parse_path_pop(struct parse_path *p, size_t len);

/* Sets *err to AWS_ERR_PARSE "<path>: <what>" (or just what at the root).
 * Returns -1. */
int parse_fail(struct aws_error *err, const struct parse_path *p, const char *what);

/* Converts a scalar given as text (an XML element's text or a header value)
 * to the data model for the shape sh: strings as-is, integers/longs,
 * floats/doubles (finite only), booleans ("true" is true, anything else
 * false, as botocore reads them), timestamps (parse_timestamp), blobs as
 * base64 text without whitespace. Returns a new reference, or NULL with
 * *err set (naming path p) when the text does not fit the shape. */
json_t *parse_scalar_text(const struct aws_shape *sh, const char *text, size_t len,
                          const struct parse_path *p, struct aws_error *err);

#endif
