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
