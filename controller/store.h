/* The status store: one JSON record per object (kind, name, generation,
 * last valid spec, status), kept in memory and persisted atomically (temp
 * file, fsync, rename, fsync of the directory) under the state directory so
 * that a restart resumes where the daemon stopped. Thread-safe: workers write
 * their object's record, the loop thread reads for the HTTP API. Every
 * record handed out is a copy; the store's own are never shared. */
#ifndef AVIARY_CONTROLLER_STORE_H
#define AVIARY_CONTROLLER_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct store;

/* Opens (creating if needed) the store in dir and loads every record in
 * dir/objects/. Leftover temp files from a crash are removed; a record that
 * cannot be parsed is moved aside to *.corrupt and reported in errbuf but
 * does not fail the open. dir NULL means an in-memory store (tests, `apply`).
 * Returns 0 and *out, or -1 with a message in errbuf. */
int store_open(const char *dir, struct store **out, char *errbuf, size_t errlen);
void store_close(struct store *st);

/* A deep copy of the record of kind/name (caller decrefs), or NULL. */
json_t *store_get(struct store *st, const char *kind, const char *name);

/* Replaces the record of kind/name with a copy of rec and persists it before
 * returning. Returns 0, or -1 when it could not be written (the previous
 * record then stays in force, in memory and on disk). */
int store_put(struct store *st, const char *kind, const char *name, const json_t *rec);

/* Sets one top-level member of the record of kind/name (creating the record
 * when absent) to a copy of value, and persists the record. The loop thread
 * and the workers write different members ("desired" and "status"), so
 * neither overwrites the other's latest change. Returns as store_put. */
int store_set_field(struct store *st, const char *kind, const char *name, const char *key,
                    const json_t *value);

/* Sets every member of the object `members` in the record of kind/name
 * (creating the record when absent) to a copy of its value, and persists
 * the record once. Returns as store_put. */
int store_set_fields(struct store *st, const char *kind, const char *name, const json_t *members);

/* The two halves of store_set_fields, for a caller that wants others to see
 * the new record while it is being written (the daemon queues the object's
 * reconcile before the fsync). store_stage_fields puts the members in force
 * in memory at once (readers see them) and returns a transaction in *out
 * (NULL when the record is unchanged: nothing to commit); until it is
 * committed, no other write of the record can complete, so a reader may act
 * on a record that is not on disk yet. Returns 0, or -1 (nothing changed). */
struct store_txn;
int store_stage_fields(struct store *st, const char *kind, const char *name, const json_t *members,
                       struct store_txn **out);

/* Writes a staged record to disk and ends the transaction (t may be NULL).
 * Every staged transaction must be committed, by any thread (the daemon
 * commits on libuv's thread pool so that the loop thread never waits for an
 * fsync).
 * Returns 0, or -1 when it could not be written: the previous record is
 * then back in force in memory (and was never replaced on disk). */
int store_commit(struct store_txn *t);

/* Removes the record only if its member `key` is JSON true (e.g. a worker
 * finishing a teardown removes the record unless the manifest came back
 * meanwhile). Returns 1 when removed, 0 when not, -1 on a write error. */
int store_delete_if_true(struct store *st, const char *kind, const char *name, const char *key);

/* Removes the record, in memory and on disk. Returns 0 (also when absent) or
 * -1 when the file could not be removed. */
int store_delete(struct store *st, const char *kind, const char *name);

/* A new JSON array with a copy of every record, ordered by kind then name,
 * or NULL when out of memory. */
json_t *store_list(struct store *st);

/* Filter for store_foreach: true when the record of kind/name is wanted. */
typedef bool (*store_want_fn)(const char *kind, const char *name, void *arg);

/* Visitor for store_foreach: rec is a copy of the record of kind/name,
 * borrowed for the call. Returns 0 to go on, anything else to stop. */
typedef int (*store_visit_fn)(const char *kind, const char *name, json_t *rec, void *arg);

/* Calls fn with a copy of each record present when the call starts for
 * which want (NULL: all) returns true, ordered by kind then name; a record
 * removed meanwhile is skipped. Unlike store_list only one record is a tree
 * at a time and records that are not wanted are never copied, so scanning
 * many records costs little. fn may use the store. Returns 0, the first
 * non-zero value fn returned, or -1 when out of memory. */
int store_foreach(struct store *st, store_want_fn want, store_visit_fn fn, void *arg);

/* Number of records. */
size_t store_count(struct store *st);

#endif
