/* limiter_redis.c: one budget across hosts.
 *
 * Redis decides, with one script per decision on its own clock (TIME):
 * a log of leased slots, each kept until the last instant it may be
 * started (grant + lease) has left the window, so however late a host
 * starts a slot no window of period ever holds more than per_minute; a
 * GCRA for the burst; the shared pause and calibration; a registry of the
 * hosts sharing the key. All keys of a budget share one hash tag.
 *
 * A host leases slots (one round trip per batch, asked by one process of
 * the host at a time through the lease file) and its processes spend them
 * through the local limiter, which still holds the host's own pause.
 *
 * Redis gone: the host waits until every slot granted before can have left
 * the window (period + lease after it noticed), then starts at most
 * fallback_per_minute a window on its own (per_minute / hosts by default,
 * so the hosts together stay within per_minute), and tries Redis twice a
 * second. Redis back without its memory (a restart, a flush) or after
 * hosts spent fallback: the script "learns" - every host hands back what
 * it started in the last window and no slot is granted until all hosts
 * seen have done so (or a window has passed). See docs/limiter-and-redis.md. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "lease_file.h"
#include "limiter_file.h"
#include "limiter_redis.h"
#include "limiter_redis_script.h"
#include "redis_conn.h"
#include "shmfile.h"
#include "shmguard.h"
#include "xstr.h"

#define NS 1000000000LL
#define MS 1000000LL
#define RETRY_MS 500                /* degraded: Redis again this often (ms), */
#define RETRY_NS (RETRY_MS * MS)    /* ...as the script is told (its "retry") */
#define REFUSED_RETRY_NS (5 * NS)   /* a setup fault: less often, still reported */
#define LEASE_MAX 16                /* slots asked for at once, as demand says */
#define LEASE_BIG 1024              /* ...and at most, a lease grown under demand */
#define AHEAD_NS (4 * MS)           /* ask ahead when the lease lasts less than that */
#define KEY_TTL_MS 86400000LL       /* an idle budget's keys go after a day */
#define STUCK_NS NS                 /* a lease lock held that long: its holder is stopped */
#define STATUS_WAIT_NS (5 * MS)     /* status() tries the lease lock this long */

struct mq_rdl {
    mq_lease lf;
    mq_redis *conn;             /* the blocking driver's connection */
    mq_redis_url url;
    mq_rtopo topo;              /* the cosocket driver's: where the budget was found */
    uint64_t cfg;               /* digest of the URL and TLS/Sentinel options */
    long per_minute, burst, fallback;
    double period, timeout;
    int64_t period_ns, lease_ns;
    int64_t ahead_ns;           /* how far ahead Redis reserves a slot */
    char *key, *dir;
    long gid;
    mq_limiter *fb;             /* the fallback budget, opened when needed */
    long fb_pm;
    /* the round trip under way (begin .. finish) */
    char keys[MQ_RDL_NKEYS][64];
    char num[12][24];
    char host_id[24];           /* the lease file's host id, copied under its guard */
    char upload[4096];
    int64_t t_send, sent_fb, sent_pause, sent_obs;
    int want;
    int lease_size;             /* the last lease's size kept (lease_want); > LEASE_MAX: grown */
    int ahead;                  /* the round trip under way asks ahead: its asker has its slot */
    int64_t demand_mark;        /* the wait this process was last counted in demand for */
    int unsafe;                 /* test hook: no quarantine, no hand-back */
    long lease_cap;             /* test hook: no lease over this (0: none; lease_most) */
    int cosocket;               /* no blocking round trip from C */
    /* the lease file, this process's side */
    int broken;                 /* its mapping faulted: re-open it first */
    int64_t checked_at;         /* last look for a removed or replaced file */
    int64_t pend_fb;            /* fallback starts to record, and */
    int64_t pend_pause;         /* ...a pause to keep, when its lock was busy */
    int64_t busy_since;         /* every lock attempt since then failed, */
    int busy_n;                 /* ...this many */
    /* the budget as this process last saw it under the lease lock (unlock_snap):
     * X-RateLimit-Remaining without another lock (mq_rdl_remaining) */
    int64_t snap_used, snap_at, snap_leased;
    int snap_degraded;
    char errbuf[MQ_LF_ERR];     /* l->error: the lease file's fault, or Redis's setup fault */
};

mq_rdl *mq_rdl_of(mq_limiter *l) { return l->rd; }

const mq_redis_url *mq_rdl_url(mq_rdl *r) { return &r->url; }
mq_rtopo *mq_rdl_topo(mq_rdl *r) { return &r->topo; }

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The window a start holds its slot for: period + the transit guard
 * (limiter.h), on Redis as in the local file. */
static int64_t window_ns(const mq_rdl *r)
{
    return r->period_ns + mq_limiter_guard_ns(r->period_ns);
}

static long fallback_of(const mq_rdl *r, int64_t hosts)
{
    if (r->fallback >= 0) return r->fallback;
    return r->per_minute / (hosts > 0 ? hosts : 1);
}

/* The lease file before each use: re-opened (re-made when it is cut short)
 * after a fault, and joined again when another process replaced it. 0, or
 * -1 with l->error. */
static int lease_ready(mq_limiter *l)
{
    mq_rdl *r = l->rd;
    char err[300];

    if (!r->broken) {
        int64_t now;

        /* fstat costs about what a whole admission does: once a second */
        now = mq_coarse_ns();
        if (now - r->checked_at < NS) return 0;
        r->checked_at = now;
        if (!mq_lease_replaced(&r->lf)) return 0;
    }
    mq_lease_close(&r->lf);
    if (mq_lease_open(r->dir, r->key, r->gid, &r->lf, err, sizeof err) != 0) {
        r->broken = 1;
        snprintf(r->errbuf, sizeof r->errbuf, "%s", err);
        l->error = r->errbuf;
        return -1;
    }
    r->broken = 0;
    return 0;
}

#define FAULT (-1)

/* Runs op(l, arg) with the lease mapping under the SIGBUS guard
 * (shmguard.c), as limiter.c's guarded() does for the local file: op's
 * result (>= 0), or FAULT when the file cannot be opened or was cut short
 * under this call (l->error says why; the next call re-makes it). op may
 * have run in part: every update is a few stores that leave the fields
 * usable, and a file cut short is a new, empty one anyway. */
