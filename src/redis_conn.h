/* redis_conn.h: the blocking connection of one limiter handle to Redis
 * (redis_conn.c): it only moves the bytes the conversation (redis_conv.c)
 * asks for, on a plain socket or through TLS (redis_tls.c). */
#ifndef MQ_REDIS_CONN_H
#define MQ_REDIS_CONN_H

#include <stddef.h>

#include "redis_conv.h"
#include "redis_url.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* What an exchange came to (the conversation's verdicts). */
enum {
    MQ_REDIS_OK = MQ_RV_OK,
    MQ_REDIS_DOWN = MQ_RV_DOWN,         /* an outage: fall back, try again later */
    MQ_REDIS_REFUSED = MQ_RV_CONFIG,    /* a setup fault: kind config */
    MQ_REDIS_UNSURE = MQ_RV_UNSURE      /* an outage; the script may have run */
};

typedef struct mq_redis mq_redis;

/* Takes a copy of u; NULL when out of memory. Connects lazily. */
mq_redis *mq_redis_new(const mq_redis_url *u, const char *script);
void      mq_redis_free(mq_redis *r);
/* Runs the script with argv (keys first: nkeys of them) within tmo
 * seconds, connect included: MQ_REDIS_OK with the script's integers in
 * vals (*nvals of them, at most MQ_RCONV_NVALS), or a failure with the
 * reason in err. After a failure the connection is dropped; the next call
 * makes a new one (and resolves the name again). */
int mq_redis_eval(mq_redis *r, int nkeys, int argc, const char **argv, double tmo,
                  long long *vals, int *nvals, char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
