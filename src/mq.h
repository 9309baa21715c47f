/* mq.h: the internal interfaces between the C files of mediquo.core.
 * Only luaopen_mediquo_core is exported from the shared object; every
 * other symbol is hidden so two builds (Lua 5.4 and LuaJIT) or other
 * libraries in one process never clash. */
#ifndef MQ_H
#define MQ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif


/* ---- clock.c-free helpers (static inline) ---------------------------- */
static inline double mq_now(void)           /* monotonic seconds */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

/* ---- text.c ------------------------------------------------------------ */
typedef enum {
    MQ_TEXT_VERBATIM = 0,   /* printable ASCII without " / \ : JSON as it is */
    MQ_TEXT_ESCAPE,         /* valid UTF-8, no control characters, needs escaping */
    MQ_TEXT_CONTROL,        /* a control character (NUL, 0x01-0x1F, DEL) */
    MQ_TEXT_BAD_UTF8        /* not valid UTF-8 */
} mq_text_class;
mq_text_class mq_text_classify(const char *s, size_t len);

/* ---- iso8601.c ------------------------------------------------------- */
#define MQ_ISO_LEN 21       /* "YYYY-MM-DDTHH:MM:SSZ" + NUL */
/* Parse an ISO 8601 / RFC 3339 date-time with a zone (Z, +HH:MM, +HHMM, +HH),
 * checking the calendar (leap years, month lengths, 24:00 refused), drop
 * fractional seconds, convert to UTC and write "YYYY-MM-DDTHH:MM:SSZ".
 * Returns 0, or -1 with *why set to a static reason. */
int mq_iso8601_utc(const char *s, size_t len, char out[MQ_ISO_LEN], const char **why);
/* The same output for Unix epoch seconds (fraction dropped, years 1970-9999). */
int mq_epoch_utc(double t, char out[MQ_ISO_LEN], const char **why);

/* ---- urlenc.c -------------------------------------------------------- */
/* Percent-encode every byte except RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~).
 * Writes at most outcap bytes (NUL-terminated when it fits) and returns the
 * length the encoding needs (without NUL): call with outcap >= 3*len+1. */
size_t mq_urlenc(const char *s, size_t len, char *out, size_t outcap);

/* ---- headers.c ------------------------------------------------------- */
/* Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate, and the
 * obsolete RFC 850 and asctime forms). now = current Unix time. Returns the
 * seconds to wait (>= 0, capped at 86400), or -1 when not parseable. */
double mq_retry_after(const char *v, size_t len, time_t now);
/* A non-negative decimal integer header value (surrounding blanks allowed),
 * or -1 when absent, malformed or overflowing. */
long mq_header_long(const char *v, size_t len);
/* x-ratelimit-reset: an epoch time (or, from some servers, the seconds
 * left) made the seconds to the window's end (>= 0), or -1 when absent or
 * malformed. now = current Unix time. */
double mq_ratelimit_reset(const char *v, size_t len, time_t now);

/* ---- shmfile.c: the host-wide state files (limiter, metrics) -------- */
uint64_t mq_fnv1a64(const char *s);
/* malloc'd "<dir>/mediquo-<tag>-<fnv1a64(key) hex>.shm", or NULL. */
char *mq_shm_path(const char *dir, const char *tag, const char *key);
/* Makes a complete file of `size` bytes, mode 0600, under a temporary name
 * next to path (init(fd, ud) writes its header; 0, or -1 with errno), then
 * puts it at path: link(), which fails with errno EEXIST when another
 * process won the race, or with replace, rename(). 0, or -1 with the
 * reason in err (errno kept). what names the file in messages. */
int mq_shm_make(const char *path, const char *what, uint64_t size, int replace,
                int (*init)(int fd, void *ud), void *ud, char *err, size_t errlen);
/* Opens path read-write when it is ours to share: a regular file, not a
 * symlink, owned by this user, mode 0600. Returns the fd (and *size), -2
 * when there is no such file, -1 with the reason in err. */
int mq_shm_open(const char *path, const char *what, uint64_t *size, char *err, size_t errlen);

/* ---- limiter.c ------------------------------------------------------- */
typedef struct mq_limiter mq_limiter;
typedef struct {
    long per_minute;        /* budget per period */
    long burst;             /* back-to-back starts; 1..per_minute */
    double period;          /* seconds */
    const char *key;        /* what is shared */
    const char *dir;        /* where the state file lives */
} mq_limiter_cfg;
typedef struct {
    long per_minute, used, available;
    double paused_until;    /* Unix epoch seconds, 0 when not paused */
} mq_limiter_status_t;

int  mq_limiter_open(const mq_limiter_cfg *cfg, mq_limiter **out, char *err, size_t errlen);
/* Take one slot now if the rules allow: returns 1; otherwise 0 and *wait is
 * the seconds until one may be free. Never blocks beyond the short lock. */
int  mq_limiter_try(mq_limiter *l, double *wait);
/* Blocking form: waits (nanosleep) at most max_wait seconds. Returns 1 when
 * a slot was taken (*waited = seconds spent), 0 when none came in time
 * (*retry_after = seconds until one may). */
int  mq_limiter_acquire(mq_limiter *l, double max_wait, double *waited, double *retry_after);
/* The server said stop (429 / remaining 0): every process sharing the key
 * waits until now + seconds. */
void mq_limiter_pause(mq_limiter *l, double seconds);
/* The server's x-ratelimit-remaining / -limit (-1 when absent) and the
 * seconds to its window end (-1 unknown): calibrate the shared state. */
void mq_limiter_observe(mq_limiter *l, long remaining, long limit, double reset_in);
void mq_limiter_status(mq_limiter *l, mq_limiter_status_t *st);
void mq_limiter_close(mq_limiter *l);
/* Validate a state file's header bytes (what open does before mapping);
 * 0 when valid, -1 with a reason in err. Exposed for the fuzzer. */
int  mq_limiter_check_header(const void *buf, size_t len, char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
