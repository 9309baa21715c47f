/* redis_conv.h: the limiter's conversation with Redis, sans I/O
 * (redis_conv.c): it says where to connect (the server; the Sentinels,
 * then the master they name; the Cluster seeds, then the node of the
 * budget's slot, following MOVED and ASK) and what bytes to send
 * (hiredis's formatter), takes the bytes that came back (hiredis's reply
 * reader) and says what they mean: the script's answer, an outage (fall
 * back, drop the connection, resolve the name again on reconnect) or a
 * setup fault (kind config). Its drivers only move bytes: redis_conn.c
 * (blocking, scripts and the CLI) and mediquo.ngx_redis (cosockets). */
#ifndef MQ_REDIS_CONV_H
#define MQ_REDIS_CONV_H

#include <stddef.h>

#include "redis_cluster.h"
#include "redis_url.h"
#include "redis_verdict.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Where the budget lives, as learnt: the master the Sentinels named, or
 * the Cluster node serving the budget's slot. Kept between exchanges by
 * the caller (nginx makes a conversation per round trip); forgotten after
 * a fault there, so the next exchange asks again. */
typedef struct {
    int known;
    int port;
    char host[MQ_REDIS_HOSTLEN];
} mq_rtopo;

/* What the driver does next. */
enum {
    MQ_RC_CONNECT = 1,      /* connect to host:port (or path), TLS when tls; then
                             * mq_rconv_connected (reused: a kept connection) */
    MQ_RC_SEND,             /* write out[0 .. outlen), then mq_rconv_sent */
    MQ_RC_RECV,             /* read what comes, give it to mq_rconv_feed */
    MQ_RC_DONE              /* verdict; keep the connection only when keep */
};

#define MQ_RCONV_NVALS 16
#define MQ_RCONV_MSG 1200

typedef struct {
    int act;
    /* MQ_RC_CONNECT */
    const char *host;       /* NULL: the unix socket path */
    const char *path;
    int port;
    int tls;
    const char *server_name;    /* checked in the certificate, SNI (NULL for an IP) */
    const char *where;          /* host:port, for the driver's messages */
    /* MQ_RC_SEND */
    const char *out;
    size_t outlen;
    /* MQ_RC_DONE */
    int verdict;            /* MQ_RV_* */
    int keep;               /* the connection may serve the next exchange */
    const char *msg;        /* why (verdict != OK): names host:port, never a password */
    long long vals[MQ_RCONV_NVALS];
    int nvals;
} mq_rconv_step;

typedef struct mq_rconv mq_rconv;

/* A conversation for URL u (copied) and the script (kept: a static text).
 * NULL when out of memory. */
mq_rconv *mq_rconv_new(const mq_redis_url *u, const char *script);
void      mq_rconv_free(mq_rconv *c);
/* verify: the server's certificate is checked (redis_tls.verify); the
 * client certificate and key files (redis_tls), NULL when none. */
int  mq_rconv_verify(const mq_rconv *c);
void mq_rconv_client_files(const mq_rconv *c, const char **cert, const char **key);
/* The script's SHA1, as EVALSHA names it. */
const char *mq_rconv_sha(const mq_rconv *c);

/* One exchange: run the script with argv (keys first: nkeys of them). The
 * first step is always MQ_RC_CONNECT: to the server, a Sentinel (no master
 * known yet), a Cluster seed (no slot owner known yet) or the node learnt.
 * 0, or -1 out of memory. */
int mq_rconv_start(mq_rconv *c, int nkeys, int argc, const char *const *argv, mq_rconv_step *st);
/* The topology learnt (read it after MQ_RC_DONE), and one to start from. */
const mq_rtopo *mq_rconv_topo(const mq_rconv *c);
void mq_rconv_set_topo(mq_rconv *c, const mq_rtopo *t);
/* The driver has a connection to the step's node: a new one (reused 0:
 * the handshake goes first) or one kept from the last exchange. */
void mq_rconv_connected(mq_rconv *c, int reused, mq_rconv_step *st);
void mq_rconv_sent(mq_rconv *c, mq_rconv_step *st);
void mq_rconv_feed(mq_rconv *c, const char *buf, size_t n, mq_rconv_step *st);
/* A transport fault: doing ("connect", ...; NULL when why says it), why
 * in words; setup 1 when no retry can help (a certificate refused, a
 * CA file missing): config. An outage is MQ_RV_UNSURE when the script went
 * out and its answer was not read (mq_rconv_unsure), else MQ_RV_DOWN. */
void mq_rconv_fault(mq_rconv *c, const char *doing, const char *why, int setup,
                    mq_rconv_step *st);
/* 1 when the exchange under way has sent the script (EVALSHA or EVAL) to
 * the data node and not read its answer: had it ended here, the script may
 * have run. */
int mq_rconv_unsure(const mq_rconv *c);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
