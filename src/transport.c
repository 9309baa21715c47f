/* transport.c: one HTTP exchange over a reused libcurl easy handle.
 *
 * A client owns one easy handle for its whole life, so the connection,
 * the TLS session and (when the server offers it) HTTP/2 are reused across
 * calls. The secret headers are built here once and never handed back to
 * Lua. Bodies and headers are collected in C buffers inside the callbacks;
 * nothing here touches a Lua state, so no Lua error can unwind through
 * libcurl frames. */
#include "transport.h"
#include "headers.h"

#if defined(__has_include)
#if !__has_include(<curl/curl.h>)
#error "curl/curl.h not found: install libcurl's headers (Debian/Ubuntu: apt-get install libcurl4-openssl-dev; Fedora: dnf install libcurl-devel), or pass CURL_INCDIR=..."
#endif
#endif
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MQ_IDLE_REUSE_MAX 30    /* seconds; see CURLOPT_MAXAGE_CONN below */

struct mq_transport {
    CURL *easy;
    struct curl_slist *hdr_body;    /* with Content-Type */
    struct curl_slist *hdr_big;     /* with Content-Type and an empty Expect */
    struct curl_slist *hdr_nobody;
    int borrowed;                   /* header lists belong to a parent (dup) */
    char *buf;                      /* response body, grows up to MQ_BODY_CAP */
    size_t len, cap;
    int too_big;
    int headers_seen;               /* header lines of this attempt's answers */
    const char *send;               /* request body being sent */
    size_t send_len, send_off;
    int rewinds;                    /* libcurl wanted to send the body again */
    int sends;                      /* times this attempt's request went out */
    int may_resend;                 /* idempotent method: curl may re-send once */
    double timeout;                 /* this attempt's limit, for the message */
    mq_response *resp;              /* the response being filled */
    char errbuf[CURL_ERROR_SIZE];
    /* what the handle was last set to, so an unchanged option is not set
     * again on the next attempt (zero: not known, set it) */
    char *url;
#if LIBCURL_VERSION_NUM >= 0x073f00
    CURLU *cu;                      /* the URL, parsed once (set_url) */
#endif
    size_t url_len;
    char method[8];
    const struct curl_slist *hdr_set;   /* the header list on the handle */
    long timeout_ms, connect_timeout_ms;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int mq_transport_global_init(void)
{
    if (pthread_once(&global_once, global_init) != 0)
        return -1;
    return global_rc == CURLE_OK ? 0 : -1;
}

const char *mq_transport_curl_version(void)
{
    return curl_version();
}

/* ---- callbacks -------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    mq_transport *t = ud;
    size_t add = size * n;
    if (add > MQ_BODY_CAP - t->len) {
        t->too_big = 1;
        return 0;   /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (t->len + add + 1 > t->cap) {
        size_t ncap = t->cap ? t->cap : 4096;
        while (ncap < t->len + add + 1)
            ncap *= 2;
        char *nb = realloc(t->buf, ncap);
        if (nb == NULL)
            return 0;
        t->buf = nb;
        t->cap = ncap;
    }
    memcpy(t->buf + t->len, data, add);
    t->len += add;
    t->buf[t->len] = '\0';
    return add;
}

/* header name match: case-insensitive, followed by ':' */
static const char *header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return NULL;
    const char *v = line + nl + 1;
    size_t l = len - nl - 1;
    while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n'))
        l--;
    *vlen = l;
    return v;
}

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
    mq_transport *t = ud;
    mq_response *r = t->resp;
    size_t len = size * n;
    size_t vl;
    const char *v;

    t->headers_seen++;
    /* most lines are none of ours: one look at the first byte */
    switch (len > 0 ? line[0] : 0) {
    case 'H': case 'R': case 'X': case 'r': case 'x':
        break;
    default:
        return len;
    }
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* a new response (an interim 1xx, or a fresh one): forget the last */
        r->retry_after = -1;
        r->rl_remaining = r->rl_limit = -1;
        r->rl_reset = -1;
    } else if ((v = header_value(line, len, "retry-after", &vl)) != NULL) {
        r->retry_after = mq_retry_after(v, vl, time(NULL));
    } else if ((v = header_value(line, len, "x-ratelimit-remaining", &vl)) != NULL) {
        r->rl_remaining = mq_header_long(v, vl);
    } else if ((v = header_value(line, len, "x-ratelimit-limit", &vl)) != NULL) {
        r->rl_limit = mq_header_long(v, vl);
    } else if ((v = header_value(line, len, "x-ratelimit-reset", &vl)) != NULL) {
        double left = mq_ratelimit_reset(v, vl, time(NULL));
        r->rl_reset = left >= 0 ? left : 0;   /* as before: malformed reads as 0 */
    }
    return len;
}

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    mq_transport *t = ud;
    size_t want = size * n;
    size_t left = t->send_len - t->send_off;
    if (want > left)
        want = left;
    memcpy(dst, t->send + t->send_off, want);
    t->send_off += want;
    return want;
}

