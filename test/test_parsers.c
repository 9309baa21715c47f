/* test_parsers.c: table-driven unit tests for iso8601.c, urlenc.c,
 * headers.c and answer.c. Prints "N passed, N failed"; exits non-zero on
 * any failure.
 * Inputs found by the fuzzers go in the "regression" rows. */
#include "headers.h"
#include "iso8601.h"
#include "urlenc.h"
#include "answer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- iso8601 ------------------------------------------------------------ */

/* want: the UTC output, or NULL for a refusal whose why contains `why`. */
static const struct { const char *in; const char *want; const char *why; } ISO[] = {
    /* the plain forms */
    {"2024-05-17T09:30:00Z", "2024-05-17T09:30:00Z", NULL},
    {"2024-05-17T09:30:00z", "2024-05-17T09:30:00Z", NULL},
    {"2024-05-17t09:30:00Z", "2024-05-17T09:30:00Z", NULL},
    {"2024-05-17 09:30:00Z", "2024-05-17T09:30:00Z", NULL},
    {"2024-05-17T09:30:00+00:00", "2024-05-17T09:30:00Z", NULL},
    {"2024-05-17T09:30:00-00:00", "2024-05-17T09:30:00Z", NULL},
    {"2024-05-17T09:30:00+02:00", "2024-05-17T07:30:00Z", NULL},
    {"2024-05-17T09:30:00+0200", "2024-05-17T07:30:00Z", NULL},
    {"2024-05-17T09:30:00+02", "2024-05-17T07:30:00Z", NULL},
    {"2024-05-17T09:30:00-05:30", "2024-05-17T15:00:00Z", NULL},
    {"2024-05-17T09:30:00+05:45", "2024-05-17T03:45:00Z", NULL},
    {"2024-05-17T09:30:00+23:59", "2024-05-16T09:31:00Z", NULL},
    {"2024-05-17T09:30:00-23:59", "2024-05-18T09:29:00Z", NULL},
    /* fractions: truncated, never rounded */
    {"2024-05-17T09:30:00.999Z", "2024-05-17T09:30:00Z", NULL},
    {"2024-05-17T09:30:59.999999999999999Z", "2024-05-17T09:30:59Z", NULL},
    {"2024-12-31T23:59:59.9Z", "2024-12-31T23:59:59Z", NULL},
    {"2024-05-17T09:30:00.5+01:00", "2024-05-17T08:30:00Z", NULL},
    {"2024-05-17T09:30:00.0z", "2024-05-17T09:30:00Z", NULL},
    /* offsets across day, month, year and leap-day boundaries */
    {"2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00Z", NULL},
    {"2023-03-01T00:30:00+01:00", "2023-02-28T23:30:00Z", NULL},
    {"2023-12-31T23:30:00-01:00", "2024-01-01T00:30:00Z", NULL},
    {"2024-01-01T00:00:00+00:01", "2023-12-31T23:59:00Z", NULL},
    {"2024-02-28T23:00:00-02:00", "2024-02-29T01:00:00Z", NULL},
    {"2023-02-28T23:00:00-02:00", "2023-03-01T01:00:00Z", NULL},
    {"2000-03-01T05:00:00+06", "2000-02-29T23:00:00Z", NULL},
    {"1900-03-01T05:00:00+06", "1900-02-28T23:00:00Z", NULL},
    {"2024-04-30T20:00:00-04:00", "2024-05-01T00:00:00Z", NULL},
    {"2024-05-01T03:00:00+0400", "2024-04-30T23:00:00Z", NULL},
    {"1970-01-01T00:00:00+01:00", "1969-12-31T23:00:00Z", NULL},
    /* calendar edges that are valid */
    {"2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z", NULL},
    {"2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z", NULL},
    {"1600-02-29T12:00:00Z", "1600-02-29T12:00:00Z", NULL},
    {"2023-04-30T00:00:00Z", "2023-04-30T00:00:00Z", NULL},
    {"2023-01-31T23:59:59Z", "2023-01-31T23:59:59Z", NULL},
    {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", NULL},
    {"9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z", NULL},
    {"0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00Z", NULL},
    {"9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59Z", NULL},
    /* calendar refusals */
    {"2024-13-01T00:00:00Z", NULL, "month out of range"},
    {"2024-00-01T00:00:00Z", NULL, "month out of range"},
    {"2024-01-00T00:00:00Z", NULL, "day out of range"},
    {"2024-01-32T00:00:00Z", NULL, "day out of range"},
    {"2023-02-29T00:00:00Z", NULL, "day out of range"},
    {"1900-02-29T00:00:00Z", NULL, "day out of range"},
    {"2100-02-29T00:00:00Z", NULL, "day out of range"},
    {"2024-02-30T00:00:00Z", NULL, "day out of range"},
    {"2024-04-31T00:00:00Z", NULL, "day out of range"},
    {"2024-06-31T00:00:00Z", NULL, "day out of range"},
    {"2024-09-31T00:00:00Z", NULL, "day out of range"},
    {"2024-11-31T00:00:00Z", NULL, "day out of range"},
    {"2024-05-17T24:00:00Z", NULL, "hour out of range"},
    {"2024-05-17T99:00:00Z", NULL, "hour out of range"},
    {"2024-05-17T09:60:00Z", NULL, "minute out of range"},
    {"2024-05-17T09:30:60Z", NULL, "second out of range"},
    {"2016-12-31T23:59:60Z", NULL, "leap seconds"},
    {"2024-05-17T09:30:00+24:00", NULL, "offset out of range"},
    {"2024-05-17T09:30:00+99", NULL, "offset out of range"},
    {"2024-05-17T09:30:00+01:60", NULL, "offset out of range"},
    {"2024-05-17T09:30:00-0075", NULL, "offset out of range"},
    {"0000-01-01T00:00:00Z", NULL, "year out of range"},
    {"0001-01-01T00:00:00+00:01", NULL, "once converted to UTC"},
    {"0001-01-01T05:00:00+06:00", NULL, "once converted to UTC"},
    {"9999-12-31T23:59:59-00:01", NULL, "once converted to UTC"},
    {"9999-12-31T20:00:00-04:00", NULL, "once converted to UTC"},
    /* shape refusals */
    {"2024-05-17T09:30:00", NULL, "no time zone"},
    {"2024-05-17T09:30:00.123", NULL, "no time zone"},
    {"2024-05-17", NULL, "has no time"},
    {"2024-05-17T09:30Z", NULL, "no seconds"},
    {"2024-05-17T09:30", NULL, "no seconds"},
    {"2024-05-17T09:30+01:00", NULL, "no seconds"},
    {"2024-05-17T09:30:00ZZ", NULL, "trailing"},
    {"2024-05-17T09:30:00Z ", NULL, "trailing"},
    {"2024-05-17T09:30:00+01:00x", NULL, "trailing"},
    {"2024-05-17T09:30:00+01x", NULL, "trailing"},
    {"2024-05-17T09:30:00+01:0", NULL, "malformed time zone"},
    {"2024-05-17T09:30:00+1:00", NULL, "malformed time zone"},
    {"2024-05-17T09:30:00+010", NULL, "malformed time zone"},
    {"2024-05-17T09:30:00+01:", NULL, "malformed time zone"},
    {"2024-05-17T09:30:00+", NULL, "malformed time zone"},
    {"2024-05-17T09:30:00.Z", NULL, "not an ISO 8601"},
    {"2024-05-17T09:30:00,5Z", NULL, "not an ISO 8601"},
    {"2024-05-17T09:30:00 Z", NULL, "not an ISO 8601"},
    {"2024-05-17T09:30:00UTC", NULL, "not an ISO 8601"},
    {" 2024-05-17T09:30:00Z", NULL, "not an ISO 8601"},
    {"2024-05-17X09:30:00Z", NULL, "not an ISO 8601"},
    {"2024-05-17T9:30:00Z", NULL, "not an ISO 8601"},
    {"2024-5-17T09:30:00Z", NULL, "not an ISO 8601"},
    {"24-05-17T09:30:00Z", NULL, "not an ISO 8601"},
    {"12024-05-17T09:30:00Z", NULL, "not an ISO 8601"},
    {"-2024-05-17T09:30:00Z", NULL, "not an ISO 8601"},
    {"+2024-05-17T09:30:00Z", NULL, "not an ISO 8601"},
    {"20240517T093000Z", NULL, "not an ISO 8601"},
    {"2024-W20-5T09:30:00Z", NULL, "not an ISO 8601"},
    {"2024-138T09:30:00Z", NULL, "not an ISO 8601"},
    {"2024/05/17T09:30:00Z", NULL, "not an ISO 8601"},
    {"2024-05-17T09.30.00Z", NULL, "not an ISO 8601"},
    {"2024-05-17T09:30:0aZ", NULL, "not an ISO 8601"},
    {"1715938200", NULL, "not an ISO 8601"},
    {"tomorrow", NULL, "not an ISO 8601"},
    {"", NULL, "not an ISO 8601"},
    {"2024-05-17T09:30:00\xef\xbc\xba", NULL, "not an ISO 8601"},
};

/* Inputs with a NUL inside: len, not the NUL, is where they end. */
static const struct { const char *in; size_t len; const char *want; } ISO_LEN[] = {
    {"2024-05-17T09:30:00Z\0", 21, NULL},
    {"2024-05-17T09:30:00\0Z", 21, NULL},
    {"2024\0-05-17T09:30:00Z", 21, NULL},
    {"2024-05-17T09:30:00Z+garbage", 20, "2024-05-17T09:30:00Z"},
    {"2024-05-17T09:30:00+01:00", 22, "2024-05-17T08:30:00Z"},   /* "+01" */
    {"2024-05-17T09:30:00+01:00", 19, NULL},                     /* no zone */
    {"2024-05-17T09:30:00Z", 0, NULL},
};

static void test_iso8601(void)
{
    char out[MQ_ISO_LEN];
    for (size_t k = 0; k < sizeof ISO / sizeof ISO[0]; k++) {
        const char *why = NULL;
        memset(out, 0, sizeof out);
        int rc = mq_iso8601_utc(ISO[k].in, strlen(ISO[k].in), out, &why);
        if (ISO[k].want)
            check(rc == 0 && strcmp(out, ISO[k].want) == 0, "iso8601", ISO[k].in,
                  rc == 0 ? out : why);
        else
            check(rc == -1 && why && strstr(why, ISO[k].why), "iso8601 refusal", ISO[k].in,
                  rc == 0 ? out : why);
    }
    for (size_t k = 0; k < sizeof ISO_LEN / sizeof ISO_LEN[0]; k++) {
        const char *why = NULL;
        int rc = mq_iso8601_utc(ISO_LEN[k].in, ISO_LEN[k].len, out, &why);
        if (ISO_LEN[k].want)
            check(rc == 0 && strcmp(out, ISO_LEN[k].want) == 0, "iso8601 len", ISO_LEN[k].in,
                  rc == 0 ? out : why);
        else
            check(rc == -1 && why != NULL, "iso8601 len refusal", ISO_LEN[k].in,
                  rc == 0 ? out : "");
    }
    /* why may be NULL; NULL input refused */
    check(mq_iso8601_utc("2024-13-01T00:00:00Z", 20, out, NULL) == -1, "iso8601 why=NULL",
          "month 13", "");
    check(mq_iso8601_utc(NULL, 0, out, NULL) == -1, "iso8601 NULL", "NULL", "");

    /* Every day 1600..2400 at noon +14:00 and -14:00... too slow to be worth
     * it; instead every day of 1999..2001 and 2099..2101 round-trips. */
    static const int spans[][2] = {{1999, 2001}, {2099, 2101}, {1899, 1901}};
    for (size_t sp = 0; sp < 3; sp++) {
        for (int y = spans[sp][0]; y <= spans[sp][1]; y++) {
            for (int m = 1; m <= 12; m++) {
                for (int d = 1; d <= 31; d++) {
                    char in[32], want[32];
                    const char *why = NULL;
                    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
                    int mdays = m == 2 ? 28 + leap : (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;
                    snprintf(in, sizeof in, "%04d-%02d-%02dT12:34:56Z", y, m, d);
                    int rc = mq_iso8601_utc(in, strlen(in), out, &why);
                    if (d <= mdays) {
                        snprintf(want, sizeof want, "%s", in);
                        check(rc == 0 && strcmp(out, want) == 0, "iso8601 calendar", in,
                              rc == 0 ? out : why);
                    } else {
                        check(rc == -1, "iso8601 calendar refusal", in, rc == 0 ? out : "");
                    }
                }
            }
        }
    }
}

static const struct { double t; const char *want; } EPOCH[] = {
    {0, "1970-01-01T00:00:00Z"},
    {-0.0, "1970-01-01T00:00:00Z"},
    {0.999, "1970-01-01T00:00:00Z"},
    {1700000000.9, "2023-11-14T22:13:20Z"},
    {951782400, "2000-02-29T00:00:00Z"},
    {1709251140, "2024-02-29T23:59:00Z"},
    {784111777, "1994-11-06T08:49:37Z"},
    {253402300799.0, "9999-12-31T23:59:59Z"},
    {253402300799.99, "9999-12-31T23:59:59Z"},
    {253402300800.0, NULL},
    {1e300, NULL},
    {-1, NULL},
    {-0.5, NULL},
    {-1e300, NULL},
    {HUGE_VAL, NULL},
    {-HUGE_VAL, NULL},
    {NAN, NULL},
};

static void test_epoch(void)
{
    for (size_t k = 0; k < sizeof EPOCH / sizeof EPOCH[0]; k++) {
        char out[MQ_ISO_LEN], in[64];
        const char *why = NULL;
        snprintf(in, sizeof in, "%.17g", EPOCH[k].t);
        int rc = mq_epoch_utc(EPOCH[k].t, out, &why);
        if (EPOCH[k].want)
            check(rc == 0 && strcmp(out, EPOCH[k].want) == 0, "epoch", in, rc == 0 ? out : why);
        else
            check(rc == -1 && why != NULL, "epoch refusal", in, rc == 0 ? out : "");
    }
}

/* ---- urlenc ------------------------------------------------------------- */

static const struct { const char *in; size_t len; const char *want; } URL[] = {
    {"abc", 3, "abc"},
    {"", 0, ""},
    {"../x", 4, "..%2Fx"},
    {"..", 2, ".."},
    {"a/b?c#d", 7, "a%2Fb%3Fc%23d"},
    {"a b", 3, "a%20b"},
    {"a+b", 3, "a%2Bb"},
    {"100%", 4, "100%25"},
    {"%2F", 3, "%252F"},
    {"A-Z_a.z~0-9", 11, "A-Z_a.z~0-9"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", 66,
     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"},
    {"!*'();:@&=+$,/?#[]", 18, "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D"},
    {"\"<>\\^`{|}", 9, "%22%3C%3E%5C%5E%60%7B%7C%7D"},
    {"caf\xc3\xa9", 5, "caf%C3%A9"},
    {"\xff\x80\x7f", 3, "%FF%80%7F"},
    {"a\0b", 3, "a%00b"},
    {"\r\n\t", 3, "%0D%0A%09"},
    {"\x01\x1f", 2, "%01%1F"},
};

static void test_urlenc(void)
{
    char out[256];
    for (size_t k = 0; k < sizeof URL / sizeof URL[0]; k++) {
        memset(out, 'X', sizeof out);
        size_t need = mq_urlenc(URL[k].in, URL[k].len, out, sizeof out);
        check(need == strlen(URL[k].want) && strcmp(out, URL[k].want) == 0, "urlenc",
              URL[k].want, out);
    }
    /* Small buffers: snprintf-like, NUL-terminated, never a partial %XX. */
    static const struct { size_t cap; const char *want; } SMALL[] = {
        {1, ""}, {2, "a"}, {3, "a"}, {4, "a"}, {5, "a%2F"}, {6, "a%2Fb"}, {7, "a%2Fb"},
        {9, "a%2Fb%3F"}, {10, "a%2Fb%3F"},
    };
    for (size_t k = 0; k < sizeof SMALL / sizeof SMALL[0]; k++) {
        memset(out, 'X', sizeof out);
        size_t need = mq_urlenc("a/b?", 4, out, SMALL[k].cap);
        check(need == 8 && strcmp(out, SMALL[k].want) == 0 && out[SMALL[k].cap] == 'X',
              "urlenc small buffer", SMALL[k].want, out);
    }
    memset(out, 'X', sizeof out);
    check(mq_urlenc("a/b", 3, out, 0) == 5 && out[0] == 'X', "urlenc cap 0", "a/b", out);
    check(mq_urlenc("a/b", 3, NULL, 0) == 5, "urlenc NULL out", "a/b", "");
}

/* ---- headers ------------------------------------------------------------ */

#define NOW 784111677   /* 100 s before Sun, 06 Nov 1994 08:49:37 GMT */
#define NOW_2026 1779840000  /* 2026-05-27T00:00:00Z */

static const struct { const char *in; time_t now; double want; } RA[] = {
    /* delta-seconds */
    {"0", NOW, 0},
    {"120", NOW, 120},
    {"  120 ", NOW, 120},
    {"\t7\r\n", NOW, 7},
    {"007", NOW, 7},
    {"86400", NOW, 86400},
    {"86401", NOW, 86400},
    {"99999999999999999999999999999999", NOW, 86400},
    {"18446744073709551616", NOW, 86400},
    {"-1", NOW, -1},
    {"+5", NOW, -1},
    {"1.5", NOW, -1},
    {"1e3", NOW, -1},
    {"12 34", NOW, -1},
    {"0x10", NOW, -1},
    {"", NOW, -1},
    {"   ", NOW, -1},
    {"soon", NOW, -1},
    /* IMF-fixdate */
    {"Sun, 06 Nov 1994 08:49:37 GMT", NOW, 100},
    {"sun, 06 nov 1994 08:49:37 gmt", NOW, 100},
    {" Sun, 06 Nov 1994 08:49:37 GMT\r\n", NOW, 100},
    {"Mon, 06 Nov 1994 08:49:37 GMT", NOW, 100},       /* day name not checked */
    {"Sun, 06 Nov 1994 08:49:37 GMT", NOW + 100, 0},
    {"Sun, 06 Nov 1994 08:49:37 GMT", NOW + 1000, 0},   /* past -> 0 */
    {"Sun, 06 Nov 1994 08:49:37 GMT", 0, 86400},        /* far future -> cap */
    {"Mon, 07 Nov 1994 08:49:37 GMT", NOW, 86400},
    {"Mon, 07 Nov 1994 08:49:57 GMT", NOW, 86400},      /* 86420 -> cap */
    {"Mon, 07 Nov 1994 08:49:17 GMT", NOW + 100, 86380},
    {"Sun, 06 Nov 1994 08:50:37 GMT", NOW, 160},
    {"Sun, 06 Nov 1994 08:49:60 GMT", NOW, 123},        /* RFC 9110 allows :60 */
    {"Thu, 29 Feb 1996 00:00:00 GMT", 825552000 - 5, 5},
    {"Thu, 01 Jan 1970 00:00:00 GMT", NOW, 0},
    {"Fri, 31 Dec 9999 23:59:59 GMT", NOW, 86400},
    {"Sun, 06 Nov 1994 08:49:37 UTC", NOW, -1},
    {"Sun, 06 Nov 1994 08:49:37 +0000", NOW, -1},
    {"Sun, 06 Nov 1994 08:49:37", NOW, -1},
    {"Sun, 06 Nov 1994 08:49:37 GMTX", NOW, -1},
    {"Sun, 6 Nov 1994 08:49:37 GMT", NOW, -1},
    {"Sun, 06 Nov 94 08:49:37 GMT", NOW, -1},
    {"Sun, 06 Nov 1994 8:49:37 GMT", NOW, -1},
    {"Sun, 06 Foo 1994 08:49:37 GMT", NOW, -1},
    {"Sun, 00 Nov 1994 08:49:37 GMT", NOW, -1},
    {"Sun, 31 Nov 1994 08:49:37 GMT", NOW, -1},
    {"Sun, 29 Feb 1995 08:49:37 GMT", NOW, -1},
    {"Sun, 29 Feb 1900 08:49:37 GMT", NOW, -1},
    {"Sun, 06 Nov 1994 24:00:00 GMT", NOW, -1},
    {"Sun, 06 Nov 1994 08:60:00 GMT", NOW, -1},
    {"Sun, 06 Nov 1994 08:49:61 GMT", NOW, -1},
    {"Sun,06 Nov 1994 08:49:37 GMT", NOW, -1},
    {"Sun, 06 Nov 1994 08:49:37 GMT, extra", NOW, -1},
    {"Xyz, 06 Nov 1994 08:49:37 GMT", NOW, -1},
    /* RFC 850 */
    {"Sunday, 06-Nov-94 08:49:37 GMT", NOW, 100},
    {"SUNDAY, 06-NOV-94 08:49:37 GMT", NOW, 100},
    {"Wednesday, 09-Nov-94 08:49:37 GMT", NOW, 86400},
    {"Sunday, 06-Nov-94 08:49:37 GMT", NOW_2026, 0},      /* 1994, not 2094 */
    {"Sunday, 06-Nov-30 00:00:00 GMT", NOW_2026, 86400},  /* 2030 */
    {"Sunday, 27-May-26 00:00:30 GMT", NOW_2026, 30},
    {"Sunday, 06-Nov-1994 08:49:37 GMT", NOW, -1},
    {"Sunday, 06-Nov-94 08:49:37", NOW, -1},
    {"Sun, 06-Nov-94 08:49:37 GMT", NOW, -1},
    {"Sunday 06-Nov-94 08:49:37 GMT", NOW, -1},
    {"Sunday, 31-Apr-94 08:49:37 GMT", NOW, -1},
    /* asctime */
    {"Sun Nov  6 08:49:37 1994", NOW, 100},
    {"Sun Nov 06 08:49:37 1994", NOW, 100},
    {"Sun Nov 16 08:49:37 1994", NOW, 86400},
    {"Sun Nov  6 08:49:37 1993", NOW, 0},
    {"Sun Nov 6 08:49:37 1994", NOW, -1},
    {"Sun Nov   6 08:49:37 1994", NOW, -1},
    {"Sun Nov  6 08:49:37 1994 GMT", NOW, -1},
    {"Sun Nov  6 08:49:37 94", NOW, -1},
    {"Sun Feb 30 08:49:37 1994", NOW, -1},
    /* regression: inputs found by fuzzing go here */
};

static const struct { const char *in; size_t len; long want; } HL[] = {
    {"0", 1, 0},
    {"600", 3, 600},
    {" 599 ", 5, 599},
    {"\t42\r\n", 5, 42},
    {"0042", 4, 42},
    {"9223372036854775807", 19, LONG_MAX},
    {"9223372036854775808", 19, -1},
    {"99999999999999999999", 20, -1},
    {"", 0, -1},
    {"  ", 2, -1},
    {"-1", 2, -1},
    {"+1", 2, -1},
    {"1.0", 3, -1},
    {"1 2", 3, -1},
    {"12abc", 5, -1},
    {"abc", 3, -1},
    {"12\0" "3", 4, -1},
    {"123", 2, 12},          /* len is authoritative */
};

static void test_headers(void)
{
    char got[64];
    for (size_t k = 0; k < sizeof RA / sizeof RA[0]; k++) {
        double r = mq_retry_after(RA[k].in, strlen(RA[k].in), RA[k].now);
        snprintf(got, sizeof got, "%g", r);
        check(r == RA[k].want, "retry_after", RA[k].in, got);
    }
    check(mq_retry_after(NULL, 0, NOW) == -1, "retry_after NULL", "NULL", "");
    check(mq_retry_after("120\0junk", 8, NOW) == -1, "retry_after NUL", "120\\0junk", "");
    check(mq_retry_after("120\0junk", 3, NOW) == 120, "retry_after len", "120", "");
    /* extreme clocks never overflow */
    check(mq_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 29, (time_t)INT64_MIN) == 86400,
          "retry_after now=min", "", "");
    check(mq_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 29, (time_t)INT64_MAX) == 0,
          "retry_after now=max", "", "");
    check(mq_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 30, (time_t)INT64_MAX) == 0,
          "retry_after rfc850 now=max", "", "");
    check(mq_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 30, (time_t)INT64_MIN) == 86400,
          "retry_after rfc850 now=min", "", "");

    for (size_t k = 0; k < sizeof HL / sizeof HL[0]; k++) {
        long r = mq_header_long(HL[k].in, HL[k].len);
        snprintf(got, sizeof got, "%ld", r);
        check(r == HL[k].want, "header_long", HL[k].in, got);
    }
    check(mq_header_long(NULL, 0) == -1, "header_long NULL", "NULL", "");
}

