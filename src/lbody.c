/* lbody.c: core.json_fields(body, op) -> fields | nil: the fields op takes
 * (create, reschedule, cancel: lcheck.c's table) as the top-level members
 * of the JSON object body, read the way cjson reads them - a string, a
 * number, a boolean; a null or a missing member is no field; the last copy
 * of a member wins. One table made, with room for the fields, and only the
 * op's members copied out: what mediquo.ngx.read did with cjson.decode and
 * a loop cost a table per member the body has and a string per value.
 * nil: the body is not one the scan (answer.c, held to cjson by
 * test/answer_cjson.lua and fuzz/fuzz_answer.c) takes - a member of op's
 * that is an object or an array, a raw control byte, a number that is not
 * RFC 8259's, anything after the object, ... - and the caller decodes it
 * with cjson, as before. The members' names, as Lua strings, are made
 * once (an upvalue: op -> { name, ... }): setting a field by a kept
 * string saves looking the name up among Lua's strings each time. */
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "engine.h"
#include "lbody.h"
#include "lcheck.h"

#define NUM_MAX 64          /* a longer number is cjson's to read */
#define STACK_BUF 1024      /* bodies up to this size unescape on the stack */

static int l_json_fields(lua_State *L)
{
    size_t len, n = 0;
    const char *body = luaL_checklstring(L, 1, &len);
    const char *const *names = NULL;
    mq_answer_val v[8];
    char stack[STACK_BUF], *buf = stack, num[NUM_MAX];
    mq_op op;

    if (mq_op_parse(luaL_checkstring(L, 2), &op) == 0)
        names = mq_op_fields(op);   /* (then the upvalue has op's names too) */
    if (names == NULL)
        return luaL_argerror(L, 2, "must be create, reschedule or cancel");
    while (names[n] != NULL)
        n++;
    if (len > sizeof stack)
        buf = lua_newuserdata(L, len);      /* Lua's, collected with the call */
    if (n > sizeof v / sizeof v[0] || !mq_answer_fields(body, len, buf, names, n, v)) {
        lua_pushnil(L);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == MQ_JV_NUMBER && v[i].len >= NUM_MAX) {
            lua_pushnil(L);
            return 1;
        }
    lua_rawgeti(L, lua_upvalueindex(1), (int)op);         /* op's names */
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -2, (int)i + 1);
        switch (v[i].kind) {
        case MQ_JV_STRING:
            lua_pushlstring(L, v[i].s, v[i].len);
            break;
        case MQ_JV_NUMBER:
            /* an RFC 8259 number: strtod reads it whole, as cjson does */
            memcpy(num, v[i].s, v[i].len);
            num[v[i].len] = '\0';
            lua_pushnumber(L, strtod(num, NULL));
            break;
        case MQ_JV_TRUE:
        case MQ_JV_FALSE:
            lua_pushboolean(L, v[i].kind == MQ_JV_TRUE);
            break;
        default:
            lua_pop(L, 1);
            continue;
        }
        lua_rawset(L, -3);
    }
    return 1;
}

void mq_lbody_open(lua_State *L)
{
    lua_createtable(L, MQ_OP__COUNT, 0);
    for (int op = 0; op < MQ_OP__COUNT; op++) {
        const char *const *names = mq_op_fields((mq_op)op);
        if (names == NULL)
            continue;
        lua_newtable(L);
        for (int i = 0; names[i] != NULL; i++) {
            lua_pushstring(L, names[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_rawseti(L, -2, op);
    }
    lua_pushcclosure(L, l_json_fields, 1);
    lua_setfield(L, -2, "json_fields");
}
