/* The TrainingEnvironment reconciler's shared context and the contract
 * between its concern files: training_bucket.c (the private, encrypted,
 * versioned bucket), training_upload.c (the training data under data/),
 * training_role.c (the notebook's IAM role, limited to the bucket),
 * training_network.c (VPC, public subnet, security group) and
 * training_notebook.c (the SageMaker notebook instance); training.c runs
 * them in dependency order and turns their outcome into the status. Worker
 * threads (and the CLI's main thread for `aviary plan` / `apply`); a
 * context belongs to one reconcile.
 *
 * AWS calls, errors, events and waits reuse the Application helpers of
 * app.h through the embedded struct app_ctx (its Application names and tags
 * are not used here: training resources carry aviary.io/training=<name>). */
#ifndef AVIARY_RECONCILERS_TRAINING_H
#define AVIARY_RECONCILERS_TRAINING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "aws/error.h"
#include "reconcilers/app.h"
#include "reconcilers/reconciler.h"

#define TRAIN_TAG_TRAINING "aviary.io/training"

/* Data files larger than this are uploaded in parts of TRAIN_PART_SIZE. */
#define TRAIN_MULTIPART_THRESHOLD (64u * 1024u * 1024u)
#define TRAIN_PART_SIZE           (16u * 1024u * 1024u)

/* The bucket's lifecycle rule aborting incomplete multipart uploads (S3
 * bills their parts until they are aborted): its ID and age in days. */
#define TRAIN_LIFECYCLE_RULE_ID "aviary-abort-incomplete-multipart-uploads"
#define TRAIN_ABORT_AFTER_DAYS  1

/* aviary's own uploads left by a crash are looked for once per
 * TRAIN_UPLOADS_CHECK_S (ListMultipartUploads) and aborted when nothing has
 * been added to them (initiation, last part) for TRAIN_ORPHAN_AGE_S: a live
 * upload sends a part at least every few minutes (the payload timeout is
 * 5 minutes). */
#define TRAIN_UPLOADS_CHECK_S 3600
#define TRAIN_ORPHAN_AGE_S    3600

/* Ids of resources a plan would create (plan mode only). */
#define TRAIN_PLACEHOLDER "(known after apply)"

/* The role's inline policy (access to the bucket only). */
#define TRAIN_POLICY_NAME "aviary-bucket-access"

/* Names derived from metadata.name (a DNS label of at most 40 characters,
 * enforced by the CRD), within AWS's limits. */
struct train_names {
    char env[48];       /* metadata.name */
    char bucket[64];    /* "aviary-<name>-<12 hex>", set by training_bucket_name */
    char notebook[64];  /* SageMaker notebook instance "<name>" */
    char role[72];      /* IAM role "aviary-<name>-notebook" (<= 64) */
    char vpc[64];       /* Name tag of the VPC and its parts: "aviary-<name>" */
    char subnet[80];    /* "aviary-<name>-public" */
    char table[80];     /* route table "aviary-<name>-public" */
    char igw[80];       /* "aviary-<name>-igw" */
    char sg[80];        /* security group "aviary-<name>-notebook" */
    char partition[16]; /* "aws", "aws-cn", "aws-us-gov" (from the region) */
};

/* One reconcile of one TrainingEnvironment. */
struct train_ctx {
    struct app_ctx app; /* calls, errors, events, waits, status (see app.h) */
    struct train_names names;
    const char *region;
    /* Multipart settings (production: the TRAIN_ defaults; tests lower
     * them to keep the emulator's in-memory parts small). */
    size_t multipart_threshold;
    size_t part_size;
    /* Filled by the concerns for the later ones. */
    char bucket_arn[96];
    char role_arn[160];
    char subnet_id[64];
    char sg_id[64];
    /* Plan mode: the bucket does not exist yet (nothing in it to read). */
    bool bucket_planned;
};

/* Prepares ctx for req (status borrowed); plan: no mutating call is made,
 * each is recorded in ctx->app.plan_actions (see app.h). Returns 0, or -1
 * with ctx->app.error set (not enough information to name the resources). */
int train_ctx_init(struct train_ctx *ctx, const struct reconcile_request *req, json_t *status,
                   bool plan);
void train_ctx_clear(struct train_ctx *ctx);

/* ---- helpers (training.c) ------------------------------------------------- */

