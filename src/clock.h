/* clock.h: the monotonic clock of deadlines and the limiter (header only). */
#ifndef MQ_CLOCK_H
#define MQ_CLOCK_H

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

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
