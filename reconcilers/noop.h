/* The no-op reconcilers (one per kind) for controller tests and benchmarks. */
#ifndef AVIARY_RECONCILERS_NOOP_H
#define AVIARY_RECONCILERS_NOOP_H

#include "reconcilers/reconciler.h"

extern const struct reconciler noop_application_reconciler;
extern const struct reconciler noop_training_reconciler;

#endif
