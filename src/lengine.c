/* lengine.c: the Lua binding of the call engine (engine.c) - the step API
 * a driver written in Lua (mediquo.ngx on cosockets) runs a call with:
 *
 *   eng = core.engine{ base_url=, timeout=, connect_timeout=, deadline=, max_retries=,
 *                      retry_post=, max_wait=, limiter_period=, api_key=, secret_key= }
 *         -> eng | nil, msg     (keys only to scrub them; max_wait absent or
 *                                false: no limiter, so no "slot" action)
 *   call, action, step = eng:start(op, a, b, now [, resumed [, done_call [, lim]]])
 *         op "create"|"reschedule"|"cancel"; a, b as the public API;
 *         resumed: an earlier run may have sent it (batches, imports);
 *         lim: a local core.limiter, a free slot taken at once (below)
 *   action, step: what to do next and the named fields of its mq_step:
 *         "slot",    { max_wait = seconds it may wait for a limiter slot,
 *                      until = no slot after this moment }
 *         "backoff", { backoff = seconds to wait, until = when to wake }
 *         "send" or "done", nil (send: the deadline is in the request's
 *                      timeouts; done: call:result())
 *   method, path, body|nil, timeout, connect_timeout = call:request()
 *   action, step = call:slot(granted, waited, retry_after|nil, now)
 *   action, step = call:response(res, now)   -- res: the answer as a table,
 *         as mediquo.ngx_http's attempt returns it (lua-resty-http's `res`):
 *         { status =, body =, retry_after =, rl_remaining =, rl_limit =,
 *           rl_reset = } (all but status may be nil)
 *   action, step = call:failure(outcome, message|nil, now [, status])
 *         outcome: connect, connect_timeout, tls, timeout, reset, too_big,
 *         failed; or "resent": the driver sent this attempt again on a
 *         fresh connection after a reused one died with no answer (an
 *         earlier send may have been processed). For PUT and DELETE the
 *         answer is "send" (send the same request once more: not a new
 *         attempt, no new slot); a POST is never re-sent: like "reset".
 *   action, step = call:fault(what, why)         -- the host's setup failed
 *   action, step = call:wake(now)                -- after a backoff
 *   what, a1, a2, a3 = call:limiter_note()        -- about the last response:
 *         nil | "pause", seconds | "observe", remaining, limit|nil, reset|nil
 *   value, err = call:result()   -- value {code=,url=} or true; err a plain table
 *         (kind, status, message, retryable, retry_after, attempts, method, path,
 *          fields, effect) that mediquo.errors wraps
 *   eng:stats()                  -- requests, retries, ok, by_kind, limiter_waits,
 *                                   limiter_wait_seconds
 *
 * `now` is the driver's monotonic clock (core.now()). Calling a step the
 * call is not waiting for raises (a driver bug, not an input). */
#include "lengine.h"
#include "lcheck.h"
#include "answer.h"
#include "lopt.h"
#include "lclass.h"
#include "llimiter_ud.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENGINE_TAG "mq.engin"    /* lclass.h: each userdata's first 8 bytes */
#define CALL_TAG   "mq.ecall"

typedef struct {
    char tag[MQ_LTAG_LEN];
    mq_engine *e;           /* NULL once collected */
} lengine;

typedef struct {
    char tag[MQ_LTAG_LEN];
    mq_ecall c;
    int started;
} lcall;

/* ---- starting a call ------------------------------------------------------ */

mq_step mq_lengine_start(lua_State *L, mq_engine *e, mq_ecall *c, mq_op op, int ia, int ib,
                         int resumed, double now)
{
    mq_op_args a;
    const char *field, *why;
    char buf[MQ_WHY_LEN];

    if (mq_check_op(L, op, ia, ib, &a, &field, &why, buf) != 0)
        return mq_engine_refuse(e, c, op, MQ_K_INVALID_ARGUMENT, field, why);
    a.resumed = resumed;
    return mq_engine_start(e, c, &a, now);
}

/* ---- results ----------------------------------------------------------------- */

static void set_str(lua_State *L, const char *k, const char *v, size_t len)
{
    lua_pushlstring(L, v, len);
    lua_setfield(L, -2, k);
}

