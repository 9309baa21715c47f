/* lhttp.c: HTTP/1.1 on the wire for a driver that moves the bytes itself
 * (mediquo.ngx over nginx cosockets): writes the request bytes and reads
 * the response with Debian's http-parser (libhttp-parser), no parser of
 * our own.
 *
 *   w = core.http1{ api_key=, secret_key=, host=, user_agent=? }
 *   w:request(method, path, body|nil) -> the request bytes, ready to send
 *   (call:request_head(w), lengine_wire.c: the same bytes in two parts,
 *   for a cosocket's send { head, body }: mq_lhttp_push_head)
 *   p = core.http1_parser()
 *   p:feed(bytes) -> "more" | "done", keepalive | nil, outcome, message
 *   p:eof()       -> "done" | nil, outcome, message   (the peer closed)
 *   p:result()    -> status, body, retry_after|nil, rl_remaining|nil,
 *                    rl_limit|nil, rl_reset|nil, keepalive
 *   (call:answer(p, now), lengine_wire.c: the answer handed to the engine
 *   in C, no body string: mq_lhttp_answer)
 *   p:started()   -> whether any byte of an answer came
 *   p:reset()     -> ready for the next response
 *
 * The keys live only in the writer's userdata (wiped on collection); no
 * method reads them back. A failure's outcome is the engine's vocabulary:
 * "too_big" (body over MQ_BODY_CAP, or a header block over the parser's
 * limit: an unusable answer) or "failed" (not HTTP). */
#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "compat.h"
#include "headers.h"
#include "lhttp.h"
#include "engine_vocab.h"
#include "lclass.h"

#define MQ_HTTP1_MT   "mediquo.core.http1"
#define MQ_PARSER_MT  "mediquo.core.http1_parser"
#define HTTP1_TAG     "mq.http1"     /* lclass.h: each userdata's first 8 bytes */
#define PARSER_TAG    "mq.parse"
#define NAME_MAX_LEN  32        /* longer header names are none of ours */
#define VALUE_MAX_LEN 128       /* longer values of ours are malformed */

/* ---- the request writer ---------------------------------------------- */

#define HEAD_PATH_MAX 64        /* the longest path whose heads are kept */
#define HEADS_MAX     64        /* heads kept (by body length); then a new table */
#define HEADS_UV      1         /* where in the writer's own table */

typedef struct {
    char tag[MQ_LTAG_LEN];
    char *fixed;            /* "Host: ...\r\n...X-Secret-Key: ...\r\n"; NULL once freed */
    size_t fixed_len;
    /* the heads of the last method and path (mq_lhttp_push_head), one a
     * body length, kept in a table at [HEADS_UV] of the userdata's own
     * table at [blen + 1]: a create's are the same few strings every time */
    int head_m, head_body;  /* head_m -1: none kept */
    size_t head_plen;
    char head_path[HEAD_PATH_MAX];
    int heads_n;            /* how many that table holds */
} http1_w;

static int w_gc(lua_State *L)
{
    http1_w *w = mq_ltag_check(L, 1, HTTP1_TAG, MQ_HTTP1_MT);
    if (w->fixed != NULL) {
        memset(w->fixed, 0, w->fixed_len);   /* it holds the keys */
        free(w->fixed);
        w->fixed = NULL;
    }
    return 0;
}

static int w_tostring(lua_State *L)
{
    mq_ltag_check(L, 1, HTTP1_TAG, MQ_HTTP1_MT);
    lua_pushliteral(L, "mediquo.http1");
    return 1;
}

/* a header value we write: present, no CR, LF or other control byte */
static const char *field(lua_State *L, const char *name, int required, size_t *len)
{
    const char *v;
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1) && !required) {
        lua_pop(L, 1);
        *len = 0;
        return NULL;
    }
    v = lua_tolstring(L, -1, len);
    lua_pop(L, 1);      /* the table still holds the string */
    if (v == NULL || (required && *len == 0))
        return NULL;
    for (size_t i = 0; i < *len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return NULL;
    return v;
}

