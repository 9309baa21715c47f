/* lclass.h: registering a userdata class's metatable (lclass.c), for the
 * bindings of mediquo.core. */
#ifndef MQ_LCLASS_H
#define MQ_LCLASS_H

#include "compat.h"

#include <string.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* the registry's metatable `name`, made on the first call: meta's functions
 * (__gc, __close, __tostring, ...) in it, methods' in its __index table, and
 * guard (when not NULL) as its __metatable. Leaves the metatable on the
 * stack; returns 1 when this call made it, 0 when it was there already. */
int mq_lclass(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods,
              const char *guard);

/* Every userdata of a class begins with the class's tag: 8 bytes (a
 * string literal of 8 characters), set where it is made (mq_lclass_new).
 * A method finds its self by the tag -- two API calls and one compare --
 * not by luaL_checkudata, which interns the class's name and
 * looks the metatable up in the registry every call (~190 instructions
 * under LuaJIT, 13 checks a gateway /book: docs/performance.md). It is
 * also the stricter check: a foreign userdata given one of our metatables
 * (debug.setmetatable) is not taken for ours. */
#define MQ_LTAG_LEN 8

/* A new userdata of the class name (its metatable made by mq_lclass):
 * size bytes, zeroed, its tag first and its metatable set, pushed. Its
 * struct begins with char tag[MQ_LTAG_LEN]; the constructor fills in the
 * rest before any Lua call (a zeroed one is what __gc sees if it must). */
void *mq_lclass_make(lua_State *L, size_t size, const char *tag, const char *name);
#define mq_lclass_new(L, size, tag, name) \
    ((void)sizeof(char[sizeof(tag) == MQ_LTAG_LEN + 1 ? 1 : -1]), \
     mq_lclass_make((L), (size), (tag), (name)))

/* the userdata at idx when it carries tag, else NULL */
static inline void *mq_ltag_test(lua_State *L, int idx, const char *tag)
{
    void *p = lua_touserdata(L, idx);   /* a light userdata's length is 0 */
    return p != NULL && mq_rawlen(L, idx) >= MQ_LTAG_LEN && memcmp(p, tag, MQ_LTAG_LEN) == 0
        ? p : NULL;
}

/* raises "bad argument #idx (name expected, got ...)" */
void *mq_ltag_fail(lua_State *L, int idx, const char *name);

/* the userdata at idx when it carries tag, else an argument error */
static inline void *mq_ltag_check(lua_State *L, int idx, const char *tag, const char *name)
{
    void *p = mq_ltag_test(L, idx, tag);
    return p != NULL ? p : mq_ltag_fail(L, idx, name);
}

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
