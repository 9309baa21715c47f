/* redis_conn.c: the Redis URL of a limiter and its blocking connection
 * (hiredis): connect with a timeout, AUTH and SELECT, run the limiter's
 * script by its SHA1 and re-send it when Redis lost its script cache,
 * drop the connection after any failure so the next call makes a new one.
 * Every message names the server and the problem, never the password. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "redis_conn.h"

struct mq_redis {
    mq_redis_url u;
    redisContext *c;            /* NULL when not connected */
    const char *script;
    char sha[41];               /* "" until SCRIPT LOAD answered */
};

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* %XX-decoded copy (a password may hold '@', ':' or '/') */
static char *decode(const char *s, size_t n)
{
    char *p = malloc(n + 1), *o = p;
    size_t i;

    if (p == NULL) return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n
            && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = { s[i + 1], s[i + 2], 0 };
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return p;
}

static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    long v = 0;
    size_t i;

    if (n == 0 || n > 9) return -1;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

void mq_redis_url_free(mq_redis_url *u)
{
    free(u->host);
    free(u->path);
    free(u->user);
    free(u->pass);
    free(u->where);
    memset(u, 0, sizeof *u);
}

static int bad(mq_redis_url *u, char *err, size_t errlen, const char *why)
{
    mq_redis_url_free(u);
    snprintf(err, errlen, "%s", why);
    return -1;
}

static int parse_unix(const char *s, mq_redis_url *u, char *err, size_t errlen)
{
    const char *q = strchr(s, '?');
    size_t n = q ? (size_t)(q - s) : strlen(s);

    if (n == 0 || s[0] != '/')
        return bad(u, err, errlen, "unix:// needs an absolute socket path (unix:///path/to/redis.sock)");
    if (n > 107)                /* sun_path holds 108 bytes with its NUL */
        return bad(u, err, errlen, "unix:// socket path is longer than 107 bytes");
    if (q && (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 1000000, &u->db) != 0))
        return bad(u, err, errlen, "unix:// takes only ?db=N (N a database number)");
    u->path = dup_n(s, n);
    u->where = dup_n(s, n);
    if (u->path == NULL || u->where == NULL) return bad(u, err, errlen, "out of memory");
    return 0;
}

int mq_redis_url_parse(const char *url, mq_redis_url *u, char *err, size_t errlen)
{
    const char *s, *at, *hp, *he, *slash, *colon;
    char where[300];            /* a host of at most 255 bytes + ":65535" */

    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (url == NULL) return bad(u, err, errlen, "must be a string");
    if (strncmp(url, "unix://", 7) == 0) return parse_unix(url + 7, u, err, errlen);
    if (strncmp(url, "rediss://", 9) == 0)
        return bad(u, err, errlen, "rediss:// (TLS) is not supported: use redis:// on a "
                   "trusted network or a unix:// socket");
    if (strncmp(url, "redis://", 8) != 0)
        return bad(u, err, errlen, "must be redis://[[user]:password@]host[:port][/db] "
                   "or unix:///path/to/redis.sock[?db=N]");
    s = url + 8;
    at = strrchr(s, '@');
    if (at) {
        const char *c = memchr(s, ':', (size_t)(at - s));
        if (c == NULL)
            return bad(u, err, errlen, "the part before '@' must be user:password or :password");
        if (c > s && (u->user = decode(s, (size_t)(c - s))) == NULL)
            return bad(u, err, errlen, "out of memory");
        if ((u->pass = decode(c + 1, (size_t)(at - c - 1))) == NULL)
            return bad(u, err, errlen, "out of memory");
        s = at + 1;
    }
    slash = strchr(s, '/');
    he = slash ? slash : s + strlen(s);
    if (strchr(s, '?'))
        return bad(u, err, errlen, "redis:// takes no ?query (the database goes in the path: /N)");
    hp = s;
    if (*hp == '[') {                       /* [IPv6]:port */
        const char *rb = memchr(hp, ']', (size_t)(he - hp));
        if (rb == NULL) return bad(u, err, errlen, "unclosed '[' in the host");
        u->host = dup_n(hp + 1, (size_t)(rb - hp - 1));
        colon = rb + 1 < he && rb[1] == ':' ? rb + 1 : NULL;
        if (rb + 1 < he && colon == NULL) return bad(u, err, errlen, "junk after ']' in the host");
    } else {
        colon = memchr(hp, ':', (size_t)(he - hp));
        u->host = dup_n(hp, (size_t)((colon ? colon : he) - hp));
    }
    if (u->host == NULL) return bad(u, err, errlen, "out of memory");
    if (u->host[0] == '\0') return bad(u, err, errlen, "the host is missing");
    if (strlen(u->host) > 255) return bad(u, err, errlen, "the host is longer than 255 bytes");
    if (colon && parse_int(colon + 1, (size_t)(he - colon - 1), 1, 65535, &u->port) != 0)
        return bad(u, err, errlen, "the port must be a number from 1 to 65535");
    if (slash && slash[1] != '\0'
        && parse_int(slash + 1, strlen(slash + 1), 0, 1000000, &u->db) != 0)
        return bad(u, err, errlen, "the database (after '/') must be a number");
    snprintf(where, sizeof where, "%s:%d", u->host, u->port);
    if ((u->where = dup_n(where, strlen(where))) == NULL) return bad(u, err, errlen, "out of memory");
    return 0;
}

