/* limiter_redis_script.c: the Lua script Redis runs for every decision of
 * the shared budget, embedded: its source is src/limiter_redis_script.lua
 * (linted by luacheck), made a C string at build time by mk/limiter.mk
 * into src/limiter_redis_script.inc. Its keys and arguments: limiter_redis.c
 * request(); what it does: the .lua file. */
#include "limiter_redis_script.h"

static const char SCRIPT[] =
#include "limiter_redis_script.inc"
    ;

const char *mq_rdl_script(void) { return SCRIPT; }
