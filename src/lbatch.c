/* lbatch.c: the Lua binding of the batch driver (batch.c).
 *
 *   local b = client_core:batch(concurrency[, max_wait[, gated]])
 *       max_wait: seconds a row may wait for its first limiter slot
 *       (< 0 or absent: the client's rate_limit.max_wait)
 *   local h, err = b:add(i, op, a, b2, resumed, parked)
 *       op "create" (a = the fields table), "reschedule" (a = code,
 *       b2 = starts_at) or "cancel" (a = code); checked here with the
 *       engine's checks (lcheck.c): a refused row returns nil and the error
 *       table (plain: mediquo.errors wraps it) and is never queued.
 *       resumed: an earlier run may have sent it. parked: kept until
 *       b:release(h) (rows on one code go one at a time).
 *   local _, err = b:refuse(op|nil, field, why)   -- refused in Lua, worded in C
 *   b:release(h)
 *   local method, path = b:drop(h)   -- a parked row that will never go
 *   local done, ready, sent = b:step(max_seconds)
 *       -- done: { {i=, ok=value, reconciled=bool} | {i=, err=table}, ... }
 *       -- ready (gated batches): { i, ... } rows whose call waits for
 *       -- b:go(i): each has its first limiter slot, nothing sent yet
 *       -- sent (gated batches): { i, ... } rows started by go whose
 *       -- request's first bytes have left since (before their result)
 *   local left = b:go(i)   -- true: its request's first bytes have left
 *   local s = b:slot_wait()   -- seconds until a row waiting for a limiter
 *                             -- slot may have one, or nil (progress lines)
 *   b:pending(); b:close()
 *   client_core:sync(file)            -- fflush + fsync (import journals)
 *
 * An iterator rather than a callback API: Lua code (on_result) runs between
 * steps, never inside a libcurl callback, so an error it raises cannot
 * unwind through curl frames. The batch keeps its client alive through its
 * uservalue and frees its own transports first (they borrow the client's
 * header lists); close, __gc and __close are one idempotent function. */
#include "lbatch.h"
#include "batch.h"
#include "lcheck.h"
#include "lengine.h"
#include "lclient.h"
#include "lclass.h"

#if LUA_VERSION_NUM < 502
#include <lualib.h>     /* LUA_FILEHANDLE (5.2+ has it in lauxlib.h) */
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MQ_BATCH_MT "mediquo.core.batch"
#define BATCH_TAG   "mq.batch"     /* lclass.h: each userdata's first 8 bytes */

typedef struct {
    char tag[MQ_LTAG_LEN];
    mq_batch *b;            /* NULL once closed */
    mq_client *c;           /* borrowed: the uservalue keeps it alive */
} lbatch;

static lbatch *check_batch(lua_State *L)
{
    lbatch *lb = mq_ltag_check(L, 1, BATCH_TAG, MQ_BATCH_MT);
    if (lb->b == NULL)
        luaL_error(L, "mediquo batch is closed");
    if (mq_lclient_transport(lb->c) == NULL) {
        /* the client was closed under us: its header lists are gone, so
         * nothing more may be sent with the transports that borrow them */
        mq_batch_free(lb->b);
        lb->b = NULL;
        luaL_error(L, "mediquo client is closed");
    }
    return lb;
}

