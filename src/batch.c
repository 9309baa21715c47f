/* batch.c: the batch driver. Many calls of one client in flight at once
 * over curl's multi interface, from one thread; the engine (engine.c)
 * decides everything about each call (request, retries, backoff,
 * deadline, confirmation, messages, effect), this file only moves bytes
 * and waits.
 *
 * At most `concurrency` calls are active at once, each in a slot of its
 * own (an engine call, a transport, a response): a call waiting for its
 * backoff or for a limiter slot (taken with the non-blocking
 * mq_limiter_try) never holds up the others, and waiting is done in
 * curl_multi_poll, never in a sleep. A row's call starts when it has its
 * first limiter slot, so its deadline runs from when it is sent, not from
 * when it was queued: a batch larger than the budget paces itself to it
 * (the batch's max_wait bounds that wait; mq_engine_start_admitted is the
 * engine's word for a call whose first slot was taken before it started). Nothing here touches Lua: finished calls
 * wait in the slot for the binding to take them between steps.
 *
 * A gated batch (mq_batch_gate) holds each row at the last moment before
 * its call starts (its first limiter slot taken): the row is "ready" and
 * starts only on mq_batch_go, so a caller can write "about to send" to a
 * journal exactly before the request goes out, and never for a row that
 * is not sent. Once the first bytes of its request have been handed to
 * the network (curl's CURLINFO_REQUEST_SIZE, counted after each write to
 * the socket), the row is reported "sent" (mq_batch_take_sent), before its
 * result: a journal can say "left" of exactly the rows whose bytes left. */
#include "batch.h"
#include "clock.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a row's arguments, with the text copied into one block */
typedef struct {
    long long id;
    mq_op_args a;
    int parked;
    char *text;
} row_t;

typedef enum {
    S_FREE,         /* no call */
    S_FIRST,        /* a row waiting for its first limiter slot (no call yet) */
    S_READY,        /* gated: the row has its first slot, its call waits for go */
    S_SLOT,         /* the call waits for a limiter slot */
    S_SENDING,      /* a transfer in the multi handle */
    S_BACKOFF,      /* the call waits before its next attempt */
    S_DONE,         /* finished, waiting to be taken */
    S_TAKEN         /* taken: freed at the next take or step */
} slot_state;

typedef struct {
    slot_state st;
    long long id;
    row_t *row;             /* S_FIRST: the row (owned until the call starts) */
    mq_ecall call;
    mq_transport *t;
    void *easy;             /* in the multi handle, or NULL */
    mq_response resp;       /* stable while curl fills it */
    double not_before;      /* S_SLOT, S_FIRST, S_BACKOFF: next moment to look */
    double slot_since;      /* when the wait for this slot began */
    double max_wait;        /* how long it may last (the step's max_wait; the
                             * batch's for a row's first slot) */
    double waited;          /* S_READY: how long the first slot took */
    int unsent;             /* gated: started, no request byte written yet */
} slot_t;

/* A FIFO of slot numbers, at most `conc` long: a slot is in each of the
 * batch's FIFOs (done, ready, sent) at most once at a time. */
typedef struct {
    int *v;
    int head, tail;
} fifo_t;

static void fifo_push(fifo_t *q, int conc, int s)
{
    q->v[q->tail++ % conc] = s;
}

/* 1 with the oldest slot in *s, or 0 when empty */
static int fifo_pop(fifo_t *q, int conc, int *s)
{
    if (q->tail == q->head)
        return 0;
    *s = q->v[q->head++ % conc];
    if (q->head == q->tail)
        q->head = q->tail = 0;
    return 1;
}

static int fifo_len(const fifo_t *q)
{
    return q->tail - q->head;
}

struct mq_batch {
    mq_batch_env env;
    CURLM *multi;
    int conc;
    double max_wait;        /* a row's first slot: at most this long */
    slot_t *slots;
    row_t **rows;           /* by handle; NULL once started */
    size_t nrows, cap;
    size_t *queue;          /* runnable rows (handles), FIFO */
    size_t q_head, q_tail;
    fifo_t done;            /* finished slots */
    int gated;              /* rows wait in S_READY for mq_batch_go */
    fifo_t ready;           /* S_READY slots not yet taken */
    fifo_t sent;            /* gated: slots whose request's bytes left, not yet taken */
    long pending;           /* added and not yet taken */
    int running;            /* transfers in the multi handle */
};

