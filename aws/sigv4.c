/* AWS Signature Version 4, header form, on OpenSSL: canonical request, string
 * to sign and the signing-key chain, with a small per-signer key cache. Any
 * thread; one signer is shared by all workers. */
#include "aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIGV4_ALGORITHM      "AWS4-HMAC-SHA256"
#define SIGV4_KEY_SLOTS      8
#define SIGV4_SCOPE_PART_MAX 64 /* bound on region and service names */
#define SIGV4_MAX_HEADERS    256
#define SIGV4_MAX_QUERY      1024
#define SIGV4_MAX_CANONICAL  (4u * 1024u * 1024u)
#define SIGV4_MAX_PATH_SEGS  4096

/* One cached signing key: the derived key and everything it depends on. */
struct key_slot {
    bool used;
    uint64_t last_use;
    char access_key_id[AWS_ACCESS_KEY_MAX];
    char secret[AWS_SECRET_KEY_MAX];
    char date[9];
    char region[SIGV4_SCOPE_PART_MAX];
    char service[SIGV4_SCOPE_PART_MAX];
    unsigned char key[32];
};

struct sigv4_signer {
    pthread_mutex_t lock;
    uint64_t tick;
    struct key_slot slots[SIGV4_KEY_SLOTS];
};

/* One header as it enters the canonical form. */
struct canon_header {
    const char *name; /* lower-cased copy */
    size_t name_len;
    const char *value;
    size_t index; /* position in the request, for a stable sort */
};

/* One query parameter, encoded: offsets into a shared buffer. */
struct canon_param {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

/* OpenSSL objects fetched once per process (fetching per call is slow). */
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static EVP_MAC_CTX *hmac_template;

static void crypto_init(void)
{
    EVP_MAC *mac;
    OSSL_PARAM params[2];

    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        return;
    hmac_template = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (hmac_template == NULL)
        return;
    params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hmac_template, params) != 1) {
        EVP_MAC_CTX_free(hmac_template);
        hmac_template = NULL;
    }
}

static int crypto_ready(void)
{
    pthread_once(&crypto_once, crypto_init);
    return sha256_md != NULL && hmac_template != NULL ? 0 : -1;
}

static int sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int out_len = 0;

    if (crypto_ready() != 0)
        return -1;
    if (EVP_Digest(data, len, out, &out_len, sha256_md, NULL) != 1 || out_len != 32)
        return -1;
    return 0;
}

static int hmac_sha256(const unsigned char *key, size_t key_len, const void *data, size_t len,
                       unsigned char out[32])
{
    EVP_MAC_CTX *ctx;
    size_t out_len = 0;
    int rc = -1;

    if (crypto_ready() != 0)
        return -1;
    ctx = EVP_MAC_CTX_dup(hmac_template);
    if (ctx == NULL)
        return -1;
    if (EVP_MAC_init(ctx, key, key_len, NULL) != 1)
        goto out;
    if (EVP_MAC_update(ctx, data, len) != 1)
        goto out;
    if (EVP_MAC_final(ctx, out, &out_len, 32) != 1 || out_len != 32)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char digest[32];

    if (sha256(data, len, digest) != 0) {
        out[0] = '\0';
        return;
    }
    hex_encode(digest, sizeof(digest), out);
}

static void put_digits(char *out, int value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

void sigv4_format_amz_date(int64_t t, char out[17])
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        memcpy(out, "19700101T000000Z", 17);
        return;
    }
    put_digits(out, tm.tm_year + 1900, 4);
    put_digits(out + 4, tm.tm_mon + 1, 2);
    put_digits(out + 6, tm.tm_mday, 2);
    out[8] = 'T';
    put_digits(out + 9, tm.tm_hour, 2);
    put_digits(out + 11, tm.tm_min, 2);
    put_digits(out + 13, tm.tm_sec, 2);
    out[15] = 'Z';
    out[16] = '\0';
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

