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
static void apply_note(mq_limiter *lim, const mq_limiter_note *n)
{
    switch (n->kind) {
    case MQ_NOTE_PAUSE:
        mq_limiter_pause(lim, n->pause);
        break;
    case MQ_NOTE_OBSERVE:
        mq_limiter_observe(lim, n->remaining, n->limit, n->reset);
        break;
    default:
        break;
    }
}

static mq_step attempt(mq_transport *t, mq_limiter *lim, mq_ecall *c)
{
    mq_request rq;
    mq_response r;
    mq_step st;

    mq_engine_request(c, &rq);
    mq_transport_perform(t, mq_method_name(rq.method), rq.url, rq.body, rq.body_len,
                         rq.timeout, rq.connect_timeout, &r);
    /* libcurl's one re-send on a fresh connection (transport.c): the
     * first send of this attempt may have been processed */
    if (r.resent)
        mq_engine_resent(c);
    if (r.outcome != MQ_T_OK)
        return mq_engine_failure(c, r.outcome, r.message, r.status, mq_now());
    mq_answer ans = { r.status, r.body, r.body_len, r.retry_after, r.rl_remaining,
                      r.rl_limit, r.rl_reset };
    st = mq_engine_response(c, &ans, mq_now());
    if (lim != NULL)
        apply_note(lim, &st.note);
    return st;
}

mq_action mq_drive_easy(mq_transport *t, mq_limiter *lim, mq_ecall *c, mq_step st)
{
    for (;;) {
        switch (st.action) {
        case MQ_A_SLOT: {
            double waited = 0, ra = -1;
            int got = lim == NULL || mq_limiter_acquire(lim, st.max_wait, &waited, &ra);
            if (!got && mq_limiter_error(lim) != NULL)
                st = mq_engine_host_fault(c, "rate_limit", mq_limiter_error(lim));
            else
                st = mq_engine_slot(c, got, waited, ra, mq_now());
            break;
        }
        case MQ_A_SEND:
            st = attempt(t, lim, c);
            break;
        case MQ_A_BACKOFF:
            sleep_for(st.backoff);
            st = mq_engine_wake(c, mq_now());
            break;
        case MQ_A_DONE:
        default:
            return MQ_A_DONE;
        }
    }
}
