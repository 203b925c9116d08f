/* Test support for the rollout tests (test_rollout.c,
 * test_rollout_bluegreen.c): one Application on a fresh emulator, driven
 * through the whole Application reconciler with the emulator's clock moved
 * forward as the daemon's queue would wait. Test main thread. */
#ifndef AVIARY_TEST_ROLLOUT_FIXTURE_H
#define AVIARY_TEST_ROLLOUT_FIXTURE_H

#include <jansson.h>

#include "reconcilers/reconciler.h"
#include "support/emulator.h"

#define RFX_APP    "roll"
#define RFX_IMAGE1 "docker.io/acme/model:1"
#define RFX_IMAGE2 "docker.io/acme/model:2"
#define RFX_REV1   "r1000000001"
#define RFX_REV2   "r2000000002"

struct rfx {
    struct test_emulator emu;
    json_t *spec;
    json_t *status;
    char revision[32];
    json_t *command; /* the next reconcile's manual command, or NULL (owned) */
    struct reconcile_result last;
};

/* cmocka setup/teardown: a fresh emulator, the canary spec of the tests
 * (steps 20%, pause 20s, 50%, pause 20s; analysis every 10s, errorRate max
 * 0.05, failureLimit 0; webhook "team" in Slack format), revision 1. */
int rfx_setup(void **state);
int rfx_teardown(void **state);

/* One reconcile at the emulator's time (a second behind). */
void rfx_reconcile(struct rfx *f);
/* Moves the clock by the last requeue (1 to 10 s). */
void rfx_next_step(struct rfx *f);
void rfx_advance(struct rfx *f, double seconds);
double rfx_now(struct rfx *f);
/* Reconciles until status.rollout.phase is `phase` (and the stable revision
 * `stable` when not NULL); fails the test after a bounded number. */
void rfx_run_until(struct rfx *f, const char *phase, const char *stable);

const json_t *rfx_rollout(struct rfx *f);
const char *rfx_rollout_str(struct rfx *f, const char *key);
json_t *rfx_call(struct rfx *f, const char *service, const char *op, json_t *in);
long long rfx_desired(struct rfx *f, int slot);
/* The listener on `port`'s forward weight for a slot, -1 without a listener. */
long rfx_weight(struct rfx *f, int port, int slot);
/* SNS publishes whose subject starts with "aviary: " (new array). */
json_t *rfx_alerts(struct rfx *f);
size_t rfx_webhook_calls(struct rfx *f);
const json_t *rfx_condition(struct rfx *f, const char *type);
void rfx_set_profile(struct rfx *f, const char *image, json_t *profile);
/* The first deployment: slot a serves revision 1 (asserted). */
void rfx_first_deployment(struct rfx *f);
/* The manifest changes to image 2 / revision 2. */
void rfx_new_revision(struct rfx *f);

#endif
