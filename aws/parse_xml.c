/* XML responses of the Query, EC2 and REST-XML protocols: shape-driven walk
 * of the DOM into the shared data model (protocol.h), following botocore's
 * reading rules: elements named by locationName, namespaces ignored,
 * non-flattened lists take every child element, flattened lists and maps
 * repeat the member's element, elements the model does not know are
 * ignored. Pure; any thread. */
#include "aws/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/protocol.h"
#include "aws/xml.h"

struct xctx {
    const struct aws_service_model *svc;
    struct parse_path path;
    struct aws_error *err;
    struct aws_buf text; /* scratch for element text */
};

static json_t *xml_value(struct xctx *c, uint16_t shape_index, const struct aws_xml_node *node,
                         int depth);

static json_t *fail(struct xctx *c, const char *what)
{
    parse_fail(c->err, &c->path, what);
    return NULL;
}

static json_t *no_memory(struct xctx *c)
{
    aws_error_set(c->err, AWS_ERR_NO_MEMORY, "out of memory");
    return NULL;
}

static const struct aws_shape *shape_at(struct xctx *c, uint16_t i)
{
    const struct aws_shape *sh = aws_model_shape(c->svc, i);

    if (sh == NULL)
        fail(c, "member without a shape in the model");
    return sh;
}

/* The element text of node in c->text (NUL-terminated), or -1. */
static int node_text(struct xctx *c, const struct aws_xml_node *node)
{
    aws_buf_reset(&c->text);
    if (aws_xml_text(node, &c->text) != 0)
        return aws_error_set(c->err, AWS_ERR_TOO_LARGE, "XML text too large");
    return 0;
}

static json_t *scalar(struct xctx *c, const struct aws_shape *sh, const struct aws_xml_node *node)
{
    if (node_text(c, node) != 0)
        return NULL;
    return parse_scalar_text(sh, c->text.data ? c->text.data : "", c->text.len, &c->path, c->err);
}

static bool is_flattened(const struct aws_shape *sh)
{
    return (sh->type == AWS_SHAPE_LIST || sh->type == AWS_SHAPE_MAP) &&
           (sh->flags & AWS_SHAPE_FLATTENED);
}

/* The element name a structure member is read from (botocore's
 * _member_key_name): a flattened list repeats its member's locationName
 * when it has one, everything else uses the member's locationName or name. */
static const char *member_key(const struct aws_member *m, const struct aws_shape *msh)
{
    if (msh->type == AWS_SHAPE_LIST && (msh->flags & AWS_SHAPE_FLATTENED) &&
        msh->member_location_name != NULL)
        return msh->member_location_name;
    return m->location_name ? m->location_name : m->name;
}

/* Adds one <entry><key/><value/></entry> (any entry element name) to obj.
 * Entries without a key or a value are skipped. */
static int map_entry(struct xctx *c, const struct aws_shape *sh, const struct aws_xml_node *entry,
                     json_t *obj, int depth)
{
    const char *kname = sh->key_location_name ? sh->key_location_name : "key";
    const char *vname = sh->value_location_name ? sh->value_location_name : "value";
    const struct aws_xml_node *kn = aws_xml_child(entry, kname);
    const struct aws_xml_node *vn = aws_xml_child(entry, vname);
    json_t *v;
    size_t mark;
    char *key;
    int rc;

    if (kn == NULL || vn == NULL)
        return 0;
    if (node_text(c, kn) != 0)
        return -1;
    key = aws_buf_steal(&c->text, NULL);
    if (key == NULL && (key = strdup("")) == NULL)
        return no_memory(c), -1;
    mark = parse_path_push_key(&c->path, key);
    v = xml_value(c, sh->value, vn, depth + 1);
    parse_path_pop(&c->path, mark);
    rc = v == NULL ? -1 : json_object_set_new(obj, key, v);
    if (v != NULL && rc != 0)
        fail(c, "map key is not valid UTF-8");
    free(key);
    return rc == 0 ? 0 : -1;
}

