/* redis_conv.c: the limiter's conversation with one Redis, sans I/O.
 *
 * An exchange: CONNECT the node; on a new connection the handshake goes in
 * the same write as the script (AUTH, SELECT, ROLE: is it the master?),
 * then EVALSHA, and EVAL once when Redis lost its script cache (NOSCRIPT).
 * Each reply is read in order; the first one that fails decides: a setup
 * fault (config: a refused AUTH, not Redis, a Sentinel where a master was
 * expected) or an outage (down: max clients, LOADING, READONLY, a replica,
 * a reset...: the driver drops the connection and makes a new one, resolving
 * the name again, at the next exchange). Messages name host:port, never a
 * password, and quote Redis's reply whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "redis_conv.h"

enum { T_AUTH, T_SELECT, T_ROLE, T_EVALSHA, T_EVAL };
static const char *const TAG_NAME[] = { "AUTH", "SELECT", "ROLE", "EVALSHA", "EVAL" };

#define MAXARGS 40
#define MAXTAGS 8

struct mq_rconv {
    mq_redis_url u;
    const char *script;
    char sha[41];
    /* the exchange under way */
    char *argv[MAXARGS];        /* EVALSHA sha nkeys keys... args... (owned copies from 2) */
    size_t lens[MAXARGS];
    int argc;
    redisReader *rd;
    char *out;
    size_t outlen, outcap;
    int tags[MAXTAGS], ntags, got;
    int evaled;
    int ip;                     /* the node's host is an IP address */
    char msg[MQ_RCONV_MSG];
};

static void clear_exchange(mq_rconv *c)
{
    int i;

    for (i = 2; i < c->argc; i++) free(c->argv[i]);
    c->argc = 0;
    if (c->rd) redisReaderFree(c->rd);
    c->rd = NULL;
    c->outlen = 0;
    c->ntags = c->got = 0;
    c->evaled = 0;
}

static int is_ip(const char *h)
{
    return h && (strchr(h, ':') != NULL || strspn(h, "0123456789.") == strlen(h));
}

mq_rconv *mq_rconv_new(const mq_redis_url *u, const char *script)
{
    mq_rconv *c = calloc(1, sizeof *c);
    unsigned char md[SHA_DIGEST_LENGTH];
    int i;

    if (c == NULL) return NULL;
    if (mq_redis_url_copy(&c->u, u) != 0) {
        free(c);
        return NULL;
    }
    c->script = script;
    if (SHA1((const unsigned char *)script, strlen(script), md) == NULL) {
        mq_rconv_free(c);
        return NULL;
    }
    for (i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(c->sha + 2 * i, 3, "%02x", md[i]);
    c->ip = is_ip(c->u.host);
    return c;
}

void mq_rconv_free(mq_rconv *c)
{
    if (c == NULL) return;
    clear_exchange(c);
    free(c->out);
    mq_redis_url_free(&c->u);
    free(c);
}

const char *mq_rconv_sha(const mq_rconv *c) { return c->sha; }
int mq_rconv_verify(const mq_rconv *c) { return c->u.verify; }

void mq_rconv_client_files(const mq_rconv *c, const char **cert, const char **key)
{
    *cert = c->u.cert_file;
    *key = c->u.key_file;
}

/* appends one command's RESP to out and its tag to tags. 0, or -1 (memory) */
static int add(mq_rconv *c, int tag, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);

    if (len < 0 || cmd == NULL || c->ntags >= MAXTAGS) {
        if (cmd) redisFreeCommand(cmd);
        return -1;
    }
    if (c->outlen + (size_t)len > c->outcap) {
        size_t cap = (c->outlen + (size_t)len) * 2;
        char *p = realloc(c->out, cap);
        if (p == NULL) {
            redisFreeCommand(cmd);
            return -1;
        }
        c->out = p;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, cmd, (size_t)len);
    c->outlen += (size_t)len;
    redisFreeCommand(cmd);
    c->tags[c->ntags++] = tag;
    return 0;
}

static void done(mq_rconv *c, int verdict, mq_rconv_step *st)
{
    st->act = MQ_RC_DONE;
    st->verdict = verdict;
    st->keep = verdict == MQ_RV_OK;
    st->msg = verdict == MQ_RV_OK ? NULL : c->msg;
    if (c->rd) redisReaderFree(c->rd);
    c->rd = NULL;
}

static void oom(mq_rconv *c, mq_rconv_step *st)
{
    snprintf(c->msg, sizeof c->msg, "redis %s: out of memory", c->u.where);
    done(c, MQ_RV_DOWN, st);
}

static void send_step(mq_rconv *c, mq_rconv_step *st)
{
    st->act = MQ_RC_SEND;
    st->out = c->out;
    st->outlen = c->outlen;
}

