/* Unit tests of the TrainingEnvironment reconciler (reconcilers/training*.c)
 * against the local AWS emulator: bucket settings and tags, quiet second
 * passes (also after a lost status), upload / skip / new version, multipart
 * uploads (and their abort), server-side copies of s3:// sources, the
 * notebook's lifecycle (stop, start, type change), deletion with and
 * without deleteData, resources of other owners, the lifecycle rule
 * aborting incomplete uploads, uploads left by a crash, plan mode. The emulator's clock is
 * advanced by each requested wait instead of sleeping. Test main thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "reconcilers/status.h"
#include "reconcilers/training.h"
#include "support/emulator.h"

#define MAX_PASSES 60

static struct test_emulator emu;

struct fx {
    char name[48];
    char dir[64];
    json_t *spec;
    json_t *status;
    struct reconcile_request req;
    struct reconcile_result res;
};

static int group_setup(void **state)
{
    (void)state;
    return test_emulator_start(&emu, 0.01);
}

static int group_teardown(void **state)
{
    (void)state;
    test_emulator_stop(&emu);
    return 0;
}

static void write_file(struct fx *f, const char *rel, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* A fixture for environment `name` with spec (JSON text) and a data
 * directory holding data/train.csv. */
static struct fx *fx_new(const char *name, const char *spec)
{
    struct fx *f = calloc(1, sizeof(*f));
    char sub[128];

    assert_non_null(f);
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aviary-train-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(sub, sizeof(sub), "%s/data", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(f, "data/train.csv", "a,b\n1,2\n3,4\n");
    f->spec = json_loads(spec, 0, NULL);
    assert_non_null(f->spec);
    f->status = status_new("TrainingEnvironment", name);
    f->req.kind = "TrainingEnvironment";
    f->req.name = f->name;
    f->req.spec = f->spec;
    f->req.revision = "r1";
    f->req.generation = 1;
    f->req.manifest_dir = f->dir;
    f->req.reconcile_id = "test";
    f->req.aws = emu.client;
    return f;
}

static void fx_free(struct fx *f)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    json_decref(f->spec);
    json_decref(f->status);
    free(f);
}

static void set_spec(struct fx *f, const char *key, json_t *value)
{
    json_object_set_new(f->spec, key, value);
    f->req.generation++;
}

static void advance(double seconds)
{
    json_t *body = json_pack("{s:f}", "advance", seconds);
    json_t *out = test_emulator_control(&emu, "POST", "clock", body);

    assert_non_null(out);
    json_decref(out);
    json_decref(body);
}

/* One reconcile. */
static enum reconcile_outcome pass(struct fx *f, bool deleting)
{
    memset(&f->res, 0, sizeof(f->res));
    f->req.now = (int64_t)time(NULL);
    f->req.deleting = deleting;
    training_reconciler.reconcile(&f->req, f->status, &f->res);
    return f->res.outcome;
}

/* Reconciles until done (or deleted), advancing the emulator's clock by
 * each requested wait. Returns the number of passes. */
static int settle(struct fx *f, bool deleting)
{
    for (int i = 1; i <= MAX_PASSES; i++) {
        enum reconcile_outcome o = pass(f, deleting);
        if (o == RECONCILE_ERROR || o == RECONCILE_INVALID)
            fail_msg("pass %d: %s", i, f->res.error);
        if (o == RECONCILE_DONE)
            return i;
        assert_true(f->res.requeue_after_ms > 0);
        advance((double)f->res.requeue_after_ms / 1000.0 + 0.5);
    }
    fail_msg("not done after %d passes", MAX_PASSES);
    return -1;
}

static int calls(const char *operation)
{
    char path[128];
    json_t *list;
    int n;

    snprintf(path, sizeof(path), "calls?operation=%s", operation);
    list = test_emulator_control(&emu, "GET", path, NULL);
    n = json_is_array(list) ? (int)json_array_size(list) : -1;
    json_decref(list);
    return n;
}

static int writes(void)
{
    return test_emulator_count_calls(&emu, NULL, 1);
}

/* An AWS call that must succeed; returns its output (caller decrefs). */
static json_t *aws(const char *svc, const char *op, json_t *in)
{
    struct aws_error err;
    json_t *out = NULL;

    if (aws_call(emu.client, svc, op, in, &out, &err) != 0)
        fail_msg("%s.%s: %s: %s", svc, op, err.code, err.message);
    json_decref(in);
    return out;
}

/* An AWS call's error code ("" on success). */
static const char *aws_code(const char *svc, const char *op, json_t *in, char *code, size_t size)
{
    struct aws_error err;
    json_t *out = NULL;

    code[0] = '\0';
    if (aws_call(emu.client, svc, op, in, &out, &err) != 0)
        snprintf(code, size, "%s", err.code);
    json_decref(out);
    json_decref(in);
    return code;
}

static const char *sget(const json_t *o, const char *path)
{
    char part[64];
    while (o != NULL && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(part, sizeof(part), "%.*s", (int)n, path);
        o = json_object_get(o, part);
        path += n + (dot ? 1 : 0);
    }
    return json_string_value(o) ? json_string_value(o) : "";
}

static const char *bucket(struct fx *f)
{
    return sget(f->status, "bucket");
}

/* GetObject's bytes (caller frees the buffer) and its output. */
static json_t *get_object(const char *b, const char *key, const char *version, struct aws_buf *body)
{
    struct aws_call_options opts = {NULL, body, 0};
    struct aws_error err;
    json_t *in = json_pack("{s:s, s:s}", "Bucket", b, "Key", key), *out = NULL;

    if (version != NULL)
        json_object_set_new(in, "VersionId", json_string(version));
    aws_buf_init(body, 256u * 1024 * 1024);
    if (aws_call_ex(emu.client, "s3", "GetObject", in, &opts, &out, &err) != 0)
        fail_msg("GetObject %s: %s: %s", key, err.code, err.message);
    json_decref(in);
    return out;
}

