/* redis_sentinel.h: what Sentinel and ROLE replies say (redis_sentinel.c):
 * the master's address from SENTINEL get-master-addr-by-name, and the role
 * of the server a connection reached. Pure: no socket, no clock. */
#ifndef MQ_REDIS_SENTINEL_H
#define MQ_REDIS_SENTINEL_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

enum {
    MQ_SENTINEL_OK = 0,         /* host and port set */
    MQ_SENTINEL_UNKNOWN = 1,    /* nil: this Sentinel monitors no master of that name (setup fault) */
    MQ_SENTINEL_MALFORMED = -1, /* not the shape a Sentinel sends (not a Sentinel?) */
    MQ_SENTINEL_ERROR_REPLY = -2 /* an error reply (err holds it): NOAUTH, unknown command... */
};

/* The reply to SENTINEL get-master-addr-by-name NAME: [host, port] (port
 * as a string). host gets the address, NUL-terminated and never cut short
 * (a host that does not fit hostlen is MALFORMED); err the reason of a
 * failure, naming `name` (may be NULL). */
int mq_redis_sentinel_master(const redisReply *rep, const char *name, char *host, size_t hostlen,
                             int *port, char *err, size_t errlen);

enum {
    MQ_ROLE_UNKNOWN = 0,        /* not a ROLE reply we understand (or an error) */
    MQ_ROLE_MASTER = 1,
    MQ_ROLE_REPLICA = 2,
    MQ_ROLE_SENTINEL = 3
};

/* The reply to ROLE: ["master", offset, [...]], ["slave", host, port,
 * state, offset], ["sentinel", [names]]. */
int mq_redis_role(const redisReply *rep);
/* "master", "replica", "sentinel" or "unknown", for messages. */
const char *mq_redis_role_name(int role);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
