/* HTTP transport on libcurl (see http.h). Called from any worker thread.
 *
 * Connection reuse: libcurl documents that sharing the connection cache
 * (CURL_LOCK_DATA_CONNECT) between concurrent threads is not thread-safe
 * (curl KNOWN_BUGS "A shared connection cache is not thread-safe", still
 * open in 7.88). So the CURLSH share holds only the DNS cache and TLS
 * sessions, and connections are reused through a pool of easy handles: each
 * idle handle keeps its live connection, and a caller takes the most
 * recently returned handle. With N threads calling concurrently at most N
 * handles are busy, so at most N connections per host are opened. */
#include "aws/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 3000L
#define HTTP_DEFAULT_TIMEOUT_MS         30000L
#define HTTP_DEFAULT_MAX_RESPONSE       (16u * 1024u * 1024u)
#define HTTP_POOL_MAX                   16
#define HTTP_MAX_RESPONSE_HEADERS       128
#define HTTP_MAX_HEADER_BYTES           (64u * 1024u)
#define HTTP_MAX_REQUEST_HEADERS        64

struct aws_http {
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    CURL *pool[HTTP_POOL_MAX]; /* idle easy handles, most recent last */
    size_t n_pool;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_response_bytes;
    char *ca_file;
    atomic_ulong requests;
    atomic_ulong connections_opened;
};

/* State of one transfer, shared with the curl callbacks. */
struct transfer {
    struct aws_http *http;
    size_t max_body;
    unsigned char *body; /* capacity never exceeds max_body + 1 */
    size_t body_len;
    size_t body_cap;
    struct aws_http_header *headers;
    size_t n_headers;
    size_t header_bytes;
    int too_large;  /* body over max_body */
    int bad_header; /* header limits exceeded or no memory */
    int no_memory;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
    struct aws_http *http = arg;
    (void)h;
    (void)access;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&http->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    struct aws_http *http = arg;
    (void)h;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&http->share_locks[data]);
}

struct aws_http *aws_http_new(const struct aws_http_options *opts)
{
    struct aws_http *http;

    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return NULL;
    http = calloc(1, sizeof(*http));
    if (http == NULL)
        return NULL;
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&http->share_locks[i], NULL);
    pthread_mutex_init(&http->pool_lock, NULL);
    atomic_init(&http->requests, 0);
    atomic_init(&http->connections_opened, 0);
    http->connect_timeout_ms = HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    http->timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    http->max_response_bytes = HTTP_DEFAULT_MAX_RESPONSE;
    if (opts != NULL) {
        if (opts->connect_timeout_ms > 0)
            http->connect_timeout_ms = opts->connect_timeout_ms;
        if (opts->timeout_ms > 0)
            http->timeout_ms = opts->timeout_ms;
        if (opts->max_response_bytes > 0)
            http->max_response_bytes = opts->max_response_bytes;
        if (opts->ca_file != NULL && (http->ca_file = strdup(opts->ca_file)) == NULL)
            goto fail;
    }
    http->share = curl_share_init();
    if (http->share == NULL ||
        curl_share_setopt(http->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(http->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(http->share, CURLSHOPT_USERDATA, http) != CURLSHE_OK ||
        curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        goto fail;
    return http;
fail:
    aws_http_free(http);
    return NULL;
}

void aws_http_free(struct aws_http *http)
{
    if (http == NULL)
        return;
    /* Easy handles first: the share cannot be cleaned while they use it. */
    for (size_t i = 0; i < http->n_pool; i++)
        curl_easy_cleanup(http->pool[i]);
    if (http->share != NULL)
        curl_share_cleanup(http->share);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&http->share_locks[i]);
    pthread_mutex_destroy(&http->pool_lock);
    free(http->ca_file);
    free(http);
}

/* Takes an idle easy handle (with its live connections) or makes one. */
static CURL *pool_get(struct aws_http *http)
{
    CURL *h = NULL;

    pthread_mutex_lock(&http->pool_lock);
    if (http->n_pool > 0)
        h = http->pool[--http->n_pool];
    pthread_mutex_unlock(&http->pool_lock);
    if (h == NULL)
        h = curl_easy_init();
    return h;
}

static void pool_put(struct aws_http *http, CURL *h)
{
    pthread_mutex_lock(&http->pool_lock);
    if (http->n_pool < HTTP_POOL_MAX) {
        http->pool[http->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&http->pool_lock);
    if (h != NULL)
        curl_easy_cleanup(h);
}

static void free_headers(struct aws_http_header *headers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)headers[i].name);
        free((char *)headers[i].value);
    }
    free(headers);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;

    if (n > t->max_body - t->body_len) {
        t->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (t->body_len + n + 1 > t->body_cap) {
        size_t cap = t->body_cap ? t->body_cap : 4096;
        unsigned char *b;

        while (cap < t->body_len + n + 1)
            cap *= 2;
        if (cap > t->max_body + 1)
            cap = t->max_body + 1;
        b = realloc(t->body, cap);
        if (b == NULL) {
            t->no_memory = 1;
            return 0;
        }
        t->body = b;
        t->body_cap = cap;
    }
    memcpy(t->body + t->body_len, data, n);
    t->body_len += n;
    t->body[t->body_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb, len = n, name_len;
    const char *colon, *v, *end;
    struct aws_http_header *h;
    char *name, *value;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new status line (after 1xx): start the header list over. */
        free_headers(t->headers, t->n_headers);
        t->headers = NULL;
        t->n_headers = 0;
        t->header_bytes = 0;
        return n;
    }
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len == 0)
        return n;
    colon = memchr(data, ':', len);
    if (colon == NULL)
        return n; /* obsolete folding or junk: ignored */
    t->header_bytes += len;
    if (t->n_headers >= HTTP_MAX_RESPONSE_HEADERS || t->header_bytes > HTTP_MAX_HEADER_BYTES) {
        t->bad_header = 1;
        return 0;
    }
    name_len = (size_t)(colon - data);
    v = colon + 1;
    end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    name = strndup(data, name_len);
    value = strndup(v, (size_t)(end - v));
    h = realloc(t->headers, (t->n_headers + 1) * sizeof(*h));
    if (name == NULL || value == NULL || h == NULL) {
        free(name);
        free(value);
        if (h != NULL)
            t->headers = h;
        t->no_memory = 1;
        return 0;
    }
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    t->headers = h;
    h[t->n_headers].name = name;
    h[t->n_headers].value = value;
    t->n_headers++;
    return n;
}