static const json_t *object_entry(struct fx *f, const char *key)
{
    const json_t *o;
    size_t i;

    json_array_foreach(json_object_get(f->status, "objects"), i, o)
    {
        if (strcmp(sget(o, "key"), key) == 0)
            return o;
    }
    return NULL;
}

static int version_count(const char *b, const char *key)
{
    json_t *out =
        aws("s3", "ListObjectVersions", json_pack("{s:s, s:s}", "Bucket", b, "Prefix", key));
    int n = (int)json_array_size(json_object_get(out, "Versions"));

    json_decref(out);
    return n;
}

static bool has_event(struct fx *f, const char *reason, const char *needle)
{
    const json_t *e;
    size_t i;

    json_array_foreach(json_object_get(f->status, "events"), i, e)
    {
        if (strcmp(sget(e, "reason"), reason) == 0 && strstr(sget(e, "message"), needle) != NULL)
            return true;
    }
    return false;
}

static json_t *describe_notebook(const char *name)
{
    return aws("sagemaker", "DescribeNotebookInstance",
               json_pack("{s:s}", "NotebookInstanceName", name));
}

/* ---- tests ------------------------------------------------------------------ */

static void test_create_settings_and_quiet_passes(void **state)
{
    struct fx *f = fx_new("tr-create", "{\"data\": [{\"path\": \"data/train.csv\"}], "
                                       "\"instanceType\": \"ml.t3.medium\", \"volumeSizeGB\": 20, "
                                       "\"running\": true, \"network\": {\"cidr\": "
                                       "\"10.50.0.0/16\"}, \"deleteData\": false, "
                                       "\"deletionPolicy\": \"Delete\"}");
    json_t *out, *nb, *policy, *objects_copy;
    struct aws_buf body;
    const char *b;
    char code[128], want_arn[128], bname[64];
    int before;

    (void)state;
    settle(f, false);
    snprintf(bname, sizeof(bname), "%s", bucket(f));
    b = bname;
    assert_int_equal(strlen(b), strlen("aviary-tr-create-") + 12);
    assert_int_equal(strncmp(b, "aviary-tr-create-", 17), 0);
    assert_string_equal(sget(f->status, "phase"), "Ready");

    /* Bucket: private, encrypted, versioned, tagged. */
    out = aws("s3", "GetPublicAccessBlock", json_pack("{s:s}", "Bucket", b));
    for (const char *const *k =
             (const char *const[]){"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                   "RestrictPublicBuckets", NULL};
         *k; k++)
        assert_true(json_is_true(
            json_object_get(json_object_get(out, "PublicAccessBlockConfiguration"), *k)));
    json_decref(out);
    out = aws("s3", "GetBucketEncryption", json_pack("{s:s}", "Bucket", b));
    assert_string_equal(
        sget(json_array_get(json_object_get(
                                json_object_get(out, "ServerSideEncryptionConfiguration"), "Rules"),
                            0),
             "ApplyServerSideEncryptionByDefault.SSEAlgorithm"),
        "AES256");
    json_decref(out);
    out = aws("s3", "GetBucketVersioning", json_pack("{s:s}", "Bucket", b));
    assert_string_equal(sget(out, "Status"), "Enabled");
    json_decref(out);
    out = aws("s3", "GetBucketLifecycleConfiguration", json_pack("{s:s}", "Bucket", b));
    assert_int_equal(json_array_size(json_object_get(out, "Rules")), 1);
    assert_string_equal(sget(json_array_get(json_object_get(out, "Rules"), 0), "ID"),
                        TRAIN_LIFECYCLE_RULE_ID);
    assert_string_equal(sget(json_array_get(json_object_get(out, "Rules"), 0), "Status"),
                        "Enabled");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(json_object_get(out, "Rules"), 0),
                                         "AbortIncompleteMultipartUpload"),
                         "DaysAfterInitiation")),
                     1);
    json_decref(out);
    out = aws("s3", "GetBucketTagging", json_pack("{s:s}", "Bucket", b));
    assert_string_equal(app_tag_value(json_object_get(out, "TagSet"), "aviary.io/training"),
                        "tr-create");
    assert_string_equal(app_tag_value(json_object_get(out, "TagSet"), "aviary.io/managed-by"),
                        "aviary");
    json_decref(out);

    /* The data: same bytes, hash in metadata, listed with version and size. */
    out = get_object(b, "data/data/train.csv", NULL, &body);
    assert_int_equal(body.len, 12);
    assert_memory_equal(body.data, "a,b\n1,2\n3,4\n", 12);
    assert_int_equal(strlen(sget(out, "Metadata.sha256")), 64);
    assert_string_equal(sget(object_entry(f, "data/data/train.csv"), "versionId"),
                        sget(out, "VersionId"));
    assert_int_equal(
        json_integer_value(json_object_get(object_entry(f, "data/data/train.csv"), "size")), 12);
    aws_buf_free(&body);
    json_decref(out);

    /* Notebook: InService, type, volume, role, subnet of the environment. */
    nb = describe_notebook("tr-create");
    assert_string_equal(sget(nb, "NotebookInstanceStatus"), "InService");
    assert_string_equal(sget(nb, "InstanceType"), "ml.t3.medium");
    assert_int_equal(json_integer_value(json_object_get(nb, "VolumeSizeInGB")), 20);
    assert_string_equal(sget(nb, "RoleArn"), sget(f->status, "resources.role.roleArn"));
    assert_string_equal(sget(nb, "SubnetId"), sget(f->status, "resources.network.subnetId"));
    assert_string_equal(sget(f->status, "notebook.state"), "InService");
    assert_non_null(strstr(sget(f->status, "notebookUrl"), "https://tr-create.notebook."));
    json_decref(nb);

    /* The role: trusted by SageMaker, only this bucket. */
    out = aws("iam", "GetRolePolicy",
              json_pack("{s:s, s:s}", "RoleName", "aviary-tr-create-notebook", "PolicyName",
                        TRAIN_POLICY_NAME));
    policy = json_loads(sget(out, "PolicyDocument"), 0, NULL);
    if (policy == NULL) { /* URL-encoded */
        char *dec = strdup(sget(out, "PolicyDocument")), *w = dec;
        for (const char *r = dec; *r; r++) {
            if (*r == '%' && r[1] && r[2]) {
                char h[3] = {r[1], r[2], 0};
                *w++ = (char)strtol(h, NULL, 16);
                r += 2;
            } else {
                *w++ = *r;
            }
        }
        *w = '\0';
        policy = json_loads(dec, 0, NULL);
        free(dec);
    }
    assert_non_null(policy);
    snprintf(want_arn, sizeof(want_arn), "arn:aws:s3:::%s", b);
    assert_string_equal(sget(json_array_get(json_object_get(policy, "Statement"), 0), "Resource"),
                        want_arn);
    strncat(want_arn, "/*", sizeof(want_arn) - strlen(want_arn) - 1);
    assert_string_equal(sget(json_array_get(json_object_get(policy, "Statement"), 1), "Resource"),
                        want_arn);
    assert_int_equal(json_array_size(json_object_get(policy, "Statement")), 2);
    json_decref(policy);
    json_decref(out);

    /* Converged: a second pass makes no mutating call. */
    before = writes();
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_int_equal(writes(), before);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(f->status, "lastReconcile"), "writes")),
        0);
    /* Reads: 6 bucket, 1 HeadObject, 4 role, 5 network, 1 notebook (the
     * uploads in progress were looked at in the first pass: not again
     * within the hour). */
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(f->status, "lastReconcile"), "reads")),
        17);

    /* A lost status: the same bucket is found (derived name), nothing is created. */
    objects_copy = json_deep_copy(json_object_get(f->status, "objects"));
    json_decref(f->status);
    f->status = status_new("TrainingEnvironment", f->name);
    before = writes();
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_int_equal(writes(), before);
    assert_string_equal(bucket(f), b);
    assert_true(json_equal(json_object_get(f->status, "objects"), objects_copy));
    json_decref(objects_copy);
    assert_string_equal(
        aws_code("s3", "HeadBucket", json_pack("{s:s}", "Bucket", b), code, sizeof(code)), "");

    /* Drift: versioning suspended and public access opened are reverted. */
    json_decref(aws("s3", "PutBucketVersioning",
                    json_pack("{s:s, s:{s:s}}", "Bucket", b, "VersioningConfiguration", "Status",
                              "Suspended")));
    json_decref(
        aws("s3", "PutPublicAccessBlock",
            json_pack("{s:s, s:{s:b, s:b, s:b, s:b}}", "Bucket", b,
                      "PublicAccessBlockConfiguration", "BlockPublicAcls", 0, "IgnorePublicAcls", 0,
                      "BlockPublicPolicy", 0, "RestrictPublicBuckets", 0)));
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_true(has_event(f, "DriftCorrected", "versioning"));
    out = aws("s3", "GetBucketVersioning", json_pack("{s:s}", "Bucket", b));
    assert_string_equal(sget(out, "Status"), "Enabled");
    json_decref(out);
    out = aws("s3", "GetPublicAccessBlock", json_pack("{s:s}", "Bucket", b));
    assert_true(json_is_true(json_object_get(json_object_get(out, "PublicAccessBlockConfiguration"),
                                             "RestrictPublicBuckets")));
    json_decref(out);
    fx_free(f);
}

