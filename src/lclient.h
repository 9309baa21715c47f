/* lclient.h: the client userdata of mediquo.core (lclient.c). */
#ifndef MQ_LCLIENT_H
#define MQ_LCLIENT_H

#include "lclass.h"
#include "engine.h"
#include "limiter.h"
#include "transport.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_CLIENT_MT  "mediquo.core.client"
#define MQ_CLIENT_TAG "mq.clien"      /* lclass.h: each userdata's first 8 bytes */
#define MQ_URL_MAX 4096

/* The client userdata. Other files take its parts through the functions
 * below (batches drive calls of its engine over dups of its transport). */
typedef struct {
    char tag[MQ_LTAG_LEN];
    mq_transport *t;        /* NULL once closed */
    mq_limiter *lim;        /* borrowed: the limiter userdata is the uservalue */
    mq_engine *e;           /* every decision of a call */
    mq_ecall call;          /* the call in progress, reused (no allocation per call) */
} mq_client;

/* Adds `client` (constructor) to the table on top of the stack and
 * registers the client metatable (its method table: mq_lclient_methods). */
void mq_lclient_open(lua_State *L);
/* Pushes the client metatable's method table (for bindings that add
 * methods, e.g. lbatch.c). */
void mq_lclient_methods(lua_State *L);
/* the open client at idx (raises "mediquo client is closed" otherwise) */
mq_client *mq_lclient_check(lua_State *L, int idx);
/* Its parts, for a driver that runs calls of its own (batches): the
 * transport to dup, the limiter (NULL: none), the engine (its settings:
 * mq_engine_config; its counters: mq_engine_stats_of). */
mq_transport *mq_lclient_transport(mq_client *c);
mq_limiter *mq_lclient_limiter(mq_client *c);
mq_engine *mq_lclient_engine(mq_client *c);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
