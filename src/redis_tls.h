/* redis_tls.h: TLS for the blocking Redis connection (redis_tls.c),
 * through OpenSSL: Debian 12's hiredis 0.14 has none. */
#ifndef MQ_REDIS_TLS_H
#define MQ_REDIS_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "redis_url.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Outcomes: the byte count (>= 0), or one of these. */
enum { MQ_TLS_DOWN = -1, MQ_TLS_SETUP = -2 };

/* The context of u's redis_tls: the CA (ca_file, else the system bundle),
 * the client certificate. NULL with err (a setup fault) on failure. */
SSL_CTX *mq_tls_ctx_new(const mq_redis_url *u, char *err, size_t errlen);
/* The handshake on a connected non-blocking fd, by deadline (CLOCK_MONOTONIC
 * ns): SNI server_name (NULL: none), the certificate checked for name (a
 * host name) or ip (an address) when verify. 0 with *out, or MQ_TLS_*. */
int mq_tls_handshake(SSL_CTX *ctx, int fd, const char *server_name, const char *ip, int verify,
                     int64_t deadline, SSL **out, char *err, size_t errlen);
/* One write of all n bytes / one read of at most cap bytes, by deadline:
 * bytes moved, 0 (read: the peer closed), or MQ_TLS_*. */
long mq_tls_write(SSL *ssl, int fd, const char *buf, size_t n, int64_t deadline, char *err, size_t errlen);
long mq_tls_read(SSL *ssl, int fd, char *buf, size_t cap, int64_t deadline, char *err, size_t errlen);
/* Waits for fd to be readable (events POLLIN) or writable (POLLOUT) by
 * deadline: 1 ready, 0 timed out, -1 error (errno). */
int mq_tls_wait(int fd, short events, int64_t deadline);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
