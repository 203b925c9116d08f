/* Loads YAML manifests into position-carrying node trees with bounded alias
 * expansion, and collects "file:line:column: path: message" diagnostics.
 * Any thread; every call works on its own state. */
#include "controller/yaml_doc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ------------------------------------------------------------------ */
/* diagnostics                                                          */

void diag_add(struct diag_list *l, const char *file, int line, int column, const char *path,
              const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    struct diag *d;

    if (l->n >= DIAG_MAX) {
        l->dropped++;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct diag *items = realloc(l->items, cap * sizeof(*items));

        if (items == NULL) {
            l->dropped++;
            return;
        }
        l->items = items;
        l->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d = &l->items[l->n];
    d->file = strdup(file ? file : "");
    d->path = strdup(path ? path : "");
    d->message = strdup(msg);
    d->line = line;
    d->column = column;
    if (d->file == NULL || d->path == NULL || d->message == NULL) {
        free(d->file);
        free(d->path);
        free(d->message);
        l->dropped++;
        return;
    }
    l->n++;
}

void diag_move(struct diag_list *dst, struct diag_list *src)
{
    size_t i;

    for (i = 0; i < src->n; i++) {
        struct diag *d = &src->items[i];

        diag_add(dst, d->file, d->line, d->column, d->path, "%s", d->message);
    }
    dst->dropped += src->dropped;
    diag_list_clear(src);
}

static int diag_cmp(const struct diag *a, const struct diag *b)
{
    int c = strcmp(a->file, b->file);

    if (c != 0)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->column != b->column)
        return a->column < b->column ? -1 : 1;
    return 0;
}

void diag_sort(struct diag_list *l)
{
    size_t i, j;

    /* Insertion sort: stable, and lists are short (<= DIAG_MAX) and mostly
     * sorted already because validation walks the tree in source order. */
    for (i = 1; i < l->n; i++) {
        struct diag tmp = l->items[i];

        for (j = i; j > 0 && diag_cmp(&l->items[j - 1], &tmp) > 0; j--)
            l->items[j] = l->items[j - 1];
        l->items[j] = tmp;
    }
}

char *diag_format(const struct diag *d, char *buf, size_t len)
{
    char pos[64] = "";

    if (d->line > 0)
        snprintf(pos, sizeof(pos), ":%d:%d", d->line, d->column);
    snprintf(buf, len, "%s%s: %s%s%s", d->file, pos, d->path, d->path[0] ? ": " : "", d->message);
    return buf;
}

size_t diag_print(FILE *out, const struct diag_list *l)
{
    char line[2048];
    size_t i;

    for (i = 0; i < l->n; i++)
        fprintf(out, "%s\n", diag_format(&l->items[i], line, sizeof(line)));
    if (l->dropped > 0)
        fprintf(out, "%s: %zu more errors not shown\n", l->n ? l->items[0].file : "aviary",
                l->dropped);
    return l->n + l->dropped;
}

void diag_list_clear(struct diag_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->items[i].file);
        free(l->items[i].path);
        free(l->items[i].message);
    }
    free(l->items);
    l->items = NULL;
    l->n = l->cap = l->dropped = 0;
}

/* ------------------------------------------------------------------ */
/* encoding checks                                                      */

/* Returns the byte offset of the first invalid UTF-8 sequence, or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= need)
            return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += need + 1;
    }
    return len;
}

/* Line and column (1-based, columns in characters) of byte offset off. */
static void offset_position(const unsigned char *s, size_t off, int *line, int *column)
{
    size_t i;

    *line = 1;
    *column = 1;
    for (i = 0; i < off; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *column = 1;
        } else if ((s[i] & 0xC0) != 0x80) {
            (*column)++;
        }
    }
}

/* Returns 0 when buf is UTF-8 (an optional UTF-8 BOM is fine), -1 with a
 * diagnostic otherwise. */
static int check_encoding(const char *name, const unsigned char *s, size_t len,
                          struct diag_list *diags)
{
    size_t bad;
    int line, column;

