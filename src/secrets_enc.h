/* secrets_enc.h: the encodings a server may quote a key back in
 * (secrets_enc.c): the base64 runs a key leaves inside a longer base64
 * string, and a match that reads percent- and form-encoding as it goes. */
#ifndef MQ_SECRETS_ENC_H
#define MQ_SECRETS_ENC_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Room mq_b64_run needs for a key of len bytes. */
#define MQ_B64_RUN_ROOM(len) (((len) * 4) / 3 + 2)

/* The base64 characters fully determined by the len bytes at src when they
 * start `phase` (0, 1 or 2) bytes into a 3-byte group of a longer string,
 * in the standard alphabet (url 0) or the URL-safe one (url 1): whatever
 * precedes or follows the key, its encoding holds this run. Written to out
 * (MQ_B64_RUN_ROOM(len) bytes), not terminated; returns its length. */
size_t mq_b64_run(const unsigned char *src, size_t len, int phase, int url, char *out);

/* Does buf (len bytes) start with needle, each of its bytes written either
 * as itself, as %XX (hex in either case) or, for a space, as '+'? Returns
 * the bytes of buf it takes, or 0. Decoding is greedy: a "%XX" that decodes
 * to the byte wanted is read as that byte. */
size_t mq_enc_match(const char *buf, size_t len, const char *needle, size_t nlen);

/* The value of hex digit c (either case), or -1. */
int mq_hexval(char c);

/* Is c a base64 character of either alphabet? */
int mq_b64_char(unsigned char c);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
