/* bench/limiter.c: cost and accuracy of the shared rate limiter (limiter.c)
 * from C, in one process, in two threads sharing one handle, and in two
 * processes on one key. Run by bench/limiter.sh (`make bench-limiter`).
 *
 *   limiter DIR [SECONDS]     (SECONDS per timed run, default 1)
 *
 * Cost: a per_minute so high it never refuses (1,000,000 per 1 ms), so
 * every call is an admission: fstat (the file still whole), clock, one CAS
 * on the ring slot, the GCRA and seq CASes. "exact" is the file's own
 * admission counter (seq) against the sum of what the callers were told. Accuracy: saturating runs (demand far above the limit),
 * checked on the limiter's own timestamps: the most starts in any window
 * of period (must be <= per_minute) and the share of the budget used over
 * whole windows from the first start (must be >= 99%). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "limiter_file.h"

#define NS 1000000000LL
#define MAX_LOG 200000          /* accuracy runs log at most this many */

static const char *dir;
static double secs = 1.0;

static mq_limiter *open_key(const char *key, long per_minute, long burst, double period)
{
    mq_limiter_cfg cfg = { per_minute, burst, period, key, dir, -1 };
    mq_limiter *l;
    char err[512];

    if (mq_limiter_open(&cfg, &l, err, sizeof err) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    return l;
}

typedef struct {
    mq_limiter *l;
    int blocking;           /* acquire (sleeps) or try (spins) */
    int64_t until;
    long calls, admitted;
    int64_t *log;           /* admitted start times, or NULL */
    long *nlog;             /* shared count of log entries */
} job;

static void *run(void *p)
{
    job *j = p;
    double wait, waited, retry;
    int64_t at;

    while (mq_rl_now_ns() < j->until) {
        int i, ok = 0;
        for (i = 0; i < 64; i++) {      /* the clock check off the hot path */
            ok = j->blocking ? mq_limiter_acquire_at(j->l, 0.2, &waited, &retry, &at)
                             : mq_limiter_try_at(j->l, &wait, &at);
            j->calls++;
            if (ok) {
                j->admitted++;
                if (j->log) {
                    long k = __atomic_fetch_add(j->nlog, 1, __ATOMIC_RELAXED);
                    if (k < MAX_LOG) j->log[k] = at;
                }
            }
            if (j->log && !ok) break;
        }
    }
    return NULL;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* nproc processes (fork) or nthr threads of one process, on one key.
 * Returns 0, or 1 when a count or a rule was wrong. */
static int measure(const char *name, const char *key, long per_minute, long burst,
                   double period, int nproc, int nthr, int blocking, double run_s, int check)
{
    mq_limiter *l = open_key(key, per_minute, burst, period);
    size_t shsz = sizeof(long) * 4 + sizeof(int64_t) * MAX_LOG;
    long *sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int64_t *log, start, elapsed, until;
    uint64_t before, after;
    int i, n = nproc > 1 ? nproc : nthr, bad = 0;

    if (sh == MAP_FAILED) { perror("bench: mmap"); exit(1); }
    log = (int64_t *)(sh + 4);
    before = __atomic_load_n(&l->h->seq, __ATOMIC_ACQUIRE);
    start = mq_rl_now_ns();
    until = start + (int64_t)(run_s * NS);
    if (nproc > 1) {
        for (i = 0; i < nproc; i++) {
            pid_t pid = fork();
            if (pid < 0) { perror("bench: fork"); exit(1); }
            if (pid == 0) {
                mq_limiter *c = open_key(key, per_minute, burst, period);
                job j = { c, blocking, until, 0, 0, check ? log : NULL, &sh[2] };
                run(&j);
                __atomic_fetch_add(&sh[0], j.calls, __ATOMIC_RELAXED);
                __atomic_fetch_add(&sh[1], j.admitted, __ATOMIC_RELAXED);
                mq_limiter_close(c);
                _exit(0);
            }
        }
        for (i = 0; i < nproc; i++) {
            int st;
            if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "bench: a worker failed\n");
                exit(1);
            }
        }
    } else {
        pthread_t t[8];
        job j[8];
        for (i = 0; i < nthr && i < 8; i++) {
            job z = { l, blocking, until, 0, 0, check ? log : NULL, &sh[2] };
            j[i] = z;
            if (pthread_create(&t[i], NULL, run, &j[i]) != 0) { perror("bench: thread"); exit(1); }
        }
        for (i = 0; i < nthr && i < 8; i++) {
            pthread_join(t[i], NULL);
            sh[0] += j[i].calls;
            sh[1] += j[i].admitted;
        }
    }
    elapsed = mq_rl_now_ns() - start;
    after = __atomic_load_n(&l->h->seq, __ATOMIC_ACQUIRE);
    bad |= (long)(after - before) != sh[1];
    if (check)                          /* calls spent waiting: no cost figure */
        printf("%-30s %d %-8s admitted %ld, file counted %ld: %s\n",
               name, n, nproc > 1 ? "process" : (n > 1 ? "threads" : "thread"),
               sh[1], (long)(after - before), bad ? "MISMATCH" : "exact");
    else
        printf("%-30s %d %-8s %7.1f ns/call %11.0f calls/s  admitted %ld, file counted %ld: %s\n",
               name, n, nproc > 1 ? "process" : (n > 1 ? "threads" : "thread"),
               (double)elapsed * n / (double)sh[0], sh[0] * 1e9 / (double)elapsed,
               sh[1], (long)(after - before), bad ? "MISMATCH" : "exact");
    if (check) {
        long nlog = sh[2] < MAX_LOG ? sh[2] : MAX_LOG, k, a, best = 0, used = 0;
        int64_t P = (int64_t)(period * NS), t0;
        int whole = (int)((run_s - 0.2) / period);  /* windows fully under demand */

        qsort(log, (size_t)nlog, sizeof *log, cmp64);
        for (k = 0, a = 0; k < nlog; k++) {
            while (log[k] - log[a] >= P) a++;
            if (k - a + 1 > best) best = k - a + 1;
        }
        t0 = nlog ? log[0] : 0;
        for (k = 0; k < nlog; k++) used += log[k] < t0 + whole * P;
        printf("    per_minute=%ld burst=%ld period=%gs: max in any window %ld (%s), "
               "used %ld of %ld in %d windows = %.2f%% (%s)\n",
               per_minute, burst, period, best, best <= per_minute ? "<= limit" : "EXCEEDED",
               used, per_minute * whole, whole, 100.0 * used / (double)(per_minute * whole),
               used >= 0.99 * per_minute * whole ? ">= 99%" : "UNDER 99%");
        bad |= best > per_minute || used < 0.99 * per_minute * whole;
    }
    munmap(sh, shsz);
    mq_limiter_close(l);
    return bad;
}

