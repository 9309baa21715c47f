/* fuzz_answer.c: mq_answer_appointment on any bytes against an independent
 * reference (recursive; validates the whole body first, then looks up each
 * key's last copy; decodes with the C library), with a buf of exactly len
 * bytes so ASan sees any write past it. On a 1, both strings must lie in
 * the body (written with no escape) or in buf (unescaped), and equal the
 * reference's; on a 0, *a must be cleared. mq_answer_error on the same
 * bytes: memory-safe, everything it keeps in the body or buf, and it takes
 * every body the appointment scan takes. mq_answer_fields on the same
 * bytes: a 1 exactly for a body the reference takes whose named members
 * are no object or array, each named member then its last copy as the
 * reference reads it; on a 0, every value cleared. */
#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"

typedef const unsigned char *P;

static P skip(P p, P e)        /* NULL (a failure) stays NULL */
{
    while (p && p < e && strchr(" \t\n\r", *p) && *p)
        p++;
    return p;
}

static int hex(P p, P e, unsigned long *v)
{
    char h[5] = {0};
    if (e - p < 4)
        return 0;
    for (int k = 0; k < 4; k++)
        if (!isxdigit(h[k] = (char)p[k]))
            return 0;
    *v = strtoul(h, NULL, 16);
    return 1;
}

/* The string at p (its quote), decoded into out (NULL: checked only). */
static P rstring(P p, P e, unsigned char *out, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    size_t k = 0;
    if (p >= e || *p++ != '"')
        return NULL;
    for (;;) {
        if (p >= e || *p < 0x20)
            return NULL;
        unsigned long c = *p++;
        if (c == '"')
            break;
        if (c == '\\') {
            const char *at = p < e && *p ? strchr(from, *p) : NULL;
            if (at) {
                c = (unsigned char)to[at - from], p++;
            } else if (p < e && *p == 'u' && hex(p + 1, e, &c)) {
                p += 5;
                if (c >= 0xD800 && c < 0xDC00) {
                    unsigned long lo;
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex(p + 2, e, &lo)
                        || lo < 0xDC00 || lo > 0xDFFF)
                        return NULL;
                    c = 0x10000 + ((c & 0x3FF) << 10 | (lo & 0x3FF)), p += 6;
                } else if (c == 0 || (c >= 0xDC00 && c < 0xE000)) {
                    return NULL;
                }
                static const unsigned char lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
                size_t m = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
                for (size_t i = m - 1; i > 0; i--, c >>= 6)
                    if (out) out[k + i] = (unsigned char)(0x80 | (c & 0x3F));
                if (out) out[k] = (unsigned char)(lead[m] | c);
                k += m;
                continue;
            } else {
                return NULL;
            }
        }
        if (out) out[k] = (unsigned char)c;
        k++;
    }
    if (n) *n = k;
    return p;
}

/* One value at p; depth counts the containers it is inside. */
static P rvalue(P p, P e, int depth)
{
    static regex_t num;
    static int compiled;
    p = skip(p, e);
    if (p >= e)
        return NULL;
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        if (depth == 64)
            return NULL;
        p = skip(p + 1, e);
        if (p < e && *p == (obj ? '}' : ']'))
            return p + 1;
        for (;;) {
            if (obj) {
                p = skip(rstring(p, e, NULL, NULL), e);
                if (!p || p >= e || *p++ != ':')
                    return NULL;
            }
            p = skip(rvalue(p, e, depth + 1), e);
            if (!p || p >= e)
                return NULL;
            if (*p == (obj ? '}' : ']'))
                return p + 1;
            if (*p != ',')
                return NULL;
            p = skip(p + 1, e);
        }
    }
    if (*p == '"')
        return rstring(p, e, NULL, NULL);
    static const char *const words[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++)
        if ((size_t)(e - p) >= strlen(words[k]) && !memcmp(p, words[k], strlen(words[k])))
            return p + strlen(words[k]);
    if (!compiled) {
        compiled = 1;
        if (regcomp(&num, "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$", REG_EXTENDED))
            abort();
    }
    size_t n = 0;
    while (p + n < e && *(p + n) && strchr("+-.0123456789eE", *(p + n)))
        n++;
    char *t = strndup((const char *)p, n);
    int bad = !t || n == 0 || regexec(&num, t, 0, NULL, 0) != 0;
    free(t);
    return bad ? NULL : p + n;
}

/* The value of the last member named key of the (valid) object at p. */
static P member(P p, P e, const char *key, unsigned char *tmp)
{
    P found = NULL;
    size_t n = 0;
    if (!p || *p != '{' || *(p = skip(p + 1, e)) == '}')
        return NULL;
    for (;;) {
        p = skip(skip(rstring(p, e, tmp, &n), e) + 1, e);
        if (n == strlen(key) && memcmp(tmp, key, n) == 0)
            found = p;
        p = skip(rvalue(p, e, 0), e);
        if (*p++ == '}')
            return found;
        p = skip(p, e);
    }
}

