/* fuzz_redis_conv.c: libFuzzer harness for the Redis conversation
 * (redis_conv.c) fed any bytes as Redis's answers: the first byte picks the
 * URL (one server with a password and a db, Sentinel, Cluster), the rest is
 * cut into reads. Invariants: no crash, no leak; every step is one of the
 * four; an exchange ends within 4 steps per input byte; a verdict's
 * message is there, NUL-terminated and never holds a password. */
#include "redis_conv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_resp.h"

static const char *const URLS[] = {
    "redis://mq:pw-SECRET@127.0.0.1:6380/3",
    "redis-sentinel://:pw-SECRET@127.0.0.1:1,127.0.0.1:2/mymaster",
    "redis-cluster://:pw-SECRET@127.0.0.1:7000,[::1]:7001",
    "rediss://:pw-SECRET@127.0.0.1",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *argv[20];
    char err[300];
    mq_redis_url u;
    mq_rconv *c;
    mq_rconv_step st;
    size_t off = 1;
    int i;

    if (huge_count(data, size)) return 0;

    if (size < 2) return 0;
    if (mq_redis_url_parse(URLS[data[0] % 4], &u, err, sizeof err) != 0) abort();
    if (data[0] & 4) mq_redis_url_sentinel_auth(&u, "s:pw-SECRET", err, sizeof err);
    c = mq_rconv_new(&u, "return {1, 0, 1, 1, 0, 0, 0, 0, 0}");
    mq_redis_url_free(&u);
    if (c == NULL) return 0;
    argv[0] = "{mq:0123456789abcdef}:s";
    for (i = 1; i < 20; i++) argv[i] = i < 4 ? "{mq:0123456789abcdef}:k" : "1";
    for (int round = 0; round < 2; round++) {
        if (mq_rconv_start(c, 4, 20, argv, &st) != 0) break;
        for (i = 0; (size_t)i < 4 * size + 100 && st.act != MQ_RC_DONE; i++) {
            switch (st.act) {
            case MQ_RC_CONNECT:
                if (off < size && data[off] == 0xff) {      /* a connect that fails */
                    off++;
                    mq_rconv_fault(c, "connect", "refused", 0, &st);
                } else {
                    mq_rconv_connected(c, off < size && (data[off] & 1), &st);
                }
                break;
            case MQ_RC_SEND:
                if (st.out == NULL || st.outlen == 0) abort();
                mq_rconv_sent(c, &st);
                break;
            case MQ_RC_RECV: {
                size_t n = off < size ? 1 + data[off] % 64 : 0;
                if (off >= size) {
                    mq_rconv_fault(c, "read", "closed", 0, &st);
                    break;
                }
                off++;
                if (n > size - off) n = size - off;
                mq_rconv_feed(c, (const char *)data + off, n, &st);
                off += n;
                break;
            }
            default:
                abort();
            }
        }
        if (st.act != MQ_RC_DONE) abort();
        if (st.verdict != MQ_RV_OK) {
            if (st.msg == NULL || memchr(st.msg, '\0', MQ_RCONV_MSG) == NULL) abort();
            if (strstr(st.msg, "pw-SECRET") != NULL) abort();
        }
    }
    mq_rconv_free(c);
    return 0;
}