int sigv4_uri_encode(struct aws_buf *buf, const char *s, size_t len, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i = 0;

    while (i < len) {
        size_t run = i;
        char esc[3];
        unsigned char c;

        while (run < len && (is_unreserved((unsigned char)s[run]) || (keep_slash && s[run] == '/')))
            run++;
        if (run > i && aws_buf_append(buf, s + i, run - i) != 0)
            return -1;
        if (run == len)
            break;
        c = (unsigned char)s[run];
        esc[0] = '%';
        esc[1] = digits[c >> 4];
        esc[2] = digits[c & 0x0f];
        if (aws_buf_append(buf, esc, 3) != 0)
            return -1;
        i = run + 1;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into buf (replacing its contents); a '%' not
 * followed by two hex digits stays literal. */
static int percent_decode(struct aws_buf *buf, const char *s, size_t len)
{
    aws_buf_reset(buf);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            c = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        }
        if (aws_buf_append_char(buf, c) != 0)
            return -1;
    }
    return 0;
}

/* The canonical URI. S3: the path as sent. Others: "." and ".." segments and
 * empty segments removed (unless disabled), then every segment URI-encoded
 * once more (AWS's double encoding of the already-encoded wire path). */
static int canonical_uri(struct aws_buf *cr, const struct sigv4_params *params, const char *path)
{
    size_t len = path != NULL ? strlen(path) : 0;
    size_t(*segs)[2] = NULL;
    size_t n_segs = 0;
    int rc = -1;

    if (len == 0)
        return aws_buf_append_char(cr, '/');
    if (params->s3)
        return aws_buf_append(cr, path, len);
    if (params->no_path_normalization)
        return sigv4_uri_encode(cr, path, len, true);

    for (size_t i = 0; i < len; i++)
        n_segs += path[i] == '/';
    if (n_segs >= SIGV4_MAX_PATH_SEGS)
        return -1;
    segs = malloc(sizeof(*segs) * (n_segs + 1));
    if (segs == NULL)
        return -1;
    n_segs = 0;
    for (size_t i = 0; i <= len;) {
        size_t end = i;

        while (end < len && path[end] != '/')
            end++;
        if (end == i || (end - i == 1 && path[i] == '.')) {
            /* empty or "." segment: dropped */
        } else if (end - i == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (n_segs > 0)
                n_segs--;
        } else {
            segs[n_segs][0] = i;
            segs[n_segs][1] = end - i;
            n_segs++;
        }
        i = end + 1;
    }
    if (path[0] == '/' && aws_buf_append_char(cr, '/') != 0)
        goto out;
    for (size_t k = 0; k < n_segs; k++) {
        if (k > 0 && aws_buf_append_char(cr, '/') != 0)
            goto out;
        if (sigv4_uri_encode(cr, path + segs[k][0], segs[k][1], false) != 0)
            goto out;
    }
    if (n_segs > 0 && path[len - 1] == '/' && aws_buf_append_char(cr, '/') != 0)
        goto out;
    if (path[0] != '/' && n_segs == 0 && aws_buf_append_char(cr, '/') != 0)
        goto out;
    rc = 0;
out:
    free(segs);
    return rc;
}

static int param_cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* qsort has no context argument; the encoded bytes live in a per-call buffer
 * whose address is handed over in a thread-local. */
static _Thread_local const char *sort_base;

static int param_cmp(const void *pa, const void *pb)
{
    const struct canon_param *a = pa, *b = pb;
    int c =
        param_cmp_bytes(sort_base + a->name_off, a->name_len, sort_base + b->name_off, b->name_len);

    if (c != 0)
        return c;
    return param_cmp_bytes(sort_base + a->value_off, a->value_len, sort_base + b->value_off,
                           b->value_len);
}

/* The canonical query: every name and value decoded and re-encoded with the
 * SigV4 rules, sorted by name then value, "name=" for an empty value. */