int main(int argc, char **argv)
{
    char key[64];
    int bad = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [SECONDS]\n", argv[0]);
        return 1;
    }
    dir = argv[1];
    if (argc > 2) secs = atof(argv[2]);
    if (!(secs > 0 && secs <= 30)) secs = 1;
    snprintf(key, sizeof key, "bench-%ld", (long)getpid());

    printf("cost (a limit it never reaches: every call admits)\n");
    bad |= measure("try, uncontended", key, 1000000, 1000000, 0.001, 1, 1, 0, secs, 0);
    bad |= measure("acquire, uncontended", key, 1000000, 1000000, 0.001, 1, 1, 1, secs, 0);
    bad |= measure("try, one handle", key, 1000000, 1000000, 0.001, 1, 2, 0, secs, 0);
    bad |= measure("try, one key", key, 1000000, 1000000, 0.001, 2, 1, 0, secs, 0);
    bad |= measure("acquire, one key", key, 1000000, 1000000, 0.001, 2, 1, 1, secs, 0);
    printf("cost of a refusal (limit reached: try says how long to wait)\n");
    snprintf(key, sizeof key, "bench-full-%ld", (long)getpid());
    bad |= measure("try, refused", key, 1, 1, 3600, 1, 1, 0, secs, 0);
    printf("accuracy (saturating demand, 3 windows + slack each)\n");
    snprintf(key, sizeof key, "bench-acc1-%ld", (long)getpid());
    bad |= measure("acquire, saturating", key, 600, 60, 1, 2, 1, 1, 3.3, 1);
    snprintf(key, sizeof key, "bench-acc2-%ld", (long)getpid());
    bad |= measure("try spin, saturating", key, 600, 60, 1, 2, 1, 0, 3.3, 1);
    snprintf(key, sizeof key, "bench-acc3-%ld", (long)getpid());
    bad |= measure("acquire, saturating, burst=all", key, 1000, 1000, 1, 4, 1, 1, 3.3, 1);
    snprintf(key, sizeof key, "bench-acc4-%ld", (long)getpid());
    bad |= measure("acquire, saturating, threads", key, 600, 60, 1, 1, 4, 1, 3.3, 1);
    printf(bad ? "FAILED: a count or a rule was wrong\n" : "all counts exact, all rules held\n");
    return bad;
}
