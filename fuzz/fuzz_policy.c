/* fuzz_policy.c: libFuzzer harness for the retry policy (src/policy.c):
 * mq_classify, mq_backoff, mq_rand_unit, mq_kind_name.
 *
 * Input layout (short inputs are zero-padded): byte 0 method (mod 3),
 * byte 1 outcome (any value: out-of-range outcomes must still classify),
 * byte 2 retry_post (low bit), bytes 3..10 the status (any long, absurd
 * ones included), bytes 11..14 the retry number (any int), bytes 15..22
 * the PRNG state. Invariants:
 *   - the kind is a real kind (never invalid_argument, which only Lua
 *     produces) with a non-empty name; retryable/ambiguous are 0 or 1;
 *   - retryable implies an idempotent method, or retry_post, or nothing was
 *     sent (never connected, connect timed out), or a 429/503 (refused
 *     before processing); never connecting is always retryable;
 *   - nothing-sent outcomes (connect, connect timeout, TLS) are never
 *     ambiguous; an ambiguous verdict is retryable exactly when the method
 *     is idempotent or retry_post is set;
 *   - kind ok exactly for a complete 2xx answer, and the documented
 *     status -> kind table holds;
 *   - the verdict does not depend on anything but its arguments;
 *   - mq_rand_unit is in [0, 1); mq_backoff is in [0, 8], never NaN, and
 *     never shrinks when the retry number grows (same u). */
#include "policy.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* outcomes where the request never left: no connection, or no handshake */
static int nothing_sent(mq_outcome o)
{
    return o == MQ_T_CONNECT || o == MQ_T_CONNECT_TIMEOUT || o == MQ_T_TLS;
}

static void check_status_table(long status, mq_kind k)
{
    if (status >= 200 && status < 300) CHECK(k == MQ_K_OK);
    else CHECK(k != MQ_K_OK);
    if (status == 400) CHECK(k == MQ_K_BAD_REQUEST);
    if (status == 401) CHECK(k == MQ_K_UNAUTHORIZED);
    if (status == 403) CHECK(k == MQ_K_FORBIDDEN);
    if (status == 404) CHECK(k == MQ_K_NOT_FOUND);
    if (status == 422) CHECK(k == MQ_K_UNPROCESSABLE);
    if (status == 429) CHECK(k == MQ_K_RATE_LIMITED);
    if (status >= 500 && status < 600) CHECK(k == MQ_K_SERVER_ERROR);
    /* a redirect is never followed: it is an error, not a success */
    if (status >= 300 && status < 400) CHECK(k != MQ_K_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t in[23] = { 0 };
    memcpy(in, data, size < sizeof in ? size : sizeof in);

    mq_method m = (mq_method)(in[0] % 3);
    mq_outcome o = (mq_outcome)in[1];
    int retry_post = in[2] & 1;
    int64_t status64;
    int32_t retry32;
    uint64_t rng;
    memcpy(&status64, in + 3, sizeof status64);
    memcpy(&retry32, in + 11, sizeof retry32);
    memcpy(&rng, in + 15, sizeof rng);
    long status = (long)status64;
    int idempotent = m != MQ_M_POST;

    mq_verdict v = mq_classify(m, o, status, retry_post);
    CHECK((unsigned)v.kind < MQ_K__COUNT);
    CHECK(v.kind != MQ_K_INVALID_ARGUMENT);
    CHECK(v.retryable == 0 || v.retryable == 1);
    CHECK(v.ambiguous == 0 || v.ambiguous == 1);
    const char *name = mq_kind_name(v.kind);
    CHECK(name != NULL && name[0] != '\0');

    if (v.retryable)
        CHECK(idempotent || retry_post || nothing_sent(o)
              || (o == MQ_T_OK && (status == 429 || status == 503)));
    if (nothing_sent(o))
        CHECK(!v.ambiguous);
    if (v.ambiguous)
        CHECK(v.retryable == (idempotent || retry_post));
    if (o == MQ_T_OK)
        check_status_table(status, v.kind);
    else
        CHECK(v.kind != MQ_K_OK);
    if (o == MQ_T_TIMEOUT || o == MQ_T_CONNECT_TIMEOUT)
        CHECK(v.kind == MQ_K_TIMEOUT);
    if (o == MQ_T_TLS)
        CHECK(v.kind == MQ_K_NETWORK && !v.retryable);   /* a certificate will not fix itself */
    if (o == MQ_T_CONNECT || o == MQ_T_CONNECT_TIMEOUT)
        CHECK(v.retryable);             /* nothing was sent: safe for any method */

    /* a pure function: the same question gets the same answer */
    mq_verdict w = mq_classify(m, o, status, retry_post);
    CHECK(w.kind == v.kind && w.retryable == v.retryable && w.ambiguous == v.ambiguous);

    /* out-of-range kinds still have a printable name */
    const char *oob = mq_kind_name((mq_kind)(int)retry32);
    CHECK(oob != NULL && oob[0] != '\0');

    double u = mq_rand_unit(&rng);
    CHECK(u >= 0.0 && u < 1.0);
    int retry = (int)retry32;
    double b = mq_backoff(retry, u);
    CHECK(!isnan(b) && b >= 0.0 && b <= 8.0);
    if (retry < INT32_MAX) {
        double b2 = mq_backoff(retry + 1, u);
        CHECK(!isnan(b2) && b2 >= 0.0 && b2 <= 8.0 && b2 >= b);
    }
    /* the edges of u's range */
    CHECK(mq_backoff(retry, 0.0) == 0.0);
    double top = mq_backoff(retry, 0.9999999999);
    CHECK(top >= 0.0 && top <= 8.0);
    return 0;
}
