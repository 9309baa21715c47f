/* batch.c: several calls of one client in flight at once over curl's multi
 * interface, from one thread.
 *
 * Each call runs the same policy as call.c (policy.c's classify and
 * backoff, Retry-After, a deadline per call, one limiter slot per attempt),
 * but as a small state machine instead of a blocking loop: a call waiting
 * for its backoff or for a limiter slot (taken with the non-blocking
 * mq_limiter_try) never holds up the others, and waiting is done in
 * curl_multi_poll, never in a sleep. At most `concurrency` calls are active
 * (started and not finished) at once, so a call's deadline only starts
 * ticking when it can actually make progress, and at most that many
 * compete for limiter slots. Nothing here touches Lua: finished calls are
 * queued for the binding to take between steps. */
#include "batch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 4096

typedef enum { OP_WAITING, OP_RUNNING, OP_DONE } op_state;

typedef struct {
    long long id;
    mq_method m;
    op_state state;
    char *url;
    char *body;             /* NULL: no body (DELETE) */
    size_t body_len;
    mq_progress prog;       /* deadline (deadline_at set when active), retries */
    double finished_at;
    double not_before;      /* next moment to try (backoff, limiter wait) */
    double slot_since;      /* when this attempt started asking for a slot; <0: not yet */
    double slot_bound;      /* how long this attempt may wait for one */
    int paced;              /* the deadline starts when the first slot is granted */
    int started;            /* the deadline is running (deadline_at set) */
    int front;              /* admitted through the front queue, not at next */
    char *rbody;            /* the final answer's body (owned) */
    mq_result res;
} op_t;

struct mq_batch {
    mq_batch_env env;
    CURLM *multi;
    int conc;
    mq_transport *t[MQ_BATCH_MAX_CONCURRENCY];
    void *easy[MQ_BATCH_MAX_CONCURRENCY];      /* in the multi handle, or NULL */
    size_t op_of[MQ_BATCH_MAX_CONCURRENCY];    /* the op using transport s */
    mq_response resp[MQ_BATCH_MAX_CONCURRENCY];/* stable while curl fills it */
    op_t **ops;             /* every op added; NULL once taken */
    size_t nops, cap;
    size_t next;            /* first op not yet active */
    size_t *front;          /* ops added with MQ_BATCH_FRONT, not yet active: they are
                             * made active before any op at next (FIFO) */
    size_t front_head, front_tail;
    double first_wait;      /* bound on a paced op's wait for its first slot */
    size_t active[MQ_BATCH_MAX_CONCURRENCY];
    int nactive;
    size_t *done;           /* finished op indices, FIFO; as big as ops */
    size_t done_head, done_tail;
    op_t *taken;            /* the last op taken: its body is still lent out */
    long pending;           /* added and not yet taken */
    int running;            /* transfers in the multi handle */
};

static const char *const method_names[] = { "POST", "PUT", "DELETE" };

static void op_free(op_t *op)
{
    if (op == NULL)
        return;
    free(op->url);
    free(op->body);
    free(op->rbody);
    free(op);
}

void mq_batch_free(mq_batch *b)
{
    if (b == NULL)
        return;
    for (int s = 0; s < b->conc; s++) {
        if (b->easy[s] != NULL && b->multi != NULL)
            curl_multi_remove_handle(b->multi, b->easy[s]);
        mq_transport_free(b->t[s]);     /* before the parent: it borrows its headers */
    }
    if (b->multi != NULL)
        curl_multi_cleanup(b->multi);
    for (size_t i = 0; i < b->nops; i++)
        op_free(b->ops[i]);
    op_free(b->taken);
    free(b->ops);
    free(b->done);
    free(b->front);
    free(b);
}

