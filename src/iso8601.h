/* iso8601.h: ISO 8601 / epoch seconds to UTC "YYYY-MM-DDTHH:MM:SSZ" (iso8601.c),
 * and the civil-date arithmetic it shares with the HTTP-date parser. */
#ifndef MQ_ISO8601_H
#define MQ_ISO8601_H

#include <stdint.h>
#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_ISO_LEN 21       /* "YYYY-MM-DDTHH:MM:SSZ" + NUL */
/* Parse an ISO 8601 / RFC 3339 date-time with a zone (Z, +HH:MM, +HHMM, +HH),
 * checking the calendar (leap years, month lengths, 24:00 refused), drop
 * fractional seconds, convert to UTC and write "YYYY-MM-DDTHH:MM:SSZ".
 * Returns 0, or -1 with *why set to a static reason. */
int mq_iso8601_utc(const char *s, size_t len, char out[MQ_ISO_LEN], const char **why);
/* The same output for Unix epoch seconds (fraction dropped, years 1970-9999). */
int mq_epoch_utc(double t, char out[MQ_ISO_LEN], const char **why);

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil): no mktime/timegm, so no TZ, locale or thread issues.
 * Shared by the ISO 8601 and HTTP-date parsers. */
static inline int64_t mq_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
