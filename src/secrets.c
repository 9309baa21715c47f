/* secrets.c: what leaves the library is safe to show. The keys a client
 * sends are masked out of every string the engine hands on - after JSON
 * unescaping, so a server that echoes a key as "s3cr3t\\/..." or
 * "\\u0073..." cannot slip it past, and in every encoding a server may
 * quote a header back in (percent, form, base64: secrets_enc.c) - and a
 * server's words are bounded, printable and valid UTF-8 before they reach
 * an error message. */
#include "secrets.h"
#include "secrets_enc.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

/* Keys under 6 bytes are left alone: no real key is that short, and
 * masking them would mangle any answer. */
#define KEY_MIN 6

static void add_needle(mq_secrets *s, char *str, size_t len, int b64)
{
    for (int i = 0; i < s->n; i++) {
        if (s->nlen[i] == len && memcmp(s->needle[i], str, len) == 0) {
            free(str);      /* the URL-safe run of a key with no '+' or '/' */
            return;
        }
    }
    s->needle[s->n] = str;
    s->nlen[s->n] = len;
    s->b64[s->n] = (unsigned char)b64;
    s->first[(unsigned char)str[0]] |= (unsigned short)(1u << s->n);
    s->n++;
    if (3 * len + 6 > s->span)
        s->span = 3 * len + 6;
}

/* Once per client: each key raw, then its base64 run at each byte phase
 * in each alphabet. */
static int build_needles(mq_secrets *s)
{
    for (int i = 0; i < 2; i++) {
        const unsigned char *k = (const unsigned char *)s->key[i];
        size_t kl = s->len[i];
        char *str;
        if (k == NULL || kl < KEY_MIN)
            continue;
        if ((str = malloc(kl)) == NULL)
            return -1;
        memcpy(str, k, kl);
        add_needle(s, str, kl, 0);
        for (int phase = 0; phase < 3; phase++) {
            for (int url = 0; url < 2; url++) {
                size_t n;
                if ((str = malloc(MQ_B64_RUN_ROOM(kl))) == NULL)
                    return -1;
                n = mq_b64_run(k, kl, phase, url, str);
                add_needle(s, str, n, 1);
            }
        }
    }
    return 0;
}

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
    if (build_needles(s) != 0) {
        mq_secrets_free(s);
        return -1;
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
    for (int i = 0; i < s->n; i++) {
        memset(s->needle[i], 0, s->nlen[i]);
        free(s->needle[i]);
        s->needle[i] = NULL;
    }
    s->n = 0;
    s->span = 0;
    memset(s->first, 0, sizeof s->first);
}

/* "%2B" or "%2F" (either case): a base64 '+' or '/' percent-encoded */
static int pct_b64(const char *q)
{
    return q[0] == '%' && q[1] == '2' && (q[2] == 'B' || q[2] == 'b' || q[2] == 'F' || q[2] == 'f');
}

/* the bytes of the base64 character just before p / at p, or 0 */
static size_t b64_before(const char *buf, size_t p)
{
    if (p >= 1 && mq_b64_char((unsigned char)buf[p - 1]))
        return 1;
    return p >= 3 && pct_b64(buf + p - 3) ? 3 : 0;
}

static size_t b64_at(const char *buf, size_t len, size_t p)
{
    if (p < len && mq_b64_char((unsigned char)buf[p]))
        return 1;
    return p + 3 <= len && pct_b64(buf + p) ? 3 : 0;
}

/* Masks buf[at, at + n), and for a base64 run the character either side
 * (they carry some of the key's bits); returns where the search goes on. */
static size_t mask_run(char *buf, size_t len, size_t at, size_t n, int b64)
{
    size_t from = at, to = at + n;
    if (b64) {
        from -= b64_before(buf, from);
        to += b64_at(buf, len, to);
    }
    memset(buf + from, '*', to - from);
    return to;
}

/* The needles as written, one after another: the needle's first byte
 * (memchr), then the rest - cheaper than memmem for the short strings (a
 * code, a URL) most calls hand on. A key that holds "%25" is found here. */
static void scrub_literal(const mq_secrets *s, char *buf, size_t len)
{
    for (int i = 0; i < s->n; i++) {
        const char *k = s->needle[i];
        size_t kl = s->nlen[i], p = 0;
        while (p + kl <= len) {
            const char *hit = memchr(buf + p, k[0], len - kl - p + 1);
            if (hit == NULL)
                break;
            p = (size_t)(hit - buf);
            if (memcmp(hit + 1, k + 1, kl - 1) == 0)
                p = mask_run(buf, len, p, kl, s->b64[i]);
            else
                p++;
        }
    }
}

/* One pass reading percent- and form-encoding: at each byte, the needles
 * that may start there - by its own value, or the byte a "%XX" or a '+'
 * stands for (first[]) - are matched decoding as they go. */
static void scrub_encoded(const mq_secrets *s, char *buf, size_t len)
{
    for (size_t p = 0; p < len;) {
        unsigned char c = (unsigned char)buf[p];
        unsigned mask = s->first[c];
        size_t next = p + 1;
        int hi, lo;
        if (c == '%' && p + 2 < len && (hi = mq_hexval(buf[p + 1])) >= 0
            && (lo = mq_hexval(buf[p + 2])) >= 0)
            mask |= s->first[hi * 16 + lo];
        else if (c == '+')
            mask |= s->first[' '];
        for (int i = 0; mask != 0 && i < s->n; i++) {
            size_t m;
            if ((mask & (1u << i)) != 0
                && (m = mq_enc_match(buf + p, len - p, s->needle[i], s->nlen[i])) != 0) {
                next = mask_run(buf, len, p, m, s->b64[i]);
                break;
            }
        }
        p = next;
    }
}

/* The literal pass, then - only when buf has a '%' or a '+', without which
 * it would find nothing more (most codes and URLs have neither) - the
 * decoding one. */
void mq_secrets_scrub(const mq_secrets *s, char *buf, size_t len)
{
    if (s->n == 0 || len == 0)
        return;
    scrub_literal(s, buf, len);
    if (memchr(buf, '%', len) != NULL || memchr(buf, '+', len) != NULL)
        scrub_encoded(s, buf, len);
}

size_t mq_secrets_show(const mq_secrets *s, const char *str, size_t len, char *out)
{
    char tmp[MQ_SHOW_MAX + MQ_SPAN_MAX];
    size_t keep = len, n;

    /* a key across the cut, in any encoding, is still whole in tmp, and
     * scrubbed there */
    if (keep > MQ_SHOW_MAX + s->span)
        keep = MQ_SHOW_MAX + s->span;
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
