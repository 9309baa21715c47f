/* clock.h: the monotonic clock of deadlines and the limiter (header only). */
#ifndef MQ_CLOCK_H
#define MQ_CLOCK_H

#include <stdint.h>
#include <time.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

static inline double mq_now(void)           /* monotonic seconds */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int64_t mq_now_ns(void)       /* monotonic nanoseconds */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* the same clock to the last tick (a few ms): for "once a second" checks,
 * at a fraction of the cost */
static inline int64_t mq_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
