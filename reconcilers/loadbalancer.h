/* The load balancer concern's entry points for the rollout logic: moving
 * traffic between slots a and b by the listeners' forward weights, and the
 * blue/green test listener. Worker threads (one reconcile's context). */
#ifndef AVIARY_RECONCILERS_LOADBALANCER_H
#define AVIARY_RECONCILERS_LOADBALANCER_H

#include "reconcilers/app.h"

/* Sets the forward weights of every listener of the application's load
 * balancer that forwards (port 80 unless it redirects to HTTPS, and 443 when
 * TLS is on): stable_slot (0 = "a", 1 = "b") gets 100 - canary_weight, the
 * other slot canary_weight (0..100). One ModifyListener call per listener
 * (both target groups in one weighted forward action), then one
 * DescribeListeners call that reads the weights back and confirms them.
 * Uses the ARNs loadbalancer_converge recorded in
 * status.resources.loadbalancer (the listeners and target groups must
 * exist). Records the weights there ("weights": {"a": N, "b": M}); does not
 * touch status.rollout (the caller owns it). In plan mode the calls are
 * recorded, not made. Returns 0; or -1 with ctx->error (nothing recorded
 * then; a listener may already carry the new weights when a later one
 * failed, and the next call or converge sets them again). */
int loadbalancer_set_weights(struct app_ctx *ctx, int stable_slot, int canary_weight);

/* Blue/green: points the test listener (HTTP on `port`, spec
 * rollout.blueGreen.testPort) at `slot`'s target group only (a weighted
 * forward with 100 to that slot, 0 to the other), creating it (tagged) when
 * missing; slot -1 deletes it. A listener on that port without the aviary
 * tags is never changed (error). Records resources.loadbalancer
 * testListenerArn and testListenerSlot (removed with the listener). Port 80
 * and 443 are refused (terminal). Returns 0, or -1 with ctx->error. The
 * load balancer's security group must allow the port for testers to reach
 * it (the network concern owns its rules). In plan mode the calls are
 * recorded. */
int loadbalancer_set_test_listener(struct app_ctx *ctx, int slot, int port);

#endif
