/* lease_file.h: the host-local state of the Redis limiter (lease_file.c):
 * the slots this host leased from Redis, who is asking Redis now, whether
 * Redis is reachable, and what this host started lately (to hand back to a
 * Redis that lost its memory). One file per key and dir, shared by every
 * process of the host, next to the local limiter's file. */
#ifndef MQ_LEASE_FILE_H
#define MQ_LEASE_FILE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_LF_MAGIC   "MQRDLSE"
#define MQ_LF_VERSION 7u
#define MQ_LF_RING    256       /* recent starts, (time, count) */
#define MQ_LF_ERR     1200

typedef struct {
    char     magic[8];
    uint32_t version;
    uint32_t size;              /* sizeof(mq_lease_file) */
    char     pad0[48];
    union { pthread_mutex_t mu; char align[64]; } lock;
    /* below: under the lock. Times are CLOCK_MONOTONIC ns. */
    char     host_id[24];       /* this host in Redis's registry */
    int64_t  epoch;             /* Redis state this host last spoke to (0: none) */
    int64_t  hosts;             /* hosts Redis last saw sharing the key */
    int64_t  lease_n;           /* leased slots left */
    int64_t  lease_from;        /* ...usable from then (a reserved slot) */
    int64_t  lease_until;       /* ...usable until then */
    int64_t  lease_size0;       /* ...of that many slots when it began */
    int64_t  lease_t0;          /* ...at that time (its spending rate: asking ahead) */
    int64_t  next_n;            /* slots asked for ahead, used when those are gone */
    int64_t  next_until;        /* ...usable until then (later than lease_until) */
    int64_t  last_grant;        /* slots Redis granted at the last round trip */
    int64_t  busy_until;        /* a process is asking Redis until then */
    int64_t  wait_until;        /* Redis said: nothing before then */
    int64_t  demand;            /* processes that found the asker busy */
    int64_t  degraded;          /* Redis unreachable: on the fallback */
    int64_t  since;             /* degraded since */
    int64_t  fb_from;           /* fallback starts allowed from then */
    int64_t  next_try;          /* degraded: next attempt at Redis */
    int64_t  refused;           /* the last failure was a setup fault, */
    uint64_t refused_cfg;       /* ...of the Redis settings of this digest */
    int64_t  fb_used;           /* fallback starts Redis has not heard of */
    int64_t  need_upload;       /* Redis asked for this host's recent starts */
    int64_t  pause_until;       /* a pause to tell Redis (0: none) */
    int64_t  obs_rem;           /* x-ratelimit-remaining to tell (-1: none) */
    int64_t  obs_until;         /* ...valid until then */
    int64_t  obs_at;            /* ...seen then: told only while fresh */
    int64_t  fleet_used;        /* slots Redis counted in the window at its last answer */
    int64_t  fleet_at;          /* ...received then (0: no answer yet) */
    int64_t  ring_head;
    int64_t  ring_t[MQ_LF_RING];
    int64_t  ring_n[MQ_LF_RING];
    char     err[MQ_LF_ERR];    /* why Redis is not in use ("" when it is) */
} mq_lease_file;

typedef struct {
    int fd;
    mq_lease_file *f;
    char *path;
    int held;                   /* the mutex may be on this thread's robust
                                 * list (from a lock attempt to its unlock) */
} mq_lease;

/* Opens or makes <dir>/mediquo-rd-<hash(key)>.shm (mode 0600, or 0660 of
 * group gid when gid >= 0, like the local limiter's file). */
int  mq_lease_open(const char *dir, const char *key, long gid, mq_lease *lf, char *err, size_t errlen);
/* Also after the mapping faulted (the caller's SIGBUS guard caught it):
 * a mapping whose mutex may still be on this thread's robust list is
 * replaced by private zeroed memory and never unmapped (glibc writes
 * through that list on the thread's next robust lock). */
void mq_lease_close(mq_lease *lf);
/* 1 when the file was removed or replaced since it was opened. */
int  mq_lease_replaced(const mq_lease *lf);
/* Puts a new, empty file at lf's path in place of the open one (unless
 * another process did already); lf stays on the old one until re-opened.
 * For a lock whose holder is stopped for good. 0, or -1 with err. */
int  mq_lease_replace(const mq_lease *lf, long gid, char *err, size_t errlen);
/* A bounded try-lock, never a wait on another process: 0 locked, -1 when
 * it stayed held for MQ_LEASE_SPIN_NS (the holder is stopped, or
 * descheduled). A holder that died is recovered (EOWNERDEAD). Touches the
 * mapping: call it under the SIGBUS guard. */
#define MQ_LEASE_SPIN_NS 200000
int  mq_lease_lock(mq_lease *lf);
void mq_lease_unlock(mq_lease *lf);
/* Under the lock: n starts (or leased slots) at now. */
void mq_lease_record(mq_lease_file *f, int64_t now, int64_t n, int64_t horizon);
/* Under the lock: "age_ms:n,..." of the records younger than horizon, into
 * out (at most outlen bytes, records merged when it is short). */
void mq_lease_recent(const mq_lease_file *f, int64_t now, int64_t horizon, char *out, size_t outlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
