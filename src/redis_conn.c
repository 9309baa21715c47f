/* redis_conn.c: the blocking byte mover of the Redis conversation
 * (redis_conv.c): connects where it says (getaddrinfo at every new
 * connection, so a name that moved after a failover is followed; TLS
 * through redis_tls.c), writes what it says, reads until it has its
 * answer, all by one deadline. No Redis reply is read here. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "redis_conn.h"
#include "redis_tls.h"

struct mq_redis {
    mq_redis_url u;             /* the TLS options */
    mq_rconv *conv;
    int fd;                     /* -1: none */
    SSL *ssl;                   /* with TLS */
    SSL_CTX *ctx;               /* made at the first TLS connection */
    char node[300];             /* host:port (or path) fd is connected to */
    int answered;               /* a byte came back on this connection */
};

mq_redis *mq_redis_new(const mq_redis_url *u, const char *script)
{
    mq_redis *r = calloc(1, sizeof *r);

    if (r == NULL) return NULL;
    r->fd = -1;
    if (mq_redis_url_copy(&r->u, u) != 0) {
        free(r);
        return NULL;
    }
    if ((r->conv = mq_rconv_new(u, script)) == NULL) {
        mq_redis_free(r);
        return NULL;
    }
    return r;
}

static void drop(mq_redis *r)
{
    if (r->ssl) SSL_free(r->ssl);
    r->ssl = NULL;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    r->answered = 0;
    r->node[0] = '\0';
}

void mq_redis_free(mq_redis *r)
{
    if (r == NULL) return;
    drop(r);
    if (r->ctx) SSL_CTX_free(r->ctx);
    mq_rconv_free(r->conv);
    mq_redis_url_free(&r->u);
    free(r);
}

/* a non-blocking connect to one address by deadline: 0, or -1 (why) */
static int connect_addr(mq_redis *r, const struct sockaddr *sa, socklen_t len, int64_t deadline,
                        char *why, size_t whylen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e = 0, w;
    socklen_t el = sizeof e;

    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
        snprintf(why, whylen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    w = mq_tls_wait(fd, POLLOUT, deadline);
    if (w <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
        snprintf(why, whylen, "%s", w == 0 ? "timed out" : strerror(e ? e : errno));
        close(fd);
        return -1;
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    r->fd = fd;
    return 0;
}

/* connect to the step's node (resolving its name now): 0, or -1 (why) */
static int connect_node(mq_redis *r, const mq_rconv_step *st, int64_t deadline,
                        char *why, size_t whylen)
{
    struct addrinfo hints, *res = NULL, *a;
    char port[8];
    int rc, i = 0;

    if (st->path) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", st->path);
        return connect_addr(r, (struct sockaddr *)&sun, sizeof sun, deadline, why, whylen);
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", st->port);
    rc = getaddrinfo(st->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, whylen, "resolving %s: %s", st->host, gai_strerror(rc));
        return -1;
    }
    rc = -1;
    for (a = res; a && i < 8 && rc != 0; a = a->ai_next, i++)
        rc = connect_addr(r, a->ai_addr, a->ai_addrlen, deadline, why, whylen);
    freeaddrinfo(res);
    return rc;
}

static long io_write(mq_redis *r, const char *buf, size_t n, int64_t deadline, char *why, size_t wl)
{
    size_t done = 0;
    int i;

    if (r->ssl) return mq_tls_write(r->ssl, r->fd, buf, n, deadline, why, wl);
    for (i = 0; i < 100000 && done < n; i++) {
        ssize_t w = send(r->fd, buf + done, n - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            int k = mq_tls_wait(r->fd, POLLOUT, deadline);
            if (k <= 0) {
                snprintf(why, wl, "send: %s", k == 0 ? "timed out" : strerror(errno));
                return MQ_TLS_DOWN;
            }
        } else {
            snprintf(why, wl, "send: %s", strerror(errno));
            return MQ_TLS_DOWN;
        }
    }
    return (long)done;
}

static long io_read(mq_redis *r, char *buf, size_t cap, int64_t deadline, char *why, size_t wl)
{
    int i;

    if (r->ssl) return mq_tls_read(r->ssl, r->fd, buf, cap, deadline, why, wl);
    for (i = 0; i < 100000; i++) {
        ssize_t n = recv(r->fd, buf, cap, 0);
        if (n >= 0) return (long)n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            int k = mq_tls_wait(r->fd, POLLIN, deadline);
            if (k <= 0) {
                snprintf(why, wl, "read: %s", k == 0 ? "timed out" : strerror(errno));
                return MQ_TLS_DOWN;
            }
        } else {
            snprintf(why, wl, "read: %s", strerror(errno));
            return MQ_TLS_DOWN;
        }
    }
    snprintf(why, wl, "read: too many steps");
    return MQ_TLS_DOWN;
}

