/* lclient.c: the client userdata of mediquo.core - a transport, a borrowed
 * limiter and the call settings. The secret keys go straight from the
 * options table into the transport's header list; no getter returns them. */
#include "lmq.h"
#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mq_client *mq_lclient_check(lua_State *L, int idx)
{
    mq_client *c = luaL_checkudata(L, idx, MQ_CLIENT_MT);
    if (c->t == NULL)
        luaL_error(L, "mediquo client is closed");
    return c;
}

static double opt_number(lua_State *L, int t, const char *k, double def)
{
    double v;
    lua_getfield(L, t, k);
    v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

static const char *opt_string(lua_State *L, int t, const char *k)
{
    const char *v;
    lua_getfield(L, t, k);
    v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);   /* the table still holds the string: it stays alive */
    return v;
}

static int opt_bool(lua_State *L, int t, const char *k)
{
    int v;
    lua_getfield(L, t, k);
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* core.client(opts) -> client | nil, message */
static int l_client_new(lua_State *L)
{
    mq_transport_cfg tc;
    mq_client *c;
    char err[256];
    const char *base;

    luaL_checktype(L, 1, LUA_TTABLE);
    memset(&tc, 0, sizeof tc);
    tc.api_key = opt_string(L, 1, "api_key");
    tc.secret_key = opt_string(L, 1, "secret_key");
    tc.user_agent = opt_string(L, 1, "user_agent");
    tc.ca_file = opt_string(L, 1, "ca_file");
    tc.insecure = opt_bool(L, 1, "insecure");
    base = opt_string(L, 1, "base_url");
    if (tc.api_key == NULL || tc.secret_key == NULL || base == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, "api_key, secret_key and base_url must be strings");
        return 2;
    }

    c = mq_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);       /* __gc is safe from here on */
    mq_setmetatable(L, MQ_CLIENT_MT);

    c->cfg.timeout = opt_number(L, 1, "timeout", 10);
    c->cfg.connect_timeout = opt_number(L, 1, "connect_timeout", 3);
    c->cfg.deadline = opt_number(L, 1, "deadline", 30);
    c->cfg.max_retries = (int)opt_number(L, 1, "max_retries", 2);
    c->cfg.retry_post = opt_bool(L, 1, "retry_post");
    c->cfg.max_wait = opt_number(L, 1, "max_wait", 10);
    c->cfg.limiter_period = opt_number(L, 1, "limiter_period", 60);
    c->rng = mq_rand_seed();

    c->base_len = strlen(base);
    while (c->base_len > 0 && base[c->base_len - 1] == '/')
        c->base_len--;
    if (c->base_len > MQ_URL_MAX / 2) {
        lua_pushnil(L);
        lua_pushstring(L, "base_url is too long");
        return 2;
    }
    c->base = malloc(c->base_len + 1);
    if (c->base == NULL)
        return luaL_error(L, "out of memory");
    memcpy(c->base, base, c->base_len);
    c->base[c->base_len] = '\0';

    lua_getfield(L, 1, "limiter");
    if (!lua_isnil(L, -1)) {
        c->lim = mq_llimiter_get(L, -1);
        if (c->lim == NULL) {
            lua_pushnil(L);
            lua_pushstring(L, "limiter must be an open mediquo.core limiter");
            return 2;
        }
        /* keep the limiter alive as long as we are (a table: 5.1 fenvs must be) */
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        mq_setuservalue(L, -2);
    } else {
        lua_pop(L, 1);
    }

    if (mq_transport_new(&tc, &c->t, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int build_url(lua_State *L, mq_client *c, char *url)
{
    size_t plen;
    const char *path = luaL_checklstring(L, 3, &plen);
    if (c->base_len + plen + 1 > MQ_URL_MAX)
        return luaL_argerror(L, 3, "path too long");
    memcpy(url, c->base, c->base_len);
    memcpy(url + c->base_len, path, plen);
    url[c->base_len + plen] = '\0';
    return 0;
}

static mq_method check_method(lua_State *L)
{
    mq_method m;
    if (mq_method_parse(luaL_checkstring(L, 2), &m) != 0)
        luaL_argerror(L, 2, "method must be POST, PUT or DELETE");
    return m;
}

int mq_lclient_push_result(lua_State *L, const mq_result *res)
{
    lua_pushstring(L, mq_kind_name(res->kind));
    if (res->status > 0) lua_pushinteger(L, res->status); else lua_pushnil(L);
    lua_pushlstring(L, res->body, res->body_len);
    lua_pushinteger(L, res->attempts);
    lua_pushboolean(L, res->ambiguous_before);
    if (res->retry_after >= 0) lua_pushnumber(L, res->retry_after); else lua_pushnil(L);
    if (res->message[0]) lua_pushstring(L, res->message); else lua_pushnil(L);
    lua_pushboolean(L, res->retryable);
    return 8;
}

/* client:call(method, path, body|nil [, deadline [, max_retries]]) ->
 *   kind, status|nil, body, attempts, ambiguous_before, retry_after|nil, message|nil, retryable */
static int l_client_call(lua_State *L)
{
    mq_client *c = mq_lclient_check(L, 1);
    mq_method m = check_method(L);
    char url[MQ_URL_MAX];
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &blen);
    mq_call_cfg cfg = c->cfg;   /* a call may narrow its own deadline and retries */
    mq_result res;

    cfg.deadline = luaL_optnumber(L, 5, cfg.deadline);
    cfg.max_retries = (int)luaL_optinteger(L, 6, cfg.max_retries);
    build_url(L, c, url);
    mq_call(c->t, c->lim, &cfg, &c->st, &c->rng, m, url, body, blen, &res);
    return mq_lclient_push_result(L, &res);
}

static const char *const outcome_names[] = {
    "ok", "connect", "tls", "timeout", "reset", "too_big", "failed", "connect_timeout",
};

/* client:attempt(method, path, body|nil, timeout, connect_timeout) -> one
 * attempt, no limiter, no retry (the nginx adapter drives those itself):
 *   outcome, status|nil, body, retry_after|nil, rl_remaining|nil, rl_limit|nil,
 *   rl_reset|nil, message|nil, resent
 * status is also given for a too-big body; resent: libcurl sent the request
 * a second time on a fresh connection (the first may have been processed). */
static int l_client_attempt(lua_State *L)
{
    mq_client *c = mq_lclient_check(L, 1);
    mq_method m = check_method(L);
    static const char *const names[] = { "POST", "PUT", "DELETE" };
    char url[MQ_URL_MAX];
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &blen);
    double timeout = luaL_optnumber(L, 5, c->cfg.timeout);
    double ctimeout = luaL_optnumber(L, 6, c->cfg.connect_timeout);
    mq_response r;

    build_url(L, c, url);
    mq_transport_perform(c->t, names[m], url, body, blen, timeout, ctimeout, &r);
    c->st.requests++;
    lua_pushstring(L, outcome_names[r.outcome]);
    if ((r.outcome == MQ_T_OK || r.outcome == MQ_T_TOO_BIG) && r.status > 0)
        lua_pushinteger(L, r.status);
    else
        lua_pushnil(L);
    lua_pushlstring(L, r.body, r.body_len);
    if (r.retry_after >= 0) lua_pushnumber(L, r.retry_after); else lua_pushnil(L);
    if (r.rl_remaining >= 0) lua_pushinteger(L, r.rl_remaining); else lua_pushnil(L);
    if (r.rl_limit >= 0) lua_pushinteger(L, r.rl_limit); else lua_pushnil(L);
    if (r.rl_reset >= 0) lua_pushnumber(L, r.rl_reset); else lua_pushnil(L);
    if (r.message[0]) lua_pushstring(L, r.message); else lua_pushnil(L);
    lua_pushboolean(L, r.resent);
    return 9;
}

