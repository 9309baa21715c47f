/* urlenc.c: percent-encode an appointment code for use as one path segment.
 * Every byte except the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~) becomes
 * %XX with uppercase hex, so '/', '?', '#' and '%' in a code can never change
 * which resource a request reaches ("../x" -> "..%2Fx"). A code that is
 * exactly "." or ".." is all unreserved and stays as it is: the caller must
 * refuse those two (or set CURLOPT_PATH_AS_IS), since curl and servers
 * collapse dot segments. Encoding them as %2E would not help: RFC 3986
 * makes %2E equivalent to '.', and normalisers decode it.
 *
 * Like snprintf: returns the full length needed (without NUL), writes at
 * most outcap bytes, NUL-terminates whenever outcap > 0, and never emits a
 * partial %XX, so even a truncated result is well formed. */
#include "urlenc.h"

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '-' || c == '.' || c == '_' || c == '~';
}

size_t mq_urlenc(const char *s, size_t len, char *out, size_t outcap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = 0, w = 0;             /* w: bytes written, w < outcap */
    int room = outcap > 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t n = unreserved(c) ? 1 : 3;
        need += n;
        if (room && w + n < outcap) {   /* keep one byte for the NUL */
            if (n == 1) {
                out[w++] = (char)c;
            } else {
                out[w++] = '%';
                out[w++] = hex[c >> 4];
                out[w++] = hex[c & 15];
            }
        } else {
            room = 0;                   /* stop at the first that does not fit */
        }
    }
    if (outcap > 0)
        out[w] = '\0';
    return need;
}
