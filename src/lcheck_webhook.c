/* lcheck_webhook.c: the arguments of the webhook subscription operations,
 * checked before anything is sent: the type among the 15 mediQuo
 * documents, meta.url an http(s) URL, meta.headers a few name/value pairs
 * that can go into a header and a JSON string, the id a path segment.
 * Values are never quoted in a message. */
#include "lcheck_webhook.h"
#include "lcheck.h"

#include <stdio.h>
#include <string.h>

const char *const mq_wh_types[] = {
    "appointment_cancelled", "appointment_created", "appointment_finished",
    "appointment_no_showed", "appointment_rescheduled", "chat_consultation_finished",
    "immediate_video_call_assigned", "message_unread", "patient_message_received",
    "prescription_created", "professional_block_created", "professional_block_deleted",
    "professional_block_updated", "report_created", "triage_position_updated", NULL,
};

static const char *check_type(lua_State *L, int idx, mq_op_args *a, char *buf)
{
    mq_text t;
    const char *why = mq_check_text(L, idx, MQ_WH_TYPE_MAX, &t, buf, MQ_WHY_LEN);
    if (why != NULL && lua_type(L, idx) == LUA_TSTRING)
        why = NULL, t.len = 0;      /* too long or odd: not one of the list either */
    if (why != NULL)
        return why;
    for (int i = 0; mq_wh_types[i] != NULL; i++) {
        if (strlen(mq_wh_types[i]) == t.len && memcmp(mq_wh_types[i], t.s, t.len) == 0) {
            a->wh_type = mq_wh_types[i];
            a->wh_type_len = t.len;
            return NULL;
        }
    }
    return "must be one of the 15 subscription types mediQuo documents "
           "(appointment_created, appointment_rescheduled, appointment_cancelled, "
           "appointment_finished, appointment_no_showed, ...)";
}

static const char *check_url(lua_State *L, int idx, mq_op_args *a, char *buf)
{
    mq_text t;
    size_t skip;
    const char *why = mq_check_text(L, idx, MQ_WH_URL_MAX, &t, buf, MQ_WHY_LEN);
    if (why != NULL)
        return why;
    if (t.len > 7 && memcmp(t.s, "http://", 7) == 0)
        skip = 7;
    else if (t.len > 8 && memcmp(t.s, "https://", 8) == 0)
        skip = 8;
    else
        return "must be an http:// or https:// URL";
    if (t.s[skip] == '/' || t.s[skip] == '?' || t.s[skip] == '#' || t.s[skip] == ':')
        return "must name a host";
    for (size_t i = 0; i < t.len; i++)
        if (strchr(" \"<>\\^`{|}", t.s[i]) != NULL)
            return "must not contain spaces, quotes, <, >, \\, ^, `, {, | or }";
    a->wh_url = t.s;
    a->wh_url_len = t.len;
    return NULL;
}

/* a header name: an HTTP token of letters, digits, '-' and '_' */
static int header_name(const char *s, size_t n)
{
    if (n == 0 || n > MQ_WH_HNAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* nil, or a table of up to MQ_WH_HEADERS_MAX name -> value strings */
static const char *check_headers(lua_State *L, int idx, mq_op_args *a, char *buf)
{
    int n = 0;
    if (lua_isnil(L, idx))
        return NULL;
    if (!lua_istable(L, idx)) {
        snprintf(buf, MQ_WHY_LEN, "must be a table of header name -> value, got %s",
                 luaL_typename(L, idx));
        return buf;
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        mq_text v;
        size_t klen;
        const char *why;
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            return "must be a table of header name -> value (names are strings)";
        }
        const char *k = lua_tolstring(L, -2, &klen);
        if (!header_name(k, klen)) {
            lua_pop(L, 2);
            snprintf(buf, MQ_WHY_LEN, "names must be 1 to %d letters, digits, '-' or '_'",
                     MQ_WH_HNAME_MAX);
            return buf;
        }
        if ((why = mq_check_text(L, -1, MQ_WH_HVALUE_MAX, &v, buf, MQ_WHY_LEN)) != NULL) {
            lua_pop(L, 2);
            return why;     /* "must ..." about the value */
        }
        if (n == MQ_WH_HEADERS_MAX) {
            lua_pop(L, 2);
            snprintf(buf, MQ_WHY_LEN, "must have at most %d entries", MQ_WH_HEADERS_MAX);
            return buf;
        }
        /* the table at idx holds both strings: they stay alive */
        a->wh_headers[n].name = k;
        a->wh_headers[n].name_len = klen;
        a->wh_headers[n].value = v.s;
        a->wh_headers[n].value_len = v.len;
        n++;
        lua_pop(L, 1);
    }
    a->wh_nheaders = n;
    return NULL;
}

/* the subscription table at idx: type, url, headers, channel */
static int subscription(lua_State *L, int idx, mq_op_args *a, const char **field,
                        const char **why, char *buf)
{
    static const char *const keys[] = { "type", "url", "headers", "channel", NULL };
    int top = lua_gettop(L), rc = -1, slot;

    *field = "subscription";
    if (!lua_istable(L, idx)) {
        snprintf(buf, MQ_WHY_LEN, "must be a table {type, url, headers}, got %s",
                 luaL_typename(L, idx));
        *why = buf;
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int known = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; keys[i] != NULL; i++)
                known |= strcmp(lua_tostring(L, -1), keys[i]) == 0;
        if (!known) {
            *why = mq_check_unknown_key(L, -1, keys, 4, buf, MQ_WHY_LEN);
            goto done;
        }
    }
    slot = lua_gettop(L) + 1;
    for (int i = 0; keys[i] != NULL; i++) {
        lua_pushstring(L, keys[i]);
        lua_rawget(L, idx);
    }
    *field = "channel";
    if (!lua_isnil(L, slot + 3)
        && (lua_type(L, slot + 3) != LUA_TSTRING || strcmp(lua_tostring(L, slot + 3), "http") != 0)) {
        *why = "must be \"http\" (email subscriptions are not supported by this library)";
        goto done;
    }
    *field = "type";
    if ((*why = check_type(L, slot, a, buf)) != NULL)
        goto done;
    *field = "url";
    if ((*why = check_url(L, slot + 1, a, buf)) != NULL)
        goto done;
    *field = "headers";
    if ((*why = check_headers(L, slot + 2, a, buf)) != NULL)
        goto done;
    rc = 0;
done:
    lua_settop(L, top);
    return rc;
}

int mq_check_webhook_op(lua_State *L, mq_op op, int ia, int ib, mq_op_args *a,
                        const char **field, const char **why, char *buf)
{
    mq_text t;

    if (op == MQ_OP_WH_LIST)
        return 0;
    if (op == MQ_OP_WH_SUBSCRIBE)
        return subscription(L, ia, a, field, why, buf);
    *field = "id";
    if ((*why = mq_check_code(L, ia, &t, buf, MQ_WHY_LEN)) != NULL)
        return -1;
    a->code = t.s;
    a->code_len = t.len;
    if (op == MQ_OP_WH_UPDATE)
        return subscription(L, ib, a, field, why, buf);
    return 0;
}