static int leased(mq_limiter *l, int (*op)(mq_limiter *, void *), void *arg)
{
    mq_rdl *r = l->rd;
    sigjmp_buf env;
    sigjmp_buf *volatile prev;
    int rc;

    if (lease_ready(l) != 0) return FAULT;
    prev = mq_shm_guard_enter(&env);
    if (sigsetjmp(env, 0) != 0) {
        mq_shm_guard_leave(prev);
        snprintf(r->errbuf, sizeof r->errbuf, "redis lease file %s: cut short under this process "
                 "(truncated by someone, or its disk lost it); the next call re-makes it",
                 r->lf.path ? r->lf.path : "?");
        l->error = r->errbuf;
        /* now, not at the next call: a mutex this thread held there must
         * not stay on its robust list in a mapping that faults */
        mq_lease_close(&r->lf);
        r->broken = 1;
        return FAULT;
    }
    rc = op(l, arg);
    mq_shm_guard_leave(prev);
    return rc;
}

/* The lease lock, a bounded try-lock (lease_file.c). On success what was
 * kept while it was busy goes into the file. Held through every attempt
 * for STUCK_NS (its holder does a few stores: that one is stopped, a hung
 * script): the file is replaced by a new one, which the next call opens
 * and the other processes join within a second; the stopped holder finds
 * it when it runs again. Its state is lost (the lease, a quarantine under
 * way, the record of recent starts): fewer starts, a new quarantine at the
 * next failure. */
static int lease_lock(mq_rdl *r, int64_t now)
{
    mq_lease_file *f = r->lf.f;

    if (mq_lease_lock(&r->lf) != 0) {
        char err[300];

        if (r->busy_n == 0 || now < r->busy_since) r->busy_since = now;
        if (++r->busy_n >= 3 && now - r->busy_since >= STUCK_NS
            && mq_lease_replace(&r->lf, r->gid, err, sizeof err) == 0) {
            r->broken = 1;      /* the next call opens the new file */
            r->busy_n = 0;
        }
        return -1;
    }
    r->busy_n = 0;
    if (r->pend_fb > 0) {
        /* a later time than they happened: counted longer, never shorter */
        mq_lease_record(f, now, r->pend_fb, window_ns(r) + r->lease_ns);
        f->fb_used += r->pend_fb;
        r->pend_fb = 0;
    }
    if (r->pend_pause > f->pause_until) {
        f->pause_until = r->pend_pause;
        f->lease_n = f->next_n = 0;
    }
    r->pend_pause = 0;
    return 0;
}

static int contact(mq_limiter *l, char *why, size_t whylen);

/* a digest of the Redis settings: a setup fault another process met is
 * told to this one only when it uses the same (a fixed setting is tried) */
static uint64_t cfg_digest(const mq_redis_url *u)
{
    const char *parts[] = { u->where, u->path, u->master, u->user, u->pass, u->s_user, u->s_pass,
                            u->ca_file, u->cert_file, u->key_file, u->server_name };
    uint64_t h = 1469598103934665603ULL;
    size_t i, j;

    for (i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        const char *p = parts[i] ? parts[i] : "";
        for (j = 0; p[j] != '\0'; j++) h = (h ^ (unsigned char)p[j]) * 1099511628211ULL;
        h = (h ^ 0xffu) * 1099511628211ULL;         /* a field separator */
    }
    return h ^ (uint64_t)(u->db * 4 + u->tls * 2 + u->verify) * 1099511628211ULL;
}

static const mq_rl_remote REMOTE = {
    mq_rdl_try, mq_rdl_acquire, mq_rdl_pause, mq_rdl_observe, mq_rdl_close,
};

int mq_rdl_open(mq_limiter *l, const mq_limiter_cfg *lc, const mq_rdl_cfg *rc,
                char *err, size_t errlen)
{
    mq_rdl *r;
    char why[MQ_LF_ERR];
    uint64_t h = mq_fnv1a64(lc->key);
    int i;

    r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "redis: out of memory");
        return -2;
    }
    r->lf.fd = -1;
    if (mq_redis_url_copy(&r->url, rc->url) != 0) {
        snprintf(err, errlen, "redis: out of memory");
        free(r);
        return -2;
    }
    r->cfg = cfg_digest(rc->url);
    r->per_minute = lc->per_minute;
    r->burst = lc->burst;
    r->period = lc->period;
    r->period_ns = (int64_t)(lc->period * 1e9);
    /* a lease spends 1/400 of the window at most on slots leased but not
     * yet started: that is what it costs in budget (>= 99.75% usable with
     * a 60 s window); never under 20 ms, so that a round trip slowed by a
     * busy host still finds its lease usable */
    r->lease_ns = min64(max64(r->period_ns / 400, 20 * MS), 250 * MS);
    r->ahead_ns = min64(NS, r->period_ns / 4);     /* the script's horizon */
    r->fallback = rc->fallback;
    r->cosocket = rc->cosocket;
#ifdef MQ_TESTING
    /* the specs show the outage guarantee failing without its two
     * mechanisms: a -DMQ_TESTING build only (make test-build) */
    r->unsafe = getenv("MEDIQUO_TEST_HOOKS") && getenv("MEDIQUO_TEST_REDIS_UNSAFE");
    /* ...and leases held to N slots: spec 40's control (N = burst, as
     * before a lease could outgrow it), bench/redis_ha.lua's round trip
     * per admission (N = 1) */
    r->lease_cap = getenv("MEDIQUO_TEST_HOOKS") && getenv("MEDIQUO_TEST_REDIS_LEASE_MOST")
                 ? atol(getenv("MEDIQUO_TEST_REDIS_LEASE_MOST")) : 0;
#else
    r->unsafe = 0;
    r->lease_cap = 0;
#endif
    r->timeout = rc->timeout > 0 ? rc->timeout : 0.25;
    r->gid = lc->gid;
    r->key = strdup(lc->key);
    r->dir = strdup(lc->dir);
    r->conn = mq_redis_new(rc->url, mq_rdl_script());
    l->rd = r;
    l->remote = &REMOTE;
    if (r->key == NULL || r->dir == NULL || r->conn == NULL) {
        snprintf(err, errlen, "redis: out of memory");
        return -2;
    }
    for (i = 0; i < MQ_RDL_NKEYS; i++)
        snprintf(r->keys[i], sizeof r->keys[i], "{mq:%016llx}:%s", (unsigned long long)h,
                 (const char *[]){ "s", "log", "hosts", "rec" }[i]);
    if (mq_lease_open(lc->dir, lc->key, lc->gid, &r->lf, err, errlen) != 0) return -2;
    /* the first contact: registers the host, hands back what it started
     * lately, and tells a wrong password at once */
    if (!r->cosocket && contact(l, why, sizeof why) == MQ_REDIS_REFUSED) {
        snprintf(err, errlen, "%s", why);
        return -2;
    }
    return 0;
}

