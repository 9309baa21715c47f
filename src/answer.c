/* answer.c: data.appointment.code and .url out of a create or reschedule
 * answer, the message and per-field messages out of an error answer, the
 * webhook subscription of a given type and URL out of a list answer, or
 * the named top-level members of a request body (the gateway's caller's),
 * in one pass, with no allocation and no recursion. It is the engine's
 * only reader of an answer's JSON, with no second decoder behind it: the
 * engine (engine.c) makes a 2xx answer it refuses (a 0) kind
 * bad_response, and words an error answer it refuses from the status
 * alone.
 * Its grammar is stricter than cjson's, so it may only ever say less
 * than cjson would: a 1 means cjson (decode_max_depth 64) would decode
 * the body and find exactly these strings (fuzz/fuzz_answer.c holds it to
 * an independent decoder): RFC 8259 numbers, an object at the top and
 * only whitespace after it (cjson stops at a NUL byte), no raw control
 * bytes and no \u0000 in strings. */
#include "answer.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 64   /* cjson counts objects and arrays alike */

typedef const unsigned char *ptr;

/* What an open container is... */
enum { C_ARRAY, C_OTHER, C_TOP, C_DATA, C_APPT, C_ERRS, C_FLIST, C_SUBS, C_SUB, C_META };
/* ...and what the value about to be read will be to the caller. */
enum { V_OTHER, V_TOP, V_DATA, V_APPT, V_CODE, V_URL, V_MSG, V_ERRS, V_FIELD, V_FMSG,
       V_SUBS, V_SUB, V_STYPE, V_META, V_SURL,
       V_NAMED };    /* V_NAMED + i: the request member names[i] */

#define MAX_FIELD_KEYS 64   /* a 422 with more fields: the rest are dropped */
#define MAX_FIELD_MSGS 16   /* messages kept per field */

typedef struct {
    ptr base, p, end;
    unsigned char *buf;
    mq_appt *a;
    mq_answer_err *e;  /* NULL: the appointment is all that is asked */
    ptr key; size_t key_len;    /* the field of errors being read */
    int nkeys, nmsgs;
    int lax;           /* an error answer: raw control bytes in strings are
                        * taken (cjson takes them; the message is cleaned) */
    int appt;          /* the data.appointment in force is an object */
    int depth;
    unsigned char open[MAX_DEPTH];
    mq_answer_sub *sub;   /* non-NULL: find this subscription in data[] */
    ptr sub_start;        /* the object of data[] being read */
    int type_ok, url_ok;  /* its type and meta.url, as last seen, match */
    const char *const *names;   /* non-NULL: a request body's members */
    size_t nnames;
    mq_answer_val *vals;
} scan;

static ptr ws(ptr p, ptr end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static long hex4(ptr p)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int c = p[k];
        if (c >= '0' && c <= '9') v = v * 16 + (c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v = v * 16 + (c - 'A' + 10);
        else return -1;
    }
    return v;
}

/* The \u escape at p (a surrogate pair counts as one): its code point, or
 * -1 for a bad one; *used is the escaped length. */
static long code_point(ptr p, ptr end, size_t *used)
{
    if (end - p < 6)
        return -1;
    long hi = hex4(p + 2), lo;
    *used = 6;
    if (hi <= 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return -1;
    if (hi < 0xD800 || hi > 0xDBFF)
        return hi;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
        return -1;
    lo = hex4(p + 8);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return -1;
    *used = 12;
    return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
}

/* cp (at most U+10FFFF) as UTF-8 at o; returns its length. */
static size_t utf8(unsigned char *o, long cp)
{
    static const unsigned char lead[5] = { 0, 0, 0xC0, 0xE0, 0xF0 };
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;

    for (size_t k = n - 1; k > 0; k--, cp >>= 6)
        o[k] = (unsigned char)(0x80 | (cp & 0x3F));
    o[0] = (unsigned char)(lead[n] | cp);
    return n;
}

/* Bytes that end a run of plain string bytes: control bytes (refused),
 * '"' and '\\'. One table lookup a byte. */
#define ONE4 1, 1, 1, 1
#define ONE32 ONE4, ONE4, ONE4, ONE4, ONE4, ONE4, ONE4, ONE4
static const unsigned char special[256] = { ONE32, ['"'] = 1, ['\\'] = 1 };
#undef ONE32
#undef ONE4

/* The first special byte at or after p, or end. With SSE2 (every x86-64)
 * 16 bytes a step while 16 are left: a URL of 60 bytes in four steps, a
 * key in one; the table for the rest, and where there is no SSE2. */
static ptr plain_run(ptr p, ptr end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);    /* x <= 0x1f: max(x, 0x1f) == 0x1f */

    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                 _mm_cmpeq_epi8(_mm_max_epu8(x, ctl), ctl));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits != 0)
            return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
    while (p < end && !special[*p])
        p++;
    return p;
}

