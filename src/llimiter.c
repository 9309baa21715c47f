/* llimiter.c: the Lua binding of the shared rate limiter (limiter.c):
 * core.limiter{...} -> userdata with acquire/try/pause/resume/observe/
 * status/close, core.limiter_now() (the limiter's clock, for tests and
 * logs) and core.limiter_default_dir([group]).
 * Options arrive validated by mediquo.limiter; this file still checks every
 * type so that no input can crash it, and reads the options table raw (no
 * metamethod of a caller's table runs here). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* compat.h (lua.h) first: the headers below include it inside their
 * visibility(hidden) push, which would hide the Lua API itself */
#include "compat.h"
#include "llimiter.h"
#include "lredis.h"
#include "shmfile.h"
#include "limiter_redis.h"
#include "lclass.h"

typedef mq_llimiter_ud lim_ud;

static mq_limiter *check_open(lua_State *L)
{
    lim_ud *u = mq_ltag_check(L, 1, MQ_LIMITER_TAG, MQ_LIMITER_MT);
    if (u->l == NULL) luaL_error(L, "limiter is closed");
    return u->l;
}

/* opts[name] without metamethods, pushed */
static int rawfield(lua_State *L, int idx, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, idx);
    return lua_type(L, -1);
}

/* The rule (per_minute, burst, period) from opts (the table at idx, read
 * raw; args 0) or from the values at idx, idx + 1, idx + 2 (args 1), checked
 * by the one table (limiter_opts.c) into v, defaults filled in. NULL, or
 * why not with *field. */
static const char *read_rule(lua_State *L, int idx, int args, double v[MQ_RULE__COUNT],
                             const char **field)
{
    const char *why = NULL;
    int given[MQ_RULE__COUNT], i, t;

    for (i = 0; i < MQ_RULE__COUNT; i++) {
        if (args) lua_pushvalue(L, idx + i);
        else rawfield(L, idx, mq_limiter_rule_fields[i]);
        t = lua_type(L, -1);
        given[i] = t != LUA_TNIL;
        v[i] = t == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : NAN;   /* a non-number fails */
        lua_pop(L, 1);
    }
    return mq_limiter_check_rule(v, given, field, &why) == 0 ? NULL : why;
}

/* core.limiter_rule(per_minute, burst, period) -> per_minute, burst, period
 * (nil ones given their defaults) | nil, field, why: what mediquo.limiter
 * asks instead of checking the rule itself */
static int l_rule(lua_State *L)
{
    double v[MQ_RULE__COUNT];
    const char *field, *why;

    lua_settop(L, 3);
    if ((why = read_rule(L, 1, 1, v, &field)) != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, field);
        lua_pushstring(L, why);
        return 3;
    }
    lua_pushinteger(L, (lua_Integer)v[MQ_RULE_PER_MINUTE]);
    lua_pushinteger(L, (lua_Integer)v[MQ_RULE_BURST]);
    lua_pushnumber(L, v[MQ_RULE_PERIOD]);
    return 3;
}

