/* redis_conv.c: the limiter's conversation with Redis, sans I/O.
 *
 * An exchange runs the budget's script once. Where: the server of a
 * redis:// URL; for Sentinel the master the first answering Sentinel names
 * (SENTINEL get-master-addr-by-name); for Cluster the node serving the
 * budget's slot, learnt from the first answering seed (CLUSTER SLOTS) and
 * corrected by MOVED (kept) and ASK (once, with ASKING). What was learnt
 * is kept for the next exchange and forgotten after any fault there.
 * On a new connection the handshake goes in the same write as the script
 * (AUTH, SELECT, ROLE: is it the master?); EVALSHA, and EVAL once when
 * Redis lost its script cache (NOSCRIPT). The first reply that fails
 * decides (redis_verdict.c): a setup fault (config) or an outage (the
 * driver drops the connection and, at the next exchange, makes a new one,
 * resolving the name again). Messages name host:port, never a password. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "redis_conv.h"
#include "redis_sentinel.h"

enum { T_AUTH, T_SELECT, T_ROLE, T_EVALSHA, T_EVAL, T_SAUTH, T_SENTINEL, T_SLOTS, T_ASKING };
static const char *const TAG_NAME[] = {
    "AUTH", "SELECT", "ROLE", "EVALSHA", "EVAL", "AUTH", "SENTINEL", "CLUSTER SLOTS", "ASKING",
};
/* where an exchange is: asking a Sentinel, a Cluster seed, or at the data node */
enum { PH_DATA, PH_SENTINEL, PH_SLOTS };

#define MAXARGS 40
#define MAXTAGS 8
#define MAX_REDIRECTS 5

struct mq_rconv {
    mq_redis_url u;
    const char *script;
    char sha[41];
    mq_rtopo topo;
    unsigned slot;              /* the budget's (Cluster) */
    /* the exchange under way */
    int phase, si, redirects, asking;
    char node[MQ_REDIS_HOSTLEN];    /* the node it talks to, and */
    int port;
    char where[MQ_REDIS_HOSTLEN + 16];  /* ...as host:port, for messages */
    char *argv[MAXARGS];        /* EVALSHA sha nkeys keys... args... (owned copies from 2) */
    size_t lens[MAXARGS];
    int argc;
    redisReader *rd;
    char *out;
    size_t outlen, outcap;
    int tags[MAXTAGS], ntags, got;
    int issued;                 /* out handed to the driver since the last go() */
    int evaled;
    char msg[MQ_RCONV_MSG];
    char last[720];             /* the last Sentinel's or seed's fault */
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
    c->issued = 0;
    c->evaled = 0;
}

static int is_ip(const char *h)
{
    return h && (strchr(h, ':') != NULL || strspn(h, "0123456789.") == strlen(h));
}

/* the script's SHA1 in hex into sha[41]: the last script's is kept with a
 * copy of its text (one script, ~7 KB: compared, not hashed again, per
 * round trip). 0, or -1 when OpenSSL failed */
static int script_sha(const char *script, char *sha)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char *last;
    static size_t last_len;
    static char last_sha[41];
    unsigned char md[SHA_DIGEST_LENGTH];
    size_t len = strlen(script);
    char *copy;
    int i, hit;

    pthread_mutex_lock(&mu);
    hit = last != NULL && last_len == len && memcmp(last, script, len) == 0;
    if (hit) memcpy(sha, last_sha, sizeof last_sha);
    pthread_mutex_unlock(&mu);
    if (hit) return 0;
    if (SHA1((const unsigned char *)script, len, md) == NULL) return -1;
    for (i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(sha + 2 * i, 3, "%02x", md[i]);
    copy = malloc(len + 1);
    if (copy == NULL) return 0;         /* hashed again next time */
    memcpy(copy, script, len + 1);
    pthread_mutex_lock(&mu);
    free(last);
    last = copy;
    last_len = len;
    memcpy(last_sha, sha, sizeof last_sha);
    pthread_mutex_unlock(&mu);
    return 0;
}

