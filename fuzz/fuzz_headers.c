/* fuzz_headers.c: libFuzzer harness for mq_retry_after and mq_header_long.
 * The first 8 bytes are the clock (any time_t, absurd ones included), the
 * rest the header value. Invariants: Retry-After is -1 or a whole number
 * in [0, 86400]; digits-only values read as themselves (capped); a date one
 * second later in the clock waits one second less; header_long is -1 or
 * the exact value of an all-digit value. */
#include "headers.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t now64 = 784111777;
    if (size >= 8) {
        memcpy(&now64, data, 8);
        data += 8;
        size -= 8;
    }
    time_t now = (time_t)now64;
    const char *v = (const char *)data;

    /* trimmed view and whether it is all digits, for the oracles */
    size_t a = 0, b = size;
    while (a < b && blank(v[a]))
        a++;
    while (b > a && blank(v[b - 1]))
        b--;
    int all_digits = b > a, has_dash = 0;
    for (size_t i = a; i < b; i++) {
        all_digits &= v[i] >= '0' && v[i] <= '9';
        has_dash |= v[i] == '-';
    }

    double r = mq_retry_after(v, size, now);
    if (r != -1 && !(r >= 0 && r <= 86400 && r == (double)(long)r))
        abort();
    if (all_digits) {
        double want = 0;
        for (size_t i = a; i < b && want <= 86400; i++)
            want = want * 10 + (v[i] - '0');
        if (r != (want > 86400 ? 86400 : want))
            abort();
    } else if (r > 0 && r < 86400 && !has_dash && now < (time_t)INT64_MAX) {
        /* a date (RFC 850 has '-': its century depends on the clock) */
        if (mq_retry_after(v, size, now + 1) != r - 1)
            abort();
    }

    long n = mq_header_long(v, size);
    if (n < -1)
        abort();
    if (n >= 0) {
        if (!all_digits)
            abort();
        long m = 0;
        for (size_t i = a; i < b; i++) {
            if (m > (LONG_MAX - (v[i] - '0')) / 10)
                abort();        /* it said a value, but the value overflows */
            m = m * 10 + (v[i] - '0');
        }
        if (m != n)
            abort();
    } else if (all_digits && b - a < 19) {
        abort();                /* fewer than 19 digits always fit a long */
    }
    return 0;
}
