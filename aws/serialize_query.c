/* AWS Query and EC2 request serializer: POST / with a form body
 * "Action=..&Version=..&Name.member.1=..", names and order as botocore's
 * QuerySerializer/EC2Serializer produce them (members in model order).
 * Pure; any thread. */
#include "aws/serialize.h"

#include <ctype.h>
#include <string.h>

struct qctx {
    const struct aws_service_model *svc;
    bool ec2;
    struct aws_buf *body;
    struct aws_buf key; /* the name of the value being written: "Tags.member.1.Key" */
    struct aws_error *err;
};

static void key_truncate(struct aws_buf *b, size_t len)
{
    b->len = len;
    if (b->data != NULL)
        b->data[len] = '\0';
}

/* Appends ".name" (or "name" at the top) to the key; EC2 capitalises
 * locationNames. */
static int key_push(struct qctx *q, const char *name, bool capitalise)
{
    size_t at;

    if (q->key.len > 0 && aws_buf_append_char(&q->key, '.') < 0)
        return -1;
    at = q->key.len;
    if (aws_buf_append_str(&q->key, name) < 0)
        return -1;
    if (capitalise && q->key.len > at)
        q->key.data[at] = (char)toupper((unsigned char)q->key.data[at]);
    return 0;
}

/* The member's wire name as botocore's _get_serialized_name computes it. */
static int key_push_member(struct qctx *q, const struct aws_member *m)
{
    if (q->ec2) {
        if (m->query_name != NULL)
            return key_push(q, m->query_name, false);
        if (m->location_name != NULL)
            return key_push(q, m->location_name, true);
        return key_push(q, m->name, false);
    }
    return key_push(q, m->location_name != NULL ? m->location_name : m->name, false);
}

static int pair_out(struct qctx *q, const char *value, size_t n)
{
    if (aws_buf_append_char(q->body, '&') < 0 ||
        ser_pct_encode(q->body, q->key.data, q->key.len, NULL, true) < 0 ||
        aws_buf_append_char(q->body, '=') < 0 || ser_pct_encode(q->body, value, n, NULL, true) < 0)
        return ser_oom(q->err);
    return 0;
}

static int q_value(struct qctx *q, uint16_t idx, const json_t *v);

