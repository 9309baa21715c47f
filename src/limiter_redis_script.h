/* limiter_redis_script.h: the Redis limiter's Lua script
 * (limiter_redis_script.c). */
#ifndef MQ_LIMITER_REDIS_SCRIPT_H
#define MQ_LIMITER_REDIS_SCRIPT_H

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* The script's source, NUL-terminated, static. */
const char *mq_rdl_script(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
