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
 * rename() (its counts are lost: these are statistics, not state). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "metrics.h"

#define MX_MAGIC   "MQMETRC"            /* 7 chars + NUL = 8 bytes */
#define MX_VERSION 2u            /* 2: the config kind */
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
    if (!header_ok(map, key_hash)) {
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
    key_hash = mq_fnv1a64(key);
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

void mq_metrics_add(mq_metrics *m, int op, int kind, double latency, long attempts,
                    long retries, long limiter_waits, double limiter_wait_seconds)
{
    mx_file *f = m->f;
    int b = 0;

    if (op < 0 || op >= MQ_MX_OPS || kind < 0 || kind >= MQ_MX_KINDS)
        return;
    if (!(latency >= 0))
        latency = 0;
    while (b < MQ_MX_BUCKETS - 1 && latency > mq_metrics_bounds[b])
        b++;
    add(&f->calls[op][kind], 1);
    add(&f->attempts, attempts > 0 ? (uint64_t)attempts : 0);
    add(&f->retries, retries > 0 ? (uint64_t)retries : 0);
    add(&f->limiter_waits, limiter_waits > 0 ? (uint64_t)limiter_waits : 0);
    add(&f->limiter_wait_us, micros(limiter_wait_seconds));
    add(&f->buckets[b], 1);
    add(&f->latency_sum_us, micros(latency));
    add(&f->latency_count, 1);
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void mq_metrics_snapshot(mq_metrics *m, mq_metrics_snap *s)
{
    const mx_file *f = m->f;

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
