/* lcheck.c: the argument checks and their messages, in one place. A call
 * of the engine takes its arguments through mq_check_op (lcheck_op.c),
 * which sends an appointment operation here (mq_check_appt_op) and a
 * webhook one to lcheck_webhook.c; the Lua validators
 * (mediquo.validate) call the same checks through core.check_*, so a
 * field is refused with the same words whichever path it took.
 *
 * A check returns NULL when the value is good, else why it is not (a
 * static string or one written into the caller's buffer). Values are never
 * quoted: a secret passed in the wrong place must not reach a message. */
#include "lcheck.h"
#include "engine.h"
#include "baseurl.h"
#include "iso8601.h"
#include "text.h"
#include "suggest.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MQ_MAX_DATE 64      /* longer than any ISO 8601 date-time we take */

const char *mq_check_text(lua_State *L, int idx, size_t max, mq_text *t,
                          char *buf, size_t buflen)
{
    t->s = "";
    t->len = 0;
    t->verbatim = 0;
    if (lua_type(L, idx) != LUA_TSTRING) {
        snprintf(buf, buflen, "must be a string, got %s", luaL_typename(L, idx));
        return buf;
    }
    t->s = lua_tolstring(L, idx, &t->len);
    if (t->s == NULL || t->len == 0)
        return "must not be empty";
    if (t->len > max) {
        snprintf(buf, buflen, "must be at most %zu bytes", max);
        return buf;
    }
    switch (mq_text_classify(t->s, t->len)) {
    case MQ_TEXT_CONTROL:
        return "must not contain control characters";
    case MQ_TEXT_BAD_UTF8:
        return "must be valid UTF-8";
    case MQ_TEXT_VERBATIM:
        t->verbatim = 1;
        return NULL;
    default:
        t->verbatim = 0;
        return NULL;
    }
}

/* "." and ".." are dot-segments: in a path they address the parent
 * resource on any server that normalises URLs, so such a code could never
 * be rescheduled or cancelled safely. */
const char *mq_check_code(lua_State *L, int idx, mq_text *t, char *buf, size_t buflen)
{
    const char *why = mq_check_text(L, idx, MQ_MAX_ID, t, buf, buflen);
    if (why != NULL)
        return why;
    if (t->s[0] == '.' && (t->len == 1 || (t->len == 2 && t->s[1] == '.')))
        return "must not be '.' or '..' (a URL dot-segment)";
    return NULL;
}

/* An ISO 8601 string (normalised to UTC) or Unix epoch seconds. */
const char *mq_check_starts_at(lua_State *L, int idx, char out[MQ_ISO_LEN],
                               char *buf, size_t buflen)
{
    const char *why = NULL;

    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > MQ_MAX_DATE)
            return "is not an ISO 8601 date-time";
        if (mq_iso8601_utc(s, len, out, &why) != 0)
            return why ? why : "is not an ISO 8601 date-time";
        return NULL;
    }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        double t = lua_tonumber(L, idx);
        if (!isfinite(t))
            return "must be a finite number";
        if (mq_epoch_utc(t, out, &why) != 0)
            return why ? why : "is not a valid time";
        return NULL;
    }
    snprintf(buf, buflen, "must be an ISO 8601 string or Unix epoch seconds, got %s",
             luaL_typename(L, idx));
    return buf;
}

/* nil (none: *d = 0) or a whole number of seconds, 1 .. 2^31-1 */
const char *mq_check_duration(lua_State *L, int idx, long *d)
{
    double v;

    *d = 0;
    if (lua_isnil(L, idx))
        return NULL;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return "must be an integer number of seconds > 0";
    v = lua_tonumber(L, idx);
    if (!(v > 0 && v <= 2147483647.0) || (double)(long)v != v)
        return "must be an integer number of seconds > 0";
    *d = (long)v;
    return NULL;
}

/* The message for a key that is not allowed: its first 40 bytes, control
 * characters shown as '?', or its type when it is not a string. */