static int w_new(lua_State *L)
{
    static const char *const names[] = { "api_key", "secret_key", "host" };
    const char *v[3], *ua;
    size_t l[3], ual, cap, n;
    http1_w *w;
    char *buf;

    luaL_checktype(L, 1, LUA_TTABLE);
    for (int i = 0; i < 3; i++) {
        v[i] = field(L, names[i], 1, &l[i]);
        if (v[i] == NULL) {
            lua_pushnil(L);
            lua_pushfstring(L, "%s: a non-empty string with no control characters", names[i]);
            return 2;
        }
    }
    ua = field(L, "user_agent", 0, &ual);
    if (ua == NULL && ual != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "user_agent: a string with no control characters");
        return 2;
    }
    cap = l[0] + l[1] + l[2] + ual + 160;
    w = mq_lclass_new(L, sizeof *w, HTTP1_TAG, MQ_HTTP1_MT);   /* fixed NULL */
    w->head_m = -1;
    lua_createtable(L, 1, 0);       /* where the heads are kept (HEADS_UV) */
    mq_setuservalue(L, -2);
    buf = malloc(cap);
    if (buf == NULL)
        return luaL_error(L, "mediquo.http1: out of memory");
    n = (size_t)snprintf(buf, cap,
                         "Host: %s\r\nUser-Agent: " MQ_LIB_UA "%s%s\r\nAccept: application/json\r\n"
                         "X-API-Key: %s\r\nX-Secret-Key: %s\r\n",
                         v[2], ua && ual ? " " : "", ua ? ua : "", v[0], v[1]);
    if (n >= cap) {   /* cannot happen: cap counts every byte */
        free(buf);
        return luaL_error(L, "mediquo.http1: header block overflow");
    }
    w->fixed = buf;
    w->fixed_len = n;
    return 1;
}

static const char *const methods[] = { "POST", "PUT", "DELETE", "GET", NULL };

/* the writer at idx, not freed */
static http1_w *check_w(lua_State *L, int idx)
{
    http1_w *w = mq_ltag_check(L, idx, HTTP1_TAG, MQ_HTTP1_MT);
    if (w->fixed == NULL)
        luaL_error(L, "mediquo.http1: freed");
    return w;
}

/* path: the engine percent-encodes codes; a path is never a way to inject */
static void check_path(lua_State *L, int arg, const char *path, size_t plen)
{
    if (plen == 0 || path[0] != '/')
        luaL_argerror(L, arg, "must start with /");
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f)
            luaL_argerror(L, arg, "must not hold blanks or control characters");
}

/* the request line and the headers but the length: the same bytes for
 * every request of one method and path */
static void add_head(luaL_Buffer *b, const http1_w *w, int m, const char *path, size_t plen,
                     int has_body)
{
    luaL_addstring(b, methods[m]);
    luaL_addchar(b, ' ');
    luaL_addlstring(b, path, plen);
    luaL_addstring(b, " HTTP/1.1\r\n");
    luaL_addlstring(b, w->fixed, w->fixed_len);
    if (has_body)
        luaL_addstring(b, "Content-Type: application/json\r\n");
}

/* the rest of the head: a POST or PUT always says its length (written
 * here, not by snprintf: this runs once a request) */
static void length_line(char *num, size_t cap, int m, int has_body, size_t blen)
{
    static const char pre[] = "Content-Length: ", post[] = "\r\n\r\n";
    char digits[24];
    size_t nd = 0, at = sizeof pre - 1;

    if (!has_body && m >= 2) {
        memcpy(num, post + 2, 3);               /* "\r\n" and its NUL */
        return;
    }
    do {
        digits[nd++] = (char)('0' + blen % 10);
        blen /= 10;
    } while (blen > 0);
    if (cap < sizeof pre + nd + sizeof post - 1) {  /* never with the 48 bytes callers give */
        num[0] = '\0';
        return;
    }
    memcpy(num, pre, at);
    while (nd > 0)
        num[at++] = digits[--nd];
    memcpy(num + at, post, sizeof post);          /* with its NUL */
}

/* w:request(method, path, body|nil) -> bytes */
static int w_request(lua_State *L)
{
    http1_w *w = check_w(L, 1);
    int m = luaL_checkoption(L, 2, NULL, methods);
    size_t plen, blen = 0;
    const char *path = luaL_checklstring(L, 3, &plen);
    const char *body = luaL_optlstring(L, 4, NULL, &blen);
    luaL_Buffer b;
    char num[48];

    check_path(L, 3, path, plen);
    luaL_buffinit(L, &b);
    add_head(&b, w, m, path, plen, body != NULL);
    length_line(num, sizeof num, m, body != NULL, blen);
    luaL_addstring(&b, num);
    if (body != NULL)
        luaL_addlstring(&b, body, blen);
    luaL_pushresult(&b);
    return 1;
}

