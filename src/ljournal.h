/* ljournal.h: the files an import holds (ljournal.c). */
#ifndef MQ_LJOURNAL_H
#define MQ_LJOURNAL_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Add `journal` and `lock` (constructors) to the table on top of the stack
 * and register their metatable. */
void mq_ljournal_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
