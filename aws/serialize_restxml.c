/* REST-XML (S3) request serializer: method and requestUri template with
 * {Label}/{Key+} (path-style: the bucket is in the path), query-string and
 * header members, and the payload (an XML document as botocore's ElementTree
 * writes it, or the raw bytes of a streaming blob). Pure; any thread. */
#include "aws/serialize.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static void buf_truncate(struct aws_buf *b, size_t len)
{
    b->len = len;
    if (b->data != NULL)
        b->data[len] = '\0';
}

static const char *wire_name(const struct aws_member *m)
{
    return m->location_name != NULL ? m->location_name : m->name;
}

/* ---- XML ------------------------------------------------------------------ */

/* Escapes as ElementTree does: text escapes & < >; attributes also " and
 * the whitespace controls. */
static int xml_escape(struct aws_buf *b, const char *s, size_t n, bool attr)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;

        switch (s[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = attr ? "&quot;" : NULL;
            break;
        case '\n':
            e = attr ? "&#10;" : NULL;
            break;
        case '\r':
            e = attr ? "&#13;" : NULL;
            break;
        case '\t':
            e = attr ? "&#09;" : NULL;
            break;
        default:
            break;
        }
        if ((e != NULL ? aws_buf_append_str(b, e) : aws_buf_append_char(b, s[i])) < 0)
            return -1;
    }
    return 0;
}

/* <name>text</name>, or <name /> when the text is empty. */
static int xml_text_element(struct aws_buf *b, const char *name, const char *text, size_t n)
{
    if (n == 0)
        return aws_buf_printf(b, "<%s />", name);
    if (aws_buf_printf(b, "<%s>", name) < 0 || xml_escape(b, text, n, false) < 0)
        return -1;
    return aws_buf_printf(b, "</%s>", name);
}

static int xml_value(const struct aws_service_model *svc, uint16_t idx, const json_t *v,
                     const char *name, struct aws_buf *b, struct aws_error *err);

/* Closes an element opened at `open_end` (just before its '>'): with " />"
 * when nothing was written inside it, else with its end tag. */
static int xml_close(struct aws_buf *b, size_t open_end, const char *name)
{
    if (b->len == open_end + 1) {
        buf_truncate(b, open_end);
        return aws_buf_append_str(b, " />");
    }
    return aws_buf_printf(b, "</%s>", name);
}

/* A structure element; `body_only` (the input itself as the document) skips
 * members bound to the URI, query string or headers; `ns` overrides the
 * shape's xmlNamespace when not NULL. */
static int xml_structure(const struct aws_service_model *svc, const struct aws_shape *sh,
                         const json_t *v, const char *name, bool body_only, const char *ns,
                         struct aws_buf *b, struct aws_error *err)
{
    size_t open_end;

    if (ns == NULL)
        ns = sh->xml_namespace;
    if (aws_buf_printf(b, "<%s", name) < 0)
        return ser_oom(err);
    if (ns != NULL && (aws_buf_append_str(b, " xmlns=\"") < 0 ||
                       xml_escape(b, ns, strlen(ns), true) < 0 || aws_buf_append_char(b, '"') < 0))
        return ser_oom(err);
    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        const json_t *mv = json_object_get(v, m->name);

        if (!(m->flags & AWS_MEMBER_XML_ATTRIBUTE) || mv == NULL)
            continue;
        if (!json_is_string(mv))
            return aws_error_set(err, AWS_ERR_INVALID, "%s: XML attribute must be a string",
                                 m->name);
        if (aws_buf_printf(b, " %s=\"", wire_name(m)) < 0 ||
            xml_escape(b, json_string_value(mv), json_string_length(mv), true) < 0 ||
            aws_buf_append_char(b, '"') < 0)
            return ser_oom(err);
    }
    open_end = b->len;
    if (aws_buf_append_char(b, '>') < 0)
        return ser_oom(err);
    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        json_t *owned;
        bool failed;
        const json_t *mv;
        int rc;

        if ((m->flags & AWS_MEMBER_XML_ATTRIBUTE) || (body_only && m->location != AWS_LOC_BODY))
            continue;
        mv = ser_member_value(v, m, &owned, &failed, err);
        if (failed)
            return -1;
        if (mv == NULL)
            continue;
        rc = xml_value(svc, m->shape, mv, wire_name(m), b, err);
        json_decref(owned);
        if (rc < 0)
            return -1;
    }
    return xml_close(b, open_end, name) < 0 ? ser_oom(err) : 0;
}

