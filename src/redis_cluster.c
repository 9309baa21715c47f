/* redis_cluster.c: Redis Cluster's topology as data: the slot of a key
 * (CRC16 with the hash-tag rule), the slot map read from a CLUSTER SLOTS
 * reply and kept up to date by MOVED, and the parse of MOVED/ASK errors.
 * No I/O: the conversation (redis_conv.c) decides what to send where. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_cluster.h"

/* CRC16-CCITT (XMODEM): poly 0x1021, init 0, no reflection, as the
 * Redis Cluster specification. */
static unsigned crc16(const unsigned char *p, size_t n)
{
    unsigned crc = 0;
    size_t i;
    int b;

    for (i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? ((crc << 1) ^ 0x1021u) & 0xffffu : (crc << 1) & 0xffffu;
    }
    return crc;
}

unsigned mq_redis_key_slot(const char *key, size_t len)
{
    const char *open, *close;

    if (key == NULL) return 0;
    open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16((const unsigned char *)open + 1, (size_t)(close - open - 1)) % MQ_REDIS_SLOTS;
    }
    return crc16((const unsigned char *)key, len) % MQ_REDIS_SLOTS;
}

/* A host as Redis announces it: printable, no space, no bracket, at most
 * 255 bytes (bare IPv6 holds colons; a zone holds '%'). */
static int host_ok(const char *h, size_t n)
{
    size_t i;

    if (n >= MQ_REDIS_HOSTLEN) return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '/' || c == '@') return 0;
    }
    return 1;
}

static int topo_fail(mq_redis_slot_map *m, int rc, char *err, size_t errlen, const char *fmt,
                     long a, long b)
{
    mq_redis_slot_map_free(m);
    if (err && errlen) snprintf(err, errlen, fmt, a, b);
    return rc;
}

static int by_lo(const void *a, const void *b)
{
    const mq_redis_slot_range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* one entry: [lo, hi, [host, port, ...], replicas...] */
static int read_range(const redisReply *e, mq_redis_slot_range *r, size_t i, char *err, size_t errlen)
{
    const redisReply *node, *h, *p;

    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element == NULL) {
        snprintf(err, errlen, "CLUSTER SLOTS entry %zu is not [first, last, master, ...]", i + 1);
        return -1;
    }
    if (e->element[0] == NULL || e->element[0]->type != REDIS_REPLY_INTEGER
        || e->element[1] == NULL || e->element[1]->type != REDIS_REPLY_INTEGER
        || e->element[0]->integer < 0 || e->element[1]->integer >= MQ_REDIS_SLOTS
        || e->element[0]->integer > e->element[1]->integer) {
        snprintf(err, errlen, "CLUSTER SLOTS entry %zu: the slot range is not 0 <= first <= last <= 16383",
                 i + 1);
        return -1;
    }
    r->lo = (unsigned)e->element[0]->integer;
    r->hi = (unsigned)e->element[1]->integer;
    node = e->element[2];
    if (node == NULL || node->type != REDIS_REPLY_ARRAY || node->elements < 2 || node->element == NULL
        || (h = node->element[0]) == NULL || (p = node->element[1]) == NULL) {
        snprintf(err, errlen, "CLUSTER SLOTS entry %zu (slots %u-%u): the master is not [host, port, ...]",
                 i + 1, r->lo, r->hi);
        return -1;
    }
    if (p->type != REDIS_REPLY_INTEGER || p->integer < 1 || p->integer > 65535) {
        snprintf(err, errlen, "CLUSTER SLOTS entry %zu (slots %u-%u): the master's port is not 1..65535",
                 i + 1, r->lo, r->hi);
        return -1;
    }
    r->port = (int)p->integer;
    r->host[0] = '\0';
    if (h->type == REDIS_REPLY_NIL) return 0;          /* unknown endpoint: the node asked */
    if (h->type != REDIS_REPLY_STRING || (h->len > 0 && h->str == NULL)) {
        snprintf(err, errlen, "CLUSTER SLOTS entry %zu (slots %u-%u): the master's host is not a string",
                 i + 1, r->lo, r->hi);
        return -1;
    }
    if (h->len == 1 && h->str[0] == '?') {
        snprintf(err, errlen, "CLUSTER SLOTS: the master of slots %u-%u (port %d) announces no hostname "
                 "('?': set its cluster-announce-hostname, or cluster-preferred-endpoint-type ip)",
                 r->lo, r->hi, r->port);
        return -1;
    }
    if (!host_ok(h->str, h->len)) {
        snprintf(err, errlen, "CLUSTER SLOTS entry %zu (slots %u-%u): the master's host is not a host name "
                 "or address", i + 1, r->lo, r->hi);
        return -1;
    }
    if (h->len) memcpy(r->host, h->str, h->len);
    r->host[h->len] = '\0';
    return 0;
}