int mq_batch_new(const mq_batch_env *env, int concurrency, double first_wait, mq_batch **out,
                 char *err, size_t errlen)
{
    mq_batch *b;

    *out = NULL;
    if (concurrency < 1 || concurrency > MQ_BATCH_MAX_CONCURRENCY) {
        snprintf(err, errlen, "concurrency must be 1..%d", MQ_BATCH_MAX_CONCURRENCY);
        return -1;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->env = *env;
    b->conc = concurrency;
    b->first_wait = first_wait >= 0 ? first_wait : env->cfg->max_wait;
    b->multi = curl_multi_init();
    if (b->multi == NULL) {
        snprintf(err, errlen, "curl_multi_init failed");
        goto fail;
    }
    for (int s = 0; s < concurrency; s++) {
        if (mq_transport_dup(env->parent, &b->t[s]) != 0) {
            snprintf(err, errlen, "could not make transport %d of %d", s + 1, concurrency);
            goto fail;
        }
    }
    *out = b;
    return 0;
fail:
    mq_batch_free(b);
    return -1;
}

int mq_batch_add(mq_batch *b, long long id, mq_method m, const char *path, size_t path_len,
                 const char *body, size_t body_len, double deadline, int max_retries,
                 int flags, char *err, size_t errlen)
{
    op_t *op;
    size_t ulen = b->env.base_len + path_len;

    if (ulen + 1 > URL_MAX) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    if (b->nops == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        op_t **n = realloc(b->ops, ncap * sizeof *n);
        size_t *d;
        if (n == NULL)
            goto oom;
        b->ops = n;
        /* each op enters the done queue once: it never needs more room */
        d = realloc(b->done, ncap * sizeof *d);
        if (d == NULL)
            goto oom;
        b->done = d;
        d = realloc(b->front, ncap * sizeof *d);
        if (d == NULL)
            goto oom;
        b->front = d;
        b->cap = ncap;
    }
    op = calloc(1, sizeof *op);
    if (op == NULL)
        goto oom;
    op->url = malloc(ulen + 1);
    op->body = body ? malloc(body_len + 1) : NULL;
    if (op->url == NULL || (body && op->body == NULL)) {
        op_free(op);
        goto oom;
    }
    memcpy(op->url, b->env.base, b->env.base_len);
    memcpy(op->url + b->env.base_len, path, path_len);
    op->url[ulen] = '\0';
    if (body) {
        memcpy(op->body, body, body_len);
        op->body[body_len] = '\0';
    }
    op->id = id;
    op->m = m;
    op->prog.deadline = deadline >= 0 ? deadline : b->env.cfg->deadline;
    op->prog.max_retries = max_retries >= 0 ? max_retries : b->env.cfg->max_retries;
    op->body_len = body_len;
    op->slot_since = -1;
    op->paced = (flags & MQ_BATCH_PACED) != 0;
    op->state = OP_WAITING;
    op->res.retry_after = -1;
    op->res.body = "";
    op->front = (flags & MQ_BATCH_FRONT) != 0;
    if (op->front)
        b->front[b->front_tail++] = b->nops;
    b->ops[b->nops++] = op;
    b->pending++;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

long mq_batch_pending(const mq_batch *b)
{
    return b->pending;
}

/* ---- finishing a call --------------------------------------------------- */

static void deactivate(mq_batch *b, size_t idx)
{
    for (int i = 0; i < b->nactive; i++) {
        if (b->active[i] == idx) {
            /* keep the order: the oldest call asks the limiter first */
            memmove(&b->active[i], &b->active[i + 1], (size_t)(b->nactive - i - 1) * sizeof b->active[0]);
            b->nactive--;
            return;
        }
    }
}

/* The call's verdict is in op->res; keep a copy of the answer's body. The
 * done queue has room for every op, so this cannot fail but for the body
 * copy (then the body is dropped and the message says why). */
static void finish(mq_batch *b, size_t idx, const char *body, size_t body_len)
{
    op_t *op = b->ops[idx];

    op->rbody = malloc(body_len + 1);
    if (op->rbody != NULL) {
        memcpy(op->rbody, body, body_len);
        op->rbody[body_len] = '\0';
        op->res.body = op->rbody;
        op->res.body_len = body_len;
    } else {
        op->res.body = "";
        op->res.body_len = 0;
        snprintf(op->res.message, sizeof op->res.message, "out of memory keeping the response");
    }
    free(op->url);
    free(op->body);
    op->url = op->body = NULL;
    op->state = OP_DONE;
    op->finished_at = mq_now();
    deactivate(b, idx);
    b->done[b->done_tail++] = idx;
}

/* No attempt could start: no limiter slot within bound seconds, or (bound
 * < 0) no time left. Retryable later, worded as call.c words it. */
static void stop(mq_batch *b, size_t idx, double bound, double retry_after)
{
    op_t *op = b->ops[idx];
    mq_call_cfg cfg = *b->env.cfg;
    if (!op->started)
        cfg.max_wait = b->first_wait;   /* the bound a paced first slot had */
    mq_call_stop(&cfg, &op->prog, bound, retry_after, &op->res);
    finish(b, idx, "", 0);
}

/* One attempt came back: the decision is call.c's (mq_call_next), the
 * backoff a time to come back instead of a sleep. */
static void attempt_done(mq_batch *b, size_t idx, const mq_response *r, double now)
{
    op_t *op = b->ops[idx];
    double wait = mq_call_next(b->env.cfg, b->env.st, b->env.lim, b->env.rng, op->m,
                               &op->prog, r, &op->res, now);
    if (wait < 0) {
        finish(b, idx, op->res.body, op->res.body_len);
        return;
    }
    op->not_before = now + wait;
    op->state = OP_WAITING;
}

/* ---- starting attempts -------------------------------------------------- */

static int free_transport(const mq_batch *b)
{
    for (int s = 0; s < b->conc; s++)
        if (b->easy[s] == NULL)
            return s;
    return -1;      /* cannot happen: active calls <= transports */
}

static void count_wait(mq_batch *b, op_t *op, double now)
{
    if (op->slot_since >= 0 && now - op->slot_since > 0) {
        b->env.st->limiter_waits++;
        b->env.st->limiter_wait_seconds += now - op->slot_since;
    }
    op->slot_since = -1;
}

static int out_of_time(mq_batch *b, size_t idx)
{
    stop(b, idx, -1, -1);
    return 1;
}

/* The call at idx may start an attempt now: a limiter slot, then the
 * transfer. Returns 1 when it moved on (started or finished), 0 when it
 * waits for a slot (op->not_before says until when). */
static int try_start(mq_batch *b, size_t idx, double now)
{
    op_t *op = b->ops[idx];
    const mq_call_cfg *cfg = b->env.cfg;
    double left = op->started ? op->prog.deadline_at - now : op->prog.deadline;
    double wait = 0;
    int s;
    void *easy;
    mq_response *r;

    /* out of time before asking: no slot is spent on an attempt that
     * could not be made (the confirmation of a create near its deadline) */
    if (left <= 0)
        return out_of_time(b, idx);
    if (b->env.lim != NULL) {
        if (op->slot_since < 0) {
            /* a paced op's first slot: bounded by the batch's first_wait
             * alone (its deadline has not started); any other: by the
             * client's max_wait within what is left of the deadline */
            double mw = !op->started ? b->first_wait : cfg->max_wait < left ? cfg->max_wait : left;
            op->slot_since = now;
            op->slot_bound = mw > 0 ? mw : 0;
        }
        if (!mq_limiter_try(b->env.lim, &wait)) {
            if (wait < 0.001)
                wait = 0.001;
            if (now + wait <= op->slot_since + op->slot_bound) {
                op->not_before = now + wait;
                return 0;
            }
            /* no slot can come within the bound: say so now, not at its end */
            count_wait(b, op, now);
            stop(b, idx, op->slot_bound, wait);
            op->prog.deadline_at = op->finished_at + op->prog.deadline; /* none of it spent */
            return 1;
        }
        count_wait(b, op, now);
        if (!op->started) {
            /* the deadline starts with the first attempt */
            op->prog.deadline_at = now + op->prog.deadline;
            op->started = 1;
        }
        left = op->prog.deadline_at - now;
    }
    if (left <= 0)
        return out_of_time(b, idx);

    s = free_transport(b);
    if (s < 0) {
        op->res.kind = MQ_K_NETWORK;
        snprintf(op->res.message, sizeof op->res.message, "internal: no free transport");
        finish(b, idx, "", 0);
        return 1;
    }
    r = &b->resp[s];
    easy = mq_transport_prepare(b->t[s], method_names[op->m], op->url, op->body, op->body_len,
                                cfg->timeout < left ? cfg->timeout : left,
                                cfg->connect_timeout < left ? cfg->connect_timeout : left, r);
    if (easy != NULL) {
        CURLMcode mc = curl_multi_add_handle(b->multi, easy);
        if (mc == CURLM_OK) {
            b->easy[s] = easy;
            b->op_of[s] = idx;
            b->running++;
            op->state = OP_RUNNING;
            return 1;
        }
        r->outcome = MQ_T_FAILED;
        snprintf(r->message, sizeof r->message, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    }
    attempt_done(b, idx, r, now);   /* counted as an attempt, as call.c does */
    return 1;
}

/* The next op to make active: one added at the front first (the
 * confirmation of a create must not wait behind every queued row), then
 * the queue in order (skipping front ops, made active already). */
static int next_op(mq_batch *b, size_t *idx)
{
    if (b->front_head < b->front_tail) {
        *idx = b->front[b->front_head++];
        return 1;
    }
    while (b->next < b->nops) {
        size_t i = b->next++;
        if (b->ops[i] != NULL && !b->ops[i]->front) {
            *idx = i;
            return 1;
        }
    }
    return 0;
}

static int has_queued(const mq_batch *b)
{
    if (b->front_head < b->front_tail)
        return 1;
    for (size_t i = b->next; i < b->nops; i++)
        if (b->ops[i] != NULL && !b->ops[i]->front)
            return 1;
    return 0;
}

/* Make calls active while there is room. An op's deadline starts here,
 * or, when it is paced and there is a limiter, once its first slot is
 * granted: a row queued behind the budget does not spend its deadline
 * waiting for its turn (imports pace themselves to the budget). */
static void admit(mq_batch *b, double now)
{
    size_t idx;
    while (b->nactive < b->conc && next_op(b, &idx)) {
        op_t *op = b->ops[idx];
        if (!op->paced || b->env.lim == NULL) {
            op->prog.deadline_at = now + op->prog.deadline;
            op->started = 1;
        }
        op->not_before = now;
        b->active[b->nactive++] = idx;
    }
}

/* ---- the loop -------------------------------------------------------------- */

static int wait_for(mq_batch *b, double seconds, char *err, size_t errlen)
{
    int ms = (int)(seconds * 1000.0 + 0.999);
    CURLMcode mc;
    if (ms < 1)
        ms = 1;
#if LIBCURL_VERSION_NUM >= 0x074200     /* 7.66.0: curl_multi_poll waits even with no transfers */
    mc = curl_multi_poll(b->multi, NULL, 0, ms, NULL);
#else
    if (b->running == 0) {
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        return 0;
    }
    mc = curl_multi_wait(b->multi, NULL, 0, ms, NULL);
#endif
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "curl_multi_poll: %s", curl_multi_strerror(mc));
        return -1;
    }
    return 0;
}

static int collect(mq_batch *b, char *err, size_t errlen)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(b->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;     /* msg dies with remove_handle */
        int s;
        for (s = 0; s < b->conc && b->easy[s] != easy; s++)
            ;
        if (s == b->conc)
            continue;
        CURLMcode mc = curl_multi_remove_handle(b->multi, easy);
        if (mc != CURLM_OK) {
            snprintf(err, errlen, "curl_multi_remove_handle: %s", curl_multi_strerror(mc));
            return -1;
        }
        b->easy[s] = NULL;
        b->running--;
        mq_transport_finish(b->t[s], (int)rc, &b->resp[s]);
        attempt_done(b, b->op_of[s], &b->resp[s], mq_now());
    }
    return 0;
}

