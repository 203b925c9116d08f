/* Response and error parsing for every AWS protocol: dispatch to the JSON
 * and XML parsers, error responses into struct aws_error, and the scalar,
 * timestamp and path helpers the parsers share (parse.h). Pure; any thread. */
#include "aws/protocol.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/parse.h"
#include "aws/xml.h"

/* ---- shared helpers ---------------------------------------------------- */

const char *parse_header(const struct aws_http_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (resp->headers[i].name != NULL && strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value ? resp->headers[i].value : "";
    return NULL;
}

/* Moves p->len past n freshly written bytes (clamped when truncated). */
static void path_commit(struct parse_path *p, int n, size_t room)
{
    if (n < 0)
        p->buf[p->len] = '\0';
    else
        p->len = (size_t)n >= room ? sizeof(p->buf) - 1 : p->len + (size_t)n;
}

size_t parse_path_push_name(struct parse_path *p, const char *name)
{
    size_t old = p->len, room = sizeof(p->buf) - p->len;

    if (room > 1)
        path_commit(p, snprintf(p->buf + p->len, room, p->len ? ".%s" : "%s", name), room);
    return old;
}

size_t parse_path_push_index(struct parse_path *p, size_t i)
{
    size_t old = p->len, room = sizeof(p->buf) - p->len;

    if (room > 1)
        path_commit(p, snprintf(p->buf + p->len, room, "[%zu]", i), room);
    return old;
}

size_t parse_path_push_key(struct parse_path *p, const char *key)
{
    size_t old = p->len, room = sizeof(p->buf) - p->len;

    if (room > 1)
        path_commit(p, snprintf(p->buf + p->len, room, "[\"%s\"]", key), room);
    return old;
}

void parse_path_pop(struct parse_path *p, size_t len)
{
    if (len < sizeof(p->buf)) {
        p->len = len;
        p->buf[len] = '\0';
    }
}

int parse_fail(struct aws_error *err, const struct parse_path *p, const char *what)
{
    if (p != NULL && p->len > 0)
        return aws_error_set(err, AWS_ERR_PARSE, "%s: %s", p->buf, what);
    return aws_error_set(err, AWS_ERR_PARSE, "%s", what);
}

/* ---- timestamps -------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

struct ts_fields {
    int64_t year;
    int mon, day, hour, min, sec;
    double frac;
    int offset_s; /* east of UTC */
};

static int ts_to_epoch(const struct ts_fields *f, double *out)
{
    int64_t days;

    if (f->year < 1 || f->year > 9999 || f->mon < 1 || f->mon > 12 || f->day < 1 ||
        f->day > days_in_month(f->year, f->mon) || f->hour < 0 || f->hour > 24 || f->min < 0 ||
        f->min > 59 || f->sec < 0 || f->sec > 60)
        return -1;
    if (f->hour == 24 && (f->min != 0 || f->sec != 0 || f->frac != 0))
        return -1;
    days = days_from_civil(f->year, f->mon, f->day);
    *out = (double)(days * 86400 + f->hour * 3600 + f->min * 60 + f->sec - f->offset_s) + f->frac;
    return 0;
}

/* Reads exactly n digits. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

/* Reads 1 to max digits. */
static int digits_upto(const char **s, int max, int *out)
{
    int n = 0, v = 0;

    while (n < max && isdigit((unsigned char)(*s)[n])) {
        v = v * 10 + ((*s)[n] - '0');
        n++;
    }
    if (n == 0)
        return -1;
    *s += n;
    *out = v;
    return n;
}

static int read_fraction(const char **s, double *frac)
{
    double scale = 0.1;
    const char *p = *s;

    *frac = 0;
    if (*p != '.' && *p != ',')
        return 0;
    p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p)) {
        *frac += (*p - '0') * scale;
        scale /= 10;
        p++;
    }
    *s = p;
    return 0;
}

/* "Z", "+01:00", "-0800", "+01", or nothing (UTC). */
static int read_zone(const char **s, int *offset_s)
{
    const char *p = *s;
    int sign, hh, mm = 0;

    *offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        *s = p + 1;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return 0;
    sign = *p == '-' ? -1 : 1;
    p++;
    if (digits(&p, 2, &hh) != 0)
        return -1;
    if (*p == ':')
        p++;
    if (isdigit((unsigned char)*p) && digits(&p, 2, &mm) != 0)
        return -1;
    if (hh > 23 || mm > 59)
        return -1;
    *offset_s = sign * (hh * 3600 + mm * 60);
    *s = p;
    return 0;
}

