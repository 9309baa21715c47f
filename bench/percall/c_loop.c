/* c_loop.c: the physical limit for a libcurl client - the same POST as
 * client:create, in a C loop over one reused easy handle (keep-alive on one
 * connection), with the same headers and body, and the answer collected in
 * a buffer and its status checked. No JSON work: that is the point.
 *
 *   c_loop URL BODY N MAX_SECONDS [readfunc]  ->  "ok CALLS SECONDS" on stdout
 *
 * With "readfunc" the body goes through CURLOPT_READFUNCTION instead of
 * CURLOPT_POSTFIELDS, as src/transport.c sent it before it switched to CURLOPT_POSTFIELDS: libcurl then writes the
 * headers and the body in two send()s, and the difference is that cost.
 *
 * Every call must answer 200 or the run fails (exit 1): a figure for
 * requests that did not succeed would mean nothing. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char buf[4096];
    size_t len;
} sink;

typedef struct {
    const char *data;
    size_t len, off;
} source;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t add = size * n;
    if (add > sizeof s->buf - 1 - s->len)
        return 0;       /* more than a fixed answer: fail the transfer */
    memcpy(s->buf + s->len, data, add);
    s->len += add;
    s->buf[s->len] = '\0';
    return add;
}

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    source *src = ud;
    size_t want = size * n;
    if (want > src->len - src->off)
        want = src->len - src->off;
    memcpy(dst, src->data + src->off, want);
    src->off += want;
    return want;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define SET(opt, val) do { \
        if (curl_easy_setopt(easy, opt, val) != CURLE_OK) { \
            fprintf(stderr, "c_loop: curl_easy_setopt(%s) failed\n", #opt); \
            goto out; \
        } \
    } while (0)

int main(int argc, char **argv)
{
    static const char *const headers[] = {
        "X-API-Key: sandbox-key", "X-Secret-Key: sandbox-secret",
        "Accept: application/json", "Content-Type: application/json", "Expect:",
    };
    CURL *easy = NULL;
    struct curl_slist *hl = NULL;
    sink s;
    source src;
    int readfunc;
    long n, done = 0;
    double cap, t0, t1 = 0;
    int rc = 1;

    if (argc < 5 || argc > 6 || (n = atol(argv[3])) <= 0 || (cap = atof(argv[4])) <= 0
        || (argc == 6 && strcmp(argv[5], "readfunc") != 0)) {
        fprintf(stderr, "usage: c_loop URL BODY N MAX_SECONDS [readfunc]\n");
        return 2;
    }
    readfunc = argc == 6;
    src.data = argv[2];
    src.len = strlen(argv[2]);
    src.off = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "c_loop: curl_global_init failed\n");
        return 1;
    }
    easy = curl_easy_init();
    if (easy == NULL) {
        fprintf(stderr, "c_loop: curl_easy_init failed\n");
        goto out;
    }
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        struct curl_slist *nl = curl_slist_append(hl, headers[i]);
        if (nl == NULL) {
            fprintf(stderr, "c_loop: out of memory\n");
            goto out;
        }
        hl = nl;
    }
    SET(CURLOPT_URL, argv[1]);
    SET(CURLOPT_HTTPHEADER, hl);
    SET(CURLOPT_USERAGENT, "c_loop/1 (libcurl)");
    SET(CURLOPT_POST, 1L);
    if (readfunc) {
        SET(CURLOPT_READFUNCTION, on_read);
        SET(CURLOPT_READDATA, &src);
    } else {
        SET(CURLOPT_POSTFIELDS, argv[2]);
    }
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)src.len);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TIMEOUT_MS, 10000L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &s);

    t0 = now();
    while (done < n) {
        long status = 0;
        CURLcode cr;
        s.len = 0;
        src.off = 0;
        cr = curl_easy_perform(easy);
        if (cr != CURLE_OK) {
            fprintf(stderr, "c_loop: call %ld: %s\n", done + 1, curl_easy_strerror(cr));
            goto out;
        }
        if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK
            || status != 200 || s.len == 0) {
            fprintf(stderr, "c_loop: call %ld: status %ld, %zu bytes\n", done + 1, status, s.len);
            goto out;
        }
        done++;
        /* the time cap, checked every 64 calls (as common.lua does) */
        if (done % 64 == 0 && now() - t0 > cap)
            break;
    }
    t1 = now();
    printf("ok %ld %.6f\n", done, t1 - t0);
    rc = 0;
out:
    if (easy)
        curl_easy_cleanup(easy);
    curl_slist_free_all(hl);
    curl_global_cleanup();
    return rc;
}
