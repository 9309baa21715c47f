/* limiter.c: the rules of the host-wide rate limiter, applied lock-free to
 * the state in the shared file (limiter_file.c makes and maps it).
 *
 * Three rules:
 *  - a sliding-window log: the ring holds the last per_minute start times;
 *    a start is admitted only when the one it replaces (the per_minute-th
 *    before it) is at least period + guard old (the transit guard,
 *    limiter.h), so no window of period ever holds more than per_minute
 *    starts, nor a server's window their arrivals when transit jitter is
 *    under guard, and a slot frees guard after its start leaves the window
 *    (at most 0.5% of the budget);
 *  - a GCRA for the burst: at most burst back to back, then one every
 *    period/per_minute;
 *  - the server's word: a shared pause (429, remaining 0) and a
 *    calibration (fewer left than we think: another host on our IP).
 *
 * No lock: a process stopped or killed anywhere never makes another wait.
 * Admission number k (seq == k) is one CAS on ring[k % n], from the time of
 * admission k - n (tagged with k's lap - 1) to now (tagged with k's lap):
 * that CAS is the admission. Finishing it (the GCRA's tat, then seq = k+1)
 * is idempotent and done by whoever sees it pending, the admitter or any
 * other process, so an admitter frozen right after its CAS holds nobody
 * up. Every admission goes through the slot of the current seq, so they
 * are totally ordered and their times increase with k. Times are
 * CLOCK_MONOTONIC (host-wide on Linux, never stepped) in 16 ns units,
 * recorded rounded up and compared rounded down: the window rule holds in
 * exact nanoseconds. A slot's time is never ahead of a reader's clock (its
 * admitter read the clock before the reader saw the slot); one from the
 * future comes from an earlier boot (a file on a disk) and counts as free.
 * Times of an earlier boot that look recent count as recent: at worst a
 * period of waiting, never more starts. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "limiter_file.h"
#include "shmguard.h"

#define NS 1000000000LL
#define SPIN_TRIES 64           /* CAS races lost in a row before "try again" */
#define MAX_WAIT_S 86400.0

/* Runs op(l, arg) with the mapping under the SIGBUS guard (shmguard.c):
 * 0, or -1 when the file cannot be used or was cut short under us
 * (l->error says why; op may have run in part, which the lock-free state
 * allows: a step either happened in the file or not). */
static int guarded(mq_limiter *l, void (*op)(mq_rl_hdr *, void *), void *arg)
{
    sigjmp_buf env;
    sigjmp_buf *volatile prev;

    if (mq_rl_file_ready(l) != 0) return -1;
    prev = mq_shm_guard_enter(&env);
    if (sigsetjmp(env, 0) != 0) {
        mq_shm_guard_leave(prev);
        mq_rl_file_broken(l);
        return -1;
    }
    /* one mapping for the whole operation: another thread of this process
     * may re-map the handle meanwhile (the old mapping stays until close) */
    op(__atomic_load_n(&l->h, __ATOMIC_ACQUIRE), arg);
    mq_shm_guard_leave(prev);
    return 0;
}

/* the ring right after the header */
static uint64_t *ring_of(mq_rl_hdr *h) { return (uint64_t *)(h + 1); }