static int parse_iso8601(const char *s, double *out)
{
    struct ts_fields f = {0};
    int y;
    bool ext;

    if (digits(&s, 4, &y) != 0)
        return -1;
    f.year = y;
    ext = *s == '-';
    if (ext)
        s++;
    if (digits(&s, 2, &f.mon) != 0 || (ext && *s++ != '-') || digits(&s, 2, &f.day) != 0)
        return -1;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (digits(&s, 2, &f.hour) != 0 || (ext && *s++ != ':') || digits(&s, 2, &f.min) != 0)
            return -1;
        if (ext ? *s == ':' : isdigit((unsigned char)*s)) {
            if (ext)
                s++;
            if (digits(&s, 2, &f.sec) != 0)
                return -1;
            if (read_fraction(&s, &f.frac) != 0)
                return -1;
        }
        if (read_zone(&s, &f.offset_s) != 0)
            return -1;
    }
    if (*s != '\0')
        return -1;
    return ts_to_epoch(&f, out);
}

static int month_from_name(const char *s)
{
    static const char *const names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"};

    for (int i = 0; i < 12; i++)
        if (strncasecmp(s, names[i], 3) == 0)
            return i + 1;
    return 0;
}

static void skip_spaces(const char **s)
{
    while (**s == ' ' || **s == '\t')
        (*s)++;
}

static int read_hms(const char **s, struct ts_fields *f)
{
    if (digits_upto(s, 2, &f->hour) < 0 || *(*s)++ != ':' || digits(s, 2, &f->min) != 0)
        return -1;
    if (**s == ':') {
        (*s)++;
        if (digits(s, 2, &f->sec) != 0 || read_fraction(s, &f->frac) != 0)
            return -1;
    }
    return 0;
}

static int64_t expand_year(int y, int ndigits)
{
    if (ndigits > 2)
        return y;
    return y >= 70 ? 1900 + y : 2000 + y;
}

/* RFC 822/1123 "Mon, 02 Jan 2023 03:04:05 GMT", RFC 850
 * "Monday, 02-Jan-23 03:04:05 GMT", asctime "Mon Jan  2 03:04:05 2023". */
static int parse_http_date(const char *s, double *out)
{
    struct ts_fields f = {0};
    int y, n;

    while (isalpha((unsigned char)*s))
        s++;
    if (*s == ',')
        s++;
    skip_spaces(&s);
    if (isdigit((unsigned char)*s)) {
        if (digits_upto(&s, 2, &f.day) < 0)
            return -1;
        if (*s == ' ' || *s == '-')
            s++;
        if ((f.mon = month_from_name(s)) == 0)
            return -1;
        s += 3;
        if (*s != ' ' && *s != '-')
            return -1;
        s++;
        if ((n = digits_upto(&s, 4, &y)) < 0 || n == 1 || n == 3)
            return -1;
        f.year = expand_year(y, n);
        skip_spaces(&s);
        if (read_hms(&s, &f) != 0)
            return -1;
        skip_spaces(&s);
        if (strcmp(s, "GMT") == 0 || strcmp(s, "UTC") == 0 || strcmp(s, "UT") == 0)
            s += strlen(s);
        else if (read_zone(&s, &f.offset_s) != 0)
            return -1;
    } else {
        if ((f.mon = month_from_name(s)) == 0)
            return -1;
        s += 3;
        skip_spaces(&s);
        if (digits_upto(&s, 2, &f.day) < 0)
            return -1;
        skip_spaces(&s);
        if (read_hms(&s, &f) != 0)
            return -1;
        skip_spaces(&s);
        if (digits(&s, 4, &y) != 0)
            return -1;
        f.year = y;
    }
    skip_spaces(&s);
    if (*s != '\0')
        return -1;
    return ts_to_epoch(&f, out);
}

static bool looks_numeric(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s))
        s++;
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

int parse_timestamp(const char *text, double *out)
{
    char buf[96];
    size_t len;

    while (isspace((unsigned char)*text))
        text++;
    len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (looks_numeric(buf)) {
        double v = strtod(buf, NULL);

        if (!isfinite(v) || fabs(v) > 253402300800.0)
            return -1;
        *out = v;
        return 0;
    }
    if (isdigit((unsigned char)buf[0]) && len >= 8 && parse_iso8601(buf, out) == 0)
        return 0;
    return parse_http_date(buf, out);
}