int mq_rconv_start(mq_rconv *c, int nkeys, int argc, const char **argv, mq_rconv_step *st)
{
    char nk[12];
    int i;

    clear_exchange(c);
    memset(st, 0, sizeof *st);
    if (argc + 3 > MAXARGS) return -1;
    c->argv[0] = (char *)"EVALSHA";
    c->argv[1] = c->sha;
    c->argv[2] = NULL;
    for (i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if ((c->argv[3 + i] = malloc(n + 1)) == NULL) {
            c->argc = 3 + i;
            clear_exchange(c);
            return -1;
        }
        memcpy(c->argv[3 + i], argv[i], n + 1);
        c->lens[3 + i] = n;
    }
    c->argc = argc + 3;
    snprintf(nk, sizeof nk, "%d", nkeys);
    if ((c->argv[2] = strdup(nk)) == NULL) {
        clear_exchange(c);
        return -1;
    }
    c->lens[0] = 7, c->lens[1] = 40, c->lens[2] = strlen(c->argv[2]);
    if ((c->rd = redisReaderCreate()) == NULL) {
        clear_exchange(c);
        return -1;
    }
    st->act = MQ_RC_CONNECT;
    st->host = c->u.host;
    st->path = c->u.path;
    st->port = c->u.port;
    st->tls = c->u.tls;
    st->server_name = c->u.server_name ? c->u.server_name : (c->ip ? NULL : c->u.host);
    st->where = c->u.where;
    return 0;
}

void mq_rconv_connected(mq_rconv *c, int reused, mq_rconv_step *st)
{
    const char *av[4];
    size_t ln[4];
    char db[16];
    int n = 0, i;

    c->outlen = 0;
    c->ntags = c->got = 0;
    if (!reused) {
        if (c->u.pass) {
            av[n++] = "AUTH";
            if (c->u.user) av[n++] = c->u.user;
            av[n++] = c->u.pass;
            for (i = 0; i < n; i++) ln[i] = strlen(av[i]);
            if (add(c, T_AUTH, n, av, ln) != 0) return oom(c, st);
        }
        if (c->u.db != 0) {
            snprintf(db, sizeof db, "%d", c->u.db);
            av[0] = "SELECT", av[1] = db, ln[0] = 6, ln[1] = strlen(db);
            if (add(c, T_SELECT, 2, av, ln) != 0) return oom(c, st);
        }
        av[0] = "ROLE", ln[0] = 4;
        if (add(c, T_ROLE, 1, av, ln) != 0) return oom(c, st);
    }
    if (add(c, T_EVALSHA, c->argc, (const char **)c->argv, c->lens) != 0) return oom(c, st);
    send_step(c, st);
}

void mq_rconv_sent(mq_rconv *c, mq_rconv_step *st)
{
    (void)c;
    st->act = MQ_RC_RECV;
}