/* ---- answer ------------------------------------------------------------- */

/* A body and the code and url cjson finds in it, or NULL for a 0 (the
 * caller falls back to cjson). J() passes a literal with its length, so
 * bodies may hold NUL bytes. */
#define J(s) s, sizeof(s) - 1
#define APPT(c, u) "{\"data\":{\"appointment\":{\"code\":" c ",\"url\":" u "}}}"
#define REST "\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}}}" /* after "{" */
static const struct { const char *in; size_t len; const char *code, *url; } ANS[] = {
    /* the plain answer, and the same with room around every token */
    {J(APPT("\"A1\"", "\"https://x/call/t\"")), "A1", "https://x/call/t"},
    {J(" \t\r\n{ \"data\" : { \"appointment\" :\n{ \"code\" : \"A1\" , \"url\" : \"u\" } } }\r\n"),
     "A1", "u"},
    {J("{\"data\":{\"appointment\":{\"url\":\"u\",\"code\":\"A1\"}}}"), "A1", "u"},
    {J(APPT("\"\"", "\"\"")), "", ""},
    /* other fields, anywhere, are checked and skipped */
    {J("{\"ok\":true,\"n\":null,\"data\":{\"x\":[1,-2.5e+3,{\"a\":[[],{}]},\"s\"],"
       "\"appointment\":{\"id\":7,\"code\":\"A1\",\"starts_at\":\"2024-05-17T09:30:00Z\","
       "\"patient\":{\"code\":\"P\",\"url\":9},\"url\":\"u\",\"tags\":[false,0,-0,0.5,1E5,"
       "1e-7,123456789012345678901234567890,1e400]},\"more\":{}},\"meta\":[]}"), "A1", "u"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\",\"list\":[{\"code\":1}]}},"
       "\"appointment\":{\"code\":2}}"), "A1", "u"},
    /* escapes: PHP's \/, the short ones, \u (either case) and surrogate pairs */
    {J(APPT("\"A\\/1\"", "\"https:\\/\\/x\\/call\\/t\"")), "A/1", "https://x/call/t"},
    {J(APPT("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"u\"")), "\"\\/\b\f\n\r\t", "u"},
    {J(APPT("\"\\u0041\\u00e9\\u00E9\\u20ac\\uFFFF\"", "\"u\"")),
     "A\xc3\xa9\xc3\xa9\xe2\x82\xac\xef\xbf\xbf", "u"},
    {J(APPT("\"\\ud83d\\ude00x\\uDBFF\\uDFFF\"", "\"\\u0075\"")),
     "\xf0\x9f\x98\x80x\xf4\x8f\xbf\xbf", "u"},
    {J(APPT("\"caf\xc3\xa9 \xff\x80\x7f\"", "\"u\"")), "caf\xc3\xa9 \xff\x80\x7f", "u"},
    /* keys are compared once unescaped, as cjson does */
    {J("{\"d\\u0061ta\":{\"\\u0061ppointment\":{\"c\\u006fde\":\"A1\",\"ur\\u006c\":\"u\"}}}"),
     "A1", "u"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\",\"code\\u0000\":1}}}"), NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"},\"x\":{\"k\\n\\/\":1}}}"), "A1", "u"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}},\"dat\":0,\"datas\":0,"
       "\"Data\":0}"), "A1", "u"},
    /* duplicates: the last one wins, at every level */
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}},\"data\":null}"), NULL, NULL},
    {J("{\"data\":1,\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}}}"), "A1", "u"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}},\"data\":{}}"), NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}},"
       "\"data\":{\"appointment\":{\"code\":\"B2\",\"url\":\"v\"}}}"), "B2", "v"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}},\"data\":[]}"), NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"},\"appointment\":\"x\"}}"),
     NULL, NULL},
    {J("{\"data\":{\"appointment\":[],\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}}}"), "A1", "u"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"},\"appointment\":{\"url\":\"u\"}}}"),
     NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"},"
       "\"appointment\":{\"code\":\"B2\",\"url\":\"v\"}}}"), "B2", "v"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\",\"code\":null}}}"), NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"code\":7,\"url\":\"u\",\"code\":\"A1\"}}}"), "A1", "u"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\",\"url\":{\"a\":\"b\"}}}}"),
     NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"url\":[\"u\"],\"code\":\"A1\",\"url\":\"v\"}}}"), "A1", "v"},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\",\"code\":\"B2\"}}}"), "B2", "u"},
    {J("{\"d\\u0061ta\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}},\"data\":false}"),
     NULL, NULL},
    /* not the documented shape */
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\"}}}"), NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"url\":\"u\"}}}"), NULL, NULL},
    {J(APPT("1", "\"u\"")), NULL, NULL},
    {J(APPT("\"A1\"", "null")), NULL, NULL},
    {J(APPT("true", "\"u\"")), NULL, NULL},
    {J(APPT("[\"A1\"]", "\"u\"")), NULL, NULL},
    {J(APPT("{}", "\"u\"")), NULL, NULL},
    {J("{\"data\":{\"appointment\":\"A1\"}}"), NULL, NULL},
    {J("{\"data\":{\"appointment\":[{\"code\":\"A1\",\"url\":\"u\"}]}}"), NULL, NULL},
    {J("{\"data\":[{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}}]}"), NULL, NULL},
    {J("{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}}"), NULL, NULL},
    {J("{\"data\":{\"x\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\"}}}}"), NULL, NULL},
    {J("{\"data\":null}"), NULL, NULL},
    {J("{}"), NULL, NULL},
    /* the top level: one object, and only whitespace after it */
    {J("[" APPT("\"A1\"", "\"u\"") "]"), NULL, NULL},
    {J("\"x\""), NULL, NULL},
    {J("1"), NULL, NULL},
    {J(""), NULL, NULL},
    {J("   "), NULL, NULL},
    {J(APPT("\"A1\"", "\"u\"") "x"), NULL, NULL},
    {J(APPT("\"A1\"", "\"u\"") "{}"), NULL, NULL},
    {J(APPT("\"A1\"", "\"u\"") "}"), NULL, NULL},
    {J(APPT("\"A1\"", "\"u\"") "\0"), NULL, NULL},
    {J(APPT("\"A1\"", "\"u\"") "\f"), NULL, NULL},
    {J("\xef\xbb\xbf" APPT("\"A1\"", "\"u\"")), NULL, NULL},
    /* strings */
    {J(APPT("\"A\n1\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"A\t1\"", "\"u\"")), NULL, NULL},
    {J("{\"x\":\"\x01\"," REST), NULL, NULL},
    {J("{\"x\":\"\x1f\"," REST), NULL, NULL},
    {J(APPT("\"A\0" "1\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"A\\x1\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"A\\'1\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"A\\U00411\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"A\\u12\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"A\\u12G4\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"A\\u0000\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"\\ud83d\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"\\ud83dx\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"\\ud83d\\u0041\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"\\ud83d\\ud83d\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"\\ude00\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"\\ude00\\ud83d\"", "\"u\"")), NULL, NULL},
    {J(APPT("\"\\ud83d\\n\"", "\"u\"")), NULL, NULL},
    {J("{\"x\":\"\\ud83d\"," REST), NULL, NULL},
    {J(APPT("'A1'", "\"u\"")), NULL, NULL},
    /* numbers and words: RFC 8259 only */
    {J("{\"n\":0," REST), "A1", "u"},
    {J("{\"n\":[-0,10,-0.0e-0,1E+2,2e9,0.125]," REST), "A1", "u"},
    {J("{\"n\":true,\"m\":false,\"o\":null," REST), "A1", "u"},
    {J("{\"n\":01," REST), NULL, NULL},
    {J("{\"n\":1.," REST), NULL, NULL},
    {J("{\"n\":.5," REST), NULL, NULL},
    {J("{\"n\":+1," REST), NULL, NULL},
    {J("{\"n\":1e," REST), NULL, NULL},
    {J("{\"n\":1e+," REST), NULL, NULL},
    {J("{\"n\":-," REST), NULL, NULL},
    {J("{\"n\":--1," REST), NULL, NULL},
    {J("{\"n\":0x10," REST), NULL, NULL},
    {J("{\"n\":NaN," REST), NULL, NULL},
    {J("{\"n\":-Infinity," REST), NULL, NULL},
    {J("{\"n\":1 2," REST), NULL, NULL},
    {J("{\"n\":tru," REST), NULL, NULL},
    {J("{\"n\":True," REST), NULL, NULL},
    {J("{\"n\":nulll," REST), NULL, NULL},
    {J("{\"n\":undefined," REST), NULL, NULL},
    /* punctuation */
    {J("{\"n\":1,," REST), NULL, NULL},
    {J("{," REST), NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\",}}}"), NULL, NULL},
    {J("{\"n\":[1,]," REST), NULL, NULL},
    {J("{\"n\":[,1]," REST), NULL, NULL},
    {J("{\"n\":[1 2]," REST), NULL, NULL},
    {J("{\"n\":[1}," REST), NULL, NULL},
    {J("{\"n\":{\"a\"]," REST), NULL, NULL},
    {J("{\"n\":{1:2}," REST), NULL, NULL},
    {J("{\"n\":{\"a\" 2}," REST), NULL, NULL},
    {J("{\"n\"=1," REST), NULL, NULL},
    {J("{\"data\":{\"appointment\":{\"code\":\"A1\"\"url\":\"u\"}}}"), NULL, NULL},
    {J("{/*c*/" REST), NULL, NULL},
    /* regression: inputs found by fuzzing or the cjson comparison go here */
    {J(APPT("\"\\u\x10" "050\"", "\"u\"")), NULL, NULL},   /* 0x10 | 0x20 is '0' */
    {J(APPT("\"\\u00\x11" "9\"", "\"u\"")), NULL, NULL},
};

