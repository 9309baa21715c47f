/* limiter.c: the rules of the host-wide rate limiter, applied to the state
 * in the shared file (limiter_file.c makes and maps it).
 *
 * Three rules, all under one process-shared robust mutex:
 *  - a sliding-window log: the ring holds the last per_minute start times;
 *    a start is admitted only when the oldest of them is at least period
 *    old, so no window of period ever holds more than per_minute starts,
 *    and a slot frees exactly when its start leaves the window (the whole
 *    budget is usable);
 *  - a GCRA for the burst: at most burst back to back, then one every
 *    period/per_minute (the log alone would let the whole budget go at
 *    once; the GCRA alone cannot hold the window rule when burst is large);
 *  - the server's word: a shared pause (429, remaining 0) and a
 *    calibration (fewer left than we think: another host on our IP).
 * Times are CLOCK_MONOTONIC nanoseconds: host-wide on Linux, never stepped
 * by NTP; the file records the boot they belong to. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "limiter_file.h"

#define NS 1000000000LL
#define LOCK_TIMEOUT_S 1        /* a holder never keeps it this long */
#define MAX_PAUSE_S 86400.0

int64_t mq_rl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ring entry i in age order (0 = oldest) */
static int64_t *entry(mq_limiter *l, int64_t i)
{
    int64_t n = l->h->per_minute, j = l->h->head + i;
    return &l->ring[j >= n ? j - n : j];
}

/* A holder died in the middle of a multi-step rewrite (reconfigure): the
 * ring may mix old and new order. Count every slot as taken at the newest
 * time seen: conservative (at worst a period of waiting), never over. */
static void repair(mq_limiter *l)
{
    mq_rl_hdr *h = l->h;
    int64_t newest = 0, i, n = h->dirty;

    if (n > MQ_RL_MAX_PER_MIN) n = MQ_RL_MAX_PER_MIN;
    for (i = 0; i < n; i++) newest = max64(newest, l->ring[i]);
    if (h->per_minute < 1 || h->per_minute > MQ_RL_MAX_PER_MIN) h->per_minute = 1;
    for (i = 0; i < h->per_minute; i++) l->ring[i] = newest;
    h->head = 0;
    h->dirty = 0;
}

/* The live fields can only be out of range if the file was scribbled on. */
static int sane(const mq_rl_hdr *h)
{
    return h->per_minute >= 1 && h->per_minute <= MQ_RL_MAX_PER_MIN
        && h->burst >= 1 && h->burst <= h->per_minute
        && h->period_ns > 0 && h->head >= 0 && h->head < h->per_minute
        && h->dirty >= 0;
}

int mq_rl_lock(mq_limiter *l)
{
    pthread_mutex_t *mu = &l->h->lock.mu;
    int rc = pthread_mutex_trylock(mu);

    if (rc == EBUSY) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += LOCK_TIMEOUT_S;
        rc = pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &ts);
    }
    if (rc == EOWNERDEAD) {
        /* the holder was killed: its admitted starts are in the ring (the
         * head moves before the time is written, so a half-done admission
         * only forgets a start that never happened) */
        if (pthread_mutex_consistent(mu) != 0) return ENOTRECOVERABLE;
        if (l->h->dirty) repair(l);
        rc = 0;
    }
    if (rc == 0 && !sane(l->h)) {
        mq_rl_reset(l->h, l->h->boot_id);
        l->h->per_minute = 1, l->h->burst = 1, l->h->period_ns = NS;
    }
    return rc;
}

void mq_rl_unlock(mq_limiter *l)
{
    pthread_mutex_unlock(&l->h->lock.mu);
}

void mq_rl_reset(mq_rl_hdr *h, const char *boot_id)
{
    int64_t *ring = (int64_t *)(h + 1);
    int64_t n = h->per_minute;

    if (n < 1 || n > MQ_RL_MAX_PER_MIN) n = MQ_RL_MAX_PER_MIN;
    memset(ring, 0, (size_t)n * sizeof *ring);
    memmove(h->boot_id, boot_id, MQ_RL_BOOT_LEN);
    h->head = h->tat = h->paused_until = h->cal_until = h->cal_left = 0;
    h->dirty = 0;
}

