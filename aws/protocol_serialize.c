/* Request serialization entry point: validates the caller's json_t input
 * against the operation's model, dispatches to the protocol's serializer, and
 * holds the value formatting all serializers share. Pure; any thread. */
#include "aws/serialize.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "aws/uuid.h"

/* ---- the wire request --------------------------------------------------- */

void aws_wire_request_clear(struct aws_wire_request *req)
{
    if (req == NULL)
        return;
    aws_buf_free(&req->path);
    aws_buf_free(&req->query);
    aws_buf_free(&req->body);
    for (size_t i = 0; i < req->n_headers; i++) {
        free(req->header_names[i]);
        free(req->header_values[i]);
        req->header_names[i] = NULL;
        req->header_values[i] = NULL;
    }
    req->n_headers = 0;
    req->method = NULL;
    req->payload.data = NULL;
    req->payload.len = 0;
}

int aws_wire_request_add_header(struct aws_wire_request *req, const char *name, const char *value)
{
    char *n = NULL;
    char *v = NULL;

    if (req == NULL || name == NULL || value == NULL || req->n_headers >= AWS_WIRE_MAX_HEADERS)
        return -1;
    n = strdup(name);
    v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return -1;
    }
    for (char *p = n; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    req->header_names[req->n_headers] = n;
    req->header_values[req->n_headers] = v;
    req->n_headers++;
    return 0;
}

/* ---- validation ---------------------------------------------------------- */

#define VPATH_MAX 256

/* The path of the value being checked, for error messages: "Tags[1].Value". */
struct vpath {
    char s[VPATH_MAX];
    size_t len;
};

/* Appends ".name" (name != NULL) or "[index]" to the path; returns the old
 * length for vpath_pop. A path too long for the buffer is cut short. */
static size_t vpath_push(struct vpath *p, const char *name, size_t index)
{
    size_t old = p->len;
    int n;

    if (name != NULL)
        n = snprintf(p->s + p->len, sizeof(p->s) - p->len, "%s%s", p->len > 0 ? "." : "", name);
    else
        n = snprintf(p->s + p->len, sizeof(p->s) - p->len, "[%zu]", index);
    if (n < 0 || (size_t)n >= sizeof(p->s) - p->len)
        p->len = sizeof(p->s) - 1;
    else
        p->len += (size_t)n;
    return old;
}

static void vpath_pop(struct vpath *p, size_t old)
{
    p->len = old;
    p->s[old] = '\0';
}

static int invalid(struct aws_error *err, const struct vpath *p, const char *what)
{
    if (p->len == 0)
        return aws_error_set(err, AWS_ERR_INVALID, "input: %s", what);
    return aws_error_set(err, AWS_ERR_INVALID, "%s: %s", p->s, what);
}

static bool is_base64(const char *s, size_t n)
{
    size_t pad = 0;

    if (n % 4 != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '=') {
            pad++;
            if (pad > 2)
                return false;
        } else if (pad > 0 || !(isalnum(c) || c == '+' || c == '/')) {
            return false;
        }
    }
    return true;
}

static int validate(const struct aws_service_model *svc, uint16_t idx, const json_t *v,
                    struct vpath *p, int depth, struct aws_error *err);