    if ((len >= 2 && ((s[0] == 0xFE && s[1] == 0xFF) || (s[0] == 0xFF && s[1] == 0xFE))) ||
        (len >= 4 && s[0] == 0 && s[1] == 0 && s[2] == 0xFE && s[3] == 0xFF)) {
        diag_add(diags, name, 1, 1, "",
                 "file is UTF-16 or UTF-32 encoded; manifests must be UTF-8");
        return -1;
    }
    if (len >= 2 && (s[0] == 0 || s[1] == 0)) {
        diag_add(diags, name, 1, 1, "",
                 "file looks UTF-16 or UTF-32 encoded (NUL bytes); manifests must be UTF-8");
        return -1;
    }
    bad = utf8_invalid_at(s, len);
    if (bad < len) {
        offset_position(s, bad, &line, &column);
        diag_add(diags, name, line, column, "", "invalid UTF-8 byte sequence (byte 0x%02x)",
                 s[bad]);
        return -1;
    }
    if (memchr(s, 0, len) != NULL) {
        offset_position(s, (size_t)((const unsigned char *)memchr(s, 0, len) - s), &line, &column);
        diag_add(diags, name, line, column, "", "NUL byte in file");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* scalars                                                              */

static bool all_digits(const char *s, const char *set)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (strchr(set, *s) == NULL)
            return false;
    return true;
}

/* Resolves a plain scalar with the YAML 1.2 core schema. */
static void resolve_plain(struct ynode *n)
{
    const char *v = n->value;
    const char *digits = v;
    char *end;

    n->type = YSCALAR_STRING;
    if (n->len == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
        !strcmp(v, "NULL")) {
        n->type = YSCALAR_NULL;
        return;
    }
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
        n->type = YSCALAR_BOOL;
        n->bval = true;
        return;
    }
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
        n->type = YSCALAR_BOOL;
        n->bval = false;
        return;
    }
    if (*digits == '-' || *digits == '+')
        digits++;
    if (all_digits(digits, "0123456789") ||
        (!strncmp(v, "0o", 2) && all_digits(v + 2, "01234567")) ||
        (!strncmp(v, "0x", 2) && all_digits(v + 2, "0123456789abcdefABCDEF"))) {
        int base = !strncmp(v, "0o", 2) ? 8 : !strncmp(v, "0x", 2) ? 16 : 10;
        const char *start = base == 10 ? v : v + 2;

        errno = 0;
        n->ival = strtoll(start, &end, base);
        if (errno == 0 && *end == '\0') {
            n->type = YSCALAR_INT;
            n->fval = (double)n->ival;
            return;
        }
        /* Out of range: a number, but not a representable integer. */
        n->type = YSCALAR_FLOAT;
        n->fval = strtod(v, NULL);
        return;
    }
    if (!strcmp(digits, ".inf") || !strcmp(digits, ".Inf") || !strcmp(digits, ".INF")) {
        n->type = YSCALAR_FLOAT;
        n->fval = v[0] == '-' ? -INFINITY : INFINITY;
        return;
    }
    if (!strcmp(v, ".nan") || !strcmp(v, ".NaN") || !strcmp(v, ".NAN")) {
        n->type = YSCALAR_FLOAT;
        n->fval = NAN;
        return;
    }
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    {
        const char *p = digits;
        size_t before = 0, after = 0;

        while (*p >= '0' && *p <= '9')
            p++, before++;
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9')
                p++, after++;
        }
        if (before + after == 0 || (before == 0 && after == 0))
            return;
        if (*p == 'e' || *p == 'E') {
            size_t exp = 0;

            p++;
            if (*p == '-' || *p == '+')
                p++;
            while (*p >= '0' && *p <= '9')
                p++, exp++;
            if (exp == 0)
                return;
        }
        if (*p != '\0')
            return;
        n->type = YSCALAR_FLOAT;
        n->fval = strtod(v, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* builder                                                              */

struct frame {
    struct ynode *node;
    char *anchor;  /* owned; registered when the node completes */
    bool have_key; /* mapping: a key is waiting for its value */
};

struct anchor {
    char *name;
    struct ynode *node;
};

struct builder {
    const char *name;
    const struct yaml_limits *lim;
    struct diag_list *diags;
    struct yfile *file;
    struct frame *stack;
    size_t depth, stack_cap;
    struct anchor *anchors;
    size_t nanchors, anchors_cap;
    size_t expanded; /* nodes after alias expansion so far, whole file */
    size_t aliases;
    bool failed;
};

static void berr(struct builder *b, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Path of the node being attached: keys and indexes of the open frames. */
static void stack_path(struct builder *b, char *buf, size_t len)
{
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = 0; i < b->depth && off < len; i++) {
        struct ynode *n = b->stack[i].node;

        if (n->kind == YNODE_MAPPING && b->stack[i].have_key) {
            const char *k = n->keys[n->n]->value;

            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "." : "", k);
        } else if (n->kind == YNODE_SEQUENCE) {
            off += (size_t)snprintf(buf + off, len - off, "[%zu]", n->n);
        }
    }
}

