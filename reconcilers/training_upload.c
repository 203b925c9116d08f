/* The "data" concern of a TrainingEnvironment: every spec.data entry in the
 * bucket under data/. Worker threads; one reconcile's context.
 *
 * A local file (relative to the manifest's directory) becomes
 * "data/<path>" (path normalised: no "." or empty segments). Its SHA-256,
 * computed while streaming the file, is kept in the object's metadata
 * (x-amz-meta-sha256); an object whose metadata and size match is not
 * uploaded again (one HeadObject per file and pass), otherwise the file is
 * uploaded: with one PutObject up to ctx->multipart_threshold (64 MiB),
 * above that as a multipart upload of ctx->part_size (16 MiB) parts, read
 * one part at a time and aborted on any failure. The bucket is versioned, so
 * a changed file becomes a new version and the old one stays. The file is
 * hashed again while it is uploaded: one that changes meanwhile is not
 * completed (retried later). The hash of a file whose size, mtime and inode
 * are unchanged since the last pass is taken from status.resources.data
 * instead of reading the file again.
 *
 * An s3://bucket/key source is copied server-side (CopyObject of the
 * version seen by HeadObject, at most 5 GiB) to "data/<last segment of
 * key>", its ETag kept in x-amz-meta-source-etag to skip unchanged sources.
 *
 * Multipart uploads of these keys that a crash left unfinished are looked
 * for once an hour (ListMultipartUploads) and aborted when idle for an hour.
 *
 * Objects of entries removed from spec.data are kept (data is only deleted
 * with the bucket). status.objects lists each entry's object: key, source,
 * size, versionId, sha256 or sourceEtag, previousVersionId after a change. */
#include "reconcilers/training.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/client.h"
#include "reconcilers/status.h"

#define KEY_MAX          1024                        /* S3's limit, in bytes */
#define HASH_CHUNK       (1024u * 1024u)             /* read size while hashing */
#define MAX_PARTS        10000                       /* S3's limit */
#define COPY_MAX         (5ull * 1024 * 1024 * 1024) /* CopyObject's limit */
#define META_SHA         "sha256"
#define META_SOURCE      "source"
#define META_SOURCE_TAG  "source-etag"
#define UPLOAD_PAGES_MAX 10 /* of ListMultipartUploads / ListParts per look (1000 each) */

struct item {
    const char *path; /* as in the spec */
    char key[KEY_MAX + 1];
    bool s3;
    char src_bucket[64];
    char src_key[KEY_MAX + 1];
};

struct local_file {
    int fd;
    uint64_t size;
    int64_t mtime_ns;
    uint64_t ino;
    char sha[65];
};

static void hex(const unsigned char *md, unsigned int len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * len] = '\0';
}

/* ---- items -------------------------------------------------------------- */

/* "a/./b//c.csv" -> "data/a/b/c.csv". Returns 0, or -1 when empty or too long. */
static int local_key(const char *path, char *key, size_t size)
{
    size_t len = (size_t)snprintf(key, size, "data");
    const char *s = path;

    while (*s) {
        size_t n = strcspn(s, "/");
        if (n > 0 && !(n == 1 && s[0] == '.')) {
            if (len + 1 + n >= size)
                return -1;
            key[len++] = '/';
            memcpy(key + len, s, n);
            len += n;
            key[len] = '\0';
        }
        s += n;
        if (*s == '/')
            s++;
    }
    return len > 4 ? 0 : -1;
}

static int parse_item(struct train_ctx *ctx, size_t index, const char *path, struct item *it)
{
    memset(it, 0, sizeof(*it));
    it->path = path;
    if (strncmp(path, "s3://", 5) == 0) {
        const char *b = path + 5, *slash = strchr(b, '/'), *last;
        size_t bl = slash ? (size_t)(slash - b) : 0;

        if (slash == NULL || bl == 0 || bl >= sizeof(it->src_bucket) || slash[1] == '\0' ||
            strlen(slash + 1) > KEY_MAX) {
            app_fail(&ctx->app, true, "spec.data[%zu].path: \"%s\" is not s3://bucket/key", index,
                     path);
            return -1;
        }
        it->s3 = true;
        memcpy(it->src_bucket, b, bl);
        snprintf(it->src_key, sizeof(it->src_key), "%s", slash + 1);
        last = strrchr(it->src_key, '/');
        last = last ? last + 1 : it->src_key;
        if (*last == '\0') {
            app_fail(&ctx->app, true, "spec.data[%zu].path: \"%s\" names a prefix, not an object",
                     index, path);
            return -1;
        }
        snprintf(it->key, sizeof(it->key), "data/%s", last);
        return 0;
    }
    if (local_key(path, it->key, sizeof(it->key)) != 0) {
        app_fail(&ctx->app, true, "spec.data[%zu].path: \"%s\" gives no valid object key", index,
                 path);
        return -1;
    }
    return 0;
}

