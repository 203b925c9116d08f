/* AWS Signature Version 4, header form: canonical request, string to sign,
 * signing-key derivation (cached per day/region/service) and the headers a
 * signed request carries. Thread-safe. */
#ifndef AVIARY_AWS_SIGV4_H
#define AVIARY_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/buffer.h"
#include "aws/credentials.h"

/* A request to sign, as it will go on the wire. Borrowed pointers. */
struct sigv4_header {
    const char *name;
    const char *value;
};

struct sigv4_request {
    const char *method;
    const char *path;  /* the raw path as sent, e.g. "/a%20b/" (may be unnormalised) */
    const char *query; /* the raw query string without '?', or NULL/"" */
    const struct sigv4_header *headers; /* include "host"; duplicates allowed */
    size_t n_headers;
    const unsigned char *payload;
    size_t payload_len;
    /* Hex SHA-256 of the payload if the caller has it (or "UNSIGNED-PAYLOAD");
     * NULL to have it computed. */
    const char *payload_hash;
};

struct sigv4_params {
    const char *region;
    const char *service; /* signing name, e.g. "elasticloadbalancing" */
    int64_t time;        /* unix seconds of the request */
    /* S3 rules: no path normalisation, no double URI-encoding, and the
     * x-amz-content-sha256 header is added and signed. */
    bool s3;
    /* Add and sign x-amz-content-sha256 even when not S3. */
    bool sign_content_sha256;
    /* Non-S3 only: encode the path as given, without removing "." and ".."
     * segments and duplicate slashes (the suite's "normalize": false). */
    bool no_path_normalization;
    /* Return X-Amz-Security-Token in the result but leave it out of the
     * signature (the few services that want it added after signing). */
    bool omit_session_token;
};

/* Headers to add to the request: always X-Amz-Date and Authorization;
 * X-Amz-Security-Token when the credentials have a session token;
 * X-Amz-Content-Sha256 for S3. Values are NUL-terminated strings owned by
 * the struct; clear it with sigv4_result_clear. */
struct sigv4_result {
    char amz_date[17]; /* 20150830T123600Z */
    char authorization[1024];
    char content_sha256[65];                    /* "" unless added */
    char security_token[AWS_SESSION_TOKEN_MAX]; /* "" unless added */
    /* Intermediate forms, filled only by sigv4_sign_debug. */
    struct aws_buf canonical_request;
    struct aws_buf string_to_sign;
    char signature[65]; /* hex signature, always filled */
};

struct sigv4_signer;

/* A signer with a small cache of derived signing keys (per access key, day,
 * region, service); derived keys are wiped when replaced and on free.
 * Returns NULL on allocation failure. */
struct sigv4_signer *sigv4_signer_new(void);
void sigv4_signer_free(struct sigv4_signer *signer);

/* Signs `req`. *out need not be initialised (a previous debug result must be
 * cleared first). Returns 0 with *out filled, or -1 (invalid input, a result
 * that does not fit *out, or allocation failure; *out is then cleared).
 * `signer` may be NULL (no key caching). Request headers named
 * authorization, x-amz-date, and x-amz-security-token / x-amz-content-sha256
 * when the signer adds them, are ignored: the signer's own values are the
 * ones signed. Never logs; secrets in stack buffers are wiped before return. */
int sigv4_sign(struct sigv4_signer *signer, const struct aws_credentials *creds,
               const struct sigv4_params *params, const struct sigv4_request *req,
               struct sigv4_result *out);

/* Like sigv4_sign, and also keeps the canonical request, string to sign and
 * signature in *out (for tests and debugging). */
int sigv4_sign_debug(struct sigv4_signer *signer, const struct aws_credentials *creds,
                     const struct sigv4_params *params, const struct sigv4_request *req,
                     struct sigv4_result *out);

void sigv4_result_clear(struct sigv4_result *res);

/* Formats unix time t as YYYYMMDD'T'HHMMSS'Z' into out[17]. */
void sigv4_format_amz_date(int64_t t, char out[17]);

/* Lower-case hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* URI-encodes s per SigV4 (unreserved A-Z a-z 0-9 - _ . ~ kept; everything
 * else %XX upper-case); '/' kept when keep_slash. Appends to buf. Returns 0
 * or -1 when the buffer's maximum is reached. */
int sigv4_uri_encode(struct aws_buf *buf, const char *s, size_t len, bool keep_slash);

#endif
