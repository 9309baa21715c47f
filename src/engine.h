/* engine.h: one mediQuo API call as a state machine (engine.c) that never
 * reads a clock, sleeps or touches a socket. The drivers (driver_easy.c:
 * libcurl easy + nanosleep; batches: curl multi; mediquo.ngx: cosockets
 * through lengine.c) only move bytes and wait; every decision is here:
 * the request (method, path, body), the verdict on each attempt, backoff
 * with full jitter, the deadline, the limiter's part, the exactly-once
 * reconciliation, every message, `effect`, and the secrets scrub.
 *
 * The conversation, `now` being the driver's monotonic seconds; every
 * function answers with the next step (mq_step: what to do, until when,
 * with which bounds, and what to note for the shared limiter):
 *
 *   mq_engine_start(call, args, now)          -> SLOT | SEND | DONE
 *   mq_engine_slot(call, granted, ..., now)   -> SEND | DONE
 *   mq_engine_response(call, resp, now)       -> SLOT | SEND | BACKOFF | DONE
 *   mq_engine_failure(call, outcome, ..., now)-> SLOT | SEND | BACKOFF | DONE
 *   mq_engine_wake(call, now)                 -> SLOT | SEND | DONE
 *
 * SLOT: take one slot of the shared limiter, waiting at most
 *       step.max_wait seconds (until step.until).
 * SEND: send mq_engine_request(call) (its timeouts already cut to the
 *       deadline, step.until), then report the response or the transport
 *       failure.
 * BACKOFF: wait step.backoff seconds (until step.until), then
 *       mq_engine_wake.
 * DONE: the call's answer is in the call (mq_engine_result_*).
 * After every response, step.note says what it means for the shared
 * limiter (pause, or calibrate); the driver applies it.
 *
 * A call lives in memory the driver owns (mq_ecall, embeddable: the
 * blocking client keeps one and reuses it, so a call allocates nothing
 * on the success path); mq_engine_call_free releases what an unusual
 * answer made it allocate (a long URL, a 422's field messages). */
#ifndef MQ_ENGINE_H
#define MQ_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "iso8601.h"
#include "policy.h"
#include "explain.h"
#include "request.h"
#include "xstr.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_BASE_MAX 1100    /* bytes of base_url (baseurl.c refuses > 1024) */
/* origin + base path + "/appointments/" + a code percent-encoded */
#define MQ_ENGINE_URL_MAX (MQ_BASE_MAX + MQ_PATH_MAX)
#define MQ_ENGINE_BODY_MAX MQ_BODY_MAX
#define MQ_ENGINE_MSG_MAX 1024
#define MQ_ENGINE_TEXT_INLINE 512   /* code + url of a usual answer */

typedef enum { MQ_A_SLOT, MQ_A_SEND, MQ_A_BACKOFF, MQ_A_DONE } mq_action;
typedef enum { MQ_NOTE_NONE, MQ_NOTE_PAUSE, MQ_NOTE_OBSERVE } mq_note;
/* What a response means for the shared limiter. */
typedef struct {
    mq_note kind;
    double pause;           /* PAUSE: seconds the whole budget waits */
    long remaining, limit;  /* OBSERVE: the server's count (limit -1: absent) */
    double reset;           /* OBSERVE: seconds to the server's window end, -1: absent */
} mq_limiter_note;
/* One step of the conversation: what the driver does next. Only the
 * fields of its action mean anything (the others are 0). */
typedef struct {
    mq_action action;
    double until;           /* SLOT: no slot after this moment; SEND: the call's
                             * deadline; BACKOFF: when to wake (driver's clock) */
    double max_wait;        /* SLOT: seconds it may wait for a limiter slot */
    double backoff;         /* BACKOFF: seconds to wait before mq_engine_wake */
    mq_limiter_note note;   /* after a response: apply it to the shared limiter */
} mq_step;
/* what a call waits for: the step the driver must report next */
typedef enum { MQ_W_IDLE, MQ_W_SLOT, MQ_W_SEND, MQ_W_BACKOFF, MQ_W_DONE } mq_wait;

#define MQ_MAX_RETRIES_MAX 100     /* max_retries: 0..100 */
#define MQ_MAX_RETRIES_DEFAULT 2

/* The one rule for the max_retries option: NULL when v (a Lua number, or
 * NaN for anything else) is an integer from 0 to MQ_MAX_RETRIES_MAX, else
 * why not (mediquo.lua asks through core.check_max_retries). */
const char *mq_engine_check_max_retries(double v);

