/* webhook.c: the checks on a delivered webhook that must be exact: the size
 * bound, the signature compared in constant time against every accepted
 * secret (rotation), and the event's id (SHA-256 of the body). The JSON is
 * cjson's job, in Lua; nothing here ever copies or reports the body. */
#include "webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define DIGEST_LEN 32

static int sha256(const void *p, size_t n, unsigned char out[DIGEST_LEN])
{
    unsigned int len = 0;
    /* EVP_Digest reads p only when n > 0; give it a valid pointer anyway */
    if (p == NULL)
        p = "";
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != DIGEST_LEN)
        return -1;
    return 0;
}

mq_wh_verdict mq_webhook_verify(const char *sig, size_t siglen,
                                const mq_wh_bytes *secrets, size_t nsecrets)
{
    unsigned char ds[DIGEST_LEN], dk[DIGEST_LEN];
    int match = 0, failed = 0;
    if (nsecrets > MQ_WH_MAX_SECRETS)
        nsecrets = MQ_WH_MAX_SECRETS;
    /* a missing header is hashed as "" and then never matches: the same
     * work as a wrong one */
    if (sha256(sig, sig ? siglen : 0, ds) != 0)
        return MQ_WH_FAILED;
    for (size_t i = 0; i < nsecrets; i++) {
        int eq;
        if (sha256(secrets[i].p, secrets[i].len, dk) != 0) {
            failed = 1;
            continue;
        }
        eq = CRYPTO_memcmp(ds, dk, DIGEST_LEN) == 0;
        /* no branch on the comparison: accumulate */
        match |= eq & (secrets[i].len > 0) & (sig != NULL);
    }
    OPENSSL_cleanse(dk, sizeof dk);
    OPENSSL_cleanse(ds, sizeof ds);
    if (failed)
        return MQ_WH_FAILED;
    return match ? MQ_WH_OK : MQ_WH_UNAUTHORIZED;
}

mq_wh_verdict mq_webhook_check(const char *sig, size_t siglen,
                               const mq_wh_bytes *secrets, size_t nsecrets,
                               const char *body, size_t body_len, size_t max_body,
                               char id_hex[MQ_WH_ID_HEX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[DIGEST_LEN];
    mq_wh_verdict v;
    id_hex[0] = '\0';
    if (body_len > max_body)
        return MQ_WH_TOO_LARGE;
    v = mq_webhook_verify(sig, siglen, secrets, nsecrets);
    if (v != MQ_WH_OK)
        return v;
    if (sha256(body, body_len, d) != 0)
        return MQ_WH_FAILED;
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        id_hex[2 * i] = hex[d[i] >> 4];
        id_hex[2 * i + 1] = hex[d[i] & 15];
    }
    id_hex[2 * DIGEST_LEN] = '\0';
    return MQ_WH_OK;
}
