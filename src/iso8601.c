/* iso8601.c: turn a caller's `starts_at` (an RFC 3339 / ISO 8601 date-time
 * with a zone, or Unix epoch seconds) into the one form the API takes,
 * "YYYY-MM-DDTHH:MM:SSZ" in UTC.
 *
 * Accepted: YYYY-MM-DD(T|t| )HH:MM:SS[.digits](Z|z|+HH:MM|+HHMM|+HH), with
 * '-' as well as '+' for the offset. RFC 3339 section 5.6 lets the separator
 * be a lowercase 't' or (by its note) a space, and both are what people paste
 * from logs and databases, so they are taken. Refused on purpose:
 *   - no zone: the server would have to guess, and a guess moves a patient's
 *     appointment by hours;
 *   - second 60: a leap second cannot be sent to the API as such and
 *     rounding it to :59 or to the next minute would be a silent guess;
 *   - hour 24 (ISO's "end of day"): same reason, write 00:00 of the next day;
 *   - week/ordinal dates, basic format (20240101T...), a comma before the
 *     fraction, missing seconds, surrounding blanks: not RFC 3339.
 * Fraction digits are truncated, never rounded (a time does not move to the
 * next second, or the next year).
 *
 * The arithmetic is days-from-civil on int64 (H. Hinnant's algorithm), not
 * timegm/mktime: no TZ or locale, no static buffers, any thread. */
#include "iso8601.h"

#include <string.h>

#include <stdint.h>

#define SECS_PER_DAY 86400
/* 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in Unix seconds. */
#define MIN_SECS (-62135596800LL)
#define END_SECS 253402300800LL

static int is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(long y, int m)
{
    static const unsigned char n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : n[m - 1];
}


static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = era * 400 + yoe + (*m <= 2);
}

static void put_digits(char *p, long v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* secs must lie in [MIN_SECS, END_SECS): callers check. */
static void format_utc(int64_t secs, char out[MQ_ISO_LEN])
{
    int64_t days = secs / SECS_PER_DAY, rem = secs % SECS_PER_DAY;
    if (rem < 0) {
        rem += SECS_PER_DAY;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    put_digits(out, (long)y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = 'T';
    put_digits(out + 11, (long)(rem / 3600), 2);
    out[13] = ':';
    put_digits(out + 14, (long)(rem / 60 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (long)(rem % 60), 2);
    out[19] = 'Z';
    out[20] = '\0';
}

/* n decimal digits at s[*i], or -1 (a NUL byte is just a non-digit: len,
 * not NUL, ends the input). */
static long digits(const char *s, size_t len, size_t *i, int n)
{
    long v = 0;
    if (len - *i < (size_t)n)
        return -1;
    for (int k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[*i + k];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    return v;
}

static int lit(const char *s, size_t len, size_t *i, char c)
{
    if (*i < len && s[*i] == c) {
        (*i)++;
        return 1;
    }
    return 0;
}

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return -1;
}

#define NOT_ISO "is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SSZ)"

int mq_iso8601_utc(const char *s, size_t len, char out[MQ_ISO_LEN], const char **why)
{
    size_t i = 0;
    long y, mo, d, h, mi, se, oh = 0, om = 0;
    int sign = 0;

    if (s == NULL)
        return fail(why, NOT_ISO);
    if ((y = digits(s, len, &i, 4)) < 0 || !lit(s, len, &i, '-')
        || (mo = digits(s, len, &i, 2)) < 0 || !lit(s, len, &i, '-')
        || (d = digits(s, len, &i, 2)) < 0)
        return fail(why, NOT_ISO);
    if (i == len)
        return fail(why, "has no time (use YYYY-MM-DDTHH:MM:SSZ)");
    if (!lit(s, len, &i, 'T') && !lit(s, len, &i, 't') && !lit(s, len, &i, ' '))
        return fail(why, NOT_ISO);
    if ((h = digits(s, len, &i, 2)) < 0 || !lit(s, len, &i, ':')
        || (mi = digits(s, len, &i, 2)) < 0)
        return fail(why, NOT_ISO);
    if (!lit(s, len, &i, ':'))
        return fail(why, i == len || s[i] == 'Z' || s[i] == 'z' || s[i] == '+' || s[i] == '-'
                             ? "has no seconds (use HH:MM:SS)" : NOT_ISO);
    if ((se = digits(s, len, &i, 2)) < 0)
        return fail(why, NOT_ISO);
    if (lit(s, len, &i, '.')) {             /* fraction: dropped, so any length */
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return fail(why, NOT_ISO);
    }
    if (i == len)
        return fail(why, "has no time zone (add Z or an offset such as +02:00)");
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i++] == '+' ? 1 : -1;
        if ((oh = digits(s, len, &i, 2)) < 0)
            return fail(why, "has a malformed time zone offset (use +HH:MM)");
        if (i < len) {                      /* +HH:MM or +HHMM; +HH ends here */
            int colon = lit(s, len, &i, ':');
            if ((om = digits(s, len, &i, 2)) < 0)
                return fail(why, colon || (s[i] >= '0' && s[i] <= '9') /* no colon: i < len */
                                     ? "has a malformed time zone offset (use +HH:MM)"
                                     : "has trailing characters after the time zone");
        }
    } else {
        return fail(why, NOT_ISO);
    }
    if (i != len)
        return fail(why, "has trailing characters after the time zone");

    if (y < 1)
        return fail(why, "year out of range (0001-9999)");
    if (mo < 1 || mo > 12)
        return fail(why, "month out of range");
    if (d < 1 || d > month_days(y, (int)mo))
        return fail(why, "day out of range for the month");
    if (h > 23)
        return fail(why, "hour out of range (00-23)");
    if (mi > 59)
        return fail(why, "minute out of range");
    if (se > 59)
        return fail(why, "second out of range (leap seconds are not accepted)");
    if (oh > 23 || om > 59)
        return fail(why, "time zone offset out of range");

    int64_t t = mq_days_from_civil(y, (int)mo, (int)d) * SECS_PER_DAY
              + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    if (t < MIN_SECS || t >= END_SECS)
        return fail(why, "is outside years 0001-9999 once converted to UTC");
    if (len == MQ_ISO_LEN - 1 && s[10] == 'T' && s[19] == 'Z') {
        /* already in the normal form (20 bytes leave no room for a
         * fraction or an offset): the checks above were all it needed */
        memcpy(out, s, len);
        out[len] = '\0';
        return 0;
    }
    format_utc(t, out);
    return 0;
}

int mq_epoch_utc(double t, char out[MQ_ISO_LEN], const char **why)
{
    if (t != t || t - t != 0)               /* NaN, +-inf */
        return fail(why, "is not a finite number");
    if (t < 0)
        return fail(why, "is before 1970");
    if (t >= (double)END_SECS)
        return fail(why, "is after year 9999");
    format_utc((int64_t)t, out);            /* truncation = floor for t >= 0 */
    return 0;
}
