/* Desired objects from a source snapshot: every manifest file is loaded,
 * validated against the CRDs and checked for cross-field rules; each object
 * gets its key (Kind/name), spec with defaults, revision and spec hash, or
 * its errors. The same name defined in two files is an error on both. A
 * file whose objects cannot be identified (YAML syntax error, unreadable) is
 * listed so that the objects it defined before are kept, not deleted.
 * Loop thread (pure function of the snapshot). */
#ifndef AVIARY_CONTROLLER_OBJECTS_H
#define AVIARY_CONTROLLER_OBJECTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "controller/source.h"

struct desired_object {
    char *kind;
    char *name;
    char *file;               /* source-relative file name */
    const char *manifest_dir; /* directory for relative data paths (the set's root_dir), or NULL */
    int line;                 /* where the object starts */
    /* The spec with defaults as compact JSON text (sorted keys), NULL when
     * invalid: a text is several times smaller than a jansson tree, and a
     * whole source's specs are held at once while a snapshot is applied. */
    char *spec;
    char revision[32];
    char spec_hash[65]; /* hash of the whole spec: a change bumps the generation */
    json_t *errors;     /* array of "file:line:column: field.path: message"; NULL when unchanged */
    char file_id[96];   /* the source file's version id when it was loaded */
    /* Copied from `previous` because its file did not change (see
     * objects_build): spec is NULL and errors empty; prev_index is its index
     * in the previous set. */
    bool unchanged;
    size_t prev_index;
};

struct desired_set {
    struct desired_object *objs;
    size_t n;
    json_t *broken_files; /* object: file name -> array of error strings */
    json_t *file_ids;     /* object: broken file name -> version id it was loaded at */
    char *root_dir;       /* the directory source's path (manifest_dir of every object) */
    size_t files_loaded;  /* files parsed to build this set (not copied) */
};

/* Builds the desired set from snap. root_dir is the directory source's path
 * (for manifest_dir), or NULL. When previous (the last set built) is given,
 * a file whose name and version id are the same as when previous was built
 * is not loaded again: its objects are copied, marked unchanged, without
 * spec or errors (a broken file's errors are copied). Returns 0, or -1 when out of
 * memory. */
int objects_build(const struct source_snapshot *snap, const char *root_dir,
                  const struct desired_set *previous, struct desired_set *out);

/* Loads again, from snap, the file of every object of set for which
 * need[i] is true and that was copied unchanged from a previous set (no
 * spec): all the objects of such a file get their spec, revision, hash and
 * errors in place and are no longer marked unchanged. The set's order and
 * size do not change. Returns 0; 1 when a file no longer yields the same
 * objects (the caller should build the set afresh); -1 when out of memory
 * (the set is then still valid but may lack some specs). */
int objects_reload(struct desired_set *set, const struct source_snapshot *snap,
                   const char *root_dir, const bool *need);

void objects_clear(struct desired_set *set);

#endif
