/* text.c: what a string's bytes are, in one pass: fit to go into a JSON
 * string verbatim, in need of escaping, or not acceptable at all (a
 * control character, invalid UTF-8). Validation and request building ask
 * once instead of running several Lua patterns over every field. */
#include "text.h"

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    else return 0;
    if (len > left)
        return 0;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    else if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

/* Printable ASCII other than '"', '/' and '\\': the bytes the loop below
 * skips with one table lookup each. */
#define NO16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define YES16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char plain[256] = {
    NO16, NO16,                                         /* 0x00-0x1F: control */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,     /* 0x20-0x2F: '"' '/' */
    YES16, YES16,                                       /* 0x30-0x4F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,     /* 0x50-0x5F: '\\' */
    YES16,                                              /* 0x60-0x6F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,     /* 0x70-0x7F: DEL */
};                                                      /* 0x80-0xFF: 0 */
#undef NO16
#undef YES16

mq_text_class mq_text_classify(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    mq_text_class cls = MQ_TEXT_VERBATIM;

    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (plain[c]) {
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7F)
            return MQ_TEXT_CONTROL;
        if (c < 0x80) {
            if (c == '"' || c == '\\' || c == '/')
                cls = MQ_TEXT_ESCAPE;   /* cjson writes "/" as "\/" too */
            i++;
            continue;
        }
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0)
            return MQ_TEXT_BAD_UTF8;
        cls = MQ_TEXT_ESCAPE;           /* non-ASCII: leave it to cjson */
        i += n;
    }
    return cls;
}