void mq_rdl_close(mq_rdl *r)
{
    if (r == NULL) return;
    mq_redis_free(r->conn);
    if (r->fb) mq_limiter_close(r->fb);
    mq_lease_close(&r->lf);
    mq_redis_url_free(&r->url);
    free(r->key);
    free(r->dir);
    free(r);
}

/* Fill the round trip's arguments (under the lease lock). */
static void request(mq_rdl *r, mq_lease_file *f, int64_t now, double budget, mq_rdl_req *q)
{
    int64_t horizon = window_ns(r) + r->lease_ns;
    int i, n = 0, fresh;

    for (i = 0; i < MQ_RDL_NKEYS; i++) q->argv[n++] = r->keys[i];
    /* what this host started lately: only when Redis asked for it, when
     * this host never spoke to it, or after starts on the fallback */
    if (f->need_upload || f->epoch == 0 || f->fb_used > 0)
        mq_lease_recent(f, now, horizon, r->upload, sizeof r->upload);
    else
        snprintf(r->upload, sizeof r->upload, "-");
    /* the test hook's control: no hand-back, and "!" tells the script to
     * skip its check of the run that wrote the state (the control shows
     * the window broken without these mechanisms) */
    if (r->unsafe) snprintf(r->upload, sizeof r->upload, "!");
    r->sent_fb = f->fb_used;
    r->sent_pause = f->pause_until;
    r->sent_obs = f->obs_until;
    snprintf(r->num[0], 24, "%ld", r->per_minute);
    snprintf(r->num[1], 24, "%ld", r->burst);
    /* the script's window: the period and the transit guard, so that a
     * slot frees guard after its start left the period (its GCRA step is
     * then window / per_minute: the same rate) */
    snprintf(r->num[2], 24, "%.3f", (double)window_ns(r) / MS);
    snprintf(r->num[3], 24, "%d", r->want);
    snprintf(r->num[4], 24, "%lld", r->unsafe ? 0LL : (long long)f->hosts);
    snprintf(r->num[5], 24, "%lld", (long long)f->epoch);
    snprintf(r->num[6], 24, "%lld", KEY_TTL_MS + (long long)(r->period * 2e3));
    snprintf(r->num[7], 24, "%lld", (long long)max64(10 * r->period_ns, 30 * NS) / MS);
    snprintf(r->num[8], 24, "%lld", f->pause_until > now ? (long long)((f->pause_until - now) / MS) : -1LL);
    /* the server's remaining, only while fresh: it counted its window
     * when it answered, and weighed later against a window that has slid
     * since it reads as starts Redis does not know of (a false pause) */
    fresh = f->obs_until > now && now - f->obs_at <= r->lease_ns;
    snprintf(r->num[9], 24, "%lld", fresh ? (long long)f->obs_rem : -1LL);
    snprintf(r->num[10], 24, "%lld", fresh ? (long long)((f->obs_until - now) / MS) : 0LL);
    snprintf(r->num[11], 24, "%.3f", (double)r->lease_ns / MS);
    q->argv[n++] = "L";
    /* copied: the round trip reads argv after the lease file's guard is
     * left, and a file cut short under it would fault there (SIGBUS) */
    memcpy(r->host_id, f->host_id, sizeof r->host_id);
    r->host_id[sizeof r->host_id - 1] = '\0';
    q->argv[n++] = r->host_id;
    q->argv[n++] = r->num[0];
    q->argv[n++] = r->num[1];
    q->argv[n++] = r->num[2];
    q->argv[n++] = r->num[11];
    q->argv[n++] = r->num[3];
    q->argv[n++] = r->num[4];
    q->argv[n++] = r->upload;
    q->argv[n++] = f->fb_used > 0 ? "1" : f->degraded ? "d" : "0";
    q->argv[n++] = r->num[5];
    q->argv[n++] = r->num[6];
    q->argv[n++] = r->num[7];
    q->argv[n++] = r->num[8];
    q->argv[n++] = r->num[9];
    q->argv[n++] = r->num[10];
    q->argv[n++] = MQ_XSTR(RETRY_MS);
    q->argc = n;
    q->tmo = budget < r->timeout ? budget : r->timeout;
    f->busy_until = now + (int64_t)(q->tmo * 1e9) + 50 * MS;
    r->t_send = now;
}

/* a leased slot this process could not start goes back to the host */
static int give_back_op(mq_limiter *l, void *arg)
{
    mq_rdl *r = l->rd;
    int64_t now = mq_rl_now_ns();

    (void)arg;
    if (lease_lock(r, now) == 0) {
        if (now < r->lf.f->lease_until) r->lf.f->lease_n++;
        mq_lease_unlock(&r->lf);
    }
    return 0;
}

/* A leased or fallback slot passes the local limiter too (the host's own
 * pause, and the record the local window is checked on). */
static int local(mq_limiter *l, double *wait, int64_t *at, int give_back)
{
    double w = 0;

    if (mq_rl_try_local(l, &w, at)) return 1;
    *wait = w;
    if (give_back && leased(l, give_back_op, NULL) == FAULT) *wait = 1;
    return 0;
}

/* The fallback budget: a local limiter of its own with fallback_per_minute
 * (reopened when the number of hosts changed it). */
static int fallback_try(mq_limiter *l, long fpm, double *wait)
{
    mq_rdl *r = l->rd;
    char err[256], key[600];
    double w = 0;

    if (fpm <= 0) {
        *wait = 0.5;
        return 0;
    }
    if (r->fb && r->fb_pm != fpm) {
        mq_limiter_close(r->fb);
        r->fb = NULL;
    }
    if (r->fb == NULL) {
        mq_limiter_cfg c = { fpm, r->burst < fpm ? r->burst : fpm, r->period, key, r->dir, r->gid };
        /* the rule is in the file name: a file keeps the rule it was made with */
        snprintf(key, sizeof key, "%s\n#redis-fallback/%ld", r->key, fpm);
        if (mq_limiter_open(&c, &r->fb, err, sizeof err) != 0) {
            *wait = 0.5;
            return 0;
        }
        r->fb_pm = fpm;
    }
    if (mq_rl_try_local(r->fb, &w, NULL)) return 1;
    *wait = w;
    return 0;
}

