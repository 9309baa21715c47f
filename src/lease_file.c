/* lease_file.c: the host-local file of the Redis limiter (layout in
 * lease_file.h): made whole then linked into place (shmfile.c), checked
 * before it is trusted (under the SIGBUS guard), locked with a
 * process-shared robust mutex taken by a bounded try-lock, so a process
 * killed while holding it blocks nobody and one stopped while holding it
 * costs the others MQ_LEASE_SPIN_NS per attempt, never a wait. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lease_file.h"
#include "shmfile.h"
#include "shmguard.h"

#define NS 1000000000LL

static int init_file(int fd, void *ud)
{
    mq_lease_file *f;
    pthread_mutexattr_t ma;
    unsigned char rnd[8];
    int rc, i, ufd;

    (void)ud;
    f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED) return -1;
    memcpy(f->magic, MQ_LF_MAGIC, sizeof f->magic);
    f->version = MQ_LF_VERSION;
    f->size = sizeof *f;
    f->obs_rem = -1;
    /* a random id: the registry counts hosts, it never needs their names */
    ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (ufd < 0 || read(ufd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        uint64_t x = mq_fnv1a64("mediquo") ^ (uint64_t)getpid() ^ (uint64_t)(mq_now() * 1e9);
        memcpy(rnd, &x, sizeof rnd);
    }
    if (ufd >= 0) close(ufd);
    for (i = 0; i < 8; i++) snprintf(f->host_id + 2 * i, 3, "%02x", rnd[i]);
    rc = pthread_mutexattr_init(&ma);
    if (rc == 0) {
        if ((rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) == 0
            && (rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) == 0)
            rc = pthread_mutex_init(&f->lock.mu, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    munmap(f, sizeof *f);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

static int valid(const mq_lease_file *f)
{
    sigjmp_buf env;
    sigjmp_buf *volatile prev = mq_shm_guard_enter(&env);
    int ok;

    if (sigsetjmp(env, 0) != 0) {
        mq_shm_guard_leave(prev);
        return 0;               /* cut short since it was measured: made again */
    }
    ok = memcmp(f->magic, MQ_LF_MAGIC, sizeof f->magic) == 0
        && f->version == MQ_LF_VERSION && f->size == sizeof *f;
    mq_shm_guard_leave(prev);
    return ok;
}

int mq_lease_open(const char *dir, const char *key, long gid, mq_lease *lf, char *err, size_t errlen)
{
    int tries;

    lf->fd = -1;
    lf->f = NULL;
    lf->held = 0;
    if (mq_shm_guard_init() != 0) {
        lf->path = NULL;
        snprintf(err, errlen, "redis lease file: cannot install the SIGBUS guard");
        return -1;
    }
    lf->path = mq_shm_path(dir, "rd", key);
    if (lf->path == NULL) {
        snprintf(err, errlen, "redis lease file: out of memory");
        return -1;
    }
    for (tries = 0; tries < 8; tries++) {
        uint64_t size = 0;
        void *map;
        int fd = mq_shm_open(lf->path, "redis lease file", gid, &size, err, errlen);

        if (fd == -2) {
            if (mq_shm_make(lf->path, "redis lease file", sizeof(mq_lease_file), 0, gid, init_file,
                            NULL, err, errlen) != 0 && errno != EEXIST)
                return -1;
            continue;
        }
        if (fd < 0) return -1;
        if (size != sizeof(mq_lease_file)) {
            /* another layout (an older library): make ours in its place */
            close(fd);
            if (mq_shm_make(lf->path, "redis lease file", sizeof(mq_lease_file), 1, gid, init_file,
                            NULL, err, errlen) != 0)
                return -1;
            continue;
        }
        map = mmap(NULL, sizeof(mq_lease_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(err, errlen, "redis lease file %s: cannot map: %s", lf->path, strerror(errno));
            close(fd);
            return -1;
        }
        if (!valid(map)) {
            munmap(map, sizeof(mq_lease_file));
            close(fd);
            if (mq_shm_make(lf->path, "redis lease file", sizeof(mq_lease_file), 1, gid, init_file,
                            NULL, err, errlen) != 0)
                return -1;
            continue;
        }
        lf->fd = fd;
        lf->f = map;
        return 0;
    }
    snprintf(err, errlen, "redis lease file %s: kept changing while opening it", lf->path);
    return -1;
}

void mq_lease_close(mq_lease *lf)
{
    if (lf->f && lf->held) {
        /* the file was cut short while this thread held (or was taking)
         * the lock: glibc's robust list of this thread still points into
         * the mapping and writes there on the next robust lock, so the
         * range stays valid memory for good (a page or two, per fault;
         * if even that fails, the faulting mapping stays: no worse) */
        (void)mmap(lf->f, sizeof(mq_lease_file), PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    } else if (lf->f) {
        munmap(lf->f, sizeof(mq_lease_file));
    }
    if (lf->fd >= 0) close(lf->fd);
    free(lf->path);
    lf->f = NULL;
    lf->fd = -1;
    lf->path = NULL;
    lf->held = 0;
}

int mq_lease_replaced(const mq_lease *lf)
{
    struct stat st;

    return lf->fd >= 0 && fstat(lf->fd, &st) == 0 && st.st_nlink == 0;
}

int mq_lease_replace(const mq_lease *lf, long gid, char *err, size_t errlen)
{
    if (lf->path == NULL || mq_lease_replaced(lf)) return 0;
    return mq_shm_make(lf->path, "redis lease file", sizeof(mq_lease_file), 1, gid, init_file,
                       NULL, err, errlen);
}

int mq_lease_lock(mq_lease *lf)
{
    pthread_mutex_t *mu = &lf->f->lock.mu;
    int rc;

    lf->held = 1;               /* before the attempt: it may enqueue the mutex */
    rc = pthread_mutex_trylock(mu);
    if (rc == EBUSY) {
        /* the holder does a few stores; on a busy host it may just be
         * descheduled: yield to it for a while, then give up (a stopped
         * holder must never stall this process, an event loop maybe) */
        int64_t until = mq_now_ns() + MQ_LEASE_SPIN_NS;
        do {
            sched_yield();
            rc = pthread_mutex_trylock(mu);
        } while (rc == EBUSY && mq_now_ns() < until);
    }
    if (rc == EOWNERDEAD) {
        /* every update is a few stores that leave the fields usable; a
         * round trip the dead holder had claimed simply times out */
        rc = pthread_mutex_consistent(mu);
        if (rc != 0) pthread_mutex_unlock(mu);
    }
    if (rc != 0) {
        lf->held = 0;
        return -1;
    }
    return 0;
}

void mq_lease_unlock(mq_lease *lf)
{
    pthread_mutex_unlock(&lf->f->lock.mu);
    lf->held = 0;
}

void mq_lease_record(mq_lease_file *f, int64_t now, int64_t n, int64_t horizon)
{
    int64_t h = f->ring_head, last = (h + MQ_LF_RING - 1) % MQ_LF_RING;

    if (n <= 0) return;
    /* the slot to overwrite still counts: add to the newest instead (a
     * later time, so only ever counted longer, never shorter) */
    if ((f->ring_n[h] > 0 && f->ring_t[h] > now - horizon)
        || (f->ring_n[last] > 0 && now - f->ring_t[last] < NS / 1000)) {
        f->ring_n[last] += n;
        if (f->ring_t[last] < now) f->ring_t[last] = now;
        return;
    }
    f->ring_t[h] = now;
    f->ring_n[h] = n;
    f->ring_head = (h + 1) % MQ_LF_RING;
}

void mq_lease_recent(const mq_lease_file *f, int64_t now, int64_t horizon, char *out, size_t outlen)
{
    size_t len = 0;
    int64_t carry = 0;
    int i;

    out[0] = '\0';
    if (outlen < 32) return;
    /* oldest first, so when out is short the rest is merged into the
     * newest record written (counted longer, never shorter) */
    for (i = 0; i < MQ_LF_RING; i++) {
        int64_t j = (f->ring_head + i) % MQ_LF_RING, age, n;
        int w;

        if (f->ring_n[j] <= 0 || f->ring_t[j] <= now - horizon) continue;
        age = (now - f->ring_t[j]) / 1000000;  /* < 0: a slot reserved ahead */
        if (len + 48 > outlen) {            /* no room: fold into the last written */
            carry += f->ring_n[j];
            continue;
        }
        n = f->ring_n[j] + carry;
        w = snprintf(out + len, outlen - len, "%s%lld:%lld", len ? "," : "",
                     (long long)age, (long long)n);
        carry = 0;
        if (w > 0) len += (size_t)w;
    }
    if (carry > 0 && len + 24 < outlen)
        snprintf(out + len, outlen - len, "%s0:%lld", len ? "," : "", (long long)carry);
}