const char *mq_check_unknown_key(lua_State *L, int kidx, const char *const *names, size_t n,
                                 char *buf, size_t buflen)
{
    char name[41];
    size_t len, klen, i;
    const char *k, *near;

    if (lua_type(L, kidx) != LUA_TSTRING) {
        snprintf(buf, buflen, "unknown field of type %s", luaL_typename(L, kidx));
        return buf;
    }
    k = lua_tolstring(L, kidx, &klen);
    len = klen > 40 ? 40 : klen;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)k[i];
        name[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    name[len] = '\0';
    near = mq_suggest(k, klen, names, n);
    if (near != NULL)
        snprintf(buf, buflen, "unknown field '%s' (did you mean '%s'?)", name, near);
    else
        snprintf(buf, buflen, "unknown field '%s'", name);
    return buf;
}

/* ---- an operation's arguments: mq_check_op ------------------------------- */

enum { F_CODE, F_STARTS_AT, F_PATIENT, F_PROFESSIONAL, F_DURATION, F__COUNT };

/* The one table of which fields each appointment operation takes, in the
 * order a row lists them (F_* order for create); exported as
 * core.OP_FIELDS for the Lua that reads rows (mediquo.batch, the CLI). */
static const char *const create_fields[F__COUNT + 1] = {
    "code", "starts_at", "patient", "professional", "duration", NULL,
};
static const char *const reschedule_fields[] = { "code", "starts_at", NULL };
static const char *const cancel_fields[] = { "code", NULL };
static const struct { mq_op op; const char *const *fields; } op_fields[] = {
    { MQ_OP_CREATE, create_fields },
    { MQ_OP_RESCHEDULE, reschedule_fields },
    { MQ_OP_CANCEL, cancel_fields },
};

const char *const *mq_op_fields(mq_op op)
{
    for (size_t i = 0; i < sizeof op_fields / sizeof *op_fields; i++)
        if (op_fields[i].op == op)
            return op_fields[i].fields;
    return NULL;
}

/* which create field a key names: F_*, F__COUNT for "op" (allowed, not sent), -1 */
static int field_of(const char *k, size_t len)
{
    if (len == 2 && memcmp(k, "op", 2) == 0)
        return F__COUNT;
    for (int f = 0; f < F__COUNT; f++)
        if (strlen(create_fields[f]) == len && memcmp(create_fields[f], k, len) == 0)
            return f;
    return -1;
}

/* The create table at idx: one raw pass (no metamethod runs), unknown keys
 * refused, each field checked. Values stay referenced by the table. */
static int create_args(lua_State *L, int idx, mq_op_args *a, const char **field,
                       const char **why, char *buf)
{
    const char *const *names = create_fields;
    int top = lua_gettop(L), slot = top + 1, rc = -1;
    mq_text t;

    if (!lua_istable(L, idx)) {
        snprintf(buf, MQ_WHY_LEN, "must be a table, got %s", luaL_typename(L, idx));
        *field = "appointment";
        *why = buf;
        return -1;
    }
    luaL_checkstack(L, F__COUNT + 3, "mediquo: create");
    for (int i = 0; i < F__COUNT; i++)
        lua_pushnil(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int f = -1;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            f = field_of(k, klen);
        }
        if (f < 0) {
            *field = "appointment";
            *why = mq_check_unknown_key(L, -2, names, F__COUNT, buf, MQ_WHY_LEN);
            goto done;
        }
        if (f < F__COUNT)
            lua_replace(L, slot + f);
        else
            lua_pop(L, 1);
    }
    *field = names[F_CODE];
    if ((*why = mq_check_code(L, slot + F_CODE, &t, buf, MQ_WHY_LEN)) != NULL)
        goto done;
    a->code = t.s;
    a->code_len = t.len;
    *field = names[F_STARTS_AT];
    if ((*why = mq_check_starts_at(L, slot + F_STARTS_AT, a->starts_at, buf, MQ_WHY_LEN)) != NULL)
        goto done;
    *field = names[F_PATIENT];
    if ((*why = mq_check_text(L, slot + F_PATIENT, MQ_MAX_ID, &t, buf, MQ_WHY_LEN)) != NULL)
        goto done;
    a->patient = t.s;
    a->patient_len = t.len;
    *field = names[F_PROFESSIONAL];
    if ((*why = mq_check_text(L, slot + F_PROFESSIONAL, MQ_MAX_ID, &t, buf, MQ_WHY_LEN)) != NULL)
        goto done;
    a->professional = t.s;
    a->professional_len = t.len;
    *field = names[F_DURATION];
    if ((*why = mq_check_duration(L, slot + F_DURATION, &a->duration)) != NULL)
        goto done;
    rc = 0;
