/* The no-op reconciler: reports every valid object Synced and Ready without
 * touching AWS. It is what `aviary run --reconciler noop` uses to exercise
 * and benchmark the controller core (sources, queue, store, API) on its
 * own, and the template every AWS reconciler follows. Worker threads. */
#include "reconcilers/noop.h"

#include <stdio.h>

#include "reconcilers/status.h"

static void noop_reconcile(const struct reconcile_request *req, json_t *status,
                           struct reconcile_result *res)
{
    char msg[160];

    if (req->deleting) {
        res->deleted = true;
        res->outcome = RECONCILE_DONE;
        return;
    }
    snprintf(msg, sizeof(msg), "revision %s (generation %lld) accepted by the no-op reconciler",
             req->revision ? req->revision : "", (long long)req->generation);
    json_object_set_new(status, "observedRevision",
                        json_string(req->revision ? req->revision : ""));
    json_object_set_new(status, "observedGeneration", json_integer(req->generation));
    if (status_set_condition(status, "Synced", "True", "NoopReconciler", msg, req->now))
        status_add_event(status, "Normal", "Synced", msg, req->now);
    status_set_condition(status, "Available", "True", "NoopReconciler", "nothing to provision",
                         req->now);
    status_set_phase(status, PHASE_READY);
    res->outcome = RECONCILE_DONE;
}

const struct reconciler noop_application_reconciler = {"Application", noop_reconcile};
const struct reconciler noop_training_reconciler = {"TrainingEnvironment", noop_reconcile};
