/* lopt.c: reading optional fields of a Lua options table - strings, numbers
 * and truth values - without raising for a field of the wrong type. */
#include "lopt.h"

const char *mq_opt_string(lua_State *L, int t, const char *k)
{
    const char *v;
    lua_getfield(L, t, k);
    v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);   /* the table still holds the string: it stays alive */
    return v;
}

double mq_opt_number(lua_State *L, int t, const char *k, double def)
{
    double v;
    lua_getfield(L, t, k);
    v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

int mq_opt_bool(lua_State *L, int t, const char *k)
{
    int v;
    lua_getfield(L, t, k);
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}
