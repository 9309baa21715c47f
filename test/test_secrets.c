/* test_secrets.c: table-driven tests of the scrub (secrets.c,
 * secrets_enc.c): each key, quoted back in each encoding a server may use,
 * is masked, and the words around it are not. Prints "N passed, N
 * failed"; exits non-zero on any failure. */
#include "secrets.h"
#include "secrets_enc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define KEY "AK-live-7f3a9c"
#define SECRET "SKs3cr3t/Zq+w=="

/* Written out by hand (Python's base64 and urllib.parse): in, then out. */
static const struct { const char *what, *in, *out; } ROWS[] = {
    { "raw", "key " KEY " secret " SECRET ".", "key ************** secret ***************." },
    { "percent, upper hex", "secret SKs3cr3t%2FZq%2Bw%3D%3D!", "secret ***********************!" },
    { "percent, lower hex", "secret SKs3cr3t%2fZq%2bw%3d%3d!", "secret ***********************!" },
    { "percent, every byte", "k=%41%4B%2D%6c%69%76%65%2D%37%66%33%61%39%63&",
      "k=******************************************&" },
    { "form", "secret=SKs3cr3t%2FZq%2Bw%3D%3D&x=1", "secret=***********************&x=1" },
    { "base64 of the key", "key QUstbGl2ZS03ZjNhOWM= end", "key *******************= end" },
    { "base64 of the secret, unpadded", "s=U0tzM2NyM3QvWnErdz09", "s=********************" },
    { "base64 of key:secret (Basic)", "Basic QUstbGl2ZS03ZjNhOWM6U0tzM2NyM3QvWnErdz09 no",
      "Basic **************************************** no" },
    { "base64, secret at byte phase 1", "eFNLczNjcjN0L1pxK3c9PQ==", "e*********************==" },
    { "base64, secret at byte phase 2", "eHlTS3MzY3IzdC9acSt3PT10YWls", "eH*********************0YWls" },
    { "base64, percent-encoded", "a=QUstbGl2ZS03ZjNhOWM6U0tzM2NyM3QvWnErdz09%3D",
      "a=****************************************%3D" },
    { "a false start, then the key", "AK-live-7fAK-live-7f3a9c", "AK-live-7f**************" },
    { "nothing to mask", "no keys here: QUJDREVG %41%42", "no keys here: QUJDREVG %41%42" },
};

/* An independent base64 encoder (whole string, padded). */
static size_t b64(const unsigned char *s, size_t n, int url, int pad, char *out)
{
    const char *a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0)
                     | (i + 2 < n ? s[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n || pad)
            out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        if (i + 2 < n || pad)
            out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/* Decodes what base64 is left (a '*' read as 'A', either alphabet) and
 * says whether the key is in it at any byte. */
static int b64_holds(const char *enc, size_t n, const char *key)
{
    unsigned char dec[512];
    size_t o = 0, kl = strlen(key);
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && o < sizeof dec; i++) {
        const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char c = enc[i] == '-' ? '+' : enc[i] == '_' ? '/' : enc[i] == '*' ? 'A' : enc[i];
        const char *p = c != '\0' ? strchr(a, c) : NULL;
        if (p == NULL)
            break;
        acc = acc << 6 | (unsigned)(p - a);
        if ((bits += 6) >= 8) {
            dec[o++] = (unsigned char)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    for (size_t i = 0; i + kl <= o; i++)
        if (memcmp(dec + i, key, kl) == 0)
            return 1;
    return 0;
}

/* Every phase (0..2 bytes before), both alphabets, padded or not, of the
 * key, the secret and "key:secret": after the scrub, no key decodes out,
 * and at most the run plus a character either side was masked. */
static void test_base64_phases(const mq_secrets *s)
{
    static const char *const what[] = { KEY, SECRET, KEY ":" SECRET };
    static const char *const before[] = { "", "x", "xy", "xyz", "wxyz" };
    for (size_t w = 0; w < 3; w++)
        for (size_t b = 0; b < 5; b++)
            for (int url = 0; url < 2; url++)
                for (int pad = 0; pad < 2; pad++) {
                    char plain[128], enc[256], got[256], label[64];
                    size_t n = (size_t)snprintf(plain, sizeof plain, "%s%s!?", before[b], what[w]);
                    size_t en = b64((const unsigned char *)plain, n, url, pad, enc);
                    size_t stars = 0;
                    memcpy(got, enc, en + 1);
                    mq_secrets_scrub(s, got, en);
                    for (size_t i = 0; i < en; i++)
                        stars += got[i] == '*';
                    snprintf(label, sizeof label, "base64 w%zu phase %zu url %d pad %d", w, b % 3, url, pad);
                    check(!b64_holds(got, en, KEY) && !b64_holds(got, en, SECRET), label, enc, got);
                    check(stars > 0 && stars <= (strlen(what[w]) * 4) / 3 + 3, label, enc, got);
                    /* the bytes before the key are still readable */
                    check(b == 0 || got[0] != '*', label, enc, got);
                }
}

/* Needles come from the keys once; short keys are left alone. */
static void test_init(void)
{
    mq_secrets s;
    char buf[64];
    check(mq_secrets_init(&s, "abc", NULL) == 0 && s.n == 0, "short key: no needle", "abc", "");
    memcpy(buf, "abc YWJj", 9);
    mq_secrets_scrub(&s, buf, 8);
    check(strcmp(buf, "abc YWJj") == 0, "a key under 6 bytes is left alone", "abc YWJj", buf);
    mq_secrets_free(&s);
    check(s.n == 0 && s.key[0] == NULL, "free: nothing kept", "", "");
    mq_secrets_free(&s);        /* idempotent */
    check(mq_secrets_init(&s, "k+y sp ace", NULL) == 0, "init", "", "");
    memcpy(buf, "q=k%2By+sp%20ace&", 18);
    mq_secrets_scrub(&s, buf, 17);
    check(strcmp(buf, "q=**************&") == 0, "form: '+' for a space, %2B for '+'",
          "q=k%2By+sp%20ace&", buf);
    mq_secrets_free(&s);
}

int main(void)
{
    mq_secrets s;
    char buf[256];
    if (mq_secrets_init(&s, KEY, SECRET) != 0) {
        printf("FAIL: mq_secrets_init\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof ROWS / sizeof *ROWS; i++) {
        size_t n = strlen(ROWS[i].in);
        memcpy(buf, ROWS[i].in, n + 1);
        mq_secrets_scrub(&s, buf, n);
        check(strcmp(buf, ROWS[i].out) == 0, ROWS[i].what, ROWS[i].in, buf);
    }
    test_base64_phases(&s);
    mq_secrets_free(&s);
    test_init();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
