/* The Application reconciler's shared context and the contract between its
 * concern files (network.c, registry.c, cluster.c, loadbalancer.c,
 * service.c, autoscaling.c, notifications.c, dashboard.c), each of which
 * converges (and deletes) one part of the stack with the same shape:
 * observe (describe, by tag or derived name), compare with the desired spec,
 * act, report. application.c runs them in dependency order. Worker threads;
 * a context belongs to one reconcile. */
#ifndef AVIARY_RECONCILERS_APP_H
#define AVIARY_RECONCILERS_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/error.h"
#include "reconcilers/reconciler.h"

/* Tags on every resource aviary creates (DESIGN.md). */
#define APP_TAG_MANAGED_BY       "aviary.io/managed-by"
#define APP_TAG_MANAGED_BY_VALUE "aviary"
#define APP_TAG_APPLICATION      "aviary.io/application"
#define APP_TAG_SLOT             "aviary.io/slot"
#define APP_TAG_REVISION         "aviary.io/revision"

/* The IAM task execution role that earlier versions shared between all
 * applications. Today each application has its own roles (roles.h); this
 * one is only cleared of the applications' old grants, never created or
 * deleted. */
#define APP_EXECUTION_ROLE "aviary-ecs-task-execution"

/* Names derived from metadata.name (a DNS label of at most 28 characters,
 * enforced by the CRD), all within AWS's limits and unique per application. */
struct app_names {
    char app[32];             /* metadata.name */
    char vpc[64];             /* Name tag of the VPC and its parts: "aviary-<name>" */
    char cluster[64];         /* ECS cluster "aviary-<name>" */
    char service[2][64];      /* ECS services "<name>-a", "<name>-b" (slots a and b) */
    char target_group[2][33]; /* "<name>-tga", "<name>-tgb" (<= 32) */
    char load_balancer[33];   /* "<name>-alb" (<= 32) */
    char sg_lb[64];           /* security group names "aviary-<name>-lb", "aviary-<name>-tasks" */
    char sg_tasks[64];
    char repository[64];   /* ECR "<name>" */
    char log_group[128];   /* "/aviary/<name>" */
    char task_family[64];  /* "aviary-<name>" */
    char topic[64];        /* SNS "aviary-<name>" */
    char dashboard[64];    /* CloudWatch "aviary-<name>" */
    char alarm_prefix[64]; /* CloudWatch alarms "aviary-<name>-..." */
};

/* Fills names from the application's name. */
void app_names_init(struct app_names *n, const char *app);

/* Slots: index 0 is "a", 1 is "b". */
const char *app_slot_name(int slot);

/* Outcome of one concern's step. */
enum app_step {
    APP_STEP_READY,   /* converged (or, for deletion, gone) */
    APP_STEP_WAITING, /* AWS is still getting there: come back (ctx->requeue_ms) */
    APP_STEP_FAILED,  /* ctx->error says what; ctx->terminal when retrying cannot help */
};

/* One reconcile of one Application. */
struct app_ctx {
    const struct reconcile_request *req;
    const json_t *spec;     /* defaulted spec (borrowed) */
    struct aws_client *aws; /* shared client */
    struct app_names names;
    json_t *status; /* the status document being updated (borrowed) */
    /* status.resources: what the concerns found or created, one object per
     * concern ("network": {"vpcId": ..., "publicSubnets": [...], ...}). A
     * cache for the next steps and for humans; the truth is AWS, looked up
     * by tag/name on every reconcile, so a crash between a create and the
     * status write never duplicates a resource. Borrowed from status. */
    json_t *resources;
    /* Plan mode (`aviary plan`): no mutating call is made; every write a
     * concern would make is recorded in plan (array of {"action":
     * "create"|"update"|"delete", "resource", "name", "changes": [...]}) and
     * app_write returns 1 as if skipped. */
    bool plan;
    json_t *plan_actions;
    int reads, writes; /* AWS calls made by this reconcile */
    /* service.c's DescribeServices output for both slots (owned, or NULL)
     * when nothing was written after it in this pass, so it still is AWS's
     * state; rollout.c takes it (sets NULL) instead of describing again.
     * Freed by app_ctx_clear. */
    json_t *services_observed;
    long requeue_ms;  /* smallest wait asked for by a WAITING step */
    bool terminal;    /* the failure cannot be fixed by retrying */
    char error[1024]; /* "resource: Service.Operation: Code: message" */
};

