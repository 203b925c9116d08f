/* awsJson 1.0/1.1 responses: shape-driven conversion of the decoded body to
 * the shared data model (protocol.h). Members the model does not know are
 * dropped, and JSON nulls in structures are treated as absent, as botocore
 * does; nulls inside lists and maps are kept. Pure; any thread. */
#include "aws/parse.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "aws/protocol.h"

struct jctx {
    const struct aws_service_model *svc;
    struct parse_path path;
    struct aws_error *err;
};

static json_t *convert(struct jctx *c, uint16_t shape_index, json_t *in, int depth);

static json_t *fail(struct jctx *c, const char *what)
{
    parse_fail(c->err, &c->path, what);
    return NULL;
}

static json_t *no_memory(struct jctx *c)
{
    aws_error_set(c->err, AWS_ERR_NO_MEMORY, "out of memory");
    return NULL;
}

static json_t *convert_structure(struct jctx *c, const struct aws_shape *sh, json_t *in, int depth)
{
    json_t *obj;

    if (!json_is_object(in))
        return fail(c, "expected an object");
    if ((obj = json_object()) == NULL)
        return no_memory(c);
    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        const char *wire = m->location_name ? m->location_name : m->name;
        json_t *v = json_object_get(in, wire), *conv;
        size_t mark;

        if (v == NULL || json_is_null(v))
            continue;
        mark = parse_path_push_name(&c->path, m->name);
        conv = convert(c, m->shape, v, depth + 1);
        parse_path_pop(&c->path, mark);
        if (conv == NULL || json_object_set_new(obj, m->name, conv) != 0) {
            json_decref(obj);
            return conv == NULL ? NULL : no_memory(c);
        }
    }
    return obj;
}

static json_t *convert_list(struct jctx *c, const struct aws_shape *sh, json_t *in, int depth)
{
    json_t *arr, *item;
    size_t i;

    if (!json_is_array(in))
        return fail(c, "expected an array");
    if ((arr = json_array()) == NULL)
        return no_memory(c);
    json_array_foreach(in, i, item)
    {
        size_t mark = parse_path_push_index(&c->path, i);
        json_t *conv = json_is_null(item) ? json_null() : convert(c, sh->member, item, depth + 1);

        parse_path_pop(&c->path, mark);
        if (conv == NULL || json_array_append_new(arr, conv) != 0) {
            json_decref(arr);
            return conv == NULL ? NULL : no_memory(c);
        }
    }
    return arr;
}

static json_t *convert_map(struct jctx *c, const struct aws_shape *sh, json_t *in, int depth)
{
    json_t *obj, *val;
    const char *key;

    if (!json_is_object(in))
        return fail(c, "expected an object");
    if ((obj = json_object()) == NULL)
        return no_memory(c);
    json_object_foreach(in, key, val)
    {
        size_t mark = parse_path_push_key(&c->path, key);
        json_t *conv = json_is_null(val) ? json_null() : convert(c, sh->value, val, depth + 1);

        parse_path_pop(&c->path, mark);
        if (conv == NULL || json_object_set_new(obj, key, conv) != 0) {
            json_decref(obj);
            return conv == NULL ? NULL : no_memory(c);
        }
    }
    return obj;
}

/* Integers: JSON integers as they are; integral reals and numeric strings
 * converted (both have been seen from services and emulators). */
static json_t *convert_integer(struct jctx *c, const struct aws_shape *sh, json_t *in)
{
    if (json_is_integer(in)) {
        json_int_t v = json_integer_value(in);

        if (sh->type == AWS_SHAPE_INTEGER && (v < INT32_MIN || v > INT32_MAX))
            return fail(c, "integer out of range");
        return json_incref(in);
    }
    if (json_is_real(in)) {
        double d = json_real_value(in);

        if (d != floor(d) || fabs(d) > 9.0e15)
            return fail(c, "expected an integer");
        return json_integer((json_int_t)d);
    }
    if (json_is_string(in))
        return parse_scalar_text(sh, json_string_value(in), json_string_length(in), &c->path,
                                 c->err);
    return fail(c, "expected an integer");
}

