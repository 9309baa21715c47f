/* lredis.h: the Lua side of the Redis limiter (lredis.c). */
#ifndef MQ_LREDIS_H
#define MQ_LREDIS_H

#include "compat.h"
#include "limiter.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds redis_reader, redis_format, redis_url, redis_explain, redis_script
 * to the module table on top of the stack, and redis_begin/_finish/_hello
 * to the limiter methods (call after mq_llimiter_open). */
void mq_lredis_open(lua_State *L);
/* opts.redis etc. (the options table at index 1, read raw) for the
 * limiter l just opened: 0, or nil, message, kind pushed and 3 returned. */
int  mq_lredis_attach(lua_State *L, mq_limiter *l, const mq_limiter_cfg *cfg);
/* backend, degraded, hosts[, redis_error, ...] into the table on top. */
void mq_lredis_status(lua_State *L, mq_limiter *l);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
