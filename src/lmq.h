/* lmq.h: what the Lua binding files of mediquo.core share. */
#ifndef MQ_LMQ_H
#define MQ_LMQ_H

#include "compat.h"
#include "mq.h"
#include "call.h"
#include "engine.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif


#define MQ_LIMITER_MT "mediquo.core.limiter"
#define MQ_CLIENT_MT  "mediquo.core.client"

/* llimiter.c: add `limiter` (constructor) to the table on top of the stack
 * and register the limiter metatable. */
void mq_llimiter_open(lua_State *L);
/* The limiter behind the value at idx, or NULL when it is not a limiter or
 * has been closed. */
mq_limiter *mq_llimiter_get(lua_State *L, int idx);

#define MQ_URL_MAX 4096

/* The client userdata (lclient.c); batch.c drives several of its calls at
 * once over curl's multi interface. */
typedef struct {
    mq_transport *t;        /* NULL once closed */
    mq_limiter *lim;        /* borrowed: the limiter userdata is the uservalue */
    mq_engine *e;           /* every decision of a call */
    mq_ecall call;          /* the call in progress, reused (no allocation per call) */
    /* what batch.c (still on call.c's loop) borrows; it goes when batches
     * drive the engine */
    mq_call_cfg cfg;
    mq_call_stats st;
    uint64_t rng;
    char *base;             /* base URL without trailing slash */
    size_t base_len;
} mq_client;

/* lbatch.c: add the batch methods to the client metatable's method table
 * (on top of the stack when called). */
void mq_lbatch_open(lua_State *L);
/* lmetrics.c: add `metrics` (host-wide counters in a shared file) to the
 * module table on top of the stack. */
void mq_lmetrics_open(lua_State *L);

/* lclient.c: add `client` (constructor) to the table on top of the stack
 * and register the client metatable. */
void mq_lclient_open(lua_State *L);
/* the open client at idx (raises "mediquo client is closed" otherwise) */
mq_client *mq_lclient_check(lua_State *L, int idx);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
