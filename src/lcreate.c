/* lcreate.c: the create request in C - its fields checked, its JSON body
 * written, the call made and the appointment read back from the answer,
 * all in one call from Lua (client:create in mediquo.lua). The checks and
 * their messages are lcheck.c's; core.create_request gives the same body
 * to the paths that send it themselves (batches, the nginx adapter). */
#include "lcheck.h"
#include "answer.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* every byte of the three text fields escaped (two bytes each), the date,
 * a 10-digit duration and the fixed JSON around them */
#define MQ_CREATE_BODY_MAX (3 * 2 * MQ_MAX_ID + MQ_ISO_LEN + 160)
#define MQ_ANSWER_SCAN_MAX 8192     /* a longer answer goes to cjson */

typedef struct {
    char body[MQ_CREATE_BODY_MAX];
    size_t body_len;
    char starts_at[MQ_ISO_LEN];
    const char *field, *why;        /* when refused */
    char buf[MQ_WHY_LEN];
} mq_create_req;

enum { F_CODE, F_STARTS_AT, F_PATIENT, F_PROFESSIONAL, F_DURATION, F__COUNT };

/* which field a key names: F_*, F__COUNT for "op" (allowed, not sent), -1 */
static int field_of(const char *k, size_t len)
{
    switch (len) {
    case 2: return memcmp(k, "op", 2) == 0 ? F__COUNT : -1;
    case 4: return memcmp(k, "code", 4) == 0 ? F_CODE : -1;
    case 7: return memcmp(k, "patient", 7) == 0 ? F_PATIENT : -1;
    case 8: return memcmp(k, "duration", 8) == 0 ? F_DURATION : -1;
    case 9: return memcmp(k, "starts_at", 9) == 0 ? F_STARTS_AT : -1;
    case 12: return memcmp(k, "professional", 12) == 0 ? F_PROFESSIONAL : -1;
    default: return -1;
    }
}

static char *put(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* a checked text field into a JSON string: verbatim, or with '"', '\' and
 * '/' escaped as cjson does (control characters were refused) */
static char *put_text(char *p, const mq_text *t)
{
    if (t->verbatim)
        return put(p, t->s, t->len);
    for (size_t i = 0; i < t->len; i++) {
        char c = t->s[i];
        if (c == '"' || c == '\\' || c == '/')
            *p++ = '\\';
        *p++ = c;
    }
    return p;
}

static int refuse(mq_create_req *r, const char *field, const char *why)
{
    r->field = field;
    r->why = why;
    return -1;
}

/* Checks the appointment table at idx (absolute) and writes the body.
 * 0, or -1 with r->field and r->why. The stack is left as it was. */
static int build(lua_State *L, int idx, mq_create_req *r)
{
    static const char *const names[F__COUNT] = {
        "code", "starts_at", "patient", "professional", "duration",
    };
    int top = lua_gettop(L), slot = top + 1, rc = -1;
    mq_text text[F__COUNT];
    long duration;
    const char *why;
    char *p;

    if (!lua_istable(L, idx)) {
        snprintf(r->buf, sizeof r->buf, "must be a table, got %s", luaL_typename(L, idx));
        return refuse(r, "appointment", r->buf);
    }
    luaL_checkstack(L, F__COUNT + 3, "mediquo: create");
    for (int i = 0; i < F__COUNT; i++)
        lua_pushnil(L);
    /* one pass over the table: unknown keys refused, each field's value
     * copied to its slot */
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int f = -1;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            f = field_of(k, klen);
        }
        if (f < 0) {
            refuse(r, "appointment", mq_check_unknown_key(L, -2, r->buf, sizeof r->buf));
            goto done;
        }
        if (f < F__COUNT)
            lua_replace(L, slot + f);
        else
            lua_pop(L, 1);
    }
    if ((why = mq_check_code(L, slot + F_CODE, &text[F_CODE], r->buf, sizeof r->buf)) != NULL) {
        refuse(r, names[F_CODE], why);
        goto done;
    }
    if ((why = mq_check_starts_at(L, slot + F_STARTS_AT, r->starts_at, r->buf, sizeof r->buf)) != NULL) {
        refuse(r, names[F_STARTS_AT], why);
        goto done;
    }
    for (int f = F_PATIENT; f <= F_PROFESSIONAL; f++) {
        why = mq_check_text(L, slot + f, MQ_MAX_ID, &text[f], r->buf, sizeof r->buf);
        if (why != NULL) {
            refuse(r, names[f], why);
            goto done;
        }
    }
    if ((why = mq_check_duration(L, slot + F_DURATION, &duration)) != NULL) {
        refuse(r, names[F_DURATION], why);
        goto done;
    }

    p = PUT_LIT(r->body, "{\"appointment\":{\"code\":\"");
    p = put_text(p, &text[F_CODE]);
    p = PUT_LIT(p, "\",\"starts_at\":\"");
    p = put(p, r->starts_at, MQ_ISO_LEN - 1);
    if (duration > 0) {
        char digits[12];
        size_t n = 0;
        p = PUT_LIT(p, "\",\"duration\":");
        for (; duration > 0; duration /= 10)
            digits[n++] = (char)('0' + duration % 10);
        while (n > 0)
            *p++ = digits[--n];
        *p++ = '}';
    } else
        p = PUT_LIT(p, "\"}");
    p = PUT_LIT(p, ",\"patient\":{\"code\":\"");
    p = put_text(p, &text[F_PATIENT]);
    p = PUT_LIT(p, "\"},\"professional\":{\"hash\":\"");
    p = put_text(p, &text[F_PROFESSIONAL]);
    p = PUT_LIT(p, "\"}}");
    *p = '\0';
    r->body_len = (size_t)(p - r->body);
    rc = 0;