/* The aviary tags of this environment as [{key_name: K, value_name: V}]. New reference. */
json_t *train_tags_list(const struct train_ctx *ctx, const char *key_name, const char *value_name);

/* True when tags (list or map) carry managed-by=aviary and training=<name>. */
bool train_tags_owned(const struct train_ctx *ctx, const json_t *tags);

/* EC2 Filters selecting this environment's resources, plus optional extra
 * NULL-terminated name/value pairs. New reference. */
json_t *train_ec2_filters(const struct train_ctx *ctx, ...) __attribute__((sentinel));

/* A mutating call with a raw body (S3 PutObject/UploadPart). Counted as a
 * write; errors reported as app_write's (ctx->app.error, terminal). Returns
 * 0 and *out (caller decrefs; may be NULL), or -1. */
int train_write_payload(struct train_ctx *ctx, const char *resource, const char *operation,
                        json_t *in, const void *data, size_t len, json_t **out,
                        struct aws_error *err);

/* Records drift of `name` (a `kind` such as "s3:bucket-versioning") that
 * this pass reverts: a DriftCorrected event, or in plan mode an "update"
 * entry naming what differs. */
void train_note_drift(struct train_ctx *ctx, const char *kind, const char *name, const char *what);

/* S3 HeadObject of bucket/key (a read; AccessDenied is terminal). Returns 0 and *out (caller decrefs), or -1 with ctx->app.error and *err
 * (when not NULL). */
int train_head_object(struct train_ctx *ctx, const char *resource, const char *bucket,
                      const char *key, json_t **out, struct aws_error *err);

/* True when err is the AWS error `code`. */
bool train_is_code(const struct aws_error *err, const char *code);

/* Forgets an error the caller handles (NotFound and the like). */
void train_forget_error(struct train_ctx *ctx);

/* The string member key of obj, or "". */
const char *train_str(const json_t *obj, const char *key);

/* ---- concerns --------------------------------------------------------------
 * Each returns APP_STEP_READY, APP_STEP_WAITING (ctx->app.requeue_ms) or
 * APP_STEP_FAILED (ctx->app.error, ctx->app.terminal). */

/* Computes names.bucket (and bucket_arn) from the account (sts
 * GetCallerIdentity), region and name: "aviary-<name>-" + the first 12 hex
 * digits of SHA-256("<account>/<region>/<name>"), so a lost status never
 * names a second bucket. Uses status.bucket when it is there. Returns 0 or -1. */
int training_bucket_name(struct train_ctx *ctx);

/* Bucket: exists (created), owned, public access blocked, default
 * encryption, versioning, tags. status.bucket. */
enum app_step training_bucket_converge(struct train_ctx *ctx);
/* With spec.deleteData: every version and delete marker, then the bucket.
 * Without it nothing (the caller reports the retained bucket). */
enum app_step training_bucket_delete(struct train_ctx *ctx);

/* spec.data uploaded under data/; status.objects. */
enum app_step training_upload_converge(struct train_ctx *ctx);

/* IAM role trusting sagemaker.amazonaws.com with access to the bucket only. */
enum app_step training_role_converge(struct train_ctx *ctx);
enum app_step training_role_delete(struct train_ctx *ctx);

/* VPC, public subnet, internet gateway, route table, security group (or
 * only the security group in the existing VPC of spec.network.vpcId). */
enum app_step training_network_converge(struct train_ctx *ctx);
enum app_step training_network_delete(struct train_ctx *ctx);

/* The notebook instance: created, of the spec's type and volume, running or
 * stopped per spec.running; status.notebook and status.notebookUrl. */
enum app_step training_notebook_converge(struct train_ctx *ctx);
/* Stopped, then deleted; READY once it is gone. */
enum app_step training_notebook_delete(struct train_ctx *ctx);

/* The TrainingEnvironment reconciler (training.c). */
extern const struct reconciler training_reconciler;

/* One converge pass for `aviary plan` (plan=true: read calls only, every
 * write recorded and appended to plan_actions, which must be an array) and
 * `aviary apply` (plan=false, plan_actions NULL). status is updated as by the
 * daemon's reconcile (in plan mode it is a scratch document). */
void training_reconcile_once(const struct reconcile_request *req, json_t *status,
                             struct reconcile_result *res, bool plan, json_t *plan_actions);

#endif
