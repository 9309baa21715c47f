/* limiter_file.c: the shared state file of the rate limiter: its name, its
 * race-free creation, the checks before it is trusted, its mapping, and
 * the check before each use that it can still be touched.
 *
 * <dir>/mediquo-rl-<fnv1a64(key) hex>.shm (mode 0600, or 0660 of `group`).
 * A new file is made whole, its space reserved, under a temporary name and
 * then link()ed into place, so no process ever maps a half-made file; when
 * many race, one link wins and the others open the winner's. The rule
 * (per_minute, burst, period) is the creator's, and a file is sized for
 * it: only limiter_rule.c changes it, by putting a new file in its place. A file that fails the checks (wrong magic, older
 * version, truncated, garbage) is re-made the same way with rename(), by
 * whichever process first holds flock() on the bad file while the name
 * still points at it, so only one replacement is made; nobody waits for
 * that lock. A file not ours to re-make (another owner, other permission
 * bits, not a regular file, a newer library's version) is an error.
 *
 * A mapping faults (SIGBUS) where the file no longer has pages (someone
 * cut it short): limiter.c touches it under shmguard.c's guard, and the
 * next call here re-makes and re-maps it. */
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

#include "clock.h"
#include "limiter_file.h"
#include "shmguard.h"


#define OPEN_TRIES 8            /* another process re-made it meanwhile */
#define RECHECK_NS 100000000LL  /* how often a handle asks if its file was removed */
#define MAX_PERIOD_S MQ_LIMITER_MAX_PERIOD

typedef char hdr_is_320[sizeof(mq_rl_hdr) == 320 ? 1 : -1];

