/* policy.h: the names (error kinds, methods, transport outcomes: the
 * last declared in engine_vocab.h) and the retry policy: which failures
 * are worth another attempt, and how long to wait before it (policy.c).
 * One table of names, exported to Lua as core.KINDS, core.METHODS and
 * core.OUTCOMES. */
#ifndef MQ_POLICY_H
#define MQ_POLICY_H

#include <stdint.h>

#include "engine_vocab.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef enum {
    MQ_K_OK = 0,
    MQ_K_BAD_REQUEST, MQ_K_UNAUTHORIZED, MQ_K_FORBIDDEN, MQ_K_NOT_FOUND,
    MQ_K_UNPROCESSABLE, MQ_K_RATE_LIMITED, MQ_K_SERVER_ERROR, MQ_K_TIMEOUT,
    MQ_K_NETWORK, MQ_K_BAD_RESPONSE, MQ_K_INVALID_ARGUMENT, MQ_K_CONFIG,
    MQ_K_TOO_LARGE,   /* a webhook delivery over max_body (mediquo.webhook) */
    MQ_K__COUNT
} mq_kind;

typedef enum { MQ_M_POST, MQ_M_PUT, MQ_M_DELETE, MQ_M_GET, MQ_M__COUNT } mq_method;

typedef struct {
    mq_kind kind;
    int retryable;   /* for this method, under this client's settings */
    int ambiguous;   /* the server may have processed it */
} mq_verdict;

const char *mq_kind_name(mq_kind k);
/* whether a kind is worth trying again later, by default (README.md,
 * "Error objects") */
int  mq_kind_retryable(mq_kind k);
const char *mq_method_name(mq_method m);
int  mq_method_parse(const char *s, mq_method *m);
const char *mq_outcome_name(mq_outcome o);
/* the outcome named s (also "connect_timeout"), or -1 */
int  mq_outcome_parse(const char *s);
/* Classify one attempt: outcome + status -> kind, retryable, ambiguous. */
mq_verdict mq_classify(mq_method m, mq_outcome o, long status, int retry_post);
/* Full-jitter backoff before retry number `retry` (1-based), using u in
 * [0,1): u * min(cap, base * 2^(retry-1)). */
double mq_backoff(int retry, double u);
/* Small PRNG (xorshift64*); the seed comes from the OS. */
uint64_t mq_rand_seed(void);
double mq_rand_unit(uint64_t *state);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
