/* urlenc.h: RFC 3986 percent-encoding of a path segment (urlenc.c). */
#ifndef MQ_URLENC_H
#define MQ_URLENC_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Percent-encode every byte except RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~).
 * Writes at most outcap bytes (NUL-terminated when it fits) and returns the
 * length the encoding needs (without NUL): call with outcap >= 3*len+1. */
size_t mq_urlenc(const char *s, size_t len, char *out, size_t outcap);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