int mq_redis_slot_map_build(const redisReply *rep, mq_redis_slot_map *m, char *err, size_t errlen)
{
    char tmp[1];
    size_t i;

    if (err == NULL || errlen == 0) {
        err = tmp;
        errlen = sizeof tmp;
    }
    err[0] = '\0';
    m->r = NULL;
    m->n = 0;
    if (rep == NULL)
        return topo_fail(m, MQ_TOPO_MALFORMED, err, errlen, "CLUSTER SLOTS: no reply", 0, 0);
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "CLUSTER SLOTS answered: %.*s", (int)(rep->len < 400 ? rep->len : 400),
                 rep->str ? rep->str : "");
        return MQ_TOPO_ERROR_REPLY;
    }
    if (rep->type != REDIS_REPLY_ARRAY)
        return topo_fail(m, MQ_TOPO_MALFORMED, err, errlen, "CLUSTER SLOTS: the reply is not an array (type %ld)",
                         (long)rep->type, 0);
    if (rep->elements == 0) return MQ_TOPO_OK;
    if (rep->element == NULL || rep->elements > MQ_REDIS_SLOTS)
        return topo_fail(m, MQ_TOPO_MALFORMED, err, errlen, "CLUSTER SLOTS: %ld entries (at most %ld)",
                         (long)rep->elements, MQ_REDIS_SLOTS);
    m->r = calloc(rep->elements, sizeof *m->r);
    if (m->r == NULL) return topo_fail(m, MQ_TOPO_NOMEM, err, errlen, "CLUSTER SLOTS: out of memory", 0, 0);
    for (i = 0; i < rep->elements; i++) {
        if (read_range(rep->element[i], &m->r[i], i, err, errlen) != 0) {
            mq_redis_slot_map_free(m);
            return MQ_TOPO_MALFORMED;
        }
        m->n++;
    }
    qsort(m->r, m->n, sizeof *m->r, by_lo);
    for (i = 1; i < m->n; i++)
        if (m->r[i].lo <= m->r[i - 1].hi)
            return topo_fail(m, MQ_TOPO_MALFORMED, err, errlen,
                             "CLUSTER SLOTS: two masters claim slot %ld (ranges overlap at %ld)",
                             (long)m->r[i].lo, (long)m->r[i].lo);
    return MQ_TOPO_OK;
}

/* index of the range holding slot, or of the first range after it (n if none) */
static size_t lower(const mq_redis_slot_map *m, unsigned slot)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->r[mid].hi < slot) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

const mq_redis_slot_range *mq_redis_slot_map_find(const mq_redis_slot_map *m, unsigned slot)
{
    size_t i;

    if (m == NULL || m->r == NULL || slot >= MQ_REDIS_SLOTS) return NULL;
    i = lower(m, slot);
    return i < m->n && m->r[i].lo <= slot ? &m->r[i] : NULL;
}

