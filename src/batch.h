/* batch.h: several calls of one client in flight at once (batch.c). */
#ifndef MQ_BATCH_H
#define MQ_BATCH_H

#include "call.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_BATCH_MAX_CONCURRENCY 64

typedef struct mq_batch mq_batch;

/* The client's pieces a batch works with. Everything is borrowed: the
 * caller keeps the client alive (and open) for the batch's whole life. */
typedef struct {
    mq_transport *parent;       /* the client's transport, to dup from */
    mq_limiter *lim;            /* NULL: no limiter */
    const mq_call_cfg *cfg;
    mq_call_stats *st;          /* the client's counters: batch attempts count too */
    uint64_t *rng;
    const char *base;           /* base URL without trailing slash */
    size_t base_len;
} mq_batch_env;

/* concurrency: 1..MQ_BATCH_MAX_CONCURRENCY. first_wait: seconds a paced
 * call may wait for its first limiter slot (may be infinite; < 0: the
 * client's max_wait). 0, or -1 with err set. */
int  mq_batch_new(const mq_batch_env *env, int concurrency, double first_wait, mq_batch **out,
                  char *err, size_t errlen);

/* mq_batch_add flags */
#define MQ_BATCH_FRONT 1    /* made active before every call queued without it */
#define MQ_BATCH_PACED 2    /* its deadline starts when its first limiter slot is
                             * granted, and that wait is bounded by first_wait */
/* Queue one call (copies path and body). deadline (seconds, from when the
 * call starts) and max_retries override the client's when >= 0: the
 * confirmation of an ambiguous create is one attempt within what is left
 * of the create's deadline (added with MQ_BATCH_FRONT). 0, or -1 with err
 * set. */
int  mq_batch_add(mq_batch *b, long long id, mq_method m, const char *path, size_t path_len,
                  const char *body, size_t body_len, double deadline, int max_retries,
                  int flags, char *err, size_t errlen);
/* Drive the transfers for at most max_seconds, returning early as soon as
 * at least one call has finished. Returns how many finished calls are
 * waiting to be taken, or -1 on a curl multi failure (err set). */
int  mq_batch_step(mq_batch *b, double max_seconds, char *err, size_t errlen);
/* Take one finished call: 1 with *id, *res, *deadline_left (seconds its
 * deadline still had when it finished) and *ambiguous (some attempt of it
 * may have been processed) filled (res->body stays valid until the next
 * take or free), 0 when none is waiting. */
int  mq_batch_take(mq_batch *b, long long *id, mq_result *res, double *deadline_left,
                   int *ambiguous);
/* Calls added and not yet taken. */
long mq_batch_pending(const mq_batch *b);
/* Frees everything, aborting transfers in flight. NULL is fine. */
void mq_batch_free(mq_batch *b);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
