/* answer.h: what an answer body says, read in C without cjson (answer.c):
 * the appointment of a create or reschedule, and an error's message and
 * per-field messages. */
#ifndef MQ_ANSWER_H
#define MQ_ANSWER_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct {
    const char *code; size_t code_len;   /* into body, or buf (see below) */
    const char *url;  size_t url_len;
} mq_appt;

/* 1: body (len bytes, need not be NUL-terminated) is one JSON object that
 * cjson would decode without error, and data.appointment.code and
 * data.appointment.url are strings: *a is filled. A string written with no
 * escape is pointed at where it is in body; one with escapes is unescaped
 * into buf (which must hold at least len bytes). 0: anything else, or
 * anything this scanner does not handle (the engine: bad_response). */
int mq_answer_appointment(const char *body, size_t len, char *buf, mq_appt *a);

/* One per-field message of a 422 (`errors: {field: [msg, ...] | msg}`):
 * key and msg point into the body or buf, as the appointment's strings
 * do; msg NULL for a field with an empty list. */
typedef struct {
    const char *key; size_t key_len;
    const char *msg; size_t msg_len;
} mq_answer_field;

typedef struct {
    const char *message; size_t message_len;    /* the top-level "message" string, or NULL */
    mq_answer_field *fields;    /* the caller's array of cap entries (may be NULL) */
    size_t nfields, cap;        /* beyond cap, field messages are dropped */
} mq_answer_err;

/* 1: body is one JSON object or array (the grammar above, but raw control
 * bytes in strings are taken, as cjson takes them) and *e says what it
 * holds; 0: it is not (e->message NULL, no fields). buf: as above. */
int mq_answer_error(const char *body, size_t len, char *buf, mq_answer_err *e);

/* A list of webhook subscriptions ({"data":[{id, type, channel, meta:
 * {url, ...}}, ...]}): the first object of data[] whose type and meta.url
 * equal these (compared unescaped, as cjson would see them). */
typedef struct {
    const char *type; size_t type_len;      /* what to look for */
    const char *url; size_t url_len;
    const char *obj; size_t obj_len;        /* the match's bytes in body, or NULL */
} mq_answer_sub;

/* 1: body is one JSON object in the strict grammar above (sub->obj says
 * whether a match is in it); 0: it is not. buf: as above. */
int mq_answer_subscription(const char *body, size_t len, char *buf, mq_answer_sub *sub);

/* A request body's top-level members, as cjson decodes them (the nginx
 * driver's reader of what a gateway's caller sent): for each of names[],
 * the value of its last copy. */
typedef enum { MQ_JV_NONE, MQ_JV_STRING, MQ_JV_NUMBER, MQ_JV_TRUE, MQ_JV_FALSE } mq_jv_kind;
typedef struct {
    mq_jv_kind kind;            /* NONE: absent, or null */
    const char *s; size_t len;  /* STRING: as the appointment's strings;
                                 * NUMBER: its text in body (RFC 8259) */
} mq_answer_val;

/* 1: body is one JSON object in the strict grammar above, and none of the
 * n members named is an object or an array: vals[0..n) are filled. 0:
 * anything else (vals all NONE); the caller then decodes with cjson, which
 * takes more. buf: as above. */
int mq_answer_fields(const char *body, size_t len, char *buf, const char *const *names, size_t n,
                     mq_answer_val *vals);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
