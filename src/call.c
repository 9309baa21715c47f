/* call.c: one API call from start to verdict, blocking.
 *
 * Every attempt takes its own limiter slot (a retry spends budget like any
 * request); the deadline bounds the limiter wait, each attempt (the last
 * one is cut to what is left) and each backoff, so no call outlives it.
 * The same policy (policy.c) drives the batch state machine (batch.c) and
 * the nginx adapter's non-blocking loop. */
#include "call.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

void mq_call_observe(mq_limiter *lim, const mq_response *r, double period)
{
    if (lim == NULL || r->outcome != MQ_T_OK)
        return;
    if (r->status == 429) {
        double p = r->retry_after >= 0 ? r->retry_after : r->rl_reset >= 0 ? r->rl_reset : period;
        mq_limiter_pause(lim, p);
    } else if (r->rl_remaining >= 0) {
        mq_limiter_observe(lim, r->rl_remaining, r->rl_limit, r->rl_reset);
    }
}

static void explain(mq_result *res, const mq_response *r, int max_attempts, const char *stop)
{
    char why[192];

    if (r->message[0])
        snprintf(why, sizeof why, "%.180s", r->message);
    else if (r->status > 0)
        snprintf(why, sizeof why, "HTTP %ld", r->status);
    else
        snprintf(why, sizeof why, "%s", mq_kind_name(res->kind));
    snprintf(res->message, sizeof res->message, "%.150s (attempt %d of %d%s%.80s)", why,
             res->attempts, max_attempts, stop ? "; " : "", stop ? stop : "");
}

void mq_call_stop(const mq_call_cfg *cfg, const mq_progress *p, double bound, double retry_after,
                  mq_result *res)
{
    res->retryable = 1;     /* both reasons (no slot, no time) pass with time */
    res->status = 0;
    res->body = "";
    res->body_len = 0;
    res->ambiguous_before = p->ambiguous;
    if (bound >= 0) {
        res->kind = MQ_K_RATE_LIMITED;
        res->retry_after = retry_after;
        snprintf(res->message, sizeof res->message,
                 "no rate-limit slot within %.3gs%s (before attempt %d of %d)", bound,
                 bound < cfg->max_wait ? ", the rest of the deadline" : "",
                 p->retry + 1, p->max_retries + 1);
    } else {
        res->kind = MQ_K_TIMEOUT;
        res->retry_after = -1;
        snprintf(res->message, sizeof res->message,
                 "deadline of %.3gs reached before attempt %d of %d", p->deadline,
                 p->retry + 1, p->max_retries + 1);
    }
}

double mq_call_next(const mq_call_cfg *cfg, mq_call_stats *st, mq_limiter *lim, uint64_t *rng,
                    mq_method m, mq_progress *p, const mq_response *r, mq_result *res, double now)
{
    const int max_attempts = p->max_retries + 1;
    const int whole = r->outcome == MQ_T_OK;
    char stop[96];
    mq_verdict v;
    double wait;

    res->attempts++;
    st->requests++;
    mq_call_observe(lim, r, cfg->limiter_period);

    v = mq_classify(m, r->outcome, r->status, cfg->retry_post);
    /* libcurl's one re-send on a fresh connection (transport.c) means an
     * earlier send of this very attempt may have been processed */
    p->ambiguous |= r->resent;
    res->ambiguous_before = p->ambiguous;
    res->kind = v.kind;
    res->retryable = v.retryable;
    /* a too-big body still came with a status: say which */
    res->status = whole || r->outcome == MQ_T_TOO_BIG ? r->status : 0;
    res->body = whole ? r->body : "";
    res->body_len = whole ? r->body_len : 0;
    res->retry_after = r->retry_after;
    res->message[0] = '\0';
    p->ambiguous |= v.ambiguous;

    if (v.kind == MQ_K_OK)
        return -1;
    if (!v.retryable || p->retry >= p->max_retries) {
        explain(res, r, max_attempts, v.retryable || !v.ambiguous ? NULL
                : "not retried: it may have been processed, see retry_post");
        return -1;
    }
    wait = mq_backoff(p->retry + 1, mq_rand_unit(rng));
    if (r->retry_after > wait)
        wait = r->retry_after;
    if (now + wait >= p->deadline_at) {
        /* the next attempt could not start in time: this is the answer */
        snprintf(stop, sizeof stop, "no time for another within the deadline of %.3gs",
                 p->deadline);
        explain(res, r, max_attempts, stop);
        return -1;
    }
    p->retry++;
    st->retries++;
    return wait;
}

void mq_call(mq_transport *t, mq_limiter *lim, const mq_call_cfg *cfg, mq_call_stats *st,
             uint64_t *rng, mq_method m, const char *url, const char *body, size_t body_len,
             mq_result *res)
{
    static const char *const names[] = { "POST", "PUT", "DELETE" };
    const double started = mq_now();
    mq_progress p = { cfg->deadline, started + cfg->deadline, cfg->max_retries, 0, 0 };
    mq_response r;

    memset(res, 0, sizeof *res);
    res->retry_after = -1;
    res->body = "";
    res->started = started;

    for (int first = 1;; first = 0) {
        double left = p.deadline_at - (first ? started : mq_now());

        if (lim != NULL) {
            double waited = 0, ra = -1;
            double mw = cfg->max_wait < left ? cfg->max_wait : left;
            if (mw < 0)
                mw = 0;
            int got = mq_limiter_acquire(lim, mw, &waited, &ra);
            if (waited > 0) {
                st->limiter_waits++;
                st->limiter_wait_seconds += waited;
            }
            if (!got) {
                mq_call_stop(cfg, &p, mw, ra, res);
                return;
            }
            left = p.deadline_at - mq_now();
        }
        if (left <= 0) {
            mq_call_stop(cfg, &p, -1, -1, res);
            return;
        }

        mq_transport_perform(t, names[m], url, body, body_len,
                             cfg->timeout < left ? cfg->timeout : left,
                             cfg->connect_timeout < left ? cfg->connect_timeout : left, &r);
        double wait = mq_call_next(cfg, st, lim, rng, m, &p, &r, res, mq_now());
        if (wait < 0)
            return;
        sleep_for(wait);
    }
}