/* client:batch(concurrency[, max_wait[, gated]]) -> batch | nil, message */
static int l_batch_new(lua_State *L)
{
    mq_client *c = mq_lclient_check(L, 1);      /* raises when closed */
    lua_Integer conc = luaL_checkinteger(L, 2);
    double max_wait = luaL_optnumber(L, 3, -1);
    mq_batch_env env;
    lbatch *lb;
    char err[256];

    if (conc < 1 || conc > MQ_BATCH_MAX_CONCURRENCY)
        return luaL_argerror(L, 2, "concurrency must be 1..64");
    if (max_wait != max_wait)
        return luaL_argerror(L, 3, "max_wait must be a number of seconds");

    lb = mq_lclass_new(L, sizeof *lb, BATCH_TAG, MQ_BATCH_MT);   /* b NULL: __gc is safe */
    lb->c = c;
    lua_createtable(L, 1, 0);   /* a table: 5.1 fenvs must be */
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    mq_setuservalue(L, -2);

    env.engine = mq_lclient_engine(c);
    env.parent = mq_lclient_transport(c);
    env.lim = mq_lclient_limiter(c);
    if (mq_batch_new(&env, (int)conc, max_wait, &lb->b, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (lua_toboolean(L, 4))
        mq_batch_gate(lb->b);
    return 1;
}

/* batch:add(i, op, a, b, resumed, parked) -> handle | nil, err */
static int l_batch_add(lua_State *L)
{
    lbatch *lb = check_batch(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    const char *opname = luaL_checkstring(L, 3);
    int resumed = lua_toboolean(L, 6), parked = lua_toboolean(L, 7);
    mq_op op;
    mq_op_args a;
    const char *field, *why;
    char buf[MQ_WHY_LEN], err[128];
    long h;

    /* batches are of appointment operations (webhook subscriptions are
     * a client's one call at a time) */
    if (mq_op_parse(opname, &op) != 0 || MQ_OP_IS_WEBHOOK(op))
        return luaL_argerror(L, 3, "op must be create, reschedule or cancel");
    if (mq_check_op(L, op, 4, 5, &a, &field, &why, buf) != 0) {
        /* refused before anything is sent: the engine words it */
        mq_ecall c;
        int n;
        mq_engine_call_init(&c);
        mq_engine_refuse(mq_lclient_engine(lb->c), &c, op, MQ_K_INVALID_ARGUMENT, field, why);
        n = mq_lengine_push_result(L, &c);
        mq_engine_call_free(&c);
        return n;
    }
    a.resumed = resumed;
    h = mq_batch_add(lb->b, (long long)id, &a, parked, err, sizeof err);
    if (h < 0)
        return luaL_error(L, "mediquo batch: %s", err);
    lua_pushinteger(L, (lua_Integer)h);
    return 1;
}

/* batch:refuse(op|nil, field, why) -> nil, err: a row refused before the
 * engine's own checks could see it (not a table, no known op, a field its
 * op does not take), worded and counted by the engine as any refusal */
static int l_batch_refuse(lua_State *L)
{
    lbatch *lb = check_batch(L);
    const char *opname = luaL_optstring(L, 2, "create");
    const char *field = luaL_checkstring(L, 3);
    const char *why = luaL_checkstring(L, 4);
    mq_op op;
    mq_ecall c;
    int n;

    if (mq_op_parse(opname, &op) != 0 || MQ_OP_IS_WEBHOOK(op))
        op = MQ_OP_CREATE;
    mq_engine_call_init(&c);
    mq_engine_refuse(mq_lclient_engine(lb->c), &c, op, MQ_K_INVALID_ARGUMENT, field, why);
    n = mq_lengine_push_result(L, &c);
    mq_engine_call_free(&c);
    return n;
}

/* batch:release(handle): a parked row may start */
static int l_batch_release(lua_State *L)
{
    lbatch *lb = check_batch(L);
    if (mq_batch_release(lb->b, (long)luaL_checkinteger(L, 2)) != 0)
        return luaL_argerror(L, 2, "not a parked row of this batch");
    return 0;
}

/* batch:drop(handle) -> method, path: a parked row that will never be
 * sent (a row before it on its code has an unknown outcome), forgotten;
 * what it would have sent is named by the engine (a call started on the
 * side, nothing sent, nothing counted). */
static int l_batch_drop(lua_State *L)
{
    lbatch *lb = check_batch(L);
    long h = (long)luaL_checkinteger(L, 2);
    const mq_op_args *a = mq_batch_parked(lb->b, h);
    mq_ecall c;
    mq_request req;

    if (a == NULL)
        return luaL_argerror(L, 2, "not a parked row of this batch");
    mq_engine_call_init(&c);
    (void)mq_engine_start(mq_lclient_engine(lb->c), &c, a, 0);
    mq_engine_request(&c, &req);
    lua_pushstring(L, mq_method_name(req.method));
    lua_pushlstring(L, req.path, req.path_len);
    mq_engine_call_free(&c);
    mq_batch_drop(lb->b, h);
    return 2;
}

/* batch:step(max_seconds) -> array of finished calls (maybe empty):
 *   { i=, ok=value, reconciled=true|nil } or { i=, err=plain error table } */
static int l_batch_step(lua_State *L)
{
    lbatch *lb = check_batch(L);
    double max_seconds = luaL_optnumber(L, 2, 1.0);
    char err[256];
    long long id;
    const mq_ecall *c;
    int n;

    if (!(max_seconds >= 0))
        return luaL_argerror(L, 2, "max_seconds must be >= 0");
    if (max_seconds > 3600)
        max_seconds = 3600;
    n = mq_batch_step(lb->b, max_seconds, err, sizeof err);
    if (n < 0)
        return luaL_error(L, "mediquo batch: %s", err);
    lua_createtable(L, n, 0);
    for (int k = 1; mq_batch_take(lb->b, &id, &c); k++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, (lua_Integer)id);
        lua_setfield(L, -2, "i");
        if (mq_lengine_push_result(L, c) == 1) {
            lua_setfield(L, -2, "ok");
            if (mq_engine_reconciled(c)) {
                lua_pushboolean(L, 1);
                lua_setfield(L, -2, "reconciled");
            }
        } else {
            lua_setfield(L, -3, "err");
            lua_pop(L, 1);  /* the nil */
        }
        lua_rawseti(L, -2, k);
    }
    lua_newtable(L);
    for (int k = 1; mq_batch_take_ready(lb->b, &id); k++) {
        lua_pushinteger(L, (lua_Integer)id);
        lua_rawseti(L, -2, k);
    }
    lua_newtable(L);
    for (int k = 1; mq_batch_take_sent(lb->b, &id); k++) {
        lua_pushinteger(L, (lua_Integer)id);
        lua_rawseti(L, -2, k);
    }
    return 3;
}

/* batch:go(i) -> left: the ready row i starts its call (the request goes
 * out); true when its first bytes have left already */
static int l_batch_go(lua_State *L)
{
    lbatch *lb = check_batch(L);
    int rc = mq_batch_go(lb->b, (long long)luaL_checkinteger(L, 2));
    if (rc < 0)
        return luaL_argerror(L, 2, "not a ready row of this batch");
    lua_pushboolean(L, rc);
    return 1;
}

/* batch:slot_wait() -> seconds | nil */
static int l_batch_slot_wait(lua_State *L)
{
    lbatch *lb = check_batch(L);
    double w = mq_batch_slot_wait(lb->b);
    if (w < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, w);
    return 1;
}

/* batch:pending() -> rows added and not yet returned by step */
static int l_batch_pending(lua_State *L)
{
    lbatch *lb = mq_ltag_check(L, 1, BATCH_TAG, MQ_BATCH_MT);
    lua_pushinteger(L, lb->b ? (lua_Integer)mq_batch_pending(lb->b) : 0);
    return 1;
}

/* close, __gc and __close: one idempotent function */
static int l_batch_close(lua_State *L)
{
    lbatch *lb = mq_ltag_check(L, 1, BATCH_TAG, MQ_BATCH_MT);
    mq_batch_free(lb->b);
    lb->b = NULL;
    return 0;
}

static int l_batch_tostring(lua_State *L)
{
    lbatch *lb = mq_ltag_check(L, 1, BATCH_TAG, MQ_BATCH_MT);
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
    mq_ltag_check(L, 1, MQ_CLIENT_TAG, MQ_CLIENT_MT);
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
        { "refuse", l_batch_refuse },
        { "release", l_batch_release },
        { "drop", l_batch_drop },
        { "step", l_batch_step },
        { "go", l_batch_go },
        { "slot_wait", l_batch_slot_wait },
        { "pending", l_batch_pending },
        { "close", l_batch_close },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_batch_close },
        { "__close", l_batch_close },
        { "__tostring", l_batch_tostring },
        { NULL, NULL },
    };
    /* the client's method table is on top of the stack */
    lua_pushcfunction(L, l_batch_new);
    lua_setfield(L, -2, "batch");
    lua_pushcfunction(L, l_sync);
    lua_setfield(L, -2, "sync");

    mq_lclass(L, MQ_BATCH_MT, meta, methods, "mediquo.core.batch");
    lua_pop(L, 1);
}