/* The string whose opening quote is at s->p: s->p moves past the closing
 * one, *str and *n (when asked for) say where its bytes are. Without an
 * escape (the usual case) they are the body's own. With one, they are
 * unescaped into out (when given): an escape never unescapes to more bytes
 * than it is written with, so the string at offset i of the body always
 * fits at offset i of buf, clear of any other. */
static int string(scan *s, unsigned char *out, ptr *str, size_t *n)
{
    ptr start = s->p + 1, p = start, end = s->end;
    size_t k, used;
    unsigned char u[4];

    p = plain_run(p, end);
    if (p < end && *p == '"') {         /* no escape */
        if (str) *str = start;
        if (n) *n = (size_t)(p - start);
        s->p = p + 1;
        return 1;
    }
    k = (size_t)(p - start);            /* the plain bytes so far */
    if (out) memcpy(out, start, k);
    while (p < end && *p != '"') {
        unsigned char c = *p;
        if (c != '\\') {
            /* a run of plain bytes, copied at once */
            ptr q = plain_run(p, end);
            if (q == p) {               /* a raw control byte */
                if (!s->lax || *p == '"')
                    return 0;
                q = p + 1;
            }
            if (out) memcpy(out + k, p, (size_t)(q - p));
            k += (size_t)(q - p), p = q;
            continue;
        }
        if (end - p < 2)
            return 0;
        switch (p[1]) {
        case '"': case '\\': case '/': c = p[1]; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            long cp = code_point(p, end, &used);
            if (cp < 0)
                return 0;
            size_t m = utf8(u, cp);
            if (out) memcpy(out + k, u, m);
            k += m, p += used;
            continue;
        }
        default: return 0;
        }
        if (out) out[k] = c;
        k++, p += 2;
    }
    if (p == end)
        return 0;
    s->p = p + 1;
    if (str) *str = out;
    if (n) *n = k;
    return 1;
}

static ptr digits(ptr p, ptr end)
{
    ptr q = p;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    return q == p ? NULL : q;
}

/* RFC 8259 number (every one of which strtod, and so cjson, takes). */
static ptr number(ptr p, ptr end)
{
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') p++;
    else if (!(p = digits(p, end))) return NULL;
    if (p < end && *p == '.' && !(p = digits(p + 1, end))) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        p = digits(p, end);
    }
    return p;
}

