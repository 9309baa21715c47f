/* limiter_file.h: the layout of the shared rate-limit state file, and what
 * limiter.c (the rules) and limiter_file.c (creating, checking, mapping the
 * file) share. Not part of the Lua-facing interface. */
#ifndef MQ_LIMITER_FILE_H
#define MQ_LIMITER_FILE_H

/* system headers before the push: their symbols must stay default */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mq.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_RL_MAGIC       "MQRLSHM"         /* 7 chars + NUL = 8 bytes */
#define MQ_RL_VERSION     1u
#define MQ_RL_MAX_PER_MIN 1000000L          /* ring capacity of every file */
#define MQ_RL_BOOT_LEN    40                /* boot_id is 36 chars */

/* The file is a fixed-size header then a ring of MQ_RL_MAX_PER_MIN int64
 * start times (CLOCK_MONOTONIC ns, 0 = empty). Every file has the full ring
 * so that a new per_minute is applied in place, under the lock, by every
 * process at once (no remapping); the file is sparse, so only the
 * per_minute entries in use take memory. */
typedef struct {
    /* identity: written once before the file becomes visible */
    char     magic[8];
    uint32_t version;
    uint32_t hdr_size;          /* sizeof(mq_rl_hdr) */
    uint64_t file_size;         /* hdr_size + ring_cap * 8 */
    uint64_t ring_cap;          /* MQ_RL_MAX_PER_MIN */
    uint64_t key_hash;          /* fnv1a64 of the key */
    char     pad0[24];
    /* the lock: robust, process-shared; its own cache line */
    union { pthread_mutex_t mu; char align[64]; } lock;
    /* everything below is read and written only under the lock */
    char     boot_id[MQ_RL_BOOT_LEN];   /* boot the timestamps belong to */
    int64_t  per_minute;        /* the rule in force (last opener's) */
    int64_t  burst;
    int64_t  period_ns;
    int64_t  head;              /* ring index of the oldest entry */
    int64_t  tat;               /* GCRA theoretical arrival time (ns) */
    int64_t  paused_until;      /* ns, 0 = not paused */
    int64_t  cal_until;         /* ns: server calibration in force until */
    int64_t  cal_left;          /* starts the server still allows till then */
    int64_t  dirty;             /* a multi-step rewrite was under way */
    uint64_t admitted;          /* total starts ever (stats) */
    char     pad1[8];
} mq_rl_hdr;

#define MQ_RL_FILE_SIZE ((uint64_t)sizeof(mq_rl_hdr) + (uint64_t)MQ_RL_MAX_PER_MIN * 8u)

/* A budget shared beyond the host (limiter_redis.c) plugs in here, so
 * that this file and limiter.c never link against it. */
struct mq_rdl;
typedef struct {
    int  (*try_at)(mq_limiter *l, double *wait, int64_t *at);
    int  (*acquire_at)(mq_limiter *l, double max_wait, double *waited,
                       double *retry_after, int64_t *at);
    void (*pause)(mq_limiter *l, double seconds, int flush);
    void (*observe)(mq_limiter *l, long remaining, double reset_in);
    void (*close)(struct mq_rdl *r);
} mq_rl_remote;

struct mq_limiter {
    int        fd;
    mq_rl_hdr *h;               /* the mapping */
    int64_t   *ring;            /* right after the header */
    char      *path;
    char      *key;
    struct mq_rdl *rd;          /* across hosts through Redis, or NULL */
    const mq_rl_remote *remote; /* its entry points, set with rd */
};

/* limiter_file.c */
/* Reads /proc/sys/kernel/random/boot_id into out (NUL padded); "" when
 * unavailable (then every file is taken to be from this boot). */
void mq_rl_boot_id(char out[MQ_RL_BOOT_LEN]);
/* Opens or makes the file for cfg and maps it into l (fd, h, ring, path). */
int  mq_rl_file_open(const mq_limiter_cfg *cfg, mq_limiter *l, char *err, size_t errlen);
void mq_rl_file_close(mq_limiter *l);

/* limiter.c */
int64_t mq_rl_now_ns(void);
/* Locks the file's mutex, recovering it when its holder died; 0 or an
 * errno-style code (ETIMEDOUT when it stayed held for a second). */
int  mq_rl_lock(mq_limiter *l);
void mq_rl_unlock(mq_limiter *l);
/* Under the lock: reset the state (new boot) or apply a new rule. */
void mq_rl_reset(mq_rl_hdr *h, const char *boot_id);
void mq_rl_configure(mq_limiter *l, long per_minute, long burst, int64_t period_ns);

/* The host-local rules alone (what mq_limiter_try_at does without Redis;
 * the Redis limiter spends its leased slots through it). */
int  mq_rl_try_local(mq_limiter *l, double *wait, int64_t *at);

/* Extra entry points for the Lua binding, the specs and the bench: the
 * same as mq_limiter_try / _acquire, plus the admitted start time (*at, ns
 * of CLOCK_MONOTONIC, the clock the ring holds) so that a test can check
 * the window rule on the limiter's own timestamps. */
int  mq_limiter_try_at(mq_limiter *l, double *wait, int64_t *at);
int  mq_limiter_acquire_at(mq_limiter *l, double max_wait, double *waited,
                           double *retry_after, int64_t *at);
const char *mq_limiter_key(const mq_limiter *l);
const char *mq_limiter_path(const mq_limiter *l);
/* Test hook: takes the lock and never returns (a spec SIGKILLs the caller
 * to prove a holder's death is recovered). */
void mq_limiter_hold_lock_forever(mq_limiter *l);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