static int canonical_query(struct aws_buf *cr, const char *query)
{
    struct aws_buf enc, tmp;
    struct canon_param *params = NULL;
    size_t n = 0, cap = 1, len;
    int rc = -1;

    if (query == NULL || query[0] == '\0')
        return 0;
    len = strlen(query);
    for (size_t i = 0; i < len; i++)
        cap += query[i] == '&';
    if (cap > SIGV4_MAX_QUERY)
        return -1;
    aws_buf_init(&enc, SIGV4_MAX_CANONICAL);
    aws_buf_init(&tmp, SIGV4_MAX_CANONICAL);
    params = calloc(cap, sizeof(*params));
    if (params == NULL)
        goto out;
    for (size_t i = 0; i < len;) {
        size_t end = i, eq;

        while (end < len && query[end] != '&')
            end++;
        if (end > i) {
            eq = i;
            while (eq < end && query[eq] != '=')
                eq++;
            params[n].name_off = enc.len;
            if (percent_decode(&tmp, query + i, eq - i) != 0 ||
                sigv4_uri_encode(&enc, tmp.data != NULL ? tmp.data : "", tmp.len, false) != 0)
                goto out;
            params[n].name_len = enc.len - params[n].name_off;
            params[n].value_off = enc.len;
            if (eq < end) {
                if (percent_decode(&tmp, query + eq + 1, end - eq - 1) != 0 ||
                    sigv4_uri_encode(&enc, tmp.data != NULL ? tmp.data : "", tmp.len, false) != 0)
                    goto out;
            }
            params[n].value_len = enc.len - params[n].value_off;
            n++;
        }
        i = end + 1;
    }
    sort_base = enc.data;
    qsort(params, n, sizeof(*params), param_cmp);
    sort_base = NULL;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && aws_buf_append_char(cr, '&') != 0)
            goto out;
        if (aws_buf_append(cr, enc.data + params[k].name_off, params[k].name_len) != 0 ||
            aws_buf_append_char(cr, '=') != 0 ||
            aws_buf_append(cr, enc.data + params[k].value_off, params[k].value_len) != 0)
            goto out;
    }
    rc = 0;
out:
    free(params);
    aws_buf_free(&enc);
    aws_buf_free(&tmp);
    return rc;
}

