/* lredis.c: the Lua side of the Redis limiter (limiter_redis.c): the
 * `redis` options of core.limiter, the status fields, and the pieces the
 * nginx driver needs to make the round trip on a cosocket without a
 * thread: the sans-I/O steps (redis_begin / redis_finish), hiredis's
 * command formatter and its reply reader. No RESP is written by hand. */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "compat.h"
#include "limiter_file.h"
#include "limiter_redis.h"
#include "llimiter.h"
#include "lredis.h"
#include "limiter_redis_script.h"
#include "redis_conn.h"
#include "lclass.h"

#define MQ_READER_MT "mediquo.core.redis_reader"

/* opts[name], raw: no metamethod of the caller's table runs */
static int rawfield(lua_State *L, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, 1);
    return lua_type(L, -1);
}

/* opts.redis etc. (opts at index 1) for the limiter l just opened. Returns
 * 0, or pushes nil, message, kind ("invalid_argument" | "config") and
 * returns 3. */
int mq_lredis_attach(lua_State *L, mq_limiter *l, const mq_limiter_cfg *cfg)
{
    mq_rdl_cfg rc;
    char err[300];
    int t, st;

    t = rawfield(L, "redis");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushliteral(L, "limiter: redis must be a string (a redis:// or unix:// URL)");
        lua_pushliteral(L, "invalid_argument");
        return 3;
    }
    rc.url = lua_tostring(L, -1);
    rawfield(L, "fallback_per_minute");
    rc.fallback = lua_type(L, -1) == LUA_TNUMBER ? (long)lua_tonumber(L, -1) : -1;
    rawfield(L, "redis_timeout");
    rc.timeout = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0.25;
    rawfield(L, "redis_cosocket");
    rc.cosocket = lua_toboolean(L, -1);
    lua_pop(L, 3);
    st = mq_rdl_open(l, cfg, &rc, err, sizeof err);
    lua_pop(L, 1);
    if (st == 0) return 0;
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, st == -1 ? "invalid_argument" : "config");
    return 3;
}

/* the fields of status() that only a Redis limiter has, into the table on top */
void mq_lredis_status(lua_State *L, mq_limiter *l)
{
    mq_rdl_status_t st;

    if (mq_rdl_of(l) == NULL) {
        lua_pushliteral(L, "local");
        lua_setfield(L, -2, "backend");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "degraded");
        lua_pushinteger(L, 1);
        lua_setfield(L, -2, "hosts");
        return;
    }
    mq_rdl_status(l, &st);
    lua_pushliteral(L, "redis");
    lua_setfield(L, -2, "backend");
    lua_pushboolean(L, st.degraded);
    lua_setfield(L, -2, "degraded");
    lua_pushinteger(L, st.hosts);
    lua_setfield(L, -2, "hosts");
    lua_pushinteger(L, st.fallback);
    lua_setfield(L, -2, "fallback_per_minute");
    lua_pushinteger(L, st.leased);
    lua_setfield(L, -2, "leased");
    if (st.error[0]) {          /* "error" is the local file's fault, if any */
        lua_pushstring(L, st.error);
        lua_setfield(L, -2, "redis_error");
    }
}

static mq_limiter *check_redis(lua_State *L)
{
    mq_limiter *l = mq_llimiter_get(L, 1);
    if (l == NULL) luaL_error(L, "limiter is closed");
    if (mq_rdl_of(l) == NULL) luaL_error(L, "limiter has no redis");
    return l;
}

/* 1, at | 0, wait [, fault]: fault, a message, when a state file (the
 * lease file or the local one) can no longer be used: a host fault, like
 * the 3rd return of :try(), not a wait */
static int push_step(lua_State *L, mq_limiter *l, int st, double wait, int64_t at)
{
    lua_pushinteger(L, st);
    if (st == 1) {
        lua_pushinteger(L, (lua_Integer)at);
        return 2;
    }
    lua_pushnumber(L, wait);
    if (mq_limiter_error(l) == NULL) return 2;
    lua_pushstring(L, mq_limiter_error(l));
    return 3;
}