static int validate_structure(const struct aws_service_model *svc, const struct aws_shape *sh,
                              const json_t *v, struct vpath *p, int depth, struct aws_error *err)
{
    const char *key;
    const json_t *val;

    if (!json_is_object(v))
        return invalid(err, p, "expected structure (object)");
    json_object_foreach((json_t *)v, key, val)
    {
        const struct aws_member *m = NULL;
        size_t old;

        for (uint16_t i = 0; i < sh->n_members; i++) {
            if (strcmp(sh->members[i].name, key) == 0) {
                m = &sh->members[i];
                break;
            }
        }
        if (m == NULL) {
            if (p->len == 0)
                return aws_error_set(err, AWS_ERR_INVALID, "unknown member %s", key);
            return aws_error_set(err, AWS_ERR_INVALID, "%s: unknown member %s", p->s, key);
        }
        old = vpath_push(p, key, 0);
        if (validate(svc, m->shape, val, p, depth + 1, err) < 0)
            return -1;
        vpath_pop(p, old);
    }
    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        const struct aws_shape *ms = aws_model_shape(svc, m->shape);

        if (!(m->flags & AWS_MEMBER_REQUIRED) || (m->flags & AWS_MEMBER_IDEMPOTENCY_TOKEN))
            continue;
        if ((m->flags & AWS_MEMBER_PAYLOAD) && ms != NULL && (ms->flags & AWS_SHAPE_STREAMING))
            continue; /* may come as the raw payload argument */
        if (json_object_get(v, m->name) == NULL) {
            if (p->len == 0)
                return aws_error_set(err, AWS_ERR_INVALID, "missing required member %s", m->name);
            return aws_error_set(err, AWS_ERR_INVALID, "%s: missing required member %s", p->s,
                                 m->name);
        }
    }
    return 0;
}

static int validate(const struct aws_service_model *svc, uint16_t idx, const json_t *v,
                    struct vpath *p, int depth, struct aws_error *err)
{
    const struct aws_shape *sh = aws_model_shape(svc, idx);
    char num[SER_NUM_MAX];

    if (sh == NULL)
        return aws_error_set(err, AWS_ERR_INTERNAL, "model: bad shape index %u", idx);
    if (depth > 32)
        return invalid(err, p, "nested too deeply");
    switch ((enum aws_shape_type)sh->type) {
    case AWS_SHAPE_STRUCTURE:
        return validate_structure(svc, sh, v, p, depth, err);
    case AWS_SHAPE_LIST: {
        size_t i;
        const json_t *item;

        if (!json_is_array(v))
            return invalid(err, p, "expected list (array)");
        json_array_foreach(v, i, item)
        {
            size_t old = vpath_push(p, NULL, i);

            if (validate(svc, sh->member, item, p, depth + 1, err) < 0)
                return -1;
            vpath_pop(p, old);
        }
        return 0;
    }
    case AWS_SHAPE_MAP: {
        const char *key;
        const json_t *val;

        if (!json_is_object(v))
            return invalid(err, p, "expected map (object)");
        json_object_foreach((json_t *)v, key, val)
        {
            size_t old = vpath_push(p, key, 0);

            if (validate(svc, sh->value, val, p, depth + 1, err) < 0)
                return -1;
            vpath_pop(p, old);
        }
        return 0;
    }
    case AWS_SHAPE_STRING:
        return json_is_string(v) ? 0 : invalid(err, p, "expected string");
    case AWS_SHAPE_INTEGER:
        if (!json_is_integer(v))
            return invalid(err, p, "expected integer");
        if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
            return invalid(err, p, "integer out of 32-bit range");
        return 0;
    case AWS_SHAPE_LONG:
        return json_is_integer(v) ? 0 : invalid(err, p, "expected integer");
    case AWS_SHAPE_FLOAT:
    case AWS_SHAPE_DOUBLE:
        if (!json_is_number(v) || ser_format_number(v, num) < 0)
            return invalid(err, p, "expected finite number");
        return 0;
    case AWS_SHAPE_BOOLEAN:
        return json_is_boolean(v) ? 0 : invalid(err, p, "expected boolean");
    case AWS_SHAPE_TIMESTAMP:
        if (!json_is_number(v) || ser_format_timestamp(v, AWS_TS_UNIX, num) < 0)
            return invalid(err, p, "expected timestamp (unix seconds, years 1-9999)");
        return 0;
    case AWS_SHAPE_BLOB:
        if (!json_is_string(v))
            return invalid(err, p, "expected base64 string");
        if (!(sh->flags & AWS_SHAPE_STREAMING) &&
            !is_base64(json_string_value(v), json_string_length(v)))
            return invalid(err, p, "expected base64 string");
        return 0;
    }
    return aws_error_set(err, AWS_ERR_INTERNAL, "model: bad shape type %u", sh->type);
}

int ser_validate(const struct aws_service_model *svc, uint16_t shape, const json_t *v,
                 struct aws_error *err)
{
    struct vpath p;

