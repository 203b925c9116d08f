/* S3 manifest source (see source_s3.h). The timer and delivery run on the
 * loop thread; each poll runs on libuv's thread pool with its own copy of the
 * previous snapshot, so the two threads share nothing while it runs. */
#include "controller/source_s3.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_BUCKET_MAX 64
#define S3_PREFIX_MAX 1024

struct source_s3 {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_work_t work;
    struct source_s3_config cfg;
    char bucket[S3_BUCKET_MAX];
    char prefix[S3_PREFIX_MAX];
    source_cb cb;
    void *arg;
    struct source_snapshot last; /* last delivered (loop thread) */
    bool delivered_once;
    bool polling;
    bool stopping;
    bool timer_closed;
    /* Owned by the poll while `polling`. */
    struct source_snapshot poll_prev;
    struct source_snapshot poll_out;
    struct aws_error poll_err;
    int poll_rc;
    char last_error[600];
};

static bool valid_bucket_name(const char *b)
{
    size_t n = strlen(b);

    if (n < 3 || n > 63)
        return false;
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return false;
    return true;
}

int source_s3_parse_url(const char *url, char *bucket, size_t bucket_len, char *prefix,
                        size_t prefix_len)
{
    const char *rest, *slash;
    size_t blen, plen;

    if (strncmp(url, "s3://", 5) != 0)
        return -1;
    rest = url + 5;
    slash = strchr(rest, '/');
    blen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (blen == 0 || blen >= bucket_len)
        return -1;
    memcpy(bucket, rest, blen);
    bucket[blen] = '\0';
    if (!valid_bucket_name(bucket))
        return -1;
    rest = slash ? slash + 1 : "";
    plen = strlen(rest);
    if (plen + 2 > prefix_len)
        return -1;
    memcpy(prefix, rest, plen + 1);
    if (plen > 0 && prefix[plen - 1] != '/') {
        prefix[plen] = '/';
        prefix[plen + 1] = '\0';
    }
    return 0;
}

/* Appends a file to out (grows the array). Takes ownership of nothing. */
static struct source_file *append_file(struct source_snapshot *out, size_t *cap)
{
    if (out->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct source_file *grown = realloc(out->files, ncap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        out->files = grown;
        *cap = ncap;
    }
    memset(&out->files[out->n], 0, sizeof(out->files[0]));
    return &out->files[out->n++];
}

static const struct source_file *find_previous(const struct source_snapshot *prev, const char *name,
                                               const char *etag)
{
    long at = prev != NULL ? source_snapshot_find(prev, name) : -1; /* prev is sorted */

    return at >= 0 && strcmp(prev->files[at].id, etag) == 0 ? &prev->files[at] : NULL;
}

/* Fills f->data with the object's bytes, or f->error when it is too large. */
static int fetch_object(struct aws_client *client, const char *bucket, const char *key,
                        json_int_t size, struct source_file *f, struct aws_error *err)
{
    json_t *in, *out = NULL;
    struct aws_buf body;
    struct aws_call_options opts = {0};
    int rc;

    if (size > (json_int_t)SOURCE_FILE_MAX) {
        f->error = strdup("file is larger than the 1 MiB limit for a manifest");
        return f->error ? 0 : aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    aws_buf_init(&body, SOURCE_FILE_MAX + 1);
    opts.payload_out = &body;
    in = json_pack("{s:s, s:s}", "Bucket", bucket, "Key", key);
    rc = aws_call_ex(client, "s3", "GetObject", in, &opts, &out, err);
    json_decref(in);
    json_decref(out);
    if (rc != 0) {
        aws_buf_free(&body);
        return -1;
    }
    f->data = aws_buf_steal(&body, &f->len);
    if (f->data == NULL) {
        f->data = strdup("");
        if (f->data == NULL)
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    return 0;
}

struct poll_page_ctx {
    struct aws_client *client;
    const char *bucket;
    const char *prefix;
    size_t max_files;
    const struct source_snapshot *previous;
    struct source_snapshot *out;
    size_t cap;
};

static int on_page(const json_t *page, void *arg, struct aws_error *err)
{
    struct poll_page_ctx *ctx = arg;
    json_t *contents = json_object_get(page, "Contents");
    size_t i, plen = strlen(ctx->prefix);
    json_t *obj;

    json_array_foreach(contents, i, obj)
    {
        const char *key = json_string_value(json_object_get(obj, "Key"));
        const char *etag = json_string_value(json_object_get(obj, "ETag"));
        json_int_t size = json_integer_value(json_object_get(obj, "Size"));
        const struct source_file *prev;
        struct source_file *f;
        const char *name;

        if (key == NULL || strncmp(key, ctx->prefix, plen) != 0)
            continue;
        name = key + plen;
        /* Direct children only, like the directory source. */
        if (strchr(name, '/') != NULL || !source_is_manifest_name(name))
            continue;
        if (ctx->out->n >= ctx->max_files)
            return 1;
        f = append_file(ctx->out, &ctx->cap);
        if (f == NULL)
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        f->name = strdup(name);
        f->path = malloc(strlen(ctx->bucket) + strlen(key) + 7);
        if (f->name == NULL || f->path == NULL)
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        sprintf(f->path, "s3://%s/%s", ctx->bucket, key);
        snprintf(f->id, sizeof(f->id), "%s", etag ? etag : "");
        prev = find_previous(ctx->previous, name, f->id);
        if (prev != NULL && etag != NULL) {
            if (prev->data != NULL) {
                f->data = malloc(prev->len + 1);
                if (f->data == NULL)
                    return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
                memcpy(f->data, prev->data, prev->len + 1);
                f->len = prev->len;
            } else if (prev->error != NULL && (f->error = strdup(prev->error)) == NULL) {
                return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            }
            continue;
        }
        if (fetch_object(ctx->client, ctx->bucket, key, size, f, err) != 0)
            return -1;
    }
    return 0;
}

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const struct source_file *)a)->name, ((const struct source_file *)b)->name);
}