/* :redis_begin(budget) -> 1, at | 0, wait [, fault] | 2, argv (keys then args), tmo */
static int l_begin(lua_State *L)
{
    mq_limiter *l = check_redis(L);
    double budget = luaL_checknumber(L, 2), wait = 0;
    int64_t at = 0;
    mq_rdl_req req;
    int st = mq_rdl_begin(l, budget, &wait, &at, &req), i;

    if (st != 2) return push_step(L, l, st, wait, at);
    lua_pushinteger(L, 2);
    lua_createtable(L, req.argc, 0);
    for (i = 0; i < req.argc; i++) {
        lua_pushstring(L, req.argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushnumber(L, req.tmo);
    return 3;
}

/* :redis_finish(reply) where reply is the script's array of integers, or
 * :redis_finish(nil, why, refused) -> 1, at | 0, wait [, fault] */
static int l_finish(lua_State *L)
{
    mq_limiter *l = check_redis(L);
    long long vals[MQ_RDL_NVALS] = { 0 };
    double wait = 0;
    int64_t at = 0;
    int st, i;

    if (lua_type(L, 2) == LUA_TTABLE) {
        for (i = 0; i < MQ_RDL_NVALS; i++) {
            lua_rawgeti(L, 2, i + 1);
            vals[i] = (long long)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        st = mq_rdl_finish(l, MQ_REDIS_OK, vals, NULL, &wait, &at);
    } else {
        st = mq_rdl_finish(l, lua_toboolean(L, 4) ? MQ_REDIS_REFUSED : MQ_REDIS_DOWN, vals,
                           luaL_optstring(L, 3, "redis failed"), &wait, &at);
    }
    return push_step(L, l, st, wait, at);
}

/* :redis_hello() -> { argv of AUTH }|false, { argv of SELECT }|false: what
 * a new connection sends first */
static int l_hello(lua_State *L)
{
    mq_limiter *l = check_redis(L);
    const char *argv[4];
    size_t lens[4];
    mq_redis_url u;
    char err[200];
    int which, n, i;

    (void)l;
    lua_getfield(L, 2, "url");
    if (mq_redis_url_parse(luaL_checkstring(L, -1), &u, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);
    for (which = 0; which < 2; which++) {
        n = mq_redis_hello_argv(&u, which, argv, lens);
        if (n == 0) {
            lua_pushboolean(L, 0);
            continue;
        }
        lua_createtable(L, n, 0);
        for (i = 0; i < n; i++) {
            lua_pushlstring(L, argv[i], lens[i]);
            lua_rawseti(L, -2, i + 1);
        }
    }
    mq_redis_url_free(&u);
    return 2;
}

/* core.redis_url(url) -> { host, port, path, db, where } | nil, err (no password) */
static int l_url(lua_State *L)
{
    mq_redis_url u;
    char err[200];

    if (mq_redis_url_parse(luaL_checkstring(L, 1), &u, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 6);
    if (u.host) lua_pushstring(L, u.host), lua_setfield(L, -2, "host");
    if (u.path) lua_pushstring(L, u.path), lua_setfield(L, -2, "path");
    lua_pushinteger(L, u.port), lua_setfield(L, -2, "port");
    lua_pushinteger(L, u.db), lua_setfield(L, -2, "db");
    lua_pushstring(L, u.where), lua_setfield(L, -2, "where");
    lua_pushboolean(L, u.pass != NULL), lua_setfield(L, -2, "auth");
    mq_redis_url_free(&u);
    return 1;
}

/* core.redis_explain(url, command, error_reply) -> message, refused */
static int l_explain(lua_State *L)
{
    mq_redis_url u;
    char err[300];
    int rc;

    if (mq_redis_url_parse(luaL_checkstring(L, 1), &u, err, sizeof err) != 0) {
        lua_pushstring(L, err);
        lua_pushboolean(L, 1);
        return 2;
    }
    rc = mq_redis_explain(&u, luaL_checkstring(L, 2), luaL_checkstring(L, 3), err, sizeof err);
    mq_redis_url_free(&u);
    lua_pushstring(L, err);
    lua_pushboolean(L, rc == MQ_REDIS_REFUSED);
    return 2;
}

/* core.redis_format{ args... } -> the command's RESP bytes (hiredis) */
static int l_format(lua_State *L)
{
    const char *argv[64];
    size_t lens[64];
    int n, i;
    char *cmd = NULL;
    long long len;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)mq_rawlen(L, 1);
    if (n < 1 || n > 64) return luaL_error(L, "redis_format: 1 to 64 arguments");
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        argv[i] = lua_tolstring(L, -1, &lens[i]);
        if (argv[i] == NULL) return luaL_error(L, "redis_format: argument %d is not a string", i + 1);
        lua_pop(L, 1);          /* the table keeps the string alive */
    }
    len = redisFormatCommandArgv(&cmd, n, argv, lens);
    if (len < 0 || cmd == NULL) return luaL_error(L, "redis_format: out of memory");
    lua_pushlstring(L, cmd, (size_t)len);
    free(cmd);
    return 1;
}

typedef struct { redisReader *r; } reader_ud;

static int r_new(lua_State *L)
{
    reader_ud *u = (reader_ud *)mq_newuserdata(L, sizeof *u);
    u->r = NULL;
    mq_setmetatable(L, MQ_READER_MT);
    u->r = redisReaderCreate();
    if (u->r == NULL) return luaL_error(L, "redis reader: out of memory");
    return 1;
}

static redisReader *r_check(lua_State *L)
{
    reader_ud *u = (reader_ud *)luaL_checkudata(L, 1, MQ_READER_MT);
    if (u->r == NULL) luaL_error(L, "redis reader is closed");
    return u->r;
}

/* a reply as Lua: integer, string, array, false (nil reply), {err = msg} */
static void push_reply(lua_State *L, const redisReply *rep, int depth)
{
    size_t i;

    switch (rep->type) {
    case REDIS_REPLY_INTEGER: lua_pushinteger(L, (lua_Integer)rep->integer); break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: lua_pushlstring(L, rep->str, (size_t)rep->len); break;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, rep->str, (size_t)rep->len);
        lua_setfield(L, -2, "err");
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)rep->elements, 0);
        for (i = 0; i < rep->elements && depth < 4; i++) {
            push_reply(L, rep->element[i], depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    default: lua_pushboolean(L, 0); break;
    }
}

/* reader:feed(bytes) -> true | nil, err */
static int r_feed(lua_State *L)
{
    redisReader *r = r_check(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);

    if (redisReaderFeed(r, s, n) != REDIS_OK) {
        lua_pushnil(L);
        lua_pushstring(L, r->errstr[0] ? r->errstr : "redis reader failed");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* reader:get() -> reply | nil (more bytes needed) | nil, err (not Redis) */
static int r_get(lua_State *L)
{
    redisReader *r = r_check(L);
    void *rep = NULL;

    if (redisReaderGetReply(r, &rep) != REDIS_OK) {
        lua_pushnil(L);
        lua_pushstring(L, r->errstr[0] ? r->errstr : "protocol error");
        return 2;
    }
    if (rep == NULL) {
        lua_pushnil(L);
        return 1;
    }
    push_reply(L, (redisReply *)rep, 0);
    freeReplyObject(rep);
    return 1;
}

static int r_close(lua_State *L)
{
    reader_ud *u = (reader_ud *)luaL_checkudata(L, 1, MQ_READER_MT);
    if (u->r) redisReaderFree(u->r);
    u->r = NULL;
    return 0;
}

static const luaL_Reg reader_methods[] = {
    { "feed", r_feed }, { "get", r_get }, { "close", r_close }, { NULL, NULL },
};

static const luaL_Reg limiter_methods[] = {
    { "redis_begin", l_begin }, { "redis_finish", l_finish }, { "redis_hello", l_hello },
    { NULL, NULL },
};

/* core.redis_script() -> the script text (its SHA1 is what EVALSHA names) */
static int l_script(lua_State *L)
{
    lua_pushstring(L, mq_rdl_script());
    return 1;
}

void mq_lredis_open(lua_State *L)
{
    static const luaL_Reg reader_meta[] = {
        { "__gc", r_close },
        { NULL, NULL },
    };
    mq_lclass(L, MQ_READER_MT, reader_meta, reader_methods, NULL);
    lua_pop(L, 1);
    /* the limiter's method table gets the cosocket steps */
    luaL_getmetatable(L, MQ_LIMITER_MT);
    lua_getfield(L, -1, "__index");
    mq_setfuncs(L, limiter_methods);
    lua_pop(L, 2);
    lua_pushcfunction(L, r_new);
    lua_setfield(L, -2, "redis_reader");
    lua_pushcfunction(L, l_format);
    lua_setfield(L, -2, "redis_format");
    lua_pushcfunction(L, l_url);
    lua_setfield(L, -2, "redis_url");
    lua_pushcfunction(L, l_explain);
    lua_setfield(L, -2, "redis_explain");
    lua_pushcfunction(L, l_script);
    lua_setfield(L, -2, "redis_script");
}
