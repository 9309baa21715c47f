/* metrics.c: host-wide call counters in a shared file.
 *
 * <dir>/mediquo-mx-<fnv1a64(key) hex>.shm, mode 0600 owned by us (or 0660
 * of the limiter's `group`, shmfile.c), its space reserved at creation: a
 * header (magic, version, sizes, key hash) and then plain uint64 counters.
 * Every update is one __atomic add on the mapping, so workers, threads and
 * other processes count together without a lock, and a process killed
 * mid-call can never leave anything locked or half-written. A new file is
 * made whole under a temporary name and link()ed into place, so no one maps
 * a file without its header; a file that fails the checks is replaced by
 * rename() (its counts are lost: these are statistics, not state).
 * Every access to the mapping runs under the SIGBUS guard (shmguard.c): a
 * file cut short under us (truncate, a disk that lost it) makes add and
 * snapshot return -1 with the reason, and the next call maps the file
 * again (made anew when it has to be). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "metrics.h"
#include "shmguard.h"

#define MX_MAGIC   "MQMETRC"            /* 7 chars + NUL = 8 bytes */
#define MX_VERSION 3u            /* 2: the config kind; 3: too_large */
#define OPEN_TRIES 8

typedef struct {
    char     magic[8];
    uint32_t version;
    uint32_t hdr_size;
    uint64_t file_size;
    uint64_t key_hash;
    char     pad[32];
} mx_hdr;

typedef struct {
    mx_hdr   h;
    uint64_t calls[MQ_MX_OPS][MQ_MX_KINDS];
    uint64_t attempts, retries, limiter_waits;
    uint64_t limiter_wait_us;           /* microseconds: integers add atomically */
    uint64_t buckets[MQ_MX_BUCKETS];
    uint64_t latency_sum_us, latency_count;
} mx_file;

typedef char hdr_is_64[sizeof(mx_hdr) == 64 ? 1 : -1];

struct mq_metrics {
    mx_file *f;
    char *path;
    uint64_t key_hash;
    long gid;
    int broken;                 /* the mapping faulted: map the file again */
    char err[300];              /* why the last add/snapshot failed */
};

const double mq_metrics_bounds[MQ_MX_BUCKETS - 1] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

static int header_ok(const mx_hdr *h, uint64_t key_hash)
{
    return memcmp(h->magic, MX_MAGIC, sizeof h->magic) == 0 && h->version == MX_VERSION
        && h->hdr_size == sizeof *h && h->file_size == sizeof(mx_file)
        && h->key_hash == key_hash;
}

/* The header of a new (zeroed) file. */
static int init_header(int fd, void *ud)
{
    mx_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MX_MAGIC, sizeof h.magic);
    h.version = MX_VERSION;
    h.hdr_size = sizeof h;
    h.file_size = sizeof(mx_file);
    h.key_hash = *(const uint64_t *)ud;
    return pwrite(fd, &h, sizeof h, 0) == (ssize_t)sizeof h ? 0 : -1;
}

static int make_file(const char *path, uint64_t key_hash, int replace, long gid,
                     char *err, size_t errlen)
{
    return mq_shm_make(path, "metrics file", sizeof(mx_file), replace, gid, init_header,
                       &key_hash, err, errlen);
}

/* header_ok on a fresh mapping, which another process may cut short
 * between our fstat and this read: a fault reads as "not sound" */
static int guarded_header_ok(const mx_hdr *h, uint64_t key_hash)
{
    sigjmp_buf env;
    sigjmp_buf *volatile prev = mq_shm_guard_enter(&env);
    int ok;

    if (sigsetjmp(env, 0) != 0) {
        mq_shm_guard_leave(prev);
        return 0;
    }
    ok = header_ok(h, key_hash);
    mq_shm_guard_leave(prev);
    return ok;
}

/* Opens path and maps it when it is ours and sound: 0 done, 1 try again
 * (made or replaced meanwhile), -1 error. */
