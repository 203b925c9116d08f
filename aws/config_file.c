/* Parser for the AWS shared config and credentials files (see
 * config_file.h). Any thread; parsed documents are read-only. */
#include "aws/config_file.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One property; `sub` is set for a sub-property of `key`. */
struct config_entry {
    char *key;
    char *sub;
    char *value;
};

struct aws_config_section {
    char *type; /* "profile" for profiles; "" for a bare "[x]" in a config file */
    char *name;
    bool bare_default; /* "[default]" in a config file */
    struct config_entry *entries;
    size_t n_entries, cap_entries;
};

struct aws_config_file {
    enum aws_config_kind kind;
    struct aws_config_section *sections;
    size_t n_sections, cap_sections;
};

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void aws_config_file_free(struct aws_config_file *file)
{
    if (file == NULL)
        return;
    for (size_t i = 0; i < file->n_sections; i++) {
        struct aws_config_section *s = &file->sections[i];

        for (size_t k = 0; k < s->n_entries; k++) {
            wipe_free(s->entries[k].key);
            wipe_free(s->entries[k].sub);
            wipe_free(s->entries[k].value);
        }
        free(s->entries);
        free(s->type);
        free(s->name);
    }
    free(file->sections);
    free(file);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trims [*start, *end) in place. */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_blank(**start))
        (*start)++;
    while (*end > *start && is_blank(*(*end - 1)))
        (*end)--;
}

