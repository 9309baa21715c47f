/* limiter.h: the host-wide rate limiter over a shared file, lock-free
 * (limiter.c; the file: limiter_file.c; a new rule: limiter_rule.c). */
#ifndef MQ_LIMITER_H
#define MQ_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct mq_limiter mq_limiter;
typedef struct {
    long per_minute;        /* budget per period */
    long burst;             /* back-to-back starts; 1..per_minute */
    double period;          /* seconds */
    const char *key;        /* what is shared (no NUL inside) */
    const char *dir;        /* where the state file lives */
    long gid;               /* >= 0: files 0660 of this group; -1: 0600 */
} mq_limiter_cfg;
typedef struct {
    long per_minute, used, available;
    double paused_until;    /* Unix epoch seconds, 0 when not paused */
    long burst;             /* the rule in force (the file's) */
    double period;
    double rule_set_at;     /* Unix epoch seconds */
    long rule_set_by_pid, rule_set_by_uid;
    int mismatch;           /* this process asked for another rule */
} mq_limiter_status_t;

/* Opens the shared state of cfg->key, making it with cfg's rule when there
 * is none. The rule in force is the file's: a process asking for another
 * one gets the limiter all the same, with status.mismatch set. Never
 * waits on another process. 0, or -1 with the reason in err (a host fault:
 * permissions, full disk, a file not ours). */
int  mq_limiter_open(const mq_limiter_cfg *cfg, mq_limiter **out, char *err, size_t errlen);
/* The same, but only when the file is there (a status read must not make
 * one with its numbers); the caller is then never at odds with the rule. */
int  mq_limiter_open_existing(const mq_limiter_cfg *cfg, mq_limiter **out, char *err,
                              size_t errlen);
/* Take one slot now if the rules allow: returns 1; otherwise 0 and *wait is
 * the seconds until one may be free. Lock-free: never waits on another
 * process. On a host fault (the file shrunk or gone bad) returns 0 with
 * mq_limiter_error(l) set. */
int  mq_limiter_try(mq_limiter *l, double *wait);
/* Blocking form: waits (nanosleep) at most max_wait seconds. Returns 1 when
 * a slot was taken (*waited = seconds spent), 0 when none came in time
 * (*retry_after = seconds until one may) or on a host fault (see
 * mq_limiter_error). */
int  mq_limiter_acquire(mq_limiter *l, double max_wait, double *waited, double *retry_after);
/* The server said stop (429 / remaining 0): every process sharing the key
 * waits until now + seconds (negative: one period), capped at
 * MQ_LIMITER_MAX_PAUSE seconds or the period when longer. */
void mq_limiter_pause(mq_limiter *l, double seconds);
/* Sets the rule in force, explicitly, for every process sharing the key: a
 * new file with the rule replaces the old one, carrying its newest starts
 * over. The others move to it within 100 ms and find it paused for the
 * handover (300 ms; this call sleeps 250 ms of it). 0, or -1 with err. */
int  mq_limiter_set_rule(mq_limiter *l, long per_minute, long burst, double period,
                         char *err, size_t errlen);
/* Clears a pause (and a calibration) for every process sharing the key. */
void mq_limiter_resume(mq_limiter *l);
/* The server's x-ratelimit-remaining / -limit (-1 when absent) and the
 * seconds to its window end (-1 unknown): calibrate the shared state. */
void mq_limiter_observe(mq_limiter *l, long remaining, long limit, double reset_in);
void mq_limiter_status(mq_limiter *l, mq_limiter_status_t *st);
/* The last call's host fault (the state file shrunk, removed and not
 * re-openable...), or NULL: then a 0 from try/acquire meant "wait". */