static int xml_value(const struct aws_service_model *svc, uint16_t idx, const json_t *v,
                     const char *name, struct aws_buf *b, struct aws_error *err)
{
    const struct aws_shape *sh = aws_model_shape(svc, idx);
    char num[SER_NUM_MAX];

    switch ((enum aws_shape_type)sh->type) {
    case AWS_SHAPE_STRUCTURE:
        return xml_structure(svc, sh, v, name, false, NULL, b, err);
    case AWS_SHAPE_LIST: {
        const char *item_name =
            sh->member_location_name != NULL ? sh->member_location_name : "member";
        bool flat = (sh->flags & AWS_SHAPE_FLATTENED) != 0;
        size_t open_end = 0;
        size_t i;
        const json_t *item;

        if (flat) {
            item_name = name; /* repeated elements, no wrapper */
        } else {
            if (aws_buf_printf(b, "<%s", name) < 0)
                return ser_oom(err);
            open_end = b->len;
            if (aws_buf_append_char(b, '>') < 0)
                return ser_oom(err);
        }
        json_array_foreach(v, i, item)
        {
            if (xml_value(svc, sh->member, item, item_name, b, err) < 0)
                return -1;
        }
        if (!flat && xml_close(b, open_end, name) < 0)
            return ser_oom(err);
        return 0;
    }
    case AWS_SHAPE_MAP: {
        const char *kname = sh->key_location_name != NULL ? sh->key_location_name : "key";
        const char *vname = sh->value_location_name != NULL ? sh->value_location_name : "value";
        size_t open_end;
        const char *key;
        const json_t *val;

        if (aws_buf_printf(b, "<%s", name) < 0)
            return ser_oom(err);
        open_end = b->len;
        if (aws_buf_append_char(b, '>') < 0)
            return ser_oom(err);
        json_object_foreach((json_t *)v, key, val)
        {
            if (aws_buf_append_str(b, "<entry>") < 0 ||
                xml_text_element(b, kname, key, strlen(key)) < 0)
                return ser_oom(err);
            if (xml_value(svc, sh->value, val, vname, b, err) < 0)
                return -1;
            if (aws_buf_append_str(b, "</entry>") < 0)
                return ser_oom(err);
        }
        return xml_close(b, open_end, name) < 0 ? ser_oom(err) : 0;
    }
    case AWS_SHAPE_STRING:
    case AWS_SHAPE_BLOB: /* already base64 in the data model */
        if (xml_text_element(b, name, json_string_value(v), json_string_length(v)) < 0)
            return ser_oom(err);
        return 0;
    case AWS_SHAPE_INTEGER:
    case AWS_SHAPE_LONG:
    case AWS_SHAPE_FLOAT:
    case AWS_SHAPE_DOUBLE:
        if (ser_format_number(v, num) < 0 || xml_text_element(b, name, num, strlen(num)) < 0)
            return ser_oom(err);
        return 0;
    case AWS_SHAPE_BOOLEAN:
        if (xml_text_element(b, name, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5) <
            0)
            return ser_oom(err);
        return 0;
    case AWS_SHAPE_TIMESTAMP:
        if (ser_format_timestamp(v, ser_ts_format(sh, AWS_TS_ISO8601), num) < 0)
            return aws_error_set(err, AWS_ERR_INVALID, "%s: bad timestamp", name);
        if (xml_text_element(b, name, num, strlen(num)) < 0)
            return ser_oom(err);
        return 0;
    }
    return aws_error_set(err, AWS_ERR_INTERNAL, "model: bad shape type %u", sh->type);
}

/* ---- URI, query string, headers ------------------------------------------ */

/* A scalar as text for the path, query string or a header (strings as they
 * are, booleans "true"/"false", numbers, timestamps in `ts`). Returns a
 * pointer to the string's own bytes or to num; NULL for non-scalars. */
static const char *scalar_text(const struct aws_shape *sh, const json_t *v,
                               enum aws_timestamp_format ts, char num[SER_NUM_MAX], size_t *len)
{
    const char *s = NULL;

