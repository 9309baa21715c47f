/* fuzz_iso8601.c: libFuzzer harness for mq_iso8601_utc and mq_epoch_utc.
 * Beyond "no crash", it checks the result against an independent, naive
 * oracle (a day-counting loop, not days-from-civil):
 *   - a success is exactly "YYYY-MM-DDTHH:MM:SSZ" (20 chars + NUL);
 *   - re-parsing the output gives the output (a fixed point);
 *   - the output's instant equals the input's local fields minus its offset;
 *   - mq_epoch_utc of that instant (when >= 1970) gives the same text. */
#include "iso8601.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int leap(long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Seconds since 0001-01-01 by counting, for fields already validated. */
static int64_t naive(long y, long mo, long d, long h, long mi, long s)
{
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (long k = 1; k < y; k++)
        days += 365 + leap(k);
    for (long k = 1; k < mo; k++)
        days += md[k - 1] + (k == 2 && leap(y));
    days += d - 1;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

static long num(const char *p, int n)
{
    long v = 0;
    for (int k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            abort();
        v = v * 10 + (p[k] - '0');
    }
    return v;
}

static int64_t instant(const char *p)  /* p: a validated YYYY-MM-DD?HH:MM:SS... */
{
    return naive(num(p, 4), num(p + 5, 2), num(p + 8, 2), num(p + 11, 2), num(p + 14, 2),
                 num(p + 17, 2));
}

static void check_shape(const char *out)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(out) != 20)
        abort();
    for (int k = 0; k < 20; k++)
        if (pat[k] == 'd' ? out[k] < '0' || out[k] > '9' : out[k] != pat[k])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[MQ_ISO_LEN], again[MQ_ISO_LEN], ep[MQ_ISO_LEN];
    const char *why = NULL;
    const char *s = (const char *)data;

    memset(out, 0x55, sizeof out);
    if (mq_iso8601_utc(s, size, out, &why) == 0) {
        check_shape(out);
        if (mq_iso8601_utc(out, 20, again, &why) != 0 || memcmp(out, again, MQ_ISO_LEN) != 0)
            abort();
        /* The zone: after 19 chars and an optional .digits fraction. */
        size_t i = 19;
        if (i < size && s[i] == '.')
            for (i++; i < size && s[i] >= '0' && s[i] <= '9'; i++)
                ;
        int64_t off = 0;
        if (s[i] == '+' || s[i] == '-') {
            long oh = num(s + i + 1, 2), om = 0;
            size_t rest = size - (i + 3);
            if (rest == 3)
                om = num(s + i + 4, 2);
            else if (rest == 2)
                om = num(s + i + 3, 2);
            else if (rest != 0)
                abort();
            off = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        } else if (!(s[i] == 'Z' || s[i] == 'z') || i + 1 != size) {
            abort();
        }
        int64_t t = instant(out);
        if (t != instant(s) - off)
            abort();
        /* Unix epoch of the output, and back through mq_epoch_utc. */
        int64_t unix_t = t - naive(1970, 1, 1, 0, 0, 0);
        if (unix_t >= 0) {
            if (mq_epoch_utc((double)unix_t + 0.5, ep, &why) != 0 || strcmp(ep, out) != 0)
                abort();
        }
    } else if (why == NULL || why[0] == '\0') {
        abort();
    }

    /* mq_epoch_utc on the first 8 bytes as a double: any bit pattern. */
    if (size >= 8) {
        double t;
        memcpy(&t, data, sizeof t);
        why = NULL;
        if (mq_epoch_utc(t, ep, &why) == 0) {
            if (!(t >= 0 && t < 253402300800.0))
                abort();
            check_shape(ep);
            if (mq_iso8601_utc(ep, 20, again, &why) != 0 || strcmp(ep, again) != 0)
                abort();
            if (instant(ep) - naive(1970, 1, 1, 0, 0, 0) != (int64_t)t)
                abort();
        } else if (why == NULL || (t >= 0 && t < 253402300800.0)) {
            abort();
        }
    }
    return 0;
}