/* Creates the context for req (status borrowed). */
void app_ctx_init(struct app_ctx *ctx, const struct reconcile_request *req, json_t *status,
                  bool plan);
void app_ctx_clear(struct app_ctx *ctx);

/* ---- AWS calls (app_aws.c) ------------------------------------------------
 * Both take ownership of `in` (may be NULL). On success return 0 and *out
 * (caller decrefs; out may be NULL to discard). On failure return -1 and fill
 * ctx->error with "<resource>: <service>.<Operation>: <Code>: <message>",
 * set ctx->terminal for errors retrying cannot fix, and keep the AWS error in
 * *err when err is non-NULL (to test for codes such as NotFound). */
int app_read(struct app_ctx *ctx, const char *resource, const char *service, const char *operation,
             json_t *in, json_t **out, struct aws_error *err);

/* A mutating call. In plan mode nothing is sent: the action is recorded
 * (action "create"/"update"/"delete" from the operation's verb unless
 * plan_action is given) and 1 is returned with *out NULL. */
int app_write(struct app_ctx *ctx, const char *resource, const char *service, const char *operation,
              json_t *in, json_t **out, struct aws_error *err);

/* Records a plan entry or, outside plan mode, an event; `changes` (may be
 * NULL, stolen) is an array of "field: old -> new" strings. */
void app_note_change(struct app_ctx *ctx, const char *action, const char *resource,
                     const char *name, json_t *changes);

/* Records that drift was found and reverted (an event, "DriftCorrected"). */
void app_note_drift(struct app_ctx *ctx, const char *resource, const char *what);

/* Asks to be re-queued after ms (keeps the smallest request). */
void app_wait(struct app_ctx *ctx, long ms);