int mq_lengine_push_result(lua_State *L, const mq_ecall *c)
{
    mq_engine_error err;

    if (mq_engine_ok(c) && MQ_OP_IS_WEBHOOK(c->op)) {
        const char *body;
        size_t len;
        mq_engine_body(c, &body, &len);
        if (body == NULL)
            lua_pushboolean(L, 1);
        else
            lua_pushlstring(L, body, len);
        return 1;
    }
    if (mq_engine_ok(c)) {
        const char *code, *url;
        size_t code_len, url_len;
        mq_engine_appointment(c, &code, &code_len, &url, &url_len);
        if (code == NULL) {
            lua_pushboolean(L, 1);
            return 1;
        }
        lua_createtable(L, 0, 2);
        set_str(L, "code", code, code_len);
        set_str(L, "url", url, url_len);
        return 1;
    }
    mq_engine_error_of(c, &err);
    lua_pushnil(L);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, mq_kind_name(err.kind));
    lua_setfield(L, -2, "kind");
    if (err.status > 0) {
        lua_pushinteger(L, err.status);
        lua_setfield(L, -2, "status");
    }
    lua_pushstring(L, err.message);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, err.retryable);
    lua_setfield(L, -2, "retryable");
    if (err.retry_after >= 0) {
        lua_pushnumber(L, err.retry_after);
        lua_setfield(L, -2, "retry_after");
    }
    lua_pushinteger(L, err.attempts);
    lua_setfield(L, -2, "attempts");
    if (err.field != NULL) {
        lua_pushstring(L, err.field);
        lua_setfield(L, -2, "field");
    } else {
        lua_pushstring(L, mq_method_name(err.method));
        lua_setfield(L, -2, "method");
        set_str(L, "path", err.path, err.path_len);
    }
    lua_pushstring(L, mq_effect_name(err.effect));
    lua_setfield(L, -2, "effect");
    if (err.kind == MQ_K_UNPROCESSABLE && err.nfields > 0) {
        /* field -> { msg, ... }, in the server's order */
        lua_createtable(L, 0, 4);
        for (size_t i = 0; i < err.nfields; i++) {
            const mq_field_msg *f = &err.fields[i];
            lua_pushlstring(L, f->field, f->field_len);
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_newtable(L);
                lua_pushvalue(L, -2);
                lua_pushvalue(L, -2);
                lua_rawset(L, -5);
            }
            if (f->msg != NULL) {
                lua_pushlstring(L, f->msg, f->msg_len);
                lua_rawseti(L, -2, (int)mq_rawlen(L, -2) + 1);
            }
            lua_pop(L, 2);
        }
        lua_setfield(L, -2, "fields");
    }
    return 2;
}

void mq_lengine_push_stats(lua_State *L, const mq_engine_stats *st)
{
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, st->requests);
    lua_setfield(L, -2, "requests");
    lua_pushinteger(L, st->retries);
    lua_setfield(L, -2, "retries");
    lua_pushinteger(L, st->ok);
    lua_setfield(L, -2, "ok");
    lua_pushinteger(L, st->limiter_waits);
    lua_setfield(L, -2, "limiter_waits");
    lua_pushnumber(L, st->limiter_wait_seconds);
    lua_setfield(L, -2, "limiter_wait_seconds");
    lua_createtable(L, 0, 2);
    for (int k = 1; k < MQ_K__COUNT; k++) {
        if (st->by_kind[k] > 0) {
            lua_pushinteger(L, st->by_kind[k]);
            lua_setfield(L, -2, mq_kind_name((mq_kind)k));
        }
    }
    lua_setfield(L, -2, "by_kind");
}

/* ---- the engine userdata ------------------------------------------------------ */

void mq_lengine_cfg(lua_State *L, int t, mq_engine_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->base_url = mq_opt_string(L, t, "base_url");
    cfg->api_key = mq_opt_string(L, t, "api_key");
    cfg->secret_key = mq_opt_string(L, t, "secret_key");
    cfg->timeout = mq_opt_number(L, t, "timeout", 10);
    cfg->connect_timeout = mq_opt_number(L, t, "connect_timeout", 3);
    cfg->deadline = mq_opt_number(L, t, "deadline", 30);
    cfg->max_retries = (int)mq_opt_number(L, t, "max_retries", 2);
    cfg->retry_post = mq_opt_bool(L, t, "retry_post");
    cfg->max_wait = mq_opt_number(L, t, "max_wait", -1);
    cfg->limiter_period = mq_opt_number(L, t, "limiter_period", 60);
}