static json_t *xml_list(struct xctx *c, const struct aws_shape *sh, const struct aws_xml_node *node,
                        int depth)
{
    json_t *arr = json_array();
    const struct aws_xml_node *it;
    size_t i = 0;

    if (arr == NULL)
        return no_memory(c);
    for (it = aws_xml_first(node); it != NULL; it = aws_xml_next(it), i++) {
        size_t mark = parse_path_push_index(&c->path, i);
        json_t *v = xml_value(c, sh->member, it, depth + 1);

        parse_path_pop(&c->path, mark);
        if (v == NULL || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return v == NULL ? NULL : no_memory(c);
        }
    }
    return arr;
}

static json_t *xml_map(struct xctx *c, const struct aws_shape *sh, const struct aws_xml_node *node,
                       int depth)
{
    json_t *obj = json_object();
    const struct aws_xml_node *it;

    if (obj == NULL)
        return no_memory(c);
    for (it = aws_xml_first(node); it != NULL; it = aws_xml_next(it))
        if (map_entry(c, sh, it, obj, depth) != 0) {
            json_decref(obj);
            return NULL;
        }
    return obj;
}

/* A flattened list or map: every child of parent named `name`. NULL with
 * no error set when there is none (the member is absent). */
static json_t *xml_flattened(struct xctx *c, const struct aws_shape *sh,
                             const struct aws_xml_node *parent, const char *name, int depth)
{
    json_t *v = NULL;
    const struct aws_xml_node *it;
    size_t i = 0;

    for (it = aws_xml_first(parent); it != NULL; it = aws_xml_next(it)) {
        if (strcmp(aws_xml_name(it), name) != 0)
            continue;
        if (v == NULL && (v = sh->type == AWS_SHAPE_LIST ? json_array() : json_object()) == NULL)
            return no_memory(c);
        if (sh->type == AWS_SHAPE_LIST) {
            size_t mark = parse_path_push_index(&c->path, i++);
            json_t *item = xml_value(c, sh->member, it, depth + 1);

            parse_path_pop(&c->path, mark);
            if (item == NULL || json_array_append_new(v, item) != 0) {
                json_decref(v);
                return item == NULL ? NULL : no_memory(c);
            }
        } else if (map_entry(c, sh, it, v, depth) != 0) {
            json_decref(v);
            return NULL;
        }
    }
    return v;
}

/* Reads the body members of structure sh from node into obj (members bound
 * to headers or the status code are left to the caller). */
static int xml_members(struct xctx *c, const struct aws_shape *sh, const struct aws_xml_node *node,
                       json_t *obj, int depth)
{
    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        const struct aws_shape *msh;
        const struct aws_xml_node *child;
        json_t *v = NULL;
        size_t mark;

        if (m->location != AWS_LOC_BODY)
            continue;
        mark = parse_path_push_name(&c->path, m->name);
        if ((msh = shape_at(c, m->shape)) == NULL)
            return -1;
        if (is_flattened(msh)) {
            v = xml_flattened(c, msh, node, member_key(m, msh), depth + 1);
        } else if ((child = aws_xml_child(node, member_key(m, msh))) != NULL) {
            v = xml_value(c, m->shape, child, depth + 1);
        } else if (m->flags & AWS_MEMBER_XML_ATTRIBUTE) {
            int found;

            aws_buf_reset(&c->text);
            found = aws_xml_attr(node, member_key(m, msh), &c->text);
            if (found < 0)
                return aws_error_set(c->err, AWS_ERR_NO_MEMORY, "out of memory");
            if (found > 0)
                v = parse_scalar_text(msh, c->text.data ? c->text.data : "", c->text.len, &c->path,
                                      c->err);
        }
        if (v == NULL && c->err->kind != AWS_ERR_NONE)
            return -1;
        parse_path_pop(&c->path, mark);
        if (v != NULL && json_object_set_new(obj, m->name, v) != 0)
            return no_memory(c), -1;
    }
    return 0;
}

