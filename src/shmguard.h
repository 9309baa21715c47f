/* shmguard.h: a SIGBUS on a shared state mapping (a file another process
 * cut short) becomes an error return instead of the end of the process. */
#ifndef MQ_SHMGUARD_H
#define MQ_SHMGUARD_H

/* system headers before the push: their symbols must stay default */
#include <setjmp.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Installs the handler once per process (chaining to whatever handler was
 * there for faults that are not ours). 0, or -1 when sigaction failed. */
int  mq_shm_guard_init(void);
/* Guards this thread's accesses to mappings until mq_shm_guard_leave:
 *
 *     sigjmp_buf env;
 *     sigjmp_buf *prev = mq_shm_guard_enter(&env);
 *     if (sigsetjmp(env, 0) != 0) { mq_shm_guard_leave(prev); ...fault... }
 *     ...touch the mapping...
 *     mq_shm_guard_leave(prev);
 *
 * A SIGBUS inside jumps back to the sigsetjmp with 1. */
sigjmp_buf *mq_shm_guard_enter(sigjmp_buf *env);
void mq_shm_guard_leave(sigjmp_buf *prev);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