static int l_client_stats(lua_State *L)
{
    mq_client *c = luaL_checkudata(L, 1, MQ_CLIENT_MT);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, c->st.requests);
    lua_setfield(L, -2, "requests");
    lua_pushinteger(L, c->st.retries);
    lua_setfield(L, -2, "retries");
    lua_pushinteger(L, c->st.limiter_waits);
    lua_setfield(L, -2, "limiter_waits");
    lua_pushnumber(L, c->st.limiter_wait_seconds);
    lua_setfield(L, -2, "limiter_wait_seconds");
    return 1;
}

/* close, __gc and __close: one idempotent function */
static int l_client_close(lua_State *L)
{
    mq_client *c = luaL_checkudata(L, 1, MQ_CLIENT_MT);
    mq_transport_free(c->t);
    c->t = NULL;
    free(c->base);
    c->base = NULL;
    c->lim = NULL;
    return 0;
}

static int l_client_tostring(lua_State *L)
{
    mq_client *c = luaL_checkudata(L, 1, MQ_CLIENT_MT);
    if (c->t == NULL)
        lua_pushstring(L, "mediquo.core.client (closed)");
    else
        lua_pushfstring(L, "mediquo.core.client (%s)", c->base);
    return 1;
}

void mq_lclient_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "call", l_client_call },
        { "attempt", l_client_attempt },
        { "stats", l_client_stats },
        { "close", l_client_close },
        { NULL, NULL },
    };
    if (luaL_newmetatable(L, MQ_CLIENT_MT)) {
        lua_newtable(L);
        mq_setfuncs(L, methods);
        mq_lbatch_open(L);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_client_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_client_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, l_client_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "mediquo.core.client");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_client_new);
    lua_setfield(L, -2, "client");
}
