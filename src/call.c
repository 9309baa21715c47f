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

void mq_call_explain(mq_result *res, const mq_response *r, int max_attempts, const char *stop)
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

static void give_up(mq_result *res, mq_kind kind, const char *why, double retry_after)
{
    res->kind = kind;
    res->retryable = 1;     /* both reasons (no slot, no time) pass with time */
    res->status = 0;
    res->body = "";
    res->body_len = 0;
    res->retry_after = retry_after;
    snprintf(res->message, sizeof res->message, "%s", why);
}

void mq_call(mq_transport *t, mq_limiter *lim, const mq_call_cfg *cfg, mq_call_stats *st,
             uint64_t *rng, mq_method m, const char *url, const char *body, size_t body_len,
             mq_result *res)
{
    static const char *const names[] = { "POST", "PUT", "DELETE" };
    const double deadline_at = mq_now() + cfg->deadline;
    const int max_attempts = cfg->max_retries + 1;
    int ambiguous = 0;      /* some attempt so far may have been processed */
    char stop[96];
    mq_response r;

    memset(res, 0, sizeof *res);
    res->retry_after = -1;
    res->body = "";

    for (int retry = 0;; retry++) {
        double left = deadline_at - mq_now();

        if (lim != NULL) {
            double waited = 0, ra = -1;
            double mw = cfg->max_wait < left ? cfg->max_wait : left;
            int got;
            if (mw < 0)
                mw = 0;
            got = mq_limiter_acquire(lim, mw, &waited, &ra);
            if (waited > 0) {
                st->limiter_waits++;
                st->limiter_wait_seconds += waited;
            }
            if (!got) {
                char why[160];
                snprintf(why, sizeof why, "no rate-limit slot within %.3gs%s (before attempt %d of %d)",
                         mw, mw < cfg->max_wait ? ", the rest of the deadline" : "",
                         retry + 1, max_attempts);
                give_up(res, MQ_K_RATE_LIMITED, why, ra);
                res->ambiguous_before = ambiguous;
                return;
            }
            left = deadline_at - mq_now();
        }
        if (left <= 0) {
            char why[128];
            snprintf(why, sizeof why, "deadline of %.3gs reached before attempt %d of %d",
                     cfg->deadline, retry + 1, max_attempts);
            give_up(res, MQ_K_TIMEOUT, why, -1);
            res->ambiguous_before = ambiguous;
            return;
        }

        mq_transport_perform(t, names[m], url, body, body_len,
                             cfg->timeout < left ? cfg->timeout : left,
                             cfg->connect_timeout < left ? cfg->connect_timeout : left, &r);
        res->attempts++;
        st->requests++;
        mq_call_observe(lim, &r, cfg->limiter_period);

        mq_verdict v = mq_classify(m, r.outcome, r.status, cfg->retry_post);
        /* libcurl's one re-send on a fresh connection (transport.c) means an
         * earlier send of this very attempt may have been processed */
        ambiguous |= r.resent;
        res->ambiguous_before = ambiguous;
        res->kind = v.kind;
        res->retryable = v.retryable;
        /* a too-big body still came with a status: say which */
        res->status = r.outcome == MQ_T_OK || r.outcome == MQ_T_TOO_BIG ? r.status : 0;
        res->body = r.outcome == MQ_T_OK ? r.body : "";
        res->body_len = r.outcome == MQ_T_OK ? r.body_len : 0;
        res->retry_after = r.retry_after;
        res->message[0] = '\0';
        ambiguous |= v.ambiguous;

        if (v.kind == MQ_K_OK)
            return;
        if (!v.retryable || retry >= cfg->max_retries) {
            mq_call_explain(res, &r, max_attempts,
                            v.retryable || !v.ambiguous ? NULL
                            : "not retried: it may have been processed, see retry_post");
            return;
        }

        double wait = mq_backoff(retry + 1, mq_rand_unit(rng));
        if (r.retry_after > wait)
            wait = r.retry_after;
        if (mq_now() + wait >= deadline_at) {
            /* the next attempt could not start in time: this is the answer */
            snprintf(stop, sizeof stop, "no time for another within the deadline of %.3gs",
                     cfg->deadline);
            mq_call_explain(res, &r, max_attempts, stop);
            return;
        }
        sleep_for(wait);
        st->retries++;
    }
}