void mq_rconv_fault(mq_rconv *c, const char *doing, const char *why, int setup,
                    mq_rconv_step *st)
{
    char text[400];

    snprintf(text, sizeof text, "%s%s%s", doing ? doing : "", doing ? ": " : "", why);
    if (setup)
        snprintf(c->msg, sizeof c->msg, "redis %s: %s", c->u.where, text);
    else
        snprintf(c->msg, sizeof c->msg, "redis %s unreachable (%s)", c->u.where, text);
    done(c, setup ? MQ_RV_CONFIG : MQ_RV_DOWN, st);
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int mq_rconv_explain(const mq_redis_url *u, const char *where, const char *cmd,
                     const char *reply, char *msg, size_t msglen)
{
    static const char *const transient[] = {
        "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "OOM",
        "ERR max number of clients reached", "NOREPLICAS",
    };
    size_t i;

    if (starts(reply, "WRONGPASS") || starts(reply, "ERR invalid password")
        || starts(reply, "ERR invalid username-password") || starts(reply, "ERR AUTH")
        || starts(reply, "ERR Client sent AUTH")) {
        snprintf(msg, msglen, "redis %s refused AUTH%s%s: wrong user or password (%s)", where,
                 u->user ? " as user " : "", u->user ? u->user : "", reply);
        return MQ_RV_CONFIG;
    }
    if (starts(reply, "NOAUTH")) {
        snprintf(msg, msglen, "redis %s needs a password (NOAUTH): put it in the URL "
                 "(redis://:password@host)", where);
        return MQ_RV_CONFIG;
    }
    if (starts(reply, "NOPERM") || strstr(reply, "user executing the script can't") != NULL) {
        snprintf(msg, msglen, "redis %s: the user may not run %s (%s): allow the limiter's "
                 "commands in its ACL", where, cmd, reply);
        return MQ_RV_CONFIG;
    }
    if (starts(reply, "MOVED ") || starts(reply, "ASK ")) {
        snprintf(msg, msglen, "redis %s is a Cluster node (%s %s): use redis-cluster://", where,
                 cmd, reply);
        return MQ_RV_CONFIG;
    }
    for (i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (starts(reply, transient[i])) {
            snprintf(msg, msglen, "redis %s not available now (%s): %s", where, cmd, reply);
            return MQ_RV_DOWN;
        }
    snprintf(msg, msglen, "redis %s refused %s: %s", where, cmd, reply);
    return MQ_RV_CONFIG;
}

/* ROLE's answer: the master, or where to go */
static int role(mq_rconv *c, const redisReply *r)
{
    const char *what;

    if (r->type == REDIS_REPLY_ERROR) {
        /* an ACL without ROLE, a Redis older than 2.8.12: EVALSHA tells */
        if (starts(r->str, "NOPERM") || starts(r->str, "ERR unknown command")) return MQ_RV_OK;
        return mq_rconv_explain(&c->u, c->u.where, "ROLE", r->str, c->msg, sizeof c->msg);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(c->msg, sizeof c->msg, "redis %s: ROLE gave no role: is it Redis?", c->u.where);
        return MQ_RV_CONFIG;
    }
    what = r->element[0]->str;
    if (strcmp(what, "master") == 0) return MQ_RV_OK;
    if (strcmp(what, "sentinel") == 0) {
        snprintf(c->msg, sizeof c->msg, "redis %s is a Sentinel, not a data node: use "
                 "redis-sentinel://%s/master_name", c->u.where, c->u.where);
        return MQ_RV_CONFIG;
    }
    /* a replica: a failover moved the master (behind this name, or away) */
    snprintf(c->msg, sizeof c->msg, "redis %s is a replica (ROLE %s), not the master: "
             "connecting again", c->u.where, what);
    return MQ_RV_DOWN;
}

/* what one() says besides a verdict (MQ_RV_*, all <= 0) */
enum { R_MORE = 1, R_OOM, R_RESEND };

/* one reply, in the order sent: R_MORE to read, R_RESEND (EVAL to send),
 * R_OOM, or a verdict (done) */
static int one(mq_rconv *c, redisReply *r, int tag, mq_rconv_step *st)
{
    size_t i;
    int v;

    switch (tag) {
    case T_ROLE:
        v = role(c, r);
        return v == MQ_RV_OK ? R_MORE : v;
    case T_EVALSHA:
    case T_EVAL:
        if (r->type == REDIS_REPLY_ERROR && tag == T_EVALSHA && !c->evaled
            && starts(r->str, "NOSCRIPT")) {
            /* a restart, a failover or SCRIPT FLUSH emptied the cache:
             * the script itself (EVAL caches it again under the same SHA1) */
            c->evaled = 1;
            c->argv[0] = (char *)"EVAL";
            c->argv[1] = (char *)c->script;
            c->lens[0] = 4, c->lens[1] = strlen(c->script);
            c->outlen = 0;
            c->ntags = c->got = 0;
            if (add(c, T_EVAL, c->argc, (const char **)c->argv, c->lens) != 0) return R_OOM;
            c->argv[0] = (char *)"EVALSHA", c->argv[1] = c->sha;
            c->lens[0] = 7, c->lens[1] = 40;
            send_step(c, st);
            return R_RESEND;
        }
        if (r->type == REDIS_REPLY_ERROR)
            return mq_rconv_explain(&c->u, c->u.where, TAG_NAME[tag], r->str, c->msg, sizeof c->msg);
        if (r->type != REDIS_REPLY_ARRAY) {
            snprintf(c->msg, sizeof c->msg, "redis %s: the limiter script answered no array: "
                     "is it Redis?", c->u.where);
            return MQ_RV_CONFIG;
        }
        st->nvals = 0;
        for (i = 0; i < r->elements && i < MQ_RCONV_NVALS; i++)
            st->vals[st->nvals++] = r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
        return MQ_RV_OK;
    default:                    /* AUTH, SELECT */
        if (r->type == REDIS_REPLY_ERROR)
            return mq_rconv_explain(&c->u, c->u.where, TAG_NAME[tag], r->str, c->msg, sizeof c->msg);
        return R_MORE;
    }
}

void mq_rconv_feed(mq_rconv *c, const char *buf, size_t n, mq_rconv_step *st)
{
    int i;

    if (c->rd == NULL || redisReaderFeed(c->rd, buf, n) != REDIS_OK) {
        snprintf(c->msg, sizeof c->msg, "redis %s does not speak the Redis protocol: is the URL "
                 "right?", c->u.where);
        return done(c, MQ_RV_CONFIG, st);
    }
    for (i = 0; i < 64 && c->got < c->ntags; i++) {
        void *rep = NULL;
        int v;

        if (redisReaderGetReply(c->rd, &rep) != REDIS_OK) {
            snprintf(c->msg, sizeof c->msg, "redis %s does not speak the Redis protocol (%s): is "
                     "the URL right?", c->u.where, c->rd->errstr[0] ? c->rd->errstr : "?");
            return done(c, MQ_RV_CONFIG, st);
        }
        if (rep == NULL) break;
        v = one(c, rep, c->tags[c->got++], st);
        freeReplyObject(rep);
        if (v == R_OOM) return oom(c, st);
        if (v == R_RESEND) return;      /* EVAL to send */
        if (v != R_MORE) return done(c, v, st);
    }
    st->act = MQ_RC_RECV;
}
