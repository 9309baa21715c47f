/* lmq.h: what the Lua binding files of mediquo.core share. */
#ifndef MQ_LMQ_H
#define MQ_LMQ_H

#include "compat.h"
#include "mq.h"

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

/* lclient.c: add `client` (constructor) to the table on top of the stack
 * and register the client metatable. */
void mq_lclient_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
