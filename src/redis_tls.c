/* redis_tls.c: TLS for the blocking Redis connection, through OpenSSL:
 * the context (CA file or the system bundle, client certificate), the
 * handshake with SNI and the host-name or IP check, and reads and writes
 * on a non-blocking socket bounded by a deadline. Setup faults (a
 * certificate refused, a file unreadable, not TLS) are told apart from
 * outages (timeouts, resets). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "redis_tls.h"

int mq_tls_wait(int fd, short events, int64_t deadline)
{
    int i;

    for (i = 0; i < 1000; i++) {
        struct pollfd p = { fd, events, 0 };
        int64_t left = deadline - mq_now_ns();
        int rc;

        if (left <= 0) return 0;
        rc = poll(&p, 1, (int)((left + 999999) / 1000000));
        if (rc > 0) return 1;
        if (rc < 0 && errno != EINTR) return -1;
    }
    return 0;
}

static void ssl_why(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s (%s)", what, e ? buf : "no reason given");
    ERR_clear_error();
}

SSL_CTX *mq_tls_ctx_new(const mq_redis_url *u, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    ERR_clear_error();
    if (ctx == NULL) {
        ssl_why(err, errlen, "TLS: cannot make a context");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        ssl_why(err, errlen, "TLS: cannot require TLS 1.2");
        goto fail;
    }
    if (u->ca_file ? SSL_CTX_load_verify_locations(ctx, u->ca_file, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        char what[600];
        snprintf(what, sizeof what, "TLS: cannot load the CA certificates from %s",
                 u->ca_file ? u->ca_file : "the system bundle");
        ssl_why(err, errlen, what);
        goto fail;
    }
    if (u->cert_file || u->key_file) {
        char what[600];
        if (!u->cert_file || !u->key_file) {
            snprintf(err, errlen, "TLS: redis_tls.cert_file and key_file go together");
            goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, u->cert_file) != 1) {
            snprintf(what, sizeof what, "TLS: cannot load the client certificate %s", u->cert_file);
            ssl_why(err, errlen, what);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, u->key_file, SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(what, sizeof what, "TLS: cannot use the client key %s with %s", u->key_file,
                     u->cert_file);
            ssl_why(err, errlen, what);
            goto fail;
        }
    }
    SSL_CTX_set_verify(ctx, u->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* what a failed SSL_* call means: wait and go on (1), or MQ_TLS_* */
static int outcome(SSL *ssl, int fd, int rc, int64_t deadline, const char *doing, char *err,
                   size_t errlen)
{
    int e = SSL_get_error(ssl, rc), w;
    char what[200];

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        w = mq_tls_wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (w > 0) return 1;
        snprintf(err, errlen, "%s: %s", doing, w == 0 ? "timed out" : strerror(errno));
        return MQ_TLS_DOWN;
    }
    if (e == SSL_ERROR_SSL) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
            snprintf(err, errlen, "TLS certificate check failed: %s (redis_tls.ca_file names "
                     "the CA that signed it; redis_tls.server_name the name it is for)",
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            snprintf(what, sizeof what, "TLS %s failed", doing);
            ssl_why(err, errlen, what);
        }
        return MQ_TLS_SETUP;
    }
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", doing, e == SSL_ERROR_ZERO_RETURN || errno == 0
             ? "connection closed" : strerror(errno));
    return MQ_TLS_DOWN;
}

int mq_tls_handshake(SSL_CTX *ctx, int fd, const char *server_name, const char *ip, int verify,
                     int64_t deadline, SSL **out, char *err, size_t errlen)
{
    SSL *ssl = SSL_new(ctx);
    int i, rc;

    *out = NULL;
    ERR_clear_error();
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        ssl_why(err, errlen, "TLS: out of memory");
        SSL_free(ssl);
        return MQ_TLS_DOWN;
    }
    if (server_name && SSL_set_tlsext_host_name(ssl, server_name) != 1) {
        ssl_why(err, errlen, "TLS: cannot set the server name");
        SSL_free(ssl);
        return MQ_TLS_SETUP;
    }
    if (verify) {
        X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        rc = server_name ? X509_VERIFY_PARAM_set1_host(p, server_name, 0)
                         : X509_VERIFY_PARAM_set1_ip_asc(p, ip ? ip : "");
        if (rc != 1) {
            snprintf(err, errlen, "TLS: cannot check the certificate for %s",
                     server_name ? server_name : ip ? ip : "?");
            SSL_free(ssl);
            ERR_clear_error();
            return MQ_TLS_SETUP;
        }
    }
    for (i = 0; i < 100; i++) {
        rc = SSL_connect(ssl);
        if (rc == 1) {
            *out = ssl;
            return 0;
        }
        rc = outcome(ssl, fd, rc, deadline, "handshake", err, errlen);
        if (rc != 1) {
            SSL_free(ssl);
            return rc;
        }
    }
    snprintf(err, errlen, "handshake: too many steps");
    SSL_free(ssl);
    return MQ_TLS_DOWN;
}

long mq_tls_write(SSL *ssl, int fd, const char *buf, size_t n, int64_t deadline, char *err, size_t errlen)
{
    size_t done = 0;
    int i;

    for (i = 0; i < 100000 && done < n; i++) {
        size_t w = 0;
        int rc;

        ERR_clear_error();
        rc = SSL_write_ex(ssl, buf + done, n - done, &w);
        if (rc == 1) {
            done += w;
            continue;
        }
        rc = outcome(ssl, fd, rc, deadline, "send", err, errlen);
        if (rc != 1) return rc;
    }
    return (long)done;
}

long mq_tls_read(SSL *ssl, int fd, char *buf, size_t cap, int64_t deadline, char *err, size_t errlen)
{
    int i;

    for (i = 0; i < 100000; i++) {
        size_t r = 0;
        int rc;

        ERR_clear_error();
        rc = SSL_read_ex(ssl, buf, cap, &r);
        if (rc == 1) return (long)r;
        if (SSL_get_error(ssl, rc) == SSL_ERROR_ZERO_RETURN) return 0;
        rc = outcome(ssl, fd, rc, deadline, "read", err, errlen);
        if (rc != 1) return rc;
    }
    snprintf(err, errlen, "read: too many steps");
    return MQ_TLS_DOWN;
}