/* ---- local files ------------------------------------------------------------ */

/* Reads exactly len bytes at off. Returns 0, or -1 (errno; EIO for a file
 * that got shorter). */
static int read_full(int fd, unsigned char *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Opens the file of item it (inside the manifest's directory, a regular
 * file). Returns 0 with f->fd open, or -1 with ctx's error. */
static int open_local(struct train_ctx *ctx, size_t index, const struct item *it,
                      struct local_file *f)
{
    const char *dir = ctx->app.req->manifest_dir;
    char full[PATH_MAX], real[PATH_MAX], base[PATH_MAX];
    struct stat st;
    size_t bl;

    f->fd = -1;
    if (dir == NULL) {
        app_fail(&ctx->app, true,
                 "spec.data[%zu].path: \"%s\" is relative, but the manifest has no directory "
                 "(an S3 source): use s3:// data sources",
                 index, it->path);
        return -1;
    }
    if (snprintf(full, sizeof(full), "%s/%s", dir, it->path) >= (int)sizeof(full) ||
        realpath(dir, base) == NULL || realpath(full, real) == NULL) {
        app_fail(&ctx->app, false,
                 "spec.data[%zu].path: %s: %s (paths are relative to the manifest's directory)",
                 index, it->path, strerror(errno));
        return -1;
    }
    /* Validation checked this too; the directory may have changed since. */
    bl = strlen(base);
    if (strncmp(real, base, bl) != 0 || (real[bl] != '/' && bl > 1)) {
        app_fail(&ctx->app, true,
                 "spec.data[%zu].path: \"%s\" resolves outside the manifest's "
                 "directory",
                 index, it->path);
        return -1;
    }
    f->fd = open(real, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0 || fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        app_fail(&ctx->app, false, "spec.data[%zu].path: %s: %s", index, it->path,
                 f->fd < 0 ? strerror(errno) : "not a regular file");
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
        return -1;
    }
    f->size = (uint64_t)st.st_size;
    f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    f->ino = (uint64_t)st.st_ino;
    return 0;
}

/* f->sha: from the cache when size, mtime and inode match, else by reading
 * the whole file in HASH_CHUNK pieces. Returns 0 or -1. */
static int hash_local(struct train_ctx *ctx, const struct item *it, struct local_file *f,
                      json_t *cache)
{
    const json_t *c = json_object_get(cache, it->key);
    unsigned char *buf = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *h = NULL;
    uint64_t off = 0;
    int rc = -1;

    if (json_integer_value(json_object_get(c, "size")) == (json_int_t)f->size &&
        json_integer_value(json_object_get(c, "mtimeNs")) == (json_int_t)f->mtime_ns &&
        json_integer_value(json_object_get(c, "inode")) == (json_int_t)f->ino &&
        strlen(train_str(c, "sha256")) == 64) {
        snprintf(f->sha, sizeof(f->sha), "%s", train_str(c, "sha256"));
        return 0;
    }
    buf = malloc(HASH_CHUNK);
    h = EVP_MD_CTX_new();
    if (buf == NULL || h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        app_fail(&ctx->app, false, "%s: out of memory hashing %s", it->key, it->path);
        goto out;
    }
    while (off < f->size) {
        size_t n = f->size - off < HASH_CHUNK ? (size_t)(f->size - off) : HASH_CHUNK;
        if (read_full(f->fd, buf, n, off) != 0 || EVP_DigestUpdate(h, buf, n) != 1) {
            app_fail(&ctx->app, false, "%s: reading %s: %s", it->key, it->path, strerror(errno));
            goto out;
        }
        off += n;
    }
    if (EVP_DigestFinal_ex(h, md, &mdlen) != 1)
        goto out;
    hex(md, mdlen, f->sha);
    json_object_set_new(cache, it->key,
                        json_pack("{s:I, s:I, s:I, s:s}", "size", (json_int_t)f->size, "mtimeNs",
                                  (json_int_t)f->mtime_ns, "inode", (json_int_t)f->ino, "sha256",
                                  f->sha));
    rc = 0;
out:
    EVP_MD_CTX_free(h);
    free(buf);
    return rc;
}

/* HeadObject of our key: 1 found (*head set, caller decrefs), 0 absent, -1 failed. */
static int head(struct train_ctx *ctx, const char *bucket, const char *key, json_t **head_out)
{
    struct aws_error err;

    *head_out = NULL;
    if (train_head_object(ctx, key, bucket, key, head_out, &err) == 0)
        return 1;
    if (err.http_status == 404 || train_is_code(&err, "NoSuchKey")) {
        train_forget_error(ctx);
        return 0;
    }
    return -1;
}

static const char *meta(const json_t *head_doc, const char *name)
{
    return json_string_value(json_object_get(json_object_get(head_doc, "Metadata"), name));
}

/* Digest of the bytes uploaded, compared with the one the decision was made
 * on: a file that changed in between is not completed. */
static int check_unchanged(struct train_ctx *ctx, const struct item *it, EVP_MD_CTX *h,
                           const char *want)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char got[65];

    if (EVP_DigestFinal_ex(h, md, &mdlen) != 1 || mdlen != 32)
        return -1;
    hex(md, mdlen, got);
    if (strcmp(got, want) != 0) {
        app_fail(&ctx->app, false, "%s: %s changed while it was uploaded; retrying later", it->key,
                 it->path);
        return -1;
    }
    return 0;
}

