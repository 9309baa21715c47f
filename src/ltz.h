/* ltz.h: a wall-clock time in a named zone, as UTC (ltz.c). */
#ifndef MQ_LTZ_H
#define MQ_LTZ_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Add `zone_time` to the table on top of the stack. */
void mq_ltz_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
