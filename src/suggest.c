/* suggest.c: "did you mean ...?" - the one place a mistyped name is matched
 * to a known one (unknown option fields, create fields, rate_limit fields
 * and the CLI's flags all use it, through lcheck.c). */
#include "suggest.h"

#include <string.h>

#define NAME_MAX_LEN 64

/* optimal string alignment distance of a[0..n) and b[0..m), both <= 64 */
static size_t distance(const char *a, size_t n, const char *b, size_t m)
{
    size_t d[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];

    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

const char *mq_suggest(const char *name, size_t len, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;

    if (len == 0 || len > NAME_MAX_LEN)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        size_t m = strlen(names[k]), longer, bound, d;
        if (m > NAME_MAX_LEN || (m == len && memcmp(name, names[k], len) == 0))
            continue;
        longer = m > len ? m : len;
        bound = (longer + 2) / 4 > 1 ? (longer + 2) / 4 : 1;
        d = distance(name, len, names[k], m);
        if (len >= 3 && len < m && memcmp(name, names[k], len) == 0 && d > bound)
            d = bound;      /* a prefix: "per_min" for "per_minute" */
        if (d <= bound && d < best_d) {
            best = names[k];
            best_d = d;
        }
    }
    return best;
}