static void row_free(row_t *r)
{
    if (r != NULL) {
        free(r->text);
        free(r);
    }
}

static void slot_clear(mq_batch *b, slot_t *sl)
{
    if (sl->easy != NULL) {
        curl_multi_remove_handle(b->multi, sl->easy);
        sl->easy = NULL;
        b->running--;
    }
    row_free(sl->row);
    sl->row = NULL;
    mq_engine_call_free(&sl->call);
    sl->st = S_FREE;
    sl->unsent = 0;
}

void mq_batch_free(mq_batch *b)
{
    if (b == NULL)
        return;
    for (int s = 0; b->slots != NULL && s < b->conc; s++) {
        if (b->multi != NULL)
            slot_clear(b, &b->slots[s]);
        mq_transport_free(b->slots[s].t);   /* before the parent: it borrows its headers */
    }
    if (b->multi != NULL)
        curl_multi_cleanup(b->multi);
    for (size_t i = 0; i < b->nrows; i++)
        row_free(b->rows[i]);
    free(b->rows);
    free(b->queue);
    free(b->done.v);
    free(b->ready.v);
    free(b->sent.v);
    free(b->slots);
    free(b);
}

int mq_batch_new(const mq_batch_env *env, int concurrency, double max_wait,
                 mq_batch **out, char *err, size_t errlen)
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
    b->max_wait = max_wait >= 0 ? max_wait : mq_engine_config(env->engine)->max_wait;
    b->slots = calloc((size_t)concurrency, sizeof *b->slots);
    b->done.v = calloc((size_t)concurrency, sizeof *b->done.v);
    b->ready.v = calloc((size_t)concurrency, sizeof *b->ready.v);
    b->sent.v = calloc((size_t)concurrency, sizeof *b->sent.v);
    if (b->slots == NULL || b->done.v == NULL || b->ready.v == NULL || b->sent.v == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    b->multi = curl_multi_init();
    if (b->multi == NULL) {
        snprintf(err, errlen, "curl_multi_init failed");
        goto fail;
    }
    for (int s = 0; s < concurrency; s++) {
        mq_engine_call_init(&b->slots[s].call);
        if (mq_transport_dup(env->parent, &b->slots[s].t) != 0) {
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

/* the copy of a's text, the pointers in r->a moved onto it */
static int copy_args(row_t *r, const mq_op_args *a)
{
    size_t n = a->code_len + a->patient_len + a->professional_len;
    char *p = malloc(n + 1);
    if (p == NULL)
        return -1;
    r->text = p;
    r->a = *a;
    memcpy(p, a->code, a->code_len);
    r->a.code = p;
    p += a->code_len;
    if (a->patient != NULL)
        memcpy(p, a->patient, a->patient_len);
    r->a.patient = a->patient != NULL ? p : NULL;
    p += a->patient_len;
    if (a->professional != NULL)
        memcpy(p, a->professional, a->professional_len);
    r->a.professional = a->professional != NULL ? p : NULL;
    return 0;
}

long mq_batch_add(mq_batch *b, long long id, const mq_op_args *a, int parked,
                  char *err, size_t errlen)
{
    row_t *r;

    if (b->nrows == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        row_t **n = realloc(b->rows, ncap * sizeof *n);
        size_t *q;
        if (n == NULL)
            goto oom;
        b->rows = n;
        /* each row enters the queue once: it never needs more room */
        q = realloc(b->queue, ncap * sizeof *q);
        if (q == NULL)
            goto oom;
        b->queue = q;
        b->cap = ncap;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL || copy_args(r, a) != 0) {
        row_free(r);
        goto oom;
    }
    r->id = id;
    r->parked = parked != 0;
    b->rows[b->nrows] = r;
    if (!r->parked)
        b->queue[b->q_tail++] = b->nrows;
    b->pending++;
    return (long)b->nrows++;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static row_t *parked_row(const mq_batch *b, long handle);

int mq_batch_release(mq_batch *b, long handle)
{
    row_t *r = parked_row(b, handle);
    if (r == NULL)
        return -1;
    r->parked = 0;
    b->queue[b->q_tail++] = (size_t)handle;
    return 0;
}

static row_t *parked_row(const mq_batch *b, long handle)
{
    row_t *r;
    if (handle < 0 || (size_t)handle >= b->nrows || (r = b->rows[handle]) == NULL || !r->parked)
        return NULL;
    return r;
}

const mq_op_args *mq_batch_parked(const mq_batch *b, long handle)
{
    row_t *r = parked_row(b, handle);
    return r != NULL ? &r->a : NULL;
}

int mq_batch_drop(mq_batch *b, long handle)
{
    row_t *r = parked_row(b, handle);
    if (r == NULL)
        return -1;
    row_free(r);
    b->rows[handle] = NULL;
    b->pending--;
    return 0;
}

long mq_batch_pending(const mq_batch *b)
{
    return b->pending;
}

/* ---- one slot's call, action by action ------------------------------------ */

static void apply_note(mq_batch *b, const mq_limiter_note *n)
{
    if (b->env.lim == NULL)
        return;
    switch (n->kind) {
    case MQ_NOTE_PAUSE:
        mq_limiter_pause(b->env.lim, n->pause);
        break;
    case MQ_NOTE_OBSERVE:
        mq_limiter_observe(b->env.lim, n->remaining, n->limit, n->reset);
        break;
    default:
        break;
    }
}

/* Start the transfer the engine asks for: 1 when it runs. A transfer that
 * cannot start is a failed attempt, reported as such: 0, with the engine's
 * next step in *st. */
static int start_transfer(mq_batch *b, int s, double now, mq_step *st)
{
    slot_t *sl = &b->slots[s];
    mq_request req;
    CURLMcode mc;

    mq_engine_request(&sl->call, &req);
    sl->easy = mq_transport_prepare(sl->t, mq_method_name(req.method), req.url,
                                    req.body, req.body_len, req.timeout,
                                    req.connect_timeout, &sl->resp);
    if (sl->easy == NULL) {
        *st = mq_engine_failure(&sl->call, sl->resp.outcome, sl->resp.message, 0, now);
        return 0;
    }
    mc = curl_multi_add_handle(b->multi, sl->easy);
    if (mc != CURLM_OK) {
        char why[128];
        sl->easy = NULL;
        snprintf(why, sizeof why, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        *st = mq_engine_failure(&sl->call, MQ_T_FAILED, why, 0, now);
        return 0;
    }
    b->running++;
    sl->st = S_SENDING;
    return 1;
}

/* Carry out what the engine said, until the slot has to wait for
 * something (a slot, a transfer, a backoff) or the call is done. */
static void act(mq_batch *b, int s, mq_step st, double now)
{
    slot_t *sl = &b->slots[s];
    for (;;) {
        switch (st.action) {
        case MQ_A_SLOT:
            sl->st = S_SLOT;
            sl->slot_since = now;
            sl->max_wait = st.max_wait;
            sl->not_before = now;
            return;
        case MQ_A_BACKOFF:
            sl->st = S_BACKOFF;
            sl->not_before = st.until;
            return;
        case MQ_A_DONE:
            sl->st = S_DONE;
            fifo_push(&b->done, b->conc, s);
            return;
        case MQ_A_SEND:
            if (start_transfer(b, s, now, &st))
                return;
            break;
        }
    }
}

/* The row in slot s starts its call now (its deadline runs from here);
 * with a limiter it waited for its first slot already: got says whether
 * it has one, waited how long that took, wait how long until one. */
static void start_call(mq_batch *b, int s, double now, int got, double waited, double wait,
                       const char *fault)
{
    slot_t *sl = &b->slots[s];
    mq_step st;

    if (b->gated && got && fault == NULL && sl->st != S_READY) {
        /* held until mq_batch_go: the caller records it first */
        sl->st = S_READY;
        sl->waited = waited;
        fifo_push(&b->ready, b->conc, s);
        return;
    }
    st = mq_engine_start_admitted(b->env.engine, &sl->call, &sl->row->a, now,
                                  got, waited, got ? -1 : wait, fault);
    row_free(sl->row);
    sl->row = NULL;
    act(b, s, st, now);
}

/* A slot (or a row) whose wait for a limiter slot is due: try once. */
static void try_slot(mq_batch *b, int s, double now)
{
    slot_t *sl = &b->slots[s];
    double wait = 0;
    int got = mq_limiter_try(b->env.lim, &wait);
    double waited = now - sl->slot_since;
    /* a host fault (the state file unusable) is no wait: the call ends */
    const char *fault = got ? NULL : mq_limiter_error(b->env.lim);

    if (!got && fault == NULL) {
        if (wait < 0.001)
            wait = 0.001;
        if (now + wait <= sl->slot_since + sl->max_wait) {
            sl->not_before = now + wait;
            return;
        }
        /* none can come within the bound: say so now, not at its end */
    }
    if (sl->st == S_FIRST) {
        start_call(b, s, now, got, waited, wait, fault);
        return;
    }
    act(b, s, fault ? mq_engine_host_fault(&sl->call, "rate_limit", fault)
                    : mq_engine_slot(&sl->call, got, waited, got ? -1 : wait, now), now);
}

/* A transfer is over: hand the engine what came back. */
static void transfer_done(mq_batch *b, int s, CURLcode rc, double now)
{
    slot_t *sl = &b->slots[s];
    mq_response *r = &sl->resp;
    mq_step st;

    mq_transport_finish(sl->t, (int)rc, r);
    if (r->resent)
        mq_engine_resent(&sl->call);
    if (r->outcome == MQ_T_OK) {
        mq_answer ans = { r->status, r->body, r->body_len, r->retry_after,
                          r->rl_remaining, r->rl_limit, r->rl_reset };
        st = mq_engine_response(&sl->call, &ans, now);
        apply_note(b, &st.note);
    } else {
        st = mq_engine_failure(&sl->call, r->outcome, r->message[0] ? r->message : NULL,
                               r->status, now);
    }
    act(b, s, st, now);
}

/* Give free slots to queued rows, oldest first. */
static void admit(mq_batch *b, double now)
{
    for (int s = 0; s < b->conc && b->q_head < b->q_tail; s++) {
        slot_t *sl = &b->slots[s];
        size_t h;
        if (sl->st != S_FREE)
            continue;
        h = b->queue[b->q_head++];
        sl->row = b->rows[h];
        b->rows[h] = NULL;
        sl->id = sl->row->id;
        if (b->env.lim != NULL) {
            /* the row's first slot comes before its call starts */
            sl->st = S_FIRST;
            sl->slot_since = now;
            sl->max_wait = b->max_wait;
            sl->not_before = now;
        } else {
            sl->st = S_FIRST;
            start_call(b, s, now, 1, 0, 0, NULL);
        }
    }
}

/* ---- the loop --------------------------------------------------------------- */

static int wait_for(mq_batch *b, double seconds, char *err, size_t errlen)
{
    int ms = seconds > 3600 ? 3600000 : (int)(seconds * 1000.0 + 0.999);
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

/* 1 when slot s's transfer has written request bytes to its socket */
static int bytes_left(const slot_t *sl)
{
    curl_off_t n = 0;
    return sl->easy != NULL && curl_easy_getinfo(sl->easy, CURLINFO_REQUEST_SIZE, &n) == CURLE_OK
           && n > 0;
}

/* After a perform, before its finished transfers are collected: the
 * gated rows whose request has begun to leave are reported sent. */
static void note_sent(mq_batch *b)
{
    for (int s = 0; s < b->conc; s++) {
        slot_t *sl = &b->slots[s];
        if (sl->unsent && bytes_left(sl)) {
            sl->unsent = 0;
            fifo_push(&b->sent, b->conc, s);
        }
    }
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
        for (s = 0; s < b->conc && b->slots[s].easy != easy; s++)
            ;
        if (s == b->conc)
            continue;
        CURLMcode mc = curl_multi_remove_handle(b->multi, easy);
        if (mc != CURLM_OK) {
            snprintf(err, errlen, "curl_multi_remove_handle: %s", curl_multi_strerror(mc));
            return -1;
        }
        b->slots[s].easy = NULL;
        b->running--;
        transfer_done(b, s, rc, mq_now());
    }
    return 0;
}

static void release_taken(mq_batch *b)
{
    for (int s = 0; s < b->conc; s++)
        if (b->slots[s].st == S_TAKEN)
            slot_clear(b, &b->slots[s]);
}

static int waiting(slot_state st)
{
    return st == S_FIRST || st == S_SLOT || st == S_BACKOFF;
}

int mq_batch_step(mq_batch *b, double max_seconds, char *err, size_t errlen)
{
    const double end = mq_now() + (max_seconds > 0 ? max_seconds : 0);

    release_taken(b);
    for (;;) {
        double now = mq_now();
        double wake = end;
        int still, busy = 0;

        admit(b, now);
        for (int s = 0; s < b->conc; s++) {
            slot_t *sl = &b->slots[s];
            if (!waiting(sl->st) || sl->not_before > now)
                continue;
            if (sl->st == S_BACKOFF) {
                act(b, s, mq_engine_wake(&sl->call, now), now);
            } else {
                try_slot(b, s, now);
            }
        }
        if (b->running > 0) {
            CURLMcode mc = curl_multi_perform(b->multi, &still);
            if (mc != CURLM_OK) {
                snprintf(err, errlen, "curl_multi_perform: %s", curl_multi_strerror(mc));
                return -1;
            }
            note_sent(b);
            if (collect(b, err, errlen) != 0)
                return -1;
        }
        if (fifo_len(&b->done) > 0 || fifo_len(&b->ready) > 0 || fifo_len(&b->sent) > 0)
            return fifo_len(&b->done);
        for (int s = 0; s < b->conc; s++) {
            slot_t *sl = &b->slots[s];
            if (sl->st != S_FREE)
                busy = 1;
            if (waiting(sl->st) && sl->not_before < wake)
                wake = sl->not_before;
        }
        if (!busy && b->q_head == b->q_tail)
            return 0;       /* nothing runs; parked rows wait for a release */
        now = mq_now();
        if (now >= end)
            return 0;
        if (wake <= now)
            continue;
        if (wait_for(b, wake - now, err, errlen) != 0)
            return -1;
    }
}

int mq_batch_take(mq_batch *b, long long *id, const mq_ecall **call)
{
    slot_t *sl;
    int s;

    if (!fifo_pop(&b->done, b->conc, &s))
        return 0;
    sl = &b->slots[s];
    sl->st = S_TAKEN;       /* the call stays readable until the next step */
    b->pending--;
    *id = sl->id;
    *call = &sl->call;
    return 1;
}

void mq_batch_gate(mq_batch *b)
{
    b->gated = 1;
}

int mq_batch_take_ready(mq_batch *b, long long *id)
{
    int s;

    if (!fifo_pop(&b->ready, b->conc, &s))
        return 0;
    *id = b->slots[s].id;
    return 1;
}

int mq_batch_go(mq_batch *b, long long id)
{
    for (int s = 0; s < b->conc; s++) {
        slot_t *sl = &b->slots[s];
        if (sl->st == S_READY && sl->id == id) {
            int still;
            start_call(b, s, mq_now(), 1, sl->waited, 0, NULL);
            if (sl->st == S_DONE)
                return 0;       /* refused before sending: nothing left */
            sl->unsent = 1;
            /* the request leaves now, not at the next step: the caller's
             * "about to send" and the send stay as close as they can be
             * (a failure here is met again by the next step) */
            if (b->running > 0)
                (void)curl_multi_perform(b->multi, &still);
            if (bytes_left(sl)) {
                sl->unsent = 0;
                return 1;
            }
            return 0;
        }
    }
    return -1;
}

int mq_batch_take_sent(mq_batch *b, long long *id)
{
    int s;

    /* the slot still holds the row: a slot is freed at the next step
     * only, and the binding takes every sent row in the same step */
    if (!fifo_pop(&b->sent, b->conc, &s))
        return 0;
    *id = b->slots[s].id;
    return 1;
}

double mq_batch_slot_wait(const mq_batch *b)
{
    double now = mq_now(), best = -1;
    for (int s = 0; s < b->conc; s++) {
        const slot_t *sl = &b->slots[s];
        if (sl->st == S_FIRST || sl->st == S_SLOT) {
            double w = sl->not_before > now ? sl->not_before - now : 0;
            if (best < 0 || w < best)
                best = w;
        }
    }
    return best;
}
