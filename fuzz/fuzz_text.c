/* fuzz_text.c: mq_text_classify against an independent reference (decode
 * code points, then judge them), on any bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "text.h"

/* Reference: decode by code point value (not by byte ranges, as text.c
 * does), rejecting overlongs, surrogates and values above U+10FFFF. */
static int reference(const uint8_t *s, size_t n)
{
    int cls = MQ_TEXT_VERBATIM;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len;
        uint8_t c = s[i];
        if (c < 0x80) { cp = c; len = 1; }
        else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; len = 2; }
        else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; len = 3; }
        else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; len = 4; }
        else return MQ_TEXT_BAD_UTF8;
        if (len == 1 && (c < 0x20 || c == 0x7F))
            return MQ_TEXT_CONTROL;
        if (i + len > n)
            return MQ_TEXT_BAD_UTF8;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return MQ_TEXT_BAD_UTF8;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return MQ_TEXT_BAD_UTF8;
        if (len > 1 || c == '"' || c == '\\' || c == '/')
            cls = MQ_TEXT_ESCAPE;
        i += len;
    }
    return cls;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if ((int)mq_text_classify((const char *)data, size) != reference(data, size))
        abort();
    return 0;
}
