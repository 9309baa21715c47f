/* fuzz_urlenc.c: libFuzzer harness for mq_urlenc. Invariants: the output
 * holds only unreserved bytes and %XX (uppercase hex), decodes back to the
 * input, the returned length is exact; a short buffer gets a NUL-terminated
 * prefix of the full output with no partial %XX and no byte past outcap. */
#include "urlenc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;                          /* lowercase hex is a failure too */
}

/* Decode enc (well formed or abort) into dec; returns its length. */
static size_t decode(const char *enc, size_t n, unsigned char *dec)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)enc[i];
        if (c == '%') {
            if (i + 3 > n)
                abort();                /* partial %XX */
            int hi = hexval(enc[i + 1]), lo = hexval(enc[i + 2]);
            if (hi < 0 || lo < 0)
                abort();
            unsigned char b = (unsigned char)(hi * 16 + lo);
            if (unreserved(b))
                abort();                /* unreserved must not be encoded */
            dec[w++] = b;
            i += 3;
        } else if (unreserved(c)) {
            dec[w++] = c;
            i++;
        } else {
            abort();
        }
    }
    return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t cap = 3 * size + 1;
    char *out = malloc(cap);
    unsigned char *dec = malloc(size + 1);
    if (!out || !dec)
        abort();

    size_t need = mq_urlenc(s, size, out, cap);
    if (need > 3 * size || strlen(out) != need)
        abort();
    if (decode(out, need, dec) != size || memcmp(dec, data, size) != 0)
        abort();

    /* A short buffer, sized from the input, allocated exactly. */
    size_t small = size ? data[0] % (need + 2) : 0;
    char *part = malloc(small ? small : 1);
    if (!part)
        abort();
    if (mq_urlenc(s, size, part, small) != need)
        abort();
    if (small > 0) {
        size_t n = strnlen(part, small);
        if (n >= small || memcmp(part, out, n) != 0)
            abort();                    /* not terminated, or not a prefix */
        if (n < need && n + (out[n] == '%' ? 3 : 1) < small)
            abort();                    /* stopped early although it fitted */
        decode(part, n, dec);           /* aborts on a partial %XX */
    }
    free(part);
    free(out);
    free(dec);
    return 0;
}
