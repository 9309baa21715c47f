/* llimiter.h: the limiter userdata of mediquo.core (llimiter.c). */
#ifndef MQ_LLIMITER_H
#define MQ_LLIMITER_H

#include "compat.h"
#include "limiter.h"
#include "llimiter_ud.h"            /* MQ_LIMITER_MT, mq_llimiter_get */

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds `limiter` (constructor) to the table on top of the stack and
 * registers the limiter metatable. */
void mq_llimiter_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