/* the step CONNECT: the kept connection when it is to that node */
static void do_connect(mq_redis *r, mq_rconv_step *st, int64_t deadline)
{
    char why[400], node[300];
    int rc;

    snprintf(node, sizeof node, "%s:%d", st->path ? st->path : st->host, st->port);
    if (r->fd >= 0 && strcmp(node, r->node) == 0) {
        mq_rconv_connected(r->conv, 1, st);
        return;
    }
    drop(r);
    if (st->tls && r->ctx == NULL && (r->ctx = mq_tls_ctx_new(&r->u, why, sizeof why)) == NULL) {
        mq_rconv_fault(r->conv, NULL, why, 1, st);
        return;
    }
    if (connect_node(r, st, deadline, why, sizeof why) != 0) {
        mq_rconv_fault(r->conv, "connect", why, 0, st);
        return;
    }
    if (st->tls) {
        rc = mq_tls_handshake(r->ctx, r->fd, st->server_name, st->host, r->u.verify, deadline,
                              &r->ssl, why, sizeof why);
        if (rc != 0) {
            drop(r);
            mq_rconv_fault(r->conv, rc == MQ_TLS_SETUP ? NULL : "TLS", why, rc == MQ_TLS_SETUP, st);
            return;
        }
    }
    snprintf(r->node, sizeof r->node, "%s", node);
    mq_rconv_connected(r->conv, 0, st);
}

/* TLS 1.3: a server that wants a client certificate says so after our
 * handshake ended; its alert is lost when it resets the connection under
 * our first request. A fresh TLS connection closed before any answer,
 * without a client certificate set: that setup fault (n otherwise) */
static long cert_wanted(mq_redis *r, long n, char *why, size_t wl)
{
    if (n > 0 || n == MQ_TLS_SETUP || !r->ssl || r->answered || r->u.cert_file != NULL
        || strstr(why, "timed out") != NULL)
        return n;
    snprintf(why, wl, "the server closed the connection right after the TLS handshake, before "
             "any answer: does it require a client certificate (redis_tls.cert_file and key_file)?");
    return MQ_TLS_SETUP;
}

int mq_redis_eval(mq_redis *r, int nkeys, int argc, const char **argv, double tmo,
                  long long *vals, int *nvals, char *err, size_t errlen)
{
    int64_t deadline = mq_now_ns() + (int64_t)((tmo > 0.001 ? tmo : 0.001) * 1e9);
    mq_rconv_step st;
    char buf[16384], why[400];
    int i;

    *nvals = 0;
    if (mq_rconv_start(r->conv, nkeys, argc, argv, &st) != 0) {
        snprintf(err, errlen, "redis %s: out of memory", r->u.where);
        return MQ_REDIS_DOWN;
    }
    for (i = 0; i < 10000 && st.act != MQ_RC_DONE; i++) {
        long n;

        switch (st.act) {
        case MQ_RC_CONNECT:
            do_connect(r, &st, deadline);
            break;
        case MQ_RC_SEND:
            n = cert_wanted(r, io_write(r, st.out, st.outlen, deadline, why, sizeof why), why,
                            sizeof why);
            if (n < 0) mq_rconv_fault(r->conv, NULL, why, n == MQ_TLS_SETUP, &st);
            else mq_rconv_sent(r->conv, &st);
            break;
        default:                /* MQ_RC_RECV */
            n = io_read(r, buf, sizeof buf, deadline, why, sizeof why);
            n = cert_wanted(r, n, why, sizeof why);
            if (n == 0) mq_rconv_fault(r->conv, "read", "connection closed", 0, &st);
            else if (n < 0) mq_rconv_fault(r->conv, NULL, why, n == MQ_TLS_SETUP, &st);
            else r->answered = 1, mq_rconv_feed(r->conv, buf, (size_t)n, &st);
            break;
        }
    }
    if (st.act != MQ_RC_DONE) mq_rconv_fault(r->conv, "exchange", "too many steps", 0, &st);
    if (!st.keep) drop(r);
    if (st.verdict != MQ_RV_OK) {
        snprintf(err, errlen, "%s", st.msg);
        return st.verdict;
    }
    for (i = 0; i < st.nvals; i++) vals[i] = st.vals[i];
    *nvals = st.nvals;
    return MQ_REDIS_OK;
}
