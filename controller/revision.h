/* Revisions and spec hashes of manifest objects: stable hashes over a
 * canonical JSON serialization (keys sorted, compact, UTF-8). Pure; any
 * thread. */
#ifndef AVIARY_CONTROLLER_REVISION_H
#define AVIARY_CONTROLLER_REVISION_H

#include <jansson.h>

#define REVISION_LEN  10 /* hex characters of a revision */
#define SPEC_HASH_LEN 64 /* hex characters of a spec hash (full SHA-256) */

/* The canonical serialization of v: JSON with object keys sorted, no
 * whitespace, strings in UTF-8 (only characters JSON requires are escaped). Returns a malloc'd
 * string the caller frees, or NULL on allocation failure. */
char *revision_canonical_json(const json_t *v);

/* The revision of an Application spec (with defaults applied): the first 10
 * hex characters of SHA-256 over the canonical JSON of exactly the fields
 * that change the running container: image, port, command, args, cpu,
 * memory, architecture, env, secrets and healthCheck (absent fields are left
 * out, so adding a new optional field to the CRD does not change existing
 * revisions). Scaling, notifications, rollout settings etc. do not change
 * it. Writes REVISION_LEN characters and a NUL into out.
 * Returns 0, or -1 (out set to "") when spec is not an object or on
 * allocation failure. */
int revision_compute(const json_t *spec, char out[REVISION_LEN + 1]);

/* SHA-256 (hex) of the canonical JSON of v, used to tell whether a spec
 * changed (and so whether an object's generation increments). Returns 0, or
 * -1 with out set to "". */
int revision_spec_hash(const json_t *v, char out[SPEC_HASH_LEN + 1]);

/* The fields that make up a revision, NULL-terminated (for docs and tests). */
extern const char *const revision_fields[];

#endif