done:
    /* the strings stay alive: the table at idx holds them */
    lua_settop(L, top);
    return rc;
}

int mq_check_appt_op(lua_State *L, mq_op op, int ia, int ib, mq_op_args *a,
                     const char **field, const char **why, char *buf)
{
    mq_text t;

    memset(a, 0, sizeof *a);
    a->op = op;
    if (op == MQ_OP_CREATE)
        return create_args(L, ia, a, field, why, buf);
    *field = "code";
    if ((*why = mq_check_code(L, ia, &t, buf, MQ_WHY_LEN)) != NULL)
        return -1;
    a->code = t.s;
    a->code_len = t.len;
    if (op == MQ_OP_RESCHEDULE) {
        *field = "starts_at";
        if ((*why = mq_check_starts_at(L, ib, a->starts_at, buf, MQ_WHY_LEN)) != NULL)
            return -1;
    }
    return 0;
}

/* ---- core.check_* for mediquo.validate: ok, value | false, why ------- */

static int verdict(lua_State *L, const char *why)
{
    lua_pushboolean(L, 0);
    lua_pushstring(L, why);
    return 2;
}

/* the answer of check_text and check_code */
static int text_verdict(lua_State *L, const char *why, const mq_text *t)
{
    if (why != NULL)
        return verdict(L, why);
    lua_pushboolean(L, 1);
    lua_pushboolean(L, t->verbatim);
    return 2;
}

/* core.check_text(v [, max]) -> true, verbatim_in_json | false, why */
static int l_check_text(lua_State *L)
{
    char buf[MQ_WHY_LEN];
    mq_text t;
    lua_Integer max = luaL_optinteger(L, 2, MQ_MAX_ID);

    luaL_argcheck(L, max > 0, 2, "max must be positive");
    return text_verdict(L, mq_check_text(L, 1, (size_t)max, &t, buf, sizeof buf), &t);
}

/* core.check_code(v) -> true, verbatim_in_json | false, why */
static int l_check_code(lua_State *L)
{
    char buf[MQ_WHY_LEN];
    mq_text t;
    return text_verdict(L, mq_check_code(L, 1, &t, buf, sizeof buf), &t);
}

/* core.check_starts_at(v) -> true, "YYYY-MM-DDTHH:MM:SSZ" | false, why */
static int l_check_starts_at(lua_State *L)
{
    char buf[MQ_WHY_LEN], out[MQ_ISO_LEN];
    const char *why = mq_check_starts_at(L, 1, out, buf, sizeof buf);
    if (why != NULL)
        return verdict(L, why);
    lua_pushboolean(L, 1);
    lua_pushstring(L, out);
    return 2;
}

/* core.check_duration(v) -> true, v | false, why  (nil is fine: true, nil) */
static int l_check_duration(lua_State *L)
{
    long d;
    const char *why = mq_check_duration(L, 1, &d);
    if (why != NULL)
        return verdict(L, why);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    return 2;
}

/* core.check_fields(t, allowed) -> true | false, why: t is a table whose
 * every key is a string key of allowed with a true value */
#define MAX_NAMES 64

static int l_check_fields(lua_State *L)
{
    char buf[MQ_WHY_LEN];
    const char *names[MAX_NAMES];
    size_t nn = 0;

    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_istable(L, 1)) {
        snprintf(buf, sizeof buf, "must be a table, got %s", luaL_typename(L, 1));
        return verdict(L, buf);
    }
    lua_settop(L, 2);
    lua_pushnil(L);
    while (nn < MAX_NAMES && lua_next(L, 2) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, 3) == LUA_TSTRING)
            names[nn++] = lua_tostring(L, 3);    /* the table at 2 keeps it */
    }
    lua_settop(L, 2);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        lua_pop(L, 1);                      /* the value */
        int ok = 0;
        if (lua_type(L, 3) == LUA_TSTRING) {
            lua_pushvalue(L, 3);
            lua_rawget(L, 2);
            ok = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
        if (!ok)
        {
            verdict(L, mq_check_unknown_key(L, 3, names, nn, buf, sizeof buf));
            lua_pushvalue(L, 3);        /* the key itself: err.field */
            return 3;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.check_op(t) -> true | false, field, why: an operation as run_batch
 * takes it ({op = "create", code = ...}), checked as the engine checks it,
 * nothing sent (the CLI's --dry-run) */
static int l_check_op(lua_State *L)
{
    char buf[MQ_WHY_LEN];
    const char *field, *why, *name;
    mq_op op;
    mq_op_args a;
    int rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "op");
    name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
    if (strcmp(name, "create") == 0)
        op = MQ_OP_CREATE;
    else if (strcmp(name, "reschedule") == 0)
        op = MQ_OP_RESCHEDULE;
    else if (strcmp(name, "cancel") == 0)
        op = MQ_OP_CANCEL;
    else {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "op");
        lua_pushliteral(L, "must be create, reschedule or cancel");
        return 3;
    }
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "starts_at");
    rc = op == MQ_OP_CREATE ? mq_check_appt_op(L, op, 1, 0, &a, &field, &why, buf)
                            : mq_check_appt_op(L, op, 3, 4, &a, &field, &why, buf);
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushstring(L, field);
    lua_pushstring(L, why);
    return 3;
}

