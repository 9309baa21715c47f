/* secrets.h: what leaves the library is safe to show (secrets.c): the
 * keys masked out of any string, and a server's string made bounded,
 * printable and valid UTF-8. */
#ifndef MQ_SECRETS_H
#define MQ_SECRETS_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_SHOW_MAX 512     /* bytes of a server's string kept (then "...") */
#define MQ_KEY_MAX 1024     /* bytes of a key (mediquo.lua refuses longer) */

typedef struct {
    char *key[2];           /* owned copies; NULL when not given */
    size_t len[2];
} mq_secrets;

/* Copies the two keys (either may be NULL). 0, or -1 out of memory or a
 * key over MQ_KEY_MAX bytes. */
int  mq_secrets_init(mq_secrets *s, const char *api_key, const char *secret_key);
/* Wipes and frees the copies (idempotent). */
void mq_secrets_free(mq_secrets *s);
/* Each key (6 bytes or more) in buf becomes as many '*'. */
void mq_secrets_scrub(const mq_secrets *s, char *buf, size_t len);
/* A server's string (already JSON-unescaped) made fit to show, into out
 * (at least MQ_SHOW_MAX + 4 bytes), NUL-terminated; returns its length:
 * the keys scrubbed first (neither an escape nor the cut can hide one),
 * cut at MQ_SHOW_MAX bytes with "...", control characters as spaces, and
 * when the rest is not valid UTF-8, every non-ASCII byte as '?'. */
size_t mq_secrets_show(const mq_secrets *s, const char *str, size_t len, char *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