json_t *parse_timestamp_json(double secs)
{
    if (!isfinite(secs))
        return NULL;
    if (secs == floor(secs) && fabs(secs) < 9.0e15)
        return json_integer((json_int_t)secs);
    return json_real(secs);
}

/* ---- scalars from text ------------------------------------------------- */

static void trim(const char **text, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)**text)) {
        (*text)++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*text)[*len - 1]))
        (*len)--;
}

json_t *parse_scalar_text(const struct aws_shape *sh, const char *text, size_t len,
                          const struct parse_path *p, struct aws_error *err)
{
    char num[64];
    char *end = NULL;
    json_t *v = NULL;
    const char *t = text;
    size_t tl = len;

    switch (sh->type) {
    case AWS_SHAPE_STRING:
        v = json_stringn(text, len);
        if (v == NULL)
            parse_fail(err, p, "string is not valid UTF-8");
        return v;
    case AWS_SHAPE_BOOLEAN:
        return json_boolean(len == 4 && memcmp(text, "true", 4) == 0);
    case AWS_SHAPE_INTEGER:
    case AWS_SHAPE_LONG: {
        long long ll;

        trim(&t, &tl);
        if (tl == 0 || tl >= sizeof(num))
            goto bad_number;
        memcpy(num, t, tl);
        num[tl] = '\0';
        errno = 0;
        ll = strtoll(num, &end, 10);
        if (errno != 0 || end == num || *end != '\0')
            goto bad_number;
        if (sh->type == AWS_SHAPE_INTEGER && (ll < INT32_MIN || ll > INT32_MAX))
            goto bad_number;
        v = json_integer((json_int_t)ll);
        break;
    }
    case AWS_SHAPE_FLOAT:
    case AWS_SHAPE_DOUBLE: {
        double d;

        trim(&t, &tl);
        if (tl == 0 || tl >= sizeof(num))
            goto bad_number;
        memcpy(num, t, tl);
        num[tl] = '\0';
        errno = 0;
        d = strtod(num, &end);
        if (end == num || *end != '\0' || !isfinite(d) || strpbrk(num, "xXnN") != NULL)
            goto bad_number;
        v = json_real(d);
        break;
    }
    case AWS_SHAPE_TIMESTAMP: {
        char ts[96];
        double secs;

        if (len >= sizeof(ts))
            return parse_fail(err, p, "invalid timestamp"), NULL;
        memcpy(ts, text, len);
        ts[len] = '\0';
        if (parse_timestamp(ts, &secs) != 0)
            return parse_fail(err, p, "invalid timestamp"), NULL;
        v = parse_timestamp_json(secs);
        break;
    }
    case AWS_SHAPE_BLOB: {
        struct aws_buf b = {0};

        for (size_t i = 0; i < len; i++)
            if (!isspace((unsigned char)text[i]) && aws_buf_append_char(&b, text[i]) != 0) {
                aws_buf_free(&b);
                return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory"), NULL;
            }
        v = json_stringn(b.data ? b.data : "", b.len);
        aws_buf_free(&b);
        if (v == NULL)
            return parse_fail(err, p, "blob is not base64 text"), NULL;
        return v;
    }
    default:
        return parse_fail(err, p, "expected a structure, list or map, found text"), NULL;
    }
    if (v == NULL)
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    return v;
bad_number:
    parse_fail(err, p,
               sh->type == AWS_SHAPE_FLOAT || sh->type == AWS_SHAPE_DOUBLE ? "invalid number"
                                                                           : "invalid integer");
    return NULL;
}

/* ---- successful responses ---------------------------------------------- */

int aws_protocol_parse_response(const struct aws_service_model *svc, const struct aws_operation *op,
                                const struct aws_http_response *resp, json_t **out,
                                struct aws_buf *payload_out, struct aws_error *err)
{
    *out = NULL;
    if (svc == NULL || op == NULL || resp == NULL)
        return aws_error_set(err, AWS_ERR_INTERNAL, "parse: missing model or response");
    if (resp->body_len > 0 && resp->body == NULL)
        return aws_error_set(err, AWS_ERR_INTERNAL, "parse: response body missing");
    if (svc->protocol == AWS_PROTOCOL_JSON)
        return parse_json_response(svc, op, resp, out, err);
    return parse_xml_response(svc, op, resp, out, payload_out, err);
}

/* ---- error responses --------------------------------------------------- */