done:
    lua_settop(L, top);
    return rc;
}

/* core.create_request(a) -> body, starts_at | false, field, why
 * (starts_at normalised to "YYYY-MM-DDTHH:MM:SSZ") */
static int l_create_request(lua_State *L)
{
    mq_create_req r;
    if (build(L, 1, &r) != 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, r.field);
        lua_pushstring(L, r.why);
        return 3;
    }
    lua_pushlstring(L, r.body, r.body_len);
    lua_pushstring(L, r.starts_at);
    return 2;
}

/* core.create_method(rest) -> the create method of mediquo.lua's client
 * objects, a C function so a create is one call from the caller's Lua:
 *   client:create(a) -> { code = , url = }   the appointment; else it ends as
 *   rest(self, a, false, field, why)         refused before anything was sent, or
 *   rest(self, a, nil, kind, status|nil, body, attempts, ambiguous_before,
 *        retry_after|nil, message|nil, retryable, started, starts_at)
 *                                            anything else, for Lua to shape
 * (self._core is the core client; self._ok counts successes). */
/* rest, self, a: the start of the call that takes over from l_create */
static void push_rest(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
}

static int l_create(lua_State *L)
{
    static const char path[] = "/appointments";
    char url[MQ_URL_MAX];
    mq_create_req r;
    mq_result res;
    mq_client *c;
    int nargs;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_getfield(L, 1, "_core");                /* 3 */
    if (lua_isnil(L, 3))
        return luaL_error(L, "mediquo client is closed");
    c = mq_lclient_check(L, 3);
    lua_settop(L, 2);

    if (build(L, 2, &r) != 0) {
        push_rest(L);
        lua_pushboolean(L, 0);
        lua_pushstring(L, r.field);
        lua_pushstring(L, r.why);
        lua_call(L, 5, 2);
        return 2;
    }
    /* base_len <= MQ_URL_MAX / 2 (lclient.c) */
    memcpy(url, c->base, c->base_len);
    memcpy(url + c->base_len, path, sizeof path);
    /* only the code and the URL leave on success: those are scrubbed of
     * the keys (unescaped, so an escape cannot hide one), not the body */
    mq_transport_scrub_later(c->t, 1);
    mq_call(c->t, c->lim, &c->cfg, &c->st, &c->rng, MQ_M_POST, url, r.body, r.body_len, &res);
    mq_transport_scrub_later(c->t, 0);

    if (res.kind == MQ_K_OK && res.body_len <= MQ_ANSWER_SCAN_MAX) {
        char scratch[MQ_ANSWER_SCAN_MAX];
        mq_appt a;
        if (mq_answer_appointment(res.body, res.body_len, scratch, &a)) {
            /* both point into the transport's body buffer or scratch */
            mq_transport_scrub(c->t, (char *)(uintptr_t)a.code, a.code_len);
            mq_transport_scrub(c->t, (char *)(uintptr_t)a.url, a.url_len);
            lua_getfield(L, 1, "_ok");
            lua_pushinteger(L, lua_tointeger(L, -1) + 1);
            lua_setfield(L, 1, "_ok");
            lua_createtable(L, 0, 2);
            lua_pushlstring(L, a.code, a.code_len);
            lua_setfield(L, -2, "code");
            lua_pushlstring(L, a.url, a.url_len);
            lua_setfield(L, -2, "url");
            return 1;
        }
    }
    /* not the plain answer: Lua decodes and shapes it */
    mq_transport_scrub(c->t, (char *)(uintptr_t)res.body, res.body_len);
    push_rest(L);
    lua_pushnil(L);
    nargs = 3 + mq_lclient_push_result(L, &res);
    lua_pushnumber(L, res.started);
    lua_pushstring(L, r.starts_at);
    lua_call(L, nargs + 2, 2);
    return 2;
}

/* core.create_method(rest) -> create (see l_create) */
static int l_create_method(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_pushcclosure(L, l_create, 1);
    return 1;
}

/* core.appointment(body) -> code, url | nil: the scan client:create does
 * on an answer (nil: not the plain answer, cjson decides), for the specs
 * that hold it against cjson */
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

void mq_lcreate_open(lua_State *L)
{
    /* the module table is on top of the stack */
    lua_pushcfunction(L, l_create_request);
    lua_setfield(L, -2, "create_request");
    lua_pushcfunction(L, l_appointment);
    lua_setfield(L, -2, "appointment");
    lua_pushcfunction(L, l_create_method);
    lua_setfield(L, -2, "create_method");
}
