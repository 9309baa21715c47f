/* metrics.h: host-wide call counters in a small shared file (metrics.c),
 * so that every nginx worker, every worker thread and every script using
 * the same key reads and adds to the same numbers. */
#ifndef MQ_METRICS_H
#define MQ_METRICS_H

/* system headers before the push: their symbols must stay default */
#include <stddef.h>
#include <stdint.h>

#include "shmfile.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_MX_OPS     3     /* create, reschedule, cancel */
#define MQ_MX_KINDS   14    /* "ok" and the 13 error kinds (mq_kind order) */
#define MQ_MX_BUCKETS 14    /* latency buckets; the last is +Inf */

typedef struct mq_metrics mq_metrics;

/* A consistent-enough copy: each counter is read atomically, the set is
 * not (a call that finishes meanwhile may show in some counters only). */
typedef struct {
    uint64_t calls[MQ_MX_OPS][MQ_MX_KINDS];
    uint64_t attempts, retries, limiter_waits;
    double limiter_wait_seconds;
    uint64_t buckets[MQ_MX_BUCKETS];    /* per bucket, not cumulative */
    double latency_sum;
    uint64_t latency_count;
} mq_metrics_snap;

/* Upper bounds (seconds) of the first MQ_MX_BUCKETS - 1 buckets. */
extern const double mq_metrics_bounds[MQ_MX_BUCKETS - 1];

/* Opens or makes <dir>/mediquo-mx-<fnv1a64(key) hex>.shm (mode 0600, or
 * with gid >= 0 mode 0660 of that group). */
int  mq_metrics_open(const char *key, const char *dir, long gid, mq_metrics **out,
                     char *err, size_t errlen);
/* One finished call: op and kind indexes (checked by the caller), its
 * latency, and what it spent. Lock-free: atomic adds on the mapping.
 * 0; -1 when the file was cut short under us (the counts are lost,
 * mq_metrics_error says why; the next call maps the file again). */
int  mq_metrics_add(mq_metrics *m, int op, int kind, double latency, long attempts,
                    long retries, long limiter_waits, double limiter_wait_seconds);
/* Every counter, now. 0; -1 as for add (*s zeroed). */
int  mq_metrics_snapshot(mq_metrics *m, mq_metrics_snap *s);
const char *mq_metrics_error(const mq_metrics *m);
const char *mq_metrics_path(const mq_metrics *m);
void mq_metrics_close(mq_metrics *m);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
