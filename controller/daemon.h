/* `aviary run`: the daemon. The libuv loop thread owns the manifest source,
 * the resync and deletion timers, the HTTP API and the signals; a fixed pool
 * of worker threads takes keys from the work queue and runs the reconcilers.
 * SIGTERM/SIGINT let in-flight reconciles finish, persist and exit; SIGHUP
 * rescans the source. */
#ifndef AVIARY_CONTROLLER_DAEMON_H
#define AVIARY_CONTROLLER_DAEMON_H

#include <stdbool.h>

#include "reconcilers/reconciler.h"

struct daemon_config {
    const char *source;     /* directory or s3://bucket/prefix/ */
    const char *state_dir;  /* status store directory */
    const char *listen;     /* "127.0.0.1:9464" */
    long resync_ms;         /* periodic re-reconcile of every object (drift) */
    long s3_interval_ms;    /* S3 polling interval */
    long deletion_grace_ms; /* an object must stay absent this long before it is deleted */
    int workers;
    /* Reconcilers per kind, NULL-terminated; kinds without one are validated
     * and reported but not acted on. */
    const struct reconciler *const *reconcilers;
    /* Create an AWS client (from the environment, as the SDKs do): needed for
     * an S3 source and for reconcilers that call AWS. */
    bool use_aws;
};

/* Runs until SIGTERM/SIGINT. Returns the process exit status (0 after a
 * clean shutdown, 1 when startup failed, with the reason logged). */
int daemon_run(const struct daemon_config *cfg);

#endif
