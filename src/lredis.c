/* lredis.c: the Lua side of the Redis limiter (limiter_redis.c): the
 * `redis` options of core.limiter (URL, redis_tls, sentinel_auth), the
 * status fields, and what the nginx driver needs to make the round trip on
 * a cosocket without a thread: the sans-I/O steps (redis_begin /
 * redis_finish) and the conversation (redis_conv.c) as an object whose
 * steps say what bytes to move. No Redis message is made or read in Lua. */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "compat.h"
#include "limiter_redis.h"
#include "llimiter_ud.h"
#include "lredis.h"
#include "limiter_redis_script.h"
#include "redis_conv.h"
#include "lclass.h"

#define MQ_CONV_MT  "mediquo.core.redis_conv"
#define CONV_TAG    "mq.rconv"     /* lclass.h: each userdata's first 8 bytes */

/* opts[name], raw: no metamethod of the caller's table runs */
static int rawfield(lua_State *L, int idx, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, idx);
    return lua_type(L, -1);
}

/* url at index uidx, redis_tls at tidx, sentinel_auth at aidx (0: none)
 * into u. 0, or -1 with err naming the field. */
static int parse_url(lua_State *L, int uidx, int tidx, int aidx, mq_redis_url *u,
                     char *err, size_t errlen)
{
    static const char *const fields[] = { "ca_file", "cert_file", "key_file", "server_name",
                                          "verify", NULL };
    char why[400];
    int i;

    if (mq_redis_url_parse(lua_tostring(L, uidx), u, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (tidx && lua_type(L, tidx) == LUA_TTABLE) {
        for (i = 0; fields[i]; i++) {
            int t = rawfield(L, tidx, fields[i]);
            const char *v = t == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "1" : "0")
                          : t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            if (t != LUA_TNIL && (v == NULL || (i == 4) != (t == LUA_TBOOLEAN))) {
                snprintf(err, errlen, "redis_tls.%s must be %s", fields[i],
                         i == 4 ? "a boolean" : "a string");
                lua_pop(L, 1);
                mq_redis_url_free(u);
                return -1;
            }
            if (v && mq_redis_url_tls(u, fields[i], v, why, sizeof why) != 0) {
                snprintf(err, errlen, "redis_tls %s", why);
                lua_pop(L, 1);
                mq_redis_url_free(u);
                return -1;
            }
            lua_pop(L, 1);
        }
    } else if (tidx && lua_type(L, tidx) != LUA_TNIL) {
        snprintf(err, errlen, "redis_tls must be a table");
        mq_redis_url_free(u);
        return -1;
    }
    if (aidx && lua_type(L, aidx) != LUA_TNIL) {
        if (lua_type(L, aidx) != LUA_TSTRING
            || mq_redis_url_sentinel_auth(u, lua_tostring(L, aidx), why, sizeof why) != 0) {
            snprintf(err, errlen, "sentinel_auth %s", lua_type(L, aidx) != LUA_TSTRING
                     ? "must be \"password\" or \"user:password\"" : why);
            mq_redis_url_free(u);
            return -1;
        }
    }
    return 0;
}

/* opts.redis etc. (opts at index 1) for the limiter l just opened. Returns
 * 0, or pushes nil, message, kind ("invalid_argument" | "config") and
 * returns 3. */
int mq_lredis_attach(lua_State *L, mq_limiter *l, const mq_limiter_cfg *cfg)
{
    mq_rdl_cfg rc;
    mq_redis_url u;
    char err[MQ_RCONV_MSG];
    int t, st, top = lua_gettop(L);

    t = rawfield(L, 1, "redis");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING) {
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushliteral(L, "limiter: redis must be a string (a Redis URL)");
        lua_pushliteral(L, "invalid_argument");
        return 3;
    }
    rawfield(L, 1, "redis_tls");
    rawfield(L, 1, "sentinel_auth");
    if (parse_url(L, top + 1, top + 2, top + 3, &u, err, sizeof err) != 0) {
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushliteral(L, "invalid_argument");
        return 3;
    }
    rc.url = &u;
    rawfield(L, 1, "fallback_per_minute");
    rc.fallback = lua_type(L, -1) == LUA_TNUMBER ? (long)lua_tonumber(L, -1) : -1;
    rawfield(L, 1, "redis_timeout");
    rc.timeout = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0.25;
    rawfield(L, 1, "redis_cosocket");
    rc.cosocket = lua_toboolean(L, -1);
    st = mq_rdl_open(l, cfg, &rc, err, sizeof err);
    mq_redis_url_free(&u);
    lua_settop(L, top);
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

typedef struct {
    char tag[MQ_LTAG_LEN];
    mq_rconv *c;
    mq_rconv_step st;
} conv_ud;

static conv_ud *conv_check(lua_State *L)
{
    conv_ud *u = mq_ltag_check(L, 1, CONV_TAG, MQ_CONV_MT);
    if (u->c == NULL) luaL_error(L, "redis conversation is closed");
    return u;
}

/* the step on top, for Lua: "connect" | "send", bytes | "recv" | "done", keep */
static int push_act(lua_State *L, conv_ud *u)
{
    switch (u->st.act) {
    case MQ_RC_CONNECT: lua_pushliteral(L, "connect"); return 1;
    case MQ_RC_SEND:
        lua_pushliteral(L, "send");
        lua_pushlstring(L, u->st.out, u->st.outlen);
        return 2;
    case MQ_RC_RECV: lua_pushliteral(L, "recv"); return 1;
    default:
        lua_pushliteral(L, "done");
        lua_pushboolean(L, u->st.keep);
        return 2;
    }
}

/* conv:target() -> { host, port, path, tls, server_name, verify, cert_file,
 * key_file, where }: where to connect (no password) */
static int c_target(lua_State *L)
{
    conv_ud *u = conv_check(L);
    const char *cert, *key;

    lua_createtable(L, 0, 7);
    if (u->st.host) lua_pushstring(L, u->st.host), lua_setfield(L, -2, "host");
    if (u->st.path) lua_pushstring(L, u->st.path), lua_setfield(L, -2, "path");
    lua_pushinteger(L, u->st.port), lua_setfield(L, -2, "port");
    lua_pushboolean(L, u->st.tls), lua_setfield(L, -2, "tls");
    /* the name to send and check; none for an IP literal without one set:
     * its IP SAN is checked (mediquo.ngx_tls), as redis_tls.c does */
    if (u->st.server_name) lua_pushstring(L, u->st.server_name), lua_setfield(L, -2, "server_name");
    lua_pushboolean(L, mq_rconv_verify(u->c)), lua_setfield(L, -2, "verify");
    mq_rconv_client_files(u->c, &cert, &key);
    if (cert) lua_pushstring(L, cert), lua_setfield(L, -2, "cert_file");
    if (key) lua_pushstring(L, key), lua_setfield(L, -2, "key_file");
    if (u->st.where) lua_pushstring(L, u->st.where), lua_setfield(L, -2, "where");
    return 1;
}

/* conv:connected(reused) -> act... */
static int c_connected(lua_State *L)
{
    conv_ud *u = conv_check(L);
    mq_rconv_connected(u->c, lua_toboolean(L, 2), &u->st);
    return push_act(L, u);
}

static int c_sent(lua_State *L)
{
    conv_ud *u = conv_check(L);
    mq_rconv_sent(u->c, &u->st);
    return push_act(L, u);
}

/* conv:feed(bytes) -> act... */
static int c_feed(lua_State *L)
{
    conv_ud *u = conv_check(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);

    mq_rconv_feed(u->c, s, n, &u->st);
    return push_act(L, u);
}

/* conv:fault(doing|nil, why, setup) -> "done", false: a transport fact */
static int c_fault(lua_State *L)
{
    conv_ud *u = conv_check(L);
    mq_rconv_fault(u->c, luaL_optstring(L, 2, NULL), luaL_checkstring(L, 3), lua_toboolean(L, 4),
                   &u->st);
    return push_act(L, u);
}

static int c_close(lua_State *L)
{
    conv_ud *u = mq_ltag_check(L, 1, CONV_TAG, MQ_CONV_MT);
    mq_rconv_free(u->c);
    u->c = NULL;
    return 0;
}

/* pushes a conversation for the round trip req of limiter l (started: its
 * first step is "connect", from where the budget was last found); 0, or
 * -1 out of memory (the userdata pushed all the same, closed) */
static int push_conv(lua_State *L, mq_limiter *l, const mq_rdl_req *req)
{
    conv_ud *u = (conv_ud *)mq_lclass_new(L, sizeof *u, CONV_TAG, MQ_CONV_MT);   /* zeroed */

    u->c = mq_rconv_new(mq_rdl_url(mq_rdl_of(l)), mq_rdl_script());
    if (u->c) mq_rconv_set_topo(u->c, mq_rdl_topo(mq_rdl_of(l)));
    return u->c == NULL || mq_rconv_start(u->c, MQ_RDL_NKEYS, req->argc, req->argv, &u->st) != 0
        ? -1 : 0;
}

/* :redis_begin(budget [, ahead]) -> 1, at | 0, wait [, fault] | 2, conv,
 * tmo: the round trip to make, as a conversation whose first step is
 * "connect" | (ahead true) 3, at, conv, tmo: admitted, and a round trip
 * ahead to make besides (mq_rdl_begin_ahead; its finish answers 0) */
static int l_begin(lua_State *L)
{
    mq_limiter *l = check_redis(L);
    double budget = luaL_checknumber(L, 2), wait = 0;
    int64_t at = 0;
    mq_rdl_req req;
    int st = lua_toboolean(L, 3) ? mq_rdl_begin_ahead(l, budget, &wait, &at, &req)
                                 : mq_rdl_begin(l, budget, &wait, &at, &req);

    lua_settop(L, 1);
    if (st != 2 && st != 3) return push_step(L, l, st, wait, at);
    lua_pushinteger(L, st);
    if (st == 3) lua_pushinteger(L, (lua_Integer)at);
    if (push_conv(L, l, &req) != 0) {
        /* the round trip is not made: the host hears of it as a failed one */
        int64_t admitted = at;
        int fst;

        lua_settop(L, 1);
        fst = mq_rdl_finish(l, MQ_RV_DOWN, NULL, "redis: out of memory", &wait, &at);
        return st == 3 ? push_step(L, l, 1, 0, admitted) : push_step(L, l, fst, wait, at);
    }
    lua_pushnumber(L, req.tmo);
    return st == 3 ? 4 : 3;
}

/* :redis_contact() -> 0 (not now) | 1, fault | 2, conv, tmo: the first
 * contact's round trip (no slot asked), for nginx's start-up check */
static int l_contact(lua_State *L)
{
    mq_limiter *l = check_redis(L);
    mq_rdl_req req;
    int st = mq_rdl_contact_begin(l, &req);

    if (st != 1) {
        lua_pushinteger(L, st == 0 ? 0 : 1);
        if (st == 0) return 1;
        lua_pushstring(L, mq_limiter_error(l) ? mq_limiter_error(l) : "redis refused");
        return 2;
    }
    lua_pushinteger(L, 2);
    if (push_conv(L, l, &req) != 0) return luaL_error(L, "redis: out of memory");
    lua_pushnumber(L, req.tmo);
    return 3;
}

/* conv:message() -> why the exchange failed, or nil */
static int c_message(lua_State *L)
{
    conv_ud *u = conv_check(L);
    if (u->st.act != MQ_RC_DONE || u->st.verdict == MQ_RV_OK || u->st.msg == NULL) return 0;
    lua_pushstring(L, u->st.msg);
    return 1;
}

/* :redis_finish(conv) -> 1, at | 0, wait [, fault]: the conversation's
 * verdict applied (it must be "done") */
static int l_finish(lua_State *L)
{
    mq_limiter *l = check_redis(L);
    conv_ud *u = mq_ltag_check(L, 2, CONV_TAG, MQ_CONV_MT);
    long long vals[MQ_RCONV_NVALS] = { 0 };
    double wait = 0;
    int64_t at = 0;
    int st, i, v = u->st.act == MQ_RC_DONE ? u->st.verdict
                 : u->c && mq_rconv_unsure(u->c) ? MQ_RV_UNSURE : MQ_RV_DOWN;

    if (v == MQ_RV_OK)
        for (i = 0; i < u->st.nvals; i++) vals[i] = u->st.vals[i];
    if (u->c && u->st.act == MQ_RC_DONE)     /* what it learnt, for the next one */
        *mq_rdl_topo(mq_rdl_of(l)) = *mq_rconv_topo(u->c);
    st = mq_rdl_finish(l, v, vals, u->st.act == MQ_RC_DONE && u->st.msg ? u->st.msg
                       : "redis: the exchange did not end", &wait, &at);
    return push_step(L, l, st, wait, at);
}

/* core.redis_url(url[, redis_tls[, sentinel_auth]]) -> { kind, tls, host,
 * port, path, db, where, auth } | nil, err (never the password) */
static int l_url(lua_State *L)
{
    static const char *const kinds[] = { "single", "unix", "sentinel", "cluster" };
    mq_redis_url u;
    char err[400];

    luaL_checkstring(L, 1);
    if (parse_url(L, 1, lua_gettop(L) >= 2 ? 2 : 0, lua_gettop(L) >= 3 ? 3 : 0, &u, err,
                  sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 8);
    lua_pushstring(L, kinds[u.kind]), lua_setfield(L, -2, "kind");
    lua_pushboolean(L, u.tls), lua_setfield(L, -2, "tls");
    if (u.host) lua_pushstring(L, u.host), lua_setfield(L, -2, "host");
    if (u.path) lua_pushstring(L, u.path), lua_setfield(L, -2, "path");
    if (u.master) lua_pushstring(L, u.master), lua_setfield(L, -2, "master");
    lua_pushinteger(L, u.port), lua_setfield(L, -2, "port");
    lua_pushinteger(L, u.db), lua_setfield(L, -2, "db");
    lua_pushinteger(L, u.nnodes), lua_setfield(L, -2, "nodes");
    lua_pushstring(L, u.where), lua_setfield(L, -2, "where");
    lua_pushboolean(L, u.pass != NULL), lua_setfield(L, -2, "auth");
    mq_redis_url_free(&u);
    return 1;
}

static const luaL_Reg conv_methods[] = {
    { "target", c_target }, { "connected", c_connected }, { "sent", c_sent },
    { "feed", c_feed }, { "fault", c_fault }, { "message", c_message }, { "close", c_close },
    { NULL, NULL },
};

static const luaL_Reg limiter_methods[] = {
    { "redis_begin", l_begin }, { "redis_finish", l_finish }, { "redis_contact", l_contact },
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
    static const luaL_Reg conv_meta[] = {
        { "__gc", c_close },
        { NULL, NULL },
    };
    mq_lclass(L, MQ_CONV_MT, conv_meta, conv_methods, NULL);
    lua_pop(L, 1);
    /* the limiter's method table gets the cosocket steps */
    luaL_getmetatable(L, MQ_LIMITER_MT);
    lua_getfield(L, -1, "__index");
    mq_setfuncs(L, limiter_methods);
    lua_pop(L, 2);
    lua_pushcfunction(L, l_url);
    lua_setfield(L, -2, "redis_url");
    lua_pushcfunction(L, l_script);
    lua_setfield(L, -2, "redis_script");
}
