/* lbody.h: core.json_fields, an operation's fields out of a JSON request
 * body (lbody.c), for mediquo.ngx.read. */
#ifndef MQ_LBODY_H
#define MQ_LBODY_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds json_fields to the module table on top of the stack. */
void mq_lbody_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
