/* lopt.h: reading optional fields of a Lua options table (lopt.c), for the
 * bindings that take one (core.client, core.engine). */
#ifndef MQ_LOPT_H
#define MQ_LOPT_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* t[k] if it is a string, else NULL; the pointer stays valid as long as the
 * table at t holds the string */
const char *mq_opt_string(lua_State *L, int t, const char *k);

/* t[k] if it is a number, else def */
double mq_opt_number(lua_State *L, int t, const char *k, double def);

/* t[k] as a Lua truth value (absent: 0) */
int mq_opt_bool(lua_State *L, int t, const char *k);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