static int put_single(struct train_ctx *ctx, const struct item *it, const struct local_file *f,
                      char *version, size_t vsize)
{
    unsigned char *buf = malloc(f->size > 0 ? (size_t)f->size : 1);
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    json_t *out = NULL;
    int rc = -1;

    if (buf == NULL || h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        app_fail(&ctx->app, false, "%s: out of memory for %s", it->key, it->path);
        goto out;
    }
    if (read_full(f->fd, buf, (size_t)f->size, 0) != 0) {
        app_fail(&ctx->app, false, "%s: reading %s: %s", it->key, it->path, strerror(errno));
        goto out;
    }
    if (EVP_DigestUpdate(h, buf, (size_t)f->size) != 1 || check_unchanged(ctx, it, h, f->sha) != 0)
        goto out;
    if (train_write_payload(ctx, it->key, "PutObject",
                            json_pack("{s:s, s:s, s:{s:s}}", "Bucket", ctx->names.bucket, "Key",
                                      it->key, "Metadata", META_SHA, f->sha),
                            buf, (size_t)f->size, &out, NULL) != 0)
        goto out;
    snprintf(version, vsize, "%s", train_str(out, "VersionId"));
    rc = 0;
out:
    json_decref(out);
    EVP_MD_CTX_free(h);
    free(buf);
    return rc;
}

/* Aborts an unfinished multipart upload, keeping the error that caused it. */
static void abort_upload(struct train_ctx *ctx, const struct item *it, const char *upload_id)
{
    char saved[sizeof(ctx->app.error)];
    bool terminal = ctx->app.terminal;

    memcpy(saved, ctx->app.error, sizeof(saved));
    app_write(&ctx->app, it->key, "s3", "AbortMultipartUpload",
              json_pack("{s:s, s:s, s:s}", "Bucket", ctx->names.bucket, "Key", it->key, "UploadId",
                        upload_id),
              NULL, NULL);
    memcpy(ctx->app.error, saved, sizeof(saved));
    ctx->app.terminal = terminal;
}

