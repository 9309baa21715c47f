/* lwebhook.h: the webhook checks for Lua (lwebhook.c). */
#ifndef MQ_LWEBHOOK_H
#define MQ_LWEBHOOK_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Add `webhook_check` to the table on top of the stack. */
void mq_lwebhook_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
