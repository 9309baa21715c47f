/* transport.h: one HTTP exchange over a reused libcurl easy handle. */
#ifndef MQ_TRANSPORT_H
#define MQ_TRANSPORT_H

#include <stddef.h>

#include "engine_vocab.h"   /* mq_outcome, MQ_BODY_CAP, MQ_LIB_UA */

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct {
    const char *api_key;
    const char *secret_key;
    const char *user_agent;     /* appended to the library's own; may be NULL */
    const char *ca_file;        /* NULL: system bundle */
    int insecure;               /* skip TLS verification */
} mq_transport_cfg;

typedef struct {
    mq_outcome outcome;
    long status;                /* HTTP status, 0 when none */
    const char *body;           /* owned by the transport, valid until the next perform */
    size_t body_len;
    double retry_after;         /* seconds, -1 when absent */
    long rl_remaining, rl_limit;/* -1 when absent */
    double rl_reset;            /* seconds until the server's window ends, -1 when absent */
    int resent;                 /* libcurl re-sent the request once on a fresh connection
                                 * after a reused one died with no answer (PUT and DELETE
                                 * only): the first send may have been processed */
    char message[256];          /* why the transport failed (no secrets: curl's words) */
} mq_response;

typedef struct mq_transport mq_transport;

int  mq_transport_new(const mq_transport_cfg *cfg, mq_transport **out, char *err, size_t errlen);
/* One attempt. method: "POST", "PUT" or "DELETE"; body may be NULL. */
void mq_transport_perform(mq_transport *t, const char *method, const char *url,
                          const char *body, size_t body_len,
                          double timeout, double connect_timeout, mq_response *r);
void mq_transport_free(mq_transport *t);

/* For curl's multi interface (batch.c). dup: a second transport with the
 * same settings and headers (it borrows the parent's header lists: free it
 * before the parent). prepare sets up one attempt without running it and
 * returns the easy handle to add to a multi handle (NULL on failure, with
 * r filled as MQ_T_FAILED); finish reads the result once the multi handle
 * says the transfer is done with code rc. */
int  mq_transport_dup(mq_transport *parent, mq_transport **out);
void *mq_transport_prepare(mq_transport *t, const char *method, const char *url,
                           const char *body, size_t body_len,
                           double timeout, double connect_timeout, mq_response *r);
void mq_transport_finish(mq_transport *t, int rc, mq_response *r);

/* Answer bodies are handed on as they came: the engine scrubs the keys
 * out of every string it hands on (secrets.c, after JSON unescaping). */
/* curl's version string, for the User-Agent and diagnostics. */
const char *mq_transport_curl_version(void);
/* Once per process, thread-safe: curl_global_init. 0 on success. */
int  mq_transport_global_init(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
