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
/* "/organizations/webhooks/" + an id percent-encoded + NUL (the longest
 * path; "/appointments/" + a code is shorter) */
#define MQ_PATH_MAX (24 + 3 * MQ_MAX_ID + 1)

/* a webhook subscription (subscribe, update_subscription) */
#define MQ_WH_TYPE_MAX 40       /* bytes of a subscription type */
#define MQ_WH_URL_MAX 512       /* bytes of meta.url */
#define MQ_WH_HEADERS_MAX 4     /* meta.headers entries */
#define MQ_WH_HNAME_MAX 64
#define MQ_WH_HVALUE_MAX 128

/* the largest body: a create (every byte of the three text fields escaped,
 * two bytes each, the date, a 10-digit duration and the fixed JSON) or a
 * subscription (type, URL and headers, each byte escaped, and the JSON) */
#define MQ_BODY_MAX 4096
typedef char mq_body_fits_create[3 * 2 * MQ_MAX_ID + MQ_ISO_LEN + 160 <= MQ_BODY_MAX ? 1 : -1];
typedef char mq_body_fits_subscription[2 * (MQ_WH_TYPE_MAX + MQ_WH_URL_MAX
    + MQ_WH_HEADERS_MAX * (MQ_WH_HNAME_MAX + MQ_WH_HVALUE_MAX + 8)) + 80 <= MQ_BODY_MAX ? 1 : -1];

/* The operations: the appointments', then the organization's webhook
 * subscriptions (GET/POST /organizations/webhooks/, PUT/DELETE .../{id}). */
typedef enum {
    MQ_OP_CREATE, MQ_OP_RESCHEDULE, MQ_OP_CANCEL,
    MQ_OP_WH_LIST, MQ_OP_WH_SUBSCRIBE, MQ_OP_WH_UPDATE, MQ_OP_WH_UNSUBSCRIBE,
    MQ_OP__COUNT
} mq_op;
#define MQ_OP_IS_WEBHOOK(op) ((op) >= MQ_OP_WH_LIST && (op) <= MQ_OP_WH_UNSUBSCRIBE)

typedef struct {
    const char *name; size_t name_len;
    const char *value; size_t value_len;
} mq_wh_header;

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
    /* subscribe, update_subscription (code: the subscription's id for
     * update_subscription and unsubscribe) */
    const char *wh_type; size_t wh_type_len;
    const char *wh_url; size_t wh_url_len;
    mq_wh_header wh_headers[MQ_WH_HEADERS_MAX];
    int wh_nheaders;
} mq_op_args;

/* The path of method m under the base path (POST: "/appointments";
 * PUT, DELETE: "/appointments/<code percent-encoded>") into out
 * (MQ_PATH_MAX bytes), NUL-terminated; returns its length. */
size_t mq_request_path(mq_method m, const char *code, size_t code_len, char *out);
/* The path of operation op sent with method m: the appointments' as
 * above; a webhook operation's "/organizations/webhooks/" (GET, POST) or
 * "/organizations/webhooks/<id percent-encoded>" (PUT, DELETE). */
size_t mq_request_path_op(mq_op op, mq_method m, const char *code, size_t code_len, char *out);
/* The JSON body of method m for a (POST: the create; PUT: the
 * reschedule; DELETE: none; for a->op subscribe or update_subscription,
 * the subscription: {"type","channel":"http","meta":{"url","headers"}})
 * into out (MQ_BODY_MAX bytes), NUL-terminated; returns its length. */
size_t mq_request_body(mq_method m, const mq_op_args *a, char *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