static int reference(P body, size_t len, unsigned char *code, size_t *cn, unsigned char *url,
                     size_t *un, unsigned char *tmp)
{
    P e = body + len, top = skip(body, e);
    if (top == e || *top != '{' || skip(rvalue(top, e, 0), e) != e)
        return 0;
    P a = member(member(top, e, "data", tmp), e, "appointment", tmp);
    P c = a ? member(a, e, "code", tmp) : NULL, u = a ? member(a, e, "url", tmp) : NULL;
    return c && u && rstring(c, e, code, cn) && rstring(u, e, url, un);
}

static int inside(const char *s, size_t n, const char *buf, size_t len)
{
    return s != NULL && s >= buf && n <= len && (size_t)(s - buf) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = size ? size : 1, cn = 0, un = 0;
    char *buf = malloc(cap);
    unsigned char *code = malloc(cap), *url = malloc(cap), *tmp = malloc(cap);
    mq_appt a;

    if (!buf || !code || !url || !tmp)
        abort();
    int rc = mq_answer_appointment((const char *)data, size, buf, &a);
    int want = reference(data, size, code, &cn, url, &un, tmp);
    if (rc != want)
        abort();
    if (rc == 0 && (a.code || a.url || a.code_len || a.url_len))
        abort();
    /* each string is where it was in the body (no escape) or in buf */
#define WHERE(s, n) (inside((s), (n), buf, size) || inside((s), (n), (const char *)data, size))
    if (rc == 1 && (!WHERE(a.code, a.code_len) || !WHERE(a.url, a.url_len)
                    || a.code_len != cn || memcmp(a.code, code, cn) != 0
                    || a.url_len != un || memcmp(a.url, url, un) != 0))
        abort();
    /* the error reader on the same bytes: whatever it keeps lies in the
     * body or in buf, within the caller's field array; every body the
     * appointment scan takes, it takes too (a superset grammar) */
    {
        mq_answer_field f[8];
        mq_answer_err e = { NULL, 0, f, 0, 8 };
        int erc = mq_answer_error((const char *)data, size, buf, &e);
        if (rc == 1 && erc != 1)
            abort();
        if (erc == 0 && (e.message || e.nfields))
            abort();
        if (e.nfields > e.cap || (e.message && !WHERE(e.message, e.message_len)))
            abort();
        for (size_t i = 0; i < e.nfields; i++)
            if (!WHERE(f[i].key, f[i].key_len) || (f[i].msg && !WHERE(f[i].msg, f[i].msg_len)))
                abort();
        /* the subscription finder: the appointment scan's strict grammar
         * (every body that scan takes, it takes; the error reader takes
         * every body it takes), and a match is a whole object of the
         * body: '{' ... '}' */
        {
            mq_answer_sub sub = { "appointment_created", 19, "http://a/b", 10, NULL, 0 };
            int src = mq_answer_subscription((const char *)data, size, buf, &sub);
            if ((rc == 1 && src != 1) || (src == 1 && erc != 1) || (src == 0 && sub.obj != NULL))
                abort();
            if (sub.obj != NULL && (!inside(sub.obj, sub.obj_len, (const char *)data, size)
                                    || sub.obj_len < 2 || sub.obj[0] != '{'
                                    || sub.obj[sub.obj_len - 1] != '}'))
                abort();
        }
    }
    /* the request reader (mediquo.ngx.read's core.json_fields) */
    {
        static const char *const names[] = { "code", "starts_at", "patient", "professional",
                                             "duration" };
        enum { N = sizeof names / sizeof names[0] };
        mq_answer_val v[N];
        P e = data + size, top = skip(data, e), m[N];
        int valid = top != e && *top == '{' && skip(rvalue(top, e, 0), e) == e, scalars = 1;
        int frc = mq_answer_fields((const char *)data, size, buf, names, N, v);
        for (int i = 0; i < N; i++) {
            m[i] = valid ? member(top, e, names[i], tmp) : NULL;
            if (m[i] && (*m[i] == '{' || *m[i] == '['))
                scalars = 0;
        }
        if (frc != (valid && scalars))
            abort();
        for (int i = 0; i < N; i++) {
            if (frc == 0 || !m[i] || *m[i] == 'n') {
                if (v[i].kind != MQ_JV_NONE || v[i].s || v[i].len)
                    abort();
            } else if (*m[i] == '"') {
                if (v[i].kind != MQ_JV_STRING || !rstring(m[i], e, code, &cn)
                    || !WHERE(v[i].s, v[i].len) || v[i].len != cn || memcmp(v[i].s, code, cn) != 0)
                    abort();
            } else if (*m[i] == 't' || *m[i] == 'f') {
                if (v[i].kind != (*m[i] == 't' ? MQ_JV_TRUE : MQ_JV_FALSE))
                    abort();
            } else if (v[i].kind != MQ_JV_NUMBER || v[i].s != (const char *)m[i]
                       || v[i].len != (size_t)(rvalue(m[i], e, 0) - m[i])) {
                abort();
            }
        }
    }
    free(buf);
    free(code);
    free(url);
    free(tmp);
    return 0;
}