/* Counts each new TCP connection. */
static int on_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    struct aws_http *http = arg;
    (void)fd;
    if (purpose == CURLSOCKTYPE_IPCXN)
        atomic_fetch_add(&http->connections_opened, 1);
    return CURL_SOCKOPT_OK;
}

/* Builds the header list: the caller's headers, plus removals of the
 * headers libcurl would add on its own (Expect, Accept, and a form
 * Content-Type for bodies) unless the caller set them. */
static int build_headers(const struct aws_http_request *req, struct curl_slist **out)
{
    struct curl_slist *list = NULL, *l;
    int has_ct = 0, has_accept = 0, has_expect = 0;
    char line[8192];

    *out = NULL;
    if (req->n_headers > HTTP_MAX_REQUEST_HEADERS)
        return -1;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name, *value = req->headers[i].value;
        int n;

        if (name == NULL || *name == '\0' || strpbrk(name, ":\r\n") != NULL)
            goto fail;
        if (value == NULL)
            value = "";
        if (strpbrk(value, "\r\n") != NULL)
            goto fail;
        if (strcasecmp(name, "content-type") == 0)
            has_ct = 1;
        else if (strcasecmp(name, "accept") == 0)
            has_accept = 1;
        else if (strcasecmp(name, "expect") == 0)
            has_expect = 1;
        /* "Name;" is curl's way to send a header with an empty value. */
        n = *value ? snprintf(line, sizeof(line), "%s: %s", name, value)
                   : snprintf(line, sizeof(line), "%s;", name);
        if (n < 0 || (size_t)n >= sizeof(line))
            goto fail;
        l = curl_slist_append(list, line);
        if (l == NULL)
            goto fail;
        list = l;
    }
    if (!has_ct && (l = curl_slist_append(list, "Content-Type:")) != NULL)
        list = l;
    if (!has_accept && (l = curl_slist_append(list, "Accept:")) != NULL)
        list = l;
    if (!has_expect && (l = curl_slist_append(list, "Expect:")) != NULL)
        list = l;
    *out = list;
    return 0;
fail:
    curl_slist_free_all(list);
    return -1;
}

