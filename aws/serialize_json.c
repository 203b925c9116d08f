/* awsJson 1.0/1.1 request serializer: POST / with X-Amz-Target and a JSON
 * body written as botocore writes it (json.dumps: ", " and ": " separators,
 * non-ASCII as \u escapes). Pure; any thread. */
#include "aws/serialize.h"

#include <stdio.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s[*i]; returns the code point or -1. */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    size_t len;
    long cp;

    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if ((c & 0xe0u) == 0xc0u) {
        len = 2;
        cp = c & 0x1fu;
    } else if ((c & 0xf0u) == 0xe0u) {
        len = 3;
        cp = c & 0x0fu;
    } else if ((c & 0xf8u) == 0xf0u) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return -1;
    }
    if (*i + len > n)
        return -1;
    for (size_t k = 1; k < len; k++) {
        if ((s[*i + k] & 0xc0u) != 0x80u)
            return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3fu);
    }
    *i += len;
    return cp;
}

/* Appends a JSON string literal, escaping as Python's json.dumps does with
 * ensure_ascii. Returns 0, or -1 (buffer limit or invalid UTF-8). */
static int json_string_out(struct aws_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    if (aws_buf_append_char(b, '"') < 0)
        return -1;
    while (i < n) {
        long cp = utf8_next(u, n, &i);
        int rc;

        if (cp < 0)
            return -1;
        switch (cp) {
        case '"':
            rc = aws_buf_append_str(b, "\\\"");
            break;
        case '\\':
            rc = aws_buf_append_str(b, "\\\\");
            break;
        case '\n':
            rc = aws_buf_append_str(b, "\\n");
            break;
        case '\r':
            rc = aws_buf_append_str(b, "\\r");
            break;
        case '\t':
            rc = aws_buf_append_str(b, "\\t");
            break;
        case '\b':
            rc = aws_buf_append_str(b, "\\b");
            break;
        case '\f':
            rc = aws_buf_append_str(b, "\\f");
            break;
        default:
            if (cp >= 0x20 && cp < 0x7f)
                rc = aws_buf_append_char(b, (char)cp);
            else if (cp < 0x10000)
                rc = aws_buf_printf(b, "\\u%04lx", cp);
            else
                rc = aws_buf_printf(b, "\\u%04lx\\u%04lx", 0xd800 + ((cp - 0x10000) >> 10),
                                    0xdc00 + ((cp - 0x10000) & 0x3ff));
            break;
        }
        if (rc < 0)
            return -1;
    }
    return aws_buf_append_char(b, '"');
}

static int json_value(const struct aws_service_model *svc, uint16_t idx, const json_t *v,
                      struct aws_buf *b, struct aws_error *err);

static int json_structure(const struct aws_service_model *svc, const struct aws_shape *sh,
                          const json_t *v, struct aws_buf *b, struct aws_error *err)
{
    bool first = true;

    if (aws_buf_append_char(b, '{') < 0)
        return ser_oom(err);
    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        const char *key = m->location_name != NULL ? m->location_name : m->name;
        json_t *owned;
        bool failed;
        const json_t *mv = ser_member_value(v, m, &owned, &failed, err);
        int rc;

        if (failed)
            return -1;
        if (mv == NULL)
            continue;
        if ((!first && aws_buf_append_str(b, ", ") < 0) ||
            json_string_out(b, key, strlen(key)) < 0 || aws_buf_append_str(b, ": ") < 0)
            rc = ser_oom(err);
        else
            rc = json_value(svc, m->shape, mv, b, err);
        json_decref(owned);
        if (rc < 0)
            return -1;
        first = false;
    }
    if (aws_buf_append_char(b, '}') < 0)
        return ser_oom(err);
    return 0;
}

static int json_value(const struct aws_service_model *svc, uint16_t idx, const json_t *v,
                      struct aws_buf *b, struct aws_error *err)
{
    const struct aws_shape *sh = aws_model_shape(svc, idx);
    char num[SER_NUM_MAX];

