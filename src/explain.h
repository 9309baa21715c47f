/* explain.h: every message a caller is told about a failed call, worded in
 * one place (explain.c). The engine decides what happened; these say it. */
#ifndef MQ_EXPLAIN_H
#define MQ_EXPLAIN_H

#include <stddef.h>

#include "request.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef enum { MQ_EFFECT_NONE, MQ_EFFECT_UNKNOWN, MQ_EFFECT_DONE } mq_effect;

/* why no other attempt was made, for mq_explain_failure's stop */
#define MQ_STOP_RETRY_POST "not retried: it may have been processed, see retry_post"
void mq_explain_no_time(char *stop, size_t cap, double deadline);

/* The message of a call that failed on its last attempt, into msg: why
 * (the server's own words when bare, shown as they are; else the driver's
 * or the engine's, with the attempt named), stop (or NULL), and the
 * effect: "unknown" is always said, "done" prefixes that the appointment
 * was created. */
void mq_explain_failure(char *msg, size_t cap, const char *why, int bare, mq_op op,
                        int attempts, int max_attempts, const char *stop, mq_effect effect);
/* No attempt could start: no limiter slot within bound seconds
 * (rate_limited; rest: bound was the rest of the deadline), or (bound < 0)
 * the deadline passed. before: the attempt that could not start. */
void mq_explain_before(char *msg, size_t cap, mq_op op, double bound, int rest,
                       double deadline, int before, int max_attempts, mq_effect effect);
/* A host fault (what could not serve, and why) before attempt `before`
 * could start: "what: why (before attempt N of M[; effect])". */
void mq_explain_host_fault(char *msg, size_t cap, mq_op op, const char *what, const char *why,
                           int before, int max_attempts, mq_effect effect);
/* an answer with no message of its own: "HTTP 500" */
void mq_explain_status(char *msg, size_t cap, long status);
/* a 2xx whose body is not the documented JSON */
void mq_explain_bad_answer(char *msg, size_t cap, long status);
/* refused before sending: "<field>: <why>" */
void mq_explain_refusal(char *msg, size_t cap, const char *field, const char *why);

/* a 404's message, with a hint when the path is not under /v1 */
void mq_explain_not_found(char *msg, size_t cap, const char *path);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
