/* redis_url.c: parses the Redis URLs of docs/limiter-and-redis.md (redis://, rediss://,
 * unix://, redis[s]-sentinel://, redis[s]-cluster://) and the redis_tls /
 * sentinel_auth options into one struct. Messages never hold a password. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *dup0(const char *s) { return s ? dup_n(s, strlen(s)) : NULL; }

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

static void wipe(char *s)
{
    if (s) memset(s, 0, strlen(s));
    free(s);
}

void mq_redis_url_free(mq_redis_url *u)
{
    int i;

    for (i = 0; i < u->nnodes; i++) free(u->nodes[i].host);
    free(u->path);
    free(u->master);
    free(u->user);
    wipe(u->pass);
    free(u->s_user);
    wipe(u->s_pass);
    free(u->ca_file);
    free(u->cert_file);
    free(u->key_file);
    free(u->server_name);
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

    u->kind = MQ_RU_UNIX;
    u->port = 6379;             /* unused: a socket has none */
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

/* one host[:port] or [v6]:port of [s, e) into nodes[nnodes] */
static int parse_node(const char *s, const char *e, int dport, mq_redis_url *u,
                      char *err, size_t errlen)
{
    mq_redis_node *nd;
    const char *colon;
    char *host;

    if (u->nnodes >= MQ_REDIS_MAXNODES)
        return bad(u, err, errlen, "more than 16 hosts in the URL");
    nd = &u->nodes[u->nnodes];
    nd->port = dport;
    if (s < e && *s == '[') {               /* [IPv6]:port */
        const char *rb = memchr(s, ']', (size_t)(e - s));
        if (rb == NULL) return bad(u, err, errlen, "unclosed '[' in the host");
        host = dup_n(s + 1, (size_t)(rb - s - 1));
        colon = rb + 1 < e && rb[1] == ':' ? rb + 1 : NULL;
        if (rb + 1 < e && colon == NULL) {
            free(host);
            return bad(u, err, errlen, "junk after ']' in the host");
        }
    } else {
        colon = memchr(s, ':', (size_t)(e - s));
        host = dup_n(s, (size_t)((colon ? colon : e) - s));
    }
    if (host == NULL) return bad(u, err, errlen, "out of memory");
    nd->host = host;
    u->nnodes++;
    if (host[0] == '\0') return bad(u, err, errlen, "a host is missing");
    if (strlen(host) > 255) return bad(u, err, errlen, "a host is longer than 255 bytes");
    if (colon && parse_int(colon + 1, (size_t)(e - colon - 1), 1, 65535, &nd->port) != 0)
        return bad(u, err, errlen, "the port must be a number from 1 to 65535");
    return 0;
}

static const struct scheme {
    const char *name;
    int kind, tls, dport;
} SCHEMES[] = {
    { "redis://", MQ_RU_SINGLE, 0, 6379 },
    { "rediss://", MQ_RU_SINGLE, 1, 6379 },
    { "redis-sentinel://", MQ_RU_SENTINEL, 0, 26379 },
    { "rediss-sentinel://", MQ_RU_SENTINEL, 1, 26379 },
    { "redis-cluster://", MQ_RU_CLUSTER, 0, 6379 },
    { "rediss-cluster://", MQ_RU_CLUSTER, 1, 6379 },
};

static const char USAGE[] =
    "must be redis://, rediss:// ([[user]:password@]host[:port][/db]), unix:///path[?db=N], "
    "redis-sentinel:// or rediss-sentinel:// ([[user]:password@]host[:port][,host[:port]...]"
    "/master_name[/db]), redis-cluster:// or rediss-cluster:// "
    "([[user]:password@]host[:port][,host[:port]...])";

/* "host:port,host:port" of every node, for messages */
static int make_where(mq_redis_url *u)
{
    size_t cap = 1, n = 0;
    int i;

    for (i = 0; i < u->nnodes; i++) cap += strlen(u->nodes[i].host) + 10;
    if ((u->where = malloc(cap)) == NULL) return -1;
    u->where[0] = '\0';
    for (i = 0; i < u->nnodes; i++) {
        int v6 = strchr(u->nodes[i].host, ':') != NULL;
        n += (size_t)snprintf(u->where + n, cap - n, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "",
                              u->nodes[i].host, v6 ? "]" : "", u->nodes[i].port);
    }
    return 0;
}

/* the path after the hosts: "/db" (single), "/master[/db]" (Sentinel), "" (Cluster) */
static int parse_path(const char *p, mq_redis_url *u, char *err, size_t errlen)
{
    if (u->kind == MQ_RU_SENTINEL) {
        const char *m = p && p[0] == '/' ? p + 1 : NULL, *s2;
        size_t n;

        if (m == NULL || *m == '\0' || *m == '/')
            return bad(u, err, errlen, "redis-sentinel:// needs the master's name after the hosts "
                       "(redis-sentinel://host:26379/mymaster)");
        s2 = strchr(m, '/');
        n = s2 ? (size_t)(s2 - m) : strlen(m);
        if ((u->master = decode(m, n)) == NULL) return bad(u, err, errlen, "out of memory");
        p = s2;
    } else if (u->kind == MQ_RU_CLUSTER && p && p[0] == '/' && p[1] != '\0') {
        return bad(u, err, errlen, "redis-cluster:// takes no database (a Cluster has only db 0)");
    }
    if (p && p[0] == '/' && p[1] != '\0'
        && parse_int(p + 1, strlen(p + 1), 0, 1000000, &u->db) != 0)
        return bad(u, err, errlen, "the database (after '/') must be a number");
    return 0;
}

