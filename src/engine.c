/* engine.c: one API call as a state machine, sans I/O (see engine.h).
 *
 * The rules that used to live in four places (call.c's loop, protocol.lua's
 * shaping, mediquo.lua's confirm, ngx.lua's copy of the loop) live here
 * once: what to send, what each answer means, whether and when to try
 * again, when to give up, what the caller is told, and what the server's
 * rate-limit headers mean for the shared budget. Nothing here reads a
 * clock, sleeps, touches a socket or a Lua state: the driver passes `now`
 * in and does the waiting, so the blocking client, batches and nginx
 * cosockets share every decision, and a test can drive it with a fake
 * clock. */
#include "engine.h"
#include "answer.h"
#include "baseurl.h"
#include "explain.h"
#include "secrets.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_STACK 4096     /* answers up to this size are scanned without malloc */
#define FIELD_CAP (64 * 17) /* 64 fields, 16 messages each (+ the field) */

struct mq_engine {
    mq_engine_cfg cfg;
    char *base_url;         /* owned copy: cfg.base_url points at it */
    size_t origin_len;      /* "scheme://authority" */
    size_t base_len;        /* origin + base path, no trailing slash */
    mq_secrets keys;
    uint64_t rng;
    mq_engine_stats st;
};

static const char *const op_names[MQ_OP__COUNT] = {
    "create", "reschedule", "cancel",
    "webhooks", "subscribe", "update_subscription", "unsubscribe",
};
/* the method each operation is sent with */
static const mq_method op_methods[MQ_OP__COUNT] = {
    MQ_M_POST, MQ_M_PUT, MQ_M_DELETE, MQ_M_GET, MQ_M_POST, MQ_M_PUT, MQ_M_DELETE,
};
static const char *const action_names[] = { "slot", "send", "backoff", "done" };
static const char *const effect_names[] = { "none", "unknown", "done" };

const char *mq_op_name(mq_op op) { return (unsigned)op < MQ_OP__COUNT ? op_names[op] : "?"; }
const char *mq_action_name(mq_action a) { return action_names[a]; }
const char *mq_effect_name(mq_effect e) { return effect_names[e]; }

int mq_op_parse(const char *s, mq_op *op)
{
    for (int i = 0; i < MQ_OP__COUNT; i++) {
        if (strcmp(s, op_names[i]) == 0) {
            *op = (mq_op)i;
            return 0;
        }
    }
    return -1;
}

/* ---- the engine ---------------------------------------------------------- */

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void mq_engine_free(mq_engine *e)
{
    if (e == NULL)
        return;
    mq_secrets_free(&e->keys);
    free(e->base_url);
    free(e);
}

const char *mq_engine_check_max_retries(double v)
{
    if (!(v >= 0 && v <= MQ_MAX_RETRIES_MAX) || v != (double)(int)v)
        return "must be an integer from 0 to " MQ_XSTR(MQ_MAX_RETRIES_MAX);
    return NULL;
}

int mq_engine_new(const mq_engine_cfg *cfg, uint64_t seed, mq_engine **out,
                  char *err, size_t errlen)
{
    mq_base_url base;
    const char *why;
    mq_engine *e;

    *out = NULL;
    /* the one parser (baseurl.c); http or https is the binding's choice */
    why = mq_base_url_parse(cfg->base_url, cfg->base_url ? strlen(cfg->base_url) : 0, 1, &base);
    if (why != NULL) {
        snprintf(err, errlen, "base_url %s", why);
        return -1;
    }
    if (!(cfg->deadline > 0) || !(cfg->timeout > 0) || !(cfg->connect_timeout > 0)
        || mq_engine_check_max_retries((double)cfg->max_retries) != NULL) {
        snprintf(err, errlen, "timeout, connect_timeout and deadline must be > 0, "
                 "max_retries 0..100");
        return -1;
    }
    e = calloc(1, sizeof *e);
    if (e == NULL || (e->base_url = dup_n(base.url, base.url_len)) == NULL)
        goto oom;
    e->cfg = *cfg;
    e->cfg.base_url = e->base_url;
    e->cfg.api_key = e->cfg.secret_key = NULL;    /* kept below, never handed out */
    if (!(e->cfg.limiter_period > 0))
        e->cfg.limiter_period = 60;
    e->origin_len = base.origin_len;
    e->base_len = base.url_len;
    if (mq_secrets_init(&e->keys, cfg->api_key, cfg->secret_key) != 0)
        goto oom;
    e->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    *out = e;
    return 0;
oom:
    mq_engine_free(e);
    snprintf(err, errlen, "out of memory");
    return -1;
}

