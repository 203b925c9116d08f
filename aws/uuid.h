/* Random (version 4) UUIDs for idempotency tokens. Any thread. */
#ifndef AVIARY_AWS_UUID_H
#define AVIARY_AWS_UUID_H

#include <stddef.h>

#define AWS_UUID_STR_LEN 36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", without the NUL */

/* Writes a fresh random UUIDv4 in lower-case hex (37 bytes with the NUL) to
 * out, from OpenSSL's CSPRNG. Returns 0, or -1 (out set to "") when out_len
 * is too small or the random generator fails. */
int aws_uuid_v4(char *out, size_t out_len);

#endif
