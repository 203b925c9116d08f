/* Compiles CRD openAPIV3Schema documents and validates YAML node trees
 * against them, collecting every error and applying defaults. Compiled
 * schemas are read-only after schema_compile and shared between threads. */
#include "controller/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/duration.h"

#define PATH_MAX_LEN 512

const char *schema_type_name(enum schema_type t)
{
    switch (t) {
    case SCHEMA_ANY:
        return "any";
    case SCHEMA_OBJECT:
        return "object";
    case SCHEMA_ARRAY:
        return "array";
    case SCHEMA_STRING:
        return "string";
    case SCHEMA_INTEGER:
        return "integer";
    case SCHEMA_NUMBER:
        return "number";
    case SCHEMA_BOOLEAN:
        return "boolean";
    }
    return "?";
}

/* ------------------------------------------------------------------ */
/* generic YAML -> JSON                                                 */

json_t *ynode_to_json(const struct ynode *n)
{
    json_t *v = NULL;
    size_t i;

    if (n == NULL)
        return json_null();
    switch (n->kind) {
    case YNODE_MAPPING:
        v = json_object();
        for (i = 0; v != NULL && i < n->n; i++) {
            if (json_object_set_new(v, n->keys[i]->value, ynode_to_json(n->items[i])) < 0) {
                json_decref(v);
                return NULL;
            }
        }
        return v;
    case YNODE_SEQUENCE:
        v = json_array();
        for (i = 0; v != NULL && i < n->n; i++) {
            if (json_array_append_new(v, ynode_to_json(n->items[i])) < 0) {
                json_decref(v);
                return NULL;
            }
        }
        return v;
    case YNODE_SCALAR:
        break;
    }
    switch (n->type) {
    case YSCALAR_NULL:
        return json_null();
    case YSCALAR_BOOL:
        return json_boolean(n->bval);
    case YSCALAR_INT:
        return json_integer(n->ival);
    case YSCALAR_FLOAT:
        return json_real(n->fval);
    case YSCALAR_STRING:
        break;
    }
    return json_stringn(n->value, n->len);
}

/* ------------------------------------------------------------------ */
/* edit distance                                                        */

size_t schema_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t d[65][65];

    if (la > 64 || lb > 64)
        return (size_t)-1 / 2;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;

            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* Closest candidate within a small distance, or NULL. */
