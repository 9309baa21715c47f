/* limiter.h: the host-wide rate limiter over a shared file (limiter.c). */
#ifndef MQ_LIMITER_H
#define MQ_LIMITER_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct mq_limiter mq_limiter;
typedef struct {
    long per_minute;        /* budget per period */
    long burst;             /* back-to-back starts; 1..per_minute */
    double period;          /* seconds */
    const char *key;        /* what is shared */
    const char *dir;        /* where the state file lives */
} mq_limiter_cfg;
typedef struct {
    long per_minute, used, available;
    double paused_until;    /* Unix epoch seconds, 0 when not paused */
} mq_limiter_status_t;

int  mq_limiter_open(const mq_limiter_cfg *cfg, mq_limiter **out, char *err, size_t errlen);
/* Take one slot now if the rules allow: returns 1; otherwise 0 and *wait is
 * the seconds until one may be free. Never blocks beyond the short lock. */
int  mq_limiter_try(mq_limiter *l, double *wait);
/* Blocking form: waits (nanosleep) at most max_wait seconds. Returns 1 when
 * a slot was taken (*waited = seconds spent), 0 when none came in time
 * (*retry_after = seconds until one may). */
int  mq_limiter_acquire(mq_limiter *l, double max_wait, double *waited, double *retry_after);
/* The server said stop (429 / remaining 0): every process sharing the key
 * waits until now + seconds. */
void mq_limiter_pause(mq_limiter *l, double seconds);
/* The server's x-ratelimit-remaining / -limit (-1 when absent) and the
 * seconds to its window end (-1 unknown): calibrate the shared state. */
void mq_limiter_observe(mq_limiter *l, long remaining, long limit, double reset_in);
void mq_limiter_status(mq_limiter *l, mq_limiter_status_t *st);
void mq_limiter_close(mq_limiter *l);
/* Validate a state file's header bytes (what open does before mapping);
 * 0 when valid, -1 with a reason in err. Exposed for the fuzzer. */
int  mq_limiter_check_header(const void *buf, size_t len, char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