int mq_redis_slot_map_move(mq_redis_slot_map *m, unsigned slot, const char *host, int port)
{
    mq_redis_slot_range nr, *grown;
    size_t i, hl, add;

    if (m == NULL || host == NULL || slot >= MQ_REDIS_SLOTS || port < 1 || port > 65535)
        return MQ_TOPO_MALFORMED;
    hl = strlen(host);
    if (!host_ok(host, hl)) return MQ_TOPO_MALFORMED;
    memset(&nr, 0, sizeof nr);
    nr.lo = nr.hi = slot;
    nr.port = port;
    memcpy(nr.host, host, hl + 1);
    i = lower(m, slot);
    if (i < m->n && m->r[i].lo <= slot) {
        mq_redis_slot_range old = m->r[i];
        if (old.port == port && strcmp(old.host, host) == 0) return MQ_TOPO_OK;
        add = (old.lo < slot) + (old.hi > slot);
        grown = realloc(m->r, (m->n + add) * sizeof *m->r);
        if (grown == NULL) return MQ_TOPO_NOMEM;
        m->r = grown;
        memmove(&m->r[i + 1 + add], &m->r[i + 1], (m->n - i - 1) * sizeof *m->r);
        if (old.lo < slot) {
            m->r[i] = old;
            m->r[i].hi = slot - 1;
            i++;
        }
        m->r[i] = nr;
        if (old.hi > slot) {
            m->r[i + 1] = old;
            m->r[i + 1].lo = slot + 1;
        }
        m->n += add;
        return MQ_TOPO_OK;
    }
    grown = realloc(m->r, (m->n + 1) * sizeof *m->r);
    if (grown == NULL) return MQ_TOPO_NOMEM;
    m->r = grown;
    memmove(&m->r[i + 1], &m->r[i], (m->n - i) * sizeof *m->r);
    m->r[i] = nr;
    m->n++;
    return MQ_TOPO_OK;
}

void mq_redis_slot_map_free(mq_redis_slot_map *m)
{
    if (m == NULL) return;
    free(m->r);
    m->r = NULL;
    m->n = 0;
}

/* digits only, value in lo..hi */
static int num(const char *s, size_t n, long lo, long hi, long *out)
{
    long v = 0;
    size_t i;

    if (n == 0 || n > 5) return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int mq_redis_redirect_parse(const char *err, size_t len, unsigned *slot,
                            char *host, size_t hostlen, int *port)
{
    const char *s, *e, *sp, *addr, *h, *he, *colon;
    int kind;
    long v, pv;

    if (err == NULL) return MQ_REDIRECT_NONE;
    s = err;
    e = err + len;
    if (s < e && *s == '-') s++;
    if ((size_t)(e - s) >= 6 && memcmp(s, "MOVED ", 6) == 0) {
        kind = MQ_REDIRECT_MOVED;
        s += 6;
    } else if ((size_t)(e - s) >= 4 && memcmp(s, "ASK ", 4) == 0) {
        kind = MQ_REDIRECT_ASK;
        s += 4;
    } else {
        return MQ_REDIRECT_NONE;
    }
    sp = memchr(s, ' ', (size_t)(e - s));
    if (sp == NULL || num(s, (size_t)(sp - s), 0, MQ_REDIS_SLOTS - 1, &v) != 0) return MQ_REDIRECT_BAD;
    addr = sp + 1;
    if (addr < e && *addr == '[') {             /* [IPv6]:port */
        const char *rb = memchr(addr, ']', (size_t)(e - addr));
        if (rb == NULL || rb + 1 >= e || rb[1] != ':') return MQ_REDIRECT_BAD;
        h = addr + 1;
        he = rb;
        colon = rb + 1;
        if (he == h) return MQ_REDIRECT_BAD;
    } else {                                    /* host:port, ::1:port, :port */
        colon = NULL;
        for (he = e; he > addr; he--)
            if (he[-1] == ':') {
                colon = he - 1;
                break;
            }
        if (colon == NULL) return MQ_REDIRECT_BAD;
        h = addr;
        he = colon;
    }
    if (num(colon + 1, (size_t)(e - colon - 1), 1, 65535, &pv) != 0) return MQ_REDIRECT_BAD;
    if (!host_ok(h, (size_t)(he - h)) || host == NULL || (size_t)(he - h) >= hostlen)
        return MQ_REDIRECT_BAD;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    if (slot) *slot = (unsigned)v;
    if (port) *port = (int)pv;
    return kind;
}

int mq_redis_addr_format(char *buf, size_t n, const char *host, int port, const char *asked)
{
    int w;

    if (buf == NULL || n == 0) return -1;
    buf[0] = '\0';
    if (host == NULL || host[0] == '\0') host = asked ? asked : "";
    w = snprintf(buf, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}