const mq_engine_cfg *mq_engine_config(const mq_engine *e)
{
    return &e->cfg;
}

mq_engine_stats *mq_engine_stats_of(mq_engine *e)
{
    return &e->st;
}

void mq_engine_scrub(const mq_engine *e, char *s, size_t len)
{
    mq_secrets_scrub(&e->keys, s, len);
}

static size_t clean(const mq_engine *e, const char *s, size_t len, char *out)
{
    return mq_secrets_show(&e->keys, s, len, out);
}

/* ASCII case-insensitive: does s hold what (lower case)? */
static int says(const char *s, const char *what)
{
    size_t n = strlen(what);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && (s[i] | 0x20) == what[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* ---- the call -------------------------------------------------------------- */

void mq_engine_call_init(mq_ecall *c)
{
    memset(c, 0, offsetof(mq_ecall, url));
    c->url[0] = c->body[0] = c->message[0] = c->text_inline[0] = '\0';
}

void mq_engine_call_free(mq_ecall *c)
{
    free(c->text);
    free(c->fields);
    free(c->fields_buf);
    c->text = NULL;
    c->text_cap = 0;
    c->fields = NULL;
    c->fields_buf = NULL;
    c->nfields = 0;
    c->rcode = c->rurl = NULL;
    c->rbody = NULL;
}

/* The request of method m for the call's code (and, for a body, a; NULL:
 * the body written before stays, for a subscribe sent again). */
static void build(mq_engine *e, mq_ecall *c, mq_method m, const mq_op_args *a)
{
    c->m = m;
    memcpy(c->url, e->base_url, e->base_len);
    c->url_len = e->base_len + mq_request_path_op(c->op, m, c->code, c->code_len,
                                                  c->url + e->base_len);
    c->path_off = e->origin_len;
    c->has_body = m == MQ_M_POST || m == MQ_M_PUT;
    if (a != NULL)
        c->body_len = mq_request_body(m, a, c->body);
}

static void reset(mq_engine *e, mq_ecall *c, mq_op op)
{
    c->e = e;
    c->op = op;
    c->state = MQ_W_IDLE;
    c->attempts = c->retry = 0;
    c->max_attempts = e->cfg.max_retries + 1;
    c->ambiguous = c->confirming = c->create_attempts = 0;
    c->settling = c->settled = 0;
    c->note.kind = MQ_NOTE_NONE;
    c->kind = MQ_K_OK;
    c->status = 0;
    c->retry_after = -1;
    c->effect = MQ_EFFECT_NONE;
    c->retryable = 0;
    c->message[0] = '\0';
    c->field[0] = '\0';
    c->rcode = c->rurl = NULL;
    c->rcode_len = c->rurl_len = 0;
    c->rbody = NULL;
    c->rbody_len = 0;
    c->nfields = 0;
}

/* ---- the answer ------------------------------------------------------------ */

/* a step with only its action (no bound, no note) */
static mq_step step_of(mq_action a, double until)
{
    mq_step st;
    memset(&st, 0, sizeof st);
    st.action = a;
    st.until = until;
    return st;
}

static mq_step done(mq_ecall *c)
{
    c->state = MQ_W_DONE;
    return step_of(MQ_A_DONE, 0);
}

static mq_step succeed(mq_ecall *c)
{
    c->kind = MQ_K_OK;
    c->e->st.ok++;
    return done(c);
}

/* The call ends in failure. c->message holds why: the server's own words
 * (bare) or the driver's / the engine's. stop: why no other attempt was
 * made, or NULL. Here the effect is settled (and explain.c says it). */
static mq_step fail(mq_ecall *c, int bare, const char *stop)
{
    char why[MQ_ENGINE_MSG_MAX];

    if (c->confirming)
        c->effect = MQ_EFFECT_DONE;
    else if (c->ambiguous || (c->kind == MQ_K_BAD_RESPONSE && c->status >= 200 && c->status < 300))
        c->effect = MQ_EFFECT_UNKNOWN;
    else
        c->effect = MQ_EFFECT_NONE;
    if (c->effect == MQ_EFFECT_DONE)
        c->retryable = 0;   /* a retry would only be told it exists */
    memcpy(why, c->message, sizeof why);
    mq_explain_failure(c->message, sizeof c->message, why, bare, c->op, c->attempts,
                       c->max_attempts, stop, c->effect);
    c->e->st.by_kind[c->kind]++;
    return done(c);
}

/* No attempt could start: no limiter slot within `bound` seconds (bound
 * >= 0: rate_limited, with retry_after), or the deadline passed. */
static mq_step stop_before(mq_ecall *c, double bound, double retry_after)
{
    const mq_engine_cfg *cfg = &c->e->cfg;
    int before = c->attempts + 1;

    if (before > c->max_attempts)
        c->max_attempts = before;
    c->status = 0;
    c->retryable = 1;       /* both reasons pass with time */
    c->effect = c->confirming ? MQ_EFFECT_DONE : c->ambiguous ? MQ_EFFECT_UNKNOWN
              : MQ_EFFECT_NONE;
    c->kind = bound >= 0 ? MQ_K_RATE_LIMITED : MQ_K_TIMEOUT;
    c->retry_after = bound >= 0 && retry_after >= 0 ? retry_after : -1;
    mq_explain_before(c->message, sizeof c->message, c->op, bound, bound < cfg->max_wait,
                      cfg->deadline, before, c->max_attempts, c->effect);
    if (c->effect == MQ_EFFECT_DONE)
        c->retryable = 0;
    c->e->st.by_kind[c->kind]++;
    return done(c);
}

/* ---- attempts -------------------------------------------------------------- */

static mq_step ready(mq_ecall *c, double now)
{
    const mq_engine_cfg *cfg = &c->e->cfg;
    double left = c->deadline_at - now;

    if (left <= 0)
        return stop_before(c, -1, -1);
    c->timeout = cfg->timeout < left ? cfg->timeout : left;
    c->connect_timeout = cfg->connect_timeout < left ? cfg->connect_timeout : left;
    c->state = MQ_W_SEND;
    return step_of(MQ_A_SEND, c->deadline_at);
}

/* The next attempt: a limiter slot first (when there is a limiter), never
 * one spent on an attempt that could not be made in time. */
static mq_step next_attempt(mq_ecall *c, double now)
{
    const mq_engine_cfg *cfg = &c->e->cfg;
    double left = c->deadline_at - now;
    mq_step st;

    if (left <= 0)
        return stop_before(c, -1, -1);
    if (cfg->max_wait < 0)
        return ready(c, now);
    c->max_wait = cfg->max_wait < left ? cfg->max_wait : left;
    c->state = MQ_W_SLOT;
    st = step_of(MQ_A_SLOT, now + c->max_wait);
    st.max_wait = c->max_wait;
    return st;
}

mq_step mq_engine_start(mq_engine *e, mq_ecall *c, const mq_op_args *a, double now)
{
    reset(e, c, a->op);
    c->code_len = a->code_len <= MQ_MAX_ID ? a->code_len : MQ_MAX_ID;
    if (c->code_len > 0)
        memcpy(c->code, a->code, c->code_len);
    c->code[c->code_len] = '\0';
    if (a->op != MQ_OP_CREATE && a->op != MQ_OP_RESCHEDULE)
        c->starts_at[0] = '\0';
    else
        memcpy(c->starts_at, a->starts_at, MQ_ISO_LEN);
    c->starts_at[MQ_ISO_LEN - 1] = '\0';
    c->ambiguous = a->resumed != 0;
    c->deadline_at = now + e->cfg.deadline;
    c->wh_type_len = c->wh_url_len = 0;
    if (a->op == MQ_OP_WH_SUBSCRIBE) {
        c->wh_type_len = a->wh_type_len <= MQ_WH_TYPE_MAX ? a->wh_type_len : MQ_WH_TYPE_MAX;
        memcpy(c->wh_type, a->wh_type, c->wh_type_len);
        c->wh_url_len = a->wh_url_len <= MQ_WH_URL_MAX ? a->wh_url_len : MQ_WH_URL_MAX;
        memcpy(c->wh_url, a->wh_url, c->wh_url_len);
    }
    c->wh_type[c->wh_type_len] = '\0';
    c->wh_url[c->wh_url_len] = '\0';
    build(e, c, op_methods[a->op], a);
    return next_attempt(c, now);
}

mq_step mq_engine_start_admitted(mq_engine *e, mq_ecall *c, const mq_op_args *a, double now,
                                 int granted, double waited, double retry_after,
                                 const char *fault)
{
    mq_step st = mq_engine_start(e, c, a, now);

    if (st.action != MQ_A_SLOT)
        return st;
    if (fault != NULL)
        return mq_engine_host_fault(c, "rate_limit", fault);
    return mq_engine_slot(c, granted, waited, retry_after, now);
}

mq_step mq_engine_refuse(mq_engine *e, mq_ecall *c, mq_op op, mq_kind kind,
                         const char *field, const char *why)
{
    reset(e, c, (unsigned)op < MQ_OP__COUNT ? op : MQ_OP_CREATE);
    c->m = op_methods[c->op];
    c->url_len = c->path_off = 0;
    c->url[0] = '\0';
    c->kind = kind;
    mq_explain_refusal(c->message, sizeof c->message, field, why);
    /* "unknown field 'x'...": the field is x, the where names the table */
    if (why != NULL && strncmp(why, "unknown field '", 15) == 0 && strchr(why + 15, '\'') != NULL)
        snprintf(c->field, sizeof c->field, "%.*s", (int)(strchr(why + 15, '\'') - (why + 15)),
                 why + 15);
    else
        snprintf(c->field, sizeof c->field, "%s", field ? field : "");
    c->effect = MQ_EFFECT_NONE;
    e->st.by_kind[kind]++;
    return done(c);
}

mq_step mq_engine_host_fault(mq_ecall *c, const char *what, const char *why)
{
    int before = c->attempts + 1;

    if (before > c->max_attempts)
        c->max_attempts = before;
    c->status = 0;
    c->retry_after = -1;
    c->kind = MQ_K_CONFIG;
    c->effect = c->confirming ? MQ_EFFECT_DONE : c->ambiguous ? MQ_EFFECT_UNKNOWN
              : MQ_EFFECT_NONE;
    c->retryable = 0;       /* the host's setup: trying again will not mend it */
    mq_explain_host_fault(c->message, sizeof c->message, c->op, what, why, before,
                          c->max_attempts, c->effect);
    c->e->st.by_kind[c->kind]++;
    return done(c);
}

mq_step mq_engine_slot(mq_ecall *c, int granted, double waited, double retry_after,
                       double now)
{
    mq_engine_stats *st = &c->e->st;

    if (waited > 0) {
        st->limiter_waits++;
        st->limiter_wait_seconds += waited;
    }
    if (!granted)
        return stop_before(c, c->max_wait, retry_after);
    return ready(c, now);
}

const mq_request *mq_engine_request(const mq_ecall *c, mq_request *out)
{
    out->method = c->m;
    out->url = c->url;
    out->url_len = c->url_len;
    out->path = c->url + c->path_off;
    out->path_len = c->url_len - c->path_off;
    out->body = c->has_body ? c->body : NULL;
    out->body_len = c->has_body ? c->body_len : 0;
    out->timeout = c->timeout;
    out->connect_timeout = c->connect_timeout;
    return out;
}

mq_limiter_note mq_engine_note(const mq_ecall *c)
{
    return c->note;
}

void mq_engine_resent(mq_ecall *c)
{
    c->ambiguous = 1;
}

/* A failed attempt: try again (after a backoff) or end the call. bare: the
 * message is the server's own; stop_if_not: said when the failure may
 * have been processed and is not retried for that reason. */
static mq_step decide(mq_ecall *c, const mq_verdict *v, int bare, double retry_after,
                      double now)
{
    mq_engine *e = c->e;
    double wait;
    char stop[96];
    mq_step st;

    /* a subscribe that may have been processed is not sent again blind:
     * the next attempt lists the subscriptions, and only if ours is not
     * there is it sent again (response()) */
    int settle = c->op == MQ_OP_WH_SUBSCRIBE && c->m == MQ_M_POST && v->ambiguous
                 && mq_kind_retryable(v->kind);

    c->kind = v->kind;
    c->retryable = mq_kind_retryable(v->kind);
    c->retry_after = retry_after >= 0 ? retry_after : -1;
    if (!v->retryable && !settle)
        return fail(c, bare, v->ambiguous ? MQ_STOP_RETRY_POST : NULL);
    if (c->attempts >= c->max_attempts)
        return fail(c, bare, NULL);
    wait = mq_backoff(c->retry + 1, mq_rand_unit(&e->rng));
    if (retry_after > wait)
        wait = retry_after;
    if (now + wait >= c->deadline_at) {
        /* the next attempt could not start in time: this is the answer */
        mq_explain_no_time(stop, sizeof stop, e->cfg.deadline);
        return fail(c, bare, stop);
    }
    c->retry++;
    e->st.retries++;
    if (settle) {
        c->settling = 1;
        build(e, c, MQ_M_GET, NULL);
    }
    c->state = MQ_W_BACKOFF;
    st = step_of(MQ_A_BACKOFF, now + wait);
    st.backoff = wait;
    return st;
}

mq_step mq_engine_wake(mq_ecall *c, double now)
{
    return next_attempt(c, now);
}

mq_step mq_engine_failure(mq_ecall *c, mq_outcome o, const char *message, long status,
                          double now)
{
    mq_verdict v = mq_classify(c->m, o, status, c->e->cfg.retry_post);

    c->attempts++;
    c->e->st.requests++;
    memset(&c->note, 0, sizeof c->note);
    c->note.kind = MQ_NOTE_NONE;
    c->ambiguous |= v.ambiguous;
    c->status = o == MQ_T_TOO_BIG && status > 0 ? status : 0;
    if (message != NULL && message[0])
        clean(c->e, message, strlen(message), c->message);
    else
        snprintf(c->message, sizeof c->message, "%s", mq_kind_name(v.kind));
    if (o == MQ_T_TOO_BIG && status >= 200 && status < 300)
        c->ambiguous |= !c->confirming;     /* processed; the answer unread */
    v.retryable = v.retryable && o != MQ_T_TOO_BIG;
    if (o == MQ_T_TLS) {
        mq_step st = decide(c, &v, 0, -1, now);
        c->retryable = 0;   /* a certificate will not fix itself */
        return st;
    }
    return decide(c, &v, 0, -1, now);
}

/* Where to keep an answer's strings: in the call, or on the heap for an
 * unusually long one. NULL when out of memory. */
static char *text_room(mq_ecall *c, size_t need)
{
    if (need <= sizeof c->text_inline)
        return c->text_inline;
    if (need > c->text_cap) {
        char *t = realloc(c->text, need);
        if (t == NULL)
            return NULL;
        c->text = t;
        c->text_cap = need;
    }
    return c->text;
}

/* a webhook operation's 2xx JSON kept (scrubbed) for the caller; 0 when
 * out of memory */
static int keep_body(mq_ecall *c, const char *body, size_t len)
{
    char *t = text_room(c, len + 1);
    if (t == NULL)
        return 0;
    memcpy(t, body, len);
    t[len] = '\0';
    mq_engine_scrub(c->e, t, len);
    c->rbody = t;
    c->rbody_len = len;
    return 1;
}

/* 1: a 2xx body that is the documented answer (the appointment kept and
 * scrubbed; for a cancel, any JSON object; for a webhook operation, a JSON
 * object, kept; for unsubscribe, also none: 204) */
static int read_success(mq_ecall *c, const mq_answer *r, char *scratch)
{
    if (MQ_OP_IS_WEBHOOK(c->op)) {
        mq_answer_err eb = { NULL, 0, NULL, 0, 0 };
        if (c->op == MQ_OP_WH_UNSUBSCRIBE && r->body_len == 0)
            return 1;
        size_t i = 0;
        while (i < r->body_len && (r->body[i] == ' ' || r->body[i] == '\t'
                                   || r->body[i] == '\n' || r->body[i] == '\r'))
            i++;
        if (i == r->body_len || r->body[i] != '{'
            || !mq_answer_error(r->body, r->body_len, scratch, &eb))
            return 0;
        return c->op == MQ_OP_WH_UNSUBSCRIBE || keep_body(c, r->body, r->body_len);
    }
    if (c->m == MQ_M_DELETE) {
        mq_answer_err eb = { NULL, 0, NULL, 0, 0 };
        return mq_answer_error(r->body, r->body_len, scratch, &eb);
    }
    mq_appt a;
    char *t;
    if (!mq_answer_appointment(r->body, r->body_len, scratch, &a))
        return 0;
    if ((t = text_room(c, a.code_len + a.url_len + 2)) == NULL)
        return 0;
    memcpy(t, a.code, a.code_len);
    t[a.code_len] = '\0';
    memcpy(t + a.code_len + 1, a.url, a.url_len);
    t[a.code_len + 1 + a.url_len] = '\0';
    mq_engine_scrub(c->e, t, a.code_len);
    mq_engine_scrub(c->e, t + a.code_len + 1, a.url_len);
    c->rcode = t;
    c->rcode_len = a.code_len;
    c->rurl = t + a.code_len + 1;
    c->rurl_len = a.url_len;
    return 1;
}

/* A 422's field messages, cleaned into the call's heap. */
static void keep_fields(mq_ecall *c, const mq_answer_field *f, size_t n)
{
    size_t need = 0, off = 0;
    char *buf;
    mq_field_msg *out;

    for (size_t i = 0; i < n; i++)
        need += 2 * (MQ_SHOW_MAX + 4);
    free(c->fields);
    free(c->fields_buf);
    c->fields = NULL;
    c->fields_buf = NULL;
    c->nfields = 0;
    if (n == 0)
        return;
    out = malloc(n * sizeof *out);
    buf = malloc(need);
    if (out == NULL || buf == NULL) {
        free(out);
        free(buf);
        return;     /* the fields are an extra: the error stands without them */
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = clean(c->e, f[i].key, f[i].key_len, buf + off);
        out[i].field = buf + off;
        out[i].field_len = len;
        off += len + 1;
        if (f[i].msg != NULL) {
            len = clean(c->e, f[i].msg, f[i].msg_len, buf + off);
            out[i].msg = buf + off;
            out[i].msg_len = len;
            off += len + 1;
        } else {
            out[i].msg = NULL;
            out[i].msg_len = 0;
        }
    }
    c->fields = out;
    c->fields_buf = buf;
    c->nfields = n;
}

/* The confirming PUT of a create that exists: a reschedule to the same
 * start is idempotent and hands back a live URL. Within the same call:
 * its deadline, its attempts (at least this one). */
static mq_step confirm(mq_ecall *c, double now)
{
    mq_op_args a;

    memset(&a, 0, sizeof a);
    a.code = c->code;
    a.code_len = c->code_len;
    memcpy(a.starts_at, c->starts_at, MQ_ISO_LEN);
    c->confirming = 1;
    c->create_attempts = c->attempts;
    if (c->max_attempts < c->attempts + 1)
        c->max_attempts = c->attempts + 1;
    build(c->e, c, MQ_M_PUT, &a);
    return next_attempt(c, now);
}

mq_step mq_engine_response(mq_ecall *c, const mq_answer *r, double now)
{
    mq_engine *e = c->e;
    mq_verdict v = mq_classify(c->m, MQ_T_OK, r->status, e->cfg.retry_post);
    int ambiguous_before = c->ambiguous, bare = 0;
    char stack[SCAN_STACK], *scratch = stack;
    mq_step act;

    c->attempts++;
    e->st.requests++;
    c->status = r->status;
    /* what the answer means for everyone sharing the budget */
    memset(&c->note, 0, sizeof c->note);
    c->note.kind = MQ_NOTE_NONE;
    if (r->status == 429) {
        c->note.kind = MQ_NOTE_PAUSE;
        c->note.pause = r->retry_after >= 0 ? r->retry_after
                      : r->rl_reset >= 0 ? r->rl_reset : e->cfg.limiter_period;
    } else if (r->rl_remaining >= 0) {
        c->note.kind = MQ_NOTE_OBSERVE;
        c->note.remaining = r->rl_remaining;
        c->note.limit = r->rl_limit;
        c->note.reset = r->rl_reset;
    }
    c->ambiguous |= v.ambiguous;

    if (r->body_len > SCAN_STACK && (scratch = malloc(r->body_len)) == NULL) {
        snprintf(c->message, sizeof c->message, "out of memory reading the %ld answer", r->status);
        c->kind = MQ_K_BAD_RESPONSE;
        c->retryable = 0;
        return fail(c, 0, NULL);
    }
    if (v.kind == MQ_K_OK && c->settling) {
        /* the list after an ambiguous subscribe: ours there, or send again */
        mq_answer_sub sub = { c->wh_type, c->wh_type_len, c->wh_url, c->wh_url_len, NULL, 0 };
        if (!mq_answer_subscription(r->body, r->body_len, scratch, &sub)) {
            c->kind = MQ_K_BAD_RESPONSE;
            c->retryable = 0;
            mq_explain_bad_answer(c->message, sizeof c->message, r->status);
            act = fail(c, 1, NULL);
            goto out;
        }
        {
            c->settling = 0;
            if (sub.obj != NULL) {
                c->settled = 1;
                if (keep_body(c, sub.obj, sub.obj_len)) {
                    act = succeed(c);
                } else {
                    snprintf(c->message, sizeof c->message, "out of memory keeping the answer");
                    c->kind = MQ_K_BAD_RESPONSE;
                    c->retryable = 0;
                    c->ambiguous = 0;   /* it is there: the effect is known */
                    act = fail(c, 0, NULL);
                }
                goto out;
            }
            c->ambiguous = 0;       /* not processed: this call has done nothing yet */
            /* the POST again, as the confirm of a create runs: at least
             * this one more attempt, within the same deadline */
            if (c->max_attempts < c->attempts + 1)
                c->max_attempts = c->attempts + 1;
            build(e, c, MQ_M_POST, NULL);
            act = next_attempt(c, now);
            goto out;
        }
    }
    if (v.kind == MQ_K_OK) {
        if (read_success(c, r, scratch)) {
            act = succeed(c);
            goto out;
        }
        c->kind = MQ_K_BAD_RESPONSE;
        c->retryable = 0;
        mq_explain_bad_answer(c->message, sizeof c->message, r->status);
        act = fail(c, 1, NULL);
        goto out;
    }

    {
        mq_answer_field f[FIELD_CAP];
        mq_answer_err eb = { NULL, 0, v.kind == MQ_K_UNPROCESSABLE ? f : NULL, 0, FIELD_CAP };
        if (mq_answer_error(r->body, r->body_len, scratch, &eb) && eb.message != NULL) {
            clean(e, eb.message, eb.message_len, c->message);
            bare = 1;
        } else {
            mq_explain_status(c->message, sizeof c->message, r->status);
        }
        if (v.kind == MQ_K_UNPROCESSABLE)
            keep_fields(c, f, eb.nfields);
        if (r->status == 404)
            mq_explain_not_found(c->message, sizeof c->message, c->url + c->path_off);
    }
    /* exactly once: an earlier attempt of this call may have been
     * processed, and this one says it was */
    if (v.kind == MQ_K_BAD_REQUEST && ambiguous_before && bare) {
        if (c->m == MQ_M_POST && says(c->message, "already exist")) {
            act = confirm(c, now);
            goto out;
        }
        if (c->m == MQ_M_DELETE && says(c->message, "already cancel")) {
            act = succeed(c);
            goto out;
        }
    }
    /* an unsubscribe sent again after an attempt that may have been
     * processed: "not found" is that attempt's work (a soft delete) */
    if (v.kind == MQ_K_NOT_FOUND && ambiguous_before && c->op == MQ_OP_WH_UNSUBSCRIBE) {
        c->settled = 1;
        act = succeed(c);
        goto out;
    }
    act = decide(c, &v, bare, r->retry_after, now);
out:
    if (scratch != stack)
        free(scratch);
    act.note = c->note;
    return act;
}

/* ---- results --------------------------------------------------------------- */

int mq_engine_ok(const mq_ecall *c)
{
    return c->state == MQ_W_DONE && c->kind == MQ_K_OK;
}

/* A success the call owes to an earlier run: a create confirmed after
 * "already exists", a cancel answered "already cancelled". */
int mq_engine_reconciled(const mq_ecall *c)
{
    return mq_engine_ok(c)
        && (c->confirming || c->settled || (c->op == MQ_OP_CANCEL && c->status >= 400));
}

void mq_engine_body(const mq_ecall *c, const char **body, size_t *len)
{
    *body = c->rbody;
    *len = c->rbody_len;
}

void mq_engine_appointment(const mq_ecall *c, const char **code, size_t *code_len,
                           const char **url, size_t *url_len)
{
    *code = c->rcode;
    *code_len = c->rcode_len;
    *url = c->rurl;
    *url_len = c->rurl_len;
}

void mq_engine_error_of(const mq_ecall *c, mq_engine_error *err)
{
    err->kind = c->kind;
    err->status = c->status;
    err->message = c->message;
    err->retryable = c->retryable;
    err->retry_after = c->retry_after;
    err->attempts = c->attempts;
    err->method = c->m;
    err->path = c->url + c->path_off;
    err->path_len = c->url_len - c->path_off;
    err->effect = c->effect;
    err->field = c->field[0] ? c->field : NULL;
    err->fields = c->fields;
    err->nfields = c->nfields;
}