static int l_new(lua_State *L)
{
    double v[MQ_RULE__COUNT];
    const char *why, *field = "options";
    mq_limiter_cfg cfg;
    char err[512];
    lim_ud *u;

    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushnil(L);
        lua_pushstring(L, "limiter options must be a table");
        return 2;
    }
    lua_settop(L, 1);
    why = read_rule(L, 1, 0, v, &field);
    rawfield(L, 1, "key");                  /* index 2 */
    rawfield(L, 1, "dir");                  /* index 3 */
    rawfield(L, 1, "group");                /* index 4 */
    if (!why && lua_type(L, 2) != LUA_TSTRING) why = "must be a string", field = "key";
    if (!why && lua_type(L, 3) != LUA_TSTRING) why = "must be a string", field = "dir";
    if (!why && !lua_isnil(L, 4) && lua_type(L, 4) != LUA_TSTRING)
        why = "must be a group name", field = "group";
    if (!why) {
        size_t klen, dlen;
        const char *k = lua_tolstring(L, 2, &klen), *d = lua_tolstring(L, 3, &dlen);
        if (strlen(k) != klen) why = "must not hold a NUL byte", field = "key";
        else if (strlen(d) != dlen) why = "must not hold a NUL byte", field = "dir";
    }
    if (why) {
        lua_pushnil(L);
        lua_pushfstring(L, "limiter: %s %s", field, why);
        return 2;
    }
    cfg.per_minute = (long)v[MQ_RULE_PER_MINUTE];
    cfg.burst = (long)v[MQ_RULE_BURST];
    cfg.period = v[MQ_RULE_PERIOD];
    cfg.key = lua_tostring(L, 2);
    cfg.dir = lua_tostring(L, 3);
    cfg.gid = -1;
    rawfield(L, 1, "existing");             /* index 5 */
    if (lua_type(L, 4) == LUA_TSTRING
        && (cfg.gid = mq_shm_group(lua_tostring(L, 4), err, sizeof err)) < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "limiter: %s", err);
        return 2;
    }

    /* the userdata first: if anything below raises, __gc sees l == NULL */
    u = (lim_ud *)mq_lclass_new(L, sizeof *u, MQ_LIMITER_TAG, MQ_LIMITER_MT);   /* l NULL */
    if ((lua_toboolean(L, 5) ? mq_limiter_open_existing : mq_limiter_open)(&cfg, &u->l, err,
                                                                           sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (mq_lredis_attach(L, u->l, &cfg) != 0) {     /* nil, message, kind */
        mq_limiter_close(u->l);
        u->l = NULL;
        return 3;
    }
    return 1;
}

/* :acquire(max_wait) -> true, waited, at | nil, retry_after [, fault] */
static int l_acquire(lua_State *L)
{
    mq_limiter *l = check_open(L);
    double max_wait = luaL_optnumber(L, 2, 0), waited, retry_after;
    int64_t at = 0;

    if (mq_limiter_acquire_at(l, max_wait, &waited, &retry_after, &at)) {
        lua_pushboolean(L, 1);
        lua_pushnumber(L, waited);
        lua_pushinteger(L, (lua_Integer)at);
        return 3;
    }
    lua_pushnil(L);
    lua_pushnumber(L, retry_after);
    if (mq_limiter_error(l) == NULL) return 2;
    lua_pushstring(L, mq_limiter_error(l));
    return 3;
}

/* :try() -> true, at | false, wait [, fault]: fault, a message, when the
 * state file can no longer be used (a host fault, not a wait) */
static int l_try(lua_State *L)
{
    mq_limiter *l = check_open(L);
    double wait = 0;
    int64_t at = 0;

    if (mq_limiter_try_at(l, &wait, &at)) {
        lua_pushboolean(L, 1);
        lua_pushinteger(L, (lua_Integer)at);
        return 2;
    }
    lua_pushboolean(L, 0);
    lua_pushnumber(L, wait);
    if (mq_limiter_error(l) == NULL) return 2;
    lua_pushstring(L, mq_limiter_error(l));
    return 3;
}

/* :pause([seconds]) -- no seconds: until the end of the window */
static int l_pause(lua_State *L)
{
    mq_limiter *l = check_open(L);
    mq_limiter_pause(l, luaL_optnumber(L, 2, -1));
    return 0;
}

/* :set_rule(per_minute, burst, period) -> true | nil, message */
static int l_set_rule(lua_State *L)
{
    mq_limiter *l = check_open(L);
    double v[MQ_RULE__COUNT];
    const char *field, *why;
    char err[512];

    luaL_checknumber(L, 2);
    luaL_checknumber(L, 3);
    luaL_checknumber(L, 4);
    if ((why = read_rule(L, 2, 1, v, &field)) != NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "limiter: %s %s", field, why);
        return 2;
    }
    if (mq_limiter_set_rule(l, (long)v[MQ_RULE_PER_MINUTE], (long)v[MQ_RULE_BURST],
                            v[MQ_RULE_PERIOD], err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* :resume() -- clears a pause for every process sharing the key */
static int l_resume(lua_State *L)
{
    mq_limiter_resume(check_open(L));
    return 0;
}

static long opt_long(lua_State *L, int i)
{
    double v;
    if (lua_isnoneornil(L, i)) return -1;
    v = luaL_checknumber(L, i);
    if (!(v >= 0)) return -1;
    return v > 1e15 ? (long)1e15 : (long)v;
}

/* :observe(remaining, limit, reset_in) -- nil for what the server omitted */
static int l_observe(lua_State *L)
{
    mq_limiter *l = check_open(L);
    long remaining = opt_long(L, 2), limit = opt_long(L, 3);
    double reset_in = lua_isnoneornil(L, 4) ? -1 : luaL_checknumber(L, 4);

    mq_limiter_observe(l, remaining, limit, reset_in);
    return 0;
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, long v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

/* :status() -> { per_minute, used, available, paused_until,
 *                rule = { per_minute, burst, period, set_at, set_by_pid,
 *                         set_by_uid }, mismatch = true | nil, error = msg | nil } */
static int l_status(lua_State *L)
{
    mq_limiter *l = check_open(L);
    mq_limiter_status_t st;

    mq_limiter_status(l, &st);
    lua_createtable(L, 0, 6);
    set_int(L, "per_minute", st.per_minute);
    set_int(L, "used", st.used);
    set_int(L, "available", mq_rdl_remaining(l, st.available));
    set_num(L, "paused_until", st.paused_until);
    mq_lredis_status(L, l);                 /* backend, degraded, hosts[, error] */
    if (mq_limiter_error(l) != NULL) {
        lua_pushstring(L, mq_limiter_error(l));
        lua_setfield(L, -2, "error");
        return 1;
    }
    lua_createtable(L, 0, 6);
    set_int(L, "per_minute", st.per_minute);
    set_int(L, "burst", st.burst);
    set_num(L, "period", st.period);
    set_num(L, "set_at", st.rule_set_at);
    set_int(L, "set_by_pid", st.rule_set_by_pid);
    set_int(L, "set_by_uid", st.rule_set_by_uid);
    lua_setfield(L, -2, "rule");
    if (st.mismatch) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "mismatch");
    }
    return 1;
}

/* :budget() -> per_minute, available | nothing (the file is unusable):
 * what a gateway's X-RateLimit-Limit / -Remaining say, without the table
 * :status() makes (mediquo.ngx.reply calls it on every answer); with
 * Redis, available is the fleet's as the host last heard it
 * (mq_rdl_remaining) */
static int l_budget(lua_State *L)
{
    mq_limiter *l = check_open(L);
    mq_limiter_status_t st;

    if (mq_limiter_error(l) != NULL)
        return 0;
    mq_limiter_status(l, &st);
    lua_pushinteger(L, (lua_Integer)st.per_minute);
    lua_pushinteger(L, (lua_Integer)mq_rdl_remaining(l, st.available));
    return 2;
}

/* :path() -> the state file (for operators and specs) */
static int l_path(lua_State *L)
{
    lua_pushstring(L, mq_limiter_path(check_open(L)));
    return 1;
}

/* close, __gc and __close: one idempotent function */
static int l_close(lua_State *L)
{
    lim_ud *u = mq_ltag_check(L, 1, MQ_LIMITER_TAG, MQ_LIMITER_MT);
    mq_limiter_close(u->l);
    u->l = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lim_ud *u = mq_ltag_check(L, 1, MQ_LIMITER_TAG, MQ_LIMITER_MT);
    mq_limiter_status_t st;

    if (u->l == NULL) {
        lua_pushliteral(L, "mediquo.limiter(closed)");
        return 1;
    }
    mq_limiter_status(u->l, &st);
    lua_pushfstring(L, "mediquo.limiter(key=%s, per_minute=%d)",
                    mq_limiter_key(u->l), (int)st.per_minute);
    return 1;
}

#ifdef MQ_TESTING
/* Test hook for the frozen-sharer specs: claims a slot and stops before
 * finishing the admission. Refused unless MEDIQUO_TEST_HOOKS is set, so no
 * production script can hang on it. */
static int l_freeze(lua_State *L)
{
    mq_limiter *l = check_open(L);
    if (getenv("MEDIQUO_TEST_HOOKS") == NULL)
        return luaL_error(L, "test hook disabled (set MEDIQUO_TEST_HOOKS)");
    mq_limiter_freeze_mid_admission(l);
    return 0;
}

/* Test hook for the window's count: lim:_used_both(off) -> the starts in
 * the window searched from a hint off slots past the oldest, and by plain
 * halving, at one instant with no admission between | nothing when other
 * processes kept admitting (spec 07 holds the two equal). */
static int l_used_both(lua_State *L)
{
    mq_limiter *l = check_open(L);
    uint64_t a, b;
    int rc;
    if (getenv("MEDIQUO_TEST_HOOKS") == NULL)
        return luaL_error(L, "test hook disabled (set MEDIQUO_TEST_HOOKS)");
    rc = mq_limiter_used_both(l, (int64_t)luaL_checkinteger(L, 2), &a, &b);
    if (rc < 0)
        return luaL_error(L, "limiter unusable");
    if (rc > 0)
        return 0;
    lua_pushinteger(L, (lua_Integer)a);
    lua_pushinteger(L, (lua_Integer)b);
    return 2;
}

/* Test hook for the frozen-holder spec of the Redis limiter: takes the
 * host's lease lock and stops this process (SIGSTOP) holding it; once
 * continued, releases it -> true | false [, fault] (the file was cut short
 * meanwhile). Refused like the one above. */
static int l_hold_lease(lua_State *L)
{
    mq_limiter *l = check_open(L);
    if (getenv("MEDIQUO_TEST_HOOKS") == NULL)
        return luaL_error(L, "test hook disabled (set MEDIQUO_TEST_HOOKS)");
    if (mq_rdl_of(l) == NULL) return luaL_error(L, "limiter has no redis");
    lua_pushboolean(L, mq_rdl_hold_lease_lock(l) == 0);
    if (mq_limiter_error(l) == NULL) return 1;
    lua_pushstring(L, mq_limiter_error(l));
    return 2;
}
#endif

/* core.limiter_now() -> CLOCK_MONOTONIC ns, the clock of the ring */
static int l_now(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)mq_rl_now_ns());
    return 1;
}