static int set_method(CURL *h, const struct aws_http_request *req)
{
    const char *m = req->method ? req->method : "GET";
    CURLcode rc = CURLE_OK;

    if (strcmp(m, "HEAD") == 0)
        return curl_easy_setopt(h, CURLOPT_NOBODY, 1L) == CURLE_OK ? 0 : -1;
    if (req->body_len == 0 && (strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0)) {
        rc = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        if (rc == CURLE_OK && strcmp(m, "GET") != 0)
            rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
        return rc == CURLE_OK ? 0 : -1;
    }
    /* Every other request sends its body (possibly empty, with
     * Content-Length: 0) from memory; curl does not copy it. */
    rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
    if (rc == CURLE_OK && strcmp(m, "POST") != 0)
        rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    return rc == CURLE_OK ? 0 : -1;
}

static void map_error(CURLcode rc, const struct transfer *t, const char *errbuf,
                      struct aws_error *err)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);

    if (t->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        aws_error_set(err, AWS_ERR_TOO_LARGE, "response body exceeds %zu bytes", t->max_body);
    else if (t->no_memory || rc == CURLE_OUT_OF_MEMORY)
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory receiving the response");
    else if (t->bad_header)
        aws_error_set(err, AWS_ERR_TRANSPORT, "response headers exceed the limits");
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        aws_error_set(err, AWS_ERR_TIMEOUT, "%s", detail);
    else
        aws_error_set(err, AWS_ERR_TRANSPORT, "%s", detail);
}

int aws_http_perform(struct aws_http *http, const struct aws_http_request *req,
                     struct aws_http_response *out, struct aws_error *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    struct transfer t = {.http = http};
    long connect_ms, total_ms, status = 0;
    CURL *h = NULL;
    CURLcode rc;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    aws_error_clear(err);
    if (req == NULL || req->url == NULL)
        return aws_error_set(err, AWS_ERR_INVALID, "no URL");
    if (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0)
        return aws_error_set(err, AWS_ERR_INVALID, "unsupported URL scheme");
    t.max_body = req->max_response_bytes ? req->max_response_bytes : http->max_response_bytes;
    connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : http->connect_timeout_ms;
    total_ms = req->timeout_ms > 0 ? req->timeout_ms : http->timeout_ms;
    if (build_headers(req, &headers) != 0) {
        aws_error_set(err, AWS_ERR_INVALID, "invalid request header");
        goto out;
    }
    h = pool_get(http);
    if (h == NULL) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "curl_easy_init failed");
        goto out;
    }
    curl_easy_reset(h);
    atomic_fetch_add(&http->requests, 1);
    if (curl_easy_setopt(h, CURLOPT_SHARE, http->share) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms) != CURLE_OK ||
        /* A HEAD answer announces the size of a body that never comes
         * (HeadObject of a large object): no limit applies to it. */
        (strcmp(req->method, "HEAD") != 0 &&
         curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t.max_body) != CURLE_OK) ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &t) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &t) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_sockopt) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, http) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
        (http->ca_file != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, http->ca_file) != CURLE_OK) ||
        set_method(h, req) != 0) {
        aws_error_set(err, AWS_ERR_INTERNAL, "configuring the transfer failed");
        goto out;
    }
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        map_error(rc, &t, errbuf, err);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (t.body == NULL) {
        t.body = malloc(1);
        if (t.body == NULL) {
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        t.body[0] = '\0';
    }
    out->status = status;
    out->headers = t.headers;
    out->n_headers = t.n_headers;
    out->body = t.body;
    out->body_len = t.body_len;
    t.headers = NULL;
    t.n_headers = 0;
    t.body = NULL;
    ret = 0;
out:
    if (h != NULL) {
        /* Detach the per-call pointers before the handle goes back. */
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        pool_put(http, h);
    }
    curl_slist_free_all(headers);
    free_headers(t.headers, t.n_headers);
    free(t.body);
    return ret;
}

const char *aws_http_response_header(const struct aws_http_response *resp, const char *name)
{
    if (resp == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < resp->n_headers; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

void aws_http_response_clear(struct aws_http_response *resp)
{
    if (resp == NULL)
        return;
    free_headers(resp->headers, resp->n_headers);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

void aws_http_get_stats(struct aws_http *http, struct aws_http_stats *out)
{
    out->requests = atomic_load(&http->requests);
    out->connections_opened = atomic_load(&http->connections_opened);
}