static void test_unchanged_skipped_changed_new_version(void **state)
{
    struct fx *f = fx_new("tr-data", "{\"data\": [{\"path\": \"data/train.csv\"}, {\"path\": "
                                     "\"./data//extra.csv\"}], \"running\": false}");
    const json_t *e;
    char first[256];
    int puts;
    struct aws_buf body;
    json_t *out;

    (void)state;
    write_file(f, "data/extra.csv", "x\n");
    settle(f, false);
    assert_string_equal(sget(f->status, "notebook.state"), "Stopped");
    e = object_entry(f, "data/data/extra.csv");
    assert_non_null(e); /* "./" and "//" normalised */
    snprintf(first, sizeof(first), "%s", sget(object_entry(f, "data/data/train.csv"), "versionId"));
    assert_true(first[0] != '\0');

    /* Unchanged files are not uploaded again (touching the file is not a change). */
    puts = calls("PutObject");
    write_file(f, "data/extra.csv", "x\n");
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_int_equal(calls("PutObject"), puts);

    /* A changed file becomes a new version; the old one stays readable. */
    write_file(f, "data/train.csv", "a,b\n5,6\n");
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_int_equal(calls("PutObject"), puts + 1);
    e = object_entry(f, "data/data/train.csv");
    assert_string_not_equal(sget(e, "versionId"), first);
    assert_string_equal(sget(e, "previousVersionId"), first);
    assert_int_equal(json_integer_value(json_object_get(e, "size")), 8);
    assert_int_equal(version_count(bucket(f), "data/data/train.csv"), 2);
    out = get_object(bucket(f), "data/data/train.csv", first, &body);
    assert_memory_equal(body.data, "a,b\n1,2\n3,4\n", 12);
    aws_buf_free(&body);
    json_decref(out);
    out = get_object(bucket(f), "data/data/train.csv", NULL, &body);
    assert_memory_equal(body.data, "a,b\n5,6\n", 8);
    aws_buf_free(&body);
    json_decref(out);
    /* And stays one new version: the next pass uploads nothing. */
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_int_equal(calls("PutObject"), puts + 1);

    /* A data file that disappeared is an error naming it; nothing is uploaded. */
    set_spec(f, "data", json_pack("[{s:s}]", "path", "data/gone.csv"));
    assert_int_equal(pass(f, false), RECONCILE_ERROR);
    assert_non_null(strstr(f->res.error, "data/gone.csv"));
    assert_int_equal(calls("PutObject"), puts + 1);
    fx_free(f);
}

