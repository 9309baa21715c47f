/* driver_easy.h: the blocking driver of the engine (driver_easy.c). */
#ifndef MQ_DRIVER_EASY_H
#define MQ_DRIVER_EASY_H

#include "engine.h"
#include "limiter.h"
#include "transport.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Runs the call c, from the step its start returned to its end: limiter
 * slots with mq_limiter_acquire (lim NULL: the engine was made without a
 * limiter), attempts with mq_transport_perform, backoffs with nanosleep.
 * Returns MQ_A_DONE; the result is in c. */
mq_action mq_drive_easy(mq_transport *t, mq_limiter *lim, mq_ecall *c, mq_step st);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