    switch ((enum aws_shape_type)sh->type) {
    case AWS_SHAPE_STRING:
    case AWS_SHAPE_BLOB:
        *len = json_string_length(v);
        return json_string_value(v);
    case AWS_SHAPE_INTEGER:
    case AWS_SHAPE_LONG:
    case AWS_SHAPE_FLOAT:
    case AWS_SHAPE_DOUBLE:
        s = ser_format_number(v, num) == 0 ? num : NULL;
        break;
    case AWS_SHAPE_BOOLEAN:
        s = json_is_true(v) ? "true" : "false";
        break;
    case AWS_SHAPE_TIMESTAMP:
        s = ser_format_timestamp(v, ser_ts_format(sh, ts), num) == 0 ? num : NULL;
        break;
    default:
        break;
    }
    if (s != NULL)
        *len = strlen(s);
    return s;
}

static int render_path(const struct aws_service_model *svc, const struct aws_shape *in,
                       const json_t *input, const char *tmpl, size_t n, struct aws_buf *path,
                       struct aws_error *err)
{
    size_t i = 0;

    while (i < n) {
        const char *close;
        char label[128];
        size_t llen;
        bool greedy = false;
        const struct aws_member *m = NULL;
        const json_t *v;
        const char *text;
        size_t tlen;
        char num[SER_NUM_MAX];

        if (tmpl[i] != '{') {
            if (aws_buf_append_char(path, tmpl[i++]) < 0)
                return ser_oom(err);
            continue;
        }
        close = memchr(tmpl + i, '}', n - i);
        if (close == NULL || (llen = (size_t)(close - tmpl) - i - 1) >= sizeof(label))
            return aws_error_set(err, AWS_ERR_INTERNAL, "model: bad requestUri %s", tmpl);
        memcpy(label, tmpl + i + 1, llen);
        label[llen] = '\0';
        if (llen > 0 && label[llen - 1] == '+') {
            greedy = true;
            label[--llen] = '\0';
        }
        for (uint16_t k = 0; in != NULL && k < in->n_members; k++) {
            if (in->members[k].location == AWS_LOC_URI &&
                strcmp(wire_name(&in->members[k]), label) == 0) {
                m = &in->members[k];
                break;
            }
        }
        if (m == NULL)
            return aws_error_set(err, AWS_ERR_INTERNAL, "model: no member for URI label %s", label);
        v = json_object_get(input, m->name);
        if (v == NULL)
            return aws_error_set(err, AWS_ERR_INVALID, "%s: missing URI label", m->name);
        text = scalar_text(aws_model_shape(svc, m->shape), v, AWS_TS_ISO8601, num, &tlen);
        if (text == NULL || tlen == 0)
            return aws_error_set(err, AWS_ERR_INVALID, "%s: URI label must not be empty", m->name);
        if (ser_pct_encode(path, text, tlen, greedy ? "/" : NULL, false) < 0)
            return ser_oom(err);
        i = (size_t)(close - tmpl) + 1;
    }
    return 0;
}

static int query_pair(struct aws_buf *q, const char *k, size_t klen, const char *v, size_t vlen)
{
    if ((q->len > 0 && aws_buf_append_char(q, '&') < 0) ||
        ser_pct_encode(q, k, klen, NULL, false) < 0 || aws_buf_append_char(q, '=') < 0 ||
        ser_pct_encode(q, v, vlen, NULL, false) < 0)
        return -1;
    return 0;
}

/* One query-string member: scalars, lists (repeated name) and maps (their
 * keys become parameter names), percent-encoded as botocore does. */
static int query_member(const struct aws_service_model *svc, const struct aws_member *m,
                        const json_t *v, struct aws_buf *q, struct aws_error *err)
{
    const struct aws_shape *sh = aws_model_shape(svc, m->shape);
    const char *name = wire_name(m);
    char num[SER_NUM_MAX];
    const char *text;
    size_t tlen;

    if (sh->type == AWS_SHAPE_LIST) {
        const struct aws_shape *ish = aws_model_shape(svc, sh->member);
        size_t i;
        const json_t *item;

        json_array_foreach(v, i, item)
        {
            text = scalar_text(ish, item, AWS_TS_ISO8601, num, &tlen);
            if (text == NULL)
                return aws_error_set(err, AWS_ERR_INVALID, "%s: unsupported in a query string",
                                     m->name);
            if (query_pair(q, name, strlen(name), text, tlen) < 0)
                return ser_oom(err);
        }
        return 0;
    }
    if (sh->type == AWS_SHAPE_MAP) {
        const struct aws_shape *vsh = aws_model_shape(svc, sh->value);
        const char *key;
        const json_t *val;

        json_object_foreach((json_t *)v, key, val)
        {
            if (vsh->type == AWS_SHAPE_LIST) {
                const struct aws_shape *ish = aws_model_shape(svc, vsh->member);
                size_t i;
                const json_t *item;

                json_array_foreach(val, i, item)
                {
                    text = scalar_text(ish, item, AWS_TS_ISO8601, num, &tlen);
                    if (text == NULL || query_pair(q, key, strlen(key), text, tlen) < 0)
                        return ser_oom(err);
                }
                continue;
            }
            text = scalar_text(vsh, val, AWS_TS_ISO8601, num, &tlen);
            if (text == NULL || query_pair(q, key, strlen(key), text, tlen) < 0)
                return ser_oom(err);
        }
        return 0;
    }
    text = scalar_text(sh, v, AWS_TS_ISO8601, num, &tlen);
    if (text == NULL)
        return aws_error_set(err, AWS_ERR_INVALID, "%s: unsupported in a query string", m->name);
    return query_pair(q, name, strlen(name), text, tlen) < 0 ? ser_oom(err) : 0;
}

