/* shmfile.h: the host-wide state files of the limiter and the metrics (shmfile.c). */
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
/* Makes a complete file of `size` bytes, mode 0600, under a temporary name
 * next to path (init(fd, ud) writes its header; 0, or -1 with errno), then
 * puts it at path: link(), which fails with errno EEXIST when another
 * process won the race, or with replace, rename(). 0, or -1 with the
 * reason in err (errno kept). what names the file in messages. */
int mq_shm_make(const char *path, const char *what, uint64_t size, int replace,
                int (*init)(int fd, void *ud), void *ud, char *err, size_t errlen);
/* Opens path read-write when it is ours to share: a regular file, not a
 * symlink, owned by this user, mode 0600. Returns the fd (and *size), -2
 * when there is no such file, -1 with the reason in err. */
int mq_shm_open(const char *path, const char *what, uint64_t *size, char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
