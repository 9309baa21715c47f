/* lbatch.c: the Lua binding of batch.c.
 *
 *   local b = client_core:batch(concurrency[, first_wait])
 *   b:add(i, method, path, body|nil[, deadline, max_retries[, how]])
 *       how: "row" (paced: the deadline starts at the first slot, which
 *       may take first_wait), "front" (made active before queued calls)
 *   local done = b:step(max_seconds)   -- { {i=, kind=, status=, body=, ...}, ... }
 *   b:pending(); b:close()
 *   client_core:sync(file)            -- fflush + fsync (import journals)
 *
 * An iterator rather than a callback API: Lua code (on_result) runs between
 * steps, never inside a libcurl callback, so an error it raises cannot
 * unwind through curl frames. The batch keeps its client alive through its
 * uservalue and frees its own transports first (they borrow the client's
 * header lists); close, __gc and __close are one idempotent function. */
#include "lmq.h"
#include "batch.h"

#if LUA_VERSION_NUM < 502
#include <lualib.h>     /* LUA_FILEHANDLE (5.2+ has it in lauxlib.h) */
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MQ_BATCH_MT "mediquo.core.batch"

typedef struct {
    mq_batch *b;            /* NULL once closed */
    mq_client *c;           /* borrowed: the uservalue keeps it alive */
} lbatch;

static lbatch *check_batch(lua_State *L)
{
    lbatch *lb = luaL_checkudata(L, 1, MQ_BATCH_MT);
    if (lb->b == NULL)
        luaL_error(L, "mediquo batch is closed");
    if (lb->c->t == NULL) {
        /* the client was closed under us: its header lists are gone, so
         * nothing more may be sent with the transports that borrow them */
        mq_batch_free(lb->b);
        lb->b = NULL;
        luaL_error(L, "mediquo client is closed");
    }
    return lb;
}

