/* engine_vocab.h: the words the engine and every driver share: what
 * became of an attempt at the transport level (mq_outcome, its count
 * derived from the enum), the cap on an answer's body and the library's
 * User-Agent. The engine's headers (policy.h, engine.h) hold it; the
 * drivers (transport.h, lhttp.c, lengine.c) include it from there. */
#ifndef MQ_ENGINE_VOCAB_H
#define MQ_ENGINE_VOCAB_H

#include "version.h"

#define MQ_LIB_UA "lua-mediquo/" MQ_VERSION   /* every driver's User-Agent starts so */
#define MQ_BODY_CAP (1024 * 1024)   /* larger answers are refused, not read */

/* What became of an attempt at the transport level (names: policy.c,
 * exported as core.OUTCOMES). */
typedef enum {
    MQ_T_OK = 0,        /* a complete HTTP response */
    MQ_T_CONNECT,       /* never connected (refused, DNS): nothing sent */
    MQ_T_TLS,           /* TLS handshake or certificate failure: nothing sent */
    MQ_T_TIMEOUT,       /* timed out after the connection was made: may have been processed */
    MQ_T_RESET,         /* connection closed/reset or response cut short after sending */
    MQ_T_TOO_BIG,       /* body over MQ_BODY_CAP */
    MQ_T_FAILED,        /* anything else (out of memory, bad URL, ...) */
    MQ_T_CONNECT_TIMEOUT, /* connecting timed out: nothing sent (kind timeout) */
    MQ_T__COUNT         /* how many outcomes there are (not one) */
} mq_outcome;

#endif
