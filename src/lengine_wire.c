/* lengine_wire.c: a call's send and response steps in wire form, for the
 * driver that moves the bytes itself (mediquo.ngx on cosockets) with
 * core.http1 and core.http1_parser (lhttp.c). The same engine steps as
 * call:request() and call:response(res, now) (lengine.c), without the Lua
 * strings and table in between: per request, the method and path strings,
 * the answer's body string and its res table, and three calls
 * (limiter_note, then lim:pause or lim:observe) fewer.
 *
 *   head, body|nil, timeout, connect_timeout = call:request_head(w)
 *       the request as sock:send{ head, body } sends it (head: the request
 *       line and every header with the length, the same string for every
 *       request of one method, path and body length)
 *   action, step [, value, err] = call:answer(p, now [, lim])
 *       the answer the parser read (p:feed said "done") handed to the
 *       engine (mq_engine_response); with lim (a core.limiter) what it
 *       means for the shared budget applied to it (mq_engine_note: pause
 *       or observe), as the driver did with call:limiter_note(). When the
 *       call is done (action "done"), also what call:result() returns:
 *       one step less on the usual path. */
#include "engine.h"
#include "lengine.h"
#include "lhttp.h"
#include "llimiter_ud.h"
#include "policy.h"

int mq_lengine_request_head(lua_State *L)
{
    mq_ecall *c = mq_lengine_call(L, MQ_W_SEND, "request_head");
    mq_request r;

    mq_engine_request(c, &r);
    lua_settop(L, 2);
    mq_lhttp_push_head(L, 2, mq_method_name(r.method), r.path, r.path_len, r.body != NULL,
                       r.body_len);
    return 1 + mq_lengine_push_send(L, &r);
}

int mq_lengine_answer(lua_State *L)
{
    mq_ecall *c = mq_lengine_call(L, MQ_W_SEND, "answer");
    double now = luaL_checknumber(L, 3);
    mq_limiter *lim = NULL;
    mq_answer a;
    mq_step st;

    if (!lua_isnoneornil(L, 4)) {
        lim = mq_llimiter_get(L, 4);
        if (lim == NULL)
            return luaL_argerror(L, 4, "an open core.limiter expected");
    }
    mq_lhttp_answer(L, 2, &a);
    st = mq_engine_response(c, &a, now);
    if (lim != NULL) {
        mq_limiter_note n = mq_engine_note(c);
        if (n.kind == MQ_NOTE_PAUSE)
            mq_limiter_pause(lim, n.pause);
        else if (n.kind == MQ_NOTE_OBSERVE)
            mq_limiter_observe(lim, n.remaining, n.limit, n.reset);
    }
    lua_settop(L, 1);       /* the call: the step table is its own */
    mq_lengine_push_step(L, st, 1);
    if (st.action != MQ_A_DONE)
        return 2;
    return 2 + mq_lengine_push_result(L, c);
}
