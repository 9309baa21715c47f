/* lmetrics.h: host-wide counters for Lua (lmetrics.c). */
#ifndef MQ_LMETRICS_H
#define MQ_LMETRICS_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds `metrics` (host-wide counters in a shared file) to the module table
 * on top of the stack. */
void mq_lmetrics_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