static const struct {
    long status;
    const char *code;   /* for bodiless errors, as S3 HEAD returns them */
    const char *reason; /* the HTTP reason phrase */
} statuses[] = {
    {301, "PermanentRedirect", "Moved Permanently"},
    {302, "Found", "Found"},
    {304, "NotModified", "Not Modified"},
    {307, "TemporaryRedirect", "Temporary Redirect"},
    {400, "BadRequest", "Bad Request"},
    {401, "Unauthorized", "Unauthorized"},
    {403, "Forbidden", "Forbidden"},
    {404, "NotFound", "Not Found"},
    {405, "MethodNotAllowed", "Method Not Allowed"},
    {409, "Conflict", "Conflict"},
    {411, NULL, "Length Required"},
    {412, "PreconditionFailed", "Precondition Failed"},
    {413, NULL, "Request Entity Too Large"},
    {416, NULL, "Requested Range Not Satisfiable"},
    {429, NULL, "Too Many Requests"},
    {500, NULL, "Internal Server Error"},
    {501, NULL, "Not Implemented"},
    {502, NULL, "Bad Gateway"},
    {503, NULL, "Service Unavailable"},
    {504, NULL, "Gateway Timeout"},
};

static size_t status_index(long status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status)
            return i;
    return SIZE_MAX;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Copies at most n bytes of s into dst (size dstsz) as valid UTF-8 on one
 * line: control characters become spaces, invalid bytes '?', surrounding
 * whitespace is trimmed, and truncation never splits a character. */
static void copy_clean(char *dst, size_t dstsz, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;

    while (n > 0 && isspace(u[0])) {
        u++;
        n--;
    }
    while (n > 0 && isspace(u[n - 1]))
        n--;
    while (i < n) {
        size_t l = utf8_len(u + i, n - i);

        if (o + (l ? l : 1) >= dstsz)
            break;
        if (l == 0) {
            dst[o++] = '?';
            i++;
        } else if (l == 1) {
            dst[o++] = u[i] < 0x20 || u[i] == 0x7f ? ' ' : (char)u[i];
            i++;
        } else {
            memcpy(dst + o, u + i, l);
            o += l;
            i += l;
        }
    }
    dst[o] = '\0';
}

/* Sets the error code from a raw one: "ns#Code:http://..." -> "Code". */
static void set_code(struct aws_error *err, const char *raw)
{
    const char *hash = strrchr(raw, '#');
    const char *start = hash ? hash + 1 : raw;
    size_t n = strcspn(start, ":;");

    copy_clean(err->code, sizeof(err->code), start, n);
}

static void set_text(char *dst, size_t dstsz, const char *s)
{
    copy_clean(dst, dstsz, s, strlen(s));
}

static void json_error_fields(const struct aws_http_response *resp, struct aws_error *err)
{
    json_t *body = NULL, *v;
    json_error_t jerr;
    const char *h;

    if (resp->body_len > 0)
        body = json_loadb((const char *)resp->body, resp->body_len, 0, &jerr);
    if ((h = parse_header(resp, "x-amzn-query-error")) != NULL && strchr(h, ';') != NULL &&
        h[0] != ';')
        set_code(err, h);
    else if ((h = parse_header(resp, "x-amzn-errortype")) != NULL && h[0] != '\0')
        set_code(err, h);
    if (json_is_object(body)) {
        if (err->code[0] == '\0') {
            if (json_is_string(v = json_object_get(body, "__type")) ||
                json_is_string(v = json_object_get(body, "code")) ||
                json_is_string(v = json_object_get(body, "Code")))
                set_code(err, json_string_value(v));
        }
        if (json_is_string(v = json_object_get(body, "message")) ||
            json_is_string(v = json_object_get(body, "Message")) ||
            json_is_string(v = json_object_get(body, "errorMessage")))
            set_text(err->message, sizeof(err->message), json_string_value(v));
        if (err->request_id[0] == '\0' && json_is_string(v = json_object_get(body, "RequestId")))
            set_text(err->request_id, sizeof(err->request_id), json_string_value(v));
    } else if (resp->body_len > 0) {
        /* Not JSON (a proxy's page): keep its start as the message. */
        copy_clean(err->message, sizeof(err->message), (const char *)resp->body,
                   resp->body_len < 200 ? resp->body_len : 200);
    }
    json_decref(body);
}