/* What begin_op found: the outcomes of mq_rdl_begin, and two more steps
 * taken outside the lease file's guard (they touch other files). */
enum { STEP_WAIT = 0, STEP_ASK = 2, STEP_LEASED = 3, STEP_FALLBACK = 4, STEP_REFUSED = 5,
       STEP_LEASED_ASK = 6 };

struct begin_args {
    double budget, *wait;
    mq_rdl_req *req;
    int64_t now;
    int ahead;                  /* the caller can ask ahead (mq_rdl_begin_ahead) */
    long fpm;                   /* STEP_FALLBACK: its budget, and */
    int64_t next_try;           /* ...the next attempt at Redis */
};

/* Degraded and no slot: seconds until one may come, the next attempt at
 * Redis (by any process of the host) or the quarantine's end, whichever
 * is first; never the "1 ms" of a tight loop (at least RETRY_NS / 50). */
static double degraded_wait(const mq_lease_file *f, long fpm, int64_t now)
{
    int64_t next = f->next_try > now ? f->next_try
                                     : now + (f->refused ? REFUSED_RETRY_NS : RETRY_NS);

    if (fpm > 0 && f->fb_from > now) next = min64(next, f->fb_from);
    return (double)max64(next - now, RETRY_NS / 50) / NS;
}

/* The budget's rate times a lease's life (what a host at that rate starts
 * in it after its burst), and at most LEASE_BIG: how far a lease grows */
static int64_t grow_cap(const mq_rdl *r)
{
    double fits = (double)r->per_minute * (double)r->lease_ns / (double)r->period_ns;

    return fits < LEASE_BIG ? (int64_t)fits : LEASE_BIG;
}

/* The most slots one lease holds: what the rule's pacing lets a host start
 * in a lease's life, its burst at once and then one every period /
 * per_minute (limiter.c's GCRA, the same rule, paces the host's starts of
 * it). Slots past the burst are Redis's pacing reserved for this host: the
 * script grants them only while its pacing is idle, and spaces the next
 * host's grants after them. A fast budget's lease thus outgrows a small
 * burst (1,024 slots at 1,000,000 a second, burst 60: a round trip per
 * ~350 /book in the bench instead of one per 60). */
static int64_t lease_most(const mq_rdl *r)
{
    return r->lease_cap > 0 ? r->lease_cap : r->burst + grow_cap(r);
}

/* Slots to ask for. A host that spent its whole lease before the lease
 * ended asks for twice as many next time (a round trip per LEASE_MAX
 * starts made Redis the gateway's bottleneck); one whose lease ended with
 * slots unspent asks for half, down to none (then 1 + demand). A lease
 * that ended spent, its life over, keeps its size: calls that come in
 * bursts (16 connections on a 200 ms upstream) ask once a burst, not once
 * for the first call and again for the others waiting behind it (2.25
 * round trips a burst, each a clump of the worker's time: /health's p99
 * under slow calls 1.55x idle with the budget in Redis, 1.13-1.22x
 * without). Never more than the budget's rate starts in a lease's life
 * (what a host at that rate spends before it ends: 1 at 600 a minute), nor
 * LEASE_BIG, nor lease_most. Redis grants at most what the window and its
 * pacing allow, and logs every slot granted until its lease ends: the size
 * never lets a host start more, it only saves round trips. */
static int lease_want(mq_rdl *r, const mq_lease_file *f, int64_t now)
{
    int64_t cap = grow_cap(r);
    int64_t want = min64(1 + f->demand, LEASE_MAX);

    if (f->lease_n > 0) {                               /* ended unspent */
        r->lease_size /= 2;
    } else if (now < f->lease_until && f->lease_until > 0) {  /* spent early */
        r->lease_size = r->lease_size > 0 ? 2 * r->lease_size : 2 * LEASE_MAX;
    }
    if (r->lease_size > cap) r->lease_size = (int)cap;
    if (r->lease_size > want) want = r->lease_size;
    return (int)min64(want, lease_most(r));
}

/* a lease of n slots begins at t (its spending rate is measured from then) */
static void lease_began(mq_lease_file *f, int64_t n, int64_t t)
{
    f->lease_size0 = n;
    f->lease_t0 = t;
}

/* Ask ahead: a lease grown under demand (lease_want) with half of it
 * left, and nobody asking, is asked for again now by a caller that takes
 * one of its slots (the cosocket driver, from a timer): under load the
 * slots left last the round trip, and no call waits for it. Only while
 * Redis grants large leases (the last one over LEASE_MAX): a budget whose
 * GCRA or window hands out a few slots at a time would answer an early
 * ask with fewer, for more round trips. Being half spent while it runs is
 * being spent early: the next lease is asked twice as big, as lease_want
 * does. The lease asked ahead waits in next_n /
 * next_until, each slot within its own lease's end (finish_op), and takes
 * over when the current one is spent or ended (begin_op). */
enum { AHEAD_NOT = 0, AHEAD_HALF, AHEAD_RATE };

static int ahead_due(const mq_rdl *r, const mq_lease_file *f, int64_t now)
{
    int64_t spent = f->lease_size0 - f->lease_n;

    if (!(r->lease_size > LEASE_MAX && f->last_grant > LEASE_MAX
          && !f->degraded && !f->need_upload && f->next_n <= 0
          && f->busy_until <= now && f->wait_until <= now))
        return AHEAD_NOT;
    if (f->lease_n * 2 <= min64(r->lease_size, lease_most(r))) return AHEAD_HALF;
    /* ...or sooner when, at the rate its first slots went, what is left
     * lasts less than a round trip under load (AHEAD_NS: the timer's delay
     * and Redis on busy cores, 2.8 ms at p99 in the bench, where half of a
     * 60-slot lease lasted 1.4 ms), or when it ends that soon, more than
     * half left (a lease grown past what the host spends in its life:
     * ahead_want sizes the next to that rate) */
    if (spent >= LEASE_MAX / 2 && now > f->lease_t0
        && ((double)f->lease_n * (double)(now - f->lease_t0) <= (double)spent * (double)AHEAD_NS
            || f->lease_until - now <= AHEAD_NS))
        return AHEAD_RATE;
    return AHEAD_NOT;
}