static bool header_safe(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    }
    return true;
}

static int add_header_checked(struct aws_wire_request *out, const char *member, const char *name,
                              const char *value, size_t len, struct aws_error *err)
{
    if (!header_safe(value, len) || !header_safe(name, strlen(name)))
        return aws_error_set(err, AWS_ERR_INVALID, "%s: header text contains a line break", member);
    if (aws_wire_request_add_header(out, name, value) < 0)
        return aws_error_set(err, AWS_ERR_INVALID, "%s: too many headers or out of memory", member);
    return 0;
}

/* ---- botocore's S3 customizations (botocore/handlers.py) ------------------- */

static bool is_s3(const struct aws_service_model *svc)
{
    return strcmp(svc->name, "s3") == 0;
}

/* validate_bucket_name: ^[a-zA-Z0-9.\-_]{1,255}$ (access point ARNs, which
 * need their own endpoints, are not supported with path-style addressing). */
static bool valid_bucket(const char *b)
{
    size_t n = strlen(b);

    if (n < 1 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];

        if (!isalnum(c) && c != '.' && c != '-' && c != '_')
            return false;
    }
    return true;
}

/* handle_copy_source_param: CopySource "bucket/key[?versionId=id]" has its
 * bucket and key percent-encoded ('/' kept); a trailing "?versionId=" followed
 * by non-blank text is kept as it is. */
static int quote_copy_source(const char *s, size_t n, struct aws_buf *out)
{
    size_t cut = n;

    for (const char *p = strstr(s, "?versionId="); p != NULL; p = strstr(p + 1, "?versionId=")) {
        size_t at = (size_t)(p - s);
        size_t rest = at + strlen("?versionId=");
        bool blank = rest >= n;

        for (size_t i = rest; i < n && !blank; i++)
            blank = isspace((unsigned char)s[i]) != 0;
        if (!blank) {
            cut = at;
            break;
        }
    }
    if (ser_pct_encode(out, s, cut, "/", false) < 0 || aws_buf_append(out, s + cut, n - cut) < 0)
        return -1;
    return 0;
}

static bool is_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s >= 0x80)
            return false;
    }
    return true;
}

/* One header member: scalars (timestamps RFC 822 by default), lists joined
 * with ",", jsonvalue strings base64-encoded; S3's CopySource quoted when
 * `copy_source`. */
static int header_member(const struct aws_service_model *svc, const struct aws_member *m,
                         const json_t *v, bool copy_source, struct aws_wire_request *out,
                         struct aws_error *err)
{
    const struct aws_shape *sh = aws_model_shape(svc, m->shape);
    struct aws_buf val = {0};
    char num[SER_NUM_MAX];
    const char *text;
    size_t tlen;
    int rc = -1;

    if (sh->type == AWS_SHAPE_LIST) {
        const struct aws_shape *ish = aws_model_shape(svc, sh->member);
        size_t i;
        const json_t *item;

        if (json_array_size(v) == 0)
            return 0; /* botocore leaves empty list headers out */
        json_array_foreach(v, i, item)
        {
            text = scalar_text(ish, item, AWS_TS_RFC822, num, &tlen);
            if (text == NULL || (i > 0 && aws_buf_append_char(&val, ',') < 0) ||
                aws_buf_append(&val, text, tlen) < 0) {
                ser_oom(err);
                goto out;
            }
        }
    } else {
        text = scalar_text(sh, v, AWS_TS_RFC822, num, &tlen);
        if (text == NULL) {
            aws_error_set(err, AWS_ERR_INVALID, "%s: unsupported in a header", m->name);
            goto out;
        }
        if (copy_source) {
            rc = quote_copy_source(text, tlen, &val);
        } else if (m->flags & AWS_MEMBER_JSON_VALUE) {
            rc = ser_base64(&val, (const unsigned char *)text, tlen);
        } else {
            rc = aws_buf_append(&val, text, tlen);
        }
        if (rc < 0) {
            ser_oom(err);
            goto out;
        }
    }
    rc = add_header_checked(out, m->name, wire_name(m), val.data != NULL ? val.data : "", val.len,
                            err);
out:
    aws_buf_free(&val);
    return rc;
}

