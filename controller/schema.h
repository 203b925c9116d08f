/* The OpenAPI v3 structural-schema subset aviary's CRDs use, compiled once,
 * then used to validate YAML node trees (every error in one pass, with
 * positions and field paths) and to apply defaults into jansson values.
 * A compiled schema is immutable and may be shared by all threads. */
#ifndef AVIARY_CONTROLLER_SCHEMA_H
#define AVIARY_CONTROLLER_SCHEMA_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>

#include "controller/yaml_doc.h"

enum schema_type {
    SCHEMA_ANY, /* x-kubernetes-preserve-unknown-fields without a type */
    SCHEMA_OBJECT,
    SCHEMA_ARRAY,
    SCHEMA_STRING,
    SCHEMA_INTEGER,
    SCHEMA_NUMBER,
    SCHEMA_BOOLEAN,
};

struct schema {
    enum schema_type type;
    char *description;
    /* objects */
    size_t nprops;
    char **prop_names;
    struct schema **props;
    size_t nrequired;
    char **required;
    struct schema *additional;                /* map values (additionalProperties: {schema}) */
    bool preserve_unknown;                    /* x-kubernetes-preserve-unknown-fields */
    long long min_properties, max_properties; /* -1: unset */
    /* arrays */
    struct schema *items;
    long long min_items, max_items;
    /* scalars */
    json_t *enum_values; /* array or NULL */
    bool has_minimum, has_maximum, exclusive_minimum, exclusive_maximum;
    double minimum, maximum;
    long long min_length, max_length; /* characters; -1: unset */
    char *pattern;
    regex_t regex; /* valid when pattern != NULL */
    char *format;  /* "duration" is checked; others are documentation */
    bool int_or_string;
    json_t *default_value; /* NULL: none */
};

/* Compiles an openAPIV3Schema given as JSON. `where` names the source in
 * diagnostics (e.g. "crds/application.yaml"). Unsupported keywords, bad
 * patterns (also non-POSIX escapes such as \d) and defaults that do not
 * validate against their own schema are errors.
 * Returns the schema (free with schema_free) or NULL with diagnostics. */
struct schema *schema_compile(const json_t *openapi, const char *where, struct diag_list *diags);

void schema_free(struct schema *s);

/* Property `name` of an object schema, or NULL. */
const struct schema *schema_property(const struct schema *s, const char *name);

/* Follows a dotted path of properties ("spec.rollout.canary"); "[]" steps
 * into array items ("spec.rollout.canary.steps[].setWeight"). NULL when
 * absent. */
const struct schema *schema_lookup(const struct schema *root, const char *path);

/* Validates n against s. file and path (the field path of n, "" for the
 * document root) prefix every diagnostic appended to diags. Every problem is
 * reported, not only the first.
 * Returns the value as JSON with the schema's defaults applied (new
 * reference, caller owns), or NULL when n is NULL. When errors were reported
 * the returned value is best-effort and must not be acted on. */
json_t *schema_validate(const struct schema *s, const struct ynode *n, const char *file,
                        const char *path, struct diag_list *diags);

/* Fills missing properties that have defaults into v (recursively, also
 * inside the defaults themselves). v is modified in place. Returns 0, or -1
 * on allocation failure. */
int schema_apply_defaults(const struct schema *s, json_t *v);

/* Converts a node tree to JSON without a schema (scalars typed by the YAML
 * 1.2 core schema). Returns a new reference or NULL on allocation failure. */
json_t *ynode_to_json(const struct ynode *n);

/* Optimal-string-alignment edit distance between a and b, ignoring ASCII
 * case differences only partly (a case change costs 1). Bounded: strings
 * longer than 64 bytes return a large value. */
size_t schema_edit_distance(const char *a, const char *b);

const char *schema_type_name(enum schema_type t);

#endif
