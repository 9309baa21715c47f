/* batch.h: the batch driver (batch.c): many calls of one client in flight
 * at once over curl's multi interface, every decision the engine's. */
#ifndef MQ_BATCH_H
#define MQ_BATCH_H

#include "engine.h"
#include "limiter.h"
#include "transport.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_BATCH_MAX_CONCURRENCY 64

typedef struct mq_batch mq_batch;

/* What a batch drives its calls with, all borrowed: the caller keeps them
 * alive (and open) for the batch's whole life. */
typedef struct {
    mq_engine *engine;          /* decides; its counters count the batch's calls */
    mq_transport *parent;       /* each of the batch's transports is a dup of it */
    mq_limiter *lim;            /* NULL: no limiter */
} mq_batch_env;

/* concurrency: 1..MQ_BATCH_MAX_CONCURRENCY calls active at once.
 * max_wait: seconds a row may wait for its first limiter slot before its
 * call starts (mq_engine_start_admitted: its deadline starts once it has
 * that slot, when it is sent; may be infinite); < 0: the engine's
 * max_wait. 0, or -1 with err set. */
int  mq_batch_new(const mq_batch_env *env, int concurrency, double max_wait,
                  mq_batch **out, char *err, size_t errlen);
/* Queue a row whose arguments passed the checks (a is copied). A parked
 * row is kept until mq_batch_release(handle). Returns its handle (>= 0),
 * or -1 with err set (out of memory). */
long mq_batch_add(mq_batch *b, long long id, const mq_op_args *a, int parked,
                  char *err, size_t errlen);
/* A parked row may start now (in the order released). 0, or -1 when the
 * handle is not a parked row. */
int  mq_batch_release(mq_batch *b, long handle);
/* A parked row's arguments (valid until it is dropped or released), or
 * NULL when the handle is not a parked row. */
const mq_op_args *mq_batch_parked(const mq_batch *b, long handle);
/* Forget a parked row: it will never be sent. 0, or -1 when the handle is
 * not a parked row. */
int  mq_batch_drop(mq_batch *b, long handle);
/* Drive the calls for at most max_seconds, returning early as soon as one
 * has finished. Returns how many finished calls wait to be taken, or -1
 * on a curl multi failure (err set). */
int  mq_batch_step(mq_batch *b, double max_seconds, char *err, size_t errlen);
/* Take one finished call: 1 with *id and *call (valid until the next take,
 * step or free), 0 when none is waiting. */
int  mq_batch_take(mq_batch *b, long long *id, const mq_ecall **call);
/* Rows added and not yet taken (parked ones included). */
long mq_batch_pending(const mq_batch *b);
/* Gate the batch (before any step): each row, once it has its first
 * limiter slot, waits "ready" until mq_batch_go instead of starting. */
void mq_batch_gate(mq_batch *b);
/* Take one ready row's id: 1, or 0 when none waits to be taken. A step
 * returns early when a row becomes ready. */
int  mq_batch_take_ready(mq_batch *b, long long *id);
/* The ready row with this id starts its call now: 1 when its request's
 * first bytes have left already, 0 when not yet (mq_batch_take_sent says
 * when they do), -1 when no row with that id is ready. */
int  mq_batch_go(mq_batch *b, long long id);
/* Take one gated row whose request's first bytes have left since it was
 * started (and that go did not report): 1 with *id, 0 when none. Taken
 * before that row's result (a step returns early when there is one). */
int  mq_batch_take_sent(mq_batch *b, long long *id);
/* Seconds until the first row waiting for a limiter slot looks again
 * (0: now), or -1 when none waits for one. */
double mq_batch_slot_wait(const mq_batch *b);
/* Frees everything, aborting transfers in flight. NULL is fine. */
void mq_batch_free(mq_batch *b);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