/* A process opened the key with another rule: the last opener's rule wins,
 * for every process at once (they all read it from the file). The newest
 * starts are kept so the switch cannot break the window. */
void mq_rl_configure(mq_limiter *l, long per_minute, long burst, int64_t period_ns)
{
    mq_rl_hdr *h = l->h;
    int64_t n = h->per_minute, m = per_minute, k = n < m ? n : m, i;
    int64_t *tmp;

    if (n == m) {
        h->burst = burst;
        h->period_ns = period_ns;
        return;
    }
    if (burst < h->burst) h->burst = burst;  /* in range for old and new */
    h->dirty = n > m ? n : m;
    tmp = malloc((size_t)k * sizeof *tmp);
    if (tmp) {
        for (i = 0; i < k; i++) tmp[i] = *entry(l, n - k + i);
        for (i = 0; i < m - k; i++) l->ring[i] = 0;
        memcpy(l->ring + (m - k), tmp, (size_t)k * sizeof *tmp);
        free(tmp);
    } else {
        int64_t newest = *entry(l, n - 1);
        for (i = 0; i < m; i++) l->ring[i] = newest;
    }
    h->head = 0;
    h->per_minute = m;
    h->burst = burst;           /* after per_minute: burst <= per_minute */
    h->period_ns = period_ns;
    h->dirty = 0;
}

int mq_rl_try_local(mq_limiter *l, double *wait, int64_t *at)
{
    mq_rl_hdr *h = l->h;
    int64_t now, n, period, step, oldest, w = 0, idx;

    if (mq_rl_lock(l) != 0) {       /* stuck or unrecoverable: say later */
        *wait = 0.05;
        return 0;
    }
    now = mq_rl_now_ns();
    n = h->per_minute;
    period = h->period_ns;
    step = period / n > 0 ? period / n : 1;

    if (h->paused_until > now) w = h->paused_until - now;
    if (h->cal_until > now && h->cal_left <= 0) w = max64(w, h->cal_until - now);
    oldest = l->ring[h->head];
    if (oldest != 0 && now - oldest < period) w = max64(w, oldest + period - now);
    if (h->tat - (h->burst - 1) * step > now)
        w = max64(w, h->tat - (h->burst - 1) * step - now);
    if (w > 0) {
        mq_rl_unlock(l);
        *wait = (double)w / NS;
        return 0;
    }
    /* admit. Order matters for a holder killed here: head first (a kill
     * now forgets a start that was never made), then the time. */
    idx = h->head;
    __atomic_store_n(&h->head, idx + 1 == n ? 0 : idx + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&l->ring[idx], now, __ATOMIC_RELEASE);
    h->tat = max64(h->tat, now) + step;
    if (h->cal_until > now) h->cal_left--;
    h->admitted++;
    mq_rl_unlock(l);
    *wait = 0;
    if (at) *at = now;
    return 1;
}

int mq_limiter_try_at(mq_limiter *l, double *wait, int64_t *at)
{
    if (l->rd) return l->remote->try_at(l, wait, at);
    return mq_rl_try_local(l, wait, at);
}

int mq_limiter_try(mq_limiter *l, double *wait)
{
    return mq_limiter_try_at(l, wait, NULL);
}

int mq_limiter_acquire_at(mq_limiter *l, double max_wait, double *waited,
                          double *retry_after, int64_t *at)
{
    int64_t start, limit, t;
    double w = 0;

    if (l->rd) return l->remote->acquire_at(l, max_wait, waited, retry_after, at);
    *waited = 0;
    *retry_after = 0;
    if (mq_limiter_try_at(l, &w, at))   /* the common case: no clock read here */
        return 1;
    if (!(max_wait >= 0)) max_wait = 0;             /* NaN too */
    if (max_wait > MAX_PAUSE_S) max_wait = MAX_PAUSE_S;
    start = mq_rl_now_ns();
    limit = start + (int64_t)(max_wait * NS);
    for (;;) {
        int64_t now = mq_rl_now_ns(), sleep_ns = (int64_t)ceil(w * NS);
        struct timespec ts;

        if (sleep_ns < 1000) sleep_ns = 1000;
        /* no slot before the deadline: say so now rather than sleep on */
        if (now + sleep_ns > limit) {
            *waited = (double)(now - start) / NS;
            *retry_after = w;
            return 0;
        }
        ts.tv_sec = (time_t)(sleep_ns / NS);
        ts.tv_nsec = (long)(sleep_ns % NS);
        nanosleep(&ts, NULL);           /* EINTR: the loop re-reads the clock */
        if (mq_limiter_try_at(l, &w, &t)) {
            *waited = (double)(t - start) / NS;
            if (at) *at = t;
            return 1;
        }
    }
}

