/* lmetrics.c: the Lua binding of metrics.c:
 *   core.metrics{ key = ..., dir = ... [, group = name] } -> metrics | nil, message
 *   metrics:add(op, kind, latency_seconds, retries, limiter_waits,
 *               limiter_wait_seconds [, attempts])
 *   metrics:snapshot() -> plain table    metrics:path()    metrics:close()
 * op is create/reschedule/cancel, kind "ok" or an error kind; anything
 * else raises (a bug in the caller, not an input). */
#include <math.h>
#include <string.h>

#include "compat.h"
#include "lmetrics.h"
#include "metrics.h"
#include "policy.h"
#include "shmfile.h"
#include "lclass.h"

#define MQ_METRICS_MT "mediquo.core.metrics"
#define METRICS_TAG   "mq.metri"     /* lclass.h: each userdata's first 8 bytes */

typedef struct {
    char tag[MQ_LTAG_LEN];
    mq_metrics *m;          /* NULL once closed (or never opened) */
} mx_ud;

static const char *const ops[] = { "create", "reschedule", "cancel", NULL };

typedef char kinds_match[MQ_MX_KINDS == MQ_K__COUNT ? 1 : -1];

static mq_metrics *check_open(lua_State *L)
{
    mx_ud *u = mq_ltag_check(L, 1, METRICS_TAG, MQ_METRICS_MT);
    if (u->m == NULL) luaL_error(L, "metrics is closed");
    return u->m;
}

static int l_new(lua_State *L)
{
    char err[512];
    const char *key, *dir;
    long gid = -1;
    mx_ud *u;

    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushnil(L);
        lua_pushliteral(L, "metrics options must be a table");
        return 2;
    }
    lua_settop(L, 1);
    lua_getfield(L, 1, "key");              /* index 2 */
    lua_getfield(L, 1, "dir");              /* index 3 */
    if (lua_type(L, 2) != LUA_TSTRING || lua_type(L, 3) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushliteral(L, "metrics: key and dir must be strings");
        return 2;
    }
    key = lua_tostring(L, 2);
    dir = lua_tostring(L, 3);
    lua_getfield(L, 1, "group");            /* index 4 */
    if (lua_type(L, 4) == LUA_TSTRING && (gid = mq_shm_group(lua_tostring(L, 4), err,
                                                             sizeof err)) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_settop(L, 3);
    /* the userdata first: if anything below raises, __gc sees m == NULL */
    u = (mx_ud *)mq_lclass_new(L, sizeof *u, METRICS_TAG, MQ_METRICS_MT);   /* m NULL */
    if (mq_metrics_open(key, dir, gid, &u->m, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int check_kind(lua_State *L, int i)
{
    const char *s = luaL_checkstring(L, i);
    for (int k = 0; k < MQ_K__COUNT; k++)
        if (strcmp(s, mq_kind_name((mq_kind)k)) == 0)
            return k;
    return luaL_argerror(L, i, "unknown kind");
}

static double opt_nonneg(lua_State *L, int i)
{
    double v = luaL_optnumber(L, i, 0);
    return v > 0 ? v : 0;
}

/* :add(op, kind, latency, retries, limiter_waits, limiter_wait_seconds [, attempts])
 *   -> true | nil, message (the file was cut short: these counts are lost) */
static int l_add(lua_State *L)
{
    mq_metrics *m = check_open(L);
    int op = luaL_checkoption(L, 2, NULL, ops);
    int kind = check_kind(L, 3);

    if (mq_metrics_add(m, op, kind, opt_nonneg(L, 4), (long)opt_nonneg(L, 8),
                       (long)opt_nonneg(L, 5), (long)opt_nonneg(L, 6), opt_nonneg(L, 7)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, mq_metrics_error(m));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static void set_count(lua_State *L, const char *k, uint64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);   /* a double on 5.1/LuaJIT: exact below 2^53 */
    lua_setfield(L, -2, k);
}

/* :snapshot() -> nil, message when the file was cut short, else
 * { requests = { op = { kind = n } }, attempts, retries,
 *   limiter_waits, limiter_wait_seconds,
 *   latency = { buckets = { { le = s, count = cumulative }, ... }, sum, count } }
 * The last bucket has le = math.huge. Zero counts are left out of requests. */
static int l_snapshot(lua_State *L)
{
    mq_metrics *m = check_open(L);
    mq_metrics_snap s;
    uint64_t cum = 0;

    if (mq_metrics_snapshot(m, &s) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, mq_metrics_error(m));
        return 2;
    }
    lua_createtable(L, 0, 6);
    lua_createtable(L, 0, MQ_MX_OPS);
    for (int o = 0; o < MQ_MX_OPS; o++) {
        lua_createtable(L, 0, 2);
        for (int k = 0; k < MQ_MX_KINDS; k++)
            if (s.calls[o][k])
                set_count(L, mq_kind_name((mq_kind)k), s.calls[o][k]);
        lua_setfield(L, -2, ops[o]);
    }
    lua_setfield(L, -2, "requests");
    set_count(L, "attempts", s.attempts);
    set_count(L, "retries", s.retries);
    set_count(L, "limiter_waits", s.limiter_waits);
    lua_pushnumber(L, s.limiter_wait_seconds);
    lua_setfield(L, -2, "limiter_wait_seconds");

    lua_createtable(L, 0, 3);
    lua_createtable(L, MQ_MX_BUCKETS, 0);
    for (int b = 0; b < MQ_MX_BUCKETS; b++) {
        cum += s.buckets[b];
        lua_createtable(L, 0, 2);
        lua_pushnumber(L, b < MQ_MX_BUCKETS - 1 ? mq_metrics_bounds[b] : HUGE_VAL);
        lua_setfield(L, -2, "le");
        set_count(L, "count", cum);
        lua_rawseti(L, -2, b + 1);
    }
    lua_setfield(L, -2, "buckets");
    lua_pushnumber(L, s.latency_sum);
    lua_setfield(L, -2, "sum");
    set_count(L, "count", s.latency_count);
    lua_setfield(L, -2, "latency");
    return 1;
}

static int l_path(lua_State *L)
{
    lua_pushstring(L, mq_metrics_path(check_open(L)));
    return 1;
}

/* close, __gc and __close: one idempotent function */
static int l_close(lua_State *L)
{
    mx_ud *u = mq_ltag_check(L, 1, METRICS_TAG, MQ_METRICS_MT);
    mq_metrics_close(u->m);
    u->m = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    mx_ud *u = mq_ltag_check(L, 1, METRICS_TAG, MQ_METRICS_MT);
    if (u->m == NULL)
        lua_pushliteral(L, "mediquo.metrics(closed)");
    else
        lua_pushfstring(L, "mediquo.metrics(%s)", mq_metrics_path(u->m));
    return 1;
}

static const luaL_Reg methods[] = {
    { "add", l_add },
    { "snapshot", l_snapshot },
    { "path", l_path },
    { "close", l_close },
    { NULL, NULL },
};

static const luaL_Reg meta[] = {
    { "__gc", l_close },
    { "__close", l_close },
    { "__tostring", l_tostring },
    { NULL, NULL },
};

void mq_lmetrics_open(lua_State *L)
{
    if (mq_lclass(L, MQ_METRICS_MT, meta, methods, NULL)) {
        lua_pushliteral(L, "mediquo.metrics");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "metrics");
}