/* the next lease's size, asked ahead (why: ahead_due's answer) */
static int ahead_want(mq_rdl *r, const mq_lease_file *f, int64_t now, int why)
{
    int64_t cap = grow_cap(r);

    if (why == AHEAD_RATE) {
        /* more than half left: as many as this host spends in a lease's
         * life at the rate its slots went */
        double fit = (double)(f->lease_size0 - f->lease_n) * (double)r->lease_ns
                   / (double)(now - f->lease_t0);
        r->lease_size = (int)min64(max64(fit < (double)cap ? (int64_t)fit : cap, LEASE_MAX + 1), cap);
    } else {
        r->lease_size = (int)min64(2 * (int64_t)r->lease_size, cap);
    }
    return (int)min64(max64(r->lease_size, 1 + f->demand), lease_most(r));
}

/* A process waiting behind the asker (or Redis's "not before") is one
 * slot of demand for the next lease, counted once for that wait however
 * often it tries meanwhile (a blocking caller tries every 200 us, an nginx
 * worker's requests every 1 ms: counted per try, a lease grew to 16 slots
 * for 2 waiting processes, and what a host could not start within the
 * lease's life was held unused in the window). mark: the wait's end. */
static void count_demand(mq_rdl *r, mq_lease_file *f, int64_t mark)
{
    if (r->demand_mark == mark) return;
    r->demand_mark = mark;
    f->demand++;
}

/* slots the host leased and has not started, the one asked ahead too
 * (status's `leased`, and what mq_rdl_remaining adds to Redis's room) */
static int64_t leased_now(const mq_lease_file *f, int64_t now)
{
    return (f->lease_n > 0 && now < f->lease_until ? f->lease_n : 0)
         + (f->next_n > 0 && now < f->next_until ? f->next_n : 0);
}

/* the lease lock let go, what mq_rdl_remaining reads copied just before
 * (every unlock of begin_op and finish_op: no lock per reply) */
static void unlock_snap(mq_rdl *r, const mq_lease_file *f, int64_t now)
{
    r->snap_used = f->fleet_used;
    r->snap_at = f->fleet_at;
    r->snap_leased = leased_now(f, now);
    r->snap_degraded = f->degraded != 0;
    mq_lease_unlock(&r->lf);
}

static int begin_op(mq_limiter *l, void *arg)
{
    struct begin_args *a = arg;
    mq_rdl *r = l->rd;
    mq_lease_file *f = r->lf.f;
    int64_t now = a->now;
    int step = STEP_WAIT;

    if (lease_lock(r, now) != 0) {
        *a->wait = 0.01;        /* held by a process stopped (or descheduled) */
        return STEP_WAIT;
    }
    if (f->next_n > 0 && (f->lease_n <= 0 || now >= f->lease_until)) {
        /* the lease asked ahead takes over (what is left of the old one
         * ended with it) */
        if (now < f->next_until) {
            f->lease_n = f->next_n;
            f->lease_from = 0;
            f->lease_until = f->next_until;
            lease_began(f, f->next_n, now);
        }
        f->next_n = 0;
    }
    if (f->lease_n > 0 && now < f->lease_until) {
        if (now < f->lease_from) {          /* a reserved slot: not yet */
            *a->wait = (double)(f->lease_from - now) / NS;
        } else {
            int why;

            f->lease_n--;
            step = STEP_LEASED;
            why = a->ahead ? ahead_due(r, f, now) : AHEAD_NOT;
            if (why != AHEAD_NOT) {
                r->want = ahead_want(r, f, now, why);
                f->demand = 0;
                request(r, f, now, r->timeout, a->req);
                r->ahead = 1;
                step = STEP_LEASED_ASK;
            }
        }
    } else if (f->busy_until > now) {       /* another process is asking */
        count_demand(r, f, f->busy_until);
        /* about a round trip; a call's decision (budget HUGE_VAL) takes
         * its answer: 0, "try again now", whatever max_wait */
        *a->wait = isinf(a->budget) ? 0 : (double)min64(f->busy_until - now, MS / 5) / NS;
    } else if (!f->degraded) {
        if (f->wait_until > now) {
            count_demand(r, f, f->wait_until);
            *a->wait = (double)(f->wait_until - now) / NS;
        } else if (a->budget < 0.002) {     /* no time left for a round trip */
            *a->wait = 0.002;
        } else {
            r->want = lease_want(r, f, now);
            f->demand = 0;
            request(r, f, now, a->budget, a->req);
            r->ahead = 0;
            step = STEP_ASK;
        }
    } else if (f->refused && f->refused_cfg == r->cfg && now < f->next_try) {
        /* a setup fault (refused AUTH, certificate): told to every caller
         * until the next attempt, never a silent fallback */
        snprintf(r->errbuf, sizeof r->errbuf, "%s", f->err);
        *a->wait = (double)(f->next_try - now) / NS;
        step = STEP_REFUSED;
    } else if ((now >= f->next_try || (f->refused && f->refused_cfg != r->cfg))
               && a->budget >= 0.002) {
        r->want = 1;
        f->next_try = now + (f->refused ? REFUSED_RETRY_NS : RETRY_NS);
        request(r, f, now, a->budget, a->req);
        r->ahead = 0;
        step = STEP_ASK;
    } else {
        long fpm = fallback_of(r, f->hosts);

        if (now < f->fb_from || fpm <= 0) {
            /* quarantine: slots granted before Redis went may still be in
             * the window; nothing before the next try at Redis or its end */
            *a->wait = degraded_wait(f, fpm, now);
        } else {
            a->fpm = fpm;
            a->next_try = f->next_try;
            step = STEP_FALLBACK;
        }
    }
    unlock_snap(r, f, now);
    return step;
}

/* a start on the fallback, for Redis to hear of when it is back */
static int record_fb_op(mq_limiter *l, void *arg)
{
    mq_rdl *r = l->rd;
    int64_t now = *(int64_t *)arg;

    if (lease_lock(r, now) != 0) {
        r->pend_fb++;           /* into the file with the next lock */
        return 0;
    }
    mq_lease_record(r->lf.f, now, 1, window_ns(r) + r->lease_ns);
    r->lf.f->fb_used++;
    mq_lease_unlock(&r->lf);
    return 0;
}

