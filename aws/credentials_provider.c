/* The credentials value type and the provider interface shared by every
 * provider. Any thread. */
#include "aws/credentials.h"

#include <openssl/crypto.h>

void aws_credentials_clear(struct aws_credentials *creds)
{
    if (creds != NULL)
        OPENSSL_cleanse(creds, sizeof(*creds));
}
