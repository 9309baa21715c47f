/* policy.c: which failures are worth another attempt, and how long to wait.
 *
 * The rule the whole retry design rests on: an attempt that may have been
 * processed by the server (timed out or cut off after sending, or answered
 * 500/502/504) is only repeated for idempotent methods, unless the caller
 * opted in with retry_post (the appointment code then doubles as an
 * idempotency key and "already exists" is reconciled by the engine). */
#include "policy.h"

#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_BASE 0.25
#define BACKOFF_CAP  8.0

/* The one table of names: the Lua side (core.KINDS, errors.lua), the
 * metrics file and every message take them from here. */
static const char *const kind_names[MQ_K__COUNT] = {
    "ok", "bad_request", "unauthorized", "forbidden", "not_found",
    "unprocessable", "rate_limited", "server_error", "timeout",
    "network", "bad_response", "invalid_argument", "config", "too_large",
};
/* retryable by default: what may pass with time (README.md, "Error
 * objects": the kinds table) */
static const unsigned char kind_retryable[MQ_K__COUNT] = {
    0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0,
};
static const char *const method_names[MQ_M__COUNT] = { "POST", "PUT", "DELETE", "GET" };
static const char *const outcome_names[] = {
    "ok", "connect", "tls", "timeout", "reset", "too_big", "failed", "connect_timeout",
};
/* one name per mq_outcome, no more, no fewer */
typedef char outcomes_match[sizeof outcome_names / sizeof *outcome_names == MQ_T__COUNT ? 1 : -1];

const char *mq_kind_name(mq_kind k)
{
    return (unsigned)k < MQ_K__COUNT ? kind_names[k] : "network";
}

int mq_kind_retryable(mq_kind k)
{
    return (unsigned)k < MQ_K__COUNT && kind_retryable[k];
}

const char *mq_method_name(mq_method m)
{
    return (unsigned)m < MQ_M__COUNT ? method_names[m] : "POST";
}

int mq_method_parse(const char *s, mq_method *m)
{
    for (int i = 0; i < MQ_M__COUNT; i++) {
        if (strcmp(s, method_names[i]) == 0) {
            *m = (mq_method)i;
            return 0;
        }
    }
    return -1;
}

const char *mq_outcome_name(mq_outcome o)
{
    return (unsigned)o < MQ_T__COUNT ? outcome_names[o] : "failed";
}

int mq_outcome_parse(const char *s)
{
    for (int i = 0; i < MQ_T__COUNT; i++)
        if (strcmp(s, outcome_names[i]) == 0)
            return i;
    return -1;
}

static mq_kind kind_of_status(long status)
{
    if (status >= 200 && status < 300) return MQ_K_OK;
    switch (status) {
    case 400: return MQ_K_BAD_REQUEST;
    case 401: return MQ_K_UNAUTHORIZED;
    case 403: return MQ_K_FORBIDDEN;
    case 404: return MQ_K_NOT_FOUND;
    case 422: return MQ_K_UNPROCESSABLE;
    case 429: return MQ_K_RATE_LIMITED;
    default: break;
    }
    if (status >= 500 && status < 600) return MQ_K_SERVER_ERROR;
    /* 1xx/3xx (a redirect is never followed) and other 4xx: the answer is
     * not one the API documents; the request was not fulfilled */
    return status >= 400 ? MQ_K_BAD_REQUEST : MQ_K_BAD_RESPONSE;
}

mq_verdict mq_classify(mq_method m, mq_outcome o, long status, int retry_post)
{
    mq_verdict v = { MQ_K_OK, 0, 0 };
    int idempotent = m != MQ_M_POST || retry_post;

    switch (o) {
    case MQ_T_OK:
        v.kind = kind_of_status(status);
        if (status == 429 || status == 503) {
            v.retryable = 1;        /* refused before processing */
        } else if (status == 500 || status == 502 || status == 504) {
            v.ambiguous = 1;
            v.retryable = idempotent;
        }
        break;
    case MQ_T_CONNECT:
        v.kind = MQ_K_NETWORK;
        v.retryable = 1;            /* nothing was sent */
        break;
    case MQ_T_CONNECT_TIMEOUT:
        v.kind = MQ_K_TIMEOUT;      /* README.md's kinds: "connect or transfer timed out" */
        v.retryable = 1;            /* nothing was sent */
        break;
    case MQ_T_TLS:
        v.kind = MQ_K_NETWORK;      /* a certificate will not fix itself */
        break;
    case MQ_T_TIMEOUT:
        v.kind = MQ_K_TIMEOUT;
        v.ambiguous = 1;
        v.retryable = idempotent;
        break;
    case MQ_T_RESET:
        v.kind = MQ_K_NETWORK;
        v.ambiguous = 1;
        v.retryable = idempotent;
        break;
    case MQ_T_TOO_BIG:
        v.kind = MQ_K_BAD_RESPONSE; /* processed; the answer is unusable */
        break;
    case MQ_T_FAILED:
    default:
        v.kind = MQ_K_NETWORK;
        break;
    }
    return v;
}

double mq_backoff(int retry, double u)
{
    double ceil_s = BACKOFF_BASE * ldexp(1.0, retry > 1 ? (retry < 30 ? retry - 1 : 30) : 0);
    if (ceil_s > BACKOFF_CAP)
        ceil_s = BACKOFF_CAP;
    return u * ceil_s;
}

uint64_t mq_rand_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
            s = 0;
        close(fd);
    }
    if (s == 0) {   /* no urandom: still differ between processes and clients */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40)
            ^ (uint64_t)(uintptr_t)&s;
    }
    return s ? s : 0x9e3779b97f4a7c15ULL;
}

double mq_rand_unit(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return (double)((*x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}
