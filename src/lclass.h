/* lclass.h: registering a userdata class's metatable (lclass.c), for the
 * bindings of mediquo.core. */
#ifndef MQ_LCLASS_H
#define MQ_LCLASS_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* the registry's metatable `name`, made on the first call: meta's functions
 * (__gc, __close, __tostring, ...) in it, methods' in its __index table, and
 * guard (when not NULL) as its __metatable. Leaves the metatable on the
 * stack; returns 1 when this call made it, 0 when it was there already. */
int mq_lclass(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods,
              const char *guard);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