static int put_multipart(struct train_ctx *ctx, const struct item *it, const struct local_file *f,
                         char *version, size_t vsize)
{
    size_t part = ctx->part_size;
    unsigned char *buf = NULL;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    json_t *out = NULL, *parts = json_array();
    char upload_id[1024] = "";
    uint64_t off = 0;
    int rc = -1, number = 0;

    /* At most 10000 parts: larger files get larger parts (whole MiB). */
    if (f->size / part >= MAX_PARTS)
        part = (size_t)(((f->size / MAX_PARTS) / (1024 * 1024) + 1) * 1024 * 1024);
    buf = malloc(part);
    if (buf == NULL || h == NULL || parts == NULL ||
        EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        app_fail(&ctx->app, false, "%s: out of memory for %s", it->key, it->path);
        goto out;
    }
    if (app_write(&ctx->app, it->key, "s3", "CreateMultipartUpload",
                  json_pack("{s:s, s:s, s:{s:s}}", "Bucket", ctx->names.bucket, "Key", it->key,
                            "Metadata", META_SHA, f->sha),
                  &out, NULL) < 0)
        goto out;
    snprintf(upload_id, sizeof(upload_id), "%s", train_str(out, "UploadId"));
    json_decref(out);
    out = NULL;
    while (off < f->size) {
        size_t n = f->size - off < part ? (size_t)(f->size - off) : part;
        if (read_full(f->fd, buf, n, off) != 0) {
            app_fail(&ctx->app, false, "%s: reading %s: %s", it->key, it->path, strerror(errno));
            goto abort;
        }
        if (EVP_DigestUpdate(h, buf, n) != 1)
            goto abort;
        number++;
        if (train_write_payload(ctx, it->key, "UploadPart",
                                json_pack("{s:s, s:s, s:s, s:i}", "Bucket", ctx->names.bucket,
                                          "Key", it->key, "UploadId", upload_id, "PartNumber",
                                          number),
                                buf, n, &out, NULL) != 0)
            goto abort;
        json_array_append_new(
            parts, json_pack("{s:i, s:s}", "PartNumber", number, "ETag", train_str(out, "ETag")));
        json_decref(out);
        out = NULL;
        off += n;
    }
    /* Nothing is left in memory but the part list from here on. */
    free(buf);
    buf = NULL;
    if (check_unchanged(ctx, it, h, f->sha) != 0)
        goto abort;
    if (app_write(&ctx->app, it->key, "s3", "CompleteMultipartUpload",
                  json_pack("{s:s, s:s, s:s, s:{s:O}}", "Bucket", ctx->names.bucket, "Key", it->key,
                            "UploadId", upload_id, "MultipartUpload", "Parts", parts),
                  &out, NULL) < 0)
        goto abort;
    snprintf(version, vsize, "%s", train_str(out, "VersionId"));
    rc = 0;
    goto out;
abort:
    abort_upload(ctx, it, upload_id);
out:
    json_decref(out);
    json_decref(parts);
    EVP_MD_CTX_free(h);
    free(buf);
    return rc;
}

/* What uploading f over the object described by head_doc (NULL: none)
 * changes: ["source: P", "sha256: OLD -> NEW", "size: A -> B bytes",
 * "upload: ..."]. New reference. */
static json_t *upload_changes(const struct train_ctx *ctx, const struct item *it,
                              const struct local_file *f, const json_t *head_doc)
{
    const char *old = head_doc ? meta(head_doc, META_SHA) : NULL;
    unsigned long long parts = ctx->part_size ? (f->size + ctx->part_size - 1) / ctx->part_size : 0;
    char line[256];
    json_t *changes = json_array();

    snprintf(line, sizeof(line), "source: %s", it->path);
    json_array_append_new(changes, json_string(line));
    snprintf(line, sizeof(line), "sha256: %.64s -> %s", old ? old : "(none)", f->sha);
    json_array_append_new(changes, json_string(line));
    if (head_doc != NULL)
        snprintf(line, sizeof(line), "size: %lld -> %llu bytes",
                 (long long)json_integer_value(json_object_get(head_doc, "ContentLength")),
                 (unsigned long long)f->size);
    else
        snprintf(line, sizeof(line), "size: %llu bytes", (unsigned long long)f->size);
    json_array_append_new(changes, json_string(line));
    if (f->size > ctx->multipart_threshold)
        snprintf(line, sizeof(line), "upload: multipart, %llu parts of up to %zu MiB%s", parts,
                 ctx->part_size / (1024 * 1024),
                 head_doc ? " (a new version; the previous one is kept)" : "");
    else
        snprintf(line, sizeof(line), "upload: PutObject%s",
                 head_doc ? " (a new version; the previous one is kept)" : "");
    json_array_append_new(changes, json_string(line));
    return changes;
}

