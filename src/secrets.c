/* secrets.c: what leaves the library is safe to show. The keys a client
 * sends are masked out of every string the engine hands on - after JSON
 * unescaping, so a server that echoes a key as "s3cr3t\\/..." or
 * "\\u0073..." cannot slip it past - and a server's words are bounded,
 * printable and valid UTF-8 before they reach an error message. */
#include "secrets.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

int mq_secrets_init(mq_secrets *s, const char *api_key, const char *secret_key)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 2; i++) {
        const char *k = i == 0 ? api_key : secret_key;
        if (k == NULL)
            continue;
        s->len[i] = strlen(k);
        if (s->len[i] > MQ_KEY_MAX || (s->key[i] = malloc(s->len[i] + 1)) == NULL) {
            mq_secrets_free(s);
            return -1;
        }
        memcpy(s->key[i], k, s->len[i] + 1);
    }
    return 0;
}

void mq_secrets_free(mq_secrets *s)
{
    for (int i = 0; i < 2; i++) {
        if (s->key[i] != NULL) {
            memset(s->key[i], 0, s->len[i]);
            free(s->key[i]);
        }
        s->key[i] = NULL;
        s->len[i] = 0;
    }
}

/* Keys under 6 bytes are left alone: no real key is that short, and
 * masking them would mangle any answer. */
void mq_secrets_scrub(const mq_secrets *s, char *buf, size_t len)
{
    for (int i = 0; i < 2 && len > 0; i++) {
        const char *k = s->key[i];
        size_t kl = s->len[i];
        char *p = buf, *last;
        if (k == NULL || kl < 6 || kl > len)
            continue;
        /* the key's first byte, then the rest: cheaper than memmem for
         * the short strings (a code, a URL) most calls hand on */
        last = buf + (len - kl);
        while (p <= last && (p = memchr(p, k[0], (size_t)(last - p) + 1)) != NULL) {
            if (memcmp(p + 1, k + 1, kl - 1) == 0) {
                memset(p, '*', kl);
                p += kl;
            } else {
                p++;
            }
        }
    }
}

size_t mq_secrets_show(const mq_secrets *s, const char *str, size_t len, char *out)
{
    char tmp[MQ_SHOW_MAX + MQ_KEY_MAX];
    size_t longest = s->len[0] > s->len[1] ? s->len[0] : s->len[1];
    size_t keep = len, n;

    /* a key across the cut is still whole in tmp, and scrubbed there */
    if (keep > MQ_SHOW_MAX + longest)
        keep = MQ_SHOW_MAX + longest;
    memcpy(tmp, str, keep);
    mq_secrets_scrub(s, tmp, keep);
    n = len > MQ_SHOW_MAX ? MQ_SHOW_MAX : len;
    memcpy(out, tmp, n);
    if (len > MQ_SHOW_MAX) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7F)
            out[i] = ' ';
    }
    if (mq_text_classify(out, n) == MQ_TEXT_BAD_UTF8) {
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] >= 0x80)
                out[i] = '?';
    }
    out[n] = '\0';
    return n;
}
