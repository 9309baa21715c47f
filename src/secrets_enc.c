/* secrets_enc.c: the encodings a server may quote a key back in, for
 * secrets.c's scrub: the base64 run a key leaves at each byte phase of a
 * longer base64 string, and a match that reads percent-encoding (either
 * hex case) and form-encoding ('+' for a space) as it goes. */
#include "secrets_enc.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Bits [8*phase, 8*phase + 8*len) of the encoded stream are the key's;
 * character j holds bits [6j, 6j + 6), so the run is the characters whose
 * six bits all fall inside: j from ceil(8p/6) up to floor((8p+8len)/6). */
size_t mq_b64_run(const unsigned char *src, size_t len, int phase, int url, char *out)
{
    size_t p = (size_t)phase, first = (8 * p + 5) / 6, end = (8 * p + 8 * len) / 6, n = 0;

    for (size_t j = first; j < end; j++) {
        size_t b = 6 * j - 8 * p;           /* the character's first bit, in the key */
        size_t i = b / 8, o = b % 8;
        unsigned w = (unsigned)src[i] << 8;
        unsigned v;
        if (i + 1 < len)
            w |= src[i + 1];
        v = (w >> (10 - o)) & 63;
        out[n++] = url && v == 62 ? '-' : url && v == 63 ? '_' : B64[v];
    }
    return n;
}

int mq_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t mq_enc_match(const char *buf, size_t len, const char *needle, size_t nlen)
{
    size_t at = 0;

    for (size_t k = 0; k < nlen; k++) {
        char want = needle[k];
        int hi, lo;
        if (at >= len)
            return 0;
        if (buf[at] == '%' && at + 2 < len && (hi = mq_hexval(buf[at + 1])) >= 0
            && (lo = mq_hexval(buf[at + 2])) >= 0 && (char)(hi * 16 + lo) == want) {
            at += 3;
        } else if (buf[at] == want || (buf[at] == '+' && want == ' ')) {
            at++;
        } else {
            return 0;
        }
    }
    return at;
}

int mq_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '+' || c == '/' || c == '-' || c == '_';
}