static char *dup0(const char *s) { return s ? dup_n(s, strlen(s)) : NULL; }

mq_redis *mq_redis_new(const mq_redis_url *u, const char *script)
{
    mq_redis *r = calloc(1, sizeof *r);

    if (r == NULL) return NULL;
    r->script = script;
    r->u.port = u->port;
    r->u.db = u->db;
    r->u.host = dup0(u->host);
    r->u.path = dup0(u->path);
    r->u.user = dup0(u->user);
    r->u.pass = dup0(u->pass);
    r->u.where = dup0(u->where);
    if ((u->host && !r->u.host) || (u->path && !r->u.path) || (u->user && !r->u.user)
        || (u->pass && !r->u.pass) || !r->u.where) {
        mq_redis_free(r);
        return NULL;
    }
    return r;
}

static void drop(mq_redis *r)
{
    if (r->c) redisFree(r->c);
    r->c = NULL;
    r->sha[0] = '\0';
}

void mq_redis_free(mq_redis *r)
{
    if (r == NULL) return;
    drop(r);
    if (r->u.pass) memset(r->u.pass, 0, strlen(r->u.pass));
    mq_redis_url_free(&r->u);
    free(r);
}

int mq_redis_hello_argv(const mq_redis_url *u, int which, const char **argv, size_t *lens)
{
    static char db[16];
    int n = 0;

    if (which == 0) {                       /* AUTH, when there is a password */
        if (u->pass == NULL) return 0;
        argv[n++] = "AUTH";
        if (u->user) argv[n++] = u->user;
        argv[n++] = u->pass;
    } else if (which == 1) {                /* SELECT, when not db 0 */
        if (u->db == 0) return 0;
        snprintf(db, sizeof db, "%d", u->db);
        argv[n++] = "SELECT";
        argv[n++] = db;
    }
    for (int i = 0; i < n; i++) lens[i] = strlen(argv[i]);
    return n;
}

int mq_redis_explain(const mq_redis_url *u, const char *cmd, const char *reply,
                     char *err, size_t errlen)
{
    /* Redis never echoes a password; the reply is quoted up to its first
     * sentence, and only its first 80 bytes. */
    char head[81];
    size_t n = strcspn(reply, ".\r\n");

    if (n > 80) n = 80;
    memcpy(head, reply, n);
    head[n] = '\0';
    if (strncmp(reply, "WRONGPASS", 9) == 0 || strncmp(reply, "ERR invalid password", 20) == 0
        || (strncmp(reply, "ERR AUTH", 8) == 0)) {
        snprintf(err, errlen, "redis %s refused AUTH%s%s: wrong user or password (%s)", u->where,
                 u->user ? " as user " : "", u->user ? u->user : "", head);
        return MQ_REDIS_REFUSED;
    }
    if (strncmp(reply, "NOAUTH", 6) == 0) {
        snprintf(err, errlen, "redis %s needs a password (NOAUTH): put it in the URL "
                 "(redis://:password@host)", u->where);
        return MQ_REDIS_REFUSED;
    }
    if (strncmp(reply, "NOPERM", 6) == 0 || strstr(reply, "user executing the script can't") != NULL) {
        snprintf(err, errlen, "redis %s: the user may not run %s (%s): allow the limiter's "
                 "commands in its ACL", u->where, cmd, head);
        return MQ_REDIS_REFUSED;
    }
    if (strncmp(reply, "LOADING", 7) == 0 || strncmp(reply, "BUSY", 4) == 0
        || strncmp(reply, "MASTERDOWN", 10) == 0 || strncmp(reply, "READONLY", 8) == 0
        || strncmp(reply, "TRYAGAIN", 8) == 0 || strncmp(reply, "CLUSTERDOWN", 11) == 0) {
        snprintf(err, errlen, "redis %s not ready: %s", u->where, head);
        return MQ_REDIS_DOWN;
    }
    snprintf(err, errlen, "redis %s refused %s: %s", u->where, cmd, head);
    return MQ_REDIS_REFUSED;
}