/* Nests depth objects and arrays (top object, data, appointment, then
 * arrays under "x") around the plain answer: cjson takes 64, refuses 65. */
static size_t nested(char *out, int depth)
{
    size_t n = (size_t)sprintf(out, "{\"data\":{\"appointment\":{\"code\":\"A1\",\"url\":\"u\",\"x\":");
    for (int k = 3; k < depth; k++)
        out[n++] = '[';
    for (int k = 3; k < depth; k++)
        out[n++] = ']';
    if (depth == 3)
        out[n++] = '0';
    n += (size_t)sprintf(out + n, "}}}");
    return n;
}

/* s .. s+n lies in [base, base+len): a string in the body (no escape) or in buf */
static int within(const char *s, size_t n, const char *base, size_t len)
{
    return s >= base && n <= len && (size_t)(s - base) <= len - n;
}

/* Runs one body with a buf of exactly len bytes (then a guard that must
 * stay as it was); 1 when code and url came back as want. */
static int answer(const char *in, size_t len, const char *code, const char *url, char *got,
                  size_t gotsize)
{
    char *buf = malloc(len + 16), *body = malloc(len + 1);
    mq_appt a;
    int ok;

    if (!buf || !body) {
        printf("out of memory\n");
        exit(1);
    }
    memcpy(body, in, len);    /* an exact heap copy: ASan sees any overread */
    memset(buf, 'Z', len + 16);
    int rc = mq_answer_appointment(body, len, buf, &a);
    if (rc == 1)
        snprintf(got, gotsize, "code \"%.*s\" url \"%.*s\"", (int)a.code_len, a.code,
                 (int)a.url_len, a.url);
    else
        snprintf(got, gotsize, "%d", rc);
    ok = code ? rc == 1 && a.code_len == strlen(code) && memcmp(a.code, code, a.code_len) == 0
                    && a.url_len == strlen(url) && memcmp(a.url, url, a.url_len) == 0
                    && (within(a.code, a.code_len, buf, len) || within(a.code, a.code_len, body, len))
                    && (within(a.url, a.url_len, buf, len) || within(a.url, a.url_len, body, len))
              : rc == 0 && a.code == NULL && a.url == NULL;
    for (size_t k = len; k < len + 16; k++)
        ok = ok && buf[k] == 'Z';
    free(buf);
    free(body);
    return ok;
}

