/* limiter_file.c: the shared state file of the rate limiter: its name, its
 * race-free creation, the checks before it is trusted, its mapping.
 *
 * <dir>/mediquo-rl-<fnv1a64(key) hex>.shm, mode 0600, owned by us. A new
 * file is made whole under a temporary name and then link()ed into place,
 * so no process ever maps a half-made file; when many race, one link wins
 * and the others open the winner's. A file that fails the checks (wrong
 * magic, older version, truncated, garbage) is re-made the same way with
 * rename(), by whichever process first holds flock() on the bad file while
 * the name still points at it, so only one replacement is made. A file
 * that is not ours to re-make (another owner, other permission bits, not
 * a regular file, a newer library's version) is an error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "limiter_file.h"

#define OPEN_TRIES 8            /* another process re-made it meanwhile */
#define MAX_PERIOD_S 86400.0

typedef char hdr_is_256[sizeof(mq_rl_hdr) == 256 ? 1 : -1];
typedef char mutex_fits[sizeof(pthread_mutex_t) <= 64 ? 1 : -1];

void mq_rl_boot_id(char out[MQ_RL_BOOT_LEN])
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = 0;

    memset(out, 0, MQ_RL_BOOT_LEN);
    if (fd < 0) return;
    n = read(fd, out, MQ_RL_BOOT_LEN - 1);
    close(fd);
    if (n < 0) n = 0;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0')) n--;
    memset(out + n, 0, (size_t)(MQ_RL_BOOT_LEN - n));
}

int mq_limiter_check_header(const void *buf, size_t len, char *err, size_t errlen)
{
    mq_rl_hdr h;

    if (buf == NULL || len < sizeof h) {
        snprintf(err, errlen, "truncated: %zu bytes, the header alone is %zu", len, sizeof h);
        return -1;
    }
    memcpy(&h, buf, sizeof h);          /* buf may be unaligned */
    if (memcmp(h.magic, MQ_RL_MAGIC, sizeof h.magic) != 0) {
        snprintf(err, errlen, "bad magic: not a mediquo limiter file");
        return -1;
    }
    if (h.version != MQ_RL_VERSION) {
        snprintf(err, errlen, "version %" PRIu32 ", this library reads version %u",
                 h.version, MQ_RL_VERSION);
        return -1;
    }
    if (h.hdr_size != sizeof h || h.ring_cap != (uint64_t)MQ_RL_MAX_PER_MIN
        || h.file_size != MQ_RL_FILE_SIZE) {
        snprintf(err, errlen, "inconsistent sizes (header %" PRIu32 ", ring %" PRIu64
                 ", file %" PRIu64 ")", h.hdr_size, h.ring_cap, h.file_size);
        return -1;
    }
    if ((uint64_t)len != h.file_size) {
        snprintf(err, errlen, "truncated or padded: %zu bytes, header says %" PRIu64,
                 len, h.file_size);
        return -1;
    }
    return 0;
}

static int fail(char *err, size_t errlen, const char *what, const char *path)
{
    snprintf(err, errlen, "limiter file %s: %s: %s", path, what, strerror(errno));
    return -1;
}

struct init_args {
    const mq_limiter_cfg *cfg;
    const char *boot;
};