static void xml_child_text(const struct aws_xml_node *parent, const char *name, char *dst,
                           size_t dstsz)
{
    const struct aws_xml_node *n = parent ? aws_xml_child(parent, name) : NULL;
    struct aws_buf b;

    if (n == NULL)
        return;
    aws_buf_init(&b, 64 * 1024);
    if (aws_xml_text(n, &b) == 0 && b.data != NULL)
        set_text(dst, dstsz, b.data);
    aws_buf_free(&b);
}

/* Query (<ErrorResponse><Error>), EC2 (<Response><Errors><Error>) and S3
 * (<Error>) error bodies. Leaves fields empty when the body is not one. */
static void xml_error_fields(const struct aws_http_response *resp, struct aws_error *err)
{
    struct aws_xml_doc *doc = NULL;
    struct aws_error xerr;
    const struct aws_xml_node *root, *e = NULL, *errs;

    if (resp->body_len == 0 ||
        aws_xml_parse(resp->body, resp->body_len, AWS_PARSE_MAX_BODY, &doc, &xerr) != 0)
        return;
    root = aws_xml_root(doc);
    if (strcmp(aws_xml_name(root), "Error") == 0)
        e = root;
    else if ((e = aws_xml_child(root, "Error")) == NULL &&
             (errs = aws_xml_child(root, "Errors")) != NULL)
        e = aws_xml_child(errs, "Error");
    if (e != NULL) {
        char code[sizeof(err->code)] = "";

        xml_child_text(e, "Code", code, sizeof(code));
        if (code[0] != '\0')
            set_code(err, code);
        xml_child_text(e, "Message", err->message, sizeof(err->message));
        if (err->request_id[0] == '\0')
            xml_child_text(e, "RequestId", err->request_id, sizeof(err->request_id));
    }
    if (err->request_id[0] == '\0')
        xml_child_text(root, "RequestId", err->request_id, sizeof(err->request_id));
    if (err->request_id[0] == '\0')
        xml_child_text(root, "RequestID", err->request_id, sizeof(err->request_id));
    aws_xml_free(doc);
}

static long retry_after_ms(const struct aws_http_response *resp)
{
    const char *h = parse_header(resp, "retry-after");
    char *end;
    long s;

    if (h == NULL)
        return 0;
    errno = 0;
    s = strtol(h, &end, 10);
    if (errno != 0 || end == h || *end != '\0' || s < 0 || s > 24L * 3600)
        return 0;
    return s * 1000;
}

int aws_protocol_parse_error(const struct aws_service_model *svc, const struct aws_operation *op,
                             const struct aws_http_response *resp, struct aws_error *err)
{
    const char *h;
    size_t si;

    (void)op;
    aws_error_clear(err);
    err->kind = AWS_ERR_SERVICE;
    if (resp == NULL) {
        snprintf(err->code, sizeof(err->code), "NoResponse");
        snprintf(err->message, sizeof(err->message), "no HTTP response to parse");
        aws_error_classify(err);
        return -1;
    }
    err->http_status = resp->status;
    if ((h = parse_header(resp, "x-amzn-requestid")) != NULL ||
        (h = parse_header(resp, "x-amz-request-id")) != NULL)
        set_text(err->request_id, sizeof(err->request_id), h);
    if (resp->body != NULL && resp->body_len > 0 && resp->body_len <= AWS_PARSE_MAX_BODY) {
        if (svc != NULL && svc->protocol == AWS_PROTOCOL_JSON)
            json_error_fields(resp, err);
        else
            xml_error_fields(resp, err);
    } else if (svc != NULL && svc->protocol == AWS_PROTOCOL_JSON &&
               (h = parse_header(resp, "x-amzn-errortype")) != NULL && h[0] != '\0') {
        set_code(err, h);
    }
    si = status_index(resp->status);
    if (err->code[0] == '\0') {
        if (resp->body_len == 0 && si != SIZE_MAX && statuses[si].code != NULL)
            snprintf(err->code, sizeof(err->code), "%s", statuses[si].code);
        else
            snprintf(err->code, sizeof(err->code), "Http%ld", resp->status);
    }
    if (err->message[0] == '\0') {
        if (si != SIZE_MAX)
            snprintf(err->message, sizeof(err->message), "%s", statuses[si].reason);
        else
            snprintf(err->message, sizeof(err->message), "HTTP status %ld", resp->status);
    }
    err->retry_after_ms = retry_after_ms(resp);
    aws_error_classify(err);
    return -1;
}