static int q_structure(struct qctx *q, const struct aws_shape *sh, const json_t *v)
{
    size_t base = q->key.len;

    for (uint16_t i = 0; i < sh->n_members; i++) {
        const struct aws_member *m = &sh->members[i];
        json_t *owned;
        bool failed;
        const json_t *mv = ser_member_value(v, m, &owned, &failed, q->err);
        int rc;

        if (failed)
            return -1;
        if (mv == NULL)
            continue;
        if (key_push_member(q, m) < 0)
            rc = ser_oom(q->err);
        else
            rc = q_value(q, m->shape, mv);
        json_decref(owned);
        key_truncate(&q->key, base);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Lists: Name.member.N (member locationName respected), Name.N when
 * flattened (the last name component replaced by the member's locationName
 * when it has one), always Name.N for EC2. The callers restore the key. */
static int q_list(struct qctx *q, const struct aws_shape *sh, const json_t *v)
{
    size_t list_base;
    size_t i;
    const json_t *item;

    if (json_array_size(v) == 0)
        return q->ec2 ? 0 : pair_out(q, "", 0); /* Query sends "Name=" for [] */
    if (!q->ec2 && (sh->flags & AWS_SHAPE_FLATTENED) && sh->member_location_name != NULL) {
        size_t dot = q->key.len;

        while (dot > 0 && q->key.data[dot - 1] != '.')
            dot--;
        key_truncate(&q->key, dot > 0 ? dot - 1 : 0);
        if (key_push(q, sh->member_location_name, false) < 0)
            return ser_oom(q->err);
    } else if (!q->ec2 && !(sh->flags & AWS_SHAPE_FLATTENED)) {
        const char *name = sh->member_location_name != NULL ? sh->member_location_name : "member";

        if (key_push(q, name, false) < 0)
            return ser_oom(q->err);
    }
    list_base = q->key.len;
    json_array_foreach(v, i, item)
    {
        int rc;

        if (aws_buf_printf(&q->key, ".%zu", i + 1) < 0)
            return ser_oom(q->err);
        rc = q_value(q, sh->member, item);
        key_truncate(&q->key, list_base);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int q_map(struct qctx *q, const struct aws_shape *sh, const json_t *v)
{
    size_t base = q->key.len;
    const char *kname = sh->key_location_name != NULL ? sh->key_location_name : "key";
    const char *vname = sh->value_location_name != NULL ? sh->value_location_name : "value";
    bool kcap = q->ec2 && sh->key_location_name != NULL;
    bool vcap = q->ec2 && sh->value_location_name != NULL;
    const char *key;
    const json_t *val;
    size_t n = 0;

    if (!(sh->flags & AWS_SHAPE_FLATTENED) && key_push(q, "entry", false) < 0)
        return ser_oom(q->err);
    json_object_foreach((json_t *)v, key, val)
    {
        size_t entry_base = q->key.len;
        int rc;

        n++;
        if (aws_buf_printf(&q->key, ".%zu", n) < 0 || key_push(q, kname, kcap) < 0 ||
            pair_out(q, key, strlen(key)) < 0) {
            key_truncate(&q->key, base);
            return ser_oom(q->err);
        }
        key_truncate(&q->key, entry_base);
        if (aws_buf_printf(&q->key, ".%zu", n) < 0 || key_push(q, vname, vcap) < 0)
            rc = ser_oom(q->err);
        else
            rc = q_value(q, sh->value, val);
        key_truncate(&q->key, entry_base);
        if (rc < 0) {
            key_truncate(&q->key, base);
            return -1;
        }
    }
    key_truncate(&q->key, base);
    return 0;
}

static int q_value(struct qctx *q, uint16_t idx, const json_t *v)
{
    const struct aws_shape *sh = aws_model_shape(q->svc, idx);
    char num[SER_NUM_MAX];

    switch ((enum aws_shape_type)sh->type) {
    case AWS_SHAPE_STRUCTURE:
        return q_structure(q, sh, v);
    case AWS_SHAPE_LIST:
        return q_list(q, sh, v);
    case AWS_SHAPE_MAP:
        return q_map(q, sh, v);
    case AWS_SHAPE_STRING:
    case AWS_SHAPE_BLOB: /* already base64 in the data model */
        return pair_out(q, json_string_value(v), json_string_length(v));
    case AWS_SHAPE_INTEGER:
    case AWS_SHAPE_LONG:
    case AWS_SHAPE_FLOAT:
    case AWS_SHAPE_DOUBLE:
        if (ser_format_number(v, num) < 0)
            return aws_error_set(q->err, AWS_ERR_INVALID, "%s: bad number", q->key.data);
        return pair_out(q, num, strlen(num));
    case AWS_SHAPE_BOOLEAN:
        return json_is_true(v) ? pair_out(q, "true", 4) : pair_out(q, "false", 5);
    case AWS_SHAPE_TIMESTAMP:
        if (ser_format_timestamp(v, ser_ts_format(sh, AWS_TS_ISO8601), num) < 0)
            return aws_error_set(q->err, AWS_ERR_INVALID, "%s: bad timestamp", q->key.data);
        return pair_out(q, num, strlen(num));
    }
    return aws_error_set(q->err, AWS_ERR_INTERNAL, "model: bad shape type %u", sh->type);
}

int ser_query(const struct aws_service_model *svc, const struct aws_operation *op,
              const json_t *input, struct aws_wire_request *out, struct aws_error *err)
{
    struct qctx q;
    int rc = -1;

    memset(&q, 0, sizeof(q));
    q.svc = svc;
    q.ec2 = svc->protocol == AWS_PROTOCOL_EC2;
    q.body = &out->body;
    q.err = err;
    if (aws_buf_append_char(&out->path, '/') < 0 ||
        aws_wire_request_add_header(out, "Content-Type",
                                    "application/x-www-form-urlencoded; charset=utf-8") < 0 ||
        aws_buf_append_str(&out->body, "Action=") < 0 ||
        ser_pct_encode(&out->body, op->name, strlen(op->name), NULL, true) < 0 ||
        aws_buf_append_str(&out->body, "&Version=") < 0 ||
        ser_pct_encode(&out->body, svc->api_version, strlen(svc->api_version), NULL, true) < 0) {
        ser_oom(err);
        goto out;
    }
    rc = op->input == AWS_NO_SHAPE ? 0 : q_value(&q, op->input, input);
out:
    aws_buf_free(&q.key);
    return rc;
}