int mq_lhttp_push_head(lua_State *L, int widx, const char *method, const char *path, size_t plen,
                       int has_body, size_t blen)
{
    http1_w *w = check_w(L, widx);
    luaL_Buffer b;
    char num[48];
    int m = 0, uv, keep;

    if (widx < 0)
        widx = lua_gettop(L) + widx + 1;
    while (methods[m] != NULL && strcmp(methods[m], method) != 0)
        m++;
    if (methods[m] == NULL)
        return luaL_error(L, "mediquo.http1: no method %s", method);
    mq_getuservalue(L, widx);
    uv = lua_gettop(L);
    if (m == w->head_m && (has_body != 0) == w->head_body && plen == w->head_plen
        && memcmp(path, w->head_path, plen) == 0) {
        /* the same method and path as last time: this length's head? */
        lua_rawgeti(L, uv, HEADS_UV);
        lua_rawgeti(L, -1, (int)blen + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_replace(L, uv);
            lua_settop(L, uv);
            return 1;
        }
        lua_pop(L, 2);
        keep = 1;
    } else {
        check_path(L, widx, path, plen);
        w->head_m = -1;
        keep = plen <= HEAD_PATH_MAX;
    }
    luaL_buffinit(L, &b);
    add_head(&b, w, m, path, plen, has_body);
    length_line(num, sizeof num, m, has_body, blen);
    luaL_addstring(&b, num);
    luaL_pushresult(&b);
    if (keep) {
        /* kept by its length; another method or path, or HEADS_MAX
         * lengths kept already, start a new table */
        if (w->head_m != m || w->heads_n >= HEADS_MAX) {
            lua_createtable(L, 0, 8);
            lua_rawseti(L, uv, HEADS_UV);
            w->heads_n = 0;
            memcpy(w->head_path, path, plen);
            w->head_plen = plen;
            w->head_m = m;
            w->head_body = has_body != 0;
        }
        lua_rawgeti(L, uv, HEADS_UV);
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, (int)blen + 1);
        lua_pop(L, 1);
        w->heads_n++;
    }
    lua_replace(L, uv);
    lua_settop(L, uv);
    return 1;
}

/* ---- the response reader --------------------------------------------- */

enum { H_NONE, H_RETRY_AFTER, H_RL_REMAINING, H_RL_LIMIT, H_RL_RESET };

typedef struct {
    char tag[MQ_LTAG_LEN];
    http_parser p;
    char *body;             /* malloc'd, at most MQ_BODY_CAP */
    size_t body_len, body_cap;
    int done, started, too_big, keepalive;
    long status;
    double retry_after, rl_reset;
    long rl_remaining, rl_limit;
    /* the header being read: name, then value, possibly in pieces */
    char name[NAME_MAX_LEN + 1];
    size_t name_len;
    int in_value, which;
    char value[VALUE_MAX_LEN + 1];
    size_t value_len;
    int value_long;
} http1_p;

static void facts_clear(http1_p *h)
{
    h->status = 0;
    h->retry_after = -1;
    h->rl_reset = -1;
    h->rl_remaining = h->rl_limit = -1;
    h->body_len = 0;
    h->name_len = h->value_len = 0;
    h->in_value = h->value_long = 0;
    h->which = H_NONE;
    h->too_big = 0;
}

static void parser_reset(http1_p *h)
{
    http_parser_init(&h->p, HTTP_RESPONSE);
    h->p.data = h;
    h->done = h->started = h->keepalive = 0;
    facts_clear(h);
}

/* a complete header line: keep the value if it is one of ours */
static void header_end(http1_p *h)
{
    const char *v = h->value;
    size_t len = h->value_len;
    time_t now;
    if (h->which == H_NONE) {
        h->name_len = h->value_len = 0;
        h->in_value = h->value_long = 0;
        return;
    }
    if (h->value_long)
        len = 0;            /* malformed: reads as absent */
    now = time(NULL);
    switch (h->which) {
    case H_RETRY_AFTER: h->retry_after = mq_retry_after(v, len, now); break;
    case H_RL_REMAINING: h->rl_remaining = mq_header_long(v, len); break;
    case H_RL_LIMIT: h->rl_limit = mq_header_long(v, len); break;
    case H_RL_RESET: {
        /* as the libcurl driver reads it: malformed counts as 0 */
        double left = mq_ratelimit_reset(v, len, now);
        h->rl_reset = left >= 0 ? left : 0;
        break;
    }
    default: break;
    }
    h->which = H_NONE;
    h->name_len = h->value_len = 0;
    h->in_value = h->value_long = 0;
}