/* Keep-alive and its one hazard. A pooled connection the server closed
 * while it sat idle is found dead by libcurl before it is used (the FIN is
 * already there) and a fresh one is opened: nothing is sent twice. The
 * hazard is the race: the server closes just as our request goes out, or
 * the connection dies after sending with not one byte of answer. libcurl
 * then re-sends the request once on a fresh connection, inside the same
 * perform. We allow that only for PUT and DELETE, which are idempotent, and
 * flag it (r->resent) so the caller treats the call as possibly processed
 * (an "already cancelled" that follows is then reconciled). A POST is never
 * re-sent behind the caller's back: the send is refused and the attempt
 * ends as MQ_T_RESET (ambiguous), for the retry policy to decide. */
static int on_seek(void *ud, curl_off_t off, int origin)
{
    mq_transport *t = ud;
    (void)origin;
    if (off == 0 && (t->send_off == 0 || t->may_resend)) {
        t->send_off = 0;
        return CURL_SEEKFUNC_OK;
    }
    t->rewinds++;
    return CURL_SEEKFUNC_CANTSEEK;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* Called each time the request is about to go out on a connection. */
static int on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port)
{
    mq_transport *t = ud;
    (void)ip; (void)local_ip; (void)port; (void)local_port;
    t->sends++;
    if (t->sends == 1)
        return CURL_PREREQFUNC_OK;
    if (t->sends == 2 && t->may_resend) {
        if (t->resp != NULL)
            t->resp->resent = 1;    /* the first send may have been processed */
        return CURL_PREREQFUNC_OK;
    }
    t->rewinds++;
    return CURL_PREREQFUNC_ABORT;
}
#endif

/* ---- setup ------------------------------------------------------------ */

#define SETOPT(opt, val) do { \
        CURLcode rc_ = curl_easy_setopt(t->easy, opt, val); \
        if (rc_ != CURLE_OK) { \
            snprintf(err, errlen, "curl_easy_setopt(%s): %s", #opt, curl_easy_strerror(rc_)); \
            goto fail; \
        } \
    } while (0)

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value, int *ok)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = malloc(n);
    struct curl_slist *nl;
    if (h == NULL) {
        *ok = 0;
        return l;
    }
    snprintf(h, n, "%s: %s", name, value);
    nl = curl_slist_append(l, h);
    /* the header carries a secret: wipe our copy (curl keeps its own) */
    memset(h, 0, n);
    free(h);
    if (nl == NULL)
        *ok = 0;
    return nl ? nl : l;
}

/* with_body: 0 none, 1 a body, 2 a body libcurl may announce with
 * "Expect: 100-continue" (a wasted round trip for our small bodies): the
 * empty Expect header keeps it from doing so. libcurl checks every header
 * it sends against the list, so the list stays as short as it can be. */
static struct curl_slist *base_headers(const mq_transport_cfg *cfg, int with_body, int *ok)
{
    struct curl_slist *l = NULL;
    l = add_header(l, "X-API-Key", cfg->api_key, ok);
    l = add_header(l, "X-Secret-Key", cfg->secret_key, ok);
    l = add_header(l, "Accept", "application/json", ok);
    if (with_body)
        l = add_header(l, "Content-Type", "application/json", ok);
    if (with_body == 2)
        l = add_header(l, "Expect", "", ok);
    return l;
}

/* Bodies up to this size never get an Expect header from libcurl (its
 * threshold: 1024 bytes in old releases, 1 MiB since) */
#define MQ_EXPECT_MIN 1024

/* libcurl looks up the proxy variables in the environment on every
 * transfer. When none is set as the client is made, the client says "no
 * proxy" itself and saves those lookups; when one is, libcurl keeps
 * reading them per transfer, as it always does. */