/* client:batch(concurrency[, first_wait]) -> batch | nil, message */
static int l_batch_new(lua_State *L)
{
    mq_client *c = mq_lclient_check(L, 1);
    lua_Integer conc = luaL_checkinteger(L, 2);
    double first_wait = luaL_optnumber(L, 3, -1);
    mq_batch_env env;
    lbatch *lb;
    char err[256];

    if (conc < 1 || conc > MQ_BATCH_MAX_CONCURRENCY)
        return luaL_argerror(L, 2, "concurrency must be 1..64");
    if (first_wait != first_wait)
        return luaL_argerror(L, 3, "first_wait must be a number of seconds");

    lb = mq_newuserdata(L, sizeof *lb);
    lb->b = NULL;           /* __gc is safe from here on */
    lb->c = c;
    mq_setmetatable(L, MQ_BATCH_MT);
    lua_createtable(L, 1, 0);   /* a table: 5.1 fenvs must be */
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    mq_setuservalue(L, -2);

    env.parent = c->t;
    env.lim = c->lim;
    env.cfg = &c->cfg;
    env.st = &c->st;
    env.rng = &c->rng;
    env.base = c->base;
    env.base_len = c->base_len;
    if (mq_batch_new(&env, (int)conc, first_wait, &lb->b, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

/* batch:add(i, method, path, body|nil[, deadline[, max_retries[, how]]]) */
static int l_batch_add(lua_State *L)
{
    lbatch *lb = check_batch(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    mq_method m;
    size_t plen, blen = 0;
    const char *path, *body;
    char err[128];

    if (mq_method_parse(luaL_checkstring(L, 3), &m) != 0)
        return luaL_argerror(L, 3, "method must be POST, PUT or DELETE");
    path = luaL_checklstring(L, 4, &plen);
    body = luaL_optlstring(L, 5, NULL, &blen);
    double deadline = luaL_optnumber(L, 6, -1);
    lua_Integer max_retries = luaL_optinteger(L, 7, -1);
    if (!(deadline < 1e9))
        return luaL_argerror(L, 6, "deadline must be a number of seconds");
    if (max_retries > 100)
        return luaL_argerror(L, 7, "max_retries must be at most 100");
    if (deadline < 0 && !lua_isnoneornil(L, 6))
        deadline = 0;
    if (max_retries < 0 && !lua_isnoneornil(L, 7))
        max_retries = 0;
    static const char *const hows[] = { "plain", "row", "front", NULL };
    static const int flags_of[] = { 0, MQ_BATCH_PACED, MQ_BATCH_FRONT };
    int how = luaL_checkoption(L, 8, "plain", hows);
    if (mq_batch_add(lb->b, (long long)id, m, path, plen, body, blen, deadline, (int)max_retries,
                     flags_of[how], err, sizeof err) != 0)
        return luaL_error(L, "mediquo batch: %s", err);
    return 0;
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* batch:step(max_seconds) -> array of finished calls (maybe empty):
 *   { i, kind, status|nil, body, attempts, ambiguous_before, ambiguous,
 *     retry_after|nil, message|nil, retryable, deadline_left } */
static int l_batch_step(lua_State *L)
{
    lbatch *lb = check_batch(L);
    double max_seconds = luaL_optnumber(L, 2, 1.0);
    char err[256];
    long long id;
    mq_result res;
    double left;
    int n, amb;

    if (!(max_seconds >= 0))
        return luaL_argerror(L, 2, "max_seconds must be >= 0");
    if (max_seconds > 3600)
        max_seconds = 3600;
    n = mq_batch_step(lb->b, max_seconds, err, sizeof err);
    if (n < 0)
        return luaL_error(L, "mediquo batch: %s", err);
    lua_createtable(L, n, 0);
    for (int k = 1; mq_batch_take(lb->b, &id, &res, &left, &amb); k++) {
        lua_createtable(L, 0, 11);
        set_int(L, "i", (lua_Integer)id);
        lua_pushstring(L, mq_kind_name(res.kind));
        lua_setfield(L, -2, "kind");
        if (res.status > 0)
            set_int(L, "status", res.status);
        lua_pushlstring(L, res.body, res.body_len);
        lua_setfield(L, -2, "body");
        set_int(L, "attempts", res.attempts);
        lua_pushboolean(L, res.ambiguous_before);
        lua_setfield(L, -2, "ambiguous_before");
        lua_pushboolean(L, amb);
        lua_setfield(L, -2, "ambiguous");
        if (res.retry_after >= 0) {
            lua_pushnumber(L, res.retry_after);
            lua_setfield(L, -2, "retry_after");
        }
        if (res.message[0]) {
            lua_pushstring(L, res.message);
            lua_setfield(L, -2, "message");
        }
        lua_pushboolean(L, res.retryable);
        lua_setfield(L, -2, "retryable");
        lua_pushnumber(L, left);
        lua_setfield(L, -2, "deadline_left");
        lua_rawseti(L, -2, k);
    }
    return 1;
}

/* batch:pending() -> calls added and not yet returned by step */
static int l_batch_pending(lua_State *L)
{
    lbatch *lb = luaL_checkudata(L, 1, MQ_BATCH_MT);
    lua_pushinteger(L, lb->b ? (lua_Integer)mq_batch_pending(lb->b) : 0);
    return 1;
}

/* close, __gc and __close: one idempotent function */
static int l_batch_close(lua_State *L)
{
    lbatch *lb = luaL_checkudata(L, 1, MQ_BATCH_MT);
    mq_batch_free(lb->b);
    lb->b = NULL;
    return 0;
}

static int l_batch_tostring(lua_State *L)
{
    lbatch *lb = luaL_checkudata(L, 1, MQ_BATCH_MT);
    if (lb->b == NULL)
        lua_pushliteral(L, "mediquo.core.batch (closed)");
    else
        lua_pushfstring(L, "mediquo.core.batch (%d pending)", (int)mq_batch_pending(lb->b));
    return 1;
}

/* client:sync(file) -> true | nil, message: flush a Lua file and fsync it,
 * so a batch's journal line is on disk before the next op is trusted to it
 * (Lua's io library can flush but not fsync). */
static int l_sync(lua_State *L)
{
    FILE *f;
    luaL_checkudata(L, 1, MQ_CLIENT_MT);
#if LUA_VERSION_NUM >= 502
    luaL_Stream *s = luaL_checkudata(L, 2, LUA_FILEHANDLE);
    f = s->closef != NULL ? s->f : NULL;
#else
    FILE **pf = luaL_checkudata(L, 2, LUA_FILEHANDLE);
    f = *pf;
#endif
    if (f == NULL)
        return luaL_argerror(L, 2, "file is closed");
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

void mq_lbatch_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "add", l_batch_add },
        { "step", l_batch_step },
        { "pending", l_batch_pending },
        { "close", l_batch_close },
        { NULL, NULL },
    };
    /* the client's method table is on top of the stack */
    lua_pushcfunction(L, l_batch_new);
    lua_setfield(L, -2, "batch");
    lua_pushcfunction(L, l_sync);
    lua_setfield(L, -2, "sync");

    if (luaL_newmetatable(L, MQ_BATCH_MT)) {
        lua_newtable(L);
        mq_setfuncs(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_batch_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_batch_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, l_batch_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "mediquo.core.batch");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}
