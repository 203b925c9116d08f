/* libFuzzer target for the manifest loader: any byte string is loaded with
 * manifest_load_buffer (YAML, the CRD schemas, defaults, cross-field rules,
 * revisions). Checks that loading never crashes or leaks, that results honour
 * manifest.h (a valid object has a defaulted spec, a revision and a spec hash;
 * errors are sorted and formattable) and that loading is deterministic.
 * Built separately: see tests/fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        abort();
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            abort();
}

static void check_object(const struct manifest_object *o)
{
    if (memchr(o->name, '\0', sizeof(o->name)) == NULL)
        abort();
    if (!o->valid)
        return;
    /* Valid: safe to act on, so everything an action needs is there. */
    if (o->nerrors != 0 || !json_is_object(o->spec) || o->name[0] == '\0' ||
        o->kind == MANIFEST_KIND_UNKNOWN || !json_is_object(o->labels) ||
        !json_is_object(o->annotations))
        abort();
    check_hex(o->spec_hash, SPEC_HASH_LEN);
    if (o->kind == MANIFEST_KIND_APPLICATION) {
        check_hex(o->revision, REVISION_LEN);
        /* Accessors on a validated spec: present fields parse, absent ones
         * fall back. */
        (void)manifest_get(o->spec, "rollout.canary.steps[0].setWeight");
        if (manifest_get_duration_ms(o->spec, "rollout.analysis.interval", -1) < 0)
            abort();
    }
}

static void check_file(const struct manifest_file *mf)
{
    char line[1024];
    int prev_line = 0, prev_col = 0;

    for (size_t i = 0; i < mf->nobjects; i++)
        check_object(&mf->objects[i]);
    for (size_t i = 0; i < mf->errors.n; i++) {
        const struct diag *dg = &mf->errors.items[i];
        if (dg->message == NULL || dg->line < prev_line ||
            (dg->line == prev_line && dg->column < prev_col))
            abort();
        prev_line = dg->line;
        prev_col = dg->column;
        if (diag_format(dg, line, sizeof(line)) == NULL || memchr(line, '\0', sizeof(line)) == NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct manifest_file *a, *b;

    if (manifest_init(NULL) != 0)
        abort();
    a = manifest_load_buffer("fuzz.yaml", (const char *)data, size, NULL);
    if (a == NULL)
        abort();
    check_file(a);
    /* Same input, same verdict and hashes (the store relies on it). */
    b = manifest_load_buffer("fuzz.yaml", (const char *)data, size, NULL);
    if (b == NULL || b->nobjects != a->nobjects || diag_count(&b->errors) != diag_count(&a->errors))
        abort();
    for (size_t i = 0; i < a->nobjects; i++)
        if (a->objects[i].valid != b->objects[i].valid ||
            strcmp(a->objects[i].spec_hash, b->objects[i].spec_hash) != 0 ||
            strcmp(a->objects[i].revision, b->objects[i].revision) != 0)
            abort();
    manifest_file_free(a);
    manifest_file_free(b);
    return 0;
}