static void test_answer(void)
{
    char got[512], in[256];

    for (size_t k = 0; k < sizeof ANS / sizeof ANS[0]; k++)
        check(answer(ANS[k].in, ANS[k].len, ANS[k].code, ANS[k].url, got, sizeof got),
              ANS[k].code ? "answer" : "answer refusal", ANS[k].in, got);

    /* depth: 64 nested objects and arrays are cjson's limit here */
    for (int d = 3; d <= 66; d++) {
        size_t n = nested(in, d);
        int ok = answer(in, n, d <= 64 ? "A1" : NULL, "u", got, sizeof got);
        check(ok, d <= 64 ? "answer depth" : "answer depth refusal", in, got);
    }
    {
        char deep[200];
        size_t n = 0;
        for (int k = 0; k < 70; k++) deep[n++] = '[';
        check(answer(deep, n, NULL, NULL, got, sizeof got), "answer deep array", "[[[...", got);
    }

    /* every proper prefix of a valid answer is refused, and len is
     * authoritative: what follows it is never read */
    static const char full[] =
        "{\"data\":{\"appointment\":{\"code\":\"A\\u00e91\",\"starts_at\":\"2024-05-17T09:30:00Z\","
        "\"n\":[-1.5e+3,true,false,null,{}],\"url\":\"https:\\/\\/x\\/call\\/t\\ud83d\\ude00\"}}}";
    for (size_t n = 0; n < sizeof full - 1; n++) {
        snprintf(in, sizeof in, "prefix of %zu bytes", n);
        check(answer(full, n, NULL, NULL, got, sizeof got), "answer truncated", in, got);
    }
    check(answer(full, sizeof full - 1, "A\xc3\xa9" "1", "https://x/call/t\xf0\x9f\x98\x80", got,
                 sizeof got), "answer full", full, got);
    {
        char tail[sizeof full + 8];
        memcpy(tail, full, sizeof full - 1);
        memcpy(tail + sizeof full - 1, "garbage", 8);
        check(answer(tail, sizeof full - 1, "A\xc3\xa9" "1", "https://x/call/t\xf0\x9f\x98\x80",
                     got, sizeof got), "answer len", "full + garbage", got);
    }

    mq_appt a;
    char buf[8];
    check(mq_answer_appointment(NULL, 0, buf, &a) == 0 && a.code == NULL, "answer NULL body",
          "NULL", "");
}

int main(void)
{
    test_iso8601();
    test_epoch();
    test_urlenc();
    test_headers();
    test_answer();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
