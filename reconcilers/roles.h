/* The IAM roles of one Application (part of the cluster concern, see
 * cluster.c): its own task execution role "aviary-<name>-execution" (image
 * pulls, logs and read access to exactly its spec.secrets) and its task role
 * "aviary-<name>-task" (cloudwatch:PutMetricData in the model-age namespace
 * only), and the migration away from the execution role every application
 * used to share. Worker threads; one reconcile's context. */
#ifndef AVIARY_RECONCILERS_ROLES_H
#define AVIARY_RECONCILERS_ROLES_H

#include <jansson.h>
#include <stddef.h>

#include "reconcilers/app.h"

/* IAM role names are at most 64 characters: "aviary-" + 28 + "-execution"
 * is 45. */
#define ROLES_NAME_MAX 65

/* The namespace the task role may publish metrics to (docs/dashboard.md,
 * model age). */
#define ROLES_METRICS_NAMESPACE "Aviary/Model"

/* Inline policy names on the application's roles. */
#define ROLES_SECRETS_POLICY "aviary-secrets"
#define ROLES_METRICS_POLICY "aviary-model-metrics"

/* The AWS managed policy on every execution role (ECR pulls, awslogs). */
#define ROLES_EXECUTION_POLICY_ARN                                                                 \
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"

/* Fills the application's role names ("aviary-<app>-execution",
 * "aviary-<app>-task"); each buffer holds ROLES_NAME_MAX bytes. */
void roles_names(const char *app, char execution[ROLES_NAME_MAX], char task[ROLES_NAME_MAX]);

/* Converges both roles of the application (created when missing, tagged
 * with its aviary.io tags; trust policy, attached managed policies and
 * inline policies brought back to exactly the wanted ones, drift reported)
 * and records "executionRoleArn" and "taskRoleArn" in res (the cluster
 * concern's resources; "(known after apply)" in plan mode before they
 * exist). Then removes the application's old grant "aviary-<name>-secrets"
 * from the shared role APP_EXECUTION_ROLE once none of its services runs a
 * task definition that uses the shared role. Returns APP_STEP_READY,
 * APP_STEP_WAITING (ctx->requeue_ms) or APP_STEP_FAILED (ctx->error). */
enum app_step roles_converge(struct app_ctx *ctx, json_t *res);

/* Deletes both roles when they carry this application's tags (inline
 * policies and attachments first) and its old grant on the shared role;
 * roles without the tags are left alone. Returns APP_STEP_READY when none
 * is left, or APP_STEP_FAILED. */
enum app_step roles_delete(struct app_ctx *ctx);

/* The inline policy documents the roles get, canonical (sorted keys):
 * read access to spec.secrets (NULL when there are none) and the metrics
 * grant. New references. */
json_t *roles_secrets_policy(const struct app_ctx *ctx);
json_t *roles_metrics_policy(void);

#endif