static char *dup_range(const char *s, const char *e)
{
    size_t n = (size_t)(e - s);
    char *d = malloc(n + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Finds or adds the section (type, name). Returns its index or -1. */
static long section_index(struct aws_config_file *file, const char *type, const char *ts,
                          const char *te, bool bare_default)
{
    struct aws_config_section *s;
    size_t len = (size_t)(te - ts);

    for (size_t i = 0; i < file->n_sections; i++) {
        s = &file->sections[i];
        if (strcmp(s->type, type) == 0 && strlen(s->name) == len && memcmp(s->name, ts, len) == 0 &&
            s->bare_default == bare_default)
            return (long)i;
    }
    if (file->n_sections == file->cap_sections) {
        size_t cap = file->cap_sections ? file->cap_sections * 2 : 8;
        struct aws_config_section *grown = realloc(file->sections, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        file->sections = grown;
        file->cap_sections = cap;
    }
    s = &file->sections[file->n_sections];
    memset(s, 0, sizeof(*s));
    s->type = strdup(type);
    s->name = dup_range(ts, te);
    s->bare_default = bare_default;
    if (s->type == NULL || s->name == NULL) {
        free(s->type);
        free(s->name);
        return -1;
    }
    return (long)file->n_sections++;
}

/* Handles a "[...]" header (contents trimmed in [s, e)). Returns the section
 * index, -2 for a header to ignore, -1 when out of memory. */
static long start_section(struct aws_config_file *file, const char *s, const char *e)
{
    const char *p;

    if (s == e)
        return -2;
    if (file->kind == AWS_CONFIG_KIND_CREDENTIALS)
        return section_index(file, "profile", s, e, false);
    if ((size_t)(e - s) == 7 && memcmp(s, "default", 7) == 0)
        return section_index(file, "profile", s, e, true);
    for (p = s; p < e && !is_blank(*p); p++)
        ;
    if (p == e) /* a bare "[x]": not a profile in a config file */
        return section_index(file, "", s, e, false);
    {
        char type[64];
        const char *ns = p;
        size_t tlen = (size_t)(p - s);

        while (ns < e && is_blank(*ns))
            ns++;
        if (tlen >= sizeof(type) || ns == e)
            return -2;
        memcpy(type, s, tlen);
        type[tlen] = '\0';
        return section_index(file, type, ns, e, false);
    }
}

static int add_entry(struct aws_config_section *s, const char *ks, const char *ke, const char *ss,
                     const char *se, const char *vs, const char *ve)
{
    struct config_entry *ent;

    if (s->n_entries == s->cap_entries) {
        size_t cap = s->cap_entries ? s->cap_entries * 2 : 8;
        struct config_entry *grown = realloc(s->entries, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        s->entries = grown;
        s->cap_entries = cap;
    }
    ent = &s->entries[s->n_entries];
    ent->key = dup_range(ks, ke);
    ent->sub = ss != NULL ? dup_range(ss, se) : NULL;
    ent->value = dup_range(vs, ve);
    if (ent->key == NULL || ent->value == NULL || (ss != NULL && ent->sub == NULL)) {
        wipe_free(ent->key);
        wipe_free(ent->sub);
        wipe_free(ent->value);
        return -1;
    }
    s->n_entries++;
    return 0;
}

/* Appends "\n" + [s, e) to the entry's value. */
static int continue_value(struct config_entry *ent, const char *s, const char *e)
{
    size_t old = strlen(ent->value), add = (size_t)(e - s);
    char *v = malloc(old + 1 + add + 1);

    if (v == NULL)
        return -1;
    memcpy(v, ent->value, old);
    v[old] = '\n';
    memcpy(v + old + 1, s, add);
    v[old + 1 + add] = '\0';
    wipe_free(ent->value);
    ent->value = v;
    return 0;
}

struct aws_config_file *aws_config_file_parse(const char *text, size_t len,
                                              enum aws_config_kind kind)
{
    struct aws_config_file *file = calloc(1, sizeof(*file));
    const char *p = text, *end = text + len;
    long cur = -1;    /* current section, -1 none, -2 ignored */
    long parent = -1; /* entry index of the last top-level property */
    bool parent_empty = false;

    if (file == NULL)
        return NULL;
    file->kind = kind;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = eol != NULL ? eol : end;
        bool indented = ls < le && is_blank(*ls);
        const char *eq;

        p = eol != NULL ? eol + 1 : end;
        trim(&ls, &le);
        if (ls == le || *ls == '#' || *ls == ';')
            continue;
        if (*ls == '[') {
            const char *close = memchr(ls, ']', (size_t)(le - ls));
            const char *ns = ls + 1, *ne;

            parent = -1;
            if (close == NULL) {
                cur = -2; /* malformed header: ignore its properties */
                continue;
            }
            ne = close;
            trim(&ns, &ne);
            cur = start_section(file, ns, ne);
            if (cur == -1)
                goto fail;
            continue;
        }
        if (cur < 0)
            continue;
        if (indented && parent >= 0) {
            struct aws_config_section *s = &file->sections[cur];

            if (parent_empty) {
                const char *ks = ls, *ke, *vs, *ve = le;

                eq = memchr(ls, '=', (size_t)(le - ls));
                if (eq == NULL)
                    continue;
                ke = eq;
                vs = eq + 1;
                trim(&ks, &ke);
                trim(&vs, &ve);
                if (ks == ke)
                    continue;
                if (add_entry(s, s->entries[parent].key,
                              s->entries[parent].key + strlen(s->entries[parent].key), ks, ke, vs,
                              ve) != 0)
                    goto fail;
            } else if (continue_value(&s->entries[parent], ls, le) != 0) {
                goto fail;
            }
            continue;
        }
        eq = memchr(ls, '=', (size_t)(le - ls));
        if (eq == NULL) {
            parent = -1;
            continue;
        }
        {
            struct aws_config_section *s = &file->sections[cur];
            const char *ks = ls, *ke = eq, *vs = eq + 1, *ve = le;

            trim(&ks, &ke);
            trim(&vs, &ve);
            if (ks == ke) {
                parent = -1;
                continue;
            }
            if (add_entry(s, ks, ke, NULL, NULL, vs, ve) != 0)
                goto fail;
            parent = (long)s->n_entries - 1;
            parent_empty = vs == ve;
        }
    }
    return file;
fail:
    aws_config_file_free(file);
    return NULL;
}

int aws_config_file_load(const char *path, enum aws_config_kind kind, struct aws_config_file **out)
{
    FILE *f = NULL;
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int rc = -1;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            *out = aws_config_file_parse("", 0, kind);
            return *out != NULL ? 0 : -1;
        }
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size > AWS_CONFIG_FILE_MAX)
        goto out;
    buf = malloc(AWS_CONFIG_FILE_MAX + 1);
    if (buf == NULL)
        goto out;
    n = fread(buf, 1, AWS_CONFIG_FILE_MAX + 1, f);
    if (ferror(f) || n > AWS_CONFIG_FILE_MAX)
        goto out;
    *out = aws_config_file_parse(buf, n, kind);
    rc = *out != NULL ? 0 : -1;
out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, n);
        free(buf);
    }
    fclose(f);
    return rc;
}

