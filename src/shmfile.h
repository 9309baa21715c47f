/* shmfile.h: the host-wide state files of the limiter and the metrics
 * (shmfile.c), and their default directory. */
#ifndef MQ_SHMFILE_H
#define MQ_SHMFILE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

uint64_t mq_fnv1a64(const char *s);
/* malloc'd "<dir>/mediquo-<tag>-<fnv1a64(key) hex>.shm", or NULL. */
char *mq_shm_path(const char *dir, const char *tag, const char *key);
/* Makes a complete file of `size` bytes under a temporary name next to
 * path, its blocks reserved (posix_fallocate: a full disk fails here, never
 * later as a SIGBUS), mode 0600 or, with gid >= 0, mode 0660 and that group
 * (init(fd, ud) writes its header; 0, or -1 with errno), then puts it at
 * path: link(), which fails with errno EEXIST when another process won the
 * race, or with replace, rename(). 0, or -1 with the reason in err (errno
 * kept); the temporary file never outlives the call. */
int mq_shm_make(const char *path, const char *what, uint64_t size, int replace, long gid,
                int (*init)(int fd, void *ud), void *ud, char *err, size_t errlen);
/* Opens path read-write when it is ours to share: a regular file, not a
 * symlink, owned by this user with mode 0600, or (gid >= 0) of group gid
 * with mode 0660. Returns the fd (and *size), -2 when there is no such
 * file, -1 with the reason in err. */
int mq_shm_open(const char *path, const char *what, long gid, uint64_t *size,
                char *err, size_t errlen);
/* The group id of a group name, or -1 with the reason in err. */
long mq_shm_group(const char *name, char *err, size_t errlen);
/* The default directory of the state files, made when missing: <base>/
 * mediquo-u<uid> (mode 0700, ours) or, with gid >= 0, <base>/mediquo-g<gid>
 * (mode 02770, that group), so no other user can make or replace a file in
 * it. base is /dev/shm when usable, else $TMPDIR or /tmp. Returns a
 * malloc'd path, or NULL with the reason in err. */
char *mq_shm_default_dir(long gid, char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
