/* redis_conn.h: the Redis URL and the blocking hiredis connection of one
 * limiter handle (redis_conn.c). */
#ifndef MQ_REDIS_CONN_H
#define MQ_REDIS_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N] */
typedef struct {
    char *host;             /* NULL for a unix socket */
    int port;
    char *path;             /* unix socket path, or NULL */
    int db;
    char *user;             /* NULL: the default user */
    char *pass;             /* NULL: no AUTH */
    char *where;            /* "host:port" or the socket path, for messages */
} mq_redis_url;

/* 0, or -1 with the reason in err (never the password). */
int  mq_redis_url_parse(const char *url, mq_redis_url *u, char *err, size_t errlen);
void mq_redis_url_free(mq_redis_url *u);

/* What a failed exchange means for the caller. */
enum {
    MQ_REDIS_OK = 0,
    MQ_REDIS_DOWN = -1,     /* connect/timeout/reset/loading: try again later */
    MQ_REDIS_REFUSED = -2   /* AUTH refused, not Redis, command denied: a setup fault */
};

typedef struct mq_redis mq_redis;

/* Takes a copy of u; NULL when out of memory. Connects lazily. */
mq_redis *mq_redis_new(const mq_redis_url *u, const char *script);
void      mq_redis_free(mq_redis *r);
/* Runs the script (EVALSHA, EVAL when Redis lost it) with argv (keys
 * first: nkeys of them), within tmo seconds for connect + exchange.
 * MQ_REDIS_OK with *out an array reply (free with freeReplyObject), or a
 * failure with the reason in err. After any failure the connection is
 * dropped and made again on the next call. */
int mq_redis_eval(mq_redis *r, int nkeys, int argc, const char **argv, double tmo,
                  redisReply **out, char *err, size_t errlen);

/* The checks a new connection makes (AUTH, SELECT), as the commands to
 * send: shared with the cosocket path so both say the same thing. */
int mq_redis_hello_argv(const mq_redis_url *u, int which, const char **argv, size_t *lens);
/* The meaning of an error reply to AUTH/SELECT/SCRIPT/EVAL, as a message
 * (never holding the password) and MQ_REDIS_DOWN or MQ_REDIS_REFUSED. */
int mq_redis_explain(const mq_redis_url *u, const char *cmd, const char *reply,
                     char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
