/* llimiter.h: the limiter userdata of mediquo.core (llimiter.c). */
#ifndef MQ_LLIMITER_H
#define MQ_LLIMITER_H

#include "compat.h"
#include "limiter.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_LIMITER_MT "mediquo.core.limiter"

/* Adds `limiter` (constructor) to the table on top of the stack and
 * registers the limiter metatable. */
void mq_llimiter_open(lua_State *L);
/* The limiter behind the value at idx, or NULL when it is not a limiter or
 * has been closed. */
mq_limiter *mq_llimiter_get(lua_State *L, int idx);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