static int header_cmp(const void *pa, const void *pb)
{
    const struct canon_header *a = pa, *b = pb;
    int c = param_cmp_bytes(a->name, a->name_len, b->name, b->name_len);

    if (c != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index ? 1 : 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Appends a header value trimmed, with each inner run of white space
 * (including folded line breaks) collapsed to one space. */
static int append_trimmed(struct aws_buf *cr, const char *v)
{
    const char *p = v;
    bool pending_space = false;

    while (*p != '\0' && is_space(*p))
        p++;
    while (*p != '\0') {
        const char *run = p;

        if (is_space(*p)) {
            pending_space = true;
            p++;
            continue;
        }
        while (*p != '\0' && !is_space(*p))
            p++;
        if (pending_space && aws_buf_append_char(cr, ' ') != 0)
            return -1;
        pending_space = false;
        if (aws_buf_append(cr, run, (size_t)(p - run)) != 0)
            return -1;
    }
    return 0;
}

static bool name_is(const char *name, const char *lower)
{
    size_t i = 0;

    for (; name[i] != '\0' && lower[i] != '\0'; i++) {
        char c = name[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return name[i] == '\0' && lower[i] == '\0';
}

static bool copy_str(char *dst, size_t dst_size, const char *src)
{
    size_t len = strlen(src);

    if (len >= dst_size)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

static int derive_signing_key(const struct aws_credentials *creds, const char *date,
                              const char *region, const char *service, unsigned char out[32])
{
    unsigned char k_secret[4 + AWS_SECRET_KEY_MAX];
    unsigned char k_date[32], k_region[32], k_service[32];
    size_t secret_len = strnlen(creds->secret_access_key, AWS_SECRET_KEY_MAX);
    int rc = -1;

    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, creds->secret_access_key, secret_len);
    if (hmac_sha256(k_secret, 4 + secret_len, date, 8, k_date) != 0)
        goto out;
    if (hmac_sha256(k_date, 32, region, strlen(region), k_region) != 0)
        goto out;
    if (hmac_sha256(k_region, 32, service, strlen(service), k_service) != 0)
        goto out;
    if (hmac_sha256(k_service, 32, "aws4_request", 12, out) != 0)
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(k_secret, sizeof(k_secret));
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_region, sizeof(k_region));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    return rc;
}

static bool slot_matches(const struct key_slot *slot, const struct aws_credentials *creds,
                         const char *date, const char *region, const char *service)
{
    size_t secret_len = strnlen(creds->secret_access_key, AWS_SECRET_KEY_MAX);

    return slot->used && strcmp(slot->access_key_id, creds->access_key_id) == 0 &&
           strcmp(slot->date, date) == 0 && strcmp(slot->region, region) == 0 &&
           strcmp(slot->service, service) == 0 &&
           strnlen(slot->secret, AWS_SECRET_KEY_MAX) == secret_len &&
           CRYPTO_memcmp(slot->secret, creds->secret_access_key, secret_len) == 0;
}

/* The signing key for (credentials, date, region, service): from the cache
 * when present, else derived and cached (replacing the least recently used
 * slot, which is wiped first). */
static int signing_key(struct sigv4_signer *signer, const struct aws_credentials *creds,
                       const char *date, const char *region, const char *service,
                       unsigned char out[32])
{
    struct key_slot *victim = NULL;

    if (signer == NULL)
        return derive_signing_key(creds, date, region, service, out);
    pthread_mutex_lock(&signer->lock);
    for (size_t i = 0; i < SIGV4_KEY_SLOTS; i++) {
        struct key_slot *slot = &signer->slots[i];

        if (slot_matches(slot, creds, date, region, service)) {
            memcpy(out, slot->key, 32);
            slot->last_use = ++signer->tick;
            pthread_mutex_unlock(&signer->lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&signer->lock);

    /* Derived outside the lock; two threads may both derive the same key,
     * which is harmless. */
    if (derive_signing_key(creds, date, region, service, out) != 0)
        return -1;

    pthread_mutex_lock(&signer->lock);
    for (size_t i = 0; i < SIGV4_KEY_SLOTS; i++) {
        struct key_slot *slot = &signer->slots[i];

        if (slot_matches(slot, creds, date, region, service)) {
            victim = NULL;
            goto unlock;
        }
        if (victim == NULL || !slot->used || (victim->used && slot->last_use < victim->last_use))
            victim = victim != NULL && !victim->used ? victim : slot;
    }
    OPENSSL_cleanse(victim, sizeof(*victim));
    if (copy_str(victim->access_key_id, sizeof(victim->access_key_id), creds->access_key_id) &&
        copy_str(victim->date, sizeof(victim->date), date) &&
        copy_str(victim->region, sizeof(victim->region), region) &&
        copy_str(victim->service, sizeof(victim->service), service)) {
        size_t secret_len = strnlen(creds->secret_access_key, AWS_SECRET_KEY_MAX - 1);

        memcpy(victim->secret, creds->secret_access_key, secret_len);
        victim->secret[secret_len] = '\0';
        memcpy(victim->key, out, 32);
        victim->used = true;
        victim->last_use = ++signer->tick;
    } else {
        OPENSSL_cleanse(victim, sizeof(*victim));
    }
unlock:
    pthread_mutex_unlock(&signer->lock);
    return 0;
}

struct sigv4_signer *sigv4_signer_new(void)
{
    struct sigv4_signer *signer = calloc(1, sizeof(*signer));

    if (signer == NULL)
        return NULL;
    if (pthread_mutex_init(&signer->lock, NULL) != 0) {
        free(signer);
        return NULL;
    }
    return signer;
}

void sigv4_signer_free(struct sigv4_signer *signer)
{
    if (signer == NULL)
        return;
    OPENSSL_cleanse(signer->slots, sizeof(signer->slots));
    pthread_mutex_destroy(&signer->lock);
    free(signer);
}

void sigv4_result_clear(struct sigv4_result *res)
{
    if (res == NULL)
        return;
    aws_buf_free(&res->canonical_request);
    aws_buf_free(&res->string_to_sign);
    OPENSSL_cleanse(res, sizeof(*res));
}

static bool valid_scope_part(const char *s)
{
    size_t len;

    if (s == NULL)
        return false;
    len = strnlen(s, SIGV4_SCOPE_PART_MAX);
    if (len == 0 || len == SIGV4_SCOPE_PART_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/' || is_space(s[i]))
            return false;
    }
    return true;
}

/* Builds the canonical headers and signed-header list for `req` plus the
 * headers the signer adds. */
static int canonical_headers(struct aws_buf *cr, struct aws_buf *signed_list,
                             const struct sigv4_request *req, const struct sigv4_result *res,
                             bool add_token, bool sign_token, bool add_sha)
{
    struct canon_header *hs = NULL;
    char *names = NULL;
    size_t names_len = 0, n = 0, pos = 0;
    int rc = -1;

    if (req->n_headers > SIGV4_MAX_HEADERS || (req->n_headers > 0 && req->headers == NULL))
        return -1;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (req->headers[i].name == NULL || req->headers[i].value == NULL ||
            req->headers[i].name[0] == '\0')
            return -1;
        names_len += strlen(req->headers[i].name) + 1;
    }
    hs = calloc(req->n_headers + 3, sizeof(*hs));
    names = malloc(names_len + 1);
    if (hs == NULL || names == NULL)
        goto out;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name;
        size_t len = strlen(name);

        if (name_is(name, "authorization") || name_is(name, "x-amz-date") ||
            (add_token && name_is(name, "x-amz-security-token")) ||
            (add_sha && name_is(name, "x-amz-content-sha256")))
            continue;
        for (size_t k = 0; k < len; k++) {
            char c = name[k];

            names[pos + k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        names[pos + len] = '\0';
        hs[n].name = names + pos;
        hs[n].name_len = len;
        hs[n].value = req->headers[i].value;
        hs[n].index = i;
        pos += len + 1;
        n++;
    }
    hs[n++] = (struct canon_header){"x-amz-date", 10, res->amz_date, SIZE_MAX};
    if (sign_token)
        hs[n++] = (struct canon_header){"x-amz-security-token", 20, res->security_token, SIZE_MAX};
    if (add_sha)
        hs[n++] = (struct canon_header){"x-amz-content-sha256", 20, res->content_sha256, SIZE_MAX};
    qsort(hs, n, sizeof(*hs), header_cmp);

    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && hs[i].name_len == hs[i - 1].name_len &&
                    memcmp(hs[i].name, hs[i - 1].name, hs[i].name_len) == 0;

        if (same) {
            if (aws_buf_append_char(cr, ',') != 0)
                goto out;
        } else {
            if (i > 0 && aws_buf_append_char(cr, '\n') != 0)
                goto out;
            if (aws_buf_append(cr, hs[i].name, hs[i].name_len) != 0 ||
                aws_buf_append_char(cr, ':') != 0)
                goto out;
            if (signed_list->len > 0 && aws_buf_append_char(signed_list, ';') != 0)
                goto out;
            if (aws_buf_append(signed_list, hs[i].name, hs[i].name_len) != 0)
                goto out;
        }
        if (append_trimmed(cr, hs[i].value) != 0)
            goto out;
    }
    if (aws_buf_append_char(cr, '\n') != 0)
        goto out;
    rc = 0;
out:
    free(hs);
    free(names);
    return rc;
}

static int sign_request(struct sigv4_signer *signer, const struct aws_credentials *creds,
                        const struct sigv4_params *params, const struct sigv4_request *req,
                        struct sigv4_result *out, bool debug)
{
    struct aws_buf cr, signed_list;
    char date[9], payload_hash[65], cr_hex[65], sts[512];
    unsigned char key[32], digest[32];
    bool add_token = false, sign_token = false, add_sha;
    int n, rc = -1;

    memset(out, 0, sizeof(*out));
    aws_buf_init(&cr, SIGV4_MAX_CANONICAL);
    aws_buf_init(&signed_list, 64u * 1024u);
    if (creds == NULL || params == NULL || req == NULL || req->method == NULL ||
        req->method[0] == '\0')
        goto out;
    if (creds->access_key_id[0] == '\0' || creds->secret_access_key[0] == '\0' ||
        strnlen(creds->access_key_id, AWS_ACCESS_KEY_MAX) == AWS_ACCESS_KEY_MAX ||
        strnlen(creds->secret_access_key, AWS_SECRET_KEY_MAX) == AWS_SECRET_KEY_MAX)
        goto out;
    if (!valid_scope_part(params->region) || !valid_scope_part(params->service))
        goto out;

    sigv4_format_amz_date(params->time, out->amz_date);
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';

    if (strnlen(creds->session_token, AWS_SESSION_TOKEN_MAX) == AWS_SESSION_TOKEN_MAX)
        goto out;
    if (creds->session_token[0] != '\0') {
        memcpy(out->security_token, creds->session_token, strlen(creds->session_token) + 1);
        add_token = true;
        sign_token = !params->omit_session_token;
    }

    if (req->payload_hash != NULL) {
        if (!copy_str(payload_hash, sizeof(payload_hash), req->payload_hash) ||
            payload_hash[0] == '\0')
            goto out;
    } else {
        if (req->payload == NULL && req->payload_len > 0)
            goto out;
        sigv4_sha256_hex(req->payload != NULL ? (const void *)req->payload : "", req->payload_len,
                         payload_hash);
        if (payload_hash[0] == '\0')
            goto out;
    }
    add_sha = params->s3 || params->sign_content_sha256;
    if (add_sha)
        memcpy(out->content_sha256, payload_hash, sizeof(payload_hash));

    /* Canonical request. */
    if (aws_buf_append_str(&cr, req->method) != 0 || aws_buf_append_char(&cr, '\n') != 0)
        goto out;
    if (canonical_uri(&cr, params, req->path) != 0 || aws_buf_append_char(&cr, '\n') != 0)
        goto out;
    if (canonical_query(&cr, req->query) != 0 || aws_buf_append_char(&cr, '\n') != 0)
        goto out;
    if (canonical_headers(&cr, &signed_list, req, out, add_token, sign_token, add_sha) != 0)
        goto out;
    if (aws_buf_append_char(&cr, '\n') != 0 || aws_buf_append_str(&cr, signed_list.data) != 0 ||
        aws_buf_append_char(&cr, '\n') != 0 || aws_buf_append_str(&cr, payload_hash) != 0)
        goto out;

    /* String to sign. */
    if (sha256(cr.data, cr.len, digest) != 0)
        goto out;
    hex_encode(digest, sizeof(digest), cr_hex);
    n = snprintf(sts, sizeof(sts), SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date,
                 date, params->region, params->service, cr_hex);
    if (n < 0 || (size_t)n >= sizeof(sts))
        goto out;

    /* Signature. */
    if (signing_key(signer, creds, date, params->region, params->service, key) != 0)
        goto out;
    if (hmac_sha256(key, sizeof(key), sts, (size_t)n, digest) != 0)
        goto out;
    hex_encode(digest, sizeof(digest), out->signature);
    n = snprintf(out->authorization, sizeof(out->authorization),
                 SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                                 "Signature=%s",
                 creds->access_key_id, date, params->region, params->service, signed_list.data,
                 out->signature);
    if (n < 0 || (size_t)n >= sizeof(out->authorization))
        goto out;

    if (debug) {
        aws_buf_init(&out->string_to_sign, 0);
        if (aws_buf_append_str(&out->string_to_sign, sts) != 0)
            goto out;
        out->canonical_request = cr;
        aws_buf_init(&cr, 0);
    }
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    aws_buf_free(&cr);
    aws_buf_free(&signed_list);
    if (rc != 0)
        sigv4_result_clear(out);
    return rc;
}

int sigv4_sign(struct sigv4_signer *signer, const struct aws_credentials *creds,
               const struct sigv4_params *params, const struct sigv4_request *req,
               struct sigv4_result *out)
{
    return sign_request(signer, creds, params, req, out, false);
}

int sigv4_sign_debug(struct sigv4_signer *signer, const struct aws_credentials *creds,
                     const struct sigv4_params *params, const struct sigv4_request *req,
                     struct sigv4_result *out)
{
    return sign_request(signer, creds, params, req, out, true);
}