/* A sparse file of `size` bytes with a few distinct bytes in it; returns
 * its SHA-256 in hex. */
static void sparse_file(struct fx *f, const char *rel, off_t size, char sha[65])
{
    char path[256];
    unsigned char md[32], *buf = calloc(1, 1 << 20);
    unsigned int len = 0;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && buf != NULL && h != NULL);
    assert_int_equal(ftruncate(fd, size), 0);
    for (off_t off = 0; off < size; off += 3 * 1024 * 1024 + 7)
        assert_int_equal(pwrite(fd, "aviary", 6, off), 6);
    assert_int_equal(pwrite(fd, "end", 3, size - 3), 3);
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, 1 << 20)) > 0)
        EVP_DigestUpdate(h, buf, (size_t)n);
    EVP_DigestFinal_ex(h, md, &len);
    for (unsigned int i = 0; i < len; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(h);
    free(buf);
    close(fd);
}

static void body_sha(const struct aws_buf *body, char sha[65])
{
    unsigned char md[32];
    unsigned int len = 0;

    EVP_Digest(body->data, body->len, md, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < len; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
}

/* Bucket and data concerns only, with test-sized multipart settings. */
static enum app_step upload_pass(struct fx *f, size_t threshold, size_t part, char *error)
{
    struct train_ctx ctx;
    enum app_step step;

    f->req.now = (int64_t)time(NULL);
    assert_int_equal(train_ctx_init(&ctx, &f->req, f->status, false), 0);
    ctx.multipart_threshold = threshold;
    ctx.part_size = part;
    step = training_bucket_converge(&ctx);
    if (step == APP_STEP_READY)
        step = training_upload_converge(&ctx);
    snprintf(error, 1024, "%s", ctx.app.error);
    if (step == APP_STEP_FAILED)
        print_message("upload pass: %s\n", error);
    train_ctx_clear(&ctx);
    return step;
}

static void test_multipart_upload_and_abort(void **state)
{
    struct fx *f = fx_new("tr-multi", "{\"data\": [{\"path\": \"big.bin\"}]}");
    char sha[65], got[65], error[1024];
    struct aws_buf body;
    json_t *out, *fault;
    int parts, aborts;

    (void)state;
    sparse_file(f, "big.bin", 12 * 1024 * 1024 + 5, sha);
    /* A part upload refused: the upload is aborted, no object appears. */
    fault =
        json_pack("{s:{s:s, s:s, s:s, s:i, s:s}}", "fail_once", "service", "s3", "operation",
                  "UploadPart", "code", "InvalidArgument", "status", 400, "message", "injected");
    json_decref(test_emulator_control(&emu, "POST", "faults", fault));
    json_decref(fault);
    aborts = calls("AbortMultipartUpload");
    assert_int_equal(upload_pass(f, 10u << 20, 5u << 20, error), APP_STEP_FAILED);
    assert_non_null(strstr(error, "UploadPart"));
    assert_int_equal(calls("AbortMultipartUpload"), aborts + 1);
    assert_int_equal(version_count(bucket(f), "data/big.bin"), 0);

    /* Then it goes through: 3 parts of 5, 5 and 2 MiB, the same bytes. */
    parts = calls("UploadPart");
    assert_int_equal(upload_pass(f, 10u << 20, 5u << 20, error), APP_STEP_READY);
    assert_int_equal(calls("UploadPart"), parts + 3);
    assert_int_equal(calls("CompleteMultipartUpload") >= 1, 1);
    out = get_object(bucket(f), "data/big.bin", NULL, &body);
    assert_int_equal(body.len, 12 * 1024 * 1024 + 5);
    body_sha(&body, got);
    assert_string_equal(got, sha);
    assert_string_equal(sget(out, "Metadata.sha256"), sha);
    assert_string_equal(sget(object_entry(f, "data/big.bin"), "sha256"), sha);
    aws_buf_free(&body);
    json_decref(out);

    /* Unchanged: no upload at all. */
    parts = calls("CreateMultipartUpload");
    assert_int_equal(upload_pass(f, 10u << 20, 5u << 20, error), APP_STEP_READY);
    assert_int_equal(calls("CreateMultipartUpload"), parts);
    fx_free(f);
}

/* The production settings: a 65 MiB file goes in 16 MiB parts. */
static void test_multipart_default_threshold(void **state)
{
    struct fx *f = fx_new("tr-big", "{\"data\": [{\"path\": \"big.bin\"}]}");
    char sha[65], got[65], error[1024];
    struct aws_buf body;
    json_t *out;
    int parts = calls("UploadPart"), singles = calls("PutObject"), before;

    (void)state;
    sparse_file(f, "big.bin", 65 * 1024 * 1024, sha);
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("UploadPart"), parts + 5);
    assert_int_equal(calls("PutObject"), singles);
    out = get_object(bucket(f), "data/big.bin", NULL, &body);
    body_sha(&body, got);
    assert_string_equal(got, sha);
    aws_buf_free(&body);
    json_decref(out);
    /* The next pass reads the 65 MiB object's metadata (HeadObject answers
     * with its Content-Length, above the client's 16 MiB response limit)
     * and uploads nothing. */
    before = writes();
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(writes(), before);
    fx_free(f);
}