    p.len = 0;
    p.s[0] = '\0';
    return validate(svc, shape, v, &p, 0, err);
}

const json_t *ser_member_value(const json_t *obj, const struct aws_member *m, json_t **owned,
                               bool *failed, struct aws_error *err)
{
    const json_t *v = json_object_get(obj, m->name);
    char uuid[AWS_UUID_STR_LEN + 1];

    *owned = NULL;
    *failed = false;
    if (v != NULL || !(m->flags & AWS_MEMBER_IDEMPOTENCY_TOKEN))
        return v;
    if (aws_uuid_v4(uuid, sizeof(uuid)) < 0) {
        *failed = true;
        aws_error_set(err, AWS_ERR_INTERNAL, "%s: cannot generate an idempotency token", m->name);
        return NULL;
    }
    *owned = json_string(uuid);
    if (*owned == NULL) {
        *failed = true;
        ser_oom(err);
    }
    return *owned;
}

/* ---- formatting ---------------------------------------------------------- */

/* A double as Python's repr() writes it. */
static int format_double(double d, char out[SER_NUM_MAX])
{
    char tmp[40];
    char digits[20];
    const char *e;
    size_t nd = 0;
    size_t o = 0;
    int exp10;
    int decpt;
    int prec;

    if (!isfinite(d))
        return -1;
    if (d == 0.0) {
        snprintf(out, SER_NUM_MAX, "%s", signbit(d) ? "-0.0" : "0.0");
        return 0;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp is "[-]d[.ddd]e[+-]XX": collect the digits and the exponent. */
    for (const char *c = tmp; *c != 'e'; c++) {
        if (isdigit((unsigned char)*c) && nd < sizeof(digits) - 1)
            digits[nd++] = *c;
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    e = strchr(tmp, 'e');
    exp10 = atoi(e + 1);
    decpt = exp10 + 1;
    if (d < 0)
        out[o++] = '-';
    if (decpt <= -4 || decpt > 16) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        snprintf(out + o, SER_NUM_MAX - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -decpt; i++)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        out[o + nd] = '\0';
    } else if ((size_t)decpt >= nd) {
        memcpy(out + o, digits, nd);
        o += nd;
        for (size_t i = nd; i < (size_t)decpt; i++)
            out[o++] = '0';
        memcpy(out + o, ".0", 3);
    } else {
        memcpy(out + o, digits, (size_t)decpt);
        o += (size_t)decpt;
        out[o++] = '.';
        memcpy(out + o, digits + decpt, nd - (size_t)decpt);
        out[o + nd - (size_t)decpt] = '\0';
    }
    return 0;
}

int ser_format_number(const json_t *v, char out[SER_NUM_MAX])
{
    if (json_is_integer(v)) {
        snprintf(out, SER_NUM_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    }
    if (json_is_real(v))
        return format_double(json_real_value(v), out);
    return -1;
}

/* Unix seconds and microseconds of a JSON timestamp, rounded as Python's
 * datetime.fromtimestamp rounds (half to even on the microseconds). */
static int timestamp_split(const json_t *v, time_t *secs, long *usec)
{
    const double limit = 253402300799.0; /* 9999-12-31T23:59:59Z */
    double d;
    double ip;
    double us;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);

        if (i < -62135596800LL || i > (json_int_t)limit)
            return -1;
        *secs = (time_t)i;
        *usec = 0;
        return 0;
    }
    if (!json_is_real(v))
        return -1;
    d = json_real_value(v);
    if (!isfinite(d) || d < -62135596800.0 || d > limit)
        return -1;
    us = nearbyint(modf(d, &ip) * 1e6);
    if (us >= 1e6) {
        us -= 1e6;
        ip += 1.0;
    } else if (us < 0) {
        us += 1e6;
        ip -= 1.0;
    }
    *secs = (time_t)ip;
    *usec = (long)us;
    return 0;
}

