/* lhttp.h: the HTTP/1.1 wire binding for drivers that move bytes
 * themselves (mediquo.ngx on nginx cosockets), see lhttp.c. */
#ifndef MQ_LHTTP_H
#define MQ_LHTTP_H

#include "compat.h"
#include "engine.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds `http1` (request writer) and `http1_parser` (response reader) to
 * the module table on top of the stack. */
void mq_lhttp_open(lua_State *L);
/* The request head for the writer at widx as one string pushed: the
 * request line, every header, the length line and the blank one (kept:
 * the same string for every request of a method, path and body length,
 * made once). Raises a Lua error for a bad writer, method or path.
 * Returns 1. */
int mq_lhttp_push_head(lua_State *L, int widx, const char *method, const char *path, size_t plen,
                       int has_body, size_t blen);
/* The complete answer the parser at idx read, for the engine: a->body is
 * the parser's own buffer (valid until its reset). Raises a Lua error for
 * a bad parser or an answer not complete. */
void mq_lhttp_answer(lua_State *L, int idx, mq_answer *a);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
