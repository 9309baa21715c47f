/* headers.h: the HTTP header values the transport reads (headers.c). */
#ifndef MQ_HEADERS_H
#define MQ_HEADERS_H

#include <stddef.h>
#include <time.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate, and the
 * obsolete RFC 850 and asctime forms). now = current Unix time. Returns the
 * seconds to wait (>= 0, capped at 86400), or -1 when not parseable. */
double mq_retry_after(const char *v, size_t len, time_t now);
/* A non-negative decimal integer header value (surrounding blanks allowed),
 * or -1 when absent, malformed or overflowing. */
long mq_header_long(const char *v, size_t len);
/* x-ratelimit-reset: an epoch time (or, from some servers, the seconds
 * left) made the seconds to the window's end (>= 0), or -1 when absent or
 * malformed. now = current Unix time. */
double mq_ratelimit_reset(const char *v, size_t len, time_t now);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