static void test_s3_source_copied_server_side(void **state)
{
    struct fx *f = fx_new("tr-copy", "{\"data\": [{\"path\": \"s3://tr-source-bucket/in/"
                                     "my file.csv\"}]}");
    struct aws_blob blob = {(const unsigned char *)"v1\n", 3};
    struct aws_call_options opts = {&blob, NULL, 0};
    struct aws_error err;
    char error[1024];
    struct aws_buf body;
    json_t *out = NULL, *in;
    int copies;

    (void)state;
    json_decref(aws("s3", "CreateBucket", json_pack("{s:s}", "Bucket", "tr-source-bucket")));
    in = json_pack("{s:s, s:s}", "Bucket", "tr-source-bucket", "Key", "in/my file.csv");
    assert_int_equal(aws_call_ex(emu.client, "s3", "PutObject", in, &opts, &out, &err), 0);
    json_decref(out);
    copies = calls("CopyObject");
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("CopyObject"), copies + 1);
    out = get_object(bucket(f), "data/my file.csv", NULL, &body);
    assert_memory_equal(body.data, "v1\n", 3);
    aws_buf_free(&body);
    json_decref(out);
    /* Unchanged source: no copy. */
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("CopyObject"), copies + 1);
    /* Changed source: a new version. */
    blob.data = (const unsigned char *)"v2!\n";
    blob.len = 4;
    assert_int_equal(aws_call_ex(emu.client, "s3", "PutObject", in, &opts, &out, &err), 0);
    json_decref(out);
    json_decref(in);
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("CopyObject"), copies + 2);
    assert_int_equal(version_count(bucket(f), "data/my file.csv"), 2);
    fx_free(f);
}

static void test_notebook_stop_start_and_type_change(void **state)
{
    struct fx *f = fx_new("tr-nb", "{\"data\": [], \"instanceType\": \"ml.t3.medium\", "
                                   "\"volumeSizeGB\": 5, \"running\": true}");
    json_t *nb;
    int before;

    (void)state;
    settle(f, false);
    assert_string_equal(sget(f->status, "notebook.state"), "InService");

    set_spec(f, "running", json_false());
    settle(f, false);
    nb = describe_notebook("tr-nb");
    assert_string_equal(sget(nb, "NotebookInstanceStatus"), "Stopped");
    json_decref(nb);
    assert_string_equal(status_condition(f->status, "Available"), "False");
    assert_string_equal(sget(f->status, "phase"), "Ready");
    before = writes();
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_int_equal(writes(), before);

    set_spec(f, "running", json_true());
    settle(f, false);
    nb = describe_notebook("tr-nb");
    assert_string_equal(sget(nb, "NotebookInstanceStatus"), "InService");
    json_decref(nb);

    /* A new type: stop, update, start again, in that order. */
    before = calls("UpdateNotebookInstance");
    set_spec(f, "instanceType", json_string("ml.t3.large"));
    set_spec(f, "volumeSizeGB", json_integer(10));
    settle(f, false);
    nb = describe_notebook("tr-nb");
    assert_string_equal(sget(nb, "NotebookInstanceStatus"), "InService");
    assert_string_equal(sget(nb, "InstanceType"), "ml.t3.large");
    assert_int_equal(json_integer_value(json_object_get(nb, "VolumeSizeInGB")), 10);
    json_decref(nb);
    assert_int_equal(calls("UpdateNotebookInstance"), before + 1);
    assert_true(has_event(f, "Updated", "tr-nb"));

    /* A smaller volume is reported, not attempted. */
    set_spec(f, "volumeSizeGB", json_integer(5));
    before = writes();
    assert_int_equal(pass(f, false), RECONCILE_DONE);
    assert_int_equal(writes(), before);
    assert_true(has_event(f, "VolumeNotShrunk", "cannot shrink"));
    fx_free(f);
}

static bool role_exists(const char *name)
{
    char code[128];
    aws_code("iam", "GetRole", json_pack("{s:s}", "RoleName", name), code, sizeof(code));
    return code[0] == '\0';
}

static int owned_vpcs(const char *env)
{
    json_t *out = aws("ec2", "DescribeVpcs",
                      json_pack("{s:[{s:s, s:[s]}]}", "Filters", "Name", "tag:aviary.io/training",
                                "Values", env));
    int n = (int)json_array_size(json_object_get(out, "Vpcs"));

    json_decref(out);
    return n;
}

static void test_delete_keeps_data_by_default(void **state)
{
    struct fx *f = fx_new("tr-keep", "{\"data\": [{\"path\": \"data/train.csv\"}], "
                                     "\"deleteData\": false, \"deletionPolicy\": \"Delete\"}");
    char b[64], code[128];

    (void)state;
    settle(f, false);
    snprintf(b, sizeof(b), "%s", bucket(f));
    assert_int_equal(owned_vpcs("tr-keep"), 1);
    settle(f, true);
    assert_true(f->res.deleted);
    assert_true(has_event(f, "DataRetained", b));
    aws_code("sagemaker", "DescribeNotebookInstance",
             json_pack("{s:s}", "NotebookInstanceName", "tr-keep"), code, sizeof(code));
    assert_string_equal(code, "ValidationException");
    assert_false(role_exists("aviary-tr-keep-notebook"));
    assert_int_equal(owned_vpcs("tr-keep"), 0);
    /* The bucket and its data stay. */
    assert_int_equal(version_count(b, "data/data/train.csv"), 1);
    fx_free(f);
}

static void test_delete_with_data(void **state)
{
    struct fx *f = fx_new("tr-wipe", "{\"data\": [{\"path\": \"data/train.csv\"}], "
                                     "\"deleteData\": true, \"deletionPolicy\": \"Delete\"}");
    char b[64], code[128];

    (void)state;
    settle(f, false);
    snprintf(b, sizeof(b), "%s", bucket(f));
    write_file(f, "data/train.csv", "changed\n"); /* two versions to delete */
    settle(f, false);
    assert_int_equal(version_count(b, "data/data/train.csv"), 2);
    settle(f, true);
    assert_true(f->res.deleted);
    assert_string_equal(
        aws_code("s3", "HeadBucket", json_pack("{s:s}", "Bucket", b), code, sizeof(code)),
        "NotFound");
    assert_false(role_exists("aviary-tr-wipe-notebook"));
    assert_int_equal(owned_vpcs("tr-wipe"), 0);
    fx_free(f);
}

