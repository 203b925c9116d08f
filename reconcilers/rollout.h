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
/* The requeue path (rollout_tick): resources.rollout keys, how early a
 * requeue may come, and how long the rest of the stack may go unobserved
 * when the rollout's own requeues keep coinciding with resyncs. */
#define ROLLOUT_KEY_WAKE_AT     "wakeAt" /* unix ms the rollout asked to come back */
#define ROLLOUT_KEY_FULL_AT     "fullAt" /* unix ms of the last full pass */
#define ROLLOUT_TICK_EARLY_MS   20
#define ROLLOUT_FULL_MAX_AGE_MS 300000

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

/* True when this reconcile is the rollout's own requeue: an analysis round,
 * a step timer, a health poll or an alert retry is due (now_ms at or after
 * resources.rollout.wakeAt) and nothing else changed since the last full
 * pass (same generation and revision, Synced, no command, a rollout in
 * progress, the full pass less than ROLLOUT_FULL_MAX_AGE_MS ago). A resync
 * or a spec change comes before the wake time (or changes the generation)
 * and gets the full pass. Pure: reads req and status only. */
bool rollout_tick_due(const struct reconcile_request *req, const json_t *status);

/* The requeue path, instead of every concern's observation: the round is
 * measured first (from the state and the dimensions in status), the slots
 * are described (one DescribeServices, the canary's target health; the
 * stable side's only when the decision moves traffic), the machine steps
 * and its actions run as in rollout_converge. *handled is false, with
 * nothing changed, when the full pass must decide instead (no state, a
 * slot missing, a revision to register). After it moved anything, the next
 * reconcile (requeued at once) is a full pass. Returns as rollout_converge. */
enum app_step rollout_tick(struct app_ctx *ctx, struct reconcile_result *res, bool *handled);

/* Deletion: nothing of its own in AWS (the slots belong to the service
 * concern); READY. */
enum app_step rollout_delete(struct app_ctx *ctx);

#endif