static json_t *convert_double(struct jctx *c, const struct aws_shape *sh, json_t *in)
{
    if (json_is_number(in))
        return json_real(json_number_value(in));
    if (json_is_string(in))
        return parse_scalar_text(sh, json_string_value(in), json_string_length(in), &c->path,
                                 c->err);
    return fail(c, "expected a number");
}

/* Timestamps: epoch numbers as they are; strings in any format AWS uses
 * (ISO 8601, RFC 822, epoch text) converted to epoch numbers. */
static json_t *convert_timestamp(struct jctx *c, const struct aws_shape *sh, json_t *in)
{
    if (json_is_integer(in))
        return json_incref(in);
    if (json_is_real(in))
        return parse_timestamp_json(json_real_value(in));
    if (json_is_string(in))
        return parse_scalar_text(sh, json_string_value(in), json_string_length(in), &c->path,
                                 c->err);
    return fail(c, "expected a timestamp");
}

static json_t *convert(struct jctx *c, uint16_t shape_index, json_t *in, int depth)
{
    const struct aws_shape *sh = aws_model_shape(c->svc, shape_index);
    json_t *v;

    if (sh == NULL)
        return fail(c, "member without a shape in the model");
    if (depth > AWS_PARSE_MAX_DEPTH)
        return fail(c, "nesting too deep");
    switch (sh->type) {
    case AWS_SHAPE_STRUCTURE:
        return convert_structure(c, sh, in, depth);
    case AWS_SHAPE_LIST:
        return convert_list(c, sh, in, depth);
    case AWS_SHAPE_MAP:
        return convert_map(c, sh, in, depth);
    case AWS_SHAPE_STRING:
    case AWS_SHAPE_BLOB: /* base64 text stays base64 text */
        if (!json_is_string(in))
            return fail(c, "expected a string");
        return json_incref(in);
    case AWS_SHAPE_BOOLEAN:
        if (json_is_boolean(in))
            return json_incref(in);
        if (json_is_string(in))
            return json_boolean(strcmp(json_string_value(in), "true") == 0);
        return fail(c, "expected a boolean");
    case AWS_SHAPE_INTEGER:
    case AWS_SHAPE_LONG:
        v = convert_integer(c, sh, in);
        break;
    case AWS_SHAPE_FLOAT:
    case AWS_SHAPE_DOUBLE:
        v = convert_double(c, sh, in);
        break;
    case AWS_SHAPE_TIMESTAMP:
        v = convert_timestamp(c, sh, in);
        break;
    default:
        return fail(c, "unknown shape type");
    }
    if (v == NULL && c->err->kind == AWS_ERR_NONE)
        return no_memory(c);
    return v;
}

int parse_json_response(const struct aws_service_model *svc, const struct aws_operation *op,
                        const struct aws_http_response *resp, json_t **out, struct aws_error *err)
{
    struct jctx c = {.svc = svc, .err = err};
    json_t *doc = NULL;
    json_error_t jerr;
    int rc = -1;

    *out = NULL;
    aws_error_clear(err);
    if (resp->body_len > AWS_PARSE_MAX_BODY) {
        aws_error_set(err, AWS_ERR_TOO_LARGE, "%s response of %zu bytes is over the limit of %u",
                      op->name, resp->body_len, AWS_PARSE_MAX_BODY);
        goto out;
    }
    if (op->output == AWS_NO_SHAPE || resp->body_len == 0) {
        /* Nothing modelled, or nothing sent (botocore reads "" as {}). */
        if ((*out = json_object()) == NULL)
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        rc = *out ? 0 : -1;
        goto out;
    }
    doc = json_loadb((const char *)resp->body, resp->body_len, 0, &jerr);
    if (doc == NULL) {
        aws_error_set(err, AWS_ERR_PARSE, "%s: invalid JSON at line %d: %s", op->name, jerr.line,
                      jerr.text);
        goto out;
    }
    *out = convert(&c, op->output, doc, 0);
    rc = *out ? 0 : -1;
out:
    json_decref(doc);
    return rc;
}