static ptr word(ptr p, ptr end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

static int is(ptr k, size_t n, const char *name)
{
    /* the first byte before strlen: most keys differ there */
    if (n == 0) return name[0] == '\0';
    return k[0] == (unsigned char)name[0] && n == strlen(name) && memcmp(k, name, n) == 0;
}

/* One message of the field s->key (msg NULL: the field itself). */
static void field_msg(scan *s, ptr msg, size_t n)
{
    mq_answer_err *e = s->e;
    if (e->fields == NULL || e->nfields >= e->cap)
        return;
    if (msg != NULL && s->nmsgs++ >= MAX_FIELD_MSGS)
        return;
    e->fields[e->nfields].key = (const char *)s->key;
    e->fields[e->nfields].key_len = s->key_len;
    e->fields[e->nfields].msg = (const char *)msg;
    e->fields[e->nfields].msg_len = n;
    e->nfields++;
}

/* A request member's scalar value at s->p, as cjson gives it (null: none). */
static int named(scan *s, mq_answer_val *v)
{
    ptr p = s->p, end = s->end, q;

    v->kind = MQ_JV_NONE;
    v->s = NULL;
    v->len = 0;
    if (*p == '"') {
        ptr str;
        if (!string(s, s->buf + (p + 1 - s->base), &str, &v->len))
            return 0;
        v->kind = MQ_JV_STRING;
        v->s = (const char *)str;
        return 1;
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        if ((s->p = number(p, end)) == NULL)
            return 0;
        v->kind = MQ_JV_NUMBER;
        v->s = (const char *)p;
        v->len = (size_t)(s->p - p);
        return 1;
    }
    if ((q = word(p, end, "true")) != NULL)
        v->kind = MQ_JV_TRUE;
    else if ((q = word(p, end, "false")) != NULL)
        v->kind = MQ_JV_FALSE;
    else
        q = word(p, end, "null");
    s->p = q;
    return q != NULL;
}

/* A scalar value at s->p; the strings we are after are kept. */
static int scalar(scan *s, int want)
{
    ptr p = s->p, end = s->end;

    if (want >= V_NAMED)
        return named(s, &s->vals[want - V_NAMED]);

    if (*p == '"' && (want == V_STYPE || want == V_SURL)) {
        ptr str;
        size_t n;
        const char *w = want == V_STYPE ? s->sub->type : s->sub->url;
        size_t wn = want == V_STYPE ? s->sub->type_len : s->sub->url_len;
        if (!string(s, s->buf + (p + 1 - s->base), &str, &n))
            return 0;
        if (want == V_STYPE)
            s->type_ok = n == wn && memcmp(str, w, n) == 0;
        else
            s->url_ok = n == wn && memcmp(str, w, n) == 0;
        return 1;
    }
    if (want == V_STYPE)
        s->type_ok = 0;             /* a later non-string copy replaces it */
    else if (want == V_SURL)
        s->url_ok = 0;
    if (*p == '"') {
        if (want == V_MSG || want == V_FIELD || want == V_FMSG) {
            ptr str;
            size_t n;
            if (!string(s, s->buf + (p + 1 - s->base), &str, &n))
                return 0;
            if (want == V_MSG) {
                s->e->message = (const char *)str;
                s->e->message_len = n;
            } else {
                field_msg(s, str, n);
            }
            return 1;
        }
        if (want != V_CODE && want != V_URL)
            return string(s, NULL, NULL, NULL);
        ptr str;
        size_t n;
        if (!string(s, s->buf + (p + 1 - s->base), &str, &n))
            return 0;
        if (want == V_CODE) {
            s->a->code = (const char *)str;
            s->a->code_len = n;
        } else {
            s->a->url = (const char *)str;
            s->a->url_len = n;
        }
        return 1;
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) s->p = number(p, end);
    else if (*p == 't') s->p = word(p, end, "true");
    else if (*p == 'f') s->p = word(p, end, "false");
    else if (*p == 'n') s->p = word(p, end, "null");
    else s->p = NULL;
    return s->p != NULL;
}

/* `"key" :` in the innermost object, and what its value will be. A later
 * copy of a key replaces the earlier one in cjson's table, so each of ours
 * forgets what the earlier copy found. Keys that can matter are compared
 * unescaped (into buf, like strings), as cjson would. */
static int key(scan *s, int *want)
{
    int in = s->open[s->depth - 1];
    ptr k = NULL;
    size_t n = 0;

    if (s->p == s->end || *s->p != '"')
        return 0;
    if (!string(s, in == C_OTHER ? NULL : s->buf + (s->p + 1 - s->base),
                in == C_OTHER ? NULL : &k, &n))
        return 0;
    s->p = ws(s->p, s->end);
    if (s->p == s->end || *s->p != ':')
        return 0;
    s->p = ws(s->p + 1, s->end);
    *want = V_OTHER;
    if (s->names != NULL) {
        for (size_t i = 0; in == C_TOP && i < s->nnames; i++)
            if (is(k, n, s->names[i])) {
                *want = V_NAMED + (int)i;
                break;
            }
        return 1;
    }
    if (s->sub != NULL) {
        if (in == C_TOP && is(k, n, "data"))
            *want = V_SUBS;
        else if (in == C_SUB && is(k, n, "type"))
            *want = V_STYPE;
        else if (in == C_SUB && is(k, n, "meta")) {
            *want = V_META;
            s->url_ok = 0;
        } else if (in == C_META && is(k, n, "url"))
            *want = V_SURL;
        return 1;
    }
    if (s->e != NULL && in == C_TOP && is(k, n, "message")) {
        *want = V_MSG;
        s->e->message = NULL;
    } else if (s->e != NULL && in == C_TOP && is(k, n, "errors")) {
        *want = V_ERRS;
    } else if (in == C_ERRS) {
        /* each field once: its messages, or itself when it has none */
        *want = s->nkeys++ < MAX_FIELD_KEYS ? V_FIELD : V_OTHER;
        s->key = k;
        s->key_len = n;
        s->nmsgs = 0;
    } else if ((in == C_TOP && is(k, n, "data")) || (in == C_DATA && is(k, n, "appointment"))) {
        *want = in == C_TOP ? V_DATA : V_APPT;
        s->appt = 0;
        s->a->code = s->a->url = NULL;
    } else if (in == C_APPT && is(k, n, "code")) {
        *want = V_CODE;
        s->a->code = NULL;
    } else if (in == C_APPT && is(k, n, "url")) {
        *want = V_URL;
        s->a->url = NULL;
    }
    return 1;
}

static int parse(scan *s)
{
    int want = V_TOP;

    s->p = ws(s->p, s->end);
    if (s->p == s->end || (*s->p != '{' && !(s->lax && *s->p == '[')))
        return 0;
    for (;;) {                          /* s->p is at a value */
        if (s->p == s->end)
            return 0;
        if (*s->p == '{' || *s->p == '[') {
            if (want >= V_NAMED)
                return 0;           /* a request member that is no scalar: cjson's */
            int c = *s->p == '[' ? (want == V_FIELD ? C_FLIST : want == V_SUBS ? C_SUBS : C_ARRAY)
                  : want == V_TOP ? C_TOP : want == V_DATA ? C_DATA
                  : want == V_APPT ? C_APPT : want == V_ERRS && s->depth == 1 ? C_ERRS
                  : want == V_SUB ? C_SUB : want == V_META ? C_META : C_OTHER;
            int array = c == C_ARRAY || c == C_FLIST || c == C_SUBS;
            if (s->depth == MAX_DEPTH)
                return 0;
            s->open[s->depth++] = (unsigned char)c;
            s->appt |= c == C_APPT;
            if (c == C_SUB) {
                s->sub_start = s->p;
                s->type_ok = s->url_ok = 0;
            }
            s->p = ws(s->p + 1, s->end);
            if (s->p == s->end || *s->p != (array ? ']' : '}')) {
                want = c == C_FLIST ? V_FMSG : c == C_SUBS ? V_SUB : V_OTHER;
                if (!array && !key(s, &want))
                    return 0;
                continue;
            }
            if (c == C_FLIST)
                field_msg(s, NULL, 0);  /* an empty list */
            s->depth--, s->p++;         /* empty */
        } else if (!scalar(s, want)) {
            return 0;
        }
        for (;;) {                      /* after a value: close, or the next one */
            s->p = ws(s->p, s->end);
            if (s->depth == 0)
                return s->p == s->end;
            if (s->p == s->end)
                return 0;
            int c = s->open[s->depth - 1];
            int array = c == C_ARRAY || c == C_FLIST || c == C_SUBS;
            if (*s->p == ',') {
                s->p = ws(s->p + 1, s->end);
                want = c == C_FLIST ? V_FMSG : c == C_SUBS ? V_SUB : V_OTHER;
                if (!array && !key(s, &want))
                    return 0;
                break;
            }
            if (*s->p != (array ? ']' : '}'))
                return 0;
            if (c == C_SUB && s->type_ok && s->url_ok && s->sub->obj == NULL) {
                s->sub->obj = (const char *)s->sub_start;     /* the first match */
                s->sub->obj_len = (size_t)(s->p + 1 - s->sub_start);
            }
            s->depth--, s->p++;
        }
    }
}

int mq_answer_appointment(const char *body, size_t len, char *buf, mq_appt *a)
{
    a->code = a->url = NULL;
    if (body && buf) {
        scan s = { .base = (ptr)body, .p = (ptr)body, .end = (ptr)body + len,
                   .buf = (unsigned char *)buf, .a = a };
        if (parse(&s) && s.appt && a->code && a->url)
            return 1;
    }
    a->code = a->url = NULL;
    a->code_len = a->url_len = 0;
    return 0;
}

int mq_answer_error(const char *body, size_t len, char *buf, mq_answer_err *e)
{
    mq_appt a;

    e->message = NULL;
    e->message_len = 0;
    e->nfields = 0;
    if (body && buf) {
        scan s = { .base = (ptr)body, .p = (ptr)body, .end = (ptr)body + len,
                   .buf = (unsigned char *)buf, .a = &a, .e = e, .lax = 1 };
        if (parse(&s))
            return 1;
    }
    e->message = NULL;
    e->message_len = 0;
    e->nfields = 0;
    return 0;
}

int mq_answer_subscription(const char *body, size_t len, char *buf, mq_answer_sub *sub)
{
    mq_appt a;

    sub->obj = NULL;
    sub->obj_len = 0;
    if (body && buf) {
        scan s = { .base = (ptr)body, .p = (ptr)body, .end = (ptr)body + len,
                   .buf = (unsigned char *)buf, .a = &a, .sub = sub };
        if (parse(&s))
            return 1;
    }
    sub->obj = NULL;
    sub->obj_len = 0;
    return 0;
}

static void no_vals(mq_answer_val *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vals[i].kind = MQ_JV_NONE;
        vals[i].s = NULL;
        vals[i].len = 0;
    }
}

int mq_answer_fields(const char *body, size_t len, char *buf, const char *const *names, size_t n,
                     mq_answer_val *vals)
{
    no_vals(vals, n);           /* a member never met is none */
    if (body && buf && names && n < 64) {
        scan s = { .base = (ptr)body, .p = (ptr)body, .end = (ptr)body + len,
                   .buf = (unsigned char *)buf, .names = names, .nnames = n, .vals = vals };
        if (parse(&s))
            return 1;
    }
    no_vals(vals, n);           /* what a refused body half-filled */
    return 0;
}