int mq_limiter_acquire(mq_limiter *l, double max_wait, double *waited, double *retry_after)
{
    return mq_limiter_acquire_at(l, max_wait, waited, retry_after, NULL);
}

static int64_t seconds_ns(double s, int64_t dflt)
{
    if (!(s >= 0)) return dflt;                     /* negative, NaN: default */
    if (s > MAX_PAUSE_S) s = MAX_PAUSE_S;
    return (int64_t)(s * NS);
}

void mq_limiter_pause(mq_limiter *l, double seconds)
{
    int64_t until;

    if (mq_rl_lock(l) != 0) return;
    until = mq_rl_now_ns() + seconds_ns(seconds, l->h->period_ns);
    l->h->paused_until = max64(l->h->paused_until, until);
    mq_rl_unlock(l);
    if (l->rd) l->remote->pause(l, seconds, 1);     /* every host, not just this one */
}

/* starts in (now - period, now]: the ring is in time order from head, so
 * a binary search finds the first start still inside */
static int64_t used(mq_limiter *l, int64_t now)
{
    int64_t lo = 0, hi = l->h->per_minute, edge = now - l->h->period_ns;

    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, t = *entry(l, mid);
        if (t == 0 || t <= edge) lo = mid + 1; else hi = mid;
    }
    return l->h->per_minute - lo;
}

static int64_t available(mq_limiter *l, int64_t now)
{
    mq_rl_hdr *h = l->h;
    int64_t a = h->per_minute - used(l, now);

    if (h->cal_until > now && h->cal_left < a) a = h->cal_left;
    if (h->paused_until > now || a < 0) a = 0;
    return a;
}

/* limit is informational: the rule stays per_minute (a lower server limit
 * shows up in remaining anyway, which is what is acted on). */
void mq_limiter_observe(mq_limiter *l, long remaining, long limit, double reset_in)
{
    mq_rl_hdr *h = l->h;
    int64_t now, end;

    (void)limit;
    if (l->rd) l->remote->observe(l, remaining, reset_in);
    if (remaining < 0 || mq_rl_lock(l) != 0) return;
    now = mq_rl_now_ns();
    end = now + seconds_ns(reset_in, h->period_ns);
    if (remaining == 0) {
        h->paused_until = max64(h->paused_until, end);
    } else if (remaining < available(l, now)) {
        /* the server knows of starts we do not (another host behind our
         * IP): take its word until its window ends */
        h->cal_until = end;
        h->cal_left = remaining;
    }
    mq_rl_unlock(l);
}

void mq_limiter_status(mq_limiter *l, mq_limiter_status_t *st)
{
    mq_rl_hdr *h = l->h;
    int64_t now;

    memset(st, 0, sizeof *st);
    if (mq_rl_lock(l) != 0) return;
    now = mq_rl_now_ns();
    st->per_minute = (long)h->per_minute;
    st->used = (long)used(l, now);
    st->available = (long)available(l, now);
    if (h->paused_until > now) {
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        st->paused_until = (double)rt.tv_sec + rt.tv_nsec / 1e9
                         + (double)(h->paused_until - now) / NS;
    }
    mq_rl_unlock(l);
}

const char *mq_limiter_key(const mq_limiter *l) { return l->key; }
const char *mq_limiter_path(const mq_limiter *l) { return l->path; }

void mq_limiter_hold_lock_forever(mq_limiter *l)
{
    if (mq_rl_lock(l) != 0) return;
    for (;;) pause();
}
