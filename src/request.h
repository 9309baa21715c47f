/* request.h: an operation's HTTP request - its path and JSON body
 * (request.c). The engine builds every attempt's request with these. */
#ifndef MQ_REQUEST_H
#define MQ_REQUEST_H

#include <stddef.h>

#include "iso8601.h"
#include "policy.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_MAX_ID 255       /* bytes of a code, a patient, a professional */
/* "/appointments/" + a code percent-encoded + NUL */
#define MQ_PATH_MAX (16 + 3 * MQ_MAX_ID + 1)
/* every byte of the three text fields escaped (two bytes each), the date,
 * a 10-digit duration and the fixed JSON around them */
#define MQ_BODY_MAX (3 * 2 * MQ_MAX_ID + MQ_ISO_LEN + 160)

typedef enum { MQ_OP_CREATE, MQ_OP_RESCHEDULE, MQ_OP_CANCEL, MQ_OP__COUNT } mq_op;

/* One operation's input, checked by the binding with lcheck.c's checks
 * (which give the messages) before mq_engine_start; pointers are borrowed
 * until mq_engine_start returns (it copies what it keeps). */
typedef struct {
    mq_op op;
    const char *code; size_t code_len;
    const char *patient; size_t patient_len;            /* create */
    const char *professional; size_t professional_len;  /* create */
    char starts_at[MQ_ISO_LEN];                         /* create, reschedule */
    long duration;          /* create; 0: none (the API's default) */
    int resumed;            /* an earlier run may have sent this operation:
                             * "already exists"/"already cancelled" are ours */
} mq_op_args;

/* The path of method m under the base path (POST: "/appointments";
 * PUT, DELETE: "/appointments/<code percent-encoded>") into out
 * (MQ_PATH_MAX bytes), NUL-terminated; returns its length. */
size_t mq_request_path(mq_method m, const char *code, size_t code_len, char *out);
/* The JSON body of method m for a (POST: the create; PUT: the
 * reschedule; DELETE: none) into out (MQ_BODY_MAX bytes), NUL-terminated;
 * returns its length. */
size_t mq_request_body(mq_method m, const mq_op_args *a, char *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
