/* YAML manifests as node trees with source positions (libyaml underneath),
 * plus the diagnostics list every manifest check reports into. Several
 * documents per file; aliases expanded with bounds (an alias bomb fails fast
 * with little memory); size, depth and UTF-8 checks; duplicate keys are
 * errors. Any thread; no shared state. */
#ifndef AVIARY_CONTROLLER_YAML_DOC_H
#define AVIARY_CONTROLLER_YAML_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* ---- diagnostics: "file:line:column: field.path: message" ---- */

struct diag {
    char *file;    /* owned */
    int line;      /* 1-based; 0 when unknown */
    int column;    /* 1-based; 0 when unknown */
    char *path;    /* owned; "" when the message is not about a field */
    char *message; /* owned */
};

#define DIAG_MAX 1000 /* more are counted in `dropped`, not stored */

struct diag_list {
    struct diag *items;
    size_t n, cap;
    size_t dropped;
};

/* Appends one diagnostic (copies every string). Allocation failure or more
 * than DIAG_MAX entries increments `dropped` instead. */
void diag_add(struct diag_list *l, const char *file, int line, int column, const char *path,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Moves every entry of src to the end of dst; src is left empty. */
void diag_move(struct diag_list *dst, struct diag_list *src);

/* Sorts by file, line, column (stable: equal positions keep their order). */
void diag_sort(struct diag_list *l);

/* Writes d as "file:line:column: path: message" into buf (truncated to len,
 * always NUL-terminated; the path part is left out when empty and the
 * position when line is 0). Returns buf. */
char *diag_format(const struct diag *d, char *buf, size_t len);

/* Prints every entry, one per line, and "file: N more errors not shown"
 * when entries were dropped. Returns the number of errors (stored +
 * dropped). */
size_t diag_print(FILE *out, const struct diag_list *l);

/* Frees the entries; the list is reusable (empty) afterwards. */
void diag_list_clear(struct diag_list *l);

static inline size_t diag_count(const struct diag_list *l)
{
    return l->n + l->dropped;
}

/* ---- node tree ---- */

enum ynode_kind {
    YNODE_SCALAR,
    YNODE_SEQUENCE,
    YNODE_MAPPING,
};

/* How a scalar resolves under the YAML 1.2 core schema (quoted scalars and
 * !!str are always strings; "yes"/"on" are strings, not booleans). */
enum yscalar_type {
    YSCALAR_NULL,
    YSCALAR_BOOL,
    YSCALAR_INT,
    YSCALAR_FLOAT,
    YSCALAR_STRING,
};

struct ynode {
    enum ynode_kind kind;
    int line, column; /* 1-based position of the node's first character */
    /* Scalars. */
    char *value; /* NUL-terminated text as written (after YAML unescaping) */
    size_t len;
    enum yscalar_type type;
    bool plain; /* written without quotes or block style */
    bool bval;
    long long ival;
    double fval;
    /* Sequences: items[0..n). Mappings: keys[i] (scalars) -> items[i]. */
    size_t n, cap;
    struct ynode **items;
    struct ynode **keys;
    /* Bookkeeping for alias bounds: nodes in the expanded subtree, height. */
    size_t weight;
    size_t height;
};

struct ydoc {
    struct ynode *root; /* NULL for an empty document */
    int line, column;   /* where the document starts */
};

/* A parsed file. Aliased nodes are shared (a DAG, never a cycle), so nodes
 * are owned by the file's arena, not by their parents. */
struct yfile {
    struct ydoc *docs;
    size_t ndocs;
    struct ynode **arena; /* every node, for freeing */
    size_t narena, arena_cap;
};

struct yaml_limits {
    size_t max_bytes;    /* 0: YAML_MAX_BYTES */
    size_t max_expanded; /* nodes after alias expansion, per file; 0: default */
    size_t max_aliases;  /* alias uses per file; 0: default */
    size_t max_depth;    /* nesting, after alias expansion; 0: default */
};

#define YAML_MAX_BYTES    (1024 * 1024)
#define YAML_MAX_EXPANDED 250000
#define YAML_MAX_ALIASES  1000
#define YAML_MAX_DEPTH    64

/* Parses len bytes of buf (need not be NUL-terminated) named `name` in
 * diagnostics. limits may be NULL for the defaults.
 * Returns the file (caller frees with yaml_file_free) when it parsed
 * completely and without errors; otherwise NULL with at least one entry
 * appended to diags. A file with a syntax error in its third document
 * yields nothing: a half-written file is never partly used. */
struct yfile *yaml_load_buffer(const char *name, const char *buf, size_t len,
                               const struct yaml_limits *limits, struct diag_list *diags);

/* Reads path (at most limits->max_bytes, refusing larger files without
 * reading them whole) and parses it as yaml_load_buffer does. Returns the
 * file or NULL with diagnostics (I/O errors included, position 0:0). */
struct yfile *yaml_load_file(const char *path, const struct yaml_limits *limits,
                             struct diag_list *diags);

void yaml_file_free(struct yfile *f);

/* Value of key in mapping m, or NULL (also when m is not a mapping). If
 * key_out is non-NULL the key node is stored there. */
struct ynode *ynode_get(const struct ynode *m, const char *key, struct ynode **key_out);

/* Name of a node's type as schema messages use it: "object", "array",
 * "string", "integer", "number", "boolean", "null". */
const char *ynode_type_name(const struct ynode *n);

#endif