/* A map member with location "headers": one header per entry, named
 * prefix + key ("x-amz-meta-" + "owner"); US-ASCII only when `ascii_only`
 * (S3 metadata, botocore's validate_ascii_metadata). */
static int headers_member(const struct aws_member *m, const json_t *v, bool ascii_only,
                          struct aws_wire_request *out, struct aws_error *err)
{
    const char *prefix = m->location_name != NULL ? m->location_name : "";
    const char *key;
    const json_t *val;
    char name[256];

    json_object_foreach((json_t *)v, key, val)
    {
        if (ascii_only && (!is_ascii(key) || !is_ascii(json_string_value(val))))
            return aws_error_set(err, AWS_ERR_INVALID, "%s.%s: S3 metadata must be US-ASCII",
                                 m->name, key);
        if ((size_t)snprintf(name, sizeof(name), "%s%s", prefix, key) >= sizeof(name))
            return aws_error_set(err, AWS_ERR_INVALID, "%s.%s: header name too long", m->name, key);
        if (add_header_checked(out, m->name, name, json_string_value(val), json_string_length(val),
                               err) < 0)
            return -1;
    }
    return 0;
}

/* ---- payload -------------------------------------------------------------- */

static int raw_payload(const struct aws_service_model *svc, const struct aws_member *m,
                       const json_t *v, const struct aws_blob *payload,
                       struct aws_wire_request *out, struct aws_error *err)
{
    const struct aws_shape *sh = aws_model_shape(svc, m->shape);

    if (payload != NULL && payload->data != NULL) {
        if (v != NULL)
            return aws_error_set(err, AWS_ERR_INVALID,
                                 "%s: given both in the input and as the raw payload", m->name);
        out->payload = *payload;
        return 0;
    }
    if (v == NULL)
        return 0;
    if (sh->type == AWS_SHAPE_BLOB && !(sh->flags & AWS_SHAPE_STREAMING)) {
        /* A non-streaming blob payload is base64 in the data model. */
        size_t n = json_string_length(v);
        unsigned char *raw = malloc(n / 4 * 3 + 1);
        const char *s = json_string_value(v);
        int w;

        if (raw == NULL)
            return ser_oom(err);
        w = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)n);
        if (w >= 0) {
            for (size_t i = n; i > 0 && s[i - 1] == '='; i--)
                w--;
        }
        if (w < 0 || aws_buf_append(&out->body, raw, (size_t)w) < 0) {
            free(raw);
            return ser_oom(err);
        }
        free(raw);
        return 0;
    }
    if (aws_buf_append(&out->body, json_string_value(v), json_string_length(v)) < 0)
        return ser_oom(err);
    return 0;
}

static int add_content_md5(struct aws_wire_request *out, struct aws_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct aws_buf b64 = {0};
    const void *body =
        out->payload.data != NULL ? (const void *)out->payload.data : (const void *)out->body.data;
    size_t len = out->payload.data != NULL ? out->payload.len : out->body.len;
    int rc = -1;

    for (size_t i = 0; i < out->n_headers; i++) {
        if (strncmp(out->header_names[i], "x-amz-checksum-", 15) == 0)
            return 0; /* a flexible checksum was supplied instead */
    }
    if (EVP_Digest(body != NULL ? body : "", len, md, &mdlen, EVP_md5(), NULL) != 1) {
        aws_error_set(err, AWS_ERR_INTERNAL, "MD5 unavailable");
        goto out;
    }
    if (ser_base64(&b64, md, mdlen) < 0 ||
        aws_wire_request_add_header(out, "Content-MD5", b64.data) < 0) {
        ser_oom(err);
        goto out;
    }
    rc = 0;
out:
    aws_buf_free(&b64);
    return rc;
}

