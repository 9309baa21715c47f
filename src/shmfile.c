/* shmfile.c: the host-wide state files (the limiter's, the metrics').
 *
 * Both live at <dir>/mediquo-<tag>-<fnv1a64(key) hex>.shm and are shared by
 * every process that uses the same key: mode 0600 for one user, or with
 * `group` mode 0660 and owned by that group (nginx workers as www-data and
 * scripts as another user of the group). A file is made whole, its blocks
 * reserved, under a temporary name and only then put in place, so no
 * process ever maps a half-written header or a file a full disk can cut
 * short; and an existing file is only used when it is ours: a regular file
 * (a symlink is never followed) with exactly the owner, group and mode we
 * would have given it. The default directory is private to the user (or
 * the group), so no other user can make the file first. */
#include "shmfile.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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

long mq_shm_group(const char *name, char *err, size_t errlen)
{
    struct group gr, *res = NULL;
    char buf[4096];
    int rc = getgrnam_r(name, &gr, buf, sizeof buf, &res);

    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "group %s: %s", name, rc ? strerror(rc) : "no such group");
        return -1;
    }
    return (long)gr.gr_gid;
}

int mq_shm_make(const char *path, const char *what, uint64_t size, int replace, long gid,
                int (*init)(int fd, void *ud), void *ud, char *err, size_t errlen)
{
    size_t tlen = strlen(path) + 48;
    char *tmp = malloc(tlen);
    mode_t mode = gid >= 0 ? 0660 : 0600;
    int fd, rc = -1, saved;

    if (tmp == NULL) {
        snprintf(err, errlen, "%s %s: out of memory", what, path);
        return -1;
    }
    snprintf(tmp, tlen, "%s.%ld.%.0f.tmp", path, (long)getpid(), mq_now() * 1e9);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fail(err, errlen, what, "cannot create", path);
        free(tmp);
        return -1;
    }
    /* the group before the mode: never 0660 with a group we did not pick;
     * fchmod: the umask must not widen or narrow what we share */
    if (gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) != 0) {
        fail(err, errlen, what, "cannot give it the group", path);
        goto out;
    }
    if (fchmod(fd, mode) != 0) {
        fail(err, errlen, what, "cannot set its mode", path);
        goto out;
    }
    /* every block now: a disk that fills later cannot SIGBUS a sharer */
    if ((errno = posix_fallocate(fd, 0, (off_t)size)) != 0) {
        fail(err, errlen, what, "cannot reserve its space", path);
        goto out;
    }
    if (init(fd, ud) != 0) {
        fail(err, errlen, what, "cannot initialise", path);
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

/* NULL when st is a file (or directory, dir = 1) we may share. */
static const char *not_ours(const struct stat *st, long gid, int dir)
{
    mode_t perm = st->st_mode & 07777;

    if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
        return dir ? "not a directory" : "not a regular file";
    if (gid < 0) {
        if (st->st_uid != geteuid()) return "owned by another user";
        if ((perm & 077) != 0)
            return dir ? "open to other users (must be mode 0700)"
                       : "readable or writable by others (must be mode 0600)";
        return NULL;
    }
    if ((long)st->st_gid != gid) return "not of the group given as rate_limit.group";
    if ((perm & 07) != 0) return "open to users outside the group";
    if (dir ? (perm & 0770) != 0770 : (perm & 0777) != 0660)
        return dir ? "not writable by the group (must be mode 2770)"
                   : "not shared with the group (must be mode 0660)";
    return NULL;
}

int mq_shm_open(const char *path, const char *what, long gid, uint64_t *size,
                char *err, size_t errlen)
{
    struct stat st;
    const char *why;
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
    if ((why = not_ours(&st, gid, 0)) != NULL) {
        snprintf(err, errlen, "%s %s: refused: %s", what, path, why);
        close(fd);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

char *mq_shm_default_dir(long gid, char *err, size_t errlen)
{
    const char *base = getenv("TMPDIR");
    struct stat st;
    size_t n;
    char *p;
    const char *why;

    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK | X_OK) == 0)
        base = "/dev/shm";
    else if (base == NULL || base[0] == '\0')
        base = "/tmp";
    n = strlen(base) + 40;
    if ((p = malloc(n)) == NULL) {
        snprintf(err, errlen, "limiter: out of memory");
        return NULL;
    }
    if (gid >= 0)
        snprintf(p, n, "%s/mediquo-g%ld", base, gid);
    else
        snprintf(p, n, "%s/mediquo-u%ld", base, (long)geteuid());
    if (mkdir(p, gid >= 0 ? 0770 : 0700) == 0) {
        /* ours and new: give it the group and the mode the umask cut */
        if ((gid >= 0 && chown(p, (uid_t)-1, (gid_t)gid) != 0)
            || chmod(p, gid >= 0 ? 02770 : 0700) != 0) {
            fail(err, errlen, "state directory", "cannot set its group and mode", p);
            rmdir(p);
            free(p);
            return NULL;
        }
    } else if (errno != EEXIST) {
        fail(err, errlen, "state directory", "cannot create", p);
        free(p);
        return NULL;
    }
    /* lstat: a symlink planted by someone else is never followed */
    if (lstat(p, &st) != 0) {
        fail(err, errlen, "state directory", "cannot stat", p);
        free(p);
        return NULL;
    }
    if ((why = not_ours(&st, gid, 1)) != NULL) {
        snprintf(err, errlen, "state directory %s: refused: %s", p, why);
        free(p);
        return NULL;
    }
    return p;
}
