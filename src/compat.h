/* compat.h: the few Lua C API differences between 5.1/LuaJIT, 5.3 and 5.4,
 * behind mq_-prefixed names so no file tests LUA_VERSION_NUM itself. */
#ifndef MQ_COMPAT_H
#define MQ_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#define mq_rawlen(L, i)          lua_objlen((L), (i))
#define mq_setfuncs(L, l)        luaL_register((L), NULL, (l))
#define mq_newlib(L, l)          (lua_newtable(L), luaL_register((L), NULL, (l)))
#define mq_setuservalue(L, i)    lua_setfenv((L), (i))
#define mq_getuservalue(L, i)    lua_getfenv((L), (i))
static inline void mq_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#else
#define mq_rawlen(L, i)          lua_rawlen((L), (i))
#define mq_setfuncs(L, l)        luaL_setfuncs((L), (l), 0)
#define mq_newlib(L, l)          luaL_newlib((L), (l))
#define mq_setuservalue(L, i)    lua_setuservalue((L), (i))
#define mq_getuservalue(L, i)    ((void)lua_getuservalue((L), (i)))
#define mq_setmetatable(L, t)    luaL_setmetatable((L), (t))
#endif

#if LUA_VERSION_NUM >= 504
#define mq_newuserdata(L, sz)    lua_newuserdatauv((L), (sz), 1)
#else
#define mq_newuserdata(L, sz)    lua_newuserdata((L), (sz))
#endif

#endif