static void test_foreign_role_is_not_touched(void **state)
{
    struct fx *f = fx_new("tr-foreign", "{\"data\": []}");
    const char *trust = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                        "\"Principal\":{\"Service\":\"sagemaker.amazonaws.com\"},\"Action\":"
                        "\"sts:AssumeRole\"}]}";
    int before;

    (void)state;
    json_decref(aws("iam", "CreateRole",
                    json_pack("{s:s, s:s}", "RoleName", "aviary-tr-foreign-notebook",
                              "AssumeRolePolicyDocument", trust)));
    before = calls("PutRolePolicy");
    assert_int_equal(pass(f, false), RECONCILE_INVALID);
    assert_non_null(strstr(f->res.error, "aviary-tr-foreign-notebook"));
    assert_string_equal(sget(f->status, "phase"), "Failed");
    assert_int_equal(calls("PutRolePolicy"), before);
    /* Deletion leaves it alone. */
    settle(f, true);
    assert_true(role_exists("aviary-tr-foreign-notebook"));
    fx_free(f);
}

static json_t *role_policy(const char *role)
{
    json_t *out = aws("iam", "GetRolePolicy",
                      json_pack("{s:s, s:s}", "RoleName", role, "PolicyName", TRAIN_POLICY_NAME));
    char *dec = strdup(sget(out, "PolicyDocument")), *w = dec;
    json_t *policy;

    assert_non_null(dec);
    for (const char *r = dec; *r; r++) { /* IAM answers URL-encoded */
        if (*r == '%' && r[1] && r[2]) {
            char h[3] = {r[1], r[2], 0};
            *w++ = (char)strtol(h, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    policy = json_loads(dec, 0, NULL);
    free(dec);
    json_decref(out);
    assert_non_null(policy);
    return policy;
}

static void test_kms_encryption_and_key_policy(void **state)
{
    struct fx *f = fx_new("tr-kms", "{\"data\": []}");
    struct train_ctx ctx;
    json_t *out, *rule, *policy;
    const json_t *st;
    char b[64];
    int before;

    (void)state;
    /* SSE-S3 first, then the spec names a key: the encryption is switched. */
    assert_int_equal(train_ctx_init(&ctx, &f->req, f->status, false), 0);
    assert_int_equal(training_bucket_converge(&ctx), APP_STEP_READY);
    train_ctx_clear(&ctx);
    snprintf(b, sizeof(b), "%s", bucket(f));
    set_spec(f, "kmsKeyId", json_string("alias/training"));
    before = calls("PutBucketEncryption");
    assert_int_equal(train_ctx_init(&ctx, &f->req, f->status, false), 0);
    assert_int_equal(training_bucket_converge(&ctx), APP_STEP_READY);
    assert_int_equal(training_role_converge(&ctx), APP_STEP_READY);
    train_ctx_clear(&ctx);
    assert_int_equal(calls("PutBucketEncryption"), before + 1);
    out = aws("s3", "GetBucketEncryption", json_pack("{s:s}", "Bucket", b));
    rule = json_array_get(
        json_object_get(json_object_get(out, "ServerSideEncryptionConfiguration"), "Rules"), 0);
    assert_string_equal(sget(rule, "ApplyServerSideEncryptionByDefault.SSEAlgorithm"), "aws:kms");
    assert_string_equal(sget(rule, "ApplyServerSideEncryptionByDefault.KMSMasterKeyID"),
                        "alias/training");
    json_decref(out);
    /* The role may use KMS only through S3 of the region. */
    policy = role_policy("aviary-tr-kms-notebook");
    st = json_array_get(json_object_get(policy, "Statement"), 2);
    assert_string_equal(sget(st, "Resource"), "*");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(st, "Condition"), "StringEquals"), "kms:ViaService")),
        "s3.us-east-1.amazonaws.com");
    json_decref(policy);
    /* Converged: nothing more to write. */
    before = writes();
    assert_int_equal(train_ctx_init(&ctx, &f->req, f->status, false), 0);
    assert_int_equal(training_bucket_converge(&ctx), APP_STEP_READY);
    assert_int_equal(training_role_converge(&ctx), APP_STEP_READY);
    train_ctx_clear(&ctx);
    assert_int_equal(writes(), before);
    fx_free(f);
}

/* ---- lifecycle rule, uploads left by a crash, plan mode ------------------------ */

static double clock_offset(void)
{
    json_t *out = test_emulator_control(&emu, "GET", "clock", NULL);
    double off;

    assert_non_null(out);
    off = json_number_value(json_object_get(out, "offset"));
    json_decref(out);
    return off;
}

static void set_clock_offset(double offset)
{
    json_t *body = json_pack("{s:f}", "offset", offset);

    json_decref(test_emulator_control(&emu, "POST", "clock", body));
    json_decref(body);
}

static const json_t *rule_by_id(const json_t *rules, const char *id)
{
    const json_t *r;
    size_t i;

    json_array_foreach(rules, i, r)
    {
        if (strcmp(sget(r, "ID"), id) == 0)
            return r;
    }
    return NULL;
}

