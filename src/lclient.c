/* lclient.c: the client userdata of mediquo.core - a transport, a borrowed
 * limiter and an engine - and its create, reschedule and cancel, each one
 * C call that runs the engine through the blocking driver (driver_easy.c).
 * The secret keys go straight from the options table into the transport's
 * header list and the engine's scrub; no getter returns them. */
#include "lclient.h"
#include "llimiter.h"
#include "lengine.h"
#include "driver_easy.h"
#include "clock.h"
#include "lopt.h"
#include "lclass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mq_transport *mq_lclient_transport(mq_client *c) { return c->t; }
mq_limiter *mq_lclient_limiter(mq_client *c) { return c->lim; }
mq_engine *mq_lclient_engine(mq_client *c) { return c->e; }

void mq_lclient_methods(lua_State *L)
{
    luaL_getmetatable(L, MQ_CLIENT_MT);
    lua_getfield(L, -1, "__index");
    lua_remove(L, -2);
}

mq_client *mq_lclient_check(lua_State *L, int idx)
{
    mq_client *c = mq_ltag_check(L, idx, MQ_CLIENT_TAG, MQ_CLIENT_MT);
    if (c->t == NULL)
        luaL_error(L, "mediquo client is closed");
    return c;
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
    tc.api_key = mq_opt_string(L, 1, "api_key");
    tc.secret_key = mq_opt_string(L, 1, "secret_key");
    tc.user_agent = mq_opt_string(L, 1, "user_agent");
    tc.ca_file = mq_opt_string(L, 1, "ca_file");
    tc.insecure = mq_opt_bool(L, 1, "insecure");
    base = mq_opt_string(L, 1, "base_url");
    if (tc.api_key == NULL || tc.secret_key == NULL || base == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, "api_key, secret_key and base_url must be strings");
        return 2;
    }

    c = mq_lclass_new(L, sizeof *c, MQ_CLIENT_TAG, MQ_CLIENT_MT);   /* zeroed: __gc is safe */

    mq_engine_call_init(&c->call);

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

    {
        mq_engine_cfg ec;
        mq_lengine_cfg(L, 1, &ec);
        if (c->lim == NULL)
            ec.max_wait = -1;       /* no limiter: no slot to wait for */
        if (mq_engine_new(&ec, mq_rand_seed(), &c->e, err, sizeof err) != 0) {
            lua_pushnil(L);
            lua_pushstring(L, err);
            return 2;
        }
    }
    if (mq_transport_new(&tc, &c->t, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

/* One operation, start to end: the arguments checked, the engine driven
 * by the blocking driver, the result pushed. */
static int run(lua_State *L, mq_op op)
{
    mq_client *c = mq_lclient_check(L, 1);
    mq_step st;

    lua_settop(L, 3);
    st = mq_lengine_start(L, c->e, &c->call, op, 2, 3, 0, mq_now());
    mq_drive_easy(c->t, c->lim, &c->call, st);
    return mq_lengine_push_result(L, &c->call);
}

/* client:create(a) -> { code, url } | nil, err (a plain table) */
static int l_client_create(lua_State *L)
{
    return run(L, MQ_OP_CREATE);
}

/* client:reschedule(code, starts_at) -> { code, url } | nil, err */
static int l_client_reschedule(lua_State *L)
{
    return run(L, MQ_OP_RESCHEDULE);
}

/* client:cancel(code) -> true | nil, err */
static int l_client_cancel(lua_State *L)
{
    return run(L, MQ_OP_CANCEL);
}

/* client:webhooks() -> the list's JSON | nil, err; client:subscribe(t),
 * client:update_subscription(id, t) -> the subscription's JSON | nil, err;
 * client:unsubscribe(id) -> true | nil, err (mediquo.lua decodes) */
static int l_client_webhooks(lua_State *L) { return run(L, MQ_OP_WH_LIST); }
static int l_client_subscribe(lua_State *L) { return run(L, MQ_OP_WH_SUBSCRIBE); }
static int l_client_update_subscription(lua_State *L) { return run(L, MQ_OP_WH_UPDATE); }
static int l_client_unsubscribe(lua_State *L) { return run(L, MQ_OP_WH_UNSUBSCRIBE); }

/* client:stats() -> the engine's counters (batches run on the same engine) */
static int l_client_stats(lua_State *L)
{
    mq_client *c = mq_ltag_check(L, 1, MQ_CLIENT_TAG, MQ_CLIENT_MT);
    mq_engine_stats st;
    if (c->e != NULL)
        st = *mq_engine_stats_of(c->e);
    else
        memset(&st, 0, sizeof st);
    mq_lengine_push_stats(L, &st);
    return 1;
}

/* close, __gc and __close: one idempotent function */
static int l_client_close(lua_State *L)
{
    mq_client *c = mq_ltag_check(L, 1, MQ_CLIENT_TAG, MQ_CLIENT_MT);
    mq_transport_free(c->t);
    c->t = NULL;
    mq_engine_call_free(&c->call);
    mq_engine_free(c->e);
    c->e = NULL;
    c->lim = NULL;
    return 0;
}

static int l_client_tostring(lua_State *L)
{
    mq_client *c = mq_ltag_check(L, 1, MQ_CLIENT_TAG, MQ_CLIENT_MT);
    if (c->t == NULL || c->e == NULL)
        lua_pushstring(L, "mediquo.core.client (closed)");
    else    /* the engine's base URL: parsed, no user info in it */
        lua_pushfstring(L, "mediquo.core.client (%s)", mq_engine_config(c->e)->base_url);
    return 1;
}

void mq_lclient_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "create", l_client_create },
        { "reschedule", l_client_reschedule },
        { "cancel", l_client_cancel },
        { "webhooks", l_client_webhooks },
        { "subscribe", l_client_subscribe },
        { "update_subscription", l_client_update_subscription },
        { "unsubscribe", l_client_unsubscribe },
        { "stats", l_client_stats },
        { "close", l_client_close },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__gc", l_client_close },
        { "__close", l_client_close },
        { "__tostring", l_client_tostring },
        { NULL, NULL },
    };
    mq_lclass(L, MQ_CLIENT_MT, meta, methods, "mediquo.core.client");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_client_new);
    lua_setfield(L, -2, "client");
}
