/* lmediquo.c: luaopen_mediquo_core, the one exported symbol, and the small
 * pure functions exposed for the specs (path encoding, text classes, the
 * engine's classification and backoff, held against the kinds table of
 * README.md, "Error objects", and docs/retries-and-exactly-once.md). */
#include "lclient.h"
#include "llimiter.h"
#include "lmetrics.h"
#include "lbatch.h"
#include "lbody.h"
#include "lcheck.h"
#include "lengine.h"
#include "clock.h"
#include "text.h"
#include "urlenc.h"
#include "lhttp.h"
#include "ljournal.h"
#include "lredis.h"
#include "ltz.h"
#include "version.h"
#include "lwebhook.h"

#include <string.h>

#define MQ_CORE_VERSION MQ_VERSION

/* core.urlenc(s) -> s with every byte but RFC 3986 unreserved as %XX */
static int l_urlenc(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    size_t cap = len * 3 + 1;
    char *out;
    if (len > 65536)
        return luaL_argerror(L, 1, "string too long");
    out = lua_newuserdata(L, cap);  /* Lua owns it, even if pushing fails */
    lua_pushlstring(L, out, mq_urlenc(s, len, out, cap));
    return 1;
}

/* core.textclass(s) -> 0 verbatim in JSON, 1 needs JSON escaping,
 * 2 has a control character, 3 is not valid UTF-8 */
static int l_textclass(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_pushinteger(L, (lua_Integer)mq_text_classify(s, len));
    return 1;
}

/* core.classify(method, outcome, status|nil, retry_post) -> kind, retryable, ambiguous:
 * policy.c's verdict, as the engine takes it (for the unit specs) */
static int l_classify(lua_State *L)
{
    mq_method m;
    int o = mq_outcome_parse(luaL_checkstring(L, 2));
    mq_verdict v;
    if (mq_method_parse(luaL_checkstring(L, 1), &m) != 0)
        return luaL_argerror(L, 1, "method must be POST, PUT or DELETE");
    if (o < 0)
        return luaL_argerror(L, 2, "unknown outcome");
    v = mq_classify(m, (mq_outcome)o, (long)luaL_optinteger(L, 3, 0), lua_toboolean(L, 4));
    lua_pushstring(L, mq_kind_name(v.kind));
    lua_pushboolean(L, v.retryable);
    lua_pushboolean(L, v.ambiguous);
    return 3;
}

/* core.backoff(retry, u) -> seconds (full jitter; u uniform in [0,1)), as
 * the engine waits (for the unit specs) */
static int l_backoff(lua_State *L)
{
    lua_pushnumber(L, mq_backoff((int)luaL_checkinteger(L, 1), luaL_checknumber(L, 2)));
    return 1;
}

/* core.now() -> monotonic seconds, the clock of deadlines and the limiter */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, mq_now());
    return 1;
}

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_mediquo_core(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "urlenc", l_urlenc },
        { "textclass", l_textclass },
        { "classify", l_classify },
        { "backoff", l_backoff },
        { "now", l_now },
        { NULL, NULL },
    };
    if (mq_transport_global_init() != 0)
        return luaL_error(L, "mediquo.core: curl_global_init failed");
    mq_newlib(L, funcs);
    mq_lclient_open(L);
    mq_lclient_methods(L);      /* batches add theirs to the client's */
    mq_lbatch_open(L);
    lua_pop(L, 1);
    mq_lcheck_open(L);
    mq_lbody_open(L);
    mq_lengine_open(L);
    mq_llimiter_open(L);
    mq_lredis_open(L);
    mq_lmetrics_open(L);
    mq_lhttp_open(L);
    mq_ljournal_open(L);
    mq_ltz_open(L);
    mq_lwebhook_open(L);
    lua_pushliteral(L, MQ_CORE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, mq_transport_curl_version());
    lua_setfield(L, -2, "curl_version");
    return 1;
}
