/* The "bucket" concern of a TrainingEnvironment: a private (all public
 * access blocked), encrypted (SSE-S3, or SSE-KMS with spec.kmsKeyId) and
 * versioned S3 bucket tagged for the environment; deleted with every
 * version only when spec.deleteData is true. Worker threads; one
 * reconcile's context.
 *
 * The name is "aviary-<name>-" plus 12 hex digits of SHA-256 over
 * "<account>/<region>/<name>": globally unique in practice, yet the same on
 * every reconcile, so a lost status or a crash between CreateBucket and the
 * status write never creates a second bucket. A bucket of that name without
 * any tags is taken as ours from an interrupted creation (only this account
 * can own it, HeadBucket answers 403 otherwise) and gets its tags; one
 * tagged for something else is never touched. Settings changed by hand are
 * reverted (public access block, encryption, versioning, our lifecycle rule
 * aborting incomplete multipart uploads after a day, our tags; foreign tags
 * and lifecycle rules are kept). */
#include "reconcilers/training.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "aws/client.h"
#include "reconcilers/status.h"

/* Object versions deleted per reconcile before re-queueing (deleteData). */
#define BUCKET_DELETE_BATCH 2000
#define BUCKET_WAIT_MS      2000

/* Lifecycle actions other than ours; a rule with any of them is not ours as
 * aviary writes it. */
static const char *const lifecycle_other_actions[] = {
    "Expiration", "Transitions", "NoncurrentVersionTransitions", "NoncurrentVersionExpiration"};

static const char *const pab_fields[] = {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                         "RestrictPublicBuckets"};

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static void set_bucket(struct train_ctx *ctx, const char *name)
{
    snprintf(ctx->names.bucket, sizeof(ctx->names.bucket), "%.63s", name);
    snprintf(ctx->bucket_arn, sizeof(ctx->bucket_arn), "arn:%.16s:s3:::%.63s", ctx->names.partition,
             name);
}

