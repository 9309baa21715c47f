/* shmfile.c: the host-wide state files (the limiter's, the metrics').
 *
 * Both live at <dir>/mediquo-<tag>-<fnv1a64(key) hex>.shm, mode 0600, and
 * are shared by every process of this user that uses the same key. A file
 * is made whole under a temporary name and only then put in place, so no
 * process ever maps a half-written header; and an existing file is only
 * used when it is ours: a regular file (a symlink is never followed), owned
 * by this user, readable and writable by nobody else. */
#include "shmfile.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t mq_fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

char *mq_shm_path(const char *dir, const char *tag, const char *key)
{
    size_t n = strlen(dir) + strlen(tag) + 40;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/mediquo-%s-%016" PRIx64 ".shm", dir, tag, mq_fnv1a64(key));
    return p;
}

static int fail(char *err, size_t errlen, const char *what, const char *doing, const char *path)
{
    snprintf(err, errlen, "%s %s: %s: %s", what, path, doing, strerror(errno));
    return -1;
}

int mq_shm_make(const char *path, const char *what, uint64_t size, int replace,
                int (*init)(int fd, void *ud), void *ud, char *err, size_t errlen)
{
    size_t tlen = strlen(path) + 48;
    char *tmp = malloc(tlen);
    int fd, rc = -1, saved;

    if (tmp == NULL) {
        snprintf(err, errlen, "%s %s: out of memory", what, path);
        return -1;
    }
    snprintf(tmp, tlen, "%s.%ld.%.0f.tmp", path, (long)getpid(), mq_now() * 1e9);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fail(err, errlen, what, "cannot create", tmp);
        free(tmp);
        return -1;
    }
    /* fchmod: the umask must not widen or narrow what we share */
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, (off_t)size) != 0) {
        fail(err, errlen, what, "cannot size", tmp);
        goto out;
    }
    if (init(fd, ud) != 0) {
        fail(err, errlen, what, "cannot initialise", tmp);
        goto out;
    }
    /* link() fails with EEXIST when another process won the race to make
     * it (the caller then opens theirs); rename() replaces a bad file */
    rc = replace ? rename(tmp, path) : link(tmp, path);
    if (rc != 0 && !(errno == EEXIST && !replace))
        fail(err, errlen, what, "cannot put in place", path);
out:
    saved = errno;
    close(fd);
    unlink(tmp);                /* after link() or a failure; gone after rename() */
    free(tmp);
    errno = saved;
    return rc;
}

int mq_shm_open(const char *path, const char *what, uint64_t *size, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT)
        return -2;
    if (fd < 0) {
        if (errno == ELOOP)
            errno = EPERM;      /* a symlink: never followed */
        return fail(err, errlen, what, "cannot open", path);
    }
    if (fstat(fd, &st) != 0) {
        fail(err, errlen, what, "cannot stat", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s %s: refused: %s", what, path,
                 !S_ISREG(st.st_mode) ? "not a regular file"
                 : st.st_uid != geteuid() ? "owned by another user"
                 : "readable or writable by others (must be mode 0600)");
        close(fd);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}
