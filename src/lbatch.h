/* lbatch.h: batches of calls for Lua (lbatch.c). */
#ifndef MQ_LBATCH_H
#define MQ_LBATCH_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds the batch methods to the client's method table (on top of the
 * stack when called). */
void mq_lbatch_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