/* True when s is "aviary-<env>-" followed by exactly 12 lower-case hex digits. */
static bool our_name(const struct train_ctx *ctx, const char *s)
{
    char prefix[64];
    size_t pl;

    snprintf(prefix, sizeof(prefix), "aviary-%s-", ctx->names.env);
    pl = strlen(prefix);
    if (s == NULL || strncmp(s, prefix, pl) != 0 || strlen(s) != pl + 12)
        return false;
    for (size_t i = pl; i < pl + 12; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int training_bucket_name(struct train_ctx *ctx)
{
    const char *cached = json_string_value(json_object_get(ctx->app.status, "bucket"));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char seed[160], name[96], digest[13];
    json_t *id = NULL;
    int n;

    if (ctx->names.bucket[0])
        return 0;
    if (our_name(ctx, cached)) {
        set_bucket(ctx, cached);
        return 0;
    }
    if (app_read(&ctx->app, "bucket name", "sts", "GetCallerIdentity", NULL, &id, NULL) != 0)
        return -1;
    n = snprintf(seed, sizeof(seed), "%s/%s/%s", train_str(id, "Account"), ctx->region,
                 ctx->names.env);
    json_decref(id);
    if (n < 0 || (size_t)n >= sizeof(seed) ||
        EVP_Digest(seed, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 6) {
        app_fail(&ctx->app, false, "bucket name: cannot hash the account, region and name");
        return -1;
    }
    for (int i = 0; i < 6; i++)
        snprintf(digest + 2 * i, 3, "%02x", md[i]);
    snprintf(name, sizeof(name), "aviary-%s-%s", ctx->names.env, digest);
    set_bucket(ctx, name);
    return 0;
}

/* HeadBucket: 1 exists (ours to inspect), 0 absent, -1 failed (another
 * account's or another region's bucket is a terminal error). */
static int bucket_exists(struct train_ctx *ctx)
{
    struct aws_error err;
    const char *b = ctx->names.bucket;

    if (app_read(&ctx->app, b, "s3", "HeadBucket", json_pack("{s:s}", "Bucket", b), NULL, &err) ==
        0)
        return 1;
    if (err.http_status == 404 || train_is_code(&err, "NoSuchBucket")) {
        train_forget_error(ctx);
        return 0;
    }
    if (err.http_status == 403)
        app_fail(&ctx->app, true,
                 "%s: the bucket name is taken by another AWS account (HeadBucket: 403); rename "
                 "the environment",
                 b);
    else if (err.http_status == 301)
        app_fail(&ctx->app, true, "%s: the bucket exists in another region than %s", b,
                 ctx->region);
    return -1;
}

/* The bucket's tags: 0 with *tags (new reference, [] when none), or -1. */
static int get_tags(struct train_ctx *ctx, json_t **tags)
{
    struct aws_error err;
    json_t *out = NULL;

    *tags = NULL;
    if (app_read(&ctx->app, ctx->names.bucket, "s3", "GetBucketTagging",
                 json_pack("{s:s}", "Bucket", ctx->names.bucket), &out, &err) != 0) {
        if (!train_is_code(&err, "NoSuchTagSet"))
            return -1;
        train_forget_error(ctx);
        *tags = json_array();
        return 0;
    }
    *tags = json_incref(json_object_get(out, "TagSet"));
    if (!json_is_array(*tags)) {
        json_decref(*tags);
        *tags = json_array();
    }
    json_decref(out);
    return 0;
}

/* Our tags plus every tag that is not one of ours (kept as it is). */
static json_t *merged_tags(const struct train_ctx *ctx, const json_t *current)
{
    json_t *list = train_tags_list(ctx, "Key", "Value");
    const json_t *t;
    size_t i;

    json_array_foreach(current, i, t)
    {
        const char *k = train_str(t, "Key");
        if (strcmp(k, APP_TAG_MANAGED_BY) != 0 && strcmp(k, TRAIN_TAG_TRAINING) != 0)
            json_array_append(list, (json_t *)t);
    }
    return list;
}

static int converge_tags(struct train_ctx *ctx, bool fresh)
{
    const char *b = ctx->names.bucket;
    json_t *tags = NULL;
    int rc = -1;

    if (!fresh) {
        if (get_tags(ctx, &tags) != 0)
            return -1;
        if (train_tags_owned(ctx, tags)) {
            rc = 0;
            goto out;
        }
        if (app_tag_value(tags, APP_TAG_MANAGED_BY) != NULL ||
            app_tag_value(tags, TRAIN_TAG_TRAINING) != NULL) {
            app_fail(&ctx->app, true,
                     "%s: the bucket is tagged for another owner (%s=%s, %s=%s); aviary does not "
                     "change it",
                     b, APP_TAG_MANAGED_BY, or_empty(app_tag_value(tags, APP_TAG_MANAGED_BY)),
                     TRAIN_TAG_TRAINING, or_empty(app_tag_value(tags, TRAIN_TAG_TRAINING)));
            goto out;
        }
        /* No aviary tags: the remains of an interrupted creation. */
        train_note_drift(ctx, "s3:bucket-tagging", b, "aviary tags missing");
    }
    if (app_write(
            &ctx->app, b, "s3", "PutBucketTagging",
            json_pack("{s:s, s:{s:o}}", "Bucket", b, "Tagging", "TagSet", merged_tags(ctx, tags)),
            NULL, NULL) < 0)
        goto out;
    rc = 0;
out:
    json_decref(tags);
    return rc;
}

static int converge_public_access(struct train_ctx *ctx, bool fresh)
{
    const char *b = ctx->names.bucket;
    struct aws_error err;
    json_t *out = NULL, *cfg;
    bool blocked = false;

    if (!fresh) {
        if (app_read(&ctx->app, b, "s3", "GetPublicAccessBlock", json_pack("{s:s}", "Bucket", b),
                     &out, &err) != 0) {
            if (!train_is_code(&err, "NoSuchPublicAccessBlockConfiguration"))
                return -1;
            train_forget_error(ctx);
        }
        cfg = json_object_get(out, "PublicAccessBlockConfiguration");
        blocked = cfg != NULL;
        for (size_t i = 0; i < 4; i++)
            blocked = blocked && json_is_true(json_object_get(cfg, pab_fields[i]));
        json_decref(out);
        if (blocked)
            return 0;
        train_note_drift(ctx, "s3:public-access-block", b, "public access no longer fully blocked");
    }
    return app_write(&ctx->app, b, "s3", "PutPublicAccessBlock",
                     json_pack("{s:s, s:{s:b, s:b, s:b, s:b}}", "Bucket", b,
                               "PublicAccessBlockConfiguration", pab_fields[0], 1, pab_fields[1], 1,
                               pab_fields[2], 1, pab_fields[3], 1),
                     NULL, NULL) < 0
               ? -1
               : 0;
}

static int converge_encryption(struct train_ctx *ctx, bool fresh)
{
    const char *b = ctx->names.bucket;
    const char *kms = app_spec_str(&ctx->app, "kmsKeyId", NULL);
    const char *want = kms != NULL ? "aws:kms" : "AES256";
    struct aws_error err;
    json_t *out = NULL, *rule, *in;

    if (!fresh) {
        const json_t *d;
        bool same;

        if (app_read(&ctx->app, b, "s3", "GetBucketEncryption", json_pack("{s:s}", "Bucket", b),
                     &out, &err) != 0) {
            if (!train_is_code(&err, "ServerSideEncryptionConfigurationNotFoundError"))
                return -1;
            train_forget_error(ctx);
        }
        d = json_object_get(
            json_array_get(
                json_object_get(json_object_get(out, "ServerSideEncryptionConfiguration"), "Rules"),
                0),
            "ApplyServerSideEncryptionByDefault");
        same = strcmp(train_str(d, "SSEAlgorithm"), want) == 0 &&
               strcmp(train_str(d, "KMSMasterKeyID"), kms ? kms : "") == 0;
        json_decref(out);
        if (same)
            return 0;
        app_note_change(&ctx->app, "update", "s3:bucket-encryption", b,
                        json_pack("[s+]", "algorithm: ", want));
    }
    rule = json_pack("{s:{s:s}, s:b}", "ApplyServerSideEncryptionByDefault", "SSEAlgorithm", want,
                     "BucketKeyEnabled", kms != NULL);
    if (kms != NULL)
        json_object_set_new(json_object_get(rule, "ApplyServerSideEncryptionByDefault"),
                            "KMSMasterKeyID", json_string(kms));
    in = json_pack("{s:s, s:{s:[o]}}", "Bucket", b, "ServerSideEncryptionConfiguration", "Rules",
                   rule);
    return app_write(&ctx->app, b, "s3", "PutBucketEncryption", in, NULL, NULL) < 0 ? -1 : 0;
}

static int converge_versioning(struct train_ctx *ctx, bool fresh)
{
    const char *b = ctx->names.bucket;
    json_t *out = NULL;

    if (!fresh) {
        bool enabled;

        if (app_read(&ctx->app, b, "s3", "GetBucketVersioning", json_pack("{s:s}", "Bucket", b),
                     &out, NULL) != 0)
            return -1;
        enabled = strcmp(train_str(out, "Status"), "Enabled") == 0;
        json_decref(out);
        if (enabled)
            return 0;
        train_note_drift(ctx, "s3:bucket-versioning", b, "versioning not enabled");
    }
    return app_write(&ctx->app, b, "s3", "PutBucketVersioning",
                     json_pack("{s:s, s:{s:s}}", "Bucket", b, "VersioningConfiguration", "Status",
                               "Enabled"),
                     NULL, NULL) < 0
               ? -1
               : 0;
}

static json_t *abort_rule(void)
{
    return json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "ID", TRAIN_LIFECYCLE_RULE_ID, "Status",
                     "Enabled", "Filter", "Prefix", "", "AbortIncompleteMultipartUpload",
                     "DaysAfterInitiation", TRAIN_ABORT_AFTER_DAYS);
}

/* What is wrong with our rule as found ("" when nothing). */
static void rule_differences(const json_t *rule, char *out, size_t size)
{
    const json_t *filter = json_object_get(rule, "Filter");
    const json_t *days = json_object_get(json_object_get(rule, "AbortIncompleteMultipartUpload"),
                                         "DaysAfterInitiation");
    bool whole_bucket;

    out[0] = '\0';
    /* The whole bucket: Filter {Prefix: ""} or {} (or the legacy empty Prefix). */
    whole_bucket = json_object_size(filter) == 0 ||
                   (json_object_size(filter) == 1 && train_str(filter, "Prefix")[0] == '\0' &&
                    json_object_get(filter, "Prefix") != NULL);
    if (filter == NULL && train_str(rule, "Prefix")[0] != '\0')
        whole_bucket = false;
    if (strcmp(train_str(rule, "Status"), "Enabled") != 0)
        snprintf(out, size, "Status: %s -> Enabled", train_str(rule, "Status"));
    else if (json_integer_value(days) != TRAIN_ABORT_AFTER_DAYS)
        snprintf(out, size, "DaysAfterInitiation: %lld -> %d", (long long)json_integer_value(days),
                 TRAIN_ABORT_AFTER_DAYS);
    else if (!whole_bucket)
        snprintf(out, size, "filter: -> the whole bucket");
    for (size_t i = 0;
         out[0] == '\0' && i < sizeof(lifecycle_other_actions) / sizeof(lifecycle_other_actions[0]);
         i++)
        if (json_object_get(rule, lifecycle_other_actions[i]) != NULL)
            snprintf(out, size, "%s: removed (not aviary's)", lifecycle_other_actions[i]);
}

/* The lifecycle rule that makes S3 abort incomplete multipart uploads a day
 * after they started (an upload interrupted by a crash would otherwise be
 * billed for ever). Other rules of the bucket are kept as they are:
 * PutBucketLifecycleConfiguration replaces the whole configuration, so it
 * is sent with them. */
static int converge_lifecycle(struct train_ctx *ctx, bool fresh)
{
    const char *b = ctx->names.bucket;
    struct aws_error err;
    json_t *out = NULL, *rules = json_array();
    const json_t *r, *ours = NULL;
    char diff[160] = "";
    size_t i;
    int rc = -1;

    if (!fresh) {
        if (app_read(&ctx->app, b, "s3", "GetBucketLifecycleConfiguration",
                     json_pack("{s:s}", "Bucket", b), &out, &err) != 0) {
            if (!train_is_code(&err, "NoSuchLifecycleConfiguration"))
                goto out;
            train_forget_error(ctx);
        }
        json_array_foreach(json_object_get(out, "Rules"), i, r)
        {
            if (strcmp(train_str(r, "ID"), TRAIN_LIFECYCLE_RULE_ID) == 0)
                ours = r;
            else
                json_array_append(rules, (json_t *)r);
        }
        if (ours != NULL) {
            rule_differences(ours, diff, sizeof(diff));
            if (diff[0] == '\0') {
                rc = 0;
                goto out;
            }
            train_note_drift(ctx, "s3:bucket-lifecycle", b, diff);
        } else {
            app_note_change(&ctx->app, "update", "s3:bucket-lifecycle", b,
                            json_pack("[s]", "rule " TRAIN_LIFECYCLE_RULE_ID
                                             ": abort incomplete multipart uploads after 1 day"));
        }
    }
    json_array_append_new(rules, abort_rule());
    if (app_write(
            &ctx->app, b, "s3", "PutBucketLifecycleConfiguration",
            json_pack("{s:s, s:{s:O}}", "Bucket", b, "LifecycleConfiguration", "Rules", rules),
            NULL, NULL) < 0)
        goto out;
    rc = 0;
out:
    json_decref(rules);
    json_decref(out);
    return rc;
}

static int create_bucket(struct train_ctx *ctx)
{
    const char *b = ctx->names.bucket;
    struct aws_error err;
    json_t *in = json_pack("{s:s}", "Bucket", b);

    /* us-east-1 takes no location constraint; every other region needs it. */
    if (strcmp(ctx->region, "us-east-1") != 0)
        json_object_set_new(in, "CreateBucketConfiguration",
                            json_pack("{s:s}", "LocationConstraint", ctx->region));
    app_note_change(&ctx->app, "create", "s3:bucket", b,
                    json_pack("[s, s, s, s]", "public access: blocked",
                              app_spec_str(&ctx->app, "kmsKeyId", NULL) ? "encryption: aws:kms"
                                                                        : "encryption: AES256",
                              "versioning: Enabled",
                              "lifecycle: abort incomplete multipart uploads after 1 day"));
    if (app_write(&ctx->app, b, "s3", "CreateBucket", in, NULL, &err) >= 0) {
        ctx->bucket_planned = ctx->app.plan;
        return 0;
    }
    if (train_is_code(&err, "BucketAlreadyOwnedByYou")) {
        train_forget_error(ctx);
        return 0;
    }
    if (train_is_code(&err, "BucketAlreadyExists"))
        ctx->app.terminal = true;
    return -1;
}

enum app_step training_bucket_converge(struct train_ctx *ctx)
{
    json_t *res;
    bool fresh = false;
    int exists;

    if (training_bucket_name(ctx) != 0)
        return APP_STEP_FAILED;
    exists = bucket_exists(ctx);
    if (exists < 0)
        return APP_STEP_FAILED;
    if (exists == 0) {
        if (create_bucket(ctx) != 0)
            return APP_STEP_FAILED;
        fresh = true;
    }
    /* Tags first: ownership is settled before any setting is changed. */
    if (converge_tags(ctx, fresh) != 0 || converge_public_access(ctx, fresh) != 0 ||
        converge_encryption(ctx, fresh) != 0 || converge_versioning(ctx, fresh) != 0 ||
        converge_lifecycle(ctx, fresh) != 0)
        return APP_STEP_FAILED;
    json_object_set_new(ctx->app.status, "bucket", json_string(ctx->names.bucket));
    res = app_resources(&ctx->app, "bucket");
    json_object_set_new(res, "name", json_string(ctx->names.bucket));
    json_object_set_new(res, "arn", json_string(ctx->bucket_arn));
    json_object_set_new(res, "region", json_string(ctx->region));
    json_object_set_new(
        res, "encryption",
        json_string(app_spec_str(&ctx->app, "kmsKeyId", NULL) ? "aws:kms" : "AES256"));
    json_object_set_new(res, "versioning", json_string("Enabled"));
    json_object_set_new(res, "publicAccessBlocked", json_true());
    json_object_set_new(res, "abortIncompleteUploadsAfterDays",
                        json_integer(TRAIN_ABORT_AFTER_DAYS));
    return APP_STEP_READY;
}

/* ---- deletion (deleteData: true) --------------------------------------------- */

/* Deletes the versions and delete markers of one listing page. Returns the
 * number deleted, or -1. */
static int delete_page(struct train_ctx *ctx, const json_t *page)
{
    static const char *const lists[] = {"Versions", "DeleteMarkers"};
    const json_t *v;
    struct aws_error err;
    size_t i;
    int n = 0;

    for (size_t l = 0; l < 2; l++) {
        json_array_foreach(json_object_get(page, lists[l]), i, v)
        {
            if (app_write(&ctx->app, ctx->names.bucket, "s3", "DeleteObject",
                          json_pack("{s:s, s:s, s:s}", "Bucket", ctx->names.bucket, "Key",
                                    train_str(v, "Key"), "VersionId", train_str(v, "VersionId")),
                          NULL, &err) < 0) {
                if (!train_is_code(&err, "NoSuchVersion") && !train_is_code(&err, "NoSuchKey"))
                    return -1;
                train_forget_error(ctx);
            }
            n++;
        }
    }
    return n;
}

enum app_step training_bucket_delete(struct train_ctx *ctx)
{
    const char *b;
    json_t *tags = NULL, *page = NULL;
    struct aws_error err;
    enum app_step step = APP_STEP_FAILED;
    int exists, deleted = 0;

    if (training_bucket_name(ctx) != 0)
        return APP_STEP_FAILED;
    b = ctx->names.bucket;
    exists = bucket_exists(ctx);
    if (exists < 0)
        return APP_STEP_FAILED;
    if (exists == 0)
        goto gone;
    if (get_tags(ctx, &tags) != 0)
        goto out;
    if (!train_tags_owned(ctx, tags)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "bucket %s does not carry this environment's tags: retained", b);
        status_add_event(ctx->app.status, "Warning", "DataRetained", msg, ctx->app.req->now);
        goto gone;
    }
    /* List from the start each time: what was deleted is no longer listed. */
    while (deleted < BUCKET_DELETE_BATCH) {
        int n;
        json_decref(page);
        page = NULL;
        if (app_read(&ctx->app, b, "s3", "ListObjectVersions",
                     json_pack("{s:s, s:i}", "Bucket", b, "MaxKeys", 1000), &page, NULL) != 0)
            goto out;
        n = delete_page(ctx, page);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        deleted += n;
    }
    if (deleted >= BUCKET_DELETE_BATCH) {
        app_wait(&ctx->app, BUCKET_WAIT_MS);
        step = APP_STEP_WAITING;
        goto out;
    }
    app_note_change(&ctx->app, "delete", "s3:bucket", b, NULL);
    if (app_write(&ctx->app, b, "s3", "DeleteBucket", json_pack("{s:s}", "Bucket", b), NULL, &err) <
        0) {
        if (train_is_code(&err, "BucketNotEmpty")) { /* written to while we deleted */
            train_forget_error(ctx);
            app_wait(&ctx->app, BUCKET_WAIT_MS);
            step = APP_STEP_WAITING;
        } else if (train_is_code(&err, "NoSuchBucket")) {
            train_forget_error(ctx);
            goto gone;
        }
        goto out;
    }
gone:
    json_object_del(ctx->app.status, "bucket");
    json_object_del(ctx->app.resources, "bucket");
    step = APP_STEP_READY;
out:
    json_decref(page);
    json_decref(tags);
    return step;
}