static const struct aws_config_section *find_section(const struct aws_config_file *file,
                                                     const char *type, const char *name,
                                                     bool bare_default)
{
    for (size_t i = 0; i < file->n_sections; i++) {
        const struct aws_config_section *s = &file->sections[i];

        if (s->bare_default == bare_default && strcmp(s->type, type) == 0 &&
            strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

const struct aws_config_section *aws_config_file_profile(const struct aws_config_file *file,
                                                         const char *profile)
{
    const struct aws_config_section *s;

    if (file == NULL || profile == NULL)
        return NULL;
    s = find_section(file, "profile", profile, false);
    if (s == NULL && file->kind == AWS_CONFIG_KIND_CONFIG && strcmp(profile, "default") == 0)
        s = find_section(file, "profile", profile, true);
    return s;
}

const struct aws_config_section *aws_config_file_section(const struct aws_config_file *file,
                                                         const char *type, const char *name)
{
    if (file == NULL || type == NULL || name == NULL || strcmp(type, "profile") == 0)
        return NULL;
    return find_section(file, type, name, false);
}

const char *aws_config_section_get(const struct aws_config_section *section, const char *key)
{
    if (section == NULL || key == NULL)
        return NULL;
    for (size_t i = section->n_entries; i > 0; i--) {
        const struct config_entry *e = &section->entries[i - 1];

        if (e->sub == NULL && strcmp(e->key, key) == 0)
            return e->value;
    }
    return NULL;
}

const char *aws_config_section_get_sub(const struct aws_config_section *section, const char *key,
                                       const char *sub)
{
    if (section == NULL || key == NULL || sub == NULL)
        return NULL;
    for (size_t i = section->n_entries; i > 0; i--) {
        const struct config_entry *e = &section->entries[i - 1];

        if (e->sub != NULL && strcmp(e->key, key) == 0 && strcmp(e->sub, sub) == 0)
            return e->value;
    }
    return NULL;
}

int aws_config_file_path(const struct aws_env *env, enum aws_config_kind kind, char *out,
                         size_t out_len)
{
    const char *set = aws_env_get(
        env, kind == AWS_CONFIG_KIND_CONFIG ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE");
    const char *home = aws_env_get(env, "HOME");
    int n;

    if (set != NULL && !(set[0] == '~' && (set[1] == '/' || set[1] == '\0')))
        n = snprintf(out, out_len, "%s", set);
    else if (home == NULL)
        return -1;
    else if (set != NULL)
        n = snprintf(out, out_len, "%s%s", home, set + 1);
    else
        n = snprintf(out, out_len, "%s/.aws/%s", home,
                     kind == AWS_CONFIG_KIND_CONFIG ? "config" : "credentials");
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

const char *aws_config_profile_name(const struct aws_env *env)
{
    const char *p = aws_env_get(env, "AWS_PROFILE");

    if (p == NULL)
        p = aws_env_get(env, "AWS_DEFAULT_PROFILE");
    return p != NULL ? p : "default";
}

int aws_config_profile_explicit(const struct aws_env *env)
{
    return aws_env_get(env, "AWS_PROFILE") != NULL ||
           aws_env_get(env, "AWS_DEFAULT_PROFILE") != NULL;
}