static int which_header(const char *name, size_t len)
{
#define OURS(n, w) { (n), sizeof(n) - 1, (w) }
    static const struct { const char *n; size_t len; int w; } ours[] = {
        OURS("retry-after", H_RETRY_AFTER),
        OURS("x-ratelimit-remaining", H_RL_REMAINING),
        OURS("x-ratelimit-limit", H_RL_LIMIT),
        OURS("x-ratelimit-reset", H_RL_RESET),
    };
#undef OURS
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (ours[i].len == len && strncasecmp(name, ours[i].n, len) == 0)
            return ours[i].w;
    return H_NONE;
}

static int on_message_begin(http_parser *p)
{
    http1_p *h = p->data;
    facts_clear(h);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http1_p *h = p->data;
    if (h->in_value)
        header_end(h);
    if (h->name_len + len > NAME_MAX_LEN) {
        h->name_len = NAME_MAX_LEN + 1;     /* too long to be ours */
        return 0;
    }
    memcpy(h->name + h->name_len, at, len);
    h->name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http1_p *h = p->data;
    if (!h->in_value) {
        h->in_value = 1;
        h->which = h->name_len <= NAME_MAX_LEN ? which_header(h->name, h->name_len) : H_NONE;
    }
    if (h->which == H_NONE)
        return 0;
    if (h->value_len + len > VALUE_MAX_LEN) {
        h->value_long = 1;
        return 0;
    }
    memcpy(h->value + h->value_len, at, len);
    h->value_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http1_p *h = p->data;
    if (h->in_value)
        header_end(h);
    h->status = (long)p->status_code;
    /* a body announced over the cap is refused before it is read */
    if (p->content_length != ULLONG_MAX && p->content_length > 0
        && p->content_length > MQ_BODY_CAP) {
        h->too_big = 1;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http1_p *h = p->data;
    if (len > MQ_BODY_CAP - h->body_len) {
        h->too_big = 1;
        return -1;
    }
    if (h->body_len + len > h->body_cap) {
        size_t ncap = h->body_cap ? h->body_cap : 4096;
        char *nb;
        while (ncap < h->body_len + len)
            ncap *= 2;
        if (ncap > MQ_BODY_CAP)
            ncap = MQ_BODY_CAP;
        nb = realloc(h->body, ncap);
        if (nb == NULL)
            return -1;      /* reported as "failed" (out of memory) */
        h->body = nb;
        h->body_cap = ncap;
    }
    memcpy(h->body + h->body_len, at, len);
    h->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http1_p *h = p->data;
    if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101)
        return 0;           /* an interim answer: the real one follows */
    h->done = 1;
    h->keepalive = http_should_keep_alive(p);
    /* nothing after the answer is read: pause so extra bytes are noticed */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int p_new(lua_State *L)
{
    http1_p *h = mq_lclass_new(L, sizeof *h, PARSER_TAG, MQ_PARSER_MT);
    parser_reset(h);
    return 1;
}

static int p_gc(lua_State *L)
{
    http1_p *h = mq_ltag_check(L, 1, PARSER_TAG, MQ_PARSER_MT);
    free(h->body);
    h->body = NULL;
    h->body_cap = h->body_len = 0;
    return 0;
}

static int p_reset(lua_State *L)
{
    http1_p *h = mq_ltag_check(L, 1, PARSER_TAG, MQ_PARSER_MT);
    parser_reset(h);
    return 0;
}

static int fail(lua_State *L, const char *outcome, const char *message)
{
    lua_pushnil(L);
    lua_pushstring(L, outcome);
    lua_pushstring(L, message);
    return 3;
}

static int parse_error(lua_State *L, http1_p *h)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
    if (h->too_big)
        return fail(L, "too_big", "response body over 1 MiB");
    if (e == HPE_HEADER_OVERFLOW)
        return fail(L, "too_big", "response header block too large");
    lua_pushnil(L);
    lua_pushliteral(L, "failed");
    lua_pushfstring(L, "not an HTTP/1.1 response (%s)", http_errno_description(e));
    return 3;
}

/* p:feed(bytes) -> "more" | "done", keepalive | nil, outcome, message
 * (keepalive: the connection may carry the next request) */
