/* lcheck.h: argument checks shared by the C create path and the Lua
 * validators (lcheck.c). Each returns NULL when the value at idx is good,
 * else why not (static, or written into buf). */
#ifndef MQ_LCHECK_H
#define MQ_LCHECK_H

#include "compat.h"
#include "request.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_WHY_LEN 160

/* a checked text value (s points into the Lua string at idx) */
typedef struct {
    const char *s;
    size_t len;
    int verbatim;           /* it can go into a JSON string as it is */
} mq_text;

/* a non-empty string of at most max bytes, valid UTF-8, no control characters */
const char *mq_check_text(lua_State *L, int idx, size_t max, mq_text *t,
                          char *buf, size_t buflen);
/* an appointment code: text of at most 255 bytes, not "." or ".." */
const char *mq_check_code(lua_State *L, int idx, mq_text *t, char *buf, size_t buflen);
/* ISO 8601 string or epoch seconds -> "YYYY-MM-DDTHH:MM:SSZ" in out */
const char *mq_check_starts_at(lua_State *L, int idx, char out[MQ_ISO_LEN],
                               char *buf, size_t buflen);
/* nil (*d = 0) or whole seconds 1 .. 2^31-1 */
const char *mq_check_duration(lua_State *L, int idx, long *d);
/* the message for a key (at kidx) that is not allowed, naming the nearest
 * of names[0..n) when one is near: "unknown field 'timout' (did you mean
 * 'timeout'?)" */
const char *mq_check_unknown_key(lua_State *L, int kidx, const char *const *names, size_t n,
                                 char *buf, size_t buflen);

/* An operation's arguments (create: the table at ia, read raw, unknown
 * keys refused; reschedule: code at ia, starts_at at ib; cancel: code at
 * ia; the webhook operations: lcheck_webhook.h) checked into a
 * (lcheck_op.c). 0, or -1 with *field and *why (static or in buf,
 * MQ_WHY_LEN bytes). The strings in a point into the Lua values at ia/ib:
 * keep them on the stack while a is used. */
int mq_check_op(lua_State *L, mq_op op, int ia, int ib, mq_op_args *a,
                const char **field, const char **why, char *buf);
/* The same for the appointment operations alone (create, reschedule,
 * cancel: lcheck.c); mq_check_op (lcheck_op.c) sends the webhook ones to
 * lcheck_webhook.c and these here. */
int mq_check_appt_op(lua_State *L, mq_op op, int ia, int ib, mq_op_args *a,
                     const char **field, const char **why, char *buf);

/* The fields of an appointment operation (create, reschedule, cancel), in
 * the order a row lists them, NULL-terminated; NULL for any other op. */
const char *const *mq_op_fields(mq_op op);

/* core.check_text, check_code, check_starts_at, check_duration,
 * check_fields, check_op, suggest: added to the module table on top of the stack */
void mq_lcheck_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