static const char *closest(const char *word, char **candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, i;
    size_t wl = strlen(word);

    for (i = 0; i < n; i++) {
        size_t d = schema_edit_distance(word, candidates[i]);
        size_t cl = strlen(candidates[i]);
        size_t longest = wl > cl ? wl : cl;

        /* at most 2 edits, and at most a third of the word */
        if (d <= 2 && d * 3 <= longest && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* ------------------------------------------------------------------ */
/* compile                                                              */

void schema_free(struct schema *s)
{
    size_t i;

    if (s == NULL)
        return;
    free(s->description);
    for (i = 0; i < s->nprops; i++) {
        free(s->prop_names[i]);
        schema_free(s->props[i]);
    }
    free(s->prop_names);
    free(s->props);
    for (i = 0; i < s->nrequired; i++)
        free(s->required[i]);
    free(s->required);
    schema_free(s->additional);
    schema_free(s->items);
    json_decref(s->enum_values);
    if (s->pattern != NULL)
        regfree(&s->regex);
    free(s->pattern);
    free(s->format);
    json_decref(s->default_value);
    free(s);
}

static const char *const known_keywords[] = {
    "type",
    "description",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "pattern",
    "format",
    "default",
    "nullable",
    "example",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    NULL,
};

static bool known_keyword(const char *k)
{
    size_t i;

    for (i = 0; known_keywords[i] != NULL; i++)
        if (!strcmp(known_keywords[i], k))
            return true;
    return false;
}

static int get_count(const json_t *o, const char *key, long long *out, const char *where,
                     const char *path, struct diag_list *diags)
{
    json_t *v = json_object_get(o, key);

    *out = -1;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        diag_add(diags, where, 0, 0, path, "schema: %s must be a non-negative integer", key);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static struct schema *compile_node(const json_t *o, const char *where, const char *path,
                                   struct diag_list *diags);

static int compile_props(struct schema *s, const json_t *props, const char *where, const char *path,
                         struct diag_list *diags)
{
    const char *key;
    json_t *sub;
    size_t n = json_object_size(props), i = 0;
    int rc = 0;

    s->prop_names = calloc(n ? n : 1, sizeof(char *));
    s->props = calloc(n ? n : 1, sizeof(struct schema *));
    if (s->prop_names == NULL || s->props == NULL)
        return -1;
    /* jansson keeps insertion order: properties stay in CRD order. */
    json_object_foreach((json_t *)props, key, sub)
    {
        char sub_path[PATH_MAX_LEN];

        snprintf(sub_path, sizeof(sub_path), "%s%s%s", path, path[0] ? "." : "", key);
        s->prop_names[i] = strdup(key);
        s->props[i] = compile_node(sub, where, sub_path, diags);
        if (s->prop_names[i] == NULL || s->props[i] == NULL)
            rc = -1;
        i++;
        s->nprops = i;
    }
    return rc;
}

/* Rejects escapes that ECMA-262 (Kubernetes) and POSIX ERE (regcomp) read
 * differently, so a CRD pattern means the same thing in both. */
static int pattern_portable(const char *p)
{
    for (; *p; p++) {
        if (*p == '\\') {
            p++;
            if (*p == '\0' || strchr("dDwWsSbB", *p) != NULL)
                return -1;
        }
    }
    return 0;
}

static int check_default(struct schema *s, const char *where, const char *path,
                         struct diag_list *diags);

static struct schema *compile_node(const json_t *o, const char *where, const char *path,
                                   struct diag_list *diags)
{
    struct schema *s = NULL;
    const char *key;
    json_t *v;
    const char *type;
    int bad = 0;

    if (!json_is_object(o)) {
        diag_add(diags, where, 0, 0, path, "schema: expected an object");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    json_object_foreach((json_t *)o, key, v)
    {
        if (!known_keyword(key)) {
            diag_add(diags, where, 0, 0, path, "schema: unsupported keyword \"%s\"", key);
            bad = 1;
        }
    }
    s->preserve_unknown = json_is_true(json_object_get(o, "x-kubernetes-preserve-unknown-fields"));
    s->int_or_string = json_is_true(json_object_get(o, "x-kubernetes-int-or-string"));
    type = json_string_value(json_object_get(o, "type"));
    if (type == NULL) {
        if (!s->preserve_unknown && !s->int_or_string) {
            diag_add(diags, where, 0, 0, path, "schema: missing type");
            bad = 1;
        }
        s->type = SCHEMA_ANY;
    } else if (!strcmp(type, "object")) {
        s->type = SCHEMA_OBJECT;
    } else if (!strcmp(type, "array")) {
        s->type = SCHEMA_ARRAY;
    } else if (!strcmp(type, "string")) {
        s->type = SCHEMA_STRING;
    } else if (!strcmp(type, "integer")) {
        s->type = SCHEMA_INTEGER;
    } else if (!strcmp(type, "number")) {
        s->type = SCHEMA_NUMBER;
    } else if (!strcmp(type, "boolean")) {
        s->type = SCHEMA_BOOLEAN;
    } else {
        diag_add(diags, where, 0, 0, path, "schema: unsupported type \"%s\"", type);
        bad = 1;
    }
    if ((v = json_object_get(o, "description")) != NULL && json_is_string(v))
        s->description = strdup(json_string_value(v));
    if ((v = json_object_get(o, "properties")) != NULL) {
        if (!json_is_object(v) || compile_props(s, v, where, path, diags) < 0)
            bad = 1;
    }
    if ((v = json_object_get(o, "required")) != NULL) {
        size_t i;

        s->required = calloc(json_array_size(v) + 1, sizeof(char *));
        if (!json_is_array(v) || s->required == NULL) {
            bad = 1;
        } else {
            for (i = 0; i < json_array_size(v); i++) {
                const char *r = json_string_value(json_array_get(v, i));

                if (r == NULL || schema_property(s, r) == NULL) {
                    diag_add(diags, where, 0, 0, path,
                             "schema: required entry %zu is not a declared property", i);
                    bad = 1;
                    continue;
                }
                s->required[s->nrequired++] = strdup(r);
            }
        }
    }
    if ((v = json_object_get(o, "additionalProperties")) != NULL) {
        char sub_path[PATH_MAX_LEN];

        snprintf(sub_path, sizeof(sub_path), "%s.*", path);
        if (json_is_object(v)) {
            s->additional = compile_node(v, where, sub_path, diags);
            if (s->additional == NULL)
                bad = 1;
        } else if (!json_is_false(v)) {
            diag_add(diags, where, 0, 0, path,
                     "schema: additionalProperties must be a schema (or false)");
            bad = 1;
        }
        if (s->nprops > 0 && s->additional != NULL) {
            diag_add(diags, where, 0, 0, path,
                     "schema: properties and additionalProperties are exclusive");
            bad = 1;
        }
    }
    if ((v = json_object_get(o, "items")) != NULL) {
        char sub_path[PATH_MAX_LEN];

        snprintf(sub_path, sizeof(sub_path), "%s[]", path);
        s->items = compile_node(v, where, sub_path, diags);
        if (s->items == NULL)
            bad = 1;
    }
    if (s->type == SCHEMA_ARRAY && s->items == NULL) {
        diag_add(diags, where, 0, 0, path, "schema: arrays need items");
        bad = 1;
    }
    if ((v = json_object_get(o, "enum")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) == 0) {
            diag_add(diags, where, 0, 0, path, "schema: enum must be a non-empty array");
            bad = 1;
        } else {
            s->enum_values = json_incref(v);
        }
    }
    if ((v = json_object_get(o, "minimum")) != NULL) {
        s->has_minimum = json_is_number(v);
        s->minimum = json_number_value(v);
    }
    if ((v = json_object_get(o, "maximum")) != NULL) {
        s->has_maximum = json_is_number(v);
        s->maximum = json_number_value(v);
    }
    s->exclusive_minimum = json_is_true(json_object_get(o, "exclusiveMinimum"));
    s->exclusive_maximum = json_is_true(json_object_get(o, "exclusiveMaximum"));
    if (get_count(o, "minLength", &s->min_length, where, path, diags) < 0 ||
        get_count(o, "maxLength", &s->max_length, where, path, diags) < 0 ||
        get_count(o, "minItems", &s->min_items, where, path, diags) < 0 ||
        get_count(o, "maxItems", &s->max_items, where, path, diags) < 0 ||
        get_count(o, "minProperties", &s->min_properties, where, path, diags) < 0 ||
        get_count(o, "maxProperties", &s->max_properties, where, path, diags) < 0)
        bad = 1;
    if ((v = json_object_get(o, "pattern")) != NULL) {
        const char *p = json_string_value(v);

        if (p == NULL || pattern_portable(p) < 0) {
            diag_add(diags, where, 0, 0, path,
                     "schema: pattern must be a string without \\d \\w \\s \\b escapes "
                     "(POSIX ERE and ECMA-262 must agree)");
            bad = 1;
        } else if (regcomp(&s->regex, p, REG_EXTENDED | REG_NOSUB) != 0) {
            diag_add(diags, where, 0, 0, path, "schema: pattern does not compile: %s", p);
            bad = 1;
        } else {
            s->pattern = strdup(p);
            if (s->pattern == NULL) {
                regfree(&s->regex);
                bad = 1;
            }
        }
    }
    if ((v = json_object_get(o, "format")) != NULL && json_is_string(v))
        s->format = strdup(json_string_value(v));
    if ((v = json_object_get(o, "default")) != NULL) {
        s->default_value = json_deep_copy(v);
        if (!bad && check_default(s, where, path, diags) < 0)
            bad = 1;
    }
    if (bad) {
        schema_free(s);
        return NULL;
    }
    return s;
}

/* A default must itself be valid: dump it as JSON (which is YAML), load it
 * and validate it like a manifest value. */
static int check_default(struct schema *s, const char *where, const char *path,
                         struct diag_list *diags)
{
    char *text = json_dumps(s->default_value, JSON_ENCODE_ANY | JSON_COMPACT);
    struct diag_list local = {0};
    struct yfile *f = NULL;
    json_t *out = NULL;
    int rc = -1;

    if (text == NULL)
        goto out;
    f = yaml_load_buffer("default", text, strlen(text), NULL, &local);
    if (f == NULL || f->ndocs != 1)
        goto out;
    out = schema_validate(s, f->docs[0].root, "default", path, &local);
    rc = diag_count(&local) == 0 ? 0 : -1;
out:
    if (rc < 0) {
        diag_add(diags, where, 0, 0, path, "schema: default is not valid for its own schema%s%s",
                 local.n ? ": " : "", local.n ? local.items[0].message : "");
    }
    diag_list_clear(&local);
    json_decref(out);
    yaml_file_free(f);
    free(text);
    return rc;
}

struct schema *schema_compile(const json_t *openapi, const char *where, struct diag_list *diags)
{
    struct schema *s = compile_node(openapi, where, "", diags);

    if (s != NULL && s->type != SCHEMA_OBJECT) {
        diag_add(diags, where, 0, 0, "", "schema: the root must be an object");
        schema_free(s);
        return NULL;
    }
    return s;
}

const struct schema *schema_property(const struct schema *s, const char *name)
{
    size_t i;

    if (s == NULL)
        return NULL;
    for (i = 0; i < s->nprops; i++)
        if (!strcmp(s->prop_names[i], name))
            return s->props[i];
    return NULL;
}

const struct schema *schema_lookup(const struct schema *root, const char *path)
{
    const struct schema *s = root;
    char seg[128];

    while (s != NULL && *path) {
        size_t n = strcspn(path, ".[");

        if (n > 0) {
            if (n >= sizeof(seg))
                return NULL;
            memcpy(seg, path, n);
            seg[n] = '\0';
            s = schema_property(s, seg);
            path += n;
        }
        if (!strncmp(path, "[]", 2)) {
            s = s ? s->items : NULL;
            path += 2;
        }
        if (*path == '.')
            path++;
        else if (*path != '\0' && *path != '[')
            return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* validate                                                             */

struct vctx {
    const char *file;
    struct diag_list *diags;
    char path[PATH_MAX_LEN];
    size_t len;
};

static void verr(struct vctx *c, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verr(struct vctx *c, const struct ynode *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag_add(c->diags, c->file, n ? n->line : 0, n ? n->column : 0, c->path, "%s", msg);
}

static bool simple_key(const char *k)
{
    if (*k == '\0')
        return false;
    for (; *k; k++) {
        char ch = *k;

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Appends ".key" (or ["key"] for unusual keys); returns the old length. */
static size_t path_push_key(struct vctx *c, const char *key)
{
    size_t old = c->len;
    int w;

    if (simple_key(key))
        w = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);
    else
        w = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[\"%s\"]", key);
    if (w > 0)
        c->len += (size_t)w;
    if (c->len >= sizeof(c->path))
        c->len = sizeof(c->path) - 1;
    return old;
}

static size_t path_push_index(struct vctx *c, size_t i)
{
    size_t old = c->len;
    int w = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);

    if (w > 0)
        c->len += (size_t)w;
    if (c->len >= sizeof(c->path))
        c->len = sizeof(c->path) - 1;
    return old;
}

static void path_pop(struct vctx *c, size_t old)
{
    c->len = old;
    c->path[old] = '\0';
}

/* "integer 8080", "string \"abc\"", "object" for messages. */
static void describe(const struct ynode *n, char *buf, size_t len)
{
    if (n->kind != YNODE_SCALAR || n->type == YSCALAR_NULL) {
        snprintf(buf, len, "%s", ynode_type_name(n));
        return;
    }
    if (n->type == YSCALAR_STRING)
        snprintf(buf, len, "string \"%.60s%s\"", n->value, n->len > 60 ? "..." : "");
    else
        snprintf(buf, len, "%s %.60s", ynode_type_name(n), n->value);
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static void fmt_num(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.15g", v);
}

static json_t *scalar_json(const struct ynode *n)
{
    return ynode_to_json(n);
}

static void check_enum(const struct schema *s, const struct ynode *n, json_t *v, struct vctx *c)
{
    char list[512] = "", got[96];
    size_t i, off = 0;
    const char *suggest = NULL;
    size_t best = (size_t)-1;

    if (s->enum_values == NULL)
        return;
    for (i = 0; i < json_array_size(s->enum_values); i++)
        if (json_equal(json_array_get(s->enum_values, i), v))
            return;
    for (i = 0; i < json_array_size(s->enum_values) && off < sizeof(list); i++) {
        json_t *e = json_array_get(s->enum_values, i);
        char *t = json_dumps(e, JSON_ENCODE_ANY);
        const char *shown = json_is_string(e) ? json_string_value(e) : t;

        if (shown != NULL)
            off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", shown);
        if (json_is_string(e) && n->type == YSCALAR_STRING) {
            size_t d = schema_edit_distance(n->value, json_string_value(e));
            size_t l = strlen(json_string_value(e));

            if (d <= 2 && d * 3 <= (l > n->len ? l : n->len) && d < best) {
                best = d;
                suggest = json_string_value(e);
            }
        }
        free(t);
    }
    if (n->type == YSCALAR_STRING)
        snprintf(got, sizeof(got), "\"%.60s\"", n->value);
    else
        snprintf(got, sizeof(got), "%.60s", n->value);
    if (suggest != NULL)
        verr(c, n, "unsupported value %s (did you mean \"%s\"?); must be one of: %s", got, suggest,
             list);
    else
        verr(c, n, "unsupported value %s; must be one of: %s", got, list);
}

static void check_range(const struct schema *s, const struct ynode *n, double v, struct vctx *c)
{
    char b[64];

    if (s->has_minimum && (s->exclusive_minimum ? v <= s->minimum : v < s->minimum)) {
        fmt_num(s->minimum, b, sizeof(b));
        verr(c, n, "must be %s %s, got %s", s->exclusive_minimum ? "greater than" : "at least", b,
             n->value);
    }
    if (s->has_maximum && (s->exclusive_maximum ? v >= s->maximum : v > s->maximum)) {
        fmt_num(s->maximum, b, sizeof(b));
        verr(c, n, "must be %s %s, got %s", s->exclusive_maximum ? "less than" : "at most", b,
             n->value);
    }
}

static bool yaml11_bool_word(const char *v)
{
    static const char *const words[] = {"yes", "no",  "on",  "off", "y",  "n",   "Yes", "No",
                                        "On",  "Off", "YES", "NO",  "ON", "OFF", NULL};
    size_t i;

    for (i = 0; words[i]; i++)
        if (!strcmp(v, words[i]))
            return true;
    return false;
}

static void type_error(const struct schema *s, const struct ynode *n, struct vctx *c)
{
    char got[128];
    const char *want = s->int_or_string ? "integer or string" : schema_type_name(s->type);

    describe(n, got, sizeof(got));
    if (s->type == SCHEMA_BOOLEAN && n->kind == YNODE_SCALAR && n->type == YSCALAR_STRING &&
        n->plain && yaml11_bool_word(n->value))
        verr(c, n, "expected boolean, got %s (write true or false)", got);
    else if (s->type == SCHEMA_STRING && n->kind == YNODE_SCALAR && n->type != YSCALAR_NULL)
        verr(c, n, "expected string, got %s (quote it: \"%.60s\")", got, n->value);
    else
        verr(c, n, "expected %s, got %s", want, got);
}

static json_t *validate(const struct schema *s, const struct ynode *n, struct vctx *c);

/* Sets the defaults of properties missing from obj (and the defaults inside
 * those defaults). Present values were defaulted when they were validated. */
static int fill_missing(const struct schema *s, json_t *obj)
{
    size_t i;

    for (i = 0; i < s->nprops; i++) {
        json_t *d;

        if (s->props[i]->default_value == NULL || json_object_get(obj, s->prop_names[i]) != NULL)
            continue;
        d = json_deep_copy(s->props[i]->default_value);
        if (d == NULL || json_object_set_new(obj, s->prop_names[i], d) < 0)
            return -1;
        if (schema_apply_defaults(s->props[i], d) < 0)
            return -1;
    }
    return 0;
}

static json_t *validate_object(const struct schema *s, const struct ynode *n, struct vctx *c)
{
    json_t *obj = json_object();
    size_t i;

    if (obj == NULL)
        return NULL;
    for (i = 0; i < n->n; i++) {
        const char *key = n->keys[i]->value;
        const struct ynode *val = n->items[i];
        const struct schema *sub = schema_property(s, key);
        size_t old = path_push_key(c, key);
        json_t *jv = NULL;

        if (sub == NULL)
            sub = s->additional;
        if (sub != NULL) {
            /* null means "absent" (as Kubernetes prunes it): the default
             * applies and required fields are reported below. */
            if (!(val->kind == YNODE_SCALAR && val->type == YSCALAR_NULL && s->additional == NULL))
                jv = validate(sub, val, c);
        } else if (s->preserve_unknown) {
            jv = ynode_to_json(val);
        } else {
            const char *hint = closest(key, s->prop_names, s->nprops);

            if (hint != NULL)
                verr(c, n->keys[i], "unknown field \"%s\" (did you mean \"%s\"?)", key, hint);
            else
                verr(c, n->keys[i], "unknown field \"%s\"", key);
        }
        if (jv != NULL)
            json_object_set_new(obj, key, jv);
        path_pop(c, old);
    }
    for (i = 0; i < s->nrequired; i++) {
        const struct ynode *rv = ynode_get(n, s->required[i], NULL);

        if ((rv == NULL || (rv->kind == YNODE_SCALAR && rv->type == YSCALAR_NULL)) &&
            schema_property(s, s->required[i])->default_value == NULL) {
            size_t old = path_push_key(c, s->required[i]);

            verr(c, n, "required field is missing");
            path_pop(c, old);
        }
    }
    if (s->min_properties >= 0 && (long long)n->n < s->min_properties)
        verr(c, n, "must have at least %lld field%s", s->min_properties,
             s->min_properties == 1 ? "" : "s");
    if (s->max_properties >= 0 && (long long)n->n > s->max_properties)
        verr(c, n, "must have at most %lld field%s, got %zu", s->max_properties,
             s->max_properties == 1 ? "" : "s", n->n);
    if (fill_missing(s, obj) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *validate_array(const struct schema *s, const struct ynode *n, struct vctx *c)
{
    json_t *arr = json_array();
    size_t i;

    if (arr == NULL)
        return NULL;
    for (i = 0; i < n->n; i++) {
        size_t old = path_push_index(c, i);
        json_t *jv = validate(s->items, n->items[i], c);

        if (jv != NULL)
            json_array_append_new(arr, jv);
        path_pop(c, old);
    }
    if (s->min_items >= 0 && (long long)n->n < s->min_items)
        verr(c, n, "must have at least %lld item%s", s->min_items, s->min_items == 1 ? "" : "s");
    if (s->max_items >= 0 && (long long)n->n > s->max_items)
        verr(c, n, "must have at most %lld item%s, got %zu", s->max_items,
             s->max_items == 1 ? "" : "s", n->n);
    return arr;
}

static void validate_string(const struct schema *s, const struct ynode *n, struct vctx *c)
{
    size_t chars = utf8_chars(n->value);

    if (s->min_length >= 0 && (long long)chars < s->min_length) {
        if (s->min_length == 1)
            verr(c, n, "must not be empty");
        else
            verr(c, n, "must be at least %lld characters long, got %zu", s->min_length, chars);
    }
    if (s->max_length >= 0 && (long long)chars > s->max_length)
        verr(c, n, "must be at most %lld characters long, got %zu", s->max_length, chars);
    if (s->pattern != NULL && regexec(&s->regex, n->value, 0, NULL, 0) != 0)
        verr(c, n, "\"%.80s\" does not match the pattern %s", n->value, s->pattern);
    if (s->format != NULL && !strcmp(s->format, "duration")) {
        int64_t ms;
        const char *why = NULL;

        if (duration_parse(n->value, &ms, &why) < 0)
            verr(c, n, "invalid duration \"%.60s\": %s", n->value, why);
    }
}

static json_t *validate(const struct schema *s, const struct ynode *n, struct vctx *c)
{
    json_t *v = NULL;

    if (s->type == SCHEMA_ANY && !s->int_or_string)
        return ynode_to_json(n);
    if (s->int_or_string) {
        if (n->kind != YNODE_SCALAR || (n->type != YSCALAR_INT && n->type != YSCALAR_STRING)) {
            type_error(s, n, c);
            return NULL;
        }
        v = scalar_json(n);
        check_enum(s, n, v, c);
        if (n->type == YSCALAR_STRING)
            validate_string(s, n, c);
        else
            check_range(s, n, (double)n->ival, c);
        return v;
    }
    switch (s->type) {
    case SCHEMA_OBJECT:
        if (n->kind != YNODE_MAPPING)
            break;
        return validate_object(s, n, c);
    case SCHEMA_ARRAY:
        if (n->kind != YNODE_SEQUENCE)
            break;
        return validate_array(s, n, c);
    case SCHEMA_STRING:
        if (n->kind != YNODE_SCALAR || n->type != YSCALAR_STRING)
            break;
        v = scalar_json(n);
        check_enum(s, n, v, c);
        validate_string(s, n, c);
        return v;
    case SCHEMA_INTEGER:
        if (n->kind != YNODE_SCALAR || n->type != YSCALAR_INT)
            break;
        v = scalar_json(n);
        check_enum(s, n, v, c);
        check_range(s, n, (double)n->ival, c);
        return v;
    case SCHEMA_NUMBER:
        if (n->kind != YNODE_SCALAR || (n->type != YSCALAR_INT && n->type != YSCALAR_FLOAT))
            break;
        if (!isfinite(n->fval)) {
            verr(c, n, "must be a finite number, got %s", n->value);
            return NULL;
        }
        v = scalar_json(n);
        check_enum(s, n, v, c);
        check_range(s, n, n->fval, c);
        return v;
    case SCHEMA_BOOLEAN:
        if (n->kind != YNODE_SCALAR || n->type != YSCALAR_BOOL)
            break;
        v = scalar_json(n);
        check_enum(s, n, v, c);
        return v;
    case SCHEMA_ANY:
        break;
    }
    type_error(s, n, c);
    return NULL;
}

json_t *schema_validate(const struct schema *s, const struct ynode *n, const char *file,
                        const char *path, struct diag_list *diags)
{
    struct vctx c;

    if (n == NULL)
        return NULL;
    c.file = file;
    c.diags = diags;
    snprintf(c.path, sizeof(c.path), "%s", path ? path : "");
    c.len = strlen(c.path);
    return validate(s, n, &c);
}

int schema_apply_defaults(const struct schema *s, json_t *v)
{
    size_t i;

    if (s == NULL || v == NULL)
        return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;

        json_object_foreach(v, k, x)
        {
            const struct schema *sub = schema_property(s, k);

            if (sub == NULL)
                sub = s->additional;
            if (sub != NULL && schema_apply_defaults(sub, x) < 0)
                return -1;
        }
        return fill_missing(s, v);
    }
    if (json_is_array(v) && s->items != NULL) {
        for (i = 0; i < json_array_size(v); i++)
            if (schema_apply_defaults(s->items, json_array_get(v, i)) < 0)
                return -1;
    }
    return 0;
}