const char *mq_limiter_error(const mq_limiter *l);
void mq_limiter_close(mq_limiter *l);
#define MQ_LIMITER_MAX_PAUSE 300.0
/* The transit guard (docs/limiter-and-redis.md "Transit jitter"): a start
 * frees its slot period + guard after it, not period, so that starts at
 * exactly the limit whose requests arrive up to guard closer together than
 * they left (transit jitter) still never put per_minute + 1 in one server
 * window. min(MQ_LIMITER_GUARD_MAX_NS, period / 200): at most 0.5% of the
 * budget, 0.17% with a 60 s period. 0 only for the specs' control runs
 * (MEDIQUO_TEST_HOOKS and MEDIQUO_TEST_NO_JITTER_GUARD both set, in a
 * -DMQ_TESTING build only: make test-build). Used
 * alike by the local rule (limiter.c) and the Redis one (limiter_redis.c). */
#define MQ_LIMITER_GUARD_MAX_NS 100000000LL
int64_t mq_limiter_guard_ns(int64_t period_ns);
/* Validate a state file's header bytes (what open does before mapping);
 * 0 when valid, -1 with a reason in err. Exposed for the fuzzer. */
int  mq_limiter_check_header(const void *buf, size_t len, char *err, size_t errlen);

/* The rule's option rules (limiter_opts.c), one table for every caller:
 * the largest per_minute (the ring in the file holds this many slots), the
 * longest period, the defaults (burst: min(per_minute, 60)). */
#define MQ_LIMITER_MAX_PER_MIN_N    1000000   /* the number, once (also in words) */
#define MQ_LIMITER_MAX_PER_MIN      ((long)MQ_LIMITER_MAX_PER_MIN_N)
#define MQ_LIMITER_MAX_PERIOD_N     86400     /* seconds, once (also in words) */
#define MQ_LIMITER_MAX_PERIOD       ((double)MQ_LIMITER_MAX_PERIOD_N)
#define MQ_LIMITER_DEFAULT_PER_MIN  600
#define MQ_LIMITER_DEFAULT_PERIOD   60.0
enum { MQ_RULE_PER_MINUTE, MQ_RULE_BURST, MQ_RULE_PERIOD, MQ_RULE__COUNT };
/* The options' names, in that order. */
extern const char *const mq_limiter_rule_fields[MQ_RULE__COUNT];
/* v: per_minute, burst, period (a non-number as NaN); given[i] 0: absent,
 * v[i] gets its default. 0 with v complete, or -1 with *field (the option's
 * name) and *why (static words naming the bound, never the value). */
int mq_limiter_check_rule(double v[MQ_RULE__COUNT], const int given[MQ_RULE__COUNT],
                          const char **field, const char **why);

/* CLOCK_MONOTONIC ns, the clock of the ring (limiter.c) */
int64_t mq_rl_now_ns(void);

/* Extra entry points for the Lua binding, the specs and the bench: the
 * same as mq_limiter_try / _acquire, plus the admitted start time (*at, ns
 * of CLOCK_MONOTONIC, the clock the ring holds) so that a test can check
 * the window rule on the limiter's own timestamps. */
int  mq_limiter_try_at(mq_limiter *l, double *wait, int64_t *at);
int  mq_limiter_acquire_at(mq_limiter *l, double max_wait, double *waited,
                           double *retry_after, int64_t *at);
const char *mq_limiter_key(const mq_limiter *l);
const char *mq_limiter_path(const mq_limiter *l);
/* 1 when the budget is kept in Redis (a try may be a round trip), else 0 */
int mq_limiter_remote(const mq_limiter *l);
#ifdef MQ_TESTING
/* Test hook (-DMQ_TESTING builds only): claims the next slot (the CAS that
 * admits) and then stops forever before finishing the admission, the worst
 * place for a sharer to freeze; a spec SIGSTOPs or SIGKILLs the caller. */
void mq_limiter_freeze_mid_admission(mq_limiter *l);
/* The starts in the window counted at one instant twice: searched from a
 * hint off slots past the oldest, and by plain halving, with no admission
 * between: 0; 1 when other processes kept admitting through 1,000 tries;
 * -1 (the file is unusable). */
int  mq_limiter_used_both(mq_limiter *l, int64_t off, uint64_t *from_hint, uint64_t *plain);
#endif

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