/* Sets ctx->error printf-style (and terminal) without an AWS call. */
void app_fail(struct app_ctx *ctx, bool terminal, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- tags (app_aws.c) -----------------------------------------------------
 * The aviary tags of this application, in the shape each API wants; extra
 * (NULL-terminated key, value pairs) are appended. New references. */
json_t *app_tags_list(const struct app_ctx *ctx, const char *key_name, const char *value_name, ...)
    __attribute__((sentinel));
json_t *app_tags_map(const struct app_ctx *ctx, ...) __attribute__((sentinel));

/* True when a tag list ([{Key,Value}] or [{key,value}]) or map carries
 * aviary.io/managed-by=aviary and aviary.io/application=<this app>. Resources
 * without them are never modified or deleted. */
bool app_tags_owned(const struct app_ctx *ctx, const json_t *tags);

/* Value of tag `key` in a tag list or map, or NULL. */
const char *app_tag_value(const json_t *tags, const char *key);

/* EC2 Filters for this application's resources (tag filters), plus extra
 * name/value filters (NULL-terminated name, value pairs). New reference. */
json_t *app_ec2_filters(const struct app_ctx *ctx, ...) __attribute__((sentinel));

/* ---- spec helpers ----------------------------------------------------------- */

/* Value at a dotted path of the spec ("scaling.min"), or NULL. */
const json_t *app_spec(const struct app_ctx *ctx, const char *path);
json_int_t app_spec_int(const struct app_ctx *ctx, const char *path, json_int_t fallback);
const char *app_spec_str(const struct app_ctx *ctx, const char *path, const char *fallback);
bool app_spec_bool(const struct app_ctx *ctx, const char *path, bool fallback);
/* A duration field in seconds (rounded up), or fallback. */
long app_spec_seconds(const struct app_ctx *ctx, const char *path, long fallback);

/* status.resources.<concern>: created on first use. Borrowed. */
json_t *app_resources(struct app_ctx *ctx, const char *concern);

/* ---- what each concern records in app_resources(ctx, "<concern>") ----------
 * Later concerns read these; the keys are a contract between the files.
 *  network:       vpcId, publicSubnets [2], privateSubnets [2], lbSecurityGroup,
 *                 tasksSecurityGroup, taskSubnets [2] (private with a NAT gateway,
 *                 else public), assignPublicIp (bool), natGatewayId (or absent),
 *                 managedVpc (false when spec.network.vpcId names an existing VPC),
 *                 tasksPort, internetGatewayId, routeTables {public, private},
 *                 elasticIpAllocationId, natRoute, lbTestPort (network.c's own
 *                 bookkeeping)
 *  registry:      repositoryName, repositoryArn, repositoryUri (also status.registryUri)
 *  cluster:       clusterName, clusterArn, executionRoleArn, taskRoleArn (the
 *                 application's own roles, roles.h), logGroup; roles.c's
 *                 bookkeeping: executionRoleArnPolicy, taskRoleArnPolicy (the
 *                 inline documents last written), legacyGrant,
 *                 legacyGrantCheckedAt
 *  loadbalancer:  loadBalancerArn, dnsName, lbDimension ("app/NAME/ID"),
 *                 httpListenerArn, httpsListenerArn (or absent),
 *                 targetGroupArns [2] (slot a, slot b), tgDimensions [2]
 *                 ("targetgroup/NAME/ID"); also status.endpoint ("http(s)://DNS")
 *  service:       taskDefinitionArn (of the current revision), services [2]
 *                 ({name, arn, taskDefinition, desiredCount, runningCount}),
 *                 stableSlot ("a"|"b"); status.observedRevision once the stable
 *                 slot runs the current revision
 *  autoscaling:   resourceId ("service/CLUSTER/SERVICE"), policyNames [...]
 *  notifications: topicArn, alarmNames [...]
 *  dashboard:     dashboardName; also status.dashboardUrl
 * status.rollout (owned by service.c until the rollout logic exists):
 *   {strategy, stableRevision, stableSlot, canaryRevision, weight, step, phase}
 *   weight is the canary's share (0 outside a rollout); loadbalancer.c sets the
 *   listener's forward weights from stableSlot and weight. */

/* ---- the concerns, in dependency order -------------------------------------
 * converge: make AWS match the spec (creating what is missing, fixing drift,
 * recording ids in app_resources). delete: remove what this application
 * created, in reverse, READY when nothing tagged for it remains. */
enum app_step network_converge(struct app_ctx *ctx);
enum app_step network_delete(struct app_ctx *ctx);
enum app_step registry_converge(struct app_ctx *ctx);
enum app_step registry_delete(struct app_ctx *ctx);
enum app_step cluster_converge(struct app_ctx *ctx); /* IAM roles, log group, ECS cluster */
enum app_step cluster_delete(struct app_ctx *ctx);
enum app_step loadbalancer_converge(struct app_ctx *ctx);
enum app_step loadbalancer_delete(struct app_ctx *ctx);
enum app_step service_converge(struct app_ctx *ctx); /* task definitions, slots a and b */
enum app_step service_delete(struct app_ctx *ctx);
enum app_step autoscaling_converge(struct app_ctx *ctx);
enum app_step autoscaling_delete(struct app_ctx *ctx);
enum app_step notifications_converge(struct app_ctx *ctx); /* SNS topic, e-mail, alarms */
enum app_step notifications_delete(struct app_ctx *ctx);
enum app_step dashboard_converge(struct app_ctx *ctx);
enum app_step dashboard_delete(struct app_ctx *ctx);

/* The Application reconciler (application.c). */
extern const struct reconciler application_reconciler;

/* One converge pass for `aviary plan` (plan=true) and `aviary apply`. */
void application_reconcile(const struct reconcile_request *req, json_t *status,
                           struct reconcile_result *res, bool plan, json_t *plan_actions);

#endif