/* core.limiter_default_dir([group]) -> path | nil, message: the private
 * directory of this user (or group), made when missing */
static int l_default_dir(lua_State *L)
{
    char err[512];
    long gid = -1;
    char *p;

    if (!lua_isnoneornil(L, 1)
        && (gid = mq_shm_group(luaL_checkstring(L, 1), err, sizeof err)) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if ((p = mq_shm_default_dir(gid, err, sizeof err)) == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, p);
    free(p);
    return 1;
}

static const luaL_Reg methods[] = {
    { "acquire", l_acquire },
    { "try", l_try },
    { "pause", l_pause },
    { "resume", l_resume },
    { "set_rule", l_set_rule },
    { "observe", l_observe },
    { "status", l_status },
    { "budget", l_budget },
    { "path", l_path },
    { "close", l_close },
#ifdef MQ_TESTING
    /* test builds only (make test-build): never in the shipped module */
    { "_freeze_mid_admission", l_freeze },
    { "_hold_lease_lock", l_hold_lease },
    { "_used_both", l_used_both },
#endif
    { NULL, NULL },
};

static const luaL_Reg meta[] = {
    { "__gc", l_close },
    { "__close", l_close },
    { "__tostring", l_tostring },
    { NULL, NULL },
};

void mq_llimiter_open(lua_State *L)
{
    if (mq_lclass(L, MQ_LIMITER_MT, meta, methods, NULL)) {
        lua_pushliteral(L, "mediquo.limiter");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "limiter");
    lua_pushcfunction(L, l_now);
    lua_setfield(L, -2, "limiter_now");
    lua_pushcfunction(L, l_rule);
    lua_setfield(L, -2, "limiter_rule");
    lua_pushinteger(L, MQ_LIMITER_MAX_PER_MIN);
    lua_setfield(L, -2, "LIMITER_MAX_PER_MINUTE");
    lua_pushcfunction(L, l_default_dir);
    lua_setfield(L, -2, "limiter_default_dir");
}