static int begin(mq_limiter *l, double budget, double *wait, int64_t *at, mq_rdl_req *req,
                 int ahead)
{
    mq_rdl *r = l->rd;
    int64_t now = mq_rl_now_ns();
    struct begin_args a = { budget, wait, NULL, now, ahead, 0, 0 };
    int step;

    a.req = req;                /* filled by begin_op when it asks (STEP_ASK) */
    *wait = 0;
    l->error = NULL;
    if (r == NULL) {            /* no Redis attached: never called so */
        *wait = 1;
        return 0;
    }
    step = leased(l, begin_op, &a);
    switch (step) {
    case FAULT:
        *wait = 1;
        return 0;
    case STEP_LEASED:
        return local(l, wait, at, 1);
    case STEP_LEASED_ASK:
        /* admitted, and the round trip ahead to make; not admitted here
         * (the host's own pause): the round trip is this call's, and its
         * finish answers "again now" */
        return local(l, wait, at, 1) ? 3 : 2;
    case STEP_REFUSED:
        l->error = r->errbuf;
        return 0;
    case STEP_FALLBACK:
        if (!fallback_try(l, a.fpm, wait)) {
            int64_t until = a.next_try - now;
            if (until > 0 && *wait > (double)until / NS) *wait = (double)until / NS;
            return 0;
        }
        if (leased(l, record_fb_op, &now) == FAULT) {
            /* not recorded for Redis (the file is a new one anyway): no
             * start without its record */
            *wait = 1;
            return 0;
        }
        return local(l, wait, at, 0);
    default:
        return step;
    }
}

int mq_rdl_begin(mq_limiter *l, double budget, double *wait, int64_t *at, mq_rdl_req *req)
{
    return begin(l, budget, wait, at, req, 0);
}

int mq_rdl_begin_ahead(mq_limiter *l, double budget, double *wait, int64_t *at, mq_rdl_req *req)
{
    return begin(l, budget, wait, at, req, 1);
}

struct finish_args {
    int rc;
    const long long *vals;
    const char *why;
    double *wait;
};

static int finish_op(mq_limiter *l, void *arg)
{
    struct finish_args *a = arg;
    mq_rdl *r = l->rd;
    mq_lease_file *f = r->lf.f;
    const long long *vals = a->vals;
    int64_t now = mq_rl_now_ns();
    long long grant;
    int ahead = r->ahead;       /* asked ahead: its asker holds its slot already */

    r->ahead = 0;
    if (lease_lock(r, now) != 0) {
        /* what Redis granted is lost to this host (never more starts);
         * busy_until ends the others' wait for this round trip */
        *a->wait = 0.01;
        return STEP_WAIT;
    }
    f->busy_until = 0;
    if (a->rc != MQ_REDIS_OK) {
        if (!f->degraded) {
            f->degraded = 1;
            f->since = now;
            /* every slot granted before Redis went is started by its
             * grant + reservation horizon + lease, and out of every
             * window a period later */
            f->fb_from = r->unsafe ? now : now + window_ns(r) + r->lease_ns + r->ahead_ns;
        }
        f->refused = a->rc == MQ_REDIS_REFUSED;
        f->refused_cfg = r->cfg;
        f->next_try = r->t_send + (f->refused ? REFUSED_RETRY_NS : RETRY_NS);
        /* the script went out and no answer came: it may have run, and
         * Redis then counts this host as back (its learning over, grants
         * to the others): no start on the fallback before the next try
         * tells (spec 36: a timed-out retry, then 10 fallback starts
         * beside the others' grants) */
        if (a->rc == MQ_REDIS_UNSURE && !r->unsafe && f->fb_from < f->next_try) f->fb_from = f->next_try;
        f->lease_n = f->next_n = 0;
        snprintf(f->err, sizeof f->err, "%s", a->why ? a->why : "redis failed");
        *a->wait = now >= f->fb_from && fallback_of(r, f->hosts) > 0
                 ? 0.001        /* the fallback is open: take it now */
                 : degraded_wait(f, fallback_of(r, f->hosts), now);
        unlock_snap(r, f, now);
        return STEP_WAIT;
    }
    f->degraded = 0;
    f->refused = 0;
    f->err[0] = '\0';
    f->hosts = vals[2] > 0 ? vals[2] : 1;
    if (vals[7] != 1) f->epoch = vals[3];  /* else: still owed, under the old one */
    f->need_upload = vals[7] == 1;          /* Redis lost its state: tell it */
    f->fb_used -= r->sent_fb;               /* Redis has them now */
    if (f->fb_used < 0) f->fb_used = 0;
    if (f->pause_until == r->sent_pause) f->pause_until = 0;
    if (f->obs_until == r->sent_obs) f->obs_until = 0, f->obs_rem = -1;
    grant = vals[0];
    f->last_grant = grant;
    f->fleet_used = vals[5];
    f->fleet_at = now;
    /* with a grant too: the next slot is not before then (µs) */
    f->wait_until = now + (int64_t)vals[1] * 1000;
    if (grant > 0 && vals[8] > 0) {
        /* a reserved slot, Redis's now + delay: from our receive time +
         * delay (after Redis's F) to our send time + delay + lease (before
         * F + lease, where Redis logged it) */
        int64_t d = (int64_t)vals[8] * 1000;
        f->lease_from = now + d;
        f->lease_until = r->t_send + d + r->lease_ns;
        f->lease_n = f->lease_from < f->lease_until ? grant : 0;
        lease_began(f, f->lease_n, f->lease_from);
        mq_lease_record(f, now + d, grant, window_ns(r) + r->lease_ns);
        unlock_snap(r, f, now);
        *a->wait = (double)d / NS;
        return STEP_WAIT;
    }
    if (grant > 0 && ahead && f->lease_n > 0 && f->lease_from <= now && now < f->lease_until) {
        /* asked ahead, and the old lease still runs: the new one waits
         * for it to be spent or to end; it ends here no later than Redis
         * counted it (t_send is before Redis read its clock) */
        f->next_n = grant;
        f->next_until = r->t_send + r->lease_ns;
        mq_lease_record(f, now, grant, window_ns(r) + r->lease_ns);
        unlock_snap(r, f, now);
        *a->wait = 0;
        return STEP_WAIT;
    }
    if (grant > 0) {
        /* t_send is before Redis read its clock: the lease ends here no
         * later than Redis counted it */
        f->lease_from = 0;
        f->lease_until = r->t_send + r->lease_ns;
        f->lease_n = ahead ? grant : grant - 1;
        lease_began(f, grant, now);
        mq_lease_record(f, now, grant, window_ns(r) + r->lease_ns);
        unlock_snap(r, f, now);
        if (ahead) {            /* its asker started already: "again now" */
            *a->wait = 0;
            return STEP_WAIT;
        }
        if (now >= r->t_send + r->lease_ns) {   /* the answer came too late to use */
            *a->wait = 0.001;
            return STEP_WAIT;
        }
        return STEP_LEASED;
    }
    *a->wait = vals[1] > 0 ? (double)vals[1] / 1e6 : (f->need_upload ? 0 : 0.001);
    unlock_snap(r, f, now);
    return STEP_WAIT;
}