static lengine *check_engine(lua_State *L)
{
    lengine *le = mq_ltag_check(L, 1, ENGINE_TAG, MQ_ENGINE_MT);
    if (le->e == NULL)
        luaL_error(L, "mediquo engine is closed");
    return le;
}

/* core.engine(opts) -> engine | nil, message */
static int l_engine_new(lua_State *L)
{
    mq_engine_cfg cfg;
    lengine *le;
    char err[160];

    luaL_checktype(L, 1, LUA_TTABLE);
    mq_lengine_cfg(L, 1, &cfg);
    le = mq_lclass_new(L, sizeof *le, ENGINE_TAG, MQ_ENGINE_MT);   /* e NULL */
    if (mq_engine_new(&cfg, mq_rand_seed(), &le->e, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int l_engine_gc(lua_State *L)
{
    lengine *le = mq_ltag_check(L, 1, ENGINE_TAG, MQ_ENGINE_MT);
    mq_engine_free(le->e);
    le->e = NULL;
    return 0;
}

static int l_engine_stats(lua_State *L)
{
    lengine *le = check_engine(L);
    mq_lengine_push_stats(L, mq_engine_stats_of(le->e));
    return 1;
}

/* A call's uservalue: [UV_ENGINE] its engine (kept alive), [UV_STEP] its
 * step table (made at its first slot or backoff step, refilled at each
 * one after), then the step's field names as Lua strings, made with the
 * call: a field set by a kept string is not looked up among Lua's strings
 * at every step. */
enum { UV_ENGINE = 1, UV_STEP, UV_K_MAX_WAIT, UV_K_UNTIL, UV_K_BACKOFF, UV__COUNT };

static void set_field(lua_State *L, int uv, int t, int k, int has, double v)
{
    lua_rawgeti(L, uv, k);
    if (has)
        lua_pushnumber(L, v);
    else
        lua_pushnil(L);
    lua_rawset(L, t);
}

/* the step as (action, step): step a table of the mq_step fields the
 * action has ({ max_wait, until } for "slot", { backoff, until } for
 * "backoff"), nil for "send" and "done" (no table on the usual path; a
 * send's deadline is already in call:request()'s timeouts). The table is
 * the call's own, refilled at each step: read before the next one. */
int mq_lengine_push_step(lua_State *L, mq_step st, int cidx)
{
    int uv, t;

    if (cidx < 0)
        cidx = lua_gettop(L) + cidx + 1;
    lua_pushstring(L, mq_action_name(st.action));
    if (st.action != MQ_A_SLOT && st.action != MQ_A_BACKOFF) {
        lua_pushnil(L);
        return 2;
    }
    mq_getuservalue(L, cidx);
    uv = lua_gettop(L);
    lua_rawgeti(L, uv, UV_STEP);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 3);
        lua_pushvalue(L, -1);
        lua_rawseti(L, uv, UV_STEP);
    }
    t = lua_gettop(L);
    set_field(L, uv, t, UV_K_MAX_WAIT, st.action == MQ_A_SLOT, st.max_wait);
    set_field(L, uv, t, UV_K_BACKOFF, st.action == MQ_A_BACKOFF, st.backoff);
    set_field(L, uv, t, UV_K_UNTIL, 1, st.until);
    lua_remove(L, uv);
    return 2;
}

/* eng:start(op, a, b, now [, resumed [, done_call [, lim]]]) -> call, action, step
 * done_call: a call of this engine whose result was read, started again
 * instead of a new one (a call is ~6 KB: the nginx driver keeps a few
 * rather than make and collect one per request). lim: a core.limiter
 * whose budget is this host's own (not Redis): when the call's first step
 * is a slot and lim has one free now, it is taken here, as lim:try() and
 * call:slot(true, 0, nil, now) would, and the call goes on ("send"); when
 * it has none (or fails), the step is "slot" as without lim, for the
 * driver's own wait. */
static int l_engine_start(lua_State *L)
{
    lengine *le = check_engine(L);
    double now = luaL_checknumber(L, 5);
    int resumed = lua_toboolean(L, 6);
    mq_limiter *lim = NULL;
    lcall *lc;
    mq_op op;
    mq_step a;

    lua_settop(L, 8);
    if (!lua_isnil(L, 8) && (lim = mq_llimiter_get(L, 8)) == NULL)
        return luaL_argerror(L, 8, "an open core.limiter expected");
    if (!lua_isnil(L, 7)) {
        lc = mq_ltag_check(L, 7, CALL_TAG, MQ_ECALL_MT);
        if (lc->c.e != le->e || lc->c.state != MQ_W_DONE)
            return luaL_error(L, "mediquo engine: start() with a call of another engine, or not done");
        mq_engine_call_free(&lc->c);
        mq_engine_call_init(&lc->c);
    } else {
        lc = mq_lclass_new(L, sizeof *lc, CALL_TAG, MQ_ECALL_MT);     /* 9 */
        mq_engine_call_init(&lc->c);
        /* the call keeps its engine alive (a table: 5.1 fenvs must be),
         * and its step table and names (mq_lengine_push_step) */
        lua_createtable(L, UV__COUNT - 1, 0);
        lua_pushvalue(L, 1);
        lua_rawseti(L, -2, UV_ENGINE);
        lua_pushliteral(L, "max_wait");
        lua_rawseti(L, -2, UV_K_MAX_WAIT);
        lua_pushliteral(L, "until");
        lua_rawseti(L, -2, UV_K_UNTIL);
        lua_pushliteral(L, "backoff");
        lua_rawseti(L, -2, UV_K_BACKOFF);
        mq_setuservalue(L, 9);
        lua_replace(L, 7);
    }
    lc->started = 1;
    if (lua_type(L, 2) != LUA_TSTRING || mq_op_parse(lua_tostring(L, 2), &op) != 0)
        a = mq_engine_refuse(le->e, &lc->c, MQ_OP_CREATE, MQ_K_INVALID_ARGUMENT, "op",
                             "must be create, reschedule, cancel, webhooks, subscribe, "
                             "update_subscription or unsubscribe");
    else
        a = mq_lengine_start(L, le->e, &lc->c, op, 3, 4, resumed, now);
    if (a.action == MQ_A_SLOT && lim != NULL && !mq_limiter_remote(lim)) {
        double wait;
        if (mq_limiter_try(lim, &wait))
            a = mq_engine_slot(&lc->c, 1, 0, -1, now);
    }
    lua_settop(L, 7);
    mq_lengine_push_step(L, a, 7);
    return 3;
}

static lcall *check_call(lua_State *L, int want, const char *step)
{
    lcall *lc = mq_ltag_check(L, 1, CALL_TAG, MQ_ECALL_MT);
    if (lc->c.e == NULL)
        luaL_error(L, "mediquo engine call: not started");
    if (want >= 0 && (int)lc->c.state != want)
        luaL_error(L, "mediquo engine call: %s() while the call waits for something else", step);
    return lc;
}

mq_ecall *mq_lengine_call(lua_State *L, int want, const char *step)
{
    return &check_call(L, want, step)->c;
}

int mq_lengine_push_send(lua_State *L, const mq_request *r)
{
    if (r->body != NULL)
        lua_pushlstring(L, r->body, r->body_len);
    else
        lua_pushnil(L);
    lua_pushnumber(L, r->timeout);
    lua_pushnumber(L, r->connect_timeout);
    return 3;
}

static int l_call_request(lua_State *L)
{
    lcall *lc = check_call(L, MQ_W_SEND, "request");
    mq_request r;
    mq_engine_request(&lc->c, &r);
    lua_pushstring(L, mq_method_name(r.method));
    lua_pushlstring(L, r.path, r.path_len);
    return 2 + mq_lengine_push_send(L, &r);
}

/* call:slot(granted, waited, retry_after|nil, now) */
static int l_call_slot(lua_State *L)
{
    lcall *lc = check_call(L, MQ_W_SLOT, "slot");
    mq_step a = mq_engine_slot(&lc->c, lua_toboolean(L, 2), luaL_optnumber(L, 3, 0),
                               luaL_optnumber(L, 4, -1), luaL_checknumber(L, 5));
    return mq_lengine_push_step(L, a, 1);
}

/* call:fault(what, why): the host's setup failed where the call waits for
 * a slot or is to send (what: "rate_limit", "nginx"); it ends as config */
static int l_call_fault(lua_State *L)
{
    lcall *lc = check_call(L, -1, "fault");
    const char *what = luaL_checkstring(L, 2), *why = luaL_checkstring(L, 3);
    if (lc->c.state != MQ_W_SLOT && lc->c.state != MQ_W_SEND)
        return luaL_error(L, "mediquo engine call: fault() while the call waits for something else");
    return mq_lengine_push_step(L, mq_engine_host_fault(&lc->c, what, why), 1);
}

/* a number field of res, or dflt when absent */
static double res_num(lua_State *L, const char *k, double dflt)
{
    double v;

    lua_getfield(L, 2, k);
    v = lua_isnil(L, -1) ? dflt : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* call:response(res, now) with res = { status, body, retry_after,
 * rl_remaining, rl_limit, rl_reset } (all but status may be nil) */
static int l_call_response(lua_State *L)
{
    lcall *lc = check_call(L, MQ_W_SEND, "response");
    double now;
    mq_answer r;
    mq_step a;

    luaL_checktype(L, 2, LUA_TTABLE);
    now = luaL_checknumber(L, 3);
    lua_settop(L, 3);
    lua_getfield(L, 2, "status");
    if (!lua_isnumber(L, -1)) return luaL_error(L, "call:response: res.status: a number expected");
    r.status = (long)lua_tointeger(L, -1);
    lua_getfield(L, 2, "body");
    /* the string stays anchored in res for the engine call */
    r.body = lua_isnil(L, -1) ? "" : luaL_checklstring(L, -1, &r.body_len);
    if (lua_isnil(L, -1)) r.body_len = 0;
    r.retry_after = res_num(L, "retry_after", -1);
    r.rl_remaining = (long)res_num(L, "rl_remaining", -1);
    r.rl_limit = (long)res_num(L, "rl_limit", -1);
    r.rl_reset = res_num(L, "rl_reset", -1);
    a = mq_engine_response(&lc->c, &r, now);
    lua_settop(L, 3);
    return mq_lengine_push_step(L, a, 1);
}

/* call:failure(outcome, message|nil, now [, status]) */
static int l_call_failure(lua_State *L)
{
    lcall *lc = check_call(L, MQ_W_SEND, "failure");
    const char *name = luaL_checkstring(L, 2);
    const char *msg = luaL_optstring(L, 3, NULL);
    double now = luaL_checknumber(L, 4);
    long status = (long)luaL_optinteger(L, 5, 0);
    int o;

    if (strcmp(name, "resent") == 0) {
        mq_engine_resent(&lc->c);
        if (lc->c.m != MQ_M_POST) {
            mq_step send = { .action = MQ_A_SEND };
            return mq_lengine_push_step(L, send, 1);
        }
        o = MQ_T_RESET;
    } else {
        o = mq_outcome_parse(name);
        if (o <= 0)
            return luaL_argerror(L, 2, "outcome must be connect, connect_timeout, tls, "
                                 "timeout, reset, too_big, failed or resent");
    }
    return mq_lengine_push_step(L, mq_engine_failure(&lc->c, (mq_outcome)o, msg, status, now), 1);
}

static int l_call_wake(lua_State *L)
{
    lcall *lc = check_call(L, MQ_W_BACKOFF, "wake");
    mq_step a = mq_engine_wake(&lc->c, luaL_checknumber(L, 2));
    return mq_lengine_push_step(L, a, 1);
}

static int l_call_limiter_note(lua_State *L)
{
    lcall *lc = check_call(L, -1, "limiter_note");
    mq_limiter_note n = mq_engine_note(&lc->c);
    switch (n.kind) {
    case MQ_NOTE_PAUSE:
        lua_pushliteral(L, "pause");
        lua_pushnumber(L, n.pause);
        return 2;
    case MQ_NOTE_OBSERVE:
        lua_pushliteral(L, "observe");
        lua_pushinteger(L, (lua_Integer)n.remaining);
        if (n.limit >= 0) lua_pushinteger(L, (lua_Integer)n.limit); else lua_pushnil(L);
        if (n.reset >= 0) lua_pushnumber(L, n.reset); else lua_pushnil(L);
        return 4;
    default:
        lua_pushnil(L);
        return 1;
    }
}

static int l_call_result(lua_State *L)
{
    lcall *lc = check_call(L, MQ_W_DONE, "result");
    return mq_lengine_push_result(L, &lc->c);
}

static int l_call_gc(lua_State *L)
{
    lcall *lc = mq_ltag_check(L, 1, CALL_TAG, MQ_ECALL_MT);
    mq_engine_call_free(&lc->c);
    return 0;
}

/* ---- the names and the pure helpers --------------------------------------------- */

/* core.create_request(a) -> body, starts_at | false, field, why: the
 * create's JSON body as the engine writes it */
static int l_create_request(lua_State *L)
{
    mq_op_args a;
    const char *field, *why;
    char buf[MQ_WHY_LEN], body[MQ_ENGINE_BODY_MAX];
    size_t n;

    if (mq_check_op(L, MQ_OP_CREATE, 1, 2, &a, &field, &why, buf) != 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, field);
        lua_pushstring(L, why);
        return 3;
    }
    n = mq_request_body(MQ_M_POST, &a, body);
    lua_pushlstring(L, body, n);
    lua_pushstring(L, a.starts_at);
    return 2;
}

/* core.appointment(body) -> code, url | nil: the scan the engine does on a
 * create or reschedule answer (the specs hold it against cjson) */
static int l_appointment(lua_State *L)
{
    size_t len;
    const char *body = luaL_checklstring(L, 1, &len);
    char *scratch = lua_newuserdata(L, len + 1);   /* Lua owns it */
    mq_appt a;
    if (!mq_answer_appointment(body, len, scratch, &a)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, a.code, a.code_len);
    lua_pushlstring(L, a.url, a.url_len);
    return 2;
}

static void push_names(lua_State *L)
{
    /* KINDS: kind -> retryable by default ("ok" is not a kind of error) */
    lua_createtable(L, 0, MQ_K__COUNT);
    for (int k = 1; k < MQ_K__COUNT; k++) {
        lua_pushboolean(L, mq_kind_retryable((mq_kind)k));
        lua_setfield(L, -2, mq_kind_name((mq_kind)k));
    }
    lua_setfield(L, -2, "KINDS");
    lua_createtable(L, MQ_M__COUNT, 0);
    for (int m = 0; m < MQ_M__COUNT; m++) {
        lua_pushstring(L, mq_method_name((mq_method)m));
        lua_rawseti(L, -2, m + 1);
    }
    lua_setfield(L, -2, "METHODS");
    lua_createtable(L, MQ_T__COUNT, 0);
    for (int o = 0; o < MQ_T__COUNT; o++) {
        lua_pushstring(L, mq_outcome_name((mq_outcome)o));
        lua_rawseti(L, -2, o + 1);
    }
    lua_setfield(L, -2, "OUTCOMES");
    lua_createtable(L, MQ_OP__COUNT, 0);
    for (int o = 0; o < MQ_OP__COUNT; o++) {
        lua_pushstring(L, mq_op_name((mq_op)o));
        lua_rawseti(L, -2, o + 1);
    }
    lua_setfield(L, -2, "OPS");
}

static void new_mt(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    const luaL_Reg meta[] = {
        { "__gc", gc },
        { NULL, NULL },
    };
    mq_lclass(L, name, meta, methods, name);
    lua_pop(L, 1);
}

void mq_lengine_open(lua_State *L)
{
    static const luaL_Reg engine_methods[] = {
        { "start", l_engine_start },
        { "stats", l_engine_stats },
        { NULL, NULL },
    };
    static const luaL_Reg call_methods[] = {
        { "request", l_call_request },
        { "slot", l_call_slot },
        { "fault", l_call_fault },
        { "response", l_call_response },
        { "failure", l_call_failure },
        { "wake", l_call_wake },
        { "limiter_note", l_call_limiter_note },
        { "result", l_call_result },
        { "request_head", mq_lengine_request_head },
        { "answer", mq_lengine_answer },
        { NULL, NULL },
    };
    static const luaL_Reg funcs[] = {
        { "engine", l_engine_new },
        { "create_request", l_create_request },
        { "appointment", l_appointment },
        { NULL, NULL },
    };
    new_mt(L, MQ_ENGINE_MT, engine_methods, l_engine_gc);
    new_mt(L, MQ_ECALL_MT, call_methods, l_call_gc);
    /* the module table is on top of the stack */
    mq_setfuncs(L, funcs);
    push_names(L);
}
