/* driver_easy.c: the blocking driver. It runs one call of the engine
 * (engine.c) to its end in the caller's thread: it only moves bytes
 * (libcurl easy, transport.c), waits (nanosleep; the limiter's own bounded
 * wait) and reads the clock; every decision is the engine's. */
#include "driver_easy.h"
#include "clock.h"

#include <errno.h>
#include <time.h>

static void sleep_for(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* what the engine read in the last response, applied to the shared budget */
static void apply_note(mq_limiter *lim, const mq_ecall *c)
{
    double a, b, r;
    switch (mq_engine_note(c, &a, &b, &r)) {
    case MQ_NOTE_PAUSE:
        mq_limiter_pause(lim, a);
        break;
    case MQ_NOTE_OBSERVE:
        mq_limiter_observe(lim, (long)a, (long)b, r);
        break;
    default:
        break;
    }
}

static mq_action attempt(mq_transport *t, mq_limiter *lim, mq_ecall *c, double *x)
{
    mq_request rq;
    mq_response r;
    mq_action a;

    mq_engine_request(c, &rq);
    mq_transport_perform(t, mq_method_name(rq.method), rq.url, rq.body, rq.body_len,
                         rq.timeout, rq.connect_timeout, &r);
    /* libcurl's one re-send on a fresh connection (transport.c): the
     * first send of this attempt may have been processed */
    if (r.resent)
        mq_engine_resent(c);
    if (r.outcome != MQ_T_OK)
        return mq_engine_failure(c, r.outcome, r.message, r.status, mq_now(), x);
    mq_answer ans = { r.status, r.body, r.body_len, r.retry_after, r.rl_remaining,
                      r.rl_limit, r.rl_reset };
    a = mq_engine_response(c, &ans, mq_now(), x);
    if (lim != NULL)
        apply_note(lim, c);
    return a;
}

mq_action mq_drive_easy(mq_transport *t, mq_limiter *lim, mq_ecall *c, mq_action a, double x)
{
    for (;;) {
        switch (a) {
        case MQ_A_SLOT: {
            double waited = 0, ra = -1;
            int got = lim == NULL || mq_limiter_acquire(lim, x, &waited, &ra);
            if (!got && mq_limiter_error(lim) != NULL)
                a = mq_engine_host_fault(c, "rate_limit", mq_limiter_error(lim), &x);
            else
                a = mq_engine_slot(c, got, waited, ra, mq_now(), &x);
            break;
        }
        case MQ_A_SEND:
            a = attempt(t, lim, c, &x);
            break;
        case MQ_A_BACKOFF:
            sleep_for(x);
            a = mq_engine_wake(c, mq_now(), &x);
            break;
        case MQ_A_DONE:
        default:
            return MQ_A_DONE;
        }
    }
}
