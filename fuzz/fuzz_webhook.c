/* fuzz_webhook.c: mq_webhook_check (the size bound, the signature against
 * the secrets of a rotation, the id) on any bytes, against a plain
 * reference: the verdict must be what memcmp and the lengths say, and an
 * accepted body's id must be 64 lower-case hex digits, the same for the
 * same body. Input: byte 0 picks max_body (0-255, or no bound), byte 1 the
 * number of secrets (0-9, clamped by the code to 8); the rest is split at
 * '\n': the signature (or none when the first part is "-"), the secrets,
 * and the body (everything after). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook.h"

static const uint8_t *cut(const uint8_t *p, const uint8_t *end, size_t *len)
{
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) {
        *len = (size_t)(end - p);
        return end;
    }
    *len = (size_t)(nl - p);
    return nl + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mq_wh_bytes secrets[MQ_WH_MAX_SECRETS + 2];
    char id[MQ_WH_ID_HEX], id2[MQ_WH_ID_HEX];
    const uint8_t *p, *end = data + size, *sig;
    size_t siglen, nsec, max_body, body_len;
    int want;
    mq_wh_verdict v;
    if (size < 2)
        return 0;
    max_body = data[0] == 255 ? (size_t)-1 : data[0];
    nsec = data[1] % 10;
    p = data + 2;
    sig = p;
    p = cut(p, end, &siglen);
    if (siglen == 1 && sig[0] == '-')
        sig = NULL;
    for (size_t i = 0; i < nsec; i++) {
        secrets[i].p = (const char *)p;
        p = cut(p, end, &secrets[i].len);
    }
    body_len = (size_t)(end - p);

    /* the reference verdict */
    if (body_len > max_body) {
        want = MQ_WH_TOO_LARGE;
    } else {
        want = MQ_WH_UNAUTHORIZED;
        for (size_t i = 0; i < nsec && i < MQ_WH_MAX_SECRETS; i++)
            if (sig && secrets[i].len > 0 && secrets[i].len == siglen
                && memcmp(secrets[i].p, sig, siglen) == 0)
                want = MQ_WH_OK;
    }
    v = mq_webhook_check((const char *)sig, siglen, secrets, nsec,
                         (const char *)p, body_len, max_body, id);
    if (v == MQ_WH_FAILED)
        return 0;           /* libcrypto out of memory: not a verdict */
    if ((int)v != want)
        abort();
    if (v != MQ_WH_OK) {
        if (id[0] != '\0')
            abort();
        return 0;
    }
    if (strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64)
        abort();
    if (mq_webhook_check((const char *)sig, siglen, secrets, nsec,
                         (const char *)p, body_len, max_body, id2) != MQ_WH_OK
        || strcmp(id, id2) != 0)
        abort();
    return 0;
}