static void test_lifecycle_rule_reverted_other_rules_kept(void **state)
{
    struct fx *f = fx_new("tr-life", "{\"data\": [{\"path\": \"data/train.csv\"}]}");
    json_t *out, *foreign;
    const json_t *ours;
    char error[1024], b[64];
    int puts;

    (void)state;
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    snprintf(b, sizeof(b), "%s", bucket(f));
    /* By hand: our rule made to wait 5 days, and a rule of the user's. */
    foreign = json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "ID", "expire-scratch", "Status", "Enabled",
                        "Filter", "Prefix", "scratch/", "Expiration", "Days", 30);
    json_decref(
        aws("s3", "PutBucketLifecycleConfiguration",
            json_pack("{s:s, s:{s:[{s:s, s:s, s:{s:s}, s:{s:i}}, O]}}", "Bucket", b,
                      "LifecycleConfiguration", "Rules", "ID", TRAIN_LIFECYCLE_RULE_ID, "Status",
                      "Enabled", "Filter", "Prefix", "", "AbortIncompleteMultipartUpload",
                      "DaysAfterInitiation", 5, foreign)));
    puts = calls("PutBucketLifecycleConfiguration");
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("PutBucketLifecycleConfiguration"), puts + 1);
    assert_true(has_event(f, "DriftCorrected", b));
    out = aws("s3", "GetBucketLifecycleConfiguration", json_pack("{s:s}", "Bucket", b));
    assert_int_equal(json_array_size(json_object_get(out, "Rules")), 2);
    ours = rule_by_id(json_object_get(out, "Rules"), TRAIN_LIFECYCLE_RULE_ID);
    assert_non_null(ours);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(ours, "AbortIncompleteMultipartUpload"),
                                           "DaysAfterInitiation")),
        1);
    assert_true(
        json_equal((json_t *)rule_by_id(json_object_get(out, "Rules"), "expire-scratch"), foreign));
    json_decref(out);

    /* Converged: read, not written. */
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("PutBucketLifecycleConfiguration"), puts + 1);

    /* Our rule removed by hand (only the user's left): added back. */
    json_decref(aws(
        "s3", "PutBucketLifecycleConfiguration",
        json_pack("{s:s, s:{s:[O]}}", "Bucket", b, "LifecycleConfiguration", "Rules", foreign)));
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    out = aws("s3", "GetBucketLifecycleConfiguration", json_pack("{s:s}", "Bucket", b));
    assert_int_equal(json_array_size(json_object_get(out, "Rules")), 2);
    assert_non_null(rule_by_id(json_object_get(out, "Rules"), TRAIN_LIFECYCLE_RULE_ID));
    json_decref(out);
    json_decref(foreign);
    fx_free(f);
}

static const char *create_upload(const char *b, const char *key, char *id, size_t size)
{
    json_t *out =
        aws("s3", "CreateMultipartUpload", json_pack("{s:s, s:s}", "Bucket", b, "Key", key));

    snprintf(id, size, "%s", sget(out, "UploadId"));
    json_decref(out);
    return id;
}

static bool upload_listed(const char *b, const char *id)
{
    json_t *out = aws("s3", "ListMultipartUploads", json_pack("{s:s}", "Bucket", b));
    const json_t *u;
    size_t i;
    bool found = false;

    json_array_foreach(json_object_get(out, "Uploads"), i, u)
    {
        if (strcmp(sget(u, "UploadId"), id) == 0)
            found = true;
    }
    json_decref(out);
    return found;
}

static void test_orphaned_multipart_uploads_aborted(void **state)
{
    struct fx *f = fx_new("tr-orphan", "{\"data\": [{\"path\": \"data/train.csv\"}]}");
    struct aws_blob part = {(const unsigned char *)"x", 1};
    struct aws_call_options opts = {&part, NULL, 0};
    struct aws_error err;
    char error[1024], b[64], stale[1024], busy[1024], foreign[1024];
    json_t *in, *out = NULL;
    double offset;
    int lists, aborts;

    (void)state;
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    snprintf(b, sizeof(b), "%s", bucket(f));
    /* Two hours ago: an upload of our key that a crash interrupted, one
     * still receiving parts (another process's), one of a key not ours. */
    offset = clock_offset();
    set_clock_offset(-7200);
    create_upload(b, "data/data/train.csv", stale, sizeof(stale));
    create_upload(b, "data/data/train.csv", busy, sizeof(busy));
    create_upload(b, "data/notebook-output.csv", foreign, sizeof(foreign));
    set_clock_offset(0);
    in = json_pack("{s:s, s:s, s:s, s:i}", "Bucket", b, "Key", "data/data/train.csv", "UploadId",
                   busy, "PartNumber", 1);
    if (aws_call_ex(emu.client, "s3", "UploadPart", in, &opts, &out, &err) != 0)
        fail_msg("UploadPart: %s", err.message);
    json_decref(in);
    json_decref(out);
    set_clock_offset(offset);

    /* Looked for at most once an hour. */
    lists = calls("ListMultipartUploads");
    aborts = calls("AbortMultipartUpload");
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("ListMultipartUploads"), lists);
    json_object_set_new(json_object_get(json_object_get(f->status, "resources"), "data"),
                        "uploadsCheckedAt",
                        json_integer((json_int_t)time(NULL) - TRAIN_UPLOADS_CHECK_S - 1));
    assert_int_equal(upload_pass(f, TRAIN_MULTIPART_THRESHOLD, TRAIN_PART_SIZE, error),
                     APP_STEP_READY);
    assert_int_equal(calls("ListMultipartUploads"), lists + 1);
    assert_int_equal(calls("AbortMultipartUpload"), aborts + 1);
    assert_false(upload_listed(b, stale));
    assert_true(upload_listed(b, busy));
    assert_true(upload_listed(b, foreign));
    assert_true(has_event(f, "Deleted", "s3:multipart-upload data/data/train.csv"));
    fx_free(f);
}

/* Whether actions (plan entries) hold one with action, resource, name and
 * (when not NULL) a change line or call containing needle. */