static void berr(struct builder *b, int line, int column, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag_add(b->diags, b->name, line, column, "", "%s", msg);
    b->failed = true;
}

static struct ynode *new_node(struct builder *b, enum ynode_kind kind, yaml_mark_t mark)
{
    struct yfile *f = b->file;
    struct ynode *n;

    if (f->narena == f->arena_cap) {
        size_t cap = f->arena_cap ? f->arena_cap * 2 : 64;
        struct ynode **a = realloc(f->arena, cap * sizeof(*a));

        if (a == NULL)
            return NULL;
        f->arena = a;
        f->arena_cap = cap;
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->column = (int)mark.column + 1;
    n->weight = 1;
    n->height = 1;
    f->arena[f->narena++] = n;
    return n;
}

static int push_child(struct ynode *parent, struct ynode *key, struct ynode *value)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct ynode **items = realloc(parent->items, cap * sizeof(*items));

        if (items == NULL)
            return -1;
        parent->items = items;
        if (parent->kind == YNODE_MAPPING) {
            struct ynode **keys = realloc(parent->keys, cap * sizeof(*keys));

            if (keys == NULL)
                return -1;
            parent->keys = keys;
        }
        parent->cap = cap;
    }
    if (parent->kind == YNODE_MAPPING)
        parent->keys[parent->n] = key;
    parent->items[parent->n] = value;
    return 0;
}

/* Accounts for a node (or an alias of one) appearing at the current depth. */
static int account(struct builder *b, struct ynode *n, yaml_mark_t mark)
{
    if (b->depth + n->height > b->lim->max_depth) {
        berr(b, (int)mark.line + 1, (int)mark.column + 1, "yaml: nesting deeper than %zu levels",
             b->lim->max_depth);
        return -1;
    }
    b->expanded += n->weight;
    if (b->expanded > b->lim->max_expanded) {
        berr(b, (int)mark.line + 1, (int)mark.column + 1,
             "yaml: document expands to more than %zu nodes (alias bomb?)", b->lim->max_expanded);
        return -1;
    }
    return 0;
}

/* Attaches a finished node to the open container (or the document). */
static int attach(struct builder *b, struct ynode *n, struct ydoc *doc)
{
    struct frame *top;
    struct ynode *p;

    if (b->depth == 0) {
        doc->root = n;
        return 0;
    }
    top = &b->stack[b->depth - 1];
    p = top->node;
    if (p->kind == YNODE_SEQUENCE) {
        if (push_child(p, NULL, n) < 0)
            goto oom;
        p->n++;
        return 0;
    }
    if (!top->have_key) {
        if (n->kind != YNODE_SCALAR) {
            berr(b, n->line, n->column, "yaml: mapping keys must be scalars");
            return -1;
        }
        if (n->plain && !strcmp(n->value, "<<")) {
            berr(b, n->line, n->column,
                 "yaml: merge keys (\"<<\") are not supported; write the fields out");
            return -1;
        }
        if (push_child(p, n, NULL) < 0)
            goto oom;
        top->have_key = true;
        return 0;
    }
    p->items[p->n++] = n;
    top->have_key = false;
    return 0;
oom:
    berr(b, n->line, n->column, "out of memory");
    return -1;
}

static int key_index_cmp(const void *a, const void *b)
{
    const struct ynode *x = *(struct ynode *const *)a, *y = *(struct ynode *const *)b;
    int c = strcmp(x->value, y->value);

    if (c != 0)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->column < y->column ? -1 : x->column > y->column;
}