static json_t *xml_structure(struct xctx *c, const struct aws_shape *sh,
                             const struct aws_xml_node *node, int depth)
{
    json_t *obj = json_object();

    if (obj == NULL)
        return no_memory(c);
    if (xml_members(c, sh, node, obj, depth) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *xml_value(struct xctx *c, uint16_t shape_index, const struct aws_xml_node *node,
                         int depth)
{
    const struct aws_shape *sh = shape_at(c, shape_index);

    if (sh == NULL)
        return NULL;
    if (depth > AWS_PARSE_MAX_DEPTH)
        return fail(c, "nesting too deep");
    switch (sh->type) {
    case AWS_SHAPE_STRUCTURE:
        return xml_structure(c, sh, node, depth);
    case AWS_SHAPE_LIST:
        if (sh->flags & AWS_SHAPE_FLATTENED) {
            /* A flattened list outside a structure is one item. */
            json_t *arr = json_array(), *v;

            if (arr == NULL)
                return no_memory(c);
            if ((v = xml_value(c, sh->member, node, depth + 1)) == NULL ||
                json_array_append_new(arr, v) != 0) {
                json_decref(arr);
                return v == NULL ? NULL : no_memory(c);
            }
            return arr;
        }
        return xml_list(c, sh, node, depth);
    case AWS_SHAPE_MAP:
        if (sh->flags & AWS_SHAPE_FLATTENED) {
            json_t *obj = json_object();

            if (obj == NULL)
                return no_memory(c);
            if (map_entry(c, sh, node, obj, depth) != 0) {
                json_decref(obj);
                return NULL;
            }
            return obj;
        }
        return xml_map(c, sh, node, depth);
    default:
        return scalar(c, sh, node);
    }
}

/* ---- REST-XML: headers, status code, payload ---------------------------- */

/* A list bound to a header: comma-separated values (RFC 7230). */
static json_t *header_list(struct xctx *c, const struct aws_shape *sh, const char *value)
{
    const struct aws_shape *item_sh = shape_at(c, sh->member);
    json_t *arr = json_array();
    const char *p = value;

    if (item_sh == NULL || arr == NULL) {
        json_decref(arr);
        return item_sh == NULL ? NULL : no_memory(c);
    }
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t s = 0, e = n;
        json_t *v;

        while (s < e && (p[s] == ' ' || p[s] == '\t'))
            s++;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        v = parse_scalar_text(item_sh, p + s, e - s, &c->path, c->err);
        if (v == NULL || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return v == NULL ? NULL : no_memory(c);
        }
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    return arr;
}

/* Header text as valid UTF-8: as it is when it already is, else read as
 * ISO-8859-1 (how HTTP clients, botocore's included, decode header bytes)
 * into c->text. NULL when out of memory. */
static const char *header_utf8(struct xctx *c, const char *value)
{
    json_t *probe = json_string(value);

    if (probe != NULL) {
        json_decref(probe);
        return value;
    }
    aws_buf_reset(&c->text);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        int rc = *p < 0x80 ? aws_buf_append_char(&c->text, (char)*p)
                           : aws_buf_append_char(&c->text, (char)(0xC0 | (*p >> 6))) ||
                                 aws_buf_append_char(&c->text, (char)(0x80 | (*p & 0x3F)));

        if (rc != 0)
            return no_memory(c), NULL;
    }
    return c->text.data ? c->text.data : "";
}

/* A map of every header starting with prefix (case-insensitive), keyed by
 * the rest of the header name: always present, possibly empty, as botocore
 * returns it. */
static json_t *header_map(struct xctx *c, const char *prefix, const struct aws_http_response *resp)
{
    json_t *obj = json_object();
    size_t plen = strlen(prefix);

    if (obj == NULL)
        return no_memory(c);
    for (size_t i = 0; i < resp->n_headers; i++) {
        const struct aws_http_header *h = &resp->headers[i];
        const char *text;
        json_t *v;

        if (h->name == NULL || strncasecmp(h->name, prefix, plen) != 0)
            continue;
        if ((text = header_utf8(c, h->value ? h->value : "")) == NULL ||
            (v = json_string(text)) == NULL) {
            json_decref(obj);
            return no_memory(c);
        }
        if (json_object_set_new(obj, h->name + plen, v) != 0) {
            json_decref(obj);
            return fail(c, "header name is not valid UTF-8");
        }
    }
    return obj;
}

static char *base64_encode(const unsigned char *in, size_t n, size_t *out_len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = 4 * ((n + 2) / 3);
    char *out = malloc(len + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* A payload member that is the raw body: a streaming blob goes to
 * payload_out (copied; discarded when NULL), a string becomes the member, a
 * non-streaming blob its base64 text. */
static int raw_payload(struct xctx *c, const struct aws_member *m, const struct aws_shape *msh,
                       const struct aws_http_response *resp, json_t *obj,
                       struct aws_buf *payload_out)
{
    json_t *v;

    if (msh->type == AWS_SHAPE_BLOB && (msh->flags & AWS_SHAPE_STREAMING)) {
        if (payload_out == NULL || resp->body_len == 0)
            return 0;
        if (aws_buf_append(payload_out, resp->body, resp->body_len) != 0)
            return aws_error_set(c->err, AWS_ERR_TOO_LARGE,
                                 "payload of %zu bytes does not fit the output buffer",
                                 resp->body_len);
        return 0;
    }
    if (msh->type == AWS_SHAPE_STRING) {
        v = json_stringn(resp->body_len ? (const char *)resp->body : "", resp->body_len);
        if (v == NULL)
            return parse_fail(c->err, &c->path, "payload is not valid UTF-8");
    } else {
        size_t n;
        char *b64 = base64_encode(resp->body, resp->body_len, &n);

        v = b64 ? json_stringn(b64, n) : NULL;
        free(b64);
        if (v == NULL)
            return no_memory(c), -1;
    }
    if (json_object_set_new(obj, m->name, v) != 0)
        return no_memory(c), -1;
    return 0;
}

/* Header, headers-map and status-code members of a REST-XML output. */
static int restxml_non_body(struct xctx *c, const struct aws_shape *sh,
                            const struct aws_http_response *resp, json_t *obj)
{
    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        const char *wire = m->location_name ? m->location_name : m->name;
        const struct aws_shape *msh;
        const char *h;
        json_t *v = NULL;
        size_t mark;

        if (m->location == AWS_LOC_BODY)
            continue;
        if ((msh = shape_at(c, m->shape)) == NULL)
            return -1;
        mark = parse_path_push_name(&c->path, m->name);
        if (m->location == AWS_LOC_STATUS_CODE) {
            v = json_integer(resp->status);
        } else if (m->location == AWS_LOC_HEADERS) {
            v = header_map(c, wire, resp);
        } else if (m->location == AWS_LOC_HEADER && (h = parse_header(resp, wire)) != NULL) {
            if ((h = header_utf8(c, h)) == NULL)
                return -1;
            if (msh->type == AWS_SHAPE_LIST)
                v = header_list(c, msh, h);
            else
                v = parse_scalar_text(msh, h, strlen(h), &c->path, c->err);
            if (v == NULL)
                return -1;
        } else {
            parse_path_pop(&c->path, mark);
            continue;
        }
        parse_path_pop(&c->path, mark);
        if (v == NULL || json_object_set_new(obj, m->name, v) != 0) {
            json_decref(v);
            return c->err->kind != AWS_ERR_NONE ? -1 : (no_memory(c), -1);
        }
    }
    return 0;
}

/* S3 answers some calls (CompleteMultipartUpload, CopyObject, UploadPartCopy)
 * with 200 and an <Error> document when they fail late; like botocore, treat
 * it as a 500 so that it is retried. */
static bool s3_error_in_200(const struct aws_xml_doc *doc)
{
    const struct aws_xml_node *root = aws_xml_root(doc);

    return strcmp(aws_xml_name(root), "Error") == 0 && aws_xml_child(root, "Code") != NULL;
}

/* The payload member of a REST-XML output: the raw body (raw_payload), or a
 * structure read from the body's root element whatever its name (an empty
 * body gives an empty structure, as in botocore). */
static int restxml_payload(struct xctx *c, const struct aws_member *payload,
                           const struct aws_http_response *resp, const struct aws_xml_doc *doc,
                           json_t *obj, struct aws_buf *payload_out)
{
    const struct aws_shape *psh = shape_at(c, payload->shape);
    size_t mark;
    json_t *v;
    int rc = -1;

    if (psh == NULL)
        return -1;
    mark = parse_path_push_name(&c->path, payload->name);
    if (psh->type == AWS_SHAPE_BLOB || psh->type == AWS_SHAPE_STRING) {
        rc = raw_payload(c, payload, psh, resp, obj, payload_out);
        goto out;
    }
    v = doc ? xml_value(c, payload->shape, aws_xml_root(doc), 2) : json_object();
    if (v == NULL) {
        if (c->err->kind == AWS_ERR_NONE)
            no_memory(c);
        goto out;
    }
    if (json_object_set_new(obj, payload->name, v) != 0) {
        no_memory(c);
        goto out;
    }
    rc = 0;
out:
    parse_path_pop(&c->path, mark);
    return rc;
}

static int restxml_response(struct xctx *c, const struct aws_service_model *svc,
                            const struct aws_operation *op, const struct aws_http_response *resp,
                            const struct aws_xml_doc *doc, json_t *obj, struct aws_buf *payload_out)
{
    const struct aws_shape *sh = shape_at(c, op->output);
    const struct aws_member *payload = NULL;

    (void)svc;
    if (sh == NULL)
        return -1;
    if (restxml_non_body(c, sh, resp, obj) != 0)
        return -1;
    for (uint16_t i = 0; i < sh->n_members; i++)
        if (sh->members[i].flags & AWS_MEMBER_PAYLOAD)
            payload = &sh->members[i];
    if (payload == NULL)
        return doc ? xml_members(c, sh, aws_xml_root(doc), obj, 1) : 0;
    return restxml_payload(c, payload, resp, doc, obj, payload_out);
}

static bool raw_body_payload(const struct aws_service_model *svc, const struct aws_operation *op)
{
    const struct aws_shape *sh = aws_model_shape(svc, op->output);

    if (svc->protocol != AWS_PROTOCOL_REST_XML || sh == NULL)
        return false;
    for (uint16_t i = 0; i < sh->n_members; i++)
        if (sh->members[i].flags & AWS_MEMBER_PAYLOAD) {
            const struct aws_shape *psh = aws_model_shape(svc, sh->members[i].shape);

            return psh != NULL && (psh->type == AWS_SHAPE_BLOB || psh->type == AWS_SHAPE_STRING);
        }
    return false;
}

int parse_xml_response(const struct aws_service_model *svc, const struct aws_operation *op,
                       const struct aws_http_response *resp, json_t **out,
                       struct aws_buf *payload_out, struct aws_error *err)
{
    struct xctx c = {.svc = svc, .err = err};
    struct aws_xml_doc *doc = NULL;
    const struct aws_xml_node *start;
    const struct aws_shape *sh;
    json_t *obj = NULL;
    int rc = -1;

    *out = NULL;
    aws_error_clear(err);
    aws_buf_init(&c.text, AWS_PARSE_MAX_BODY);
    /* The raw body of GetObject and the like is not XML. */
    if (resp->body_len > 0 && !raw_body_payload(svc, op)) {
        if (aws_xml_parse(resp->body, resp->body_len, AWS_PARSE_MAX_BODY, &doc, err) != 0) {
            char msg[400];

            snprintf(msg, sizeof(msg), "%.399s", err->message);
            snprintf(err->message, sizeof(err->message), "%.100s: %s", op->name, msg);
            goto out;
        }
        if (svc->protocol == AWS_PROTOCOL_REST_XML && s3_error_in_200(doc)) {
            struct aws_http_response as_500 = *resp;

            as_500.status = 500;
            aws_protocol_parse_error(svc, op, &as_500, err);
            goto out;
        }
    }
    if ((obj = json_object()) == NULL) {
        no_memory(&c);
        goto out;
    }
    if (op->output == AWS_NO_SHAPE) {
        /* nothing modelled */
    } else if (svc->protocol == AWS_PROTOCOL_REST_XML) {
        if (restxml_response(&c, svc, op, resp, doc, obj, payload_out) != 0)
            goto out;
    } else if (doc != NULL) {
        start = aws_xml_root(doc);
        if (svc->protocol == AWS_PROTOCOL_QUERY && op->result_wrapper != NULL &&
            (start = aws_xml_child(start, op->result_wrapper)) == NULL) {
            aws_error_set(err, AWS_ERR_PARSE, "%s: response has no <%s> element", op->name,
                          op->result_wrapper);
            goto out;
        }
        if ((sh = shape_at(&c, op->output)) == NULL || xml_members(&c, sh, start, obj, 1) != 0)
            goto out;
    }
    *out = obj;
    obj = NULL;
    rc = 0;
out:
    json_decref(obj);
    aws_xml_free(doc);
    aws_buf_free(&c.text);
    return rc;
}