/* core.check_max_retries(v) -> true | false, why (the engine's rule) */
static int l_check_max_retries(lua_State *L)
{
    double v = lua_type(L, 1) == LUA_TNUMBER ? (double)lua_tonumber(L, 1) : NAN;
    const char *why = mq_engine_check_max_retries(v);
    if (why != NULL)
        return verdict(L, why);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.check_base_url(v, insecure) -> { scheme=, host=, port=, path=, url= }
 * | false, why: the one parser (baseurl.c, curl_url) */
static int l_check_base_url(lua_State *L)
{
    mq_base_url u;
    size_t len;
    const char *s, *why;
    char buf[MQ_WHY_LEN];

    if (lua_type(L, 1) != LUA_TSTRING) {
        snprintf(buf, sizeof buf, "must be a string, got %s", luaL_typename(L, 1));
        return verdict(L, buf);
    }
    s = lua_tolstring(L, 1, &len);
    if ((why = mq_base_url_parse(s, len, lua_toboolean(L, 2), &u)) != NULL)
        return verdict(L, why);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, u.scheme);
    lua_setfield(L, -2, "scheme");
    lua_pushstring(L, u.host);
    lua_setfield(L, -2, "host");
    lua_pushinteger(L, u.port);
    lua_setfield(L, -2, "port");
    lua_pushlstring(L, u.url + u.origin_len, u.url_len - u.origin_len);
    lua_setfield(L, -2, "path");
    lua_pushlstring(L, u.url, u.url_len);
    lua_setfield(L, -2, "url");
    return 1;
}

/* core.suggest(name, list) -> the name of list nearest name, or nil */
static int l_suggest(lua_State *L)
{
    const char *names[MAX_NAMES];
    size_t len, n = 0;
    const char *name = luaL_checklstring(L, 1, &len), *near;

    luaL_checktype(L, 2, LUA_TTABLE);
    for (lua_Integer i = 1; n < MAX_NAMES; i++) {
        lua_rawgeti(L, 2, i);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            break;
        }
        names[n++] = lua_tostring(L, -1);   /* the table keeps it */
        lua_pop(L, 1);
    }
    near = mq_suggest(name, len, names, n);
    if (near == NULL)
        lua_pushnil(L);
    else
        lua_pushstring(L, near);
    return 1;
}

void mq_lcheck_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "check_text", l_check_text },
        { "check_code", l_check_code },
        { "check_starts_at", l_check_starts_at },
        { "check_duration", l_check_duration },
        { "check_fields", l_check_fields },
        { "check_op", l_check_op },
        { "check_max_retries", l_check_max_retries },
        { "check_base_url", l_check_base_url },
        { "suggest", l_suggest },
        { NULL, NULL },
    };
    mq_setfuncs(L, funcs);
    /* OP_FIELDS: { create = { "code", ... }, reschedule = ..., cancel = ... } */
    lua_createtable(L, 0, (int)(sizeof op_fields / sizeof *op_fields));
    for (size_t i = 0; i < sizeof op_fields / sizeof *op_fields; i++) {
        lua_newtable(L);
        for (int f = 0; op_fields[i].fields[f] != NULL; f++) {
            lua_pushstring(L, op_fields[i].fields[f]);
            lua_rawseti(L, -2, f + 1);
        }
        lua_setfield(L, -2, mq_op_name(op_fields[i].op));
    }
    lua_setfield(L, -2, "OP_FIELDS");
}