/* Rejects duplicate keys in a finished mapping (O(n log n)). */
static int check_duplicates(struct builder *b, struct ynode *m)
{
    struct ynode **sorted;
    size_t i;
    int rc = 0;
    char path[256];

    if (m->n < 2)
        return 0;
    sorted = malloc(m->n * sizeof(*sorted));
    if (sorted == NULL) {
        berr(b, m->line, m->column, "out of memory");
        return -1;
    }
    memcpy(sorted, m->keys, m->n * sizeof(*sorted));
    qsort(sorted, m->n, sizeof(*sorted), key_index_cmp);
    stack_path(b, path, sizeof(path));
    for (i = 1; i < m->n; i++) {
        if (strcmp(sorted[i - 1]->value, sorted[i]->value) == 0) {
            char full[512];

            snprintf(full, sizeof(full), "%s%s%s", path, path[0] ? "." : "", sorted[i]->value);
            diag_add(b->diags, b->name, sorted[i]->line, sorted[i]->column, full,
                     "duplicate key (first defined at line %d)", sorted[i - 1]->line);
            b->failed = true;
            rc = -1;
        }
    }
    free(sorted);
    return rc;
}

static int register_anchor(struct builder *b, char *anchor, struct ynode *n)
{
    if (anchor == NULL)
        return 0;
    if (b->nanchors == b->anchors_cap) {
        size_t cap = b->anchors_cap ? b->anchors_cap * 2 : 8;
        struct anchor *a = realloc(b->anchors, cap * sizeof(*a));

        if (a == NULL) {
            free(anchor);
            return -1;
        }
        b->anchors = a;
        b->anchors_cap = cap;
    }
    b->anchors[b->nanchors].name = anchor;
    b->anchors[b->nanchors].node = n;
    b->nanchors++;
    return 0;
}