/* The header of a new file, with its process-shared robust mutex. */
static int init_header(int fd, void *ud)
{
    const struct init_args *a = ud;
    pthread_mutexattr_t ma;
    mq_rl_hdr *h;
    int rc;

    h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED)
        return -1;
    memcpy(h->magic, MQ_RL_MAGIC, sizeof h->magic);
    h->version = MQ_RL_VERSION;
    h->hdr_size = sizeof *h;
    h->ring_cap = MQ_RL_MAX_PER_MIN;
    h->file_size = MQ_RL_FILE_SIZE;
    h->key_hash = mq_fnv1a64(a->cfg->key);
    memcpy(h->boot_id, a->boot, MQ_RL_BOOT_LEN);
    h->per_minute = a->cfg->per_minute;
    h->burst = a->cfg->burst;
    h->period_ns = (int64_t)(a->cfg->period * 1e9);
    rc = pthread_mutexattr_init(&ma);
    if (rc == 0) {
        if ((rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) == 0
            && (rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) == 0)
            rc = pthread_mutex_init(&h->lock.mu, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    munmap(h, sizeof *h);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* A complete file put at path: link() (EEXIST when another process won the
 * race) or, to replace a bad file, rename(). */
static int make_file(const char *path, const mq_limiter_cfg *cfg, const char *boot,
                     int replace, char *err, size_t errlen)
{
    struct init_args a = { cfg, boot };
    return mq_shm_make(path, "limiter file", MQ_RL_FILE_SIZE, replace, init_header, &a,
                       err, errlen);
}

/* The file at fd failed the checks: replace it, unless another process
 * already did (the name no longer points at it). */
static int remake(int fd, const char *path, const mq_limiter_cfg *cfg, const char *boot,
                  char *err, size_t errlen)
{
    struct stat a, b;
    int i, rc = 0;

    for (i = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        if (errno != EWOULDBLOCK && errno != EINTR) return fail(err, errlen, "cannot flock", path);
        if (i >= 100) {
            snprintf(err, errlen, "limiter file %s: bad and locked by another process", path);
            return -1;
        }
        nanosleep(&ts, NULL);
    }
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        rc = make_file(path, cfg, boot, 1, err, errlen);
    flock(fd, LOCK_UN);
    return rc;
}

/* A newer library's file is left alone: re-making it would split the
 * budget between the two libraries' processes without either knowing. */
static int newer_version(int fd)
{
    mq_rl_hdr h;
    return pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h
        && memcmp(h.magic, MQ_RL_MAGIC, sizeof h.magic) == 0
        && h.version > MQ_RL_VERSION;
}

static int check_cfg(const mq_limiter_cfg *cfg, char *err, size_t errlen)
{
    const char *why = NULL;

    if (cfg->per_minute < 1 || cfg->per_minute > MQ_RL_MAX_PER_MIN)
        why = "per_minute must be 1..1000000";
    else if (cfg->burst < 1 || cfg->burst > cfg->per_minute)
        why = "burst must be 1..per_minute";
    else if (!(cfg->period > 0 && cfg->period <= MAX_PERIOD_S) || cfg->period * 1e9 < cfg->per_minute)
        why = "period must be > 0 and <= 86400 seconds (and >= per_minute ns)";
    else if (cfg->key == NULL || cfg->key[0] == '\0')
        why = "key must be a non-empty string";
    else if (cfg->dir == NULL || cfg->dir[0] == '\0')
        why = "dir must be a non-empty string";
    if (why) snprintf(err, errlen, "limiter: %s", why);
    return why ? -1 : 0;
}

int mq_rl_file_open(const mq_limiter_cfg *cfg, mq_limiter *l, char *err, size_t errlen)
{
    char boot[MQ_RL_BOOT_LEN], why[160];
    int tries;

    if (check_cfg(cfg, err, errlen) != 0) return -1;
    mq_rl_boot_id(boot);
    l->path = mq_shm_path(cfg->dir, "rl", cfg->key);
    l->key = strdup(cfg->key);
    if (l->path == NULL || l->key == NULL) {
        snprintf(err, errlen, "limiter: out of memory");
        return -1;
    }

    for (tries = 0; tries < OPEN_TRIES; tries++) {
        uint64_t size;
        void *map;
        int fd = mq_shm_open(l->path, "limiter file", &size, err, errlen);

        if (fd == -2) {
            if (make_file(l->path, cfg, boot, 0, err, errlen) != 0 && errno != EEXIST)
                return -1;
            continue;                   /* open what is there now */
        }
        if (fd < 0)
            return -1;
        map = MAP_FAILED;
        snprintf(why, sizeof why, "%llu bytes", (unsigned long long)size);
        if (size == MQ_RL_FILE_SIZE) {
            map = mmap(NULL, MQ_RL_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (map == MAP_FAILED) {
                fail(err, errlen, "cannot map", l->path);
                close(fd);
                return -1;
            }
        }
        if (map == MAP_FAILED
            || mq_limiter_check_header(map, (size_t)size, why, sizeof why) != 0) {
            if (map != MAP_FAILED) munmap(map, MQ_RL_FILE_SIZE);
            if (newer_version(fd)) {
                snprintf(err, errlen, "limiter file %s: made by a newer lua-mediquo (%s): "
                         "upgrade this one, or give it another dir or key", l->path, why);
                close(fd);
                return -1;
            }
            if (remake(fd, l->path, cfg, boot, err, errlen) != 0) {
                close(fd);
                return -1;
            }
            close(fd);
            continue;
        }
        l->fd = fd;
        l->h = map;
        l->ring = (int64_t *)(l->h + 1);
        return 0;
    }
    snprintf(err, errlen, "limiter file %s: kept changing while opening it", l->path);
    return -1;
}

void mq_rl_file_close(mq_limiter *l)
{
    if (l->h) munmap(l->h, MQ_RL_FILE_SIZE);
    if (l->fd >= 0) close(l->fd);
    free(l->path);
    free(l->key);
}

int mq_limiter_open(const mq_limiter_cfg *cfg, mq_limiter **out, char *err, size_t errlen)
{
    mq_limiter *l = calloc(1, sizeof *l);
    char boot[MQ_RL_BOOT_LEN];

    *out = NULL;
    if (l == NULL) {
        snprintf(err, errlen, "limiter: out of memory");
        return -1;
    }
    l->fd = -1;
    if (mq_rl_file_open(cfg, l, err, errlen) != 0) {
        mq_rl_file_close(l);
        free(l);
        return -1;
    }
    mq_rl_boot_id(boot);
    if (mq_rl_lock(l) != 0) {
        snprintf(err, errlen, "limiter file %s: its lock is held and not released", l->path);
        mq_limiter_close(l);
        return -1;
    }
    /* a file from a previous boot: its monotonic times mean nothing now */
    if (memcmp(l->h->boot_id, boot, MQ_RL_BOOT_LEN) != 0)
        mq_rl_reset(l->h, boot);
    mq_rl_configure(l, cfg->per_minute, cfg->burst, (int64_t)(cfg->period * 1e9));
    mq_rl_unlock(l);
    *out = l;
    return 0;
}

void mq_limiter_close(mq_limiter *l)
{
    if (l == NULL) return;
    if (l->rd) l->remote->close(l->rd);
    mq_rl_file_close(l);
    free(l);
}
