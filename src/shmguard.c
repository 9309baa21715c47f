/* shmguard.c: a SIGBUS on a shared state mapping becomes an error return.
 *
 * The limiter's state is a file mapped by every sharer, and any sharer can
 * cut it short (truncate -s 0, or a full disk under a file not made by
 * us): the next access to a page past the new end raises SIGBUS. Checking
 * the size first does not close that: Linux (ext4 and tmpfs alike) drops
 * the pages from the mappings before fstat() shows the new size, and a
 * sharer that checked and then touched the page died in 9 runs of 10. So
 * each access runs under a guard: a thread-local jump buffer, set only
 * while this library touches a mapping, and one SIGBUS handler per process
 * that jumps back to it. A SIGBUS anywhere else is not ours: the handler
 * puts the previous action back and returns, and the fault, repeated,
 * gets the behaviour it had without us. */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "shmguard.h"

/* initial-exec: no allocation on access, so the handler may read it */
static __thread sigjmp_buf *guard __attribute__((tls_model("initial-exec")));
static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int installed = -1;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    sigjmp_buf *env = guard;

    (void)si;
    (void)uc;
    if (env != NULL) {
        guard = NULL;
        siglongjmp(*env, 1);    /* SA_NODEFER: SIGBUS is not left blocked */
    }
    sigaction(sig, &previous, NULL);
}

static void install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    installed = sigaction(SIGBUS, &sa, &previous);
}

int mq_shm_guard_init(void)
{
    pthread_once(&once, install);
    return installed;
}

sigjmp_buf *mq_shm_guard_enter(sigjmp_buf *env)
{
    sigjmp_buf *prev = guard;
    guard = env;
    return prev;
}

void mq_shm_guard_leave(sigjmp_buf *prev)
{
    guard = prev;
}