static int proxy_env_set(void)
{
    static const char *const names[] = {
        "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
        "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (getenv(names[i]) != NULL)
            return 1;
    return 0;
}

int mq_transport_new(const mq_transport_cfg *cfg, mq_transport **out, char *err, size_t errlen)
{
    mq_transport *t;
    char ua[512];
    int ok = 1;

    *out = NULL;
    if (mq_transport_global_init() != 0) {
        snprintf(err, errlen, "curl_global_init failed");
        return -1;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->easy = curl_easy_init();
    if (t->easy == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        goto fail;
    }
    t->hdr_body = base_headers(cfg, 1, &ok);
    t->hdr_big = base_headers(cfg, 2, &ok);
    t->hdr_nobody = base_headers(cfg, 0, &ok);
    if (!ok) {
        snprintf(err, errlen, "out of memory building headers");
        goto fail;
    }
    /* the library and its version, and no more: every byte of a header is
     * sent, and handled by libcurl, on every call */
    snprintf(ua, sizeof ua, "%s%s%s", MQ_LIB_UA,
             cfg->user_agent && *cfg->user_agent ? " " : "", cfg->user_agent ? cfg->user_agent : "");

    SETOPT(CURLOPT_USERAGENT, ua);  /* curl copies strings it is given */
    SETOPT(CURLOPT_NOSIGNAL, 1L);   /* threads (nginx thread pool) and no SIGALRM */
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);  /* the keys must not travel to another host */
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_PATH_AS_IS, 1L);  /* our encoded path is final: no dot-segment squashing */
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);  /* h2 when TLS offers it */
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TCP_NODELAY, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, t);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, t);
    SETOPT(CURLOPT_READFUNCTION, on_read);
    SETOPT(CURLOPT_READDATA, t);
    SETOPT(CURLOPT_SEEKFUNCTION, on_seek);
    SETOPT(CURLOPT_SEEKDATA, t);
#if LIBCURL_VERSION_NUM >= 0x075000
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, t);
#endif
    /* Never reuse a connection idle for longer than this: below the idle
     * timeouts of common servers and load balancers (nginx 75 s, cloud load
     * balancers 60 s), so the server does not close a connection at the
     * moment we pick it up again (libcurl's default is 118 s). */
    SETOPT(CURLOPT_MAXAGE_CONN, (long)MQ_IDLE_REUSE_MAX);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MQ_BODY_CAP);
    SETOPT(CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
    if (cfg->ca_file && *cfg->ca_file)
        SETOPT(CURLOPT_CAINFO, cfg->ca_file);
    if (!proxy_env_set()) {
        SETOPT(CURLOPT_PROXY, "");
        SETOPT(CURLOPT_NOPROXY, "");
    }
    *out = t;
    return 0;
fail:
    mq_transport_free(t);
    return -1;
}

void mq_transport_free(mq_transport *t)
{
    if (t == NULL)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    if (!t->borrowed) {
        curl_slist_free_all(t->hdr_body);
        curl_slist_free_all(t->hdr_big);
        curl_slist_free_all(t->hdr_nobody);
    }
    free(t->buf);
    free(t->url);
#if LIBCURL_VERSION_NUM >= 0x073f00
    if (t->cu != NULL)
        curl_url_cleanup(t->cu);
#endif
    free(t);
}

/* ---- one attempt -------------------------------------------------------- */

static long ms(double s)
{
    if (s <= 0.001)
        return 1;
    if (s > 86400.0)
        return 86400000L;
    return (long)(s * 1000.0 + 0.5);
}

static mq_outcome outcome_of(mq_transport *t, CURLcode rc)
{
    curl_off_t pre = 0;
    switch (rc) {
    case CURLE_OK:
        return MQ_T_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return MQ_T_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return MQ_T_TLS;
    case CURLE_OPERATION_TIMEDOUT:
        /* before the request went out (still connecting) nothing was sent */
        if (curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK && pre == 0)
            return MQ_T_CONNECT_TIMEOUT;
        return MQ_T_TIMEOUT;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        return t->too_big || rc == CURLE_FILESIZE_EXCEEDED ? MQ_T_TOO_BIG : MQ_T_FAILED;
    case CURLE_OUT_OF_MEMORY:
        /* libcurl's answer to a header line over its limit (100 KB), once
         * the answer had begun: an unusable answer, not our memory */
        return t->headers_seen > 0 ? MQ_T_TOO_BIG : MQ_T_FAILED;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_ABORTED_BY_CALLBACK:     /* on_prereq refused a re-send */
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return MQ_T_RESET;
    default:
        return MQ_T_FAILED;
    }
}

