/* webhook.h: the checks on a delivered webhook that must not leak through
 * timing or read past a bound (webhook.c): the size, the signature against
 * each accepted secret in constant time, the event's id. */
#ifndef MQ_WEBHOOK_H
#define MQ_WEBHOOK_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_WH_MAX_SECRETS 8      /* accepted at once (rotation: current, previous...) */
#define MQ_WH_ID_HEX      65     /* 64 hex digits of SHA-256 + NUL */

typedef enum {
    MQ_WH_OK = 0,
    MQ_WH_TOO_LARGE,      /* the body is longer than max_body: nothing else read */
    MQ_WH_UNAUTHORIZED,   /* no signature, or it matches none of the secrets */
    MQ_WH_FAILED          /* libcrypto failed (out of memory) */
} mq_wh_verdict;

typedef struct {
    const char *p;
    size_t len;
} mq_wh_bytes;

/* Whether sig equals one of the secrets. Every secret is compared, always,
 * and each comparison is of two SHA-256 digests by CRYPTO_memcmp, so the
 * time depends neither on where the first differing byte is, nor on which
 * secret matched, nor on the secrets' lengths versus sig's. sig may be
 * NULL (no header). An empty secret never matches. */
mq_wh_verdict mq_webhook_verify(const char *sig, size_t siglen,
                                const mq_wh_bytes *secrets, size_t nsecrets);

/* The whole check, in the order a receiver must apply it: the size first
 * (a body over max_body is refused before it is hashed or compared), then
 * the signature; on MQ_WH_OK, id_hex holds the body's SHA-256 (lower-case
 * hex), the same for every redelivery of the same body. */
mq_wh_verdict mq_webhook_check(const char *sig, size_t siglen,
                               const mq_wh_bytes *secrets, size_t nsecrets,
                               const char *body, size_t body_len, size_t max_body,
                               char id_hex[MQ_WH_ID_HEX]);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