/* One local file: hash, compare, upload when different. Fills entry. */
static int sync_local(struct train_ctx *ctx, size_t index, const struct item *it, json_t *cache,
                      json_t *entry)
{
    struct local_file f = {.fd = -1};
    json_t *h = NULL;
    char version[1100] = "";
    const char *have;
    int found, rc = -1;

    if (open_local(ctx, index, it, &f) != 0 || hash_local(ctx, it, &f, cache) != 0)
        goto out;
    found = ctx->bucket_planned ? 0 : head(ctx, ctx->names.bucket, it->key, &h);
    if (found < 0)
        goto out;
    have = found ? meta(h, META_SHA) : NULL;
    if (have != NULL && strcmp(have, f.sha) == 0 &&
        json_integer_value(json_object_get(h, "ContentLength")) == (json_int_t)f.size) {
        snprintf(version, sizeof(version), "%s", train_str(h, "VersionId"));
    } else {
        json_t *changes = upload_changes(ctx, it, &f, found ? h : NULL);
        if (!ctx->app.plan && (f.size > ctx->multipart_threshold
                                   ? put_multipart(ctx, it, &f, version, sizeof(version))
                                   : put_single(ctx, it, &f, version, sizeof(version))) != 0) {
            json_decref(changes);
            goto out;
        }
        app_note_change(&ctx->app, found ? "update" : "create", "s3:object", it->key, changes);
        if (found && train_str(h, "VersionId")[0])
            json_object_set_new(entry, "previousVersionId", json_string(train_str(h, "VersionId")));
    }
    json_object_set_new(entry, "size", json_integer((json_int_t)f.size));
    json_object_set_new(entry, "sha256", json_string(f.sha));
    json_object_set_new(entry, "versionId", json_string(version));
    rc = 0;
out:
    json_decref(h);
    if (f.fd >= 0)
        close(f.fd);
    return rc;
}

/* CopySource "bucket/key[?versionId=V]" (the client percent-encodes it). */
static int copy_source(const struct item *it, const char *version, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s%s%s", it->src_bucket, it->src_key,
                     version != NULL && *version ? "?versionId=" : "", version ? version : "");

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* One s3:// source: copied server-side when its ETag differs from the one
 * our object was copied from. */
static int sync_s3(struct train_ctx *ctx, size_t index, const struct item *it, json_t *entry)
{
    json_t *src = NULL, *dst = NULL, *out = NULL;
    char source[4200];
    const char *etag, *have;
    json_int_t size;
    int found, rc = -1;

    found = head(ctx, it->src_bucket, it->src_key, &src);
    if (found <= 0) {
        if (found == 0)
            app_fail(&ctx->app, false, "spec.data[%zu].path: %s does not exist", index, it->path);
        goto out;
    }
    etag = train_str(src, "ETag");
    size = json_integer_value(json_object_get(src, "ContentLength"));
    if ((unsigned long long)size > COPY_MAX) {
        app_fail(&ctx->app, true,
                 "spec.data[%zu].path: %s is larger than 5 GiB, more than one server-side copy "
                 "takes; download it next to the manifest instead",
                 index, it->path);
        goto out;
    }
    found = ctx->bucket_planned ? 0 : head(ctx, ctx->names.bucket, it->key, &dst);
    if (found < 0)
        goto out;
    have = found ? meta(dst, META_SOURCE_TAG) : NULL;
    if (have != NULL && strcmp(have, etag) == 0 && meta(dst, META_SOURCE) != NULL &&
        strcmp(meta(dst, META_SOURCE), it->path) == 0) {
        json_object_set_new(entry, "versionId", json_string(train_str(dst, "VersionId")));
    } else {
        if (copy_source(it, json_string_value(json_object_get(src, "VersionId")), source,
                        sizeof(source)) != 0) {
            app_fail(&ctx->app, true, "spec.data[%zu].path: %s: key too long", index, it->path);
            goto out;
        }
        if (app_write(&ctx->app, it->key, "s3", "CopyObject",
                      json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "Bucket",
                                ctx->names.bucket, "Key", it->key, "CopySource", source,
                                "CopySourceIfMatch", etag, "MetadataDirective", "REPLACE",
                                "Metadata", META_SOURCE, it->path, META_SOURCE_TAG, etag),
                      &out, NULL) < 0)
            goto out;
        app_note_change(&ctx->app, found ? "update" : "create", "s3:object", it->key,
                        json_pack("[s+, s+++]", "copied from ", it->path,
                                  "source ETag: ", have ? have : "(none)", " -> ", etag));
        if (found && train_str(dst, "VersionId")[0])
            json_object_set_new(entry, "previousVersionId",
                                json_string(train_str(dst, "VersionId")));
        json_object_set_new(entry, "versionId", json_string(train_str(out, "VersionId")));
    }
    json_object_set_new(entry, "size", json_integer(size));
    json_object_set_new(entry, "sourceEtag", json_string(etag));
    rc = 0;
