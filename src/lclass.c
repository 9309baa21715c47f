/* lclass.c: registering a userdata class - its metatable with the
 * metamethods, the __index table of methods and an optional __metatable
 * guard - once per Lua state. */
#include "lclass.h"

int mq_lclass(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods,
              const char *guard)
{
    if (!luaL_newmetatable(L, name))
        return 0;
    mq_setfuncs(L, meta);
    lua_newtable(L);
    mq_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
    if (guard != NULL) {
        lua_pushstring(L, guard);
        lua_setfield(L, -2, "__metatable");
    }
    return 1;
}

void *mq_lclass_make(lua_State *L, size_t size, const char *tag, const char *name)
{
    void *p = mq_newuserdata(L, size);
    memset(p, 0, size);
    memcpy(p, tag, MQ_LTAG_LEN);
    mq_setmetatable(L, name);
    return p;
}

void *mq_ltag_fail(lua_State *L, int idx, const char *name)
{
    /* the usual words for a value of another type; and a userdata with
     * our metatable but not our tag (debug.setmetatable) is refused too */
    luaL_checkudata(L, idx, name);
    luaL_argerror(L, idx, lua_pushfstring(L, "%s expected, got a userdata not made as one", name));
    return NULL;
}