mq_rconv *mq_rconv_new(const mq_redis_url *u, const char *script)
{
    mq_rconv *c = calloc(1, sizeof *c);

    if (c == NULL) return NULL;
    if (mq_redis_url_copy(&c->u, u) != 0) {
        free(c);
        return NULL;
    }
    c->script = script;
    if (script_sha(script, c->sha) != 0) {
        mq_rconv_free(c);
        return NULL;
    }
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
const mq_rtopo *mq_rconv_topo(const mq_rconv *c) { return &c->topo; }
void mq_rconv_set_topo(mq_rconv *c, const mq_rtopo *t) { c->topo = *t; }

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

static int add_auth(mq_rconv *c, int tag, const char *user, const char *pass)
{
    const char *av[3];
    size_t ln[3];
    int n = 0, i;

    if (pass == NULL) return 0;
    av[n++] = "AUTH";
    if (user) av[n++] = user;
    av[n++] = pass;
    for (i = 0; i < n; i++) ln[i] = strlen(av[i]);
    return add(c, tag, n, av, ln);
}

/* a server may echo anything: no password leaves in a message */
static void scrub(char *msg, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    char *p;
    int i;

    if (n == 0) return;
    for (i = 0; i < 100 && (p = strstr(msg, secret)) != NULL; i++) {
        memset(p, '*', n < 3 ? n : 3);
        memmove(p + (n < 3 ? n : 3), p + n, strlen(p + n) + 1);
    }
}

static void done(mq_rconv *c, int verdict, mq_rconv_step *st)
{
    scrub(c->msg, c->u.pass);
    scrub(c->msg, c->u.s_pass);
    st->act = MQ_RC_DONE;
    st->verdict = verdict;
    st->keep = verdict == MQ_RV_OK;
    st->msg = verdict == MQ_RV_OK ? NULL : c->msg;
    if (verdict != MQ_RV_OK && c->phase == PH_DATA) c->topo.known = 0;  /* ask again next time */
    if (c->rd) redisReaderFree(c->rd);
    c->rd = NULL;
}

static void oom(mq_rconv *c, mq_rconv_step *st)
{
    snprintf(c->msg, sizeof c->msg, "redis %s: out of memory", c->where);
    done(c, MQ_RV_DOWN, st);
}

static void send_step(mq_rconv *c, mq_rconv_step *st)
{
    c->issued = 1;
    st->act = MQ_RC_SEND;
    st->out = c->out;
    st->outlen = c->outlen;
}

/* the step: connect to host:port (host "" : the node that answered) */
static void go(mq_rconv *c, const char *host, int port, mq_rconv_step *st)
{
    if (host && host[0] && host != c->node) snprintf(c->node, sizeof c->node, "%s", host);
    c->port = port;
    if (mq_redis_addr_format(c->where, sizeof c->where, c->node, port, c->node) != 0)
        snprintf(c->where, sizeof c->where, "%s", c->u.where);
    if (c->rd) redisReaderFree(c->rd);
    c->rd = redisReaderCreate();
    if (c->rd == NULL) return oom(c, st);
    c->outlen = 0;
    c->ntags = c->got = 0;
    c->issued = 0;
    st->act = MQ_RC_CONNECT;
    st->host = c->u.path ? NULL : c->node;
    st->path = c->u.path;
    st->port = port;
    st->tls = c->u.tls;
    st->server_name = c->u.server_name ? c->u.server_name : (is_ip(c->node) ? NULL : c->node);
    st->where = c->where;
}

/* the next Sentinel or seed, or the outage when none is left */
static void next_node(mq_rconv *c, mq_rconv_step *st)
{
    if (++c->si < c->u.nnodes) return go(c, c->u.nodes[c->si].host, c->u.nodes[c->si].port, st);
    snprintf(c->msg, sizeof c->msg, "redis %s: no %s answered (the last: %s)", c->u.where,
             c->phase == PH_SENTINEL ? "Sentinel" : "Cluster seed", c->last);
    done(c, MQ_RV_DOWN, st);
}

int mq_rconv_start(mq_rconv *c, int nkeys, int argc, const char *const *argv, mq_rconv_step *st)
{
    char nk[12];
    int i;

    clear_exchange(c);
    memset(st, 0, sizeof *st);
    if (argc + 3 > MAXARGS || argc < 1) return -1;
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
    c->slot = mq_redis_key_slot(argv[0], strlen(argv[0]));
    c->si = c->redirects = c->asking = 0;
    c->last[0] = '\0';
    c->phase = PH_DATA;
    if (c->u.kind == MQ_RU_SENTINEL && !c->topo.known) c->phase = PH_SENTINEL;
    if (c->u.kind == MQ_RU_CLUSTER && !c->topo.known) c->phase = PH_SLOTS;
    if (c->u.path) {
        snprintf(c->node, sizeof c->node, "%s", c->u.path);
        go(c, c->node, 0, st);
        snprintf(c->where, sizeof c->where, "%s", c->u.path);
    } else if (c->phase == PH_DATA && c->u.kind != MQ_RU_SINGLE) {
        go(c, c->topo.host, c->topo.port, st);
    } else {
        go(c, c->u.nodes[0].host, c->u.nodes[0].port, st);
    }
    return st->act == MQ_RC_CONNECT ? 0 : -1;
}

void mq_rconv_connected(mq_rconv *c, int reused, mq_rconv_step *st)
{
    const char *av[4];
    size_t ln[4];
    char db[16];
    int bad = 0;

    c->outlen = 0;
    c->ntags = c->got = 0;
    if (c->phase == PH_SENTINEL) {
        if (!reused) bad |= add_auth(c, T_SAUTH, c->u.s_user, c->u.s_pass);
        av[0] = "SENTINEL", av[1] = "get-master-addr-by-name", av[2] = c->u.master;
        ln[0] = 8, ln[1] = 23, ln[2] = strlen(c->u.master);
        bad |= add(c, T_SENTINEL, 3, av, ln);
    } else if (c->phase == PH_SLOTS) {
        if (!reused) bad |= add_auth(c, T_AUTH, c->u.user, c->u.pass);
        av[0] = "CLUSTER", av[1] = "SLOTS", ln[0] = 7, ln[1] = 5;
        bad |= add(c, T_SLOTS, 2, av, ln);
    } else {
        if (!reused) {
            bad |= add_auth(c, T_AUTH, c->u.user, c->u.pass);
            if (c->u.db != 0) {
                snprintf(db, sizeof db, "%d", c->u.db);
                av[0] = "SELECT", av[1] = db, ln[0] = 6, ln[1] = strlen(db);
                bad |= add(c, T_SELECT, 2, av, ln);
            }
            av[0] = "ROLE", ln[0] = 4;
            bad |= add(c, T_ROLE, 1, av, ln);
        }
        if (c->asking) {
            av[0] = "ASKING", ln[0] = 6;
            bad |= add(c, T_ASKING, 1, av, ln);
        }
        bad |= add(c, T_EVALSHA, c->argc, (const char **)c->argv, c->lens);
    }
    if (bad) return oom(c, st);
    send_step(c, st);
}

void mq_rconv_sent(mq_rconv *c, mq_rconv_step *st)
{
    (void)c;
    st->act = MQ_RC_RECV;
}

int mq_rconv_unsure(const mq_rconv *c)
{
    int i;

    if (!c->issued || c->phase != PH_DATA) return 0;
    for (i = c->got; i < c->ntags; i++)
        if (c->tags[i] == T_EVALSHA || c->tags[i] == T_EVAL) return 1;
    return 0;
}

void mq_rconv_fault(mq_rconv *c, const char *doing, const char *why, int setup,
                    mq_rconv_step *st)
{
    char text[400];

    snprintf(text, sizeof text, "%s%s%s", doing ? doing : "", doing ? ": " : "", why);
    if (setup) {
        snprintf(c->msg, sizeof c->msg, "redis %s: %s", c->where, text);
        return done(c, MQ_RV_CONFIG, st);
    }
    if (c->phase != PH_DATA) {  /* a Sentinel or seed down: the next one */
        snprintf(c->last, sizeof c->last, "%s unreachable (%s)", c->where, text);
        return next_node(c, st);
    }
    snprintf(c->msg, sizeof c->msg, "redis %s unreachable (%s)", c->where, text);
    done(c, mq_rconv_unsure(c) ? MQ_RV_UNSURE : MQ_RV_DOWN, st);
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* what one() says besides a verdict (MQ_RV_*, all <= 0) */
enum { R_MORE = 1, R_OOM, R_SENT, R_MOVED };

/* ROLE's answer: the master, or where to go */
static int role(mq_rconv *c, const redisReply *r)
{
    int k;

    if (r->type == REDIS_REPLY_ERROR) {
        /* an ACL without ROLE, a Redis older than 2.8.12: EVALSHA tells */
        if (starts(r->str, "NOPERM") || starts(r->str, "ERR unknown command")) return R_MORE;
        return mq_redis_verdict(&c->u, c->where, "ROLE", r->str, c->msg, sizeof c->msg);
    }
    k = mq_redis_role(r);
    if (k == MQ_ROLE_MASTER) return R_MORE;
    if (k == MQ_ROLE_SENTINEL) {
        snprintf(c->msg, sizeof c->msg, "redis %s is a Sentinel, not a data node: use "
                 "redis-sentinel://%s/master_name", c->where, c->where);
        return MQ_RV_CONFIG;
    }
    if (k == MQ_ROLE_REPLICA) {     /* a failover moved the master (behind this name, or away) */
        snprintf(c->msg, sizeof c->msg, "redis %s is a replica, not the master (a failover?): "
                 "asking again", c->where);
        return MQ_RV_DOWN;
    }
    snprintf(c->msg, sizeof c->msg, "redis %s: ROLE gave no role: is it Redis?", c->where);
    return MQ_RV_CONFIG;
}

/* the Sentinel's answer: the master to go to */
static int sentinel(mq_rconv *c, const redisReply *r)
{
    char host[MQ_REDIS_HOSTLEN], why[480];
    int port = 0, k = mq_redis_sentinel_master(r, c->u.master, host, sizeof host, &port, why, sizeof why);

    if (k == MQ_SENTINEL_OK) {
        c->topo.known = 1;
        c->topo.port = port;
        snprintf(c->topo.host, sizeof c->topo.host, "%s", host);
        return R_MOVED;
    }
    if (k == MQ_SENTINEL_ERROR_REPLY && mq_redis_transient(r->str)) {
        snprintf(c->last, sizeof c->last, "%s: %s", c->where, r->str);
        return R_SENT;              /* the next Sentinel */
    }
    if (k == MQ_SENTINEL_ERROR_REPLY && (starts(r->str, "NOAUTH") || starts(r->str, "WRONGPASS"))) {
        snprintf(c->msg, sizeof c->msg, "redis Sentinel %s refused us (%s): its password goes in "
                 "sentinel_auth (\"password\" or \"user:password\")", c->where, r->str);
        return MQ_RV_CONFIG;
    }
    if (k == MQ_SENTINEL_UNKNOWN) {
        snprintf(c->msg, sizeof c->msg, "redis Sentinel %s: %s", c->where, why);
        return MQ_RV_CONFIG;
    }
    snprintf(c->msg, sizeof c->msg, "redis %s is not a Sentinel (%s): redis-sentinel:// names "
             "the Sentinels, not the data nodes", c->where, why);
    return MQ_RV_CONFIG;
}

/* CLUSTER SLOTS: the node of the budget's slot */
static int slots(mq_rconv *c, const redisReply *r)
{
    mq_redis_slot_map m = { NULL, 0 };
    const mq_redis_slot_range *g;
    char why[300];

    if (r->type == REDIS_REPLY_ERROR) {
        if (mq_redis_transient(r->str)) {
            snprintf(c->last, sizeof c->last, "%s: %s", c->where, r->str);
            return R_SENT;          /* the next seed */
        }
        if (strstr(r->str, "cluster support disabled") != NULL) {
            snprintf(c->msg, sizeof c->msg, "redis %s is not a Cluster node (%s): use redis:// "
                     "or redis-sentinel://", c->where, r->str);
            return MQ_RV_CONFIG;
        }
        return mq_redis_verdict(&c->u, c->where, "CLUSTER SLOTS", r->str, c->msg, sizeof c->msg);
    }
    if (mq_redis_slot_map_build(r, &m, why, sizeof why) != MQ_TOPO_OK) {
        snprintf(c->msg, sizeof c->msg, "redis %s: CLUSTER SLOTS: %s (is it a Cluster node?)",
                 c->where, why);
        return MQ_RV_CONFIG;
    }
    g = mq_redis_slot_map_find(&m, c->slot);
    if (g == NULL) {
        mq_redis_slot_map_free(&m);
        snprintf(c->last, sizeof c->last, "%s: no master serves slot %u now", c->where, c->slot);
        return R_SENT;
    }
    c->topo.known = 1;
    c->topo.port = g->port;
    snprintf(c->topo.host, sizeof c->topo.host, "%s", g->host[0] ? g->host : c->node);
    mq_redis_slot_map_free(&m);
    return R_MOVED;
}

/* NOSCRIPT: the script itself (EVAL caches it again under the same SHA1) */
static int resend_eval(mq_rconv *c, mq_rconv_step *st)
{
    c->evaled = 1;
    c->argv[0] = (char *)"EVAL";
    c->argv[1] = (char *)c->script;
    c->lens[0] = 4, c->lens[1] = strlen(c->script);
    c->outlen = 0;
    c->ntags = c->got = 0;
    if (c->asking && add(c, T_ASKING, 1, (const char *[]){ "ASKING" }, (size_t[]){ 6 }) != 0)
        return R_OOM;
    if (add(c, T_EVAL, c->argc, (const char **)c->argv, c->lens) != 0) return R_OOM;
    c->argv[0] = (char *)"EVALSHA", c->argv[1] = c->sha;
    c->lens[0] = 7, c->lens[1] = 40;
    send_step(c, st);
    return R_SENT;
}

/* the script's answer (or a redirection, NOSCRIPT, an error) */
static int script(mq_rconv *c, const redisReply *r, int tag, mq_rconv_step *st)
{
    char host[MQ_REDIS_HOSTLEN];
    unsigned slot;
    int port, k;
    size_t i;

    if (r->type == REDIS_REPLY_ERROR) {
        if (tag == T_EVALSHA && !c->evaled && starts(r->str, "NOSCRIPT")) return resend_eval(c, st);
        k = c->u.kind == MQ_RU_CLUSTER
            ? mq_redis_redirect_parse(r->str, r->len, &slot, host, sizeof host, &port) : MQ_REDIRECT_NONE;
        if (k == MQ_REDIRECT_MOVED || k == MQ_REDIRECT_ASK) {
            if (++c->redirects > MAX_REDIRECTS) {
                snprintf(c->msg, sizeof c->msg, "redis %s: more than %d redirections (the last: %s): "
                         "the Cluster is resharding", c->where, MAX_REDIRECTS, r->str);
                return MQ_RV_DOWN;
            }
            if (k == MQ_REDIRECT_MOVED) {       /* the slot's owner now: kept */
                c->topo.known = 1;
                c->topo.port = port;
                snprintf(c->topo.host, sizeof c->topo.host, "%s", host[0] ? host : c->node);
                c->asking = 0;
            } else {                            /* this once only */
                c->asking = 1;
                go(c, host[0] ? host : c->node, port, st);
                c->evaled = 0;
                return R_SENT;
            }
            c->evaled = 0;
            return R_MOVED;
        }
        return mq_redis_verdict(&c->u, c->where, TAG_NAME[tag], r->str, c->msg, sizeof c->msg);
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(c->msg, sizeof c->msg, "redis %s: the limiter script answered no array: "
                 "is it Redis?", c->where);
        return MQ_RV_CONFIG;
    }
    st->nvals = 0;
    for (i = 0; i < r->elements && i < MQ_RCONV_NVALS; i++)
        st->vals[st->nvals++] = r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
    return MQ_RV_OK;
}

/* one reply, in the order sent: R_MORE to read; R_SENT (a step is set);
 * R_MOVED (go to the topology's node); R_OOM; or a verdict (done) */
static int one(mq_rconv *c, const redisReply *r, int tag, mq_rconv_step *st)
{
    switch (tag) {
    case T_ROLE: return role(c, r);
    case T_SENTINEL: return sentinel(c, r);
    case T_SLOTS: return slots(c, r);
    case T_EVALSHA:
    case T_EVAL: return script(c, r, tag, st);
    case T_SAUTH:
        if (r->type != REDIS_REPLY_ERROR) return R_MORE;
        snprintf(c->msg, sizeof c->msg, "redis Sentinel %s refused AUTH (sentinel_auth%s%s): %s",
                 c->where, c->u.s_user ? " as user " : "", c->u.s_user ? c->u.s_user : "", r->str);
        return MQ_RV_CONFIG;
    default:                    /* AUTH, SELECT, ASKING */
        if (r->type == REDIS_REPLY_ERROR)
            return mq_redis_verdict(&c->u, c->where, TAG_NAME[tag], r->str, c->msg, sizeof c->msg);
        return R_MORE;
    }
}

void mq_rconv_feed(mq_rconv *c, const char *buf, size_t n, mq_rconv_step *st)
{
    int i;

    if (c->rd == NULL || redisReaderFeed(c->rd, buf, n) != REDIS_OK) {
        snprintf(c->msg, sizeof c->msg, "redis %s does not speak the Redis protocol: is the URL "
                 "right?", c->where);
        return done(c, MQ_RV_CONFIG, st);
    }
    for (i = 0; i < 64 && c->got < c->ntags; i++) {
        void *rep = NULL;
        int v, sentinel_or_seed = c->phase != PH_DATA;

        if (redisReaderGetReply(c->rd, &rep) != REDIS_OK) {
            snprintf(c->msg, sizeof c->msg, "redis %s does not speak the Redis protocol (%s): is "
                     "the URL right?", c->where, c->rd->errstr[0] ? c->rd->errstr : "?");
            return done(c, MQ_RV_CONFIG, st);
        }
        if (rep == NULL) break;
        v = one(c, rep, c->tags[c->got++], st);
        freeReplyObject(rep);
        if (v == R_MORE) continue;
        if (v == R_OOM) return oom(c, st);
        if (v == R_SENT && sentinel_or_seed) return next_node(c, st);
        if (v == R_SENT) return;    /* EVAL to send, or ASK's node to go to */
        if (v == R_MOVED) {         /* to the node learnt (a new connection) */
            c->phase = PH_DATA;
            return go(c, c->topo.host, c->topo.port, st);
        }
        return done(c, v, st);
    }
    st->act = MQ_RC_RECV;
}
