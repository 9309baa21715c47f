/* call.h: the blocking call loop of before the engine (call.c), kept only
 * for batch.c until it drives the engine (src/engine.h) instead. */
#ifndef MQ_CALL_H
#define MQ_CALL_H

#include "clock.h"
#include "limiter.h"
#include "transport.h"
#include "policy.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif


/* ---- call.c -------------------------------------------------------------- */
typedef struct {
    double timeout, connect_timeout, deadline;
    int max_retries;
    int retry_post;
    double max_wait;        /* limiter wait bound, per acquire */
    double limiter_period;  /* the window, for a pause with no Retry-After */
} mq_call_cfg;

typedef struct {
    long requests, retries, limiter_waits;
    double limiter_wait_seconds;
} mq_call_stats;

typedef struct {
    mq_kind kind;           /* MQ_K_OK for a 2xx (the body still to be checked) */
    long status;
    const char *body;       /* valid until the next call on this transport */
    size_t body_len;
    int attempts;
    int ambiguous_before;   /* an earlier attempt of this call may have been processed */
    int retryable;
    double retry_after;     /* -1 when none */
    double started;         /* mq_now() when the call began (mq_call) */
    char message[256];      /* transport or limiter reason when no HTTP answer */
} mq_result;

/* The whole call: limiter slot per attempt, retries, backoff, deadline. */
void mq_call(mq_transport *t, mq_limiter *lim, const mq_call_cfg *cfg, mq_call_stats *st,
             uint64_t *rng, mq_method m, const char *url, const char *body, size_t body_len,
             mq_result *res);

/* Where a call stands between attempts. The blocking loop (call.c) and the
 * batch state machine (batch.c) both decide through the two functions
 * below, so they retry alike and explain alike. */
typedef struct {
    double deadline;        /* seconds for the whole call (for messages) */
    double deadline_at;     /* mq_now() time it ends */
    int max_retries;
    int retry;              /* retries done so far */
    int ambiguous;          /* some attempt so far may have been processed */
} mq_progress;

/* Records the attempt that answered r in res (and the stats, and what the
 * server said of its rate limit in the limiter) and decides what comes
 * next: the seconds to wait before another attempt (p->retry and
 * st->retries already advanced), or -1 when res is the call's answer. An
 * answer that ends in failure says why and "(attempt N of M)", e.g.
 * "timed out after 1.0s (attempt 3 of 3)"; the server's own message, when
 * it sent one, replaces this in Lua. */
double mq_call_next(const mq_call_cfg *cfg, mq_call_stats *st, mq_limiter *lim, uint64_t *rng,
                    mq_method m, mq_progress *p, const mq_response *r, mq_result *res, double now);
/* No attempt could start: no limiter slot within `bound` seconds (kind
 * rate_limited, with retry_after), or, with bound < 0, the deadline passed
 * (kind timeout). Fills res as the call's answer. */
void mq_call_stop(const mq_call_cfg *cfg, const mq_progress *p, double bound, double retry_after,
                  mq_result *res);
/* What the server's rate-limit headers on an answer mean for the shared
 * limiter (pause on 429 / remaining 0, calibrate otherwise). */
void mq_call_observe(mq_limiter *lim, const mq_response *r, double period);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