int source_s3_poll_once(struct aws_client *client, const char *bucket, const char *prefix,
                        size_t max_files, const struct source_snapshot *previous,
                        struct source_snapshot *out, struct aws_error *err)
{
    struct poll_page_ctx ctx = {client,   bucket, prefix, max_files ? max_files : 10000,
                                previous, out,    0};
    json_t *in;
    int rc;

    memset(out, 0, sizeof(*out));
    aws_error_clear(err);
    in = json_pack("{s:s, s:s}", "Bucket", bucket, "Prefix", prefix);
    if (in == NULL)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    rc = aws_paginate(client, "s3", "ListObjectsV2", in, 1000, on_page, &ctx, err);
    json_decref(in);
    if (rc != 0) {
        source_snapshot_clear(out);
        return -1;
    }
    if (out->n > 1)
        qsort(out->files, out->n, sizeof(*out->files), compare_files);
    return 0;
}

static void poll_work(uv_work_t *work)
{
    struct source_s3 *src = work->data;

    src->poll_rc =
        source_s3_poll_once(src->cfg.client, src->bucket, src->prefix, src->cfg.max_files,
                            &src->poll_prev, &src->poll_out, &src->poll_err);
}

static void maybe_free(struct source_s3 *src)
{
    if (src->stopping && src->timer_closed && !src->polling) {
        source_snapshot_clear(&src->last);
        free(src);
    }
}

static void poll_done(uv_work_t *work, int status)
{
    struct source_s3 *src = work->data;

    src->polling = false;
    source_snapshot_clear(&src->poll_prev);
    if (src->stopping || status != 0) {
        source_snapshot_clear(&src->poll_out);
        maybe_free(src);
        return;
    }
    if (src->poll_rc != 0) {
        /* Outage: keep the last desired state; never turn a failure into deletes. */
        snprintf(src->last_error, sizeof(src->last_error), "%.100s: %.400s (HTTP %ld)",
                 src->poll_err.code, src->poll_err.message, src->poll_err.http_status);
        return;
    }
    src->last_error[0] = '\0';
    if (src->delivered_once && source_snapshot_equal(&src->poll_out, &src->last)) {
        source_snapshot_clear(&src->poll_out);
        return;
    }
    source_snapshot_clear(&src->last);
    src->last = src->poll_out;
    memset(&src->poll_out, 0, sizeof(src->poll_out));
    src->delivered_once = true;
    src->cb(&src->last, src->arg);
}

void source_s3_rescan(struct source_s3 *src)
{
    if (src->polling || src->stopping)
        return;
    if (source_snapshot_copy(&src->poll_prev, &src->last) != 0)
        return;
    src->work.data = src;
    src->polling = true;
    if (uv_queue_work(src->loop, &src->work, poll_work, poll_done) != 0) {
        src->polling = false;
        source_snapshot_clear(&src->poll_prev);
    }
}

static void on_timer(uv_timer_t *t)
{
    source_s3_rescan(t->data);
}

int source_s3_start(uv_loop_t *loop, const struct source_s3_config *cfg, source_cb cb, void *arg,
                    struct source_s3 **out, char *errbuf, size_t errlen)
{
    struct source_s3 *src;

    *out = NULL;
    src = calloc(1, sizeof(*src));
    if (src == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    if (source_s3_parse_url(cfg->url, src->bucket, sizeof(src->bucket), src->prefix,
                            sizeof(src->prefix)) != 0) {
        snprintf(errbuf, errlen, "--source %s: expected s3://BUCKET/PREFIX with a valid bucket",
                 cfg->url);
        free(src);
        return -1;
    }
    src->cfg = *cfg;
    if (src->cfg.interval_ms <= 0)
        src->cfg.interval_ms = 30000;
    src->loop = loop;
    src->cb = cb;
    src->arg = arg;
    uv_timer_init(loop, &src->timer);
    src->timer.data = src;
    uv_timer_start(&src->timer, on_timer, 0, (uint64_t)src->cfg.interval_ms);
    *out = src;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct source_s3 *src = h->data;

    src->timer_closed = true;
    maybe_free(src);
}

void source_s3_stop(struct source_s3 *src)
{
    if (src == NULL)
        return;
    src->stopping = true;
    uv_timer_stop(&src->timer);
    uv_close((uv_handle_t *)&src->timer, on_timer_closed);
}

const char *source_s3_last_error(const struct source_s3 *src)
{
    return src->last_error;
}
