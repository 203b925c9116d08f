/* Bounded growable byte buffer (see buffer.h). Any thread; not shared. */
#include "aws/buffer.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aws_buf_init(struct aws_buf *buf, size_t max)
{
    memset(buf, 0, sizeof(*buf));
    buf->max = max;
}

static size_t buf_max(const struct aws_buf *buf)
{
    return buf->max ? buf->max : AWS_BUF_DEFAULT_MAX;
}

/* Makes room for `extra` more bytes plus the terminating NUL. */
static int buf_reserve(struct aws_buf *buf, size_t extra)
{
    size_t need, cap;
    char *data;

    if (extra > buf_max(buf) || buf->len > buf_max(buf) - extra)
        return -1;
    need = buf->len + extra + 1;
    if (need <= buf->cap)
        return 0;
    cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    data = realloc(buf->data, cap);
    if (data == NULL)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int aws_buf_append(struct aws_buf *buf, const void *data, size_t n)
{
    if (buf_reserve(buf, n) != 0)
        return -1;
    if (n > 0)
        memcpy(buf->data + buf->len, data, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return 0;
}

int aws_buf_append_str(struct aws_buf *buf, const char *s)
{
    return aws_buf_append(buf, s, strlen(s));
}

int aws_buf_append_char(struct aws_buf *buf, char c)
{
    return aws_buf_append(buf, &c, 1);
}

int aws_buf_vprintf(struct aws_buf *buf, const char *fmt, va_list ap)
{
    va_list copy;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0 || buf_reserve(buf, (size_t)n) != 0)
        return -1;
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    buf->len += (size_t)n;
    return 0;
}

int aws_buf_printf(struct aws_buf *buf, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = aws_buf_vprintf(buf, fmt, ap);
    va_end(ap);
    return rc;
}

void aws_buf_reset(struct aws_buf *buf)
{
    buf->len = 0;
    if (buf->data != NULL)
        buf->data[0] = '\0';
}

char *aws_buf_steal(struct aws_buf *buf, size_t *len)
{
    char *data = buf->data;

    if (len != NULL)
        *len = buf->len;
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    return data;
}

void aws_buf_free(struct aws_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void aws_buf_free_secret(struct aws_buf *buf)
{
    if (buf->data != NULL)
        OPENSSL_cleanse(buf->data, buf->cap);
    aws_buf_free(buf);
}