static struct timeval tv_of(double s)
{
    struct timeval tv;
    if (!(s > 0.001)) s = 0.001;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

/* A transport failure: what the connection says, in words. */
static int down(mq_redis *r, const char *doing, char *err, size_t errlen)
{
    const char *why = r->c && r->c->errstr[0] ? r->c->errstr : "no answer";
    int proto = r->c && r->c->err == REDIS_ERR_PROTOCOL;

    if (r->c && r->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        why = "timed out";
    if (proto)
        snprintf(err, errlen, "redis %s does not speak the Redis protocol (%s): is the URL right?",
                 r->u.where, why);
    else
        snprintf(err, errlen, "redis %s unreachable (%s: %s)", r->u.where, doing, why);
    drop(r);
    return proto ? MQ_REDIS_REFUSED : MQ_REDIS_DOWN;
}

/* One command; an error reply is explained (and the connection kept). */
static int command(mq_redis *r, const char *name, int argc, const char **argv, const size_t *lens,
                   redisReply **out, char *err, size_t errlen)
{
    redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);

    *out = NULL;
    if (rep == NULL) return down(r, name, err, errlen);
    if (rep->type == REDIS_REPLY_ERROR) {
        int rc = mq_redis_explain(&r->u, name, rep->str ? rep->str : "", err, errlen);
        *out = rep;             /* the caller may want to look (NOSCRIPT) */
        return rc;
    }
    *out = rep;
    return MQ_REDIS_OK;
}

static int connect_now(mq_redis *r, double tmo, char *err, size_t errlen)
{
    struct timeval tv = tv_of(tmo);
    const char *argv[4];
    size_t lens[4];
    redisReply *rep;
    int which, n, rc;

    r->c = r->u.path ? redisConnectUnixWithTimeout(r->u.path, tv)
                     : redisConnectWithTimeout(r->u.host, r->u.port, tv);
    if (r->c == NULL) {
        snprintf(err, errlen, "redis %s: out of memory", r->u.where);
        return MQ_REDIS_DOWN;
    }
    if (r->c->err) return down(r, "connect", err, errlen);
    if (redisSetTimeout(r->c, tv) != REDIS_OK) return down(r, "set timeout", err, errlen);
    for (which = 0; which < 2; which++) {
        if ((n = mq_redis_hello_argv(&r->u, which, argv, lens)) == 0) continue;
        rc = command(r, argv[0], n, argv, lens, &rep, err, errlen);
        if (rep) freeReplyObject(rep);
        if (rc != MQ_REDIS_OK) {
            drop(r);
            return rc;
        }
    }
    argv[0] = "SCRIPT", argv[1] = "LOAD", argv[2] = r->script;
    for (n = 0; n < 3; n++) lens[n] = strlen(argv[n]);
    rc = command(r, "SCRIPT LOAD", 3, argv, lens, &rep, err, errlen);
    if (rc == MQ_REDIS_OK && (rep == NULL || rep->type != REDIS_REPLY_STRING || rep->len != 40)) {
        snprintf(err, errlen, "redis %s: SCRIPT LOAD gave no SHA1: is it Redis?", r->u.where);
        rc = MQ_REDIS_REFUSED;
    }
    if (rc == MQ_REDIS_OK && rep) memcpy(r->sha, rep->str, 41);
    if (rep) freeReplyObject(rep);
    if (rc != MQ_REDIS_OK) drop(r);
    return rc;
}

int mq_redis_eval(mq_redis *r, int nkeys, int argc, const char **argv, double tmo,
                  redisReply **out, char *err, size_t errlen)
{
    const char *av[40];
    size_t lens[40];
    char nk[12];
    redisReply *rep = NULL;
    int i, rc;

    *out = NULL;
    if (argc + 3 > 40) {
        snprintf(err, errlen, "redis: too many arguments");
        return MQ_REDIS_REFUSED;
    }
    if (r->c == NULL && (rc = connect_now(r, tmo, err, errlen)) != MQ_REDIS_OK)
        return rc;
    if (redisSetTimeout(r->c, tv_of(tmo)) != REDIS_OK) return down(r, "set timeout", err, errlen);
    snprintf(nk, sizeof nk, "%d", nkeys);
    av[0] = "EVALSHA", av[1] = r->sha, av[2] = nk;
    for (i = 0; i < argc; i++) av[3 + i] = argv[i];
    for (i = 0; i < argc + 3; i++) lens[i] = strlen(av[i]);
    rc = command(r, "EVALSHA", argc + 3, av, lens, &rep, err, errlen);
    if (rc != MQ_REDIS_OK && rep && rep->str && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* a restart, a failover or SCRIPT FLUSH emptied the cache: send
         * the script itself (EVAL caches it again under the same SHA1) */
        freeReplyObject(rep);
        av[0] = "EVAL", av[1] = r->script;
        lens[0] = 4, lens[1] = strlen(r->script);
        rc = command(r, "EVAL", argc + 3, av, lens, &rep, err, errlen);
    }
    if (rc != MQ_REDIS_OK || rep == NULL) {
        if (rep) freeReplyObject(rep);
        return rc != MQ_REDIS_OK ? rc : MQ_REDIS_DOWN;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        snprintf(err, errlen, "redis %s: the limiter script answered no array", r->u.where);
        drop(r);
        return MQ_REDIS_REFUSED;
    }
    *out = rep;
    return MQ_REDIS_OK;
}