static int open_once(mq_metrics *m, uint64_t key_hash, long gid, char *err, size_t errlen)
{
    uint64_t size;
    void *map;
    int fd = mq_shm_open(m->path, "metrics file", gid, &size, err, errlen);

    if (fd == -2)
        return make_file(m->path, key_hash, 0, gid, err, errlen) != 0 && errno != EEXIST ? -1 : 1;
    if (fd < 0)
        return -1;
    if (size != sizeof(mx_file)) {
        close(fd);
        return make_file(m->path, key_hash, 1, gid, err, errlen) != 0 ? -1 : 1;
    }
    map = mmap(NULL, sizeof(mx_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "metrics file %s: cannot map: %s", m->path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!guarded_header_ok(map, key_hash)) {
        munmap(map, sizeof(mx_file));
        close(fd);
        return make_file(m->path, key_hash, 1, gid, err, errlen) != 0 ? -1 : 1;
    }
    close(fd);                  /* the mapping outlives it */
    m->f = map;
    return 0;
}

int mq_metrics_open(const char *key, const char *dir, long gid, mq_metrics **out,
                    char *err, size_t errlen)
{
    mq_metrics *m;
    uint64_t key_hash;
    int rc = 1;

    *out = NULL;
    if (key == NULL || key[0] == '\0' || dir == NULL || dir[0] == '\0') {
        snprintf(err, errlen, "metrics: key and dir must be non-empty strings");
        return -1;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL || (m->path = mq_shm_path(dir, "mx", key)) == NULL) {
        free(m);
        snprintf(err, errlen, "metrics: out of memory");
        return -1;
    }
    if (mq_shm_guard_init() != 0) {
        snprintf(err, errlen, "metrics: cannot install the SIGBUS guard");
        mq_metrics_close(m);
        return -1;
    }
    key_hash = mq_fnv1a64(key);
    m->key_hash = key_hash;
    m->gid = gid;
    for (int tries = 0; tries < OPEN_TRIES && rc == 1; tries++)
        rc = open_once(m, key_hash, gid, err, errlen);
    if (rc == 0) {
        *out = m;
        return 0;
    }
    if (rc == 1)
        snprintf(err, errlen, "metrics file %s: kept changing while opening it", m->path);
    mq_metrics_close(m);
    return -1;
}

static void add(uint64_t *p, uint64_t v)
{
    if (v)
        __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t micros(double s)
{
    return s > 0 && s < 1e12 ? (uint64_t)(s * 1e6 + 0.5) : 0;
}

/* A mapping that faulted: unmapped, and the file opened again (made anew
 * when it is gone or not sound). 0, or -1 with m->err. */
static int remap(mq_metrics *m)
{
    int rc = 1;

    if (m->f != NULL)
        munmap(m->f, sizeof(mx_file));
    m->f = NULL;
    for (int tries = 0; tries < OPEN_TRIES && rc == 1; tries++)
        rc = open_once(m, m->key_hash, m->gid, m->err, sizeof m->err);
    if (rc == 1)
        snprintf(m->err, sizeof m->err, "metrics file %s: kept changing while opening it", m->path);
    if (rc != 0)
        return -1;
    m->broken = 0;
    return 0;
}

static void cut_short(mq_metrics *m)
{
    snprintf(m->err, sizeof m->err, "metrics file %s: cut short under this process "
             "(truncated by someone, or its disk lost it); the next call maps it again",
             m->path);
    m->broken = 1;
}

struct add_args {
    int op, kind, bucket;
    uint64_t attempts, retries, waits, wait_us, latency_us;
};

static void add_all(mx_file *f, const struct add_args *a)
{
    add(&f->calls[a->op][a->kind], 1);
    add(&f->attempts, a->attempts);
    add(&f->retries, a->retries);
    add(&f->limiter_waits, a->waits);
    add(&f->limiter_wait_us, a->wait_us);
    add(&f->buckets[a->bucket], 1);
    add(&f->latency_sum_us, a->latency_us);
    add(&f->latency_count, 1);
}

int mq_metrics_add(mq_metrics *m, int op, int kind, double latency, long attempts,
                   long retries, long limiter_waits, double limiter_wait_seconds)
{
    struct add_args a;
    sigjmp_buf env;
    sigjmp_buf *volatile prev;

    if (op < 0 || op >= MQ_MX_OPS || kind < 0 || kind >= MQ_MX_KINDS)
        return 0;
    if (!(latency >= 0))
        latency = 0;
    a.op = op;
    a.kind = kind;
    a.bucket = 0;
    while (a.bucket < MQ_MX_BUCKETS - 1 && latency > mq_metrics_bounds[a.bucket])
        a.bucket++;
    a.attempts = attempts > 0 ? (uint64_t)attempts : 0;
    a.retries = retries > 0 ? (uint64_t)retries : 0;
    a.waits = limiter_waits > 0 ? (uint64_t)limiter_waits : 0;
    a.wait_us = micros(limiter_wait_seconds);
    a.latency_us = micros(latency);
    if (m->broken && remap(m) != 0)
        return -1;
    prev = mq_shm_guard_enter(&env);
    if (sigsetjmp(env, 0) != 0) {
        mq_shm_guard_leave(prev);
        cut_short(m);           /* this call's counts are lost */
        return -1;
    }
    add_all(m->f, &a);
    mq_shm_guard_leave(prev);
    return 0;
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void read_all(const mx_file *f, mq_metrics_snap *s)
{
    for (int o = 0; o < MQ_MX_OPS; o++)
        for (int k = 0; k < MQ_MX_KINDS; k++)
            s->calls[o][k] = load(&f->calls[o][k]);
    s->attempts = load(&f->attempts);
    s->retries = load(&f->retries);
    s->limiter_waits = load(&f->limiter_waits);
    s->limiter_wait_seconds = (double)load(&f->limiter_wait_us) / 1e6;
    for (int b = 0; b < MQ_MX_BUCKETS; b++)
        s->buckets[b] = load(&f->buckets[b]);
    s->latency_sum = (double)load(&f->latency_sum_us) / 1e6;
    s->latency_count = load(&f->latency_count);
}

int mq_metrics_snapshot(mq_metrics *m, mq_metrics_snap *s)
{
    sigjmp_buf env;
    sigjmp_buf *volatile prev;

    memset(s, 0, sizeof *s);
    if (m->broken && remap(m) != 0)
        return -1;
    prev = mq_shm_guard_enter(&env);
    if (sigsetjmp(env, 0) != 0) {
        mq_shm_guard_leave(prev);
        cut_short(m);
        memset(s, 0, sizeof *s);
        return -1;
    }
    read_all(m->f, s);
    mq_shm_guard_leave(prev);
    return 0;
}

const char *mq_metrics_error(const mq_metrics *m)
{
    return m->err;
}

const char *mq_metrics_path(const mq_metrics *m)
{
    return m->path;
}

void mq_metrics_close(mq_metrics *m)
{
    if (m == NULL)
        return;
    if (m->f != NULL)
        munmap(m->f, sizeof(mx_file));
    free(m->path);
    free(m);
}