int64_t mq_rl_now_ns(void)
{
    return mq_now_ns();
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static int cas(uint64_t *p, uint64_t old, uint64_t nv)
{
    return __atomic_compare_exchange_n(p, &old, nv, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* The fixed rule in units, read once per call from the immutable header. */
typedef struct {
    uint64_t n, burst, period_u, step_u, cap_ns;
    uint64_t window_u;          /* period + the transit guard */
} rule;

int64_t mq_limiter_guard_ns(int64_t period_ns)
{
    static int off = -1;        /* the env, read once: 1 the guard is off */
    int o = __atomic_load_n(&off, __ATOMIC_RELAXED);
    int64_t g = period_ns / 200;

    if (o < 0) {
#ifdef MQ_TESTING
        /* the specs' control runs only (a -DMQ_TESTING build, make test-build) */
        o = getenv("MEDIQUO_TEST_HOOKS") && getenv("MEDIQUO_TEST_NO_JITTER_GUARD") ? 1 : 0;
#else
        o = 0;                  /* the shipped module: the guard is always on */
#endif
        __atomic_store_n(&off, o, __ATOMIC_RELAXED);
    }
    if (o) return 0;
    return g < MQ_LIMITER_GUARD_MAX_NS ? g : MQ_LIMITER_GUARD_MAX_NS;
}

static void get_rule(const mq_rl_hdr *h, rule *r)
{
    int64_t step = h->period_ns / h->per_minute;
    double cap = (double)h->period_ns / NS > MQ_LIMITER_MAX_PAUSE
               ? (double)h->period_ns / NS : MQ_LIMITER_MAX_PAUSE;

    r->n = (uint64_t)h->per_minute;
    r->burst = (uint64_t)h->burst;
    r->period_u = ((uint64_t)h->period_ns + MQ_RL_UNIT_NS - 1) >> MQ_RL_UNIT_SHIFT;
    r->step_u = ((uint64_t)(step > 0 ? step : 1) + MQ_RL_UNIT_NS - 1) >> MQ_RL_UNIT_SHIFT;
    r->window_u = ((uint64_t)(h->period_ns + mq_limiter_guard_ns(h->period_ns)) + MQ_RL_UNIT_NS - 1)
                  >> MQ_RL_UNIT_SHIFT;
    r->cap_ns = (uint64_t)(cap * NS);
}

static uint64_t tag_of(uint64_t lap) { return (lap + 1) & MQ_RL_TAG_MASK; }

/* the GCRA time of word x, a time from the future counting as now */
static uint64_t tat_units(uint64_t x, uint64_t now_u, const rule *r)
{
    uint64_t t = x >> MQ_RL_TAG_BITS;
    return t > now_u + r->burst * r->step_u + r->period_u ? now_u : t;
}

/* Admission k, at now_u (its recorded time - 1), is in the ring: account
 * it in the GCRA (once: the tat word says which admission it reflects)
 * and move seq on. Any process may do this for any other. */
static void finish(mq_rl_hdr *h, const rule *r, uint64_t k, uint64_t now_u)
{
    uint64_t x = ld(&h->tat);

    if ((x & MQ_RL_TAG_MASK) == (k & MQ_RL_TAG_MASK)) {
        uint64_t t = max64(tat_units(x, now_u, r), now_u) + r->step_u;
        cas(&h->tat, x, t << MQ_RL_TAG_BITS | ((k + 1) & MQ_RL_TAG_MASK));
    }
    cas(&h->seq, k, k + 1);
}

/* What a pause or calibration word says now: ns to wait, 0 when not in
 * force; a value past the cap (the file outlived a reboot) is ignored. */
static uint64_t left_ns(const int64_t *until, int64_t now, const rule *r)
{
    int64_t u = __atomic_load_n(until, __ATOMIC_ACQUIRE);
    return u > now && (uint64_t)(u - now) <= r->cap_ns ? (uint64_t)(u - now) : 0;
}

static int try_inner(mq_rl_hdr *h, double *wait, int64_t *at)
{
    uint64_t *ring = ring_of(h);
    rule r;
    int i;

    get_rule(h, &r);
    for (i = 0; i < SPIN_TRIES; i++) {
        uint64_t k = ld(&h->seq), lap = k / r.n, *slot = &ring[k % r.n];
        uint64_t s = ld(slot), x, prev, now_u, w_u = 0, w_ns, tat;
        int64_t now;

        if (ld(&h->seq) != k) continue;     /* s was read while seq == k */
        if ((s & MQ_RL_TAG_MASK) == tag_of(lap)) {
            finish(h, &r, k, (s >> MQ_RL_TAG_BITS) - 1);    /* someone's, pending */
            continue;
        }
        x = ld(&h->tat);
        if ((x & MQ_RL_TAG_MASK) != (k & MQ_RL_TAG_MASK)) continue;  /* seq moved */
        now = mq_rl_now_ns();
        now_u = (uint64_t)now >> MQ_RL_UNIT_SHIFT;
        prev = s >> MQ_RL_TAG_BITS;
        if (prev > now_u + 1) prev = 0;                /* an earlier boot's */
        if (prev != 0 && now_u < prev + r.window_u) w_u = prev + r.window_u - now_u;
        tat = tat_units(x, now_u, &r);
        if (tat > now_u + (r.burst - 1) * r.step_u)
            w_u = max64(w_u, tat - (r.burst - 1) * r.step_u - now_u);
        w_ns = max64(w_u << MQ_RL_UNIT_SHIFT, left_ns(&h->paused_until, now, &r));
        if (k >= ld(&h->cal_limit))
            w_ns = max64(w_ns, left_ns(&h->cal_until, now, &r));
        if (w_ns > 0) {
            *wait = (double)w_ns / NS;
            return 0;
        }
        if (cas(slot, s, (now_u + 1) << MQ_RL_TAG_BITS | tag_of(lap))) {
            finish(h, &r, k, now_u);
            *wait = 0;
            if (at) *at = (int64_t)((now_u + 1) << MQ_RL_UNIT_SHIFT);
            return 1;
        }
    }
    *wait = 1e-5;               /* lost every race: others are admitting */
    return 0;
}

struct try_args { double *wait; int64_t *at; int rc; };

static void try_op(mq_rl_hdr *h, void *p)
{
    struct try_args *a = p;
    a->rc = try_inner(h, a->wait, a->at);
}

int mq_rl_try_local(mq_limiter *l, double *wait, int64_t *at)
{
    struct try_args a = { wait, at, 0 };

    if (guarded(l, try_op, &a) != 0) {
        *wait = 1;
        return 0;
    }
    return a.rc;
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
    if (l->error) {
        *retry_after = w;
        return 0;
    }
    if (!(max_wait >= 0)) max_wait = 0;             /* NaN too */
    if (max_wait > MAX_WAIT_S) max_wait = MAX_WAIT_S;
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
            if (*waited < 0) *waited = 0;
            if (at) *at = t;
            return 1;
        }
        if (l->error) {
            *retry_after = w;
            return 0;
        }
    }
}

int mq_limiter_acquire(mq_limiter *l, double max_wait, double *waited, double *retry_after)
{
    return mq_limiter_acquire_at(l, max_wait, waited, retry_after, NULL);
}

/* until = max(until, now + seconds), seconds capped; CAS so that a shorter
 * pause never cuts a longer one short */
static void extend(int64_t *until, double seconds, const rule *r, const mq_rl_hdr *h)
{
    int64_t now = mq_rl_now_ns(), want, cur;
    double cap = (double)r->cap_ns / NS;
    int i;

    if (!(seconds >= 0)) seconds = (double)h->period_ns / NS;   /* negative, NaN */
    if (seconds > cap) seconds = cap;
    want = now + (int64_t)(seconds * NS);
    for (i = 0; i < SPIN_TRIES; i++) {
        cur = __atomic_load_n(until, __ATOMIC_ACQUIRE);
        if (cur >= want && cur - now <= (int64_t)r->cap_ns) return;
        if (__atomic_compare_exchange_n(until, &cur, want, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return;
    }
}

static void pause_op(mq_rl_hdr *h, void *p)
{
    rule r;

    get_rule(h, &r);
    extend(&h->paused_until, *(double *)p, &r, h);
}

void mq_limiter_pause(mq_limiter *l, double seconds)
{
    guarded(l, pause_op, &seconds);
    if (l->rd) l->remote->pause(l, seconds, 1);     /* every host, not just this one */
}

static void resume_op(mq_rl_hdr *h, void *p)
{
    (void)p;
    __atomic_store_n(&h->paused_until, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&h->cal_until, 0, __ATOMIC_RELEASE);
}

void mq_limiter_resume(mq_limiter *l)
{
    guarded(l, resume_op, NULL);
}

/* whether the ring's slot i holds a start that no longer holds a slot */
static int expired(const uint64_t *ring, uint64_t i, const rule *r, uint64_t now_u)
{
    uint64_t t = ld(&ring[i]) >> MQ_RL_TAG_BITS;
    if (t > now_u + 1) t = 0;
    return t == 0 || t + r->window_u <= now_u;
}

/* starts holding a slot now (in the window ending now, widened by the
 * transit guard): the ring is in time order from the slot of seq (the
 * oldest), so the first one inside is searched for. *hint: the seq of the
 * first one inside that this process found last (any value is right; a
 * close one is cheap): the search gallops out from it to bracket the
 * first one inside, then halves the bracket -- a few slots read where
 * the boundary moved little, ~2 log2 of its move otherwise, never more
 * than 2 log2 n + 2 (20 reads for a binary search of 1,000,000 slots,
 * ~4 from a hint one call old) */
static uint64_t used(mq_rl_hdr *h, const rule *r, uint64_t now_u, uint64_t *hint)
{
    const uint64_t *ring = ring_of(h);
    uint64_t k = ld(&h->seq), n = r->n, lo = 0, hi = n, base, g, d;

    /* an admission made but not finished is the newest, not the oldest */
    if ((ld(&ring[k % n]) & MQ_RL_TAG_MASK) == tag_of(k / n)) k++;
    base = k % n;
#define SLOT(mid) (base + (mid) >= n ? base + (mid) - n : base + (mid))
    /* g: the hint as an offset from the oldest slot (seq k - n) */
    g = __atomic_load_n(hint, __ATOMIC_RELAXED) - (k - n);
    if (g < n) {
        /* bracket: slots before lo are outside, from hi on inside */
        if (expired(ring, SLOT(g), r, now_u)) {
            lo = g + 1;
            for (d = 1; lo < hi && d <= n; d *= 2) {
                uint64_t m = g + d < hi ? g + d : hi - 1;
                if (!expired(ring, SLOT(m), r, now_u)) { hi = m; break; }
                lo = m + 1;
            }
        } else {
            hi = g;
            for (d = 1; lo < hi && d <= n; d *= 2) {
                uint64_t m = g >= d ? g - d : 0;
                if (expired(ring, SLOT(m), r, now_u)) { lo = m + 1; break; }
                hi = m;
            }
        }
    }
    /* (a subtraction, not a division, per step) */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (expired(ring, SLOT(mid), r, now_u)) lo = mid + 1; else hi = mid;
    }
#undef SLOT
    __atomic_store_n(hint, k - n + lo, __ATOMIC_RELAXED);
    return n - lo;
}

/* the starts allowed now, u of the ring's slots being held */
static int64_t available_of(mq_rl_hdr *h, const rule *r, int64_t now, uint64_t u)
{
    int64_t a = (int64_t)(r->n - u);

    if (left_ns(&h->cal_until, now, r) > 0) {
        int64_t c = (int64_t)ld(&h->cal_limit) - (int64_t)ld(&h->seq);
        if (c < a) a = c;
    }
    if (left_ns(&h->paused_until, now, r) > 0 || a < 0) a = 0;
    return a;
}

static int64_t available(mq_rl_hdr *h, const rule *r, int64_t now, uint64_t *hint)
{
    return available_of(h, r, now, used(h, r, (uint64_t)now >> MQ_RL_UNIT_SHIFT, hint));
}

/* limit is informational: the rule stays per_minute (a lower server limit
 * shows up in remaining anyway, which is what is acted on). */
struct observe_args { long remaining; double reset_in; uint64_t *hint; };

static void observe_op(mq_rl_hdr *h, void *p)
{
    const struct observe_args *a = p;
    long remaining = a->remaining;
    double reset_in = a->reset_in;
    rule r;
    int64_t now;

    get_rule(h, &r);
    if (remaining == 0) {
        extend(&h->paused_until, reset_in, &r, h);
        return;
    }
    /* no news when the server has room for more than the whole rule (no
     * count of ours passes r.n): the ring is not searched */
    if ((uint64_t)remaining >= r.n) return;
    now = mq_rl_now_ns();
    if (remaining < available(h, &r, now, a->hint)) {
        /* the server knows of starts we do not (another host behind our
         * IP): take its word until its window ends. The limit first, the
         * end last, so a reader that sees the end sees the limit. */
        double s = reset_in >= 0 ? reset_in : (double)h->period_ns / NS;
        if (s > (double)r.cap_ns / NS) s = (double)r.cap_ns / NS;
        __atomic_store_n(&h->cal_until, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&h->cal_limit, ld(&h->seq) + (uint64_t)remaining, __ATOMIC_RELEASE);
        __atomic_store_n(&h->cal_until, now + (int64_t)(s * NS), __ATOMIC_RELEASE);
    }
}

void mq_limiter_observe(mq_limiter *l, long remaining, long limit, double reset_in)
{
    struct observe_args a = { remaining, reset_in, &l->hint };

    (void)limit;
    /* with Redis, its count is the whole budget's: this host's file, which
     * holds only its own starts, would take every remaining for news */
    if (l->rd && l->remote->observe(l, remaining, reset_in)) return;
    if (remaining < 0) return;
    guarded(l, observe_op, &a);
}

struct status_args { mq_limiter_status_t *st; const int64_t *want; uint64_t *hint; };

static void status_op(mq_rl_hdr *h, void *arg)
{
    const struct status_args *a = arg;
    mq_limiter_status_t *st = a->st;
    rule r;
    int64_t now;
    uint64_t p, u;

    get_rule(h, &r);
    now = mq_rl_now_ns();
    st->per_minute = (long)h->per_minute;
    st->burst = (long)h->burst;
    st->period = (double)h->period_ns / NS;
    st->rule_set_at = (double)h->set_at;
    st->rule_set_by_pid = (long)h->set_by_pid;
    st->rule_set_by_uid = (long)h->set_by_uid;
    st->mismatch = h->per_minute != a->want[0] || h->burst != a->want[1]
                || h->period_ns != a->want[2];
    u = used(h, &r, (uint64_t)now >> MQ_RL_UNIT_SHIFT, a->hint);     /* one search for both */
    st->used = (long)u;
    st->available = (long)available_of(h, &r, now, u);
    if ((p = left_ns(&h->paused_until, now, &r)) > 0) {
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        st->paused_until = (double)rt.tv_sec + rt.tv_nsec / 1e9 + (double)p / NS;
    }
}

void mq_limiter_status(mq_limiter *l, mq_limiter_status_t *st)
{
    struct status_args a;

    memset(st, 0, sizeof *st);
    a.st = st;
    a.want = l->want;
    a.hint = &l->hint;
    if (guarded(l, status_op, &a) != 0) memset(st, 0, sizeof *st);
}

const char *mq_limiter_key(const mq_limiter *l) { return l->key; }
const char *mq_limiter_path(const mq_limiter *l) { return l->path; }
int mq_limiter_remote(const mq_limiter *l) { return l->rd != NULL; }

#ifdef MQ_TESTING
struct used_args { int64_t off; uint64_t from_hint, plain; int still; };

/* both searches, again until no admission (of any process) came between
 * the first read of seq and the last: the ring they read was one */
static void used_op(mq_rl_hdr *h, void *p)
{
    struct used_args *a = p;
    const uint64_t *ring = ring_of(h);
    rule r;

    get_rule(h, &r);
    a->still = 0;
    for (int tries = 0; tries < 1000 && !a->still; tries++) {
        uint64_t k = ld(&h->seq), s = ld(&ring[k % r.n]);
        uint64_t now_u = (uint64_t)mq_rl_now_ns() >> MQ_RL_UNIT_SHIFT;
        uint64_t hint = k - r.n + (uint64_t)a->off;
        uint64_t none = k + 2 * r.n;            /* no slot's: a plain halving */
        a->from_hint = used(h, &r, now_u, &hint);
        a->plain = used(h, &r, now_u, &none);
        a->still = ld(&h->seq) == k && ld(&ring[k % r.n]) == s;
    }
}

int mq_limiter_used_both(mq_limiter *l, int64_t off, uint64_t *from_hint, uint64_t *plain)
{
    struct used_args a = { off, 0, 0, 0 };

    if (guarded(l, used_op, &a) != 0) return -1;
    *from_hint = a.from_hint;
    *plain = a.plain;
    return a.still ? 0 : 1;
}

void mq_limiter_freeze_mid_admission(mq_limiter *l)
{
    uint64_t k, s, now_u, lap;
    rule r;

    if (mq_rl_file_ready(l) != 0) return;
    get_rule(l->h, &r);
    for (;;) {                  /* claim the next slot whatever the rules say */
        k = ld(&l->h->seq);
        lap = k / r.n;
        s = ld(&l->ring[k % r.n]);
        if ((s & MQ_RL_TAG_MASK) == tag_of(lap)) {
            finish(l->h, &r, k, (s >> MQ_RL_TAG_BITS) - 1);
            continue;
        }
        now_u = (uint64_t)mq_rl_now_ns() >> MQ_RL_UNIT_SHIFT;
        if (cas(&l->ring[k % r.n], s, (now_u + 1) << MQ_RL_TAG_BITS | tag_of(lap)))
            break;
    }
    for (;;) pause();           /* never finishes: the others must */
}
#endif
