/* limiter_redis.h: one budget across hosts (limiter_redis.c): the Redis
 * script that decides, and the host side that leases slots from it, shares
 * them between the host's processes and falls back when Redis is gone. */
#ifndef MQ_LIMITER_REDIS_H
#define MQ_LIMITER_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "limiter.h"
#include "redis_conv.h"
#include "redis_url.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct mq_rdl mq_rdl;

typedef struct {
    const mq_redis_url *url;    /* parsed, with redis_tls and sentinel_auth (copied) */
    long fallback;              /* fallback_per_minute; -1: per_minute / hosts */
    double timeout;             /* seconds for one round trip (connect included) */
    int cosocket;               /* nginx: every round trip goes through
                                 * redis_begin/_finish on a cosocket; never
                                 * one from C (no first contact, pauses wait
                                 * for the next round trip) */
} mq_rdl_cfg;

typedef struct {
    int degraded;               /* Redis unreachable: on the fallback */
    long hosts;                 /* hosts Redis last saw sharing the key */
    long fallback;              /* what this host may start alone, per period */
    long leased;                /* slots leased and not yet spent */
    char error[1200];           /* why Redis is not in use ("" when it is) */
} mq_rdl_status_t;

#define MQ_RDL_NKEYS 4
#define MQ_RDL_NARGS 17
#define MQ_RDL_NVALS 9          /* grant wait_us hosts epoch learning used pause_ms send_history delay_us */

/* One round trip the host must make: the script's keys then arguments. */
typedef struct {
    const char *argv[MQ_RDL_NKEYS + MQ_RDL_NARGS];
    int argc;                   /* MQ_RDL_NKEYS + MQ_RDL_NARGS */
    double tmo;                 /* seconds it may take */
} mq_rdl_req;

/* Attaches Redis to an open local limiter. 0; -1 the URL is wrong (err
 * says why); -2 the host's setup is (a lease file that cannot be made,
 * Redis refusing AUTH or the script). Redis being down is not an error. */
int  mq_rdl_open(mq_limiter *l, const mq_limiter_cfg *lc, const mq_rdl_cfg *rc,
                 char *err, size_t errlen);
void mq_rdl_close(mq_rdl *r);
/* The host's Redis URL and options, for the cosocket driver's conversation. */
const mq_redis_url *mq_rdl_url(mq_rdl *r);
/* Where the budget was last found (Sentinel's master, the Cluster node of
 * its slot), kept between the cosocket driver's conversations. */
mq_rtopo *mq_rdl_topo(mq_rdl *r);

/* Sans-I/O steps, shared by the blocking driver (below) and the nginx
 * cosocket driver (lredis.c). begin: 1 admitted (*at), 0 wait *wait
 * seconds, 2 make the round trip in *req (tmo at most budget, and at most
 * redis_timeout) and then call finish with its outcome. finish: 1
 * admitted, 0 wait. A call's first try, its decision, passes budget
 * HUGE_VAL: it asks Redis whatever its max_wait (asking is not waiting),
 * and when another process of the host is asking already, or Redis first
 * wants this host's recent starts, *wait is 0: try again now. With 0 and
 * l->error set: a host fault (a state file, or Redis refusing the setup:
 * AUTH, a certificate), kind config, for every caller until the next
 * attempt at Redis. */
int mq_rdl_begin(mq_limiter *l, double budget, double *wait, int64_t *at, mq_rdl_req *req);
/* The same, for a caller that can make a round trip besides its call (the
 * cosocket driver, from a timer): also 3, admitted (*at) and a round trip
 * ahead to make in *req (a lease grown under demand, its last quarter
 * left: asked for before it is spent), then finish with its outcome (which
 * answers 0: the asker has its slot). */
int mq_rdl_begin_ahead(mq_limiter *l, double budget, double *wait, int64_t *at, mq_rdl_req *req);
int mq_rdl_finish(mq_limiter *l, int rc, const long long *vals, const char *why,
                  double *wait, int64_t *at);

/* The first contact's round trip (no slot asked: registers the host,
 * hands back what it started, proves AUTH): 1 make it (*req, then
 * finish), 0 not now (another process is asking, Redis is down), 2 a
 * fault (l->error: the lease file, or the last attempt's setup fault). */
int mq_rdl_contact_begin(mq_limiter *l, mq_rdl_req *req);

/* The blocking driver: the same contract as mq_limiter_try_at /
 * mq_limiter_acquire_at. The call's decision is one round trip of at most
 * redis_timeout, whatever max_wait; no later round trip outlives max_wait.
 * Degraded, *retry_after is the time to the next attempt at Redis or the
 * quarantine's end, not a poll interval. */
int  mq_rdl_try(mq_limiter *l, double *wait, int64_t *at);
int  mq_rdl_acquire(mq_limiter *l, double max_wait, double *waited, double *retry_after,
                    int64_t *at);
/* The server's word, for every host: kept for the next round trip, and
 * with flush sent at once (blocking driver). */
void mq_rdl_pause(mq_limiter *l, double seconds, int flush);
/* The server's x-ratelimit-remaining, for Redis to weigh against the
 * whole budget's count (0 is a pause only when Redis believes some are
 * left). 1 when Redis takes it; 0 when degraded: the local file must. */
int  mq_rdl_observe(mq_limiter *l, long remaining, double reset_in);
void mq_rdl_status(mq_limiter *l, mq_rdl_status_t *st);
/* What the budget has left for this host's callers (X-RateLimit-Remaining,
 * status().available), as this process last saw it under the lease lock
 * (at its last call: no lock taken here): Redis's room at the last answer
 * any process of the host had (per_minute less the slots it counted in the
 * window), plus the host's leased slots not yet started; never more than
 * `local`, the host's own window's room. Degraded, before any answer, or a
 * window after the last one: `local`. */
long mq_rdl_remaining(mq_limiter *l, long local);
#ifdef MQ_TESTING
/* Test hook (llimiter.c, -DMQ_TESTING builds only): takes the lease lock,
 * stops this process (SIGSTOP) holding it, and releases it once continued.
 * 0, or -1 when the lock or the file could not be had. */
int  mq_rdl_hold_lease_lock(mq_limiter *l);
#endif
/* The redis handle of a limiter, NULL when it has none. */
mq_rdl *mq_rdl_of(mq_limiter *l);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