int mq_batch_step(mq_batch *b, double max_seconds, char *err, size_t errlen)
{
    const double end = mq_now() + (max_seconds > 0 ? max_seconds : 0);

    for (;;) {
        double now = mq_now();
        double wake = end;
        size_t snap[MQ_BATCH_MAX_CONCURRENCY];
        int n, still;

        admit(b, now);
        n = b->nactive;     /* try_start may finish calls and reorder active */
        memcpy(snap, b->active, (size_t)n * sizeof snap[0]);
        for (int i = 0; i < n; i++) {
            op_t *op = b->ops[snap[i]];
            if (op->state == OP_WAITING && op->not_before <= now)
                try_start(b, snap[i], now);
        }
        if (b->running > 0) {
            CURLMcode mc = curl_multi_perform(b->multi, &still);
            if (mc != CURLM_OK) {
                snprintf(err, errlen, "curl_multi_perform: %s", curl_multi_strerror(mc));
                return -1;
            }
            if (collect(b, err, errlen) != 0)
                return -1;
        }
        if (b->done_tail > b->done_head)
            return (int)(b->done_tail - b->done_head);
        if (b->nactive == 0 && !has_queued(b))
            return 0;
        now = mq_now();
        if (now >= end)
            return 0;
        if (b->nactive < b->conc && has_queued(b))
            continue;       /* room was made: admit at once */
        for (int i = 0; i < b->nactive; i++) {
            op_t *op = b->ops[b->active[i]];
            if (op->state == OP_WAITING && op->not_before < wake)
                wake = op->not_before;
        }
        if (wake <= now)
            continue;
        if (wait_for(b, wake - now, err, errlen) != 0)
            return -1;
    }
}

int mq_batch_take(mq_batch *b, long long *id, mq_result *res, double *deadline_left,
                  int *ambiguous)
{
    size_t idx;

    /* the body lent out by the previous take is no longer needed */
    op_free(b->taken);
    b->taken = NULL;
    if (b->done_tail == b->done_head)
        return 0;
    idx = b->done[b->done_head++];
    b->taken = b->ops[idx];
    b->ops[idx] = NULL;
    b->pending--;
    *id = b->taken->id;
    *res = b->taken->res;
    *deadline_left = b->taken->prog.deadline_at - b->taken->finished_at;
    *ambiguous = b->taken->prog.ambiguous;
    return 1;
}
