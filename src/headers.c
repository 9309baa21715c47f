/* headers.c: read the numbers the server puts in response headers:
 * Retry-After (RFC 9110 10.2.3: delta-seconds or an HTTP-date) and plain
 * integers such as x-ratelimit-remaining / x-ratelimit-limit.
 *
 * Values come straight from curl's header callback, so surrounding blanks
 * (SP, HTAB) and the line's CR LF are ignored. Dates are parsed here rather
 * than with strptime/timegm: those depend on the locale and TZ and are not
 * thread-safe everywhere. The three HTTP-date forms are taken as RFC 9110
 * 5.6.7 writes them, except that names (day, month, "GMT") are matched
 * without regard to case, and the day name is not checked against the date
 * (the date is what counts). Second 60 is allowed, as the RFC allows it. */
#include "headers.h"
#include "iso8601.h"

#include <limits.h>
#include <stdint.h>

#define RETRY_CAP 86400         /* a server asking for more than a day is wrong */

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim blanks off both ends; 0 when nothing is left. */
static int trim(const char **v, size_t *len)
{
    if (*v == NULL)
        return 0;
    while (*len > 0 && blank(**v)) {
        (*v)++;
        (*len)--;
    }
    while (*len > 0 && blank((*v)[*len - 1]))
        (*len)--;
    return *len > 0;
}

/* All digits: their value, or when it exceeds cap, cap if saturate else -1.
 * Anything else (empty, a sign, a dot, a blank inside): -1. */
static long digits_upto(const char *s, size_t len, long cap, int saturate)
{
    long v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (v > (cap - d) / 10) {
            if (!saturate)
                return -1;
            v = cap;
        } else {
            v = v * 10 + d;
        }
    }
    return v;
}

long mq_header_long(const char *v, size_t len)
{
    if (!trim(&v, &len))
        return -1;
    return digits_upto(v, len, LONG_MAX, 0);
}

/* ---- HTTP-date ------------------------------------------------------- */


/* The Gregorian year a Unix time falls in (for RFC 850's two-digit years). */
static int64_t year_of(time_t now)
{
    int64_t z = (int64_t)now / 86400 - ((int64_t)now % 86400 < 0) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return era * 400 + yoe + (mp >= 10);
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* s[*i..] starts with word (lowercase) in any case: advance past it. */
static int word(const char *s, size_t len, size_t *i, const char *w)
{
    size_t k = 0;
    for (; w[k]; k++)
        if (*i + k >= len || lower(s[*i + k]) != w[k])
            return 0;
    *i += k;
    return 1;
}

static int lit(const char *s, size_t len, size_t *i, char c)
{
    if (*i < len && s[*i] == c) {
        (*i)++;
        return 1;
    }
    return 0;
}

static int num(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    if (len - *i < (size_t)n)
        return -1;
    for (int k = 0; k < n; k++) {
        char c = s[*i + k];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    return v;
}

static const char *const MONTHS[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const DAYS[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
static const char *const DAYS_LONG[7] = {"monday", "tuesday", "wednesday", "thursday",
                                         "friday", "saturday", "sunday"};

static int month(const char *s, size_t len, size_t *i)
{
    for (int m = 0; m < 12; m++)
        if (word(s, len, i, MONTHS[m]))
            return m + 1;
    return -1;
}

static int day_name(const char *s, size_t len, size_t *i, const char *const names[7])
{
    for (int d = 0; d < 7; d++)
        if (word(s, len, i, names[d]))
            return 1;
    return 0;
}

/* "HH:MM:SS" into seconds of the day, or -1. */
static long clock_time(const char *s, size_t len, size_t *i)
{
    int h, m, sec;
    if ((h = num(s, len, i, 2)) < 0 || !lit(s, len, i, ':') || (m = num(s, len, i, 2)) < 0
        || !lit(s, len, i, ':') || (sec = num(s, len, i, 2)) < 0)
        return -1;
    if (h > 23 || m > 59 || sec > 60)
        return -1;
    return h * 3600L + m * 60L + sec;
}

/* An HTTP-date in Unix seconds; 0 on success, -1 when it is not one. */
static int http_date(const char *s, size_t len, time_t now, int64_t *out)
{
    size_t i = 0;
    int64_t y;
    int mo, d;
    long tod;

    if (day_name(s, len, &i, DAYS) && lit(s, len, &i, ',')) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (!lit(s, len, &i, ' ') || (d = num(s, len, &i, 2)) < 0 || !lit(s, len, &i, ' ')
            || (mo = month(s, len, &i)) < 0 || !lit(s, len, &i, ' ')
            || (y = num(s, len, &i, 4)) < 0 || !lit(s, len, &i, ' ')
            || (tod = clock_time(s, len, &i)) < 0 || !lit(s, len, &i, ' ')
            || !word(s, len, &i, "gmt"))
            return -1;
    } else if (i = 0, day_name(s, len, &i, DAYS_LONG)) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        int yy;
        if (!lit(s, len, &i, ',') || !lit(s, len, &i, ' ') || (d = num(s, len, &i, 2)) < 0
            || !lit(s, len, &i, '-') || (mo = month(s, len, &i)) < 0 || !lit(s, len, &i, '-')
            || (yy = num(s, len, &i, 2)) < 0 || !lit(s, len, &i, ' ')
            || (tod = clock_time(s, len, &i)) < 0 || !lit(s, len, &i, ' ')
            || !word(s, len, &i, "gmt"))
            return -1;
        /* RFC 9110: a two-digit year more than 50 years in the future is the
         * most recent past year with those digits. now is clamped so an
         * absurd clock cannot overflow the arithmetic below. */
        int64_t cur = year_of(now < 0 ? 0 : now > 253402300799 ? 253402300799 : now);
        y = cur - cur % 100 + yy;
        if (y > cur + 50)
            y -= 100;
    } else if (i = 0, day_name(s, len, &i, DAYS)) {
        /* asctime: Sun Nov  6 08:49:37 1994 (day padded with a space) */
        if (!lit(s, len, &i, ' ') || (mo = month(s, len, &i)) < 0 || !lit(s, len, &i, ' '))
            return -1;
        if (lit(s, len, &i, ' '))
            d = num(s, len, &i, 1);
        else
            d = num(s, len, &i, 2);
        if (d < 0 || !lit(s, len, &i, ' ') || (tod = clock_time(s, len, &i)) < 0
            || !lit(s, len, &i, ' ') || (y = num(s, len, &i, 4)) < 0)
            return -1;
    } else {
        return -1;
    }
    if (i != len)
        return -1;

    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    *out = mq_days_from_civil(y, mo, d) * 86400 + tod;
    return 0;
}

double mq_retry_after(const char *v, size_t len, time_t now)
{
    if (!trim(&v, &len))
        return -1;
    long secs = digits_upto(v, len, RETRY_CAP, 1);
    if (secs >= 0)
        return (double)secs;

    int64_t at;
    if (http_date(v, len, now, &at) < 0)
        return -1;
    /* at is within years 0..10000; now can be anything: compare before
     * subtracting so nothing overflows. */
    if ((int64_t)now >= at)
        return 0;
    if ((int64_t)now < at - RETRY_CAP)
        return RETRY_CAP;
    return (double)(at - (int64_t)now);
}

double mq_ratelimit_reset(const char *v, size_t len, time_t now)
{
    long at = mq_header_long(v, len);
    double left;
    if (at < 0)
        return -1;
    /* an epoch time, or (some servers) the seconds left */
    left = at > (long)now - 86400 ? (double)(at - (long)now) : (double)at;
    return left < 0 ? 0 : left;
}