static uint64_t file_size_for(int64_t per_minute)
{
    return (uint64_t)sizeof(mq_rl_hdr) + (uint64_t)per_minute * 8u;
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
    if (h.per_minute < 1 || h.per_minute > MQ_RL_MAX_PER_MIN || h.burst < 1
        || h.burst > h.per_minute || h.period_ns < h.per_minute
        || h.period_ns > (int64_t)(MAX_PERIOD_S * 1e9)) {
        snprintf(err, errlen, "bad rule (per_minute %" PRId64 ", burst %" PRId64
                 ", period %" PRId64 " ns)", h.per_minute, h.burst, h.period_ns);
        return -1;
    }
    if (h.hdr_size != sizeof h || h.file_size != file_size_for(h.per_minute)) {
        snprintf(err, errlen, "inconsistent sizes (header %" PRIu32 ", file %" PRIu64 ")",
                 h.hdr_size, h.file_size);
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
    int64_t paused_until;       /* a new rule's handover (set_rule), or 0 */
};

/* The header of a new file: identity and the creator's rule. The state
 * words and the ring are zero (posix_fallocate gives zeroed blocks). */
static int init_header(int fd, void *ud)
{
    const struct init_args *a = ud;
    const mq_limiter_cfg *cfg = a->cfg;
    mq_rl_hdr h;
    struct timespec rt;

    memset(&h, 0, sizeof h);
    memcpy(h.magic, MQ_RL_MAGIC, sizeof h.magic);
    h.version = MQ_RL_VERSION;
    h.hdr_size = sizeof h;
    h.per_minute = cfg->per_minute;
    h.burst = cfg->burst;
    h.period_ns = (int64_t)(cfg->period * 1e9);
    h.file_size = file_size_for(h.per_minute);
    h.key_hash = mq_fnv1a64(cfg->key);
    clock_gettime(CLOCK_REALTIME, &rt);
    h.set_at = (int64_t)rt.tv_sec;
    h.set_by_pid = (int64_t)getpid();
    h.set_by_uid = (int64_t)geteuid();
    h.paused_until = a->paused_until;
    return pwrite(fd, &h, sizeof h, 0) == (ssize_t)sizeof h ? 0 : -1;
}

int mq_rl_make(const char *path, const mq_limiter_cfg *cfg, int replace, int64_t paused_until,
               char *err, size_t errlen)
{
    struct init_args a = { cfg, paused_until };
    return mq_shm_make(path, "limiter file", file_size_for(cfg->per_minute), replace,
                       cfg->gid, init_header, &a, err, errlen);
}

static int make_file(const char *path, const mq_limiter_cfg *cfg, int replace,
                     char *err, size_t errlen)
{
    return mq_rl_make(path, cfg, replace, 0, err, errlen);
}

/* The file at fd failed the checks: replace it, unless another process
 * already did (the name no longer points at it) or is doing it now (holds
 * the flock: we never wait for it, we try the name again). */
static int remake(int fd, const char *path, const mq_limiter_cfg *cfg, char *err, size_t errlen)
{
    struct stat a, b;
    int rc = 0;

    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        if (errno != EWOULDBLOCK && errno != EINTR) return fail(err, errlen, "cannot flock", path);
        nanosleep(&ts, NULL);
        return 0;
    }
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        rc = make_file(path, cfg, 1, err, errlen);
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

int mq_rl_check_cfg(const mq_limiter_cfg *cfg, char *err, size_t errlen)
{
    const char *why = NULL, *field = NULL;
    double v[MQ_RULE__COUNT] = { (double)cfg->per_minute, (double)cfg->burst, cfg->period };
    static const int given[MQ_RULE__COUNT] = { 1, 1, 1 };

    if (mq_limiter_check_rule(v, given, &field, &why) != 0) {
        snprintf(err, errlen, "limiter: %s %s", field, why);
        return -1;
    }
    if (cfg->key == NULL || cfg->key[0] == '\0')
        why = "key must be a non-empty string";
    else if (cfg->dir == NULL || cfg->dir[0] == '\0')
        why = "dir must be a non-empty string";
    if (why) snprintf(err, errlen, "limiter: %s", why);
    return why ? -1 : 0;
}

/* One attempt: 0 mapped, 1 try again, -1 error. */
static int open_once(const mq_limiter_cfg *cfg, int existing, mq_limiter *l, char *err,
                     size_t errlen)
{
    char why[160];
    uint64_t size;
    void *map = MAP_FAILED;
    int fd = mq_shm_open(l->path, "limiter file", cfg->gid, &size, err, errlen);

    if (fd == -2 && existing) {
        snprintf(err, errlen, "limiter file %s: none yet (no process has used this key)",
                 l->path);
        return -1;
    }
    if (fd == -2)
        return make_file(l->path, cfg, 0, err, errlen) != 0 && errno != EEXIST ? -1 : 1;
    if (fd < 0)
        return -1;
    snprintf(why, sizeof why, "%llu bytes", (unsigned long long)size);
    if (size >= sizeof(mq_rl_hdr) && size <= file_size_for(MQ_RL_MAX_PER_MIN)) {
        map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            fail(err, errlen, "cannot map", l->path);
            close(fd);
            return -1;
        }
    }
    /* the size was read before the mapping: a file cut short since would
     * fault in the check; the check reads it through pread instead */
    if (map != MAP_FAILED) {
        mq_rl_hdr h;
        struct stat st;
        if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h
            || fstat(fd, &st) != 0 || (uint64_t)st.st_size != size
            || mq_limiter_check_header(&h, (size_t)size, why, sizeof why) != 0) {
            munmap(map, (size_t)size);
            map = MAP_FAILED;
        } else if (existing) {
            /* a reader asked for no rule: it is not at odds with this one */
            l->want[0] = h.per_minute;
            l->want[1] = h.burst;
            l->want[2] = h.period_ns;
        }
    }
    if (map == MAP_FAILED) {
        if (newer_version(fd)) {
            snprintf(err, errlen, "limiter file %s: made by a newer lua-mediquo (%s): "
                     "upgrade this one, or give it another dir or key", l->path, why);
            close(fd);
            return -1;
        }
        if (remake(fd, l->path, cfg, err, errlen) != 0) {
            close(fd);
            return -1;
        }
        close(fd);
        return 1;
    }
    l->fd = fd;
    l->h = map;
    l->ring = (uint64_t *)((char *)map + sizeof(mq_rl_hdr));
    l->size = size;
    return 0;
}

int mq_rl_file_open(const mq_limiter_cfg *cfg, int existing, mq_limiter *l, char *err,
                    size_t errlen)
{
    int tries, rc = 1;

    if (mq_rl_check_cfg(cfg, err, errlen) != 0) return -1;
    if (strlen(cfg->key) > 4096) {
        snprintf(err, errlen, "limiter: key is longer than 4096 bytes");
        return -1;
    }
    if (l->path == NULL) {
        l->path = mq_shm_path(cfg->dir, "rl", cfg->key);
        l->key = strdup(cfg->key);
    }
    if (l->path == NULL || l->key == NULL) {
        snprintf(err, errlen, "limiter: out of memory");
        return -1;
    }
    l->gid = cfg->gid;
    l->want[0] = cfg->per_minute;
    l->want[1] = cfg->burst;
    l->want[2] = (int64_t)(cfg->period * 1e9);
    for (tries = 0; tries < OPEN_TRIES && rc == 1; tries++)
        rc = open_once(cfg, existing, l, err, errlen);
    if (rc == 1)
        snprintf(err, errlen, "limiter file %s: kept changing while opening it", l->path);
    return rc == 0 ? 0 : -1;
}

/* The file was removed or replaced (a new rule, an operator's cleanup):
 * join the one now at the path. The old mapping stays until close, in
 * case another thread of this process is still reading it. */