static void clear_anchors(struct builder *b)
{
    size_t i;

    for (i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    b->nanchors = 0;
}

static struct ynode *find_anchor(struct builder *b, const char *name)
{
    size_t i;

    for (i = b->nanchors; i > 0; i--)
        if (strcmp(b->anchors[i - 1].name, name) == 0)
            return b->anchors[i - 1].node;
    return NULL;
}

/* Applies an explicit tag to a scalar. Returns -1 for unsupported tags. */
static int apply_tag(struct builder *b, struct ynode *n, const char *tag, bool plain)
{
    static const char *prefix = "tag:yaml.org,2002:";
    size_t pl = strlen(prefix);

    if (tag == NULL || !strcmp(tag, "!")) {
        if (plain)
            resolve_plain(n);
        else
            n->type = YSCALAR_STRING;
        return 0;
    }
    if (strncmp(tag, prefix, pl) != 0) {
        berr(b, n->line, n->column, "yaml: unsupported tag %s", tag);
        return -1;
    }
    tag += pl;
    if (!strcmp(tag, "str")) {
        n->type = YSCALAR_STRING;
        return 0;
    }
    resolve_plain(n);
    if ((!strcmp(tag, "int") && n->type == YSCALAR_INT) ||
        (!strcmp(tag, "float") && (n->type == YSCALAR_FLOAT || n->type == YSCALAR_INT)) ||
        (!strcmp(tag, "bool") && n->type == YSCALAR_BOOL) ||
        (!strcmp(tag, "null") && n->type == YSCALAR_NULL)) {
        if (!strcmp(tag, "float"))
            n->type = YSCALAR_FLOAT;
        return 0;
    }
    berr(b, n->line, n->column, "yaml: value \"%s\" does not match its tag !!%s", n->value, tag);
    return -1;
}

static int check_collection_tag(struct builder *b, const yaml_char_t *tag, const char *want,
                                yaml_mark_t mark)
{
    char full[64];

    if (tag == NULL || !strcmp((const char *)tag, "!"))
        return 0;
    snprintf(full, sizeof(full), "tag:yaml.org,2002:%s", want);
    if (!strcmp((const char *)tag, full))
        return 0;
    berr(b, (int)mark.line + 1, (int)mark.column + 1, "yaml: unsupported tag %s",
         (const char *)tag);
    return -1;
}

static int push_frame(struct builder *b, struct ynode *n, const yaml_char_t *anchor)
{
    if (b->depth >= b->lim->max_depth) {
        berr(b, n->line, n->column, "yaml: nesting deeper than %zu levels", b->lim->max_depth);
        return -1;
    }
    if (b->depth == b->stack_cap) {
        size_t cap = b->stack_cap ? b->stack_cap * 2 : 16;
        struct frame *s = realloc(b->stack, cap * sizeof(*s));

        if (s == NULL)
            return -1;
        b->stack = s;
        b->stack_cap = cap;
    }
    b->stack[b->depth].node = n;
    b->stack[b->depth].have_key = false;
    b->stack[b->depth].anchor = anchor ? strdup((const char *)anchor) : NULL;
    b->depth++;
    return 0;
}

static int add_doc(struct builder *b, yaml_mark_t mark)
{
    struct yfile *f = b->file;
    struct ydoc *docs = realloc(f->docs, (f->ndocs + 1) * sizeof(*docs));

    if (docs == NULL)
        return -1;
    f->docs = docs;
    f->docs[f->ndocs].root = NULL;
    f->docs[f->ndocs].line = (int)mark.line + 1;
    f->docs[f->ndocs].column = (int)mark.column + 1;
    f->ndocs++;
    return 0;
}

/* Handles one parser event. Returns 1 at stream end, 0 to continue, -1 on
 * error (diagnostic added). */
static int handle_event(struct builder *b, yaml_event_t *ev)
{
    struct ydoc *doc = b->file->ndocs ? &b->file->docs[b->file->ndocs - 1] : NULL;
    struct ynode *n;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        clear_anchors(b);
        if (add_doc(b, ev->start_mark) < 0) {
            berr(b, 0, 0, "out of memory");
            return -1;
        }
        return 0;
    case YAML_SCALAR_EVENT:
        n = new_node(b, YNODE_SCALAR, ev->start_mark);
        if (n == NULL)
            goto oom;
        n->value = malloc(ev->data.scalar.length + 1);
        if (n->value == NULL)
            goto oom;
        memcpy(n->value, ev->data.scalar.value, ev->data.scalar.length);
        n->value[ev->data.scalar.length] = '\0';
        n->len = ev->data.scalar.length;
        if (strlen(n->value) != n->len) {
            berr(b, n->line, n->column, "yaml: NUL character in scalar");
            return -1;
        }
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (apply_tag(b, n, (const char *)ev->data.scalar.tag, n->plain) < 0)
            return -1;
        if (account(b, n, ev->start_mark) < 0)
            return -1;
        if (ev->data.scalar.anchor != NULL) {
            char *a = strdup((const char *)ev->data.scalar.anchor);

            if (a == NULL || register_anchor(b, a, n) < 0)
                goto oom;
        }
        return attach(b, n, doc);
    case YAML_ALIAS_EVENT:
        n = find_anchor(b, (const char *)ev->data.alias.anchor);
        if (n == NULL) {
            berr(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                 "yaml: unknown alias *%s", (const char *)ev->data.alias.anchor);
            return -1;
        }
        if (++b->aliases > b->lim->max_aliases) {
            berr(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                 "yaml: more than %zu aliases", b->lim->max_aliases);
            return -1;
        }
        if (account(b, n, ev->start_mark) < 0)
            return -1;
        return attach(b, n, doc);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;

        if (check_collection_tag(b, seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag,
                                 seq ? "seq" : "map", ev->start_mark) < 0)
            return -1;
        n = new_node(b, seq ? YNODE_SEQUENCE : YNODE_MAPPING, ev->start_mark);
        if (n == NULL)
            goto oom;
        b->expanded++;
        if (b->expanded > b->lim->max_expanded) {
            berr(b, n->line, n->column,
                 "yaml: document expands to more than %zu nodes (alias bomb?)",
                 b->lim->max_expanded);
            return -1;
        }
        if (push_frame(b, n, seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor) <
            0)
            return -1;
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct frame fr = b->stack[--b->depth];
        size_t i;

        n = fr.node;
        /* weight and height over the (expanded) children */
        for (i = 0; i < n->n; i++) {
            n->weight += n->items[i]->weight + (n->keys ? 1 : 0);
            if (n->items[i]->height + 1 > n->height)
                n->height = n->items[i]->height + 1;
        }
        if (n->kind == YNODE_MAPPING) {
            if (check_duplicates(b, n) < 0) {
                free(fr.anchor);
                return -1;
            }
        }
        if (fr.anchor != NULL && register_anchor(b, fr.anchor, n) < 0)
            goto oom;
        return attach(b, n, doc);
    }
    default:
        return 0;
    }
oom:
    berr(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1, "out of memory");
    return -1;
}

