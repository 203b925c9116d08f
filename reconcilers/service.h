/* The service concern's entry points for the rollout concern: which
 * revision a slot runs, how many tasks it has, which slot is stable.
 * service_converge/_delete are declared in app.h. Worker threads (one
 * reconcile's context). */
#ifndef AVIARY_RECONCILERS_SERVICE_H
#define AVIARY_RECONCILERS_SERVICE_H

#include <stdint.h>

#include "reconcilers/app.h"

/* Tag on the stable slot's ECS service: when it became stable (unix ms), so
 * a lost status recovers the stable slot from AWS alone. */
#define SERVICE_TAG_STABLE_SINCE "aviary.io/stable-since"

/* Makes `slot`'s ECS service run `revision`, which must be the current
 * revision (ctx->req->revision: only its task definition can be built from
 * the spec): finds or registers its task definition for the slot, updates
 * the service to it (ECS starts a deployment) and tags the service with
 * aviary.io/revision. Returns 0, or -1 with ctx->error. In plan mode the
 * calls are recorded. */
int service_register_revision(struct app_ctx *ctx, int slot, const char *revision);

/* Sets `slot`'s desiredCount to count (one UpdateService). Returns 0, or -1
 * with ctx->error. */
int service_scale(struct app_ctx *ctx, int slot, int count);

/* Records `slot` (running `revision`) as the stable slot:
 * resources.service.stableSlot, and the tags aviary.io/revision and
 * SERVICE_TAG_STABLE_SINCE (since_ms) on its ECS service. Returns 0, or -1
 * with ctx->error (the resources entry is written either way). */
int service_set_stable(struct app_ctx *ctx, int slot, const char *revision, int64_t since_ms);

#endif
