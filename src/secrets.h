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
/* needles per client: each key raw, and its base64 run at 3 byte phases in
 * 2 alphabets */
#define MQ_NEEDLES (2 * (1 + 3 * 2))
/* the most bytes one needle can take in a string: a base64 run of a
 * MQ_KEY_MAX key, every byte percent-encoded, and a character either side */
#define MQ_SPAN_MAX (3 * ((MQ_KEY_MAX * 4) / 3 + 2) + 6)

typedef struct {
    char *key[2];           /* owned copies; NULL when not given */
    size_t len[2];
    /* what the scrub looks for, built once per client (mq_secrets_init):
     * each key, and the base64 run each leaves inside a longer base64
     * string (standard and URL-safe, at each of the 3 byte phases) */
    char *needle[MQ_NEEDLES];
    size_t nlen[MQ_NEEDLES];
    unsigned char b64[MQ_NEEDLES];  /* a base64 run: its neighbours go too */
    unsigned short first[256];      /* bit i: needle i starts with this byte */
    int n;
    size_t span;            /* the most bytes one needle can take */
} mq_secrets;

/* Copies the two keys (either may be NULL) and builds their needles. 0, or
 * -1 out of memory or a key over MQ_KEY_MAX bytes. */
int  mq_secrets_init(mq_secrets *s, const char *api_key, const char *secret_key);
/* Wipes and frees the copies (idempotent). */
void mq_secrets_free(mq_secrets *s);
/* Each key (6 bytes or more) in buf becomes '*'s, in every encoding a
 * server may quote a header value back in: raw (JSON escapes are undone
 * before), percent-encoded (any bytes, hex in either case), form-encoded
 * ('+' for a space), and base64 (standard or URL-safe, padded or not) of
 * any string that holds the key at any byte offset - the key itself, or
 * "key:secret" - where the run of characters that carry the key's bits
 * goes, with the one character either side that carries some of them;
 * a base64 run percent-encoded ("%2B", "%2F") goes too. */
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
