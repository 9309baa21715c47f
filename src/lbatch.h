/* lbatch.h: the Lua binding of the batch driver (lbatch.c). */
#ifndef MQ_LBATCH_H
#define MQ_LBATCH_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds `batch` and `sync` to the client's methods (the client metatable,
 * registered by mq_lclient_open, must exist) and registers the batch
 * metatable. Leaves the stack as it was. */
void mq_lbatch_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