int ser_format_timestamp(const json_t *v, enum aws_timestamp_format fmt, char out[SER_NUM_MAX])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t secs;
    long usec;
    struct tm tm;

    if (timestamp_split(v, &secs, &usec) < 0 || gmtime_r(&secs, &tm) == NULL)
        return -1;
    if (tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return -1;
    switch (fmt) {
    case AWS_TS_ISO8601:
        snprintf(out, SER_NUM_MAX, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (usec > 0)
            snprintf(out + 19, SER_NUM_MAX - 19, ".%06ldZ", usec);
        else
            snprintf(out + 19, SER_NUM_MAX - 19, "Z");
        return 0;
    case AWS_TS_RFC822:
        snprintf(out, SER_NUM_MAX, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        return 0;
    case AWS_TS_UNIX:
        snprintf(out, SER_NUM_MAX, "%lld", (long long)secs);
        return 0;
    case AWS_TS_DEFAULT:
        break;
    }
    return -1;
}

enum aws_timestamp_format ser_ts_format(const struct aws_shape *sh, enum aws_timestamp_format dflt)
{
    if (sh == NULL || sh->timestamp_format == AWS_TS_DEFAULT)
        return dflt;
    return (enum aws_timestamp_format)sh->timestamp_format;
}

int ser_pct_encode(struct aws_buf *b, const char *s, size_t n, const char *also_safe,
                   bool space_plus)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
            (c != '\0' && also_safe != NULL && strchr(also_safe, c) != NULL)) {
            rc = aws_buf_append_char(b, (char)c);
        } else if (c == ' ' && space_plus) {
            rc = aws_buf_append_char(b, '+');
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 0x0fu]};

            rc = aws_buf_append(b, e, sizeof(e));
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

int ser_base64(struct aws_buf *b, const unsigned char *d, size_t n)
{
    unsigned char chunk[4 * 256 + 1];

    /* 768 input bytes at a time: EVP_EncodeBlock writes 4 per 3, no newlines. */
    for (size_t off = 0; off < n; off += 768) {
        size_t take = n - off < 768 ? n - off : 768;
        int w = EVP_EncodeBlock(chunk, d + off, (int)take);

        if (w < 0 || aws_buf_append(b, chunk, (size_t)w) < 0)
            return -1;
    }
    return 0;
}

int ser_oom(struct aws_error *err)
{
    return aws_error_set(err, AWS_ERR_NO_MEMORY, "request too large or out of memory");
}

/* ---- dispatch ------------------------------------------------------------ */

int aws_protocol_serialize(const struct aws_service_model *svc, const struct aws_operation *op,
                           const json_t *input, const struct aws_blob *payload,
                           struct aws_wire_request *out, struct aws_error *err)
{
    json_t *empty = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (svc == NULL || op == NULL) {
        aws_error_set(err, AWS_ERR_INVALID, "no service or operation model");
        goto out;
    }
    if (input == NULL) {
        empty = json_object();
        if (empty == NULL) {
            ser_oom(err);
            goto out;
        }
        input = empty;
    }
    if (!json_is_object(input)) {
        aws_error_set(err, AWS_ERR_INVALID, "%s: input: expected object", op->name);
        goto out;
    }
    if (op->input == AWS_NO_SHAPE) {
        if (json_object_size(input) > 0) {
            aws_error_set(err, AWS_ERR_INVALID, "%s takes no input members", op->name);
            goto out;
        }
    } else if (ser_validate(svc, op->input, input, err) < 0) {
        goto out;
    }
    out->method = op->http_method;
    switch ((enum aws_protocol)svc->protocol) {
    case AWS_PROTOCOL_JSON:
        rc = ser_json(svc, op, input, out, err);
        break;
    case AWS_PROTOCOL_QUERY:
    case AWS_PROTOCOL_EC2:
        rc = ser_query(svc, op, input, out, err);
        break;
    case AWS_PROTOCOL_REST_XML:
        rc = ser_restxml(svc, op, input, payload, out, err);
        break;
    default:
        aws_error_set(err, AWS_ERR_INTERNAL, "%s: unknown protocol %u", svc->name, svc->protocol);
        break;
    }
out:
    json_decref(empty);
    if (rc < 0)
        aws_wire_request_clear(out);
    return rc;
}