#define SET(opt, val) (curl_easy_setopt(t->easy, (opt), (val)) != CURLE_OK)

/* The URL, parsed here once and handed to libcurl as a URL handle
 * (CURLOPT_CURLU): given a string (CURLOPT_URL), libcurl parses it again
 * on every transfer, about 12,000 instructions of a call (measured:
 * docs/performance.md). The path is ours as written (CURLU_PATH_AS_IS,
 * as CURLOPT_PATH_AS_IS for a string). 0, or -1. */
static int set_url(mq_transport *t, const char *url)
{
#if LIBCURL_VERSION_NUM >= 0x073f00
    if (t->cu == NULL && (t->cu = curl_url()) == NULL)
        return -1;
    if (curl_url_set(t->cu, CURLUPART_URL, url, CURLU_PATH_AS_IS) != CURLUE_OK)
        return -1;
    return curl_easy_setopt(t->easy, CURLOPT_CURLU, t->cu) == CURLE_OK ? 0 : -1;
#else
    return curl_easy_setopt(t->easy, CURLOPT_URL, url) == CURLE_OK ? 0 : -1;
#endif
}

/* The URL, the method and the timeouts stay on the handle from one attempt
 * to the next: each is set only when it changed (a method switch undoes the
 * previous one). The body is set every time. curl_easy_setopt only fails
 * for an unknown option or out of memory. 0, or -1. */
static int set_options(mq_transport *t, const char *method, const char *url,
                       const char *body, size_t body_len, long timeout_ms, long connect_ms)
{
    int post = body != NULL;
    size_t ulen = strlen(url), mlen = strlen(method);
    const struct curl_slist *hdr = !post ? t->hdr_nobody
                                 : body_len > MQ_EXPECT_MIN ? t->hdr_big : t->hdr_body;

    if (ulen != t->url_len || t->url == NULL || memcmp(url, t->url, ulen) != 0) {
        char *copy = malloc(ulen + 1);
        if (copy == NULL || set_url(t, url) != 0) {
            free(copy);
            free(t->url);   /* the handle's URL is not known any more */
            t->url = NULL;
            return -1;
        }
        memcpy(copy, url, ulen + 1);
        free(t->url);
        t->url = copy;
        t->url_len = ulen;
    }
    if (timeout_ms != t->timeout_ms) {
        t->timeout_ms = 0;
        if (SET(CURLOPT_TIMEOUT_MS, timeout_ms))
            return -1;
        t->timeout_ms = timeout_ms;
    }
    if (connect_ms != t->connect_timeout_ms) {
        t->connect_timeout_ms = 0;
        if (SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms))
            return -1;
        t->connect_timeout_ms = connect_ms;
    }
    if (mlen >= sizeof t->method || hdr != t->hdr_set || strcmp(method, t->method) != 0) {
        t->method[0] = '\0';
        t->hdr_set = NULL;
        if (SET(CURLOPT_HTTPHEADER, hdr)
            || (post ? SET(CURLOPT_POST, 1L) : SET(CURLOPT_HTTPGET, 1L))
            || SET(CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? NULL : method))
            return -1;
        if (mlen < sizeof t->method) {
            memcpy(t->method, method, mlen + 1);
            t->hdr_set = hdr;
        }
    }
    if (post) {
#if LIBCURL_VERSION_NUM >= 0x075000
        /* the body goes out with the headers, in one send; on_prereq still
         * refuses to let a POST be re-sent */
        if (SET(CURLOPT_POSTFIELDS, body))
            return -1;
#else
        if (SET(CURLOPT_POSTFIELDS, NULL))
            return -1;
#endif
        if (SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len))
            return -1;
    }
    return 0;
}

#undef SET

void *mq_transport_prepare(mq_transport *t, const char *method, const char *url,
                           const char *body, size_t body_len,
                           double timeout, double connect_timeout, mq_response *r)
{
    memset(r, 0, sizeof *r);
    r->retry_after = -1;
    r->rl_remaining = r->rl_limit = -1;
    r->rl_reset = -1;
    r->body = "";
    t->resp = r;
    t->len = 0;
    t->too_big = 0;
    t->headers_seen = 0;
    t->send = body;
    t->send_len = body_len;
    t->send_off = 0;
    t->rewinds = 0;
    t->sends = 0;
    t->may_resend = strcmp(method, "POST") != 0;   /* PUT, DELETE, GET: idempotent */
    t->timeout = timeout;
    t->errbuf[0] = '\0';

    if (connect_timeout > timeout)
        connect_timeout = timeout;
    if (set_options(t, method, url, body, body_len, ms(timeout), ms(connect_timeout)) != 0) {
        r->outcome = MQ_T_FAILED;
        snprintf(r->message, sizeof r->message, "could not set up the request");
        t->resp = NULL;
        return NULL;
    }
    return t->easy;
}