out:
    json_decref(out);
    json_decref(dst);
    json_decref(src);
    return rc;
}

/* ---- uploads left behind by a crash ------------------------------------------ */

/* True when key is one aviary uploads to for this environment: an entry of
 * spec.data now, or one in the status of the last pass. */
static bool our_key(const struct train_ctx *ctx, const struct item *items, size_t count,
                    const char *key)
{
    const json_t *o;
    size_t i;

    for (i = 0; i < count; i++)
        if (strcmp(items[i].key, key) == 0)
            return true;
    json_array_foreach(json_object_get(ctx->app.status, "objects"), i, o)
    {
        if (strcmp(train_str(o, "key"), key) == 0)
            return true;
    }
    return false;
}

/* The time of an upload's newest part (initiated when it has none), paging
 * through ListParts. Returns 1 with *last, 0 when the upload is gone, -1. */
static int last_activity(struct train_ctx *ctx, const char *key, const char *upload_id,
                         double initiated, double *last)
{
    json_int_t marker = 0;
    struct aws_error err;
    json_t *out = NULL;
    const json_t *p;
    size_t i;

    *last = initiated;
    for (int page = 0; page < UPLOAD_PAGES_MAX; page++) {
        json_t *in = json_pack("{s:s, s:s, s:s, s:i}", "Bucket", ctx->names.bucket, "Key", key,
                               "UploadId", upload_id, "MaxParts", 1000);
        if (marker > 0)
            json_object_set_new(in, "PartNumberMarker", json_integer(marker));
        if (app_read(&ctx->app, key, "s3", "ListParts", in, &out, &err) != 0) {
            if (!train_is_code(&err, "NoSuchUpload"))
                return -1;
            train_forget_error(ctx);
            return 0;
        }
        json_array_foreach(json_object_get(out, "Parts"), i, p)
        {
            double t = json_number_value(json_object_get(p, "LastModified"));
            if (t > *last)
                *last = t;
        }
        marker = json_integer_value(json_object_get(out, "NextPartNumberMarker"));
        if (!json_is_true(json_object_get(out, "IsTruncated")) || marker <= 0) {
            json_decref(out);
            return 1;
        }
        json_decref(out);
        out = NULL;
    }
    return 1; /* 10,000 parts seen: S3's maximum */
}

/* Looks at one listed upload; aborts it when it is aviary's and idle for
 * TRAIN_ORPHAN_AGE_S. Returns 0 or -1. */
static int abort_if_orphan(struct train_ctx *ctx, const struct item *items, size_t count,
                           const json_t *u)
{
    const char *key = train_str(u, "Key"), *id = train_str(u, "UploadId");
    double initiated = json_number_value(json_object_get(u, "Initiated"));
    double now = (double)ctx->app.req->now, last;
    struct aws_error err;
    char started[21], line[160];
    int found;

    if (!our_key(ctx, items, count, key) || *id == '\0' || now - initiated < TRAIN_ORPHAN_AGE_S)
        return 0;
    found = last_activity(ctx, key, id, initiated, &last);
    if (found <= 0 || now - last < TRAIN_ORPHAN_AGE_S)
        return found < 0 ? -1 : 0;
    status_format_time((int64_t)initiated, started);
    snprintf(line, sizeof(line),
             "initiated %s, idle for %.0f minutes: left by an interrupted upload", started,
             (now - last) / 60.0);
    app_note_change(&ctx->app, "delete", "s3:multipart-upload", key,
                    json_pack("[s+, s]", "upload id ", id, line));
    if (app_write(
            &ctx->app, key, "s3", "AbortMultipartUpload",
            json_pack("{s:s, s:s, s:s}", "Bucket", ctx->names.bucket, "Key", key, "UploadId", id),
            NULL, &err) < 0) {
        if (!train_is_code(&err, "NoSuchUpload")) /* completed or aborted meanwhile */
            return -1;
        train_forget_error(ctx);
    }
    return 0;
}

/* Aborts the multipart uploads of aviary's data keys that a crash left
 * behind (S3 bills their parts until they are aborted). Looked for once
 * per TRAIN_UPLOADS_CHECK_S (status.resources.data.uploadsCheckedAt); the
 * bucket's lifecycle rule (training_bucket.c) is the backstop that needs
 * no aviary. Returns 0 or -1. */