int mq_redis_url_parse(const char *url, mq_redis_url *u, char *err, size_t errlen)
{
    const struct scheme *sc = NULL;
    const char *s, *at, *hp, *he, *slash;
    size_t i;

    memset(u, 0, sizeof *u);
    u->verify = 1;
    if (url == NULL) return bad(u, err, errlen, "must be a string");
    if (strncmp(url, "unix://", 7) == 0) return parse_unix(url + 7, u, err, errlen);
    for (i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
        if (strncmp(url, SCHEMES[i].name, strlen(SCHEMES[i].name)) == 0) sc = &SCHEMES[i];
    if (sc == NULL) return bad(u, err, errlen, USAGE);
    u->kind = sc->kind;
    u->tls = sc->tls;
    s = url + strlen(sc->name);
    if (strchr(s, '?') || strchr(s, '#'))
        return bad(u, err, errlen, "a redis URL takes no ?query or #fragment (the database "
                   "goes in the path: /N)");
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
    for (hp = s; hp <= he; ) {
        const char *comma = memchr(hp, ',', (size_t)(he - hp));
        const char *ne = comma ? comma : he;
        if (parse_node(hp, ne, sc->dport, u, err, errlen) != 0) return -1;
        if (comma && u->kind == MQ_RU_SINGLE)
            return bad(u, err, errlen, "redis:// names one host: use redis-sentinel:// or "
                       "redis-cluster:// for several");
        hp = ne + 1;
    }
    if (parse_path(slash, u, err, errlen) != 0) return -1;
    u->host = u->nodes[0].host;
    u->port = u->nodes[0].port;
    if (make_where(u) != 0) return bad(u, err, errlen, "out of memory");
    return 0;
}

int mq_redis_url_sentinel_auth(mq_redis_url *u, const char *auth, char *err, size_t errlen)
{
    const char *c = strchr(auth, ':');

    if (u->kind != MQ_RU_SENTINEL) {
        snprintf(err, errlen, "is only for a redis-sentinel:// or rediss-sentinel:// URL");
        return -1;
    }
    free(u->s_user);
    wipe(u->s_pass);
    u->s_user = c && c > auth ? dup_n(auth, (size_t)(c - auth)) : NULL;
    u->s_pass = dup0(c ? c + 1 : auth);
    if (u->s_pass == NULL || (c && c > auth && u->s_user == NULL)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int mq_redis_url_tls(mq_redis_url *u, const char *field, const char *value,
                     char *err, size_t errlen)
{
    char **slot = NULL;

    if (!u->tls) {
        snprintf(err, errlen, "is only for a TLS URL (rediss://, rediss-sentinel://, "
                 "rediss-cluster://)");
        return -1;
    }
    if (strcmp(field, "verify") == 0) {
        u->verify = strcmp(value, "0") != 0;
        return 0;
    }
    if (strcmp(field, "ca_file") == 0) slot = &u->ca_file;
    else if (strcmp(field, "cert_file") == 0) slot = &u->cert_file;
    else if (strcmp(field, "key_file") == 0) slot = &u->key_file;
    else if (strcmp(field, "server_name") == 0) slot = &u->server_name;
    if (slot == NULL) {
        snprintf(err, errlen, "has no field %s (ca_file, cert_file, key_file, server_name, verify)",
                 field);
        return -1;
    }
    free(*slot);
    if ((*slot = dup0(value)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

#define COPY(f) do { if (src->f && (dst->f = dup0(src->f)) == NULL) goto oom; } while (0)

int mq_redis_url_copy(mq_redis_url *dst, const mq_redis_url *src)
{
    int i;

    *dst = *src;
    for (i = 0; i < MQ_REDIS_MAXNODES; i++) dst->nodes[i].host = NULL;
    dst->path = dst->master = dst->user = dst->pass = dst->s_user = dst->s_pass = NULL;
    dst->ca_file = dst->cert_file = dst->key_file = dst->server_name = dst->where = NULL;
    dst->host = NULL;
    for (i = 0; i < src->nnodes; i++) COPY(nodes[i].host);
    COPY(path); COPY(master); COPY(user); COPY(pass); COPY(s_user); COPY(s_pass);
    COPY(ca_file); COPY(cert_file); COPY(key_file); COPY(server_name); COPY(where);
    dst->host = src->nnodes ? dst->nodes[0].host : NULL;
    return 0;
oom:
    mq_redis_url_free(dst);
    return -1;
}
