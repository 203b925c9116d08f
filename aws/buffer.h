/* A growable byte buffer with a hard maximum size: every body, canonical
 * string and serialized document is built in one. Any thread (not shared). */
#ifndef AVIARY_AWS_BUFFER_H
#define AVIARY_AWS_BUFFER_H

#include <stdarg.h>
#include <stddef.h>

/* Bytes in data[0..len), always followed by a NUL (not counted in len) so the
 * contents can be used as a C string when they are text. Zero-initialise, or
 * use aws_buf_init to set a maximum; free with aws_buf_free. */
struct aws_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 means AWS_BUF_DEFAULT_MAX */
};

#define AWS_BUF_DEFAULT_MAX (64u * 1024u * 1024u)

void aws_buf_init(struct aws_buf *buf, size_t max);

/* Appends n bytes. Returns 0, or -1 when memory runs out or the result would
 * exceed the maximum (the buffer is then unchanged). */
int aws_buf_append(struct aws_buf *buf, const void *data, size_t n);
int aws_buf_append_str(struct aws_buf *buf, const char *s);
int aws_buf_append_char(struct aws_buf *buf, char c);
int aws_buf_printf(struct aws_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int aws_buf_vprintf(struct aws_buf *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Empties the buffer, keeping its memory. */
void aws_buf_reset(struct aws_buf *buf);

/* Hands the contents (NUL-terminated, possibly NULL when empty) to the caller,
 * who frees them with free(); the buffer is left empty. */
char *aws_buf_steal(struct aws_buf *buf, size_t *len);

/* Frees the memory. aws_buf_free_secret wipes it first (for anything that held
 * a secret). Both leave the buffer empty and reusable. */
void aws_buf_free(struct aws_buf *buf);
void aws_buf_free_secret(struct aws_buf *buf);

#endif
