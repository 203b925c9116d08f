/* Internals of the rollout concern shared by rollout.c (the concern) and
 * rollout_observe.c (what it observes of the two slots). Worker threads;
 * one reconcile's context. */
#ifndef AVIARY_RECONCILERS_ROLLOUT_INTERNAL_H
#define AVIARY_RECONCILERS_ROLLOUT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "reconcilers/app.h"
#include "reconcilers/rollout.h"
#include "reconcilers/rollout_machine.h"

/* What one reconcile saw of slots a (0) and b (1). */
struct rollout_observed {
    json_t *described; /* DescribeServices output (owned) */
    const json_t *svc[2];
    char td[2][512];
    char rev[2][ROLLOUT_REVISION_MAX];
    int desired[2];
    int healthy[2];
    int64_t stable_since[2]; /* SERVICE_TAG_STABLE_SINCE, 0 when absent */
    bool health_read[2];     /* healthy[slot] was looked at (or needs no look) */
};

/* Observes both slots: the services (one DescribeServices unless service.c
 * left its own in ctx->services_observed, which it takes) and the healthy
 * targets of each slot except skip_health (-1: none). Returns 0, or -1 with
 * ctx->error (o is then partly filled; clear it either way). */
int rollout_observe(struct app_ctx *ctx, struct rollout_observed *o, int skip_health);

/* Reads slot's healthy targets now (after rollout_observe skipped it).
 * Returns 0, or -1 with ctx->error. */
int rollout_observe_health(struct app_ctx *ctx, struct rollout_observed *o, int slot);

/* Frees what o holds and zeroes it. */
void rollout_observed_clear(struct rollout_observed *o);

#endif
