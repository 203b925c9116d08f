/* The rollout concern of an Application: each reconcile observes both
 * slots (revision, desired and healthy tasks), measures an analysis round
 * when one is due, advances the progressive-delivery state machine
 * (rollout_machine.h) and executes its actions through the other concerns
 * (service, loadbalancer, autoscaling), delivers alerts (alerts.h),
 * publishes the canary weight metric and stores the state in
 * status.rollout. Runs after the service concern. Worker threads; one
 * reconcile's context. */
#ifndef AVIARY_RECONCILERS_ROLLOUT_H
#define AVIARY_RECONCILERS_ROLLOUT_H

#include "reconcilers/app.h"
#include "reconcilers/reconciler.h"

#define ROLLOUT_METRIC_NAMESPACE "Aviary"
#define ROLLOUT_METRIC_NAME      "CanaryWeight"
#define ROLLOUT_FETCH_RETRY_MS   5000 /* a failed GetMetricData: the window stays due */
#define ROLLOUT_REVISIONS_CACHE  8    /* task definition ARN -> revision entries kept */

/* One reconcile of the rollout. Reads ctx->req->command (a pending manual
 * command) and sets res->command_done when the machine consumed it. Writes
 * status.rollout (the machine's state plus "analysis", the bounded
 * measurement history, and "alertDelivery", the delivery records of
 * undelivered alerts), the Progressing/Degraded conditions, the phase,
 * events, status.observedRevision once the stable slot runs the current
 * revision, and resources.rollout (a cache of task definition revisions).
 * Waits are requested with app_wait; the concern returns APP_STEP_READY
 * while a rollout waits (the later concerns still converge), and
 * APP_STEP_FAILED with ctx->error when an AWS call of an action failed (the
 * state is kept as it was, unless the listener weights already changed in
 * this reconcile: then the new state is stored, since every other action
 * is re-converged from it). In plan mode nothing is changed: the actions
 * are recorded as plan entries. */
enum app_step rollout_converge(struct app_ctx *ctx, struct reconcile_result *res);

/* Deletion: nothing of its own in AWS (the slots belong to the service
 * concern); READY. */
enum app_step rollout_delete(struct app_ctx *ctx);

#endif
