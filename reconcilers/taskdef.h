/* ECS task definitions of an Application (used by service.c): one per
 * revision and slot, in the family names.task_family, found again by their
 * aviary.io/revision and aviary.io/slot tags, registered only when missing,
 * and pruned to the newest few. Worker threads; one reconcile's context.
 *
 * A task definition belongs to a slot as well as a revision because the
 * container's environment carries AVIARY_REVISION and AVIARY_SLOT (the CRD
 * promises both, so the application can label its own metrics). */
#ifndef AVIARY_RECONCILERS_TASKDEF_H
#define AVIARY_RECONCILERS_TASKDEF_H

#include <jansson.h>
#include <stddef.h>

#include "reconcilers/app.h"

/* Task definitions kept per family beyond those a slot uses: the newest
 * TASKDEF_KEEP (at least the last TASKDEF_KEEP / 2 revisions, two slots
 * each), so an operator can still roll back by hand. Older ones of this
 * application are deregistered after a revision finished deploying. */
#define TASKDEF_KEEP 10

/* Scratch state of one reconcile, so the family is listed at most once. */
struct taskdef_pass {
    int listed;
};

/* The RegisterTaskDefinition input for `revision` on `slot` (0 = a, 1 = b)
 * from the spec and the cluster concern's roles (executionRoleArn,
 * taskRoleArn when known) and log group, tags included. New reference. */
json_t *taskdef_desired(struct app_ctx *ctx, const char *revision, int slot);

/* True when a described task definition (DescribeTaskDefinition's
 * "taskDefinition") matches the desired input in every field aviary sets,
 * with AWS's defaults normalised away. */
bool taskdef_matches(const json_t *desired, const json_t *described);

/* Finds (by cache, then by listing the family) or registers the task
 * definition of the current revision (ctx->req->revision) for `slot`, and
 * copies its ARN into arn. In plan mode a missing one is recorded as a
 * create and arn is "(known after apply)". Returns APP_STEP_READY or
 * APP_STEP_FAILED (ctx->error set). */
enum app_step taskdef_ensure(struct app_ctx *ctx, struct taskdef_pass *pass, int slot, char *arn,
                             size_t len);

/* Deregisters this application's ACTIVE task definitions of the family
 * beyond the newest TASKDEF_KEEP, never one in `in_use` (array of ARNs).
 * Returns 0, or -1 with ctx->error set. */
int taskdef_prune(struct app_ctx *ctx, const json_t *in_use);

/* Deregisters every ACTIVE task definition of the family that carries this
 * application's tags. Returns APP_STEP_READY when none is left,
 * APP_STEP_WAITING when more remain (bounded work per pass), or
 * APP_STEP_FAILED. */
enum app_step taskdef_delete_all(struct app_ctx *ctx);

#endif