static int abort_orphans(struct train_ctx *ctx, const struct item *items, size_t count)
{
    json_t *res = app_resources(&ctx->app, "data"), *out = NULL;
    int64_t now = ctx->app.req->now;
    json_int_t checked = json_integer_value(json_object_get(res, "uploadsCheckedAt"));
    char key_marker[KEY_MAX + 1] = "", id_marker[1024] = "";
    const json_t *u;
    size_t i;
    int rc = -1;

    if (ctx->bucket_planned ||
        (checked > 0 && now >= checked && now - checked < TRAIN_UPLOADS_CHECK_S))
        return 0;
    for (int page = 0; page < UPLOAD_PAGES_MAX; page++) {
        json_t *in = json_pack("{s:s, s:s}", "Bucket", ctx->names.bucket, "Prefix", "data/");
        if (key_marker[0]) {
            json_object_set_new(in, "KeyMarker", json_string(key_marker));
            if (id_marker[0])
                json_object_set_new(in, "UploadIdMarker", json_string(id_marker));
        }
        if (app_read(&ctx->app, ctx->names.bucket, "s3", "ListMultipartUploads", in, &out, NULL) !=
            0)
            goto out;
        json_array_foreach(json_object_get(out, "Uploads"), i, u)
        {
            if (abort_if_orphan(ctx, items, count, u) != 0)
                goto out;
        }
        if (!json_is_true(json_object_get(out, "IsTruncated")) ||
            train_str(out, "NextKeyMarker")[0] == '\0')
            break;
        snprintf(key_marker, sizeof(key_marker), "%s", train_str(out, "NextKeyMarker"));
        snprintf(id_marker, sizeof(id_marker), "%s", train_str(out, "NextUploadIdMarker"));
        json_decref(out);
        out = NULL;
    }
    json_object_set_new(res, "uploadsCheckedAt", json_integer(now));
    rc = 0;
out:
    json_decref(out);
    return rc;
}

enum app_step training_upload_converge(struct train_ctx *ctx)
{
    const json_t *data = app_spec(&ctx->app, "data");
    size_t count = json_array_size(data);
    struct item *items = NULL;
    json_t *objects = json_array(), *old_cache, *cache = json_object();
    enum app_step step = APP_STEP_FAILED;

    if (training_bucket_name(ctx) != 0)
        goto out;
    items = calloc(count > 0 ? count : 1, sizeof(*items));
    if (items == NULL || objects == NULL || cache == NULL) {
        app_fail(&ctx->app, false, "data: out of memory");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        const char *path = train_str(json_array_get(data, i), "path");
        if (parse_item(ctx, i, path, &items[i]) != 0)
            goto out;
        /* Two entries must not land on the same object. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(items[i].key, items[j].key) == 0) {
                app_fail(&ctx->app, true,
                         "spec.data[%zu].path: \"%s\" and spec.data[%zu].path \"%s\" both "
                         "upload to %s",
                         i, path, j, items[j].path, items[i].key);
                goto out;
            }
    }
    /* The hash cache keeps only entries still in the spec. */
    old_cache = json_object_get(app_resources(&ctx->app, "data"), "files");
    if (json_is_object(old_cache))
        json_object_update(cache, old_cache);
    for (size_t i = 0; i < count; i++) {
        json_t *entry = json_pack("{s:s, s:s}", "key", items[i].key, "source", items[i].path);
        int rc = items[i].s3 ? sync_s3(ctx, i, &items[i], entry)
                             : sync_local(ctx, i, &items[i], cache, entry);
        if (rc != 0) {
            json_decref(entry);
            goto out;
        }
        json_array_append_new(objects, entry);
    }
    {
        json_t *kept = json_object();
        for (size_t i = 0; i < count; i++) {
            json_t *c = json_object_get(cache, items[i].key);
            if (c != NULL)
                json_object_set(kept, items[i].key, c);
        }
        json_object_set_new(app_resources(&ctx->app, "data"), "files", kept);
    }
    /* After this pass's own uploads (complete or aborted by now), before
     * status.objects forgets the keys of entries removed from the spec. */
    if (abort_orphans(ctx, items, count) != 0)
        goto out;
    json_object_set(ctx->app.status, "objects", objects);
    step = APP_STEP_READY;
out:
    json_decref(cache);
    json_decref(objects);
    free(items);
    return step;
}