/* Why the attempt failed, in words a log reader can act on: ours for the
 * cases the retry policy cares about, curl's (which name the host, never a
 * header) for the detail. */
static void describe(mq_transport *t, CURLcode rc, mq_response *r)
{
    const char *curl_says = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    curl_off_t us = 0;
    double took;

    if (curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK)
        us = 0;
    took = (double)us / 1e6;
    if (took < t->timeout && rc == CURLE_OPERATION_TIMEDOUT)
        took = t->timeout;  /* curl stops a hair early; say the limit */
    switch (r->outcome) {
    case MQ_T_TIMEOUT:
        snprintf(r->message, sizeof r->message, "timed out after %.1fs", took);
        break;
    case MQ_T_CONNECT_TIMEOUT:
        snprintf(r->message, sizeof r->message, "could not connect within %.1fs", took);
        break;
    case MQ_T_CONNECT:
        snprintf(r->message, sizeof r->message, "could not connect: %.200s", curl_says);
        break;
    case MQ_T_TLS:
        snprintf(r->message, sizeof r->message, "TLS failure: %.200s", curl_says);
        break;
    case MQ_T_RESET:
        if (t->rewinds > 0)
            snprintf(r->message, sizeof r->message,
                     "connection closed with no answer (a reused connection; a create is "
                     "never re-sent automatically)");
        else
            snprintf(r->message, sizeof r->message,
                     "connection closed before a complete answer: %.180s", curl_says);
        break;
    case MQ_T_TOO_BIG:
        if (rc == CURLE_OUT_OF_MEMORY)
            snprintf(r->message, sizeof r->message, "a response header is over libcurl's limit");
        else
            snprintf(r->message, sizeof r->message, "response body over %d bytes", MQ_BODY_CAP);
        break;
    default:
        snprintf(r->message, sizeof r->message, "%s", curl_says);
        break;
    }
}

void mq_transport_finish(mq_transport *t, int rcode, mq_response *r)
{
    CURLcode rc = (CURLcode)rcode;
    r->outcome = outcome_of(t, rc);
    if (rc == CURLE_OK) {
        if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK)
            r->status = 0;
        r->body = t->buf ? t->buf : "";
        r->body_len = t->len;
    } else {
        long code = 0;
        if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK)
            r->status = code;   /* known even when the body was cut short */
        describe(t, rc, r);
    }
    t->resp = NULL;
    t->send = NULL;
}

void mq_transport_perform(mq_transport *t, const char *method, const char *url,
                          const char *body, size_t body_len,
                          double timeout, double connect_timeout, mq_response *r)
{
    if (mq_transport_prepare(t, method, url, body, body_len, timeout, connect_timeout, r) == NULL)
        return;
    mq_transport_finish(t, (int)curl_easy_perform(t->easy), r);
}

int mq_transport_dup(mq_transport *parent, mq_transport **out)
{
    mq_transport *t = calloc(1, sizeof *t);
    *out = NULL;
    if (t == NULL)
        return -1;
    t->borrowed = 1;
    t->hdr_body = parent->hdr_body;
    t->hdr_big = parent->hdr_big;
    t->hdr_nobody = parent->hdr_nobody;
    t->easy = curl_easy_duphandle(parent->easy);
    if (t->easy == NULL
        || curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK
        || curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t) != CURLE_OK
        || curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t) != CURLE_OK
        || curl_easy_setopt(t->easy, CURLOPT_READDATA, t) != CURLE_OK
        || curl_easy_setopt(t->easy, CURLOPT_SEEKDATA, t) != CURLE_OK
#if LIBCURL_VERSION_NUM >= 0x075000
        || curl_easy_setopt(t->easy, CURLOPT_PREREQDATA, t) != CURLE_OK
#endif
        ) {
        mq_transport_free(t);
        return -1;
    }
    *out = t;
    return 0;
}
