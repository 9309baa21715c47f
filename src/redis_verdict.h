/* redis_verdict.h: what an error reply from Redis means for the limiter
 * (redis_verdict.c): an outage (fall back, try again) or a setup fault
 * (kind config), as a message naming the server, never a password. */
#ifndef MQ_REDIS_VERDICT_H
#define MQ_REDIS_VERDICT_H

#include <stddef.h>

#include "redis_url.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* What an exchange came to: the script's answer, an outage (fall back and
 * retry), a setup fault (config), or an outage after the script went out
 * with no answer read (a timeout, a reset): it may have run, and Redis may
 * count this host as back (MQ_RV_UNSURE, an outage all the same). */
enum { MQ_RV_OK = 0, MQ_RV_DOWN = -1, MQ_RV_CONFIG = -2, MQ_RV_UNSURE = -3 };

/* The error reply `reply` to cmd from the node `where`: MQ_RV_DOWN or
 * MQ_RV_CONFIG, and the message (the reply quoted whole) into msg. */
int mq_redis_verdict(const mq_redis_url *u, const char *where, const char *cmd,
                     const char *reply, char *msg, size_t msglen);
/* 1 when the reply is a transient refusal (an outage), 0 otherwise */
int mq_redis_transient(const char *reply);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