int mq_rl_reopen(mq_limiter *l)
{
    mq_limiter_cfg cfg;
    mq_limiter nl;
    char err[sizeof l->errbuf];
    int i, slot = -1;

    for (i = 3; i >= 0; i--)
        if (l->old[i] == NULL) slot = i;
    if (slot < 0) {
        snprintf(l->errbuf, sizeof l->errbuf, "limiter file %s: removed or replaced "
                 "too often: reopen the limiter", l->path);
        return -1;
    }
    memset(&nl, 0, sizeof nl);
    nl.fd = -1;
    nl.path = l->path;
    nl.key = l->key;
    /* the path is kept (nl.path set: cfg.dir is not used); the rule is
     * what this process asked for */
    cfg.per_minute = (long)l->want[0];
    cfg.burst = (long)l->want[1];
    cfg.period = (double)l->want[2] / 1e9;
    cfg.key = l->key;
    cfg.dir = l->path;
    cfg.gid = l->gid;
    i = mq_rl_file_open(&cfg, 0, &nl, err, sizeof err);
    if (i != 0) {
        snprintf(l->errbuf, sizeof l->errbuf, "%s", err);
        return -1;
    }
    l->old[slot] = l->h;
    l->old_size[slot] = l->size;
    close(l->fd);
    l->fd = nl.fd;
    l->ring = nl.ring;
    l->size = nl.size;
    __atomic_store_n(&l->h, nl.h, __ATOMIC_RELEASE);    /* what operations read */
    return 0;
}

int mq_rl_file_ready(mq_limiter *l)
{
    int64_t now;
    struct stat st;

    l->error = NULL;
    if (l->broken) {
        /* one thread re-maps; another one meanwhile gets this call's error */
        int rc = pthread_mutex_trylock(&l->remap) == 0 ? 0 : -1;
        if (rc == 0) {
            if (l->broken && (rc = mq_rl_reopen(l)) == 0) l->broken = 0;
            pthread_mutex_unlock(&l->remap);
        }
        if (rc != 0) {
            l->error = l->errbuf;
            return -1;
        }
        return 0;
    }
    /* removed or replaced (an operator's cleanup, a new rule): noticed
     * within RECHECK_NS, then joined; fstat costs more than an admission,
     * so not on every call */
    now = mq_coarse_ns();                           /* a tick is plenty here */
    if (now - l->checked_at < RECHECK_NS) return 0;
    l->checked_at = now;
    if (fstat(l->fd, &st) == 0 && st.st_nlink == 0
        && pthread_mutex_trylock(&l->remap) == 0) {
        int rc = mq_rl_reopen(l);
        pthread_mutex_unlock(&l->remap);
        if (rc != 0) {
            l->error = l->errbuf;
            return -1;
        }
    }
    return 0;
}

void mq_rl_file_broken(mq_limiter *l)
{
    snprintf(l->errbuf, sizeof l->errbuf, "limiter file %s: cut short under this process "
             "(truncated by someone, or its disk lost it); the next call re-makes it", l->path);
    l->error = l->errbuf;
    l->broken = 1;
}

void mq_rl_file_close(mq_limiter *l)
{
    int i;

    if (l->h) munmap(l->h, (size_t)l->size);
    for (i = 0; i < 4; i++)
        if (l->old[i]) munmap(l->old[i], (size_t)l->old_size[i]);
    if (l->fd >= 0) close(l->fd);
    if (l->remap_ok) pthread_mutex_destroy(&l->remap);
    free(l->path);
    free(l->key);
}

static int open_limiter(const mq_limiter_cfg *cfg, int existing, mq_limiter **out, char *err,
                        size_t errlen)
{
    mq_limiter *l = calloc(1, sizeof *l);

    *out = NULL;
    if (l == NULL) {
        snprintf(err, errlen, "limiter: out of memory");
        return -1;
    }
    l->fd = -1;
    if (pthread_mutex_init(&l->remap, NULL) != 0) {
        snprintf(err, errlen, "limiter: cannot make a mutex");
        free(l);
        return -1;
    }
    l->remap_ok = 1;
    if (mq_shm_guard_init() != 0) {
        snprintf(err, errlen, "limiter: cannot install the SIGBUS guard");
        mq_rl_file_close(l);
        free(l);
        return -1;
    }
    if (mq_rl_file_open(cfg, existing, l, err, errlen) != 0) {
        mq_rl_file_close(l);
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

int mq_limiter_open(const mq_limiter_cfg *cfg, mq_limiter **out, char *err, size_t errlen)
{
    return open_limiter(cfg, 0, out, err, errlen);
}

int mq_limiter_open_existing(const mq_limiter_cfg *cfg, mq_limiter **out, char *err,
                             size_t errlen)
{
    return open_limiter(cfg, 1, out, err, errlen);
}

void mq_limiter_close(mq_limiter *l)
{
    if (l == NULL) return;
    if (l->rd) l->remote->close(l->rd);
    mq_rl_file_close(l);
    free(l);
}

const char *mq_limiter_error(const mq_limiter *l)
{
    return l->error;
}
