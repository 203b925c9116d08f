/* The interface between the controller and the reconcilers: one reconcile
 * is a plain blocking function run on a worker thread — observe AWS,
 * compare with the desired spec, act, report — that returns done, requeue
 * after a delay, or an error. It never sleeps for long waits (pauses,
 * analysis intervals, resources becoming available): it records its state
 * in the status and asks to be re-queued. Reconcilers know nothing about
 * files, sockets or the event loop. Worker threads. */
#ifndef AVIARY_RECONCILERS_RECONCILER_H
#define AVIARY_RECONCILERS_RECONCILER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct aws_client;

/* What a reconcile gets. Everything is borrowed for the call; spec and
 * status are the worker's own copies (never shared with other threads). */
struct reconcile_request {
    const char *kind;
    const char *name;
    const json_t *spec;       /* last valid spec, defaults applied */
    const char *revision;     /* hash of the container-changing fields */
    int64_t generation;       /* increments when the spec changes */
    const char *manifest_dir; /* directory of the manifest (relative data paths), or NULL */
    bool deleting;            /* the manifest is gone: tear down per deletionPolicy */
    int64_t now;              /* unix seconds (injectable) */
    int64_t now_ms;           /* the same instant in unix milliseconds (timers finer than 1 s) */
    const char *reconcile_id; /* for logs and events */
    struct aws_client *aws;   /* shared, thread-safe */
    const json_t *command;    /* a pending manual command ({"action": "promote", ...}) or NULL */
};

enum reconcile_outcome {
    RECONCILE_DONE,          /* converged; come back at the next resync */
    RECONCILE_REQUEUE_AFTER, /* waiting for something; come back after requeue_after_ms */
    RECONCILE_ERROR,         /* failed; retried with backoff (message in error) */
    RECONCILE_INVALID,       /* the spec cannot work (terminal until it changes) */
};

/* What a reconcile returns. */
struct reconcile_result {
    enum reconcile_outcome outcome;
    long requeue_after_ms;
    bool deleted;      /* teardown finished: the controller forgets the object */
    bool command_done; /* the pending command was consumed */
    char error[1024];  /* for ERROR/INVALID: which resource, which call, AWS's code and message */
};

/* A reconciler for one kind. `status` is the object's status document (a
 * private copy): the reconciler updates it in place (phase, conditions,
 * events, its own fields) and the controller persists it after the call,
 * whatever the outcome. */
struct reconciler {
    const char *kind;
    void (*reconcile)(const struct reconcile_request *req, json_t *status,
                      struct reconcile_result *res);
};

#endif
