/* c_transport.c: the client's own transport (src/transport.c: its options,
 * callbacks and header parsing) in a C loop, with no Lua -
 * between c_loop.c (bare libcurl) and client:create, it shows what the
 * transport adds and what the Lua binding and the create's own work add.
 *
 *   c_transport URL BODY N MAX_SECONDS  ->  "ok CALLS SECONDS" on stdout
 *
 * Every call must answer 200 or the run fails (exit 1). */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    mq_transport_cfg cfg = { "sandbox-key", "sandbox-secret", NULL, NULL, 0 };
    mq_transport *t = NULL;
    mq_response r;
    char err[256];
    long n, done = 0;
    double cap, t0, t1;
    size_t blen;

    if (argc != 5 || (n = atol(argv[3])) <= 0 || (cap = atof(argv[4])) <= 0) {
        fprintf(stderr, "usage: c_transport URL BODY N MAX_SECONDS\n");
        return 2;
    }
    if (mq_transport_new(&cfg, &t, err, sizeof err) != 0) {
        fprintf(stderr, "c_transport: %s\n", err);
        return 1;
    }
    blen = strlen(argv[2]);
    t0 = t1 = now();
    while (done < n) {
        mq_transport_perform(t, "POST", argv[1], argv[2], blen, 10, 3, &r);
        if (r.outcome != MQ_T_OK || r.status != 200 || r.body_len == 0) {
            fprintf(stderr, "c_transport: call %ld: outcome %d, status %ld: %s\n", done + 1,
                    (int)r.outcome, r.status, r.message);
            mq_transport_free(t);
            return 1;
        }
        done++;
        /* the time cap, checked every 64 calls (as common.lua does) */
        if (done % 64 == 0 && now() - t0 > cap)
            break;
    }
    t1 = now();
    printf("ok %ld %.6f\n", done, t1 - t0);
    mq_transport_free(t);
    return 0;
}
