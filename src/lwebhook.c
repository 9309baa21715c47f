/* lwebhook.c: core.webhook_check, the binding of webhook.c. Its messages
 * name the header and the bound, never the body or a secret. */
#include "lwebhook.h"
#include "webhook.h"

/* core.webhook_check(max_body, body, sig|nil, secret1, ...) ->
 *   id | nil, kind, message
 * kind: too_large, unauthorized, or config (libcrypto failed). The secrets
 * (1 to MQ_WH_MAX_SECRETS non-empty strings) are checked by mediquo.webhook
 * before; here a wrong call is a programming error. */
static int l_check(lua_State *L)
{
    mq_wh_bytes secrets[MQ_WH_MAX_SECRETS];
    char id[MQ_WH_ID_HEX];
    lua_Number maxn = luaL_checknumber(L, 1);
    size_t body_len, siglen = 0, max_body;
    const char *body = luaL_checklstring(L, 2, &body_len);
    const char *sig = NULL;
    int top = lua_gettop(L), n = top - 3;
    mq_wh_verdict v;
    if (!(maxn >= 0) || maxn > 1e15)
        return luaL_argerror(L, 1, "max_body must be a non-negative number");
    max_body = (size_t)maxn;
    if (!lua_isnoneornil(L, 3))
        sig = luaL_checklstring(L, 3, &siglen);
    if (n < 1 || n > MQ_WH_MAX_SECRETS)
        return luaL_error(L, "webhook_check: 1 to %d secrets", MQ_WH_MAX_SECRETS);
    for (int i = 0; i < n; i++)
        secrets[i].p = luaL_checklstring(L, 4 + i, &secrets[i].len);
    v = mq_webhook_check(sig, siglen, secrets, (size_t)n, body, body_len, max_body, id);
    switch (v) {
    case MQ_WH_OK:
        lua_pushstring(L, id);
        return 1;
    case MQ_WH_TOO_LARGE:
        lua_pushnil(L);
        lua_pushliteral(L, "too_large");
        lua_pushfstring(L, "body: %d bytes, more than max_body (%d)",
                        (int)(body_len > 2147483647u ? 2147483647u : body_len),
                        (int)(max_body > 2147483647u ? 2147483647u : max_body));
        return 3;
    case MQ_WH_UNAUTHORIZED:
        lua_pushnil(L);
        lua_pushliteral(L, "unauthorized");
        lua_pushstring(L, sig ? "signature: does not match" : "signature: header missing");
        return 3;
    default:
        lua_pushnil(L);
        lua_pushliteral(L, "config");
        lua_pushliteral(L, "signature: libcrypto could not compute SHA-256");
        return 3;
    }
}

void mq_lwebhook_open(lua_State *L)
{
    lua_pushcfunction(L, l_check);
    lua_setfield(L, -2, "webhook_check");
}
