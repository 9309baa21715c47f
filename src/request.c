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

/* {"type":"..","channel":"http","meta":{"url":"..","headers":{"K":"V"}}} */
static char *put_subscription(char *p, const mq_op_args *a)
{
    p = PUT_LIT(p, "{\"type\":\"");
    p = put_text(p, a->wh_type, a->wh_type_len);
    p = PUT_LIT(p, "\",\"channel\":\"http\",\"meta\":{\"url\":\"");
    p = put_text(p, a->wh_url, a->wh_url_len);
    *p++ = '"';
    if (a->wh_nheaders > 0) {
        p = PUT_LIT(p, ",\"headers\":{");
        for (int i = 0; i < a->wh_nheaders && i < MQ_WH_HEADERS_MAX; i++) {
            const mq_wh_header *h = &a->wh_headers[i];
            if (i > 0)
                *p++ = ',';
            *p++ = '"';
            p = put_text(p, h->name, h->name_len);
            p = PUT_LIT(p, "\":\"");
            p = put_text(p, h->value, h->value_len);
            *p++ = '"';
        }
        *p++ = '}';
    }
    return PUT_LIT(p, "}}");
}

size_t mq_request_body(mq_method m, const mq_op_args *a, char *out)
{
    char *p = out;

    if (MQ_OP_IS_WEBHOOK(a->op)) {
        if (m == MQ_M_POST || m == MQ_M_PUT)
            p = put_subscription(p, a);
    } else if (m == MQ_M_POST) {
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

size_t mq_request_path_op(mq_op op, mq_method m, const char *code, size_t code_len, char *out)
{
    char *p;
    if (!MQ_OP_IS_WEBHOOK(op))
        return mq_request_path(m, code, code_len, out);
    p = PUT_LIT(out, "/organizations/webhooks/");
    if (m == MQ_M_PUT || m == MQ_M_DELETE)
        p += mq_urlenc(code, code_len, p, 3 * MQ_MAX_ID + 1);
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
