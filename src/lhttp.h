/* lhttp.h: the HTTP/1.1 wire binding for drivers that move bytes
 * themselves (mediquo.ngx on nginx cosockets), see lhttp.c. */
#ifndef MQ_LHTTP_H
#define MQ_LHTTP_H

#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds `http1` (request writer) and `http1_parser` (response reader) to
 * the module table on top of the stack. */
void mq_lhttp_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
