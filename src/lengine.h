/* lengine.h: the engine's Lua binding (lengine.c): the step API for the
 * drivers written in Lua (mediquo.ngx), and the two pieces every binding
 * that runs a call shares: starting it with an operation's arguments from
 * Lua (checked by lcheck.c) and pushing its result. */
#ifndef MQ_LENGINE_H
#define MQ_LENGINE_H

#include "compat.h"
#include "engine.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_ENGINE_MT "mediquo.core.engine"
#define MQ_ECALL_MT  "mediquo.core.call"

/* Starts c with the arguments at ia/ib: mq_engine_start, or the refusal. */
mq_step mq_lengine_start(lua_State *L, mq_engine *e, mq_ecall *c, mq_op op, int ia, int ib,
                         int resumed, double now);
/* A finished call as Lua sees it: value (true, or {code=, url=}) and
 * returns 1; or nil and a plain error table (kind, status, message,
 * retryable, retry_after, attempts, method, path, fields, effect; field
 * for a refusal) and returns 2. */
int mq_lengine_push_result(lua_State *L, const mq_ecall *c);
/* engine:stats() as a table: requests, retries, ok, by_kind,
 * limiter_waits, limiter_wait_seconds. */
void mq_lengine_push_stats(lua_State *L, const mq_engine_stats *st);
/* The engine settings in the options table at t (mediquo.options' names;
 * max_wait absent: no limiter). The strings stay owned by the table. */
void mq_lengine_cfg(lua_State *L, int t, mq_engine_cfg *cfg);
/* The started call at stack index 1 (a Lua error when it is none, or when
 * it waits for another step than want, -1: any; step names the method). */
mq_ecall *mq_lengine_call(lua_State *L, int want, const char *step);
/* A step as Lua gets it: the action's name and its table (nil for send and
 * done: the table of the call at stack index cidx, refilled); returns 2. */
int mq_lengine_push_step(lua_State *L, mq_step st, int cidx);
/* A send step's body (nil without one), timeout and connect_timeout, as
 * call:request() and call:request_head() end; returns 3. */
int mq_lengine_push_send(lua_State *L, const mq_request *r);
/* call:request_head(w) and call:answer(p, now [, lim]): lengine_wire.c */
int mq_lengine_request_head(lua_State *L);
int mq_lengine_answer(lua_State *L);
/* Adds core.engine, core.KINDS, core.METHODS, core.OUTCOMES,
 * core.create_request and core.appointment to the table on top. */
void mq_lengine_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
