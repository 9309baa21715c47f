/* test_redis_topo.c: table-driven unit tests for redis_cluster.c (key
 * slots, the CLUSTER SLOTS map, MOVED/ASK) and redis_sentinel.c (the
 * master's address, ROLE). Replies are read by hiredis's own reader from
 * RESP bytes, written here in a short notation (see resp()). Prints
 * "N passed, N failed"; exits non-zero on any failure. Inputs found by
 * fuzz/fuzz_redis_topo.c go in the "regression" rows. */
#include "redis_cluster.h"
#include "redis_sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "check.h"

/* ---- RESP from a short notation ------------------------------------------
 * Tokens split by spaces: [ ... ] an array, :N an integer, $text a bulk
 * string ($ alone: empty; no space or ']' inside), _ a nil, +text a
 * status. A notation starting with '-' is an error reply holding the
 * rest; one starting with '!' is raw RESP (the '!' dropped). */

typedef struct { char buf[16384]; size_t n; } out;

static void put(out *o, const char *s, size_t n)
{
    if (o->n + n < sizeof o->buf) {
        memcpy(o->buf + o->n, s, n);
        o->n += n;
    }
}

static void putf(out *o, const char *pfx, size_t v)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "%s%zu\r\n", pfx, v);
    put(o, tmp, (size_t)k);
}

/* one value from *p into o; 0, or -1 at ']' or the end */
static int value(const char **p, out *o)
{
    const char *s = *p, *e;

    while (*s == ' ') s++;
    if (*s == '\0' || *s == ']') {
        *p = *s ? s + 1 : s;
        return -1;
    }
    if (*s == '[') {
        out *kids = calloc(1, sizeof *kids);
        size_t n = 0;
        if (kids == NULL) abort();
        s++;
        while (value(&s, kids) == 0) n++;
        putf(o, "*", n);
        put(o, kids->buf, kids->n);
        free(kids);
        *p = s;
        return 0;
    }
    e = s;
    while (*e && *e != ' ' && *e != ']') e++;
    if (*s == ':') {
        put(o, s, (size_t)(e - s));
        put(o, "\r\n", 2);
    } else if (*s == '$') {
        putf(o, "$", (size_t)(e - s - 1));
        put(o, s + 1, (size_t)(e - s - 1));
        put(o, "\r\n", 2);
    } else if (*s == '+') {
        put(o, s, (size_t)(e - s));
        put(o, "\r\n", 2);
    } else if (*s == '_') {
        put(o, "$-1\r\n", 5);
    } else {
        fprintf(stderr, "bad notation at %s\n", s);
        abort();
    }
    *p = e;
    return 0;
}

/* the reply the notation stands for (free with freeReplyObject) */
static redisReply *resp(const char *note)
{
    out o = {{0}, 0};
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;

    if (rd == NULL) abort();
    if (note[0] == '!') {
        put(&o, note + 1, strlen(note + 1));
    } else if (note[0] == '-') {
        put(&o, note, strlen(note));
        put(&o, "\r\n", 2);
    } else {
        const char *p = note;
        if (value(&p, &o) != 0) abort();
    }
    if (redisReaderFeed(rd, o.buf, o.n) != REDIS_OK || redisReaderGetReply(rd, &rep) != REDIS_OK
        || rep == NULL) {
        fprintf(stderr, "hiredis did not read %s\n", note);
        abort();
    }
    redisReaderFree(rd);
    return rep;
}

/* ---- key slots ---------------------------------------------------------- */

/* want: what `CLUSTER KEYSLOT key` answered on redis-server 7.0.15 */
static const struct { const char *key; unsigned want; } SLOT[] = {
    {"foo", 12182}, {"bar", 5061}, {"hello", 866}, {"123456789", 12739}, {"", 0},
    {"{user1000}.following", 3443}, {"{user1000}.followers", 3443},
    {"foo{}{bar}", 8363},          /* empty first tag: the whole key */
    {"foo{{bar}}zap", 4015},       /* tag is "{bar" */
    {"foo{bar}{zap}", 5061},       /* first tag only: "bar" */
    {"{}foo", 9500}, {"a{b", 13340}, {"a}b{c}", 7365}, {"x{", 3596}, {"{", 4092},
    {"}{a}", 15495}, {"mq:{budget:default}:w", 10227}, {"{budget}", 11677},
};

