/* fuzz_secrets.c: the scrub (secrets.c) on any text with a key planted in
 * any encoding: afterwards no encoding of either key - raw, percent-encoded
 * (upper and lower hex), form-encoded, or the base64 run of either
 * alphabet at any byte phase, each built here independently of
 * secrets_enc.c - is left, and the scrub changed nothing but to '*'.
 *
 * Input: [mode][key len][secret len][key bytes][secret bytes][text...].
 * Key bytes are made printable and never '*' (the mask itself). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets.h"

#define KMAX 40
#define BUF (8 * 1024)

static const char STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64(const unsigned char *s, size_t n, int url, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0)
                     | (i + 2 < n ? s[i + 2] : 0);
        for (int k = 0; k < 4; k++) {
            char c = STD[v >> (18 - 6 * k) & 63];
            out[o++] = (size_t)k * 6 < (n - i) * 8 ? (url && c == '+' ? '-' : url && c == '/' ? '_' : c) : '=';
        }
    }
    return o;
}

/* The run: encode [fill x phase][key][fill x 3] with fill 0x00 and 0xFF;
 * the characters alike in both depend on the key alone. */
static size_t run_of(const unsigned char *k, size_t kl, int phase, int url, char *out)
{
    unsigned char a[KMAX + 6], b[KMAX + 6];
    char ea[2 * KMAX], eb[2 * KMAX];
    size_t n = (size_t)phase + kl + 3, en, o = 0, best = 0, best_at = 0, cur = 0;
    memset(a, 0, sizeof a);
    memset(b, 0xFF, sizeof b);
    memcpy(a + phase, k, kl);
    memcpy(b + phase, k, kl);
    en = b64(a, n, url, ea);
    b64(b, n, url, eb);
    for (size_t i = 0; i < en; i++) {
        cur = ea[i] == eb[i] ? cur + 1 : 0;
        if (cur > best) {
            best = cur;
            best_at = i + 1 - cur;
        }
    }
    for (; o < best; o++)
        out[o] = ea[best_at + o];
    return o;
}

static size_t pct(const unsigned char *k, size_t kl, int lower, int form, char *out)
{
    const char *hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < kl; i++) {
        unsigned char c = k[i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '.' || c == '_' || c == '~';
        if (form && plain) {
            out[o++] = (char)c;
        } else if (form && c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

/* every encoding of key k, one after another, into enc; the lengths in n */
static int encodings(const unsigned char *k, size_t kl, char enc[][4 * KMAX], size_t *n)
{
    int m = 0;
    memcpy(enc[m], k, kl);
    n[m++] = kl;
    n[m] = pct(k, kl, 0, 0, enc[m]), m++;
    n[m] = pct(k, kl, 1, 0, enc[m]), m++;
    n[m] = pct(k, kl, 0, 1, enc[m]), m++;
    for (int phase = 0; phase < 3; phase++)
        for (int url = 0; url < 2; url++)
            n[m] = run_of(k, kl, phase, url, enc[m]), m++;
    return m;
}

static int holds(const char *h, size_t hl, const char *nd, size_t nl)
{
    for (size_t i = 0; nl > 0 && i + nl <= hl; i++)
        if (memcmp(h + i, nd, nl) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[BUF], out[BUF];
    char enc[2][10][4 * KMAX];
    size_t en[2][10], kl[2], len = 0, half;
    unsigned char key[2][KMAX + 1];
    int m = 0;
    mq_secrets s;

    if (size < 3)
        return 0;
    uint8_t mode = data[0];
    kl[0] = 6 + data[1] % (KMAX - 5);
    kl[1] = 6 + data[2] % (KMAX - 5);
    data += 3, size -= 3;
    for (int w = 0; w < 2; w++) {
        for (size_t i = 0; i < kl[w]; i++) {
            unsigned char c = (unsigned char)(i < size ? data[i] : 'k' + w);
            c = (unsigned char)(0x20 + c % 95);
            key[w][i] = c == '*' ? '#' : c;
        }
        key[w][kl[w]] = '\0';
        data += kl[w] < size ? kl[w] : size;
        size -= kl[w] < size ? kl[w] : size;
        m = encodings(key[w], kl[w], enc[w], en[w]);
    }
    /* the text, with one encoding of a key (or of "key:secret", base64)
     * planted in its middle */
    half = size / 2;
    if (size > BUF / 2)
        return 0;
    memcpy(in, data, half);
    len = half;
    if (mode & 0x80) {
        unsigned char both[2 * KMAX + 8];
        size_t bl = 0, ph = (mode >> 4) & 3;
        memcpy(both, "xyz", ph % 3);
        bl = ph % 3;
        memcpy(both + bl, key[0], kl[0]);
        bl += kl[0];
        both[bl++] = ':';
        memcpy(both + bl, key[1], kl[1]);
        bl += kl[1];
        len += b64(both, bl, mode & 1, in + len);
    } else {
        int w = mode & 1, e = (mode >> 1) % m;
        memcpy(in + len, enc[w][e], en[w][e]);
        len += en[w][e];
    }
    memcpy(in + len, data + half, size - half);
    len += size - half;

    if (mq_secrets_init(&s, (const char *)key[0], (const char *)key[1]) != 0)
        abort();
    memcpy(out, in, len);
    mq_secrets_scrub(&s, out, len);
    for (size_t i = 0; i < len; i++)
        if (out[i] != in[i] && out[i] != '*')
            abort();
    for (int w = 0; w < 2; w++)
        for (int e = 0; e < m; e++)
            if (holds(out, len, enc[w][e], en[w][e])) {
                fprintf(stderr, "key %d encoding %d survives: %.*s\n", w, e, (int)en[w][e], enc[w][e]);
                abort();
            }
    mq_secrets_free(&s);
    return 0;
}
