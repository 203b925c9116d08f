/* Application Auto Scaling of the stable slot's ECS service (autoscaling.c):
 * what the rollout logic and the other concerns use besides
 * autoscaling_converge/_delete (declared in app.h). Worker threads. */
#ifndef AVIARY_RECONCILERS_AUTOSCALING_H
#define AVIARY_RECONCILERS_AUTOSCALING_H

#include "reconcilers/app.h"

/* Slot index (0 "a", 1 "b") of the stable slot: resources.service.stableSlot,
 * else status.rollout.stableSlot, else 0. */
int autoscaling_stable_slot(struct app_ctx *ctx);

/* The ECS cluster (resources.cluster.clusterName, else names.cluster) and the
 * service of a slot (resources.service.services[slot].name, else the derived
 * name). Borrowed from ctx; valid for the reconcile. */
const char *autoscaling_cluster_name(struct app_ctx *ctx);
const char *autoscaling_service_name(struct app_ctx *ctx, int slot);

/* Pins the stable slot's scalable target to MinCapacity min_capacity while a
 * rollout runs (MaxCapacity stays spec.scaling.max; a minimum above it is
 * clamped to it), and records it in status.resources.autoscaling.pinnedMin.
 * autoscaling_converge keeps the pin while status.rollout.pinnedMin exists
 * (the rollout state machine's pin), or while status.rollout.phase is
 * "Progressing", "Paused", "Promoting" or "RollingBack"; otherwise it drops
 * the pin and restores spec.scaling.min. min_capacity < 0 removes the pin now (spec.scaling.min).
 * Reads the target first and writes only when it differs (quiet when already
 * pinned); registers the target when it is missing. Returns 0 on success
 * (also in plan mode, where the write is only recorded), -1 with ctx->error
 * filled when an AWS call failed (the pin is then not recorded). */
int autoscaling_pin_min(struct app_ctx *ctx, int min_capacity);

#endif
