/* request.c: an operation's HTTP request, written straight into the
 * caller's buffers with no allocation: the path with the code
 * percent-encoded (so "../x" or "a/b?c" can never reach another resource)
 * and the JSON body exactly as cjson would encode it. The values were
 * checked before (lcheck.c): no control characters, bounded lengths. */
#include "request.h"
#include "urlenc.h"

#include <string.h>

static char *put(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* checked text into a JSON string: '"', '\' and '/' escaped as cjson does
 * (control characters were refused by the checks) */
static char *put_text(char *p, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '"' || ch == '\\' || ch == '/')
            *p++ = '\\';
        *p++ = ch;
    }
    return p;
}

size_t mq_request_body(mq_method m, const mq_op_args *a, char *out)
{
    char *p = out;

    if (m == MQ_M_POST) {
        p = PUT_LIT(p, "{\"appointment\":{\"code\":\"");
        p = put_text(p, a->code, a->code_len);
        p = PUT_LIT(p, "\",\"starts_at\":\"");
        p = put(p, a->starts_at, MQ_ISO_LEN - 1);
        if (a->duration > 0) {
            char digits[12];
            size_t n = 0;
            p = PUT_LIT(p, "\",\"duration\":");
            for (long d = a->duration; d > 0; d /= 10)
                digits[n++] = (char)('0' + d % 10);
            while (n > 0)
                *p++ = digits[--n];
            *p++ = '}';
        } else {
            p = PUT_LIT(p, "\"}");
        }
        p = PUT_LIT(p, ",\"patient\":{\"code\":\"");
        p = put_text(p, a->patient, a->patient_len);
        p = PUT_LIT(p, "\"},\"professional\":{\"hash\":\"");
        p = put_text(p, a->professional, a->professional_len);
        p = PUT_LIT(p, "\"}}");
    } else if (m == MQ_M_PUT) {
        p = PUT_LIT(p, "{\"appointment\":{\"starts_at\":\"");
        p = put(p, a->starts_at, MQ_ISO_LEN - 1);
        p = PUT_LIT(p, "\"}}");
    }
    *p = '\0';
    return (size_t)(p - out);
}

size_t mq_request_path(mq_method m, const char *code, size_t code_len, char *out)
{
    char *p = PUT_LIT(out, "/appointments");
    if (m != MQ_M_POST) {
        *p++ = '/';
        p += mq_urlenc(code, code_len, p, 3 * MQ_MAX_ID + 1);
    }
    *p = '\0';
    return (size_t)(p - out);
}