static int p_feed(lua_State *L)
{
    http1_p *h = mq_ltag_check(L, 1, PARSER_TAG, MQ_PARSER_MT);
    size_t len, n;
    const char *data = luaL_checklstring(L, 2, &len);
    if (h->done) {
        /* bytes after a complete answer: the connection is not reusable */
        if (len > 0)
            h->keepalive = 0;
        lua_pushliteral(L, "done");
        lua_pushboolean(L, h->keepalive);
        return 2;
    }
    if (len == 0) {
        lua_pushliteral(L, "more");
        return 1;
    }
    h->started = 1;
    n = http_parser_execute(&h->p, &settings, data, len);
    if (h->done) {
        if (n < len)
            h->keepalive = 0;
        lua_pushliteral(L, "done");
        lua_pushboolean(L, h->keepalive);
        return 2;
    }
    if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK || n != len)
        return parse_error(L, h);
    lua_pushliteral(L, "more");
    return 1;
}

/* p:eof() -> "done" | nil, outcome, message: the peer closed the connection */
static int p_eof(lua_State *L)
{
    http1_p *h = mq_ltag_check(L, 1, PARSER_TAG, MQ_PARSER_MT);
    if (!h->done && h->started) {
        /* a body delimited by the close ends here */
        http_parser_execute(&h->p, &settings, NULL, 0);
    }
    h->keepalive = 0;
    if (h->done) {
        lua_pushliteral(L, "done");
        return 1;
    }
    if (h->started && HTTP_PARSER_ERRNO(&h->p) != HPE_OK
        && HTTP_PARSER_ERRNO(&h->p) != HPE_INVALID_EOF_STATE)
        return parse_error(L, h);
    return fail(L, "reset", h->started ? "connection closed in the middle of the answer"
                                       : "connection closed before any answer");
}

static void push_opt(lua_State *L, double v)
{
    if (v < 0)
        lua_pushnil(L);
    else if (v == (double)(lua_Integer)v)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

static int p_result(lua_State *L)
{
    http1_p *h = mq_ltag_check(L, 1, PARSER_TAG, MQ_PARSER_MT);
    if (h->status > 0)
        lua_pushinteger(L, (lua_Integer)h->status);
    else
        lua_pushnil(L);
    lua_pushlstring(L, h->body ? h->body : "", h->body_len);
    push_opt(L, h->retry_after);
    push_opt(L, (double)h->rl_remaining);
    push_opt(L, (double)h->rl_limit);
    push_opt(L, h->rl_reset);
    lua_pushboolean(L, h->done && h->keepalive);
    return 7;
}

void mq_lhttp_answer(lua_State *L, int idx, mq_answer *a)
{
    http1_p *h = mq_ltag_check(L, idx, PARSER_TAG, MQ_PARSER_MT);

    if (!h->done || h->status <= 0)
        luaL_argerror(L, idx, "the parser has no complete answer");
    a->status = h->status;
    a->body = h->body ? h->body : "";
    a->body_len = h->body_len;
    a->retry_after = h->retry_after;
    a->rl_remaining = h->rl_remaining;
    a->rl_limit = h->rl_limit;
    a->rl_reset = h->rl_reset;
}

static int p_started(lua_State *L)
{
    http1_p *h = mq_ltag_check(L, 1, PARSER_TAG, MQ_PARSER_MT);
    lua_pushboolean(L, h->started);
    return 1;
}

static int p_tostring(lua_State *L)
{
    mq_ltag_check(L, 1, PARSER_TAG, MQ_PARSER_MT);
    lua_pushliteral(L, "mediquo.http1_parser");
    return 1;
}

static void new_mt(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                   lua_CFunction tostr)
{
    const luaL_Reg meta[] = {
        { "__gc", gc },
        { "__tostring", tostr },
        { NULL, NULL },
    };
    mq_lclass(L, name, meta, methods, "mediquo");
    lua_pop(L, 1);
}

void mq_lhttp_open(lua_State *L)
{
    static const luaL_Reg w_methods[] = {
        { "request", w_request },
        { NULL, NULL },
    };
    static const luaL_Reg p_methods[] = {
        { "feed", p_feed },
        { "eof", p_eof },
        { "result", p_result },
        { "started", p_started },
        { "reset", p_reset },
        { NULL, NULL },
    };
    new_mt(L, MQ_HTTP1_MT, w_methods, w_gc, w_tostring);
    new_mt(L, MQ_PARSER_MT, p_methods, p_gc, p_tostring);
    lua_pushcfunction(L, w_new);
    lua_setfield(L, -2, "http1");
    lua_pushcfunction(L, p_new);
    lua_setfield(L, -2, "http1_parser");
}