static void test_slots(void)
{
    size_t i;
    char got[32];

    for (i = 0; i < sizeof SLOT / sizeof *SLOT; i++) {
        unsigned s = mq_redis_key_slot(SLOT[i].key, strlen(SLOT[i].key));
        snprintf(got, sizeof got, "%u", s);
        check(s == SLOT[i].want, "key_slot", SLOT[i].key, got);
    }
    /* bytes after a NUL count: the length is what is hashed */
    check(mq_redis_key_slot("a\0b", 3) != mq_redis_key_slot("a", 1), "key_slot", "a\\0b", "same as a");
    check(mq_redis_key_slot("{a\0b}x", 6) == mq_redis_key_slot("a\0b", 3), "key_slot", "{a\\0b}x", "differs");
    check(mq_redis_key_slot(NULL, 0) == 0, "key_slot", "NULL", "not 0");
}

/* ---- MOVED / ASK -------------------------------------------------------- */

static const struct {
    const char *in;
    size_t hostlen;             /* 0: 256 */
    int want;
    unsigned slot;
    const char *host;
    int port;
} REDIR[] = {
    {"MOVED 3999 127.0.0.1:6381", 0, MQ_REDIRECT_MOVED, 3999, "127.0.0.1", 6381},
    {"-MOVED 3999 127.0.0.1:6381", 0, MQ_REDIRECT_MOVED, 3999, "127.0.0.1", 6381},
    {"ASK 3999 127.0.0.1:6381", 0, MQ_REDIRECT_ASK, 3999, "127.0.0.1", 6381},
    /* today's bug: the address was cut at the first '.' */
    {"MOVED 13486 127.0.0.1:30002", 0, MQ_REDIRECT_MOVED, 13486, "127.0.0.1", 30002},
    {"MOVED 0 redis-node-2.example.internal:6379", 0, MQ_REDIRECT_MOVED, 0,
     "redis-node-2.example.internal", 6379},
    {"MOVED 16383 [::1]:7000", 0, MQ_REDIRECT_MOVED, 16383, "::1", 7000},
    {"MOVED 16383 ::1:7000", 0, MQ_REDIRECT_MOVED, 16383, "::1", 7000},
    {"ASK 12 2001:db8::12:1:7001", 0, MQ_REDIRECT_ASK, 12, "2001:db8::12:1", 7001},
    {"MOVED 12 [fe80::1%eth0]:7001", 0, MQ_REDIRECT_MOVED, 12, "fe80::1%eth0", 7001},
    {"MOVED 5 :7002", 0, MQ_REDIRECT_MOVED, 5, "", 7002},   /* unknown endpoint: the node asked */
    {"MOVED 1 h:65535", 0, MQ_REDIRECT_MOVED, 1, "h", 65535},
    {"MOVED 1 hostname:6379", 9, MQ_REDIRECT_MOVED, 1, "hostname", 6379},  /* fits exactly */
    /* not redirections */
    {"ERR unknown command", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    {"MOVEDX 1 h:1", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    {"MOVED", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    {"moved 1 h:1", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    {"ASKING", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    {"CLUSTERDOWN Hash slot not served", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    {"TRYAGAIN Multiple keys request during rehashing of slot", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    {"", 0, MQ_REDIRECT_NONE, 0, NULL, 0},
    /* malformed */
    {"MOVED 16384 h:1", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED -1 h:1", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED  1 h:1", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h:", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h:0", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h:65536", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h:123456", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h:12x", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h:1 ", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 h h:1", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 [::1:7000", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 [::1]7000", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 []:7000", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 [::1]:", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 user@h:1", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED x h:1", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED ", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"ASK 1", 0, MQ_REDIRECT_BAD, 0, NULL, 0},
    /* never cut short: a host that does not fit is refused, not truncated */
    {"MOVED 1 hostname:6379", 8, MQ_REDIRECT_BAD, 0, NULL, 0},
    {"MOVED 1 127.0.0.1:6379", 4, MQ_REDIRECT_BAD, 0, NULL, 0},
};

static void test_redirect(void)
{
    size_t i;
    char got[400], host[256];

    for (i = 0; i < sizeof REDIR / sizeof *REDIR; i++) {
        unsigned slot = 99999;
        int port = -7;
        size_t hl = REDIR[i].hostlen ? REDIR[i].hostlen : sizeof host;
        int rc;

        memset(host, 'Z', sizeof host);
        host[sizeof host - 1] = '\0';
        rc = mq_redis_redirect_parse(REDIR[i].in, strlen(REDIR[i].in), &slot, host, hl, &port);
        snprintf(got, sizeof got, "%d %u %s %d", rc, slot, rc > 0 ? host : "-", port);
        if (REDIR[i].want > 0)
            check(rc == REDIR[i].want && slot == REDIR[i].slot && strcmp(host, REDIR[i].host) == 0
                  && port == REDIR[i].port, "redirect", REDIR[i].in, got);
        else
            check(rc == REDIR[i].want, "redirect", REDIR[i].in, got);
    }
    /* the length given is what is read: no terminator needed, a NUL inside is refused */
    {
        unsigned slot;
        int port;
        check(mq_redis_redirect_parse("MOVED 7 h:12345678", 14, &slot, host, sizeof host, &port)
              == MQ_REDIRECT_MOVED && port == 1234, "redirect", "length 14", host);
        check(mq_redis_redirect_parse("MOVED 7 h\0x:1", 13, &slot, host, sizeof host, &port)
              == MQ_REDIRECT_BAD, "redirect", "NUL in host", host);
        check(mq_redis_redirect_parse(NULL, 5, &slot, host, sizeof host, &port) == MQ_REDIRECT_NONE,
              "redirect", "NULL", "-");
        check(mq_redis_redirect_parse("MOVED 7 h:1", 11, &slot, NULL, 0, &port) == MQ_REDIRECT_BAD,
              "redirect", "NULL host buffer", "-");
    }
}

static const struct { const char *host; int port; const char *asked; size_t n; const char *want; } ADDR[] = {
    {"127.0.0.1", 6381, NULL, 64, "127.0.0.1:6381"},
    {"::1", 7000, NULL, 64, "[::1]:7000"},
    {"fe80::1%eth0", 7000, NULL, 64, "[fe80::1%eth0]:7000"},
    {"", 7002, "10.0.0.9", 64, "10.0.0.9:7002"},          /* the node asked */
    {NULL, 7002, "::1", 64, "[::1]:7002"},
    {"", 7002, NULL, 64, ":7002"},
    {"redis-0.svc", 6379, "x", 64, "redis-0.svc:6379"},
    {"127.0.0.1", 6381, NULL, 15, "127.0.0.1:6381"},      /* fits exactly */
    {"127.0.0.1", 6381, NULL, 14, NULL},                  /* one short: refused, never cut */
    {"::1", 7000, NULL, 10, NULL},
    {"h", 1, NULL, 0, NULL},
};

static void test_addr(void)
{
    size_t i;
    char buf[64];

    for (i = 0; i < sizeof ADDR / sizeof *ADDR; i++) {
        int rc;
        memset(buf, 'Z', sizeof buf);
        rc = mq_redis_addr_format(buf, ADDR[i].n, ADDR[i].host, ADDR[i].port, ADDR[i].asked);
        if (ADDR[i].want)
            check(rc == 0 && strcmp(buf, ADDR[i].want) == 0, "addr_format", ADDR[i].want, buf);
        else
            check(rc == -1 && (ADDR[i].n == 0 || buf[0] == '\0'), "addr_format",
                  ADDR[i].host ? ADDR[i].host : "NULL", rc == 0 ? buf : "-1 but not empty");
    }
}

/* ---- CLUSTER SLOTS ------------------------------------------------------ */

#define ID "$07c37dfeb235213a872192d90877d0cd55635b91"
#define ID2 "$67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"

/* want: the map as "lo-hi=host:port ..." sorted; or the return code and a
 * part of the message */
static const struct { const char *in; int rc; const char *want; } CS[] = {
    /* Redis 3 shape, 3 masters, each with a replica */
    {"[[:0 :5460 [$127.0.0.1 :30001 " ID "] [$127.0.0.1 :30004 " ID2 "]]"
     " [:5461 :10922 [$127.0.0.1 :30002 " ID "] [$127.0.0.1 :30005 " ID2 "]]"
     " [:10923 :16383 [$127.0.0.1 :30003 " ID "] [$127.0.0.1 :30006 " ID2 "]]]",
     MQ_TOPO_OK, "0-5460=127.0.0.1:30001 5461-10922=127.0.0.1:30002 10923-16383=127.0.0.1:30003"},
    /* Redis 7: the node's metadata map as a 4th field; out of order */
    {"[[:10923 :16383 [$10.0.0.3 :6379 " ID " [$hostname $node-3.internal]]]"
     " [:0 :5460 [$10.0.0.1 :6379 " ID " []]] [:5461 :10922 [$10.0.0.2 :6379 " ID " []]]]",
     MQ_TOPO_OK, "0-5460=10.0.0.1:6379 5461-10922=10.0.0.2:6379 10923-16383=10.0.0.3:6379"},
    /* what redis-server 7.0.15 answers with one node and no announced IP */
    {"[[:0 :2 [$ :27431 " ID " []]] [:100 :100 [$ :27431 " ID " []]]]",
     MQ_TOPO_OK, "0-2=:27431 100-100=:27431"},
    /* hostnames and IPv6 as the endpoint; nil endpoint: the node asked */
    {"[[:0 :99 [$redis-0.redis.svc.cluster.local :6379]] [:100 :199 [$::1 :7000]]"
     " [:200 :299 [_ :7001]] [:300 :300 [$fe80::1%eth0 :7002 " ID "]]]",
     MQ_TOPO_OK, "0-99=redis-0.redis.svc.cluster.local:6379 100-199=::1:7000 200-299=:7001 300-300=fe80::1%eth0:7002"},
    /* a resharded map: many small ranges, gaps (slots without a master) */
    {"[[:7 :7 [$a :1]] [:3 :3 [$b :2]] [:16383 :16383 [$c :3]] [:4 :6 [$d :4]]]",
     MQ_TOPO_OK, "3-3=b:2 4-6=d:4 7-7=a:1 16383-16383=c:3"},
    {"[]", MQ_TOPO_OK, ""},
    /* error replies */
    {"-ERR This instance has cluster support disabled", MQ_TOPO_ERROR_REPLY, "cluster support disabled"},
    {"-NOAUTH Authentication required.", MQ_TOPO_ERROR_REPLY, "NOAUTH"},
    /* malformed */
    {"+OK", MQ_TOPO_MALFORMED, "not an array"},
    {":1", MQ_TOPO_MALFORMED, "not an array"},
    {"_", MQ_TOPO_MALFORMED, "not an array"},
    {"[:1]", MQ_TOPO_MALFORMED, "entry 1 is not"},
    {"[[:0 :1]]", MQ_TOPO_MALFORMED, "entry 1 is not"},
    {"[[$0 :1 [$h :1]]]", MQ_TOPO_MALFORMED, "slot range"},
    {"[[:0 :16384 [$h :1]]]", MQ_TOPO_MALFORMED, "slot range"},
    {"[[:-1 :5 [$h :1]]]", MQ_TOPO_MALFORMED, "slot range"},
    {"[[:9 :5 [$h :1]]]", MQ_TOPO_MALFORMED, "slot range"},
    {"[[:0 :5 :7]]", MQ_TOPO_MALFORMED, "master is not"},
    {"[[:0 :5 [$h]]]", MQ_TOPO_MALFORMED, "master is not"},
    {"[[:0 :5 [$h $6379]]]", MQ_TOPO_MALFORMED, "port"},
    {"[[:0 :5 [$h :0]]]", MQ_TOPO_MALFORMED, "port"},
    {"[[:0 :5 [$h :65536]]]", MQ_TOPO_MALFORMED, "port"},
    {"[[:0 :5 [:1 :6379]]]", MQ_TOPO_MALFORMED, "host is not a string"},
    {"[[:0 :5 [[] :6379]]]", MQ_TOPO_MALFORMED, "host is not a string"},
    {"[[:0 :5 [$? :6379]]]", MQ_TOPO_MALFORMED, "announces no hostname"},
    {"!*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$5\r\n[::1]\r\n:6379\r\n", MQ_TOPO_MALFORMED, "not a host name"},
    {"[[:0 :5 [$a/b :6379]]]", MQ_TOPO_MALFORMED, "not a host name"},
    {"[[:0 :5 [$h :1]] [:5 :9 [$g :2]]]", MQ_TOPO_MALFORMED, "overlap"},
    {"[[:0 :16383 [$h :1]] [:100 :100 [$g :2]]]", MQ_TOPO_MALFORMED, "overlap"},
    /* a good entry after a bad one: nothing kept */
    {"[[:0 :5 [$h :1]] [:6 :7 [$g :0]]]", MQ_TOPO_MALFORMED, "entry 2"},
};

static void describe(const mq_redis_slot_map *m, char *s, size_t n)
{
    size_t i, k = 0;

    s[0] = '\0';
    for (i = 0; i < m->n && k < n; i++) {
        int w = snprintf(s + k, n - k, "%s%u-%u=%s:%d", i ? " " : "", m->r[i].lo, m->r[i].hi,
                         m->r[i].host, m->r[i].port);
        if (w < 0) break;
        k += (size_t)w;
    }
}

/* find() agrees with a linear scan on every slot */
static int find_agrees(const mq_redis_slot_map *m)
{
    unsigned s;
    size_t i;

    for (s = 0; s < MQ_REDIS_SLOTS; s++) {
        const mq_redis_slot_range *want = NULL;
        for (i = 0; i < m->n; i++)
            if (m->r[i].lo <= s && s <= m->r[i].hi) want = &m->r[i];
        if (mq_redis_slot_map_find(m, s) != want) return 0;
    }
    return mq_redis_slot_map_find(m, MQ_REDIS_SLOTS) == NULL;
}

static void test_cluster_slots(void)
{
    size_t i;
    char got[2048], err[512];

    for (i = 0; i < sizeof CS / sizeof *CS; i++) {
        redisReply *rep = resp(CS[i].in);
        mq_redis_slot_map m;
        int rc = mq_redis_slot_map_build(rep, &m, err, sizeof err);

        if (rc == MQ_TOPO_OK) {
            describe(&m, got, sizeof got);
            check(CS[i].rc == MQ_TOPO_OK && strcmp(got, CS[i].want) == 0 && find_agrees(&m),
                  "cluster_slots", CS[i].in, got);
        } else {
            snprintf(got, sizeof got, "%d %s", rc, err);
            check(rc == CS[i].rc && strstr(err, CS[i].want) != NULL && m.n == 0 && m.r == NULL,
                  "cluster_slots", CS[i].in, got);
        }
        mq_redis_slot_map_free(&m);
        freeReplyObject(rep);
    }
    {
        mq_redis_slot_map m;
        check(mq_redis_slot_map_build(NULL, &m, err, sizeof err) == MQ_TOPO_MALFORMED, "cluster_slots",
              "NULL", err);
        check(mq_redis_slot_map_find(NULL, 1) == NULL, "slot_map_find", "NULL map", "a range");
    }
}

/* ---- MOVED applied to the map ------------------------------------------ */

static const struct { const char *map; unsigned slot; const char *host; int port; int rc; const char *want; } MV[] = {
    {"[[:0 :5460 [$a :1]] [:5461 :16383 [$b :2]]]", 3999, "c", 3, MQ_TOPO_OK,
     "0-3998=a:1 3999-3999=c:3 4000-5460=a:1 5461-16383=b:2"},
    {"[[:0 :5460 [$a :1]] [:5461 :16383 [$b :2]]]", 0, "c", 3, MQ_TOPO_OK,
     "0-0=c:3 1-5460=a:1 5461-16383=b:2"},
    {"[[:0 :5460 [$a :1]] [:5461 :16383 [$b :2]]]", 5460, "c", 3, MQ_TOPO_OK,
     "0-5459=a:1 5460-5460=c:3 5461-16383=b:2"},
    {"[[:0 :5460 [$a :1]] [:5461 :16383 [$b :2]]]", 16383, "::1", 7000, MQ_TOPO_OK,
     "0-5460=a:1 5461-16382=b:2 16383-16383=::1:7000"},
    {"[[:0 :5460 [$a :1]] [:5461 :16383 [$b :2]]]", 100, "a", 1, MQ_TOPO_OK,    /* already there */
     "0-5460=a:1 5461-16383=b:2"},
    {"[[:7 :7 [$a :1]]]", 7, "b", 2, MQ_TOPO_OK, "7-7=b:2"},
    {"[[:7 :7 [$a :1]]]", 3, "", 2, MQ_TOPO_OK, "3-3=:2 7-7=a:1"},      /* a gap */
    {"[[:7 :7 [$a :1]]]", 9, "b", 2, MQ_TOPO_OK, "7-7=a:1 9-9=b:2"},
    {"[]", 9, "b", 2, MQ_TOPO_OK, "9-9=b:2"},
    {"[[:7 :7 [$a :1]]]", 16384, "b", 2, MQ_TOPO_MALFORMED, "7-7=a:1"},
    {"[[:7 :7 [$a :1]]]", 7, "b", 0, MQ_TOPO_MALFORMED, "7-7=a:1"},
    {"[[:7 :7 [$a :1]]]", 7, "b c", 1, MQ_TOPO_MALFORMED, "7-7=a:1"},
};

static void test_move(void)
{
    size_t i;
    char got[2048], err[256];

    for (i = 0; i < sizeof MV / sizeof *MV; i++) {
        redisReply *rep = resp(MV[i].map);
        mq_redis_slot_map m;
        int rc;

        if (mq_redis_slot_map_build(rep, &m, err, sizeof err) != MQ_TOPO_OK) {
            check(0, "slot_map_move setup", MV[i].map, err);
            freeReplyObject(rep);
            continue;
        }
        rc = mq_redis_slot_map_move(&m, MV[i].slot, MV[i].host, MV[i].port);
        describe(&m, got, sizeof got);
        check(rc == MV[i].rc && strcmp(got, MV[i].want) == 0 && find_agrees(&m), "slot_map_move",
              MV[i].map, got);
        mq_redis_slot_map_free(&m);
        freeReplyObject(rep);
    }
    {   /* many moves one after the other: every slot moved once, each find right */
        mq_redis_slot_map m = {NULL, 0};
        unsigned s;
        int ok = 1;
        char h[16];
        for (s = 0; s < MQ_REDIS_SLOTS && ok; s += 7) {
            snprintf(h, sizeof h, "n%u", s % 5);
            ok = mq_redis_slot_map_move(&m, s, h, 7000 + (int)(s % 5)) == MQ_TOPO_OK
                && mq_redis_slot_map_find(&m, s) && mq_redis_slot_map_find(&m, s)->port == 7000 + (int)(s % 5);
        }
        check(ok && find_agrees(&m), "slot_map_move", "every 7th slot", ok ? "agrees" : "wrong");
        mq_redis_slot_map_free(&m);
    }
}

/* ---- Sentinel ----------------------------------------------------------- */

static const struct { const char *in; int rc; const char *host; int port; const char *why; } SM[] = {
    {"[$127.0.0.1 $6380]", MQ_SENTINEL_OK, "127.0.0.1", 6380, NULL},
    {"[$::1 $26379]", MQ_SENTINEL_OK, "::1", 26379, NULL},
    {"[$redis-master.prod.internal $6379]", MQ_SENTINEL_OK, "redis-master.prod.internal", 6379, NULL},
    {"[$10.1.2.3 :6379]", MQ_SENTINEL_OK, "10.1.2.3", 6379, NULL},
    {"_", MQ_SENTINEL_UNKNOWN, NULL, 0, "knows no master named 'mymaster'"},
    {"!*-1\r\n", MQ_SENTINEL_UNKNOWN, NULL, 0, "knows no master named"},   /* nil array */
    {"-ERR unknown command 'SENTINEL'", MQ_SENTINEL_ERROR_REPLY, NULL, 0, "unknown command"},
    {"-NOAUTH HELLO must be called with the client already authenticated", MQ_SENTINEL_ERROR_REPLY,
     NULL, 0, "NOAUTH"},
    {"[]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[$h]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[$h $1 $2]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[$h $0]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[$h $65536]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[$h $63x]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[$h $]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[:1 $6379]", MQ_SENTINEL_MALFORMED, NULL, 0, "not [host, port]"},
    {"[$ $6379]", MQ_SENTINEL_MALFORMED, NULL, 0, "not a host"},
    {"[$a@b $6379]", MQ_SENTINEL_MALFORMED, NULL, 0, "not a host"},
    {"+OK", MQ_SENTINEL_MALFORMED, NULL, 0, "is this a Sentinel"},
    {":6379", MQ_SENTINEL_MALFORMED, NULL, 0, "is this a Sentinel"},
};

static void test_sentinel(void)
{
    size_t i;
    char got[1024], err[512], host[256];

    for (i = 0; i < sizeof SM / sizeof *SM; i++) {
        redisReply *rep = resp(SM[i].in);
        int port = -1;
        int rc;

        host[0] = '\0';
        rc = mq_redis_sentinel_master(rep, "mymaster", host, sizeof host, &port, err, sizeof err);
        snprintf(got, sizeof got, "%d %s:%d %s", rc, host, port, err);
        if (SM[i].rc == MQ_SENTINEL_OK)
            check(rc == 0 && strcmp(host, SM[i].host) == 0 && port == SM[i].port && err[0] == '\0',
                  "sentinel_master", SM[i].in, got);
        else
            check(rc == SM[i].rc && strstr(err, SM[i].why) != NULL, "sentinel_master", SM[i].in, got);
        freeReplyObject(rep);
    }
    {   /* never cut short: a host longer than the buffer is refused */
        redisReply *rep = resp("[$redis-master.prod.internal $6379]");
        int port;
        check(mq_redis_sentinel_master(rep, "m", host, 10, &port, err, sizeof err) == MQ_SENTINEL_MALFORMED,
              "sentinel_master", "host buffer 10", host);
        check(mq_redis_sentinel_master(rep, NULL, host, sizeof host, &port, NULL, 0) == MQ_SENTINEL_OK,
              "sentinel_master", "no name, no err buffer", host);
        freeReplyObject(rep);
        check(mq_redis_sentinel_master(NULL, "m", host, sizeof host, &port, err, sizeof err)
              == MQ_SENTINEL_MALFORMED, "sentinel_master", "NULL", err);
    }
}

static const struct { const char *in; int want; } ROLE[] = {
    /* what redis-server / redis-sentinel 7.0 answer */
    {"[$master :3129659 [[$127.0.0.1 $9001 $3129242] [$127.0.0.1 $9002 $3129543]]]", MQ_ROLE_MASTER},
    {"[$master :0 []]", MQ_ROLE_MASTER},
    {"[$slave $127.0.0.1 :9000 $connected :3167038]", MQ_ROLE_REPLICA},
    {"[$slave $::1 :6379 $connect :-1]", MQ_ROLE_REPLICA},
    {"[$replica $h :6379 $sync :0]", MQ_ROLE_REPLICA},
    {"[$sentinel [$resque-master $html-fragment-master]]", MQ_ROLE_SENTINEL},
    {"[$sentinel []]", MQ_ROLE_SENTINEL},
    /* not understood */
    {"[$master]", MQ_ROLE_UNKNOWN},
    {"[$master $0 []]", MQ_ROLE_UNKNOWN},
    {"[$slave $h]", MQ_ROLE_UNKNOWN},
    {"[$slave $h :0 $connected :1]", MQ_ROLE_UNKNOWN},
    {"[$sentinel]", MQ_ROLE_UNKNOWN},
    {"[$Master :0 []]", MQ_ROLE_UNKNOWN},
    {"[$primary :0 []]", MQ_ROLE_UNKNOWN},
    {"[]", MQ_ROLE_UNKNOWN},
    {"[:1]", MQ_ROLE_UNKNOWN},
    {"$master", MQ_ROLE_UNKNOWN},
    {"-ERR unknown command 'ROLE'", MQ_ROLE_UNKNOWN},
    {"_", MQ_ROLE_UNKNOWN},
};

static void test_role(void)
{
    size_t i;

    for (i = 0; i < sizeof ROLE / sizeof *ROLE; i++) {
        redisReply *rep = resp(ROLE[i].in);
        int r = mq_redis_role(rep);
        check(r == ROLE[i].want, "role", ROLE[i].in, mq_redis_role_name(r));
        freeReplyObject(rep);
    }
    check(mq_redis_role(NULL) == MQ_ROLE_UNKNOWN, "role", "NULL", "known");
    check(strcmp(mq_redis_role_name(MQ_ROLE_REPLICA), "replica") == 0, "role_name", "replica", "?");
    check(strcmp(mq_redis_role_name(42), "unknown") == 0, "role_name", "42", "?");
}

int main(void)
{
    test_slots();
    test_redirect();
    test_addr();
    test_cluster_slots();
    test_move();
    test_sentinel();
    test_role();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