int mq_rdl_finish(mq_limiter *l, int rc, const long long *vals, const char *why,
                  double *wait, int64_t *at)
{
    struct finish_args a = { rc, vals, why, wait };
    int step;

    *wait = 0;
    l->error = NULL;
    step = leased(l, finish_op, &a);
    if (step == FAULT) {
        *wait = 1;
        return 0;
    }
    if (rc == MQ_REDIS_REFUSED) {       /* a setup fault: this call fails config too */
        snprintf(l->rd->errbuf, sizeof l->rd->errbuf, "%s", why ? why : "redis refused");
        l->error = l->rd->errbuf;
        *wait = (double)REFUSED_RETRY_NS / NS;
        return 0;
    }
    if (step == STEP_LEASED) return local(l, wait, at, 1);
    return 0;
}

/* contact's first step: is a round trip wanted now, and its request */
static int contact_op(mq_limiter *l, void *arg)
{
    mq_rdl *r = l->rd;
    mq_lease_file *f = r->lf.f;
    int64_t now = mq_rl_now_ns();

    if (lease_lock(r, now) != 0) return 0;
    if (f->refused && f->refused_cfg == r->cfg && now < f->next_try) {
        /* the last attempt was refused (AUTH, certificate): every opener
         * with these settings is told, not only the first one */
        snprintf(r->errbuf, sizeof r->errbuf, "%s", f->err);
        mq_lease_unlock(&r->lf);
        return 2;
    }
    if (f->busy_until > now
        || (f->degraded && now < f->next_try && !(f->refused && f->refused_cfg != r->cfg))) {
        mq_lease_unlock(&r->lf);
        return 0;
    }
    r->want = 0;
    request(r, f, now, r->timeout, arg);
    mq_lease_unlock(&r->lf);
    return 1;
}

int mq_rdl_contact_begin(mq_limiter *l, mq_rdl_req *req)
{
    int st;

    l->error = NULL;
    st = leased(l, contact_op, req);
    if (st == FAULT) return 2;          /* l->error: the lease file */
    if (st == 2) l->error = l->rd->errbuf;
    return st == 2 ? 2 : st;
}

/* One round trip asking for nothing (want 0): registers the host, hands
 * back what it started, tells Redis a pause. Skipped when another process
 * is talking to Redis now or Redis is gone (the next round trip tells). */
static int contact(mq_limiter *l, char *why, size_t whylen)
{
    mq_rdl *r = l->rd;
    int64_t at;
    mq_rdl_req req;
    long long vals[MQ_RCONV_NVALS] = { 0 };
    double w;
    int st, n;

    why[0] = '\0';
    st = leased(l, contact_op, &req);
    if (st == FAULT) return MQ_REDIS_DOWN;
    if (st == 0) return MQ_REDIS_OK;
    if (st == 2) {
        snprintf(why, whylen, "%s", r->errbuf);
        return MQ_REDIS_REFUSED;
    }
    st = mq_redis_eval(r->conn, MQ_RDL_NKEYS, req.argc, req.argv, req.tmo, vals, &n, why, whylen);
    mq_rdl_finish(l, st, vals, why, &w, &at);
    return st;
}

static int round_trip(mq_limiter *l, double budget, double *wait, int64_t *at)
{
    mq_rdl *r = l->rd;
    mq_rdl_req req;
    long long vals[MQ_RCONV_NVALS] = { 0 };
    char why[MQ_RCONV_MSG] = "";
    int st = mq_rdl_begin(l, budget, wait, at, &req), n;

    if (st != 2 || r == NULL) return st == 2 ? 0 : st;
    st = mq_redis_eval(r->conn, MQ_RDL_NKEYS, req.argc, req.argv, req.tmo, vals, &n, why, sizeof why);
    return mq_rdl_finish(l, st, vals, why, wait, at);
}

/* A call's decision: whether the budget has room now is asked of Redis
 * whatever the call's max_wait (0 too: asking is not waiting), in one
 * round trip of at most redis_timeout (budget HUGE_VAL), or taken from the
 * round trip another process of the host has under way for it (begin and
 * finish answer 0, "again now", then; also when Redis first wants this
 * host's recent starts). Again after a short sleep, for at most a round
 * trip's time (redis_timeout + 50 ms, as busy_until allows the asker):
 * past it *wait is what this call would wait for. */
#define DECIDE_SLEEP_NS 200000
#define DECIDE_TRIES 5000

static int decide(mq_limiter *l, double *wait, int64_t *at)
{
    struct timespec ts = { 0, DECIDE_SLEEP_NS };
    int64_t until = mq_rl_now_ns() + (int64_t)(l->rd->timeout * 1e9) + 50 * MS;
    int i;

    for (i = 0; i < DECIDE_TRIES; i++) {
        if (round_trip(l, HUGE_VAL, wait, at)) return 1;
        if (*wait > 0 || l->error) return 0;
        if (mq_rl_now_ns() + DECIDE_SLEEP_NS > until) break;
        nanosleep(&ts, NULL);
    }
    *wait = (double)DECIDE_SLEEP_NS / NS;
    return 0;
}

int mq_rdl_try(mq_limiter *l, double *wait, int64_t *at)
{
    return decide(l, wait, at);
}

