/* limiter_rule.c: changing the rule in force, explicitly (never by an
 * opener, never by a status read): a new file with the new rule is put in
 * place of the old one and carries its recent starts over.
 *
 * Lock-free sharers cannot be held while a ring is rebuilt, so the new file
 * starts paused for HANDOVER_NS: every sharer notices the rename within its
 * recheck (100 ms, limiter_file.c) and moves over, finding it paused; then
 * the old file is quiet, its newest starts are copied into the new ring as
 * its previous lap (exactly where the window rule looks), the burst rule is
 * replayed on them, and the pause is lifted. A changer killed half way
 * leaves a new file whose pause ends by itself, unseeded: at worst one
 * period in which the old file's starts are not counted. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "limiter_file.h"
#include "shmguard.h"

#define HANDOVER_NS 300000000LL /* a new rule's file stays paused this long */

/* The newest starts of the old ring (and a pending one), oldest first,
 * copied into the new ring as its previous lap, where the window rule
 * looks; the GCRA time replayed over them, a pause carried over. Both files are quiet:
 * the old one since every sharer moved, the new one paused. */
static void carry_over(const mq_rl_hdr *oh, const uint64_t *oring, mq_rl_hdr *nh, uint64_t *nring)
{
    uint64_t n = (uint64_t)oh->per_minute, m = (uint64_t)nh->per_minute;
    uint64_t k = __atomic_load_n(&oh->seq, __ATOMIC_ACQUIRE), j, i, tat = 0;
    uint64_t step_u = ((uint64_t)(nh->period_ns / nh->per_minute) + MQ_RL_UNIT_NS - 1) >> MQ_RL_UNIT_SHIFT;
    int64_t pause = __atomic_load_n(&oh->paused_until, __ATOMIC_ACQUIRE);

    if ((oring[k % n] & MQ_RL_TAG_MASK) == (((k / n) + 1) & MQ_RL_TAG_MASK)) k++;
    j = n < m ? n : m;
    for (i = 0; i < j; i++) {
        uint64_t t = oring[(k + n - j + i) % n] >> MQ_RL_TAG_BITS;    /* j <= n: no wrap */
        __atomic_store_n(&nring[m - j + i], t << MQ_RL_TAG_BITS, __ATOMIC_RELEASE);
        /* the burst rule replayed over the kept starts, under the new rule */
        if (t != 0) tat = (t > tat ? t : tat) + step_u;
    }
    __atomic_store_n(&nh->tat, tat << MQ_RL_TAG_BITS, __ATOMIC_RELEASE);
    __atomic_store_n(&nh->paused_until, pause > mq_rl_now_ns() ? pause : 0, __ATOMIC_RELEASE);
}

int mq_limiter_set_rule(mq_limiter *l, long per_minute, long burst, double period,
                        char *err, size_t errlen)
{
    mq_limiter_cfg cfg;
    struct timespec ts = { 0, (long)(HANDOVER_NS * 5 / 6) };
    sigjmp_buf env;
    sigjmp_buf *volatile prev;
    mq_rl_hdr *volatile oh;
    uint64_t *volatile oring;
    int rc;

    cfg.per_minute = per_minute;
    cfg.burst = burst;
    cfg.period = period;
    cfg.key = l->key;
    cfg.dir = l->path;              /* not used: the path is l's */
    cfg.gid = l->gid;
    if (mq_rl_check_cfg(&cfg, err, errlen) != 0) return -1;
    if (mq_rl_file_ready(l) != 0) {
        snprintf(err, errlen, "%s", l->error);
        return -1;
    }
    oh = l->h;
    oring = l->ring;
    if (mq_rl_make(l->path, &cfg, 1, mq_rl_now_ns() + HANDOVER_NS, err, errlen) != 0)
        return -1;
    /* every sharer notices the rename within RECHECK_NS and moves over */
    nanosleep(&ts, NULL);
    l->want[0] = per_minute;
    l->want[1] = burst;
    l->want[2] = (int64_t)(period * 1e9);
    pthread_mutex_lock(&l->remap);     /* this process's threads only */
    rc = mq_rl_reopen(l);               /* l->old keeps the old mapping */
    pthread_mutex_unlock(&l->remap);
    if (rc != 0) {
        snprintf(err, errlen, "%s", l->errbuf);
        return -1;
    }
    prev = mq_shm_guard_enter(&env);
    if (sigsetjmp(env, 0) != 0) {
        mq_shm_guard_leave(prev);
        snprintf(err, errlen, "limiter file %s: cut short during the rule change", l->path);
        return -1;
    }
    carry_over(oh, oring, l->h, l->ring);
    mq_shm_guard_leave(prev);
    return 0;
}