int ser_restxml(const struct aws_service_model *svc, const struct aws_operation *op,
                const json_t *input, const struct aws_blob *payload, struct aws_wire_request *out,
                struct aws_error *err)
{
    const struct aws_shape *in = aws_model_shape(svc, op->input);
    const char *qmark = strchr(op->request_uri, '?');
    size_t path_len = qmark != NULL ? (size_t)(qmark - op->request_uri) : strlen(op->request_uri);
    const struct aws_member *payload_member = NULL;
    bool body_members = false;
    struct aws_buf mq = {0};
    int rc = -1;

    if (is_s3(svc)) {
        const json_t *bucket = json_object_get(input, "Bucket");

        if (json_is_string(bucket) && json_string_length(bucket) > 0 &&
            !valid_bucket(json_string_value(bucket))) {
            aws_error_set(err, AWS_ERR_INVALID, "Bucket: invalid bucket name \"%.64s\"",
                          json_string_value(bucket));
            goto out;
        }
        if (json_object_get(input, "ChecksumAlgorithm") != NULL) {
            /* botocore would compute an x-amz-checksum-* header or trailer. */
            aws_error_set(err, AWS_ERR_INVALID,
                          "ChecksumAlgorithm: flexible checksums are not supported (Content-MD5 "
                          "is sent where needed)");
            goto out;
        }
    }
    if (render_path(svc, in, input, op->request_uri, path_len, &out->path, err) < 0)
        goto out;
    if (qmark != NULL && aws_buf_append_str(&out->query, qmark + 1) < 0) {
        ser_oom(err);
        goto out;
    }
    for (uint16_t i = 0; in != NULL && i < in->n_members; i++) {
        const struct aws_member *m = &in->members[i];
        json_t *owned;
        bool failed;
        const json_t *v = ser_member_value(input, m, &owned, &failed, err);
        int r = 0;

        if (failed)
            goto out;
        if (m->flags & AWS_MEMBER_PAYLOAD) {
            payload_member = m;
        } else if (v == NULL) {
            continue;
        } else if (m->location == AWS_LOC_QUERYSTRING) {
            r = query_member(svc, m, v, &mq, err);
        } else if (m->location == AWS_LOC_HEADER) {
            r = header_member(svc, m, v,
                              is_s3(svc) && strcmp(op->name, "CopyObject") == 0 &&
                                  strcmp(m->name, "CopySource") == 0,
                              out, err);
        } else if (m->location == AWS_LOC_HEADERS) {
            r = headers_member(m, v, is_s3(svc), out, err);
        } else if (m->location == AWS_LOC_BODY) {
            body_members = true;
        }
        json_decref(owned);
        if (r < 0)
            goto out;
    }
    if (mq.len > 0 && ((out->query.len > 0 && aws_buf_append_char(&out->query, '&') < 0) ||
                       aws_buf_append(&out->query, mq.data, mq.len) < 0)) {
        ser_oom(err);
        goto out;
    }
    if (payload != NULL && payload->data != NULL &&
        (payload_member == NULL ||
         !(aws_model_shape(svc, payload_member->shape)->type == AWS_SHAPE_BLOB ||
           aws_model_shape(svc, payload_member->shape)->type == AWS_SHAPE_STRING))) {
        aws_error_set(err, AWS_ERR_INVALID, "%s takes no raw payload", op->name);
        goto out;
    }
    if (payload_member != NULL) {
        const struct aws_shape *psh = aws_model_shape(svc, payload_member->shape);
        const json_t *v = json_object_get(input, payload_member->name);

        if (psh->type == AWS_SHAPE_BLOB || psh->type == AWS_SHAPE_STRING) {
            if (raw_payload(svc, payload_member, v, payload, out, err) < 0)
                goto out;
        } else if (v != NULL && xml_value(svc, payload_member->shape, v, wire_name(payload_member),
                                          &out->body, err) < 0) {
            goto out;
        }
    } else if (body_members) {
        /* No payload member: the body members form a document named after
         * the input. */
        const char *root = op->input_location_name != NULL ? op->input_location_name : in->name;

        if (xml_structure(svc, in, input, root, true, op->input_xml_namespace, &out->body, err) < 0)
            goto out;
    }
    /* Content-MD5: required by the model, and botocore's conditionally_calculate_md5
     * for S3 PutObject and UploadPart. */
    if ((op->checksum_required || (is_s3(svc) && (strcmp(op->name, "PutObject") == 0 ||
                                                  strcmp(op->name, "UploadPart") == 0))) &&
        add_content_md5(out, err) < 0)
        goto out;
    rc = 0;
out:
    aws_buf_free(&mq);
    return rc;
}