const char *mq_op_name(mq_op op);
int mq_op_parse(const char *s, mq_op *op);
const char *mq_action_name(mq_action a);
const char *mq_effect_name(mq_effect e);

typedef struct {
    double timeout, connect_timeout, deadline;   /* seconds */
    int max_retries;
    int retry_post;
    double max_wait;        /* limiter wait bound per attempt; < 0: no limiter */
    double limiter_period;  /* the window, for a 429 with no Retry-After */
    const char *base_url;   /* scheme://authority[/path], no trailing slash needed */
    const char *api_key, *secret_key;   /* only to scrub them from answers; may be NULL */
} mq_engine_cfg;

typedef struct {
    long requests, retries, ok, limiter_waits;
    long by_kind[MQ_K__COUNT];
    double limiter_wait_seconds;
} mq_engine_stats;

typedef struct mq_engine mq_engine;

/* 0, or -1 with err (no secret in it). seed: the jitter's generator
 * (mq_rand_seed() in a driver; a fixed one in a test). */
int  mq_engine_new(const mq_engine_cfg *cfg, uint64_t seed, mq_engine **out,
                   char *err, size_t errlen);
void mq_engine_free(mq_engine *e);
const mq_engine_cfg *mq_engine_config(const mq_engine *e);
mq_engine_stats *mq_engine_stats_of(mq_engine *e);
/* Each key (6 bytes or more) in s becomes as many '*'. */
void mq_engine_scrub(const mq_engine *e, char *s, size_t len);

/* The HTTP request to send now. */
typedef struct {
    mq_method method;
    const char *url;  size_t url_len;   /* origin + path */
    const char *path; size_t path_len;  /* "/v1/appointments/A%2F1" (into url) */
    const char *body; size_t body_len;  /* NULL for DELETE */
    double timeout, connect_timeout;    /* cut to what is left of the deadline */
} mq_request;

/* A response, as the driver read it: -1 (or NULL) for what was absent. */
typedef struct {
    long status;
    const char *body; size_t body_len;
    double retry_after;     /* seconds (Retry-After, already parsed) */
    long rl_remaining, rl_limit;
    double rl_reset;        /* seconds to the server's window end */
} mq_answer;

typedef struct {
    const char *field; size_t field_len;
    const char *msg; size_t msg_len;    /* NULL: the field came with no message */
} mq_field_msg;

/* One call. Every field is the engine's (private); read it through the
 * functions below. mq_engine_call_init it (or zero it) before first use. */
typedef struct {
    mq_engine *e;
    mq_op op;
    mq_method m;
    mq_wait state;
    int attempts, max_attempts, retry;
    int ambiguous;          /* some attempt so far may have been processed */
    int confirming;         /* the create exists; this is the confirming PUT */
    int settling;           /* a subscribe that may have been processed: this
                             * is the list that says whether it was */
    int settled;            /* ... and it was: the result is the listed one */
    size_t wh_type_len, wh_url_len;
    char wh_type[MQ_WH_TYPE_MAX + 1];   /* a subscribe's, to find it listed */
    char wh_url[MQ_WH_URL_MAX + 1];
    int create_attempts;    /* attempts of the create before confirming */
    char field[48];         /* a refusal's field */
    double deadline_at;
    double max_wait;        /* how long this attempt may wait for a slot
                             * (cfg.max_wait, cut to the deadline) */
    double timeout, connect_timeout;
    size_t code_len;
    char code[MQ_MAX_ID + 1];
    char starts_at[MQ_ISO_LEN];
    size_t url_len, path_off;
    size_t body_len;
    int has_body;
    mq_limiter_note note;   /* the limiter's part of the last response */
    /* the answer */
    mq_kind kind;
    long status;
    double retry_after;
    mq_effect effect;
    int retryable;
    const char *rcode, *rurl;
    size_t rcode_len, rurl_len;
    const char *rbody;      /* a webhook operation's 2xx JSON (scrubbed), or NULL */
    size_t rbody_len;
    char *text;             /* heap, for code + url over the inline room */
    size_t text_cap;
    mq_field_msg *fields;   /* heap: a 422's field messages */
    size_t nfields;
    char *fields_buf;
    /* the buffers, last: each written before it is read (a length, or a
     * NUL the writer puts), so mq_engine_call_init zeroes only up to url
     * (~8 KB less to clear at every call's start) */
    char url[MQ_ENGINE_URL_MAX];
    char body[MQ_ENGINE_BODY_MAX];
    char message[MQ_ENGINE_MSG_MAX];
    char text_inline[MQ_ENGINE_TEXT_INLINE];
} mq_ecall;

