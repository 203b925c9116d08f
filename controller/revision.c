/* Revision and spec hashes: SHA-256 over canonical JSON. Pure; any thread. */
#include "controller/revision.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

const char *const revision_fields[] = {
    "image",        "port", "command", "args",        "cpu", "memory",
    "architecture", "env",  "secrets", "healthCheck", NULL,
};

char *revision_canonical_json(const json_t *v)
{
    return json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Hex SHA-256 of the canonical JSON of v, truncated to hexlen characters. */
static int hash_hex(const json_t *v, char *out, size_t hexlen)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *text;
    size_t i;
    int rc = -1;

    out[0] = '\0';
    text = revision_canonical_json(v);
    if (text == NULL)
        return -1;
    if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen * 2 < hexlen)
        goto out;
    for (i = 0; i < hexlen; i++)
        out[i] = digits[(md[i / 2] >> (i % 2 ? 0 : 4)) & 0xF];
    out[hexlen] = '\0';
    rc = 0;
out:
    free(text);
    return rc;
}

int revision_compute(const json_t *spec, char out[REVISION_LEN + 1])
{
    json_t *subset;
    size_t i;
    int rc = -1;

    out[0] = '\0';
    if (!json_is_object(spec))
        return -1;
    subset = json_object();
    if (subset == NULL)
        return -1;
    for (i = 0; revision_fields[i] != NULL; i++) {
        json_t *v = json_object_get(spec, revision_fields[i]);

        if (v != NULL && json_object_set(subset, revision_fields[i], v) < 0)
            goto out;
    }
    rc = hash_hex(subset, out, REVISION_LEN);
out:
    json_decref(subset);
    return rc;
}

int revision_spec_hash(const json_t *v, char out[SPEC_HASH_LEN + 1])
{
    if (v == NULL) {
        out[0] = '\0';
        return -1;
    }
    return hash_hex(v, out, SPEC_HASH_LEN);
}
