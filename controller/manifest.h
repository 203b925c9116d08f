/* Manifest files -> validated, defaulted objects (Application,
 * TrainingEnvironment). Validation comes from the CRDs embedded at build time
 * (the YAML files in crds/) plus the cross-field rules in manifest.c, which the CRD
 * descriptions document. Any thread once manifest_init has succeeded (the
 * compiled schemas are read-only). */
#ifndef AVIARY_CONTROLLER_MANIFEST_H
#define AVIARY_CONTROLLER_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/revision.h"
#include "controller/schema.h"
#include "controller/yaml_doc.h"

/* The files in crds/ as embedded by controller/embed.cmake (generated source). */
struct embedded_file {
    const char *name; /* "crds/application.yaml" */
    const unsigned char *data;
    size_t len; /* data[len] is a NUL byte */
};
extern const struct embedded_file aviary_embedded_crds[];
extern const size_t aviary_embedded_crds_count;

#define MANIFEST_API_VERSION "aviary.io/v1alpha1"
#define MANIFEST_NAME_MAX    63

enum manifest_kind {
    MANIFEST_KIND_UNKNOWN,
    MANIFEST_KIND_APPLICATION,
    MANIFEST_KIND_TRAINING_ENVIRONMENT,
};

/* "Application", "TrainingEnvironment", or "Unknown". */
const char *manifest_kind_name(enum manifest_kind kind);

/* One object (one YAML document). */
struct manifest_object {
    enum manifest_kind kind;
    char name[MANIFEST_NAME_MAX + 1]; /* metadata.name ("" when missing or invalid) */
    const char *file;                 /* the manifest_file's path (not owned) */
    int line, column;                 /* where the object's document starts */
    bool valid;                       /* no errors: safe to act on */
    /* With defaults applied; owned. NULL when the document had no usable
     * spec. Never act on it when !valid. */
    json_t *spec;
    json_t *labels;      /* metadata.labels (object, possibly empty); owned */
    json_t *annotations; /* metadata.annotations (object, possibly empty); owned */
    /* Application only: hash of the fields that change the running
     * container (revision.h); "" otherwise or when invalid. */
    char revision[REVISION_LEN + 1];
    /* SHA-256 of the canonical defaulted spec: compare with the stored hash
     * to tell whether the spec changed. "" when invalid. */
    char spec_hash[SPEC_HASH_LEN + 1];
    /* metadata.generation as Kubernetes counts it: 1 for a spec seen the
     * first time, incremented whenever the spec changes. The loader sets 1;
     * the status store, which remembers the previous value, calls
     * manifest_next_generation. */
    long long generation;
    size_t nerrors; /* errors of this object (they are in the file's list) */
};

struct manifest_file {
    char *path;
    char *basedir; /* directory data paths are relative to; NULL: not checked */
    struct manifest_object *objects;
    size_t nobjects;
    /* Every error of the file and its objects, sorted by position. When the
     * file itself could not be read or parsed, nobjects is 0. */
    struct diag_list errors;
};

/* Compiles the embedded CRDs once (thread-safe, idempotent). Returns 0, or
 * -1 with the reasons appended to diags (when non-NULL); later calls return
 * the same result. */
int manifest_init(struct diag_list *diags);

/* The compiled openAPIV3Schema of a kind, or NULL (unknown kind or
 * manifest_init not successful). */
const struct schema *manifest_schema(enum manifest_kind kind);

/* Loads and validates every document of path. Data paths of
 * TrainingEnvironments are checked relative to path's directory.
 * Returns the file (free with manifest_file_free; never NULL except on
 * allocation failure). Check errors / objects[i].valid. */
struct manifest_file *manifest_load_file(const char *path);

/* Same for a buffer named `name` in messages; basedir is the directory data
 * paths are relative to, or NULL to skip the existence checks (e.g. an S3
 * source). */
struct manifest_file *manifest_load_buffer(const char *name, const char *buf, size_t len,
                                           const char *basedir);

void manifest_file_free(struct manifest_file *f);

/* The generation for obj given what the store last recorded for the same
 * object (prev_generation 0 / prev_spec_hash NULL: never seen): unchanged
 * spec hash keeps the generation, a changed one increments it. */
long long manifest_next_generation(long long prev_generation, const char *prev_spec_hash,
                                   const struct manifest_object *obj);

/* Value at a dotted path in a spec ("rollout.analysis.interval";
 * "rollout.canary.steps[0].setWeight"), or NULL. Borrowed reference. */
json_t *manifest_get(const json_t *spec, const char *path);

/* A duration field in milliseconds (fields are validated, so this only
 * fails for absent fields). Returns the value, or fallback_ms when absent. */
int64_t manifest_get_duration_ms(const json_t *spec, const char *path, int64_t fallback_ms);

#endif