void mq_engine_call_init(mq_ecall *c);
/* Frees what the call allocated (it may be started again afterwards). */
void mq_engine_call_free(mq_ecall *c);

/* Starts a call. Arguments refused by the binding's checks end it at once
 * through mq_engine_refuse instead. */
mq_step mq_engine_start(mq_engine *e, mq_ecall *c, const mq_op_args *a, double now);
/* Starts a call whose first limiter slot the driver asked for before the
 * call began (a batch admits a row by its first slot, so the call's
 * deadline runs from the moment it has one, not from when it was queued):
 * mq_engine_start, then that slot's answer as mq_engine_slot takes it
 * (granted, waited, retry_after), or as mq_engine_host_fault when the
 * limiter failed (fault: why, else NULL). Without a limiter (the engine's
 * max_wait < 0) the slot is not asked for and the answer is not read. */
mq_step mq_engine_start_admitted(mq_engine *e, mq_ecall *c, const mq_op_args *a, double now,
                                 int granted, double waited, double retry_after,
                                 const char *fault);
/* The call ends before anything is sent: invalid_argument "<field>: <why>"
 * (kind may also be MQ_K_CONFIG for host setup faults). Counted. */
mq_step mq_engine_refuse(mq_engine *e, mq_ecall *c, mq_op op, mq_kind kind,
                         const char *field, const char *why);
/* The slot asked for: granted or not (after waiting `waited` seconds;
 * retry_after: when the limiter expects one, -1 when unknown). */
mq_step mq_engine_slot(mq_ecall *c, int granted, double waited, double retry_after,
                       double now);
/* The host's own setup failed before the next attempt could start (while
 * the call waits for a slot or is to send): `what` could not serve, `why`
 * (the limiter: its state file shrunk or gone; nginx: a directive it
 * needs is missing). The call ends with kind config, never retryable, its
 * effect that of the attempts made so far. */
mq_step mq_engine_host_fault(mq_ecall *c, const char *what, const char *why);
const mq_request *mq_engine_request(const mq_ecall *c, mq_request *out);
mq_step mq_engine_response(mq_ecall *c, const mq_answer *r, double now);
/* A transport failure (never MQ_T_OK). message: the transport's words (no
 * secrets), or NULL. status: > 0 when one came (a too-big body). resent:
 * the request went out twice on this attempt (libcurl re-sends an
 * idempotent request once on a fresh connection): the first may have been
 * processed. With outcome MQ_T_OK and resent set this only notes that
 * (see mq_engine_resent). */
mq_step mq_engine_failure(mq_ecall *c, mq_outcome o, const char *message, long status,
                          double now);
/* An earlier send of this attempt may have been processed (a re-send on a
 * fresh connection); call before reporting the attempt's outcome. */
void mq_engine_resent(mq_ecall *c);
mq_step mq_engine_wake(mq_ecall *c, double now);

/* What the last response means for the shared limiter (the note of the
 * step that answered it; kind MQ_NOTE_NONE after a transport failure). */
mq_limiter_note mq_engine_note(const mq_ecall *c);

/* After DONE. */
int  mq_engine_ok(const mq_ecall *c);
/* a success owed to an earlier run: a create confirmed after "already
 * exists", a cancel answered "already cancelled" */
int  mq_engine_reconciled(const mq_ecall *c);
/* a webhook operation's success: the answer's JSON, scrubbed (the list
 * for webhooks, {"data":{...}} for subscribe and update_subscription, the
 * listed subscription object itself for a subscribe settled by listing;
 * NULL for unsubscribe) */
void mq_engine_body(const mq_ecall *c, const char **body, size_t *len);
/* a success of create/reschedule: the appointment (scrubbed); NULLs for cancel */
void mq_engine_appointment(const mq_ecall *c, const char **code, size_t *code_len,
                           const char **url, size_t *url_len);
typedef struct {
    mq_kind kind;
    long status;            /* 0: none */
    const char *message;    /* scrubbed, bounded, valid UTF-8 */
    int retryable;
    double retry_after;     /* -1: none */
    int attempts;
    mq_method method;
    const char *path;       /* the request's path (base path included) */
    size_t path_len;
    mq_effect effect;
    const char *field;      /* invalid_argument: the field refused, else NULL */
    const mq_field_msg *fields;     /* a 422's, in the server's order */
    size_t nfields;
} mq_engine_error;
void mq_engine_error_of(const mq_ecall *c, mq_engine_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