static bool planned(const json_t *actions, const char *action, const char *resource,
                    const char *name, const char *needle)
{
    const json_t *a, *c;
    size_t i, j;

    json_array_foreach(actions, i, a)
    {
        if (strcmp(sget(a, "action"), action) != 0 || strcmp(sget(a, "resource"), resource) != 0 ||
            (name != NULL && strcmp(sget(a, "name"), name) != 0))
            continue;
        if (needle == NULL)
            return true;
        json_array_foreach(json_object_get(a, "changes"), j, c)
        {
            if (strstr(json_string_value(c), needle) != NULL)
                return true;
        }
    }
    return false;
}

static bool call_planned(const json_t *actions, const char *call)
{
    const json_t *a;
    size_t i;

    json_array_foreach(actions, i, a)
    {
        if (strcmp(sget(a, "call"), call) == 0)
            return true;
    }
    return false;
}

/* A plan of f: its entries (caller decrefs). No write reaches the emulator. */
static json_t *plan(struct fx *f)
{
    json_t *actions = json_array(), *scratch = status_new("TrainingEnvironment", f->name);
    struct reconcile_result res = {0};
    int before = writes();

    f->req.now = (int64_t)time(NULL);
    training_reconcile_once(&f->req, scratch, &res, true, actions);
    if (res.outcome == RECONCILE_ERROR || res.outcome == RECONCILE_INVALID)
        fail_msg("plan: %s", res.error);
    assert_int_equal(writes(), before);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(scratch, "lastReconcile"), "writes")),
        0);
    json_decref(scratch);
    return actions;
}

static void sha_text(const char *text, char sha[65])
{
    struct aws_buf b = {(char *)text, strlen(text), 0, 0};

    body_sha(&b, sha);
}

static void test_plan_lists_changes_and_writes_nothing(void **state)
{
    struct fx *f = fx_new("tr-plan", "{\"data\": [{\"path\": \"data/train.csv\"}], "
                                     "\"instanceType\": \"ml.t3.medium\", \"running\": true, "
                                     "\"network\": {\"cidr\": \"10.70.0.0/16\"}}");
    char sha1[65], sha2[65], line[200];
    json_t *actions;

    (void)state;
    sha_text("a,b\n1,2\n3,4\n", sha1);
    /* From nothing: everything is created. */
    actions = plan(f);
    assert_true(planned(actions, "create", "s3:bucket", NULL, "lifecycle: abort incomplete"));
    assert_true(call_planned(actions, "s3.CreateBucket"));
    assert_true(call_planned(actions, "s3.PutBucketLifecycleConfiguration"));
    snprintf(line, sizeof(line), "sha256: (none) -> %s", sha1);
    assert_true(planned(actions, "create", "s3:object", "data/data/train.csv", line));
    assert_true(planned(actions, "create", "iam:role", "aviary-tr-plan-notebook", NULL));
    assert_true(planned(actions, "create", "ec2:vpc", NULL, "cidr: 10.70.0.0/16"));
    assert_true(planned(actions, "create", "ec2:security-group", NULL, NULL));
    assert_true(planned(actions, "create", "sagemaker:notebook-instance", "tr-plan",
                        "instanceType: ml.t3.medium"));
    assert_false(call_planned(actions, "s3.PutObject")); /* no bytes read for the bucket */
    json_decref(actions);

    /* Applied: nothing to do. */
    settle(f, false);
    actions = plan(f);
    if (json_array_size(actions) != 0)
        fail_msg("plan after apply: %s", json_dumps(actions, 0));
    json_decref(actions);

    /* New data and a larger instance: a new version, stop-update-start. */
    write_file(f, "data/train.csv", "a,b\n1,2\n3,4\n5,6\n");
    sha_text("a,b\n1,2\n3,4\n5,6\n", sha2);
    set_spec(f, "instanceType", json_string("ml.t3.large"));
    actions = plan(f);
    snprintf(line, sizeof(line), "sha256: %s -> %s", sha1, sha2);
    assert_true(planned(actions, "update", "s3:object", "data/data/train.csv", line));
    assert_true(planned(actions, "update", "s3:object", "data/data/train.csv", "size: 12 -> 16"));
    assert_true(planned(actions, "update", "sagemaker:notebook-instance", "tr-plan",
                        "instanceType: ml.t3.medium -> ml.t3.large"));
    assert_true(call_planned(actions, "sagemaker.StopNotebookInstance"));
    assert_true(call_planned(actions, "sagemaker.UpdateNotebookInstance"));
    assert_true(call_planned(actions, "sagemaker.StartNotebookInstance"));
    assert_false(planned(actions, "create", "s3:bucket", NULL, NULL));
    json_decref(actions);

    /* Drift shows as an update of its own. */
    json_decref(aws("s3", "PutBucketVersioning",
                    json_pack("{s:s, s:{s:s}}", "Bucket", bucket(f), "VersioningConfiguration",
                              "Status", "Suspended")));
    actions = plan(f);
    assert_true(planned(actions, "update", "s3:bucket-versioning", NULL, "versioning not enabled"));
    json_decref(actions);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_settings_and_quiet_passes),
        cmocka_unit_test(test_unchanged_skipped_changed_new_version),
        cmocka_unit_test(test_multipart_upload_and_abort),
        cmocka_unit_test(test_multipart_default_threshold),
        cmocka_unit_test(test_s3_source_copied_server_side),
        cmocka_unit_test(test_notebook_stop_start_and_type_change),
        cmocka_unit_test(test_delete_keeps_data_by_default),
        cmocka_unit_test(test_delete_with_data),
        cmocka_unit_test(test_foreign_role_is_not_touched),
        cmocka_unit_test(test_kms_encryption_and_key_policy),
        cmocka_unit_test(test_lifecycle_rule_reverted_other_rules_kept),
        cmocka_unit_test(test_orphaned_multipart_uploads_aborted),
        cmocka_unit_test(test_plan_lists_changes_and_writes_nothing),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
