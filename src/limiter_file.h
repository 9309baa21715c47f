/* limiter_file.h: the limiter's own: the layout of the shared rate-limit
 * state file, the handle's struct, the Redis plug (vtable), and what
 * limiter.c (the rules), limiter_file.c (creating, checking, mapping the
 * file), limiter_rule.c and limiter_redis.c share. Bindings (llimiter.c,
 * lredis.c) never include it: what they may use is in limiter.h. */
#ifndef MQ_LIMITER_FILE_H
#define MQ_LIMITER_FILE_H

/* system headers before the push: their symbols must stay default */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "limiter.h"
#include "shmfile.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_RL_MAGIC       "MQRLSHM"         /* 7 chars + NUL = 8 bytes */
#define MQ_RL_VERSION     3u                /* 2, 3: lock-free, the rule fixed at creation; 3: 16 ns units */
#define MQ_RL_MAX_PER_MIN MQ_LIMITER_MAX_PER_MIN

/* Times in the file are CLOCK_MONOTONIC in units of 16 ns (2^56 units:
 * 36 years of uptime), so that a time and an 8-bit tag fit one 64-bit
 * word and change with one compare-and-swap. A rule finer than one start
 * per 16 ns is applied as one per 16 ns. */
#define MQ_RL_UNIT_SHIFT  4
#define MQ_RL_UNIT_NS     (1u << MQ_RL_UNIT_SHIFT)
#define MQ_RL_TAG_BITS    8
#define MQ_RL_TAG_MASK    ((1u << MQ_RL_TAG_BITS) - 1)

/* The file: a fixed-size header, then a ring of per_minute 64-bit slots,
 * each (admission time << 8 | lap tag), 0 = never used. Everything is
 * reserved at creation (posix_fallocate): a full disk can never turn a
 * later write into a SIGBUS.
 *
 * No lock anywhere: every change is one CAS on one word, and every step a
 * process may stop after (SIGSTOP, SIGKILL) leaves a state the others can
 * finish on its behalf (see limiter.c). */
typedef struct {
    /* identity and the rule in force: written once, before the file is
     * linked into place, never changed (a status read cannot write) */
    char     magic[8];
    uint32_t version;
    uint32_t hdr_size;          /* sizeof(mq_rl_hdr) */
    uint64_t file_size;         /* hdr_size + per_minute * 8 */
    uint64_t key_hash;          /* fnv1a64 of the key */
    int64_t  per_minute;        /* the rule: ring size too */
    int64_t  burst;
    int64_t  period_ns;
    int64_t  set_at;            /* CLOCK_REALTIME seconds the rule was set */
    int64_t  set_by_pid;
    int64_t  set_by_uid;
    char     pad0[48];
    /* the shared state, one word per cache line: */
    uint64_t seq;               /* admissions made; the next is number seq */
    char     pad1[56];
    uint64_t tat;               /* GCRA time << 8 | (seq it reflects & 0xff) */
    char     pad2[56];
    int64_t  paused_until;      /* ns, 0 = not paused */
    int64_t  cal_until;         /* ns: server calibration in force until */
    uint64_t cal_limit;         /* ... while seq < cal_limit */
    char     pad3[40];
} mq_rl_hdr;

/* A budget shared beyond the host (limiter_redis.c) plugs in here, so
 * that this file and limiter.c never link against it. */
struct mq_rdl;
typedef struct {
    int  (*try_at)(mq_limiter *l, double *wait, int64_t *at);
    int  (*acquire_at)(mq_limiter *l, double max_wait, double *waited,
                       double *retry_after, int64_t *at);
    void (*pause)(mq_limiter *l, double seconds, int flush);
    /* 1: Redis weighs it (its count is the whole budget's); 0: the local
     * file must too (Redis unreachable: this host is on its own) */
    int  (*observe)(mq_limiter *l, long remaining, double reset_in);
    void (*close)(struct mq_rdl *r);
} mq_rl_remote;

struct mq_limiter {
    int        fd;
    mq_rl_hdr *h;               /* the mapping */
    uint64_t  *ring;            /* right after the header */
    uint64_t   size;            /* the mapping's (and the file's) size */
    char      *path;
    char      *key;
    long       gid;             /* group of the state files, -1 none */
    int64_t    want[3];         /* the rule this process asked for */
    const char *error;          /* the last operation's config fault, or NULL */
    int        broken;          /* the mapping faulted: re-make, re-map */
    int64_t    checked_at;      /* last look for a removed file (ns) */
    char       errbuf[256];
    void      *old[4];          /* mappings left by a reopen (freed at close) */
    uint64_t   old_size[4];
    pthread_mutex_t remap;      /* threads of this process re-mapping l: never
                                 * waited for (trylock), never across processes */
    int        remap_ok;        /* remap was initialised */
    uint64_t   hint;            /* where used() found the window's first start
                                 * last (a seq; threads race on it: a guess) */
    struct mq_rdl *rd;          /* across hosts through Redis, or NULL */
    const mq_rl_remote *remote; /* its entry points, set with rd */
};

/* limiter_file.c */
/* Opens or makes the file for cfg and maps it into l (fd, h, ring, path). */
int  mq_rl_file_open(const mq_limiter_cfg *cfg, int existing, mq_limiter *l, char *err,
                     size_t errlen);
/* A new file for cfg at path (link, or with replace rename), its pause
 * word set to paused_until (ns, 0 none). 0, or -1 with err. */
int  mq_rl_make(const char *path, const mq_limiter_cfg *cfg, int replace, int64_t paused_until,
                char *err, size_t errlen);
/* 0 when cfg's rule, key and dir are acceptable; -1 with err. */
int  mq_rl_check_cfg(const mq_limiter_cfg *cfg, char *err, size_t errlen);
/* Joins the file now at l's path (this process's threads one at a time:
 * the caller holds l->remap); the old mapping stays until close. */
int  mq_rl_reopen(mq_limiter *l);
/* Before each operation: 0 when the mapping may be touched (under the
 * guard); -1 with l->error set. A handle whose mapping faulted, or whose
 * file was removed or replaced, re-opens the file at its path first. */
int  mq_rl_file_ready(mq_limiter *l);
/* The mapping faulted (SIGBUS, caught): sets l->error, marks l broken. */
void mq_rl_file_broken(mq_limiter *l);
void mq_rl_file_close(mq_limiter *l);

/* limiter.c: the host-local rules alone (what mq_limiter_try_at does
 * without Redis; the Redis limiter spends its leased slots through it). */
int  mq_rl_try_local(mq_limiter *l, double *wait, int64_t *at);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
