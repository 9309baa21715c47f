/* redis_url.h: a Redis URL of every scheme docs/limiter-and-redis.md names
 * ("Redis as production runs it"), and the TLS and
 * Sentinel options that go with it (redis_url.c). No I/O. */
#ifndef MQ_REDIS_URL_H
#define MQ_REDIS_URL_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_REDIS_MAXNODES 16

enum { MQ_RU_SINGLE = 0, MQ_RU_UNIX, MQ_RU_SENTINEL, MQ_RU_CLUSTER };

typedef struct {
    char *host;
    int port;
} mq_redis_node;

typedef struct {
    int kind;               /* MQ_RU_* */
    int tls;                /* rediss*: TLS to every node */
    mq_redis_node nodes[MQ_REDIS_MAXNODES];  /* the server, Sentinels or seeds */
    int nnodes;
    char *host;             /* nodes[0].host (NULL for a unix socket) */
    int port;               /* nodes[0].port */
    char *path;             /* unix socket path, or NULL */
    char *master;           /* Sentinel: the master's name */
    int db;
    char *user;             /* NULL: the default user */
    char *pass;             /* NULL: no AUTH */
    char *s_user, *s_pass;  /* sentinel_auth: the Sentinels' own */
    /* redis_tls */
    char *ca_file, *cert_file, *key_file, *server_name;
    int verify;             /* 1 unless redis_tls.verify = false */
    char *where;            /* "host:port[,...]" or the socket path, for messages */
} mq_redis_url;

/* 0, or -1 with the reason in err (never the password). */
int  mq_redis_url_parse(const char *url, mq_redis_url *u, char *err, size_t errlen);
/* sentinel_auth: "password" or "user:password". 0, or -1 (err). */
int  mq_redis_url_sentinel_auth(mq_redis_url *u, const char *auth, char *err, size_t errlen);
/* One redis_tls field (ca_file, cert_file, key_file, server_name) or
 * verify ("0"/"1"). 0, or -1 (err: an unknown field, or no TLS URL). */
int  mq_redis_url_tls(mq_redis_url *u, const char *field, const char *value,
                      char *err, size_t errlen);
/* A deep copy; 0, or -1 when out of memory. */
int  mq_redis_url_copy(mq_redis_url *dst, const mq_redis_url *src);
void mq_redis_url_free(mq_redis_url *u);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