int mq_rdl_acquire(mq_limiter *l, double max_wait, double *waited, double *retry_after,
                   int64_t *at)
{
    int64_t start = mq_rl_now_ns(), limit, t = 0;
    double w = 0;
    int i;

    *waited = 0;
    *retry_after = 0;
    if (!(max_wait >= 0)) max_wait = 0;
    if (max_wait > 86400) max_wait = 86400;
    limit = start + (int64_t)(max_wait * 1e9);
    for (i = 0; i < 10000000; i++) {
        int64_t now = mq_rl_now_ns(), sleep_ns;
        struct timespec ts;

        /* the first: the call's decision, whatever max_wait; then round
         * trips within what is left of it */
        if (i == 0 ? decide(l, &w, &t) : round_trip(l, (double)(limit - now) / NS, &w, &t)) {
            *waited = (double)(t - start) / NS;
            if (at) *at = t;
            return 1;
        }
        now = mq_rl_now_ns();
        if (l->error) {             /* a host fault: no wait makes it go */
            *waited = (double)(now - start) / NS;
            *retry_after = w;
            return 0;
        }
        sleep_ns = (int64_t)ceil(w * 1e9);
        if (sleep_ns < 100000) sleep_ns = 100000;
        if (now + sleep_ns > limit) {
            *waited = (double)(now - start) / NS;
            *retry_after = w;
            return 0;
        }
        ts.tv_sec = (time_t)(sleep_ns / NS);
        ts.tv_nsec = (long)(sleep_ns % NS);
        nanosleep(&ts, NULL);
    }
    *retry_after = w;
    return 0;
}

static int pause_op(mq_limiter *l, void *arg)
{
    mq_rdl *r = l->rd;
    int64_t until = *(int64_t *)arg;

    if (lease_lock(r, mq_rl_now_ns()) != 0) {
        r->pend_pause = max64(r->pend_pause, until);   /* into the file with the next lock */
        return 0;
    }
    r->lf.f->pause_until = max64(r->lf.f->pause_until, until);
    r->lf.f->lease_n = r->lf.f->next_n = 0;  /* nobody spends a lease into a pause */
    mq_lease_unlock(&r->lf);
    return 0;
}

void mq_rdl_pause(mq_limiter *l, double seconds, int flush)
{
    mq_rdl *r = l->rd;
    int64_t until;

    if (!(seconds >= 0)) seconds = r->period;
    if (seconds > 86400) seconds = 86400;
    until = mq_rl_now_ns() + (int64_t)(seconds * 1e9);
    if (leased(l, pause_op, &until) == FAULT) return;
    if (flush && !r->cosocket) {
        char why[MQ_RCONV_MSG];
        contact(l, why, sizeof why);
    }
}

struct observe_args { long remaining; int64_t until; };

static int observe_op(mq_limiter *l, void *arg)
{
    const struct observe_args *a = arg;
    mq_rdl *r = l->rd;

    if (lease_lock(r, mq_rl_now_ns()) != 0) return 0;     /* the next answer tells again */
    r->lf.f->obs_rem = a->remaining;
    r->lf.f->obs_until = a->until;
    r->lf.f->obs_at = mq_rl_now_ns();
    mq_lease_unlock(&r->lf);
    return 0;
}

static int degraded_op(mq_limiter *l, void *arg)
{
    mq_rdl *r = l->rd;
    int d;

    (void)arg;
    if (lease_lock(r, mq_rl_now_ns()) != 0) return 1;     /* unknown: the local file too */
    d = r->lf.f->degraded != 0;
    mq_lease_unlock(&r->lf);
    return d;
}

/* remaining 0 is news only when the whole budget's count has room: at
 * exactly the limit (a sliding-window server, right after this host's own
 * start) it says what Redis knows already, and a pause then would cost a
 * window each time. So it goes to Redis like any remaining (the script
 * pauses on 0 only below the limit), at once from blocking code. A host on
 * its own (degraded) weighs it locally, and keeps a pause for Redis. */
int mq_rdl_observe(mq_limiter *l, long remaining, double reset_in)
{
    mq_rdl *r = l->rd;
    struct observe_args a;
    int d;

    if (remaining < 0) return 1;
    if (!(reset_in >= 0)) reset_in = r->period;
    if (reset_in > 86400) reset_in = 86400;
    d = leased(l, degraded_op, NULL);
    if (d != 0) {
        if (remaining == 0) mq_rdl_pause(l, reset_in, 0);
        return 0;
    }
    a.remaining = remaining;
    a.until = mq_rl_now_ns() + (int64_t)(reset_in * 1e9);
    leased(l, observe_op, &a);
    if (remaining == 0 && !r->cosocket) {
        char why[256];
        contact(l, why, sizeof why);
    }
    return 1;
}

long mq_rdl_remaining(mq_limiter *l, long local)
{
    const mq_rdl *r = l->rd;
    int64_t room;

    if (r == NULL || r->snap_degraded || r->snap_at == 0
        || mq_coarse_ns() - r->snap_at >= window_ns(r))
        return local;
    room = r->per_minute - r->snap_used;
    if (room < 0) room = 0;
    room += r->snap_leased;
    return room < local ? (long)room : local;
}

static int status_op(mq_limiter *l, void *arg)
{
    mq_rdl_status_t *st = arg;
    mq_rdl *r = l->rd;
    mq_lease_file *f = r->lf.f;
    int64_t until = mq_rl_now_ns() + STATUS_WAIT_NS;
    int held;

    /* no call waits on it: a sharer merely descheduled while it holds the
     * lock (a busy host) is waited for a while, not reported as stopped */
    while ((held = lease_lock(r, mq_rl_now_ns())) != 0 && mq_rl_now_ns() < until)
        continue;
    if (held) {
        st->degraded = 1;
        snprintf(st->error, sizeof st->error,
                 "redis lease file: its lock is held (a sharer stopped while holding it?)");
        return 0;
    }
    st->degraded = f->degraded != 0;
    st->hosts = f->hosts > 0 ? f->hosts : 1;
    st->fallback = fallback_of(r, f->hosts);
    st->leased = leased_now(f, mq_rl_now_ns());
    snprintf(st->error, sizeof st->error, "%s", f->err);
    mq_lease_unlock(&r->lf);
    return 0;
}

void mq_rdl_status(mq_limiter *l, mq_rdl_status_t *st)
{
    memset(st, 0, sizeof *st);
    if (leased(l, status_op, st) == FAULT) {
        memset(st, 0, sizeof *st);
        st->degraded = 1;
        st->hosts = 1;
        snprintf(st->error, sizeof st->error, "%s", l->error ? l->error : "redis lease file: unusable");
    }
}

#ifdef MQ_TESTING
static int hold_op(mq_limiter *l, void *arg)
{
    mq_rdl *r = l->rd;

    (void)arg;
    if (mq_lease_lock(&r->lf) != 0) return 1;
    raise(SIGSTOP);
    mq_lease_unlock(&r->lf);
    return 0;
}

int mq_rdl_hold_lease_lock(mq_limiter *l)
{
    l->error = NULL;
    return leased(l, hold_op, NULL) == 0 ? 0 : -1;
}
#endif