    switch ((enum aws_shape_type)sh->type) {
    case AWS_SHAPE_STRUCTURE:
        return json_structure(svc, sh, v, b, err);
    case AWS_SHAPE_LIST: {
        size_t i;
        const json_t *item;

        if (aws_buf_append_char(b, '[') < 0)
            return ser_oom(err);
        json_array_foreach(v, i, item)
        {
            if (i > 0 && aws_buf_append_str(b, ", ") < 0)
                return ser_oom(err);
            if (json_value(svc, sh->member, item, b, err) < 0)
                return -1;
        }
        return aws_buf_append_char(b, ']') < 0 ? ser_oom(err) : 0;
    }
    case AWS_SHAPE_MAP: {
        const char *key;
        const json_t *val;
        bool first = true;

        if (aws_buf_append_char(b, '{') < 0)
            return ser_oom(err);
        json_object_foreach((json_t *)v, key, val)
        {
            if ((!first && aws_buf_append_str(b, ", ") < 0) ||
                json_string_out(b, key, strlen(key)) < 0 || aws_buf_append_str(b, ": ") < 0)
                return ser_oom(err);
            if (json_value(svc, sh->value, val, b, err) < 0)
                return -1;
            first = false;
        }
        return aws_buf_append_char(b, '}') < 0 ? ser_oom(err) : 0;
    }
    case AWS_SHAPE_STRING:
    case AWS_SHAPE_BLOB: /* already base64 in the data model */
        if (json_string_out(b, json_string_value(v), json_string_length(v)) < 0)
            return ser_oom(err);
        return 0;
    case AWS_SHAPE_INTEGER:
    case AWS_SHAPE_LONG:
    case AWS_SHAPE_FLOAT:
    case AWS_SHAPE_DOUBLE:
        if (ser_format_number(v, num) < 0 || aws_buf_append_str(b, num) < 0)
            return ser_oom(err);
        return 0;
    case AWS_SHAPE_BOOLEAN:
        return aws_buf_append_str(b, json_is_true(v) ? "true" : "false") < 0 ? ser_oom(err) : 0;
    case AWS_SHAPE_TIMESTAMP: {
        enum aws_timestamp_format fmt = ser_ts_format(sh, AWS_TS_UNIX);
        int rc;

        if (ser_format_timestamp(v, fmt, num) < 0)
            return aws_error_set(err, AWS_ERR_INVALID, "bad timestamp");
        rc = fmt == AWS_TS_UNIX ? aws_buf_append_str(b, num) : json_string_out(b, num, strlen(num));
        return rc < 0 ? ser_oom(err) : 0;
    }
    }
    return aws_error_set(err, AWS_ERR_INTERNAL, "model: bad shape type %u", sh->type);
}

int ser_json(const struct aws_service_model *svc, const struct aws_operation *op,
             const json_t *input, struct aws_wire_request *out, struct aws_error *err)
{
    char buf[256];

    if (svc->target_prefix == NULL || svc->json_version == NULL)
        return aws_error_set(err, AWS_ERR_INTERNAL, "%s: no targetPrefix/jsonVersion", svc->name);
    if (aws_buf_append_char(&out->path, '/') < 0)
        return ser_oom(err);
    snprintf(buf, sizeof(buf), "%s.%s", svc->target_prefix, op->name);
    if (aws_wire_request_add_header(out, "X-Amz-Target", buf) < 0)
        return ser_oom(err);
    snprintf(buf, sizeof(buf), "application/x-amz-json-%s", svc->json_version);
    if (aws_wire_request_add_header(out, "Content-Type", buf) < 0)
        return ser_oom(err);
    if (op->input == AWS_NO_SHAPE)
        return aws_buf_append_str(&out->body, "{}") < 0 ? ser_oom(err) : 0;
    return json_value(svc, op->input, input, &out->body, err);
}
