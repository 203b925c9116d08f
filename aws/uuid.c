/* Random (version 4) UUIDs from OpenSSL's CSPRNG. Any thread. */
#include "aws/uuid.h"

#include <openssl/rand.h>

int aws_uuid_v4(char *out, size_t out_len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t o = 0;

    if (out == NULL || out_len < AWS_UUID_STR_LEN + 1)
        goto fail;
    if (RAND_bytes(b, (int)sizeof(b)) != 1)
        goto fail;
    b[6] = (unsigned char)((b[6] & 0x0fu) | 0x40u); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3fu) | 0x80u); /* RFC 4122 variant */
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0fu];
    }
    out[o] = '\0';
    return 0;
fail:
    if (out != NULL && out_len > 0)
        out[0] = '\0';
    return -1;
}
