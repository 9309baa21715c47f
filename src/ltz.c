/* ltz.c: a wall-clock time read in an IANA zone (the system's tzdata), as
 * Unix time, for the CLI's --timezone:
 *
 *   t = core.zone_time(zone, year, month, day, hour, min, sec)
 *   nil, why = core.zone_time(...)  -- why: "unknown zone", "ambiguous",
 *                                   -- "nonexistent"
 *
 * glibc reads a zone only through TZ: TZ is set for the conversion and put
 * back, and the answer is checked both ways - a time the clocks skip (the
 * spring DST gap) is "nonexistent", one they pass twice (autumn) is
 * "ambiguous": the caller asks for an offset then, nothing is guessed. An
 * unknown name would silently be UTC in glibc: the zone file must exist.
 * setenv is not thread-safe: call it before the process starts threads
 * (the CLI reads its whole file before it makes its client). */
#include "ltz.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* a zone name the tzdata can hold: letters, digits, _ - + / and no ".." */
static int zone_ok(const char *z)
{
    char path[512];
    const char *dir = getenv("TZDIR");
    size_t n = strlen(z);
    if (n == 0 || n > 200 || z[0] == '/' || strstr(z, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = z[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-' || c == '+' || c == '/'))
            return 0;
    }
    if (snprintf(path, sizeof path, "%s/%s", dir != NULL && dir[0] ? dir : "/usr/share/zoneinfo", z)
        >= (int)sizeof path)
        return 0;
    return access(path, R_OK) == 0;
}

/* mktime of the fields with the given isdst; *back: the local time of the
 * answer has the same fields (the time exists with that isdst) */
static time_t try_isdst(const int f[6], int isdst, int *back)
{
    struct tm tm, out;
    time_t t;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = f[0] - 1900;
    tm.tm_mon = f[1] - 1;
    tm.tm_mday = f[2];
    tm.tm_hour = f[3];
    tm.tm_min = f[4];
    tm.tm_sec = f[5];
    tm.tm_isdst = isdst;
    t = mktime(&tm);
    *back = t != (time_t)-1 && localtime_r(&t, &out) != NULL && out.tm_year == f[0] - 1900
            && out.tm_mon == f[1] - 1 && out.tm_mday == f[2] && out.tm_hour == f[3]
            && out.tm_min == f[4] && out.tm_sec == f[5];
    return t;
}

static int l_zone_time(lua_State *L)
{
    const char *zone = luaL_checkstring(L, 1);
    int f[6], ok0, ok1;
    char *saved = NULL;
    const char *old;
    time_t t0, t1;

    for (int i = 0; i < 6; i++)
        f[i] = (int)luaL_checkinteger(L, i + 2);
    if (!zone_ok(zone)) {
        lua_pushnil(L);
        lua_pushliteral(L, "unknown zone");
        return 2;
    }
    old = getenv("TZ");
    if (old != NULL && (saved = strdup(old)) == NULL)
        return luaL_error(L, "out of memory");
    if (setenv("TZ", zone, 1) != 0) {
        free(saved);
        return luaL_error(L, "setenv TZ failed");
    }
    tzset();
    t0 = try_isdst(f, 0, &ok0);
    t1 = try_isdst(f, 1, &ok1);
    if (saved != NULL) {
        int rc = setenv("TZ", saved, 1);
        free(saved);
        if (rc != 0)
            return luaL_error(L, "setenv TZ failed");
    } else if (unsetenv("TZ") != 0) {
        return luaL_error(L, "unsetenv TZ failed");
    }
    tzset();
    if (ok0 && ok1 && t0 != t1) {
        lua_pushnil(L);
        lua_pushliteral(L, "ambiguous");
        return 2;
    }
    if (!ok0 && !ok1) {
        lua_pushnil(L);
        lua_pushliteral(L, "nonexistent");
        return 2;
    }
    lua_pushnumber(L, (lua_Number)(ok0 ? t0 : t1));
    return 1;
}

void mq_ltz_open(lua_State *L)
{
    lua_pushcfunction(L, l_zone_time);
    lua_setfield(L, -2, "zone_time");
}
