/* Loads manifest files into validated, defaulted objects: schema validation
 * from the embedded CRDs, then the cross-field rules a structural schema
 * cannot express (documented in the CRD descriptions). Schemas are compiled
 * once under a lock; everything else works on per-call state. */
#include "controller/manifest.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reconcilers/duration.h"

struct kind_info {
    enum manifest_kind kind;
    const char *name;
    struct schema *root;        /* openAPIV3Schema */
    const struct schema *spec;  /* root.properties.spec */
    const struct schema *mname; /* root.properties.metadata.properties.name */
};

static struct kind_info kinds[] = {
    {MANIFEST_KIND_APPLICATION, "Application", NULL, NULL, NULL},
    {MANIFEST_KIND_TRAINING_ENVIRONMENT, "TrainingEnvironment", NULL, NULL, NULL},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_state; /* 0: not yet, 1: ok, -1: failed */
static struct diag_list init_errors;

const char *manifest_kind_name(enum manifest_kind kind)
{
    size_t i;

    for (i = 0; i < NKINDS; i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "Unknown";
}

/* ------------------------------------------------------------------ */
/* CRDs                                                                 */

static const char *str0(const char *s)
{
    return s != NULL ? s : "";
}

static int load_crd(const struct embedded_file *ef, struct diag_list *diags)
{
    struct yfile *y = yaml_load_buffer(ef->name, (const char *)ef->data, ef->len, NULL, diags);
    json_t *crd = NULL, *versions, *v, *openapi = NULL;
    const char *kind;
    struct kind_info *ki = NULL;
    size_t i;
    int rc = -1;

    if (y == NULL)
        return -1;
    if (y->ndocs != 1 || y->docs[0].root == NULL) {
        diag_add(diags, ef->name, 0, 0, "", "expected exactly one document");
        goto out;
    }
    crd = ynode_to_json(y->docs[0].root);
    if (crd == NULL)
        goto out;
    if (strcmp(str0(json_string_value(json_object_get(crd, "apiVersion"))),
               "apiextensions.k8s.io/v1") != 0 ||
        strcmp(str0(json_string_value(json_object_get(crd, "kind"))), "CustomResourceDefinition") !=
            0 ||
        strcmp(str0(json_string_value(manifest_get(crd, "spec.group"))), "aviary.io") != 0) {
        diag_add(diags, ef->name, 0, 0, "",
                 "not an apiextensions.k8s.io/v1 CustomResourceDefinition of group aviary.io");
        goto out;
    }
    kind = json_string_value(manifest_get(crd, "spec.names.kind"));
    for (i = 0; kind != NULL && i < NKINDS; i++)
        if (!strcmp(kinds[i].name, kind))
            ki = &kinds[i];
    if (ki == NULL) {
        diag_add(diags, ef->name, 0, 0, "spec.names.kind", "unknown kind %s", kind ? kind : "");
        goto out;
    }
    versions = manifest_get(crd, "spec.versions");
    for (i = 0; i < json_array_size(versions); i++) {
        v = json_array_get(versions, i);
        if (!strcmp(str0(json_string_value(json_object_get(v, "name"))), "v1alpha1"))
            openapi = manifest_get(v, "schema.openAPIV3Schema");
    }
    if (openapi == NULL) {
        diag_add(diags, ef->name, 0, 0, "spec.versions",
                 "no v1alpha1 version with schema.openAPIV3Schema");
        goto out;
    }
    ki->root = schema_compile(openapi, ef->name, diags);
    if (ki->root == NULL)
        goto out;
    ki->spec = schema_property(ki->root, "spec");
    ki->mname = schema_lookup(ki->root, "metadata.name");
    if (ki->spec == NULL || ki->spec->type != SCHEMA_OBJECT || ki->mname == NULL) {
        diag_add(diags, ef->name, 0, 0, "", "schema lacks spec or metadata.name");
        goto out;
    }
    rc = 0;
out:
    json_decref(crd);
    yaml_file_free(y);
    return rc;
}

int manifest_init(struct diag_list *diags)
{
    size_t i;
    int rc;

    pthread_mutex_lock(&init_lock);
    if (init_state == 0) {
        init_state = 1;
        for (i = 0; i < aviary_embedded_crds_count; i++)
            if (load_crd(&aviary_embedded_crds[i], &init_errors) < 0)
                init_state = -1;
        for (i = 0; i < NKINDS; i++) {
            if (kinds[i].root == NULL && init_state == 1) {
                diag_add(&init_errors, "crds", 0, 0, "", "no CRD for kind %s", kinds[i].name);
                init_state = -1;
            }
        }
    }
    rc = init_state == 1 ? 0 : -1;
    if (rc < 0 && diags != NULL) {
        for (i = 0; i < init_errors.n; i++) {
            struct diag *d = &init_errors.items[i];

            diag_add(diags, d->file, d->line, d->column, d->path, "%s", d->message);
        }
    }
    pthread_mutex_unlock(&init_lock);
    return rc;
}

const struct schema *manifest_schema(enum manifest_kind kind)
{
    size_t i;

    if (manifest_init(NULL) < 0)
        return NULL;
    for (i = 0; i < NKINDS; i++)
        if (kinds[i].kind == kind)
            return kinds[i].root;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* paths                                                                */

/* Walks "a.b[2].c" through a JSON value or (with nodes) a YAML tree. */
json_t *manifest_get(const json_t *spec, const char *path)
{
    const json_t *cur = spec;
    char seg[128];

    while (cur != NULL && *path) {
        size_t n = strcspn(path, ".[");

        if (n > 0) {
            if (n >= sizeof(seg))
                return NULL;
            memcpy(seg, path, n);
            seg[n] = '\0';
            cur = json_object_get(cur, seg);
            path += n;
        }
        if (*path == '[') {
            char *end;
            unsigned long idx = strtoul(path + 1, &end, 10);

            if (*end != ']')
                return NULL;
            cur = json_array_get(cur, idx);
            path = end + 1;
        }
        if (*path == '.')
            path++;
    }
    return (json_t *)cur;
}

int64_t manifest_get_duration_ms(const json_t *spec, const char *path, int64_t fallback_ms)
{
    const char *s = json_string_value(manifest_get(spec, path));
    int64_t ms;

    if (s == NULL || duration_parse(s, &ms, NULL) < 0)
        return fallback_ms;
    return ms;
}

/* The node at path; with exact=false the deepest node on the way (for error
 * positions of defaulted fields). */
static const struct ynode *node_at(const struct ynode *root, const char *path, bool exact)
{
    const struct ynode *cur = root, *last = root;
    char seg[128];

    while (cur != NULL && *path) {
        size_t n = strcspn(path, ".[");

        last = cur;
        if (n > 0) {
            if (n >= sizeof(seg))
                return exact ? NULL : last;
            memcpy(seg, path, n);
            seg[n] = '\0';
            cur = ynode_get(cur, seg, NULL);
            path += n;
        }
        if (cur != NULL && *path == '[') {
            char *end;
            unsigned long idx = strtoul(path + 1, &end, 10);

            cur = cur->kind == YNODE_SEQUENCE && idx < cur->n ? cur->items[idx] : NULL;
            path = *end == ']' ? end + 1 : end;
        }
        if (*path == '.')
            path++;
    }
    if (cur != NULL && cur->kind == YNODE_SCALAR && cur->type == YSCALAR_NULL && exact)
        return NULL;
    return cur != NULL ? cur : (exact ? NULL : last);
}

/* ------------------------------------------------------------------ */
/* per-object checks                                                    */

struct ctx {
    const char *file;
    const char *basedir;
    const struct ynode *root; /* the document */
    struct diag_list *diags;  /* this object's errors */
};

static void rule_error(struct ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error about the field at path (positioned at it, or at its nearest
 * written ancestor when the value came from a default). */
static void rule_error(struct ctx *c, const char *path, const char *fmt, ...)
{
    const struct ynode *n = node_at(c->root, path, false);
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag_add(c->diags, c->file, n ? n->line : 0, n ? n->column : 0, path, "%s", msg);
}

static bool written(struct ctx *c, const char *path)
{
    return node_at(c->root, path, true) != NULL;
}

static const char *closest_of(const char *word, const char *const *cands)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, i, wl = strlen(word);

    for (i = 0; cands[i] != NULL; i++) {
        size_t d = schema_edit_distance(word, cands[i]), cl = strlen(cands[i]);

        if (d <= 2 && d * 3 <= (wl > cl ? wl : cl) && d < best_d) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}

static bool dns_label(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
    }
    return s[n - 1] != '-';
}

static bool env_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* A map of strings in metadata (labels, annotations). */
static json_t *string_map(struct ctx *c, const struct ynode *n, const char *path)
{
    json_t *out = json_object();
    size_t i;

    if (n == NULL || (n->kind == YNODE_SCALAR && n->type == YSCALAR_NULL))
        return out;
    if (n->kind != YNODE_MAPPING) {
        rule_error(c, path, "expected object, got %s", ynode_type_name(n));
        return out;
    }
    for (i = 0; i < n->n; i++) {
        char p[256];

        snprintf(p, sizeof(p), "%s.%s", path, n->keys[i]->value);
        if (n->items[i]->kind != YNODE_SCALAR || n->items[i]->type != YSCALAR_STRING) {
            diag_add(c->diags, c->file, n->items[i]->line, n->items[i]->column, p,
                     "expected string, got %s", ynode_type_name(n->items[i]));
            continue;
        }
        json_object_set_new(out, n->keys[i]->value, json_string(n->items[i]->value));
    }
    return out;
}

static void check_metadata(struct ctx *c, const struct kind_info *ki, const struct ynode *m,
                           struct manifest_object *obj)
{
    static const char *const fields[] = {"name", "namespace", "labels", "annotations", NULL};
    const struct ynode *name;
    size_t i;

    obj->labels = json_object();
    obj->annotations = json_object();
    if (m == NULL || (m->kind == YNODE_SCALAR && m->type == YSCALAR_NULL)) {
        diag_add(c->diags, c->file, c->root->line, c->root->column, "metadata.name",
                 "required field is missing");
        return;
    }
    if (m->kind != YNODE_MAPPING) {
        diag_add(c->diags, c->file, m->line, m->column, "metadata", "expected object, got %s",
                 ynode_type_name(m));
        return;
    }
    for (i = 0; i < m->n; i++) {
        const char *k = m->keys[i]->value, *hint;
        char p[256];
        size_t j;
        bool known = false;

        for (j = 0; fields[j]; j++)
            known = known || !strcmp(fields[j], k);
        if (known)
            continue;
        snprintf(p, sizeof(p), "metadata.%s", k);
        hint = closest_of(k, fields);
        if (hint != NULL)
            diag_add(c->diags, c->file, m->keys[i]->line, m->keys[i]->column, p,
                     "unknown field \"%s\" (did you mean \"%s\"?)", k, hint);
        else
            diag_add(c->diags, c->file, m->keys[i]->line, m->keys[i]->column, p,
                     "unknown field \"%s\"", k);
    }
    json_decref(obj->labels);
    json_decref(obj->annotations);
    obj->labels = string_map(c, ynode_get(m, "labels", NULL), "metadata.labels");
    obj->annotations = string_map(c, ynode_get(m, "annotations", NULL), "metadata.annotations");
    {
        const struct ynode *ns = ynode_get(m, "namespace", NULL);

        if (ns != NULL && (ns->kind != YNODE_SCALAR || ns->type != YSCALAR_STRING ||
                           !dns_label(ns->value) || ns->len > 63))
            diag_add(c->diags, c->file, ns->line, ns->column, "metadata.namespace",
                     "must be a DNS label of at most 63 characters");
    }
    name = ynode_get(m, "name", NULL);
    if (name == NULL || (name->kind == YNODE_SCALAR && name->type == YSCALAR_NULL)) {
        diag_add(c->diags, c->file, m->line, m->column, "metadata.name",
                 "required field is missing");
        return;
    }
    if (name->kind != YNODE_SCALAR || name->type != YSCALAR_STRING) {
        diag_add(c->diags, c->file, name->line, name->column, "metadata.name",
                 "expected string, got %s", ynode_type_name(name));
        return;
    }
    if (!dns_label(name->value)) {
        diag_add(c->diags, c->file, name->line, name->column, "metadata.name",
                 "\"%.80s\" is not a DNS label: use lowercase letters, digits and '-', starting "
                 "with a letter and ending with a letter or digit",
                 name->value);
        return;
    }
    if (ki != NULL && ki->mname->max_length >= 0 && (long long)name->len > ki->mname->max_length) {
        diag_add(c->diags, c->file, name->line, name->column, "metadata.name",
                 "must be at most %lld characters long, got %zu (AWS resource names are "
                 "derived from it)",
                 ki->mname->max_length, name->len);
        return;
    }
    if (ki != NULL && ki->mname->min_length >= 0 && (long long)name->len < ki->mname->min_length) {
        diag_add(c->diags, c->file, name->line, name->column, "metadata.name",
                 "must be at least %lld characters long, got %zu (AWS resource names are "
                 "derived from it)",
                 ki->mname->min_length, name->len);
        return;
    }
    if (name->len <= MANIFEST_NAME_MAX)
        snprintf(obj->name, sizeof(obj->name), "%s", name->value);
}

/* Parses "a.b.c.d/p"; returns 0 and the address and prefix, or -1. */
static int parse_cidr(const char *s, uint32_t *addr, int *prefix)
{
    unsigned long part;
    uint32_t a = 0;
    int i;
    char *end;

    for (i = 0; i < 4; i++) {
        if (*s < '0' || *s > '9')
            return -1;
        part = strtoul(s, &end, 10);
        if (part > 255 || end - s > 3)
            return -1;
        a = (a << 8) | (uint32_t)part;
        s = end;
        if (*s != (i < 3 ? '.' : '/'))
            return -1;
        s++;
    }
    if (*s < '0' || *s > '9')
        return -1;
    part = strtoul(s, &end, 10);
    if (*end != '\0' || part > 32)
        return -1;
    *addr = a;
    *prefix = (int)part;
    return 0;
}

static void check_cidr(struct ctx *c, const json_t *net, const char *path)
{
    const char *cidr = json_string_value(json_object_get(net, "cidr"));
    uint32_t addr, mask;
    int prefix;

    if (cidr == NULL)
        return;
    if (parse_cidr(cidr, &addr, &prefix) < 0) {
        rule_error(c, path, "\"%s\" is not an IPv4 CIDR block (a.b.c.d/n)", cidr);
        return;
    }
    if (prefix < 16 || prefix > 24) {
        rule_error(c, path,
                   "prefix length /%d is outside /16../24 (AWS allows /16 to /28; aviary "
                   "carves subnets from it)",
                   prefix);
        return;
    }
    mask = prefix == 0 ? 0 : 0xFFFFFFFFu << (32 - prefix);
    if ((addr & ~mask) != 0) {
        uint32_t net_addr = addr & mask;

        rule_error(c, path, "\"%s\" has host bits set (did you mean \"%u.%u.%u.%u/%d\"?)", cidr,
                   net_addr >> 24, (net_addr >> 16) & 255, (net_addr >> 8) & 255, net_addr & 255,
                   prefix);
    }
}

/* Exactly one of cidr / vpcId; the others depend on which. */
static void check_network(struct ctx *c, const json_t *spec, bool training)
{
    const json_t *net = json_object_get(spec, "network");
    bool has_cidr = json_object_get(net, "cidr") != NULL;
    bool has_vpc = json_object_get(net, "vpcId") != NULL;

    if (net == NULL)
        return;
    if (has_cidr && has_vpc) {
        rule_error(c, "spec.network.vpcId",
                   "cidr and vpcId are exclusive: cidr creates a VPC, vpcId uses an existing one");
        return;
    }
    if (!has_cidr && !has_vpc) {
        rule_error(c, "spec.network", "needs either cidr (create a VPC) or vpcId (use one)");
        return;
    }
    check_cidr(c, net, "spec.network.cidr");
    if (training) {
        if (has_vpc && json_object_get(net, "subnetId") == NULL)
            rule_error(c, "spec.network.subnetId", "required with vpcId");
        if (has_cidr && json_object_get(net, "subnetId") != NULL)
            rule_error(c, "spec.network.subnetId", "only allowed with vpcId");
        return;
    }
    if (has_vpc) {
        if (json_object_get(net, "publicSubnets") == NULL)
            rule_error(c, "spec.network.publicSubnets",
                       "required with vpcId (the load balancer needs two subnets)");
        if (written(c, "spec.network.natGateway"))
            rule_error(c, "spec.network.natGateway",
                       "only allowed with cidr: an existing VPC's routing is never changed");
    } else {
        if (json_object_get(net, "publicSubnets") != NULL)
            rule_error(c, "spec.network.publicSubnets", "only allowed with vpcId");
        if (json_object_get(net, "privateSubnets") != NULL)
            rule_error(c, "spec.network.privateSubnets", "only allowed with vpcId");
    }
    /* the same subnet twice */
    {
        const char *lists[] = {"publicSubnets", "privateSubnets"};
        size_t l, i, j;

        for (l = 0; l < 2; l++) {
            json_t *arr = json_object_get(net, lists[l]);

            for (i = 0; i < json_array_size(arr); i++)
                for (j = 0; j < i; j++)
                    if (json_equal(json_array_get(arr, i), json_array_get(arr, j))) {
                        char p[96];

                        snprintf(p, sizeof(p), "spec.network.%s[%zu]", lists[l], i);
                        rule_error(c, p, "duplicate subnet (also at index %zu)", j);
                    }
        }
    }
}

/* Fargate's valid cpu/memory pairs. */
static bool fargate_memory_ok(long long cpu, long long mem, char *hint, size_t len)
{
    long long lo, hi, step;

    switch (cpu) {
    case 256:
        snprintf(hint, len, "512, 1024 or 2048");
        return mem == 512 || mem == 1024 || mem == 2048;
    case 512:
        lo = 1024, hi = 4096, step = 1024;
        break;
    case 1024:
        lo = 2048, hi = 8192, step = 1024;
        break;
    case 2048:
        lo = 4096, hi = 16384, step = 1024;
        break;
    case 4096:
        lo = 8192, hi = 30720, step = 1024;
        break;
    case 8192:
        lo = 16384, hi = 61440, step = 4096;
        break;
    case 16384:
        lo = 32768, hi = 122880, step = 8192;
        break;
    default:
        snprintf(hint, len, "a supported cpu value");
        return false;
    }
    snprintf(hint, len, "%lld to %lld in steps of %lld", lo, hi, step);
    return mem >= lo && mem <= hi && mem % step == 0;
}

/* A duration field within [min_ms, max_ms], optionally whole seconds.
 * Returns true when the field is absent or fine. */
static bool check_duration(struct ctx *c, const json_t *spec, const char *field, int64_t min_ms,
                           int64_t max_ms, bool whole_seconds)
{
    char p[160], a[32], b[32];
    int64_t ms;

    if (json_string_value(manifest_get(spec, field)) == NULL)
        return true;
    ms = manifest_get_duration_ms(spec, field, -1);
    if (ms < 0)
        return false; /* reported by the schema */
    snprintf(p, sizeof(p), "spec.%s", field);
    if (ms < min_ms) {
        if (min_ms == 1)
            rule_error(c, p, "must be more than 0");
        else
            rule_error(c, p, "must be at least %s, got %s", duration_format(min_ms, a, sizeof(a)),
                       duration_format(ms, b, sizeof(b)));
        return false;
    }
    if (ms > max_ms) {
        rule_error(c, p, "must be at most %s, got %s", duration_format(max_ms, a, sizeof(a)),
                   duration_format(ms, b, sizeof(b)));
        return false;
    }
    if (whole_seconds && ms % 1000 != 0) {
        rule_error(c, p, "must be a whole number of seconds");
        return false;
    }
    return true;
}

static void check_env_names(struct ctx *c, const json_t *spec)
{
    const char *maps[] = {"env", "secrets"};
    const char *k;
    json_t *v;
    size_t m;

    for (m = 0; m < 2; m++) {
        json_object_foreach(json_object_get(spec, maps[m]), k, v)
        {
            char p[256];

            snprintf(p, sizeof(p), "spec.%s.%s", maps[m], k);
            if (!env_name(k))
                rule_error(c, p,
                           "\"%s\" is not a valid environment variable name "
                           "([A-Za-z_][A-Za-z0-9_]*)",
                           k);
            else if (!strncmp(k, "AVIARY_", 7))
                rule_error(c, p, "names starting with AVIARY_ are reserved for aviary");
            else if (m == 1 && json_object_get(json_object_get(spec, "env"), k) != NULL)
                rule_error(c, p, "\"%s\" is also set in env", k);
        }
    }
}

static void check_metrics(struct ctx *c, const json_t *spec)
{
    json_t *metrics = manifest_get(spec, "rollout.analysis.metrics");
    size_t i, j;

    for (i = 0; i < json_array_size(metrics); i++) {
        json_t *m = json_array_get(metrics, i);
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *name = json_string_value(json_object_get(m, "name"));
        json_t *max = json_object_get(m, "max"), *min = json_object_get(m, "min");
        bool compare = json_object_get(m, "compare") != NULL;
        bool inc = json_object_get(m, "maxIncrease") != NULL;
        char base[96], p[160];

        if (type == NULL || name == NULL)
            continue; /* reported by the schema */
        snprintf(base, sizeof(base), "spec.rollout.analysis.metrics[%zu]", i);
        for (j = 0; j < i; j++) {
            const char *other =
                json_string_value(json_object_get(json_array_get(metrics, j), "name"));

            if (other != NULL && !strcmp(other, name)) {
                snprintf(p, sizeof(p), "%s.name", base);
                rule_error(c, p, "duplicate metric name \"%s\" (also metrics[%zu])", name, j);
            }
        }
        if (compare && !inc) {
            snprintf(p, sizeof(p), "%s.maxIncrease", base);
            rule_error(c, p, "required with compare: stable");
        }
        if (inc && !compare) {
            snprintf(p, sizeof(p), "%s.maxIncrease", base);
            rule_error(c, p, "only allowed with compare: stable");
        }
        if (!compare && max == NULL && min == NULL) {
            rule_error(c, base, "needs a threshold: max, min, or compare: stable with maxIncrease");
        }
        if (max != NULL && min != NULL && json_number_value(min) > json_number_value(max)) {
            snprintf(p, sizeof(p), "%s.min", base);
            rule_error(c, p, "min (%g) is greater than max (%g)", json_number_value(min),
                       json_number_value(max));
        }
        if (!strcmp(type, "cloudwatch") && json_object_get(m, "query") == NULL) {
            snprintf(p, sizeof(p), "%s.query", base);
            rule_error(c, p, "required for type cloudwatch");
        }
        if (strcmp(type, "cloudwatch") != 0 && json_object_get(m, "query") != NULL) {
            snprintf(p, sizeof(p), "%s.query", base);
            rule_error(c, p, "only allowed with type cloudwatch");
        }
        snprintf(p, sizeof(p), "%s.stat", base);
        if (strcmp(type, "latency") != 0 && written(c, p))
            rule_error(c, p, "only allowed with type latency%s",
                       !strcmp(type, "cloudwatch") ? " (cloudwatch metrics set query.stat)" : "");
        {
            const char *bounds[] = {"max", "min", "maxIncrease"};
            double hi = !strcmp(type, "errorRate")                          ? 1
                        : (!strcmp(type, "cpu") || !strcmp(type, "memory")) ? 100
                                                                            : -1;
            size_t b;

            for (b = 0; hi > 0 && b < 3; b++) {
                json_t *x = json_object_get(m, bounds[b]);

                if (x == NULL)
                    continue;
                snprintf(p, sizeof(p), "%s.%s", base, bounds[b]);
                if (json_number_value(x) < 0 || json_number_value(x) > hi)
                    rule_error(c, p, "must be between 0 and %g for type %s%s, got %g", hi, type,
                               hi == 1 ? " (a fraction: 0.02 is 2%)" : " (percent)",
                               json_number_value(x));
            }
            if (!strcmp(type, "latency"))
                for (b = 0; b < 2; b++) {
                    json_t *x = json_object_get(m, bounds[b]);

                    snprintf(p, sizeof(p), "%s.%s", base, bounds[b]);
                    if (x != NULL && json_number_value(x) < 0)
                        rule_error(c, p, "must not be negative (seconds)");
                }
        }
    }
}

static void check_rollout(struct ctx *c, const json_t *spec)
{
    const char *strategy = json_string_value(manifest_get(spec, "rollout.strategy"));
    json_t *steps = manifest_get(spec, "rollout.canary.steps");
    size_t i, weights = 0;

    if (strategy == NULL)
        return;
    if (strcmp(strategy, "canary") != 0 && written(c, "spec.rollout.canary"))
        rule_error(c, "spec.rollout.canary", "only allowed with strategy canary (strategy is %s)",
                   strategy);
    if (strcmp(strategy, "blueGreen") != 0 && written(c, "spec.rollout.blueGreen"))
        rule_error(c, "spec.rollout.blueGreen",
                   "only allowed with strategy blueGreen (strategy is %s)", strategy);
    for (i = 0; i < json_array_size(steps); i++) {
        json_t *st = json_array_get(steps, i);
        bool w = json_object_get(st, "setWeight") != NULL;
        bool pz = json_object_get(st, "pause") != NULL;
        char p[96];

        snprintf(p, sizeof(p), "spec.rollout.canary.steps[%zu]", i);
        if (w == pz)
            rule_error(c, p, "a step has exactly one of setWeight or pause");
        if (w)
            weights++;
        if (pz) {
            char f[96];

            snprintf(f, sizeof(f), "rollout.canary.steps[%zu].pause.duration", i);
            check_duration(c, spec, f, 1, DURATION_MAX_MS, false);
        }
    }
    if (!strcmp(strategy, "canary") && json_array_size(steps) > 0 && weights == 0)
        rule_error(c, "spec.rollout.canary.steps", "needs at least one setWeight step");
    {
        json_int_t port = json_integer_value(manifest_get(spec, "rollout.blueGreen.testPort"));

        if (!strcmp(strategy, "blueGreen") && (port == 80 || port == 443))
            rule_error(c, "spec.rollout.blueGreen.testPort",
                       "must not be %lld: the production listeners use 80 and 443",
                       (long long)port);
    }
    check_duration(c, spec, "rollout.analysis.interval", 1000, DURATION_MAX_MS, false);
    check_duration(c, spec, "rollout.progressDeadline", 1, DURATION_MAX_MS, false);
    check_metrics(c, spec);
}

static void check_application(struct ctx *c, const json_t *spec)
{
    json_int_t cpu = json_integer_value(json_object_get(spec, "cpu"));
    json_int_t mem = json_integer_value(json_object_get(spec, "memory"));
    json_t *wh = manifest_get(spec, "notifications.webhooks");
    char hint[96];
    size_t i;

    if (json_object_get(spec, "cpu") && json_object_get(spec, "memory") &&
        !fargate_memory_ok(cpu, mem, hint, sizeof(hint)))
        rule_error(c, "spec.memory", "%lld MiB is not valid with cpu %lld; Fargate allows %s",
                   (long long)mem, (long long)cpu, hint);
    check_env_names(c, spec);
    if (check_duration(c, spec, "healthCheck.interval", 5000, 300000, true) &&
        check_duration(c, spec, "healthCheck.timeout", 2000, 120000, true) &&
        manifest_get_duration_ms(spec, "healthCheck.timeout", 0) >=
            manifest_get_duration_ms(spec, "healthCheck.interval", INT64_MAX))
        rule_error(c, "spec.healthCheck.timeout", "must be shorter than healthCheck.interval");
    check_duration(c, spec, "healthCheck.gracePeriod", 0, 7200000, true);
    check_network(c, spec, false);
    {
        json_t *min = manifest_get(spec, "scaling.min"), *max = manifest_get(spec, "scaling.max");

        if (min && max && json_integer_value(min) > json_integer_value(max))
            rule_error(c, written(c, "spec.scaling.min") ? "spec.scaling.min" : "spec.scaling.max",
                       "scaling.min (%lld) is greater than scaling.max (%lld)",
                       (long long)json_integer_value(min), (long long)json_integer_value(max));
    }
    check_duration(c, spec, "scaling.scaleOutCooldown", 0, 86400000, true);
    check_duration(c, spec, "scaling.scaleInCooldown", 0, 86400000, true);
    for (i = 0; i < json_array_size(wh); i++) {
        json_t *w = json_array_get(wh, i);
        const char *fmt = json_string_value(json_object_get(w, "format"));
        char p[96];

        snprintf(p, sizeof(p), "spec.notifications.webhooks[%zu].secretEnv", i);
        if (json_object_get(w, "secretEnv") && fmt && strcmp(fmt, "json") != 0)
            rule_error(c, p, "only allowed with format json (Slack webhooks are not signed)");
    }
    check_rollout(c, spec);
}

/* Data paths: relative, inside the manifest's directory, existing. */
static void check_data(struct ctx *c, const json_t *spec)
{
    json_t *data = json_object_get(spec, "data");
    char base_real[PATH_MAX];
    bool have_base = false;
    size_t i, j;

    if (c->basedir != NULL && realpath(c->basedir, base_real) != NULL)
        have_base = true;
    for (i = 0; i < json_array_size(data); i++) {
        const char *path = json_string_value(json_object_get(json_array_get(data, i), "path"));
        char p[96];

        if (path == NULL)
            continue;
        snprintf(p, sizeof(p), "spec.data[%zu].path", i);
        for (j = 0; j < i; j++) {
            const char *other = json_string_value(json_object_get(json_array_get(data, j), "path"));

            if (other != NULL && !strcmp(other, path))
                rule_error(c, p, "duplicate data path (also data[%zu])", j);
        }
        if (!strncmp(path, "s3://", 5)) {
            const char *bucket = path + 5, *slash = strchr(bucket, '/');
            size_t blen = slash ? (size_t)(slash - bucket) : 0, k;
            bool ok = slash != NULL && blen >= 3 && blen <= 63 && slash[1] != '\0';

            for (k = 0; ok && k < blen; k++)
                ok = (bucket[k] >= 'a' && bucket[k] <= 'z') ||
                     (bucket[k] >= '0' && bucket[k] <= '9') || bucket[k] == '-' || bucket[k] == '.';
            if (!ok)
                rule_error(c, p, "\"%s\" is not s3://bucket/key", path);
            continue;
        }
        if (path[0] == '/') {
            rule_error(c, p, "must be relative to the manifest's directory, not absolute");
            continue;
        }
        {
            const char *s = path;
            bool dotdot = false;

            while (*s) {
                size_t n = strcspn(s, "/");

                if (n == 2 && s[0] == '.' && s[1] == '.')
                    dotdot = true;
                s += n;
                if (*s == '/')
                    s++;
            }
            if (dotdot) {
                rule_error(c, p,
                           "must not contain \"..\": data stays inside the manifest's "
                           "directory");
                continue;
            }
        }
        if (c->basedir != NULL) {
            char full[PATH_MAX], real[PATH_MAX];
            struct stat st;
            size_t bl;

            if (snprintf(full, sizeof(full), "%s/%s", c->basedir, path) >= (int)sizeof(full)) {
                rule_error(c, p, "path is too long");
                continue;
            }
            if (stat(full, &st) < 0) {
                rule_error(c, p,
                           "file \"%s\" does not exist (paths are relative to the "
                           "manifest's directory)",
                           path);
                continue;
            }
            if (!S_ISREG(st.st_mode)) {
                rule_error(c, p, "\"%s\" is not a regular file", path);
                continue;
            }
            bl = strlen(base_real);
            if (have_base && realpath(full, real) != NULL &&
                (strncmp(real, base_real, bl) != 0 || (real[bl] != '/' && bl > 1)))
                rule_error(c, p, "\"%s\" resolves outside the manifest's directory (symlink)",
                           path);
        }
    }
}

static void check_training(struct ctx *c, const json_t *spec)
{
    check_data(c, spec);
    check_network(c, spec, true);
}

/* ------------------------------------------------------------------ */
/* documents                                                            */

static const struct kind_info *find_kind(const char *name)
{
    size_t i;

    for (i = 0; i < NKINDS; i++)
        if (!strcmp(kinds[i].name, name))
            return &kinds[i];
    return NULL;
}

static void load_object(struct manifest_file *mf, const struct ydoc *doc,
                        struct manifest_object *obj, struct diag_list *errs)
{
    static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const kind_names[] = {"Application", "TrainingEnvironment", NULL};
    struct ctx c = {mf->path, mf->basedir, doc->root, errs};
    const struct ynode *root = doc->root, *n;
    const struct kind_info *ki = NULL;
    size_t i;

    obj->file = mf->path;
    obj->line = root->line;
    obj->column = root->column;
    obj->generation = 1;
    if (root->kind != YNODE_MAPPING) {
        diag_add(errs, mf->path, root->line, root->column, "",
                 "a manifest document must be an object, got %s", ynode_type_name(root));
        return;
    }
    for (i = 0; i < root->n; i++) {
        const char *k = root->keys[i]->value, *hint;
        size_t j;
        bool known = false;

        for (j = 0; top[j]; j++)
            known = known || !strcmp(top[j], k);
        if (known)
            continue;
        if (!strcmp(k, "status")) {
            diag_add(errs, mf->path, root->keys[i]->line, root->keys[i]->column, "status",
                     "status is written by aviary and cannot be set in a manifest");
            continue;
        }
        hint = closest_of(k, top);
        if (hint != NULL)
            diag_add(errs, mf->path, root->keys[i]->line, root->keys[i]->column, k,
                     "unknown field \"%s\" (did you mean \"%s\"?)", k, hint);
        else
            diag_add(errs, mf->path, root->keys[i]->line, root->keys[i]->column, k,
                     "unknown field \"%s\"", k);
    }
    n = node_at(root, "apiVersion", true);
    if (n == NULL)
        diag_add(errs, mf->path, root->line, root->column, "apiVersion",
                 "required field is missing");
    else if (n->kind != YNODE_SCALAR || strcmp(n->value, MANIFEST_API_VERSION) != 0)
        diag_add(errs, mf->path, n->line, n->column, "apiVersion",
                 "unsupported apiVersion \"%.60s\"; must be %s", n->value ? n->value : "",
                 MANIFEST_API_VERSION);
    n = node_at(root, "kind", true);
    if (n == NULL) {
        diag_add(errs, mf->path, root->line, root->column, "kind", "required field is missing");
    } else if (n->kind != YNODE_SCALAR || (ki = find_kind(n->value)) == NULL) {
        const char *hint = n->kind == YNODE_SCALAR ? closest_of(n->value, kind_names) : NULL;

        if (hint == NULL && n->kind == YNODE_SCALAR) {
            for (i = 0; kind_names[i] != NULL; i++)
                if (!strcasecmp(kind_names[i], n->value))
                    hint = kind_names[i];
        }
        diag_add(errs, mf->path, n->line, n->column, "kind",
                 "unsupported kind \"%.60s\"%s%s%s; must be one of: Application, "
                 "TrainingEnvironment",
                 n->value ? n->value : "", hint ? " (did you mean \"" : "", hint ? hint : "",
                 hint ? "\"?)" : "");
    }
    if (ki != NULL)
        obj->kind = ki->kind;
    check_metadata(&c, ki, ynode_get(root, "metadata", NULL), obj);
    if (ki == NULL)
        return; /* no schema to check the spec against */
    n = node_at(root, "spec", true);
    if (n == NULL) {
        diag_add(errs, mf->path, root->line, root->column, "spec", "required field is missing");
        return;
    }
    {
        size_t before = diag_count(errs);

        obj->spec = schema_validate(ki->spec, n, mf->path, "spec", errs);
        /* Cross-field rules need a well-typed spec: skip them when the
         * schema already failed, so every message is about a real problem
         * and not a consequence of another. */
        if (obj->spec == NULL || diag_count(errs) > before)
            return;
    }
    if (ki->kind == MANIFEST_KIND_APPLICATION)
        check_application(&c, obj->spec);
    else
        check_training(&c, obj->spec);
}

static void finish_object(struct manifest_object *obj, size_t nerrors)
{
    obj->nerrors = nerrors;
    obj->valid = nerrors == 0 && obj->spec != NULL && obj->name[0] != '\0';
    if (!obj->valid)
        return;
    if (revision_spec_hash(obj->spec, obj->spec_hash) < 0)
        obj->valid = false;
    if (obj->kind == MANIFEST_KIND_APPLICATION && revision_compute(obj->spec, obj->revision) < 0)
        obj->valid = false;
}

static struct manifest_file *new_file(const char *name, const char *basedir)
{
    struct manifest_file *mf = calloc(1, sizeof(*mf));

    if (mf == NULL)
        return NULL;
    mf->path = strdup(name);
    mf->basedir = basedir ? strdup(basedir) : NULL;
    if (mf->path == NULL || (basedir && mf->basedir == NULL)) {
        manifest_file_free(mf);
        return NULL;
    }
    return mf;
}

static void load_docs(struct manifest_file *mf, struct yfile *y)
{
    size_t i, j, count = 0;

    if (manifest_init(&mf->errors) < 0)
        return;
    for (i = 0; i < y->ndocs; i++)
        if (y->docs[i].root != NULL &&
            !(y->docs[i].root->kind == YNODE_SCALAR && y->docs[i].root->type == YSCALAR_NULL))
            count++;
    mf->objects = calloc(count ? count : 1, sizeof(*mf->objects));
    if (mf->objects == NULL) {
        diag_add(&mf->errors, mf->path, 0, 0, "", "out of memory");
        return;
    }
    for (i = 0; i < y->ndocs; i++) {
        struct manifest_object *obj;
        struct diag_list errs = {0};

        if (y->docs[i].root == NULL ||
            (y->docs[i].root->kind == YNODE_SCALAR && y->docs[i].root->type == YSCALAR_NULL))
            continue; /* an empty document ("---" at the end) */
        obj = &mf->objects[mf->nobjects++];
        load_object(mf, &y->docs[i], obj, &errs);
        /* the same kind and name twice in one file */
        for (j = 0; obj->name[0] && j + 1 < mf->nobjects; j++) {
            struct manifest_object *o = &mf->objects[j];

            if (o->kind == obj->kind && !strcmp(o->name, obj->name)) {
                const struct ynode *nn = node_at(y->docs[i].root, "metadata.name", false);

                diag_add(&errs, mf->path, nn->line, nn->column, "metadata.name",
                         "%s \"%s\" is already defined at line %d", manifest_kind_name(obj->kind),
                         obj->name, o->line);
            }
        }
        finish_object(obj, diag_count(&errs));
        diag_move(&mf->errors, &errs);
    }
}

struct manifest_file *manifest_load_buffer(const char *name, const char *buf, size_t len,
                                           const char *basedir)
{
    struct manifest_file *mf = new_file(name, basedir);
    struct yfile *y;

    if (mf == NULL)
        return NULL;
    y = yaml_load_buffer(name, buf, len, NULL, &mf->errors);
    if (y != NULL)
        load_docs(mf, y);
    yaml_file_free(y);
    diag_sort(&mf->errors);
    return mf;
}

struct manifest_file *manifest_load_file(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    struct manifest_file *mf;
    struct yfile *y;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    mf = new_file(path, dir);
    if (mf == NULL)
        return NULL;
    y = yaml_load_file(path, NULL, &mf->errors);
    if (y != NULL)
        load_docs(mf, y);
    yaml_file_free(y);
    diag_sort(&mf->errors);
    return mf;
}

void manifest_file_free(struct manifest_file *f)
{
    size_t i;

    if (f == NULL)
        return;
    for (i = 0; i < f->nobjects; i++) {
        json_decref(f->objects[i].spec);
        json_decref(f->objects[i].labels);
        json_decref(f->objects[i].annotations);
    }
    free(f->objects);
    diag_list_clear(&f->errors);
    free(f->path);
    free(f->basedir);
    free(f);
}

long long manifest_next_generation(long long prev_generation, const char *prev_spec_hash,
                                   const struct manifest_object *obj)
{
    if (prev_generation <= 0 || prev_spec_hash == NULL)
        return 1;
    if (obj->spec_hash[0] != '\0' && strcmp(prev_spec_hash, obj->spec_hash) == 0)
        return prev_generation;
    return prev_generation + 1;
}