struct yfile *yaml_load_buffer(const char *name, const char *buf, size_t len,
                               const struct yaml_limits *limits, struct diag_list *diags)
{
    struct yaml_limits lim = {0};
    struct builder b = {0};
    yaml_parser_t parser;
    bool parser_ok = false;
    struct yfile *f = NULL;
    const unsigned char *s = (const unsigned char *)buf;

    if (limits != NULL)
        lim = *limits;
    if (lim.max_bytes == 0)
        lim.max_bytes = YAML_MAX_BYTES;
    if (lim.max_expanded == 0)
        lim.max_expanded = YAML_MAX_EXPANDED;
    if (lim.max_aliases == 0)
        lim.max_aliases = YAML_MAX_ALIASES;
    if (lim.max_depth == 0)
        lim.max_depth = YAML_MAX_DEPTH;
    if (len > lim.max_bytes) {
        diag_add(diags, name, 0, 0, "", "file is larger than %zu bytes", lim.max_bytes);
        return NULL;
    }
    if (check_encoding(name, s, len, diags) < 0)
        return NULL;
    if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        /* libyaml handles the BOM, but positions are simpler without it */
        s += 3;
        len -= 3;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL || !yaml_parser_initialize(&parser)) {
        diag_add(diags, name, 0, 0, "", "out of memory");
        goto fail;
    }
    parser_ok = true;
    yaml_parser_set_input_string(&parser, s, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    b.name = name;
    b.lim = &lim;
    b.diags = diags;
    b.file = f;
    for (;;) {
        yaml_event_t ev;
        int rc;

        if (!yaml_parser_parse(&parser, &ev)) {
            const char *problem = parser.problem ? parser.problem : "syntax error";

            diag_add(diags, name, (int)parser.problem_mark.line + 1,
                     (int)parser.problem_mark.column + 1, "", "yaml: %s%s%s", problem,
                     parser.context ? " " : "", parser.context ? parser.context : "");
            goto fail;
        }
        rc = handle_event(&b, &ev);
        yaml_event_delete(&ev);
        if (rc < 0 || b.failed)
            goto fail;
        if (rc == 1)
            break;
    }
    goto out;
fail:
    yaml_file_free(f);
    f = NULL;
out:
    while (b.depth > 0)
        free(b.stack[--b.depth].anchor);
    free(b.stack);
    clear_anchors(&b);
    free(b.anchors);
    if (parser_ok)
        yaml_parser_delete(&parser);
    return f;
}

struct yfile *yaml_load_file(const char *path, const struct yaml_limits *limits,
                             struct diag_list *diags)
{
    size_t max = limits && limits->max_bytes ? limits->max_bytes : YAML_MAX_BYTES;
    struct yfile *f = NULL;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        diag_add(diags, path, 0, 0, "", "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        diag_add(diags, path, 0, 0, "", "not a regular file");
        goto out;
    }
    if ((uintmax_t)st.st_size > max) {
        diag_add(diags, path, 0, 0, "", "file is larger than %zu bytes", max);
        goto out;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        diag_add(diags, path, 0, 0, "", "out of memory");
        goto out;
    }
    /* Read up to max+1 bytes: the file may have grown since fstat. */
    while (len <= max) {
        ssize_t r = read(fd, buf + len, max + 1 - len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            diag_add(diags, path, 0, 0, "", "read failed: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > max) {
        diag_add(diags, path, 0, 0, "", "file is larger than %zu bytes", max);
        goto out;
    }
    f = yaml_load_buffer(path, buf, len, limits, diags);
out:
    free(buf);
    close(fd);
    return f;
}

void yaml_file_free(struct yfile *f)
{
    size_t i;

    if (f == NULL)
        return;
    for (i = 0; i < f->narena; i++) {
        free(f->arena[i]->value);
        free(f->arena[i]->items);
        free(f->arena[i]->keys);
        free(f->arena[i]);
    }
    free(f->arena);
    free(f->docs);
    free(f);
}

struct ynode *ynode_get(const struct ynode *m, const char *key, struct ynode **key_out)
{
    size_t i;

    if (m == NULL || m->kind != YNODE_MAPPING)
        return NULL;
    for (i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i]->value, key) == 0) {
            if (key_out != NULL)
                *key_out = m->keys[i];
            return m->items[i];
        }
    }
    return NULL;
}

const char *ynode_type_name(const struct ynode *n)
{
    if (n->kind == YNODE_MAPPING)
        return "object";
    if (n->kind == YNODE_SEQUENCE)
        return "array";
    switch (n->type) {
    case YSCALAR_NULL:
        return "null";
    case YSCALAR_BOOL:
        return "boolean";
    case YSCALAR_INT:
        return "integer";
    case YSCALAR_FLOAT:
        return "number";
    case YSCALAR_STRING:
        break;
    }
    return "string";
}
