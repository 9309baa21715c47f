/* redis_verdict.c: classifies Redis's error replies for the limiter. A
 * refused AUTH, a missing password, an ACL that forbids the script, a
 * Cluster node where one server was expected: setup faults (config).
 * Max clients, OOM, LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN,
 * READONLY: transient refusals (an outage: fall back and retry). */
#include <stdio.h>
#include <string.h>

#include "redis_verdict.h"

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int mq_redis_transient(const char *reply)
{
    static const char *const transient[] = {
        "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "OOM",
        "ERR max number of clients reached", "NOREPLICAS",
    };
    size_t i;

    for (i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (starts(reply, transient[i])) return 1;
    return 0;
}

int mq_redis_verdict(const mq_redis_url *u, const char *where, const char *cmd,
                     const char *reply, char *msg, size_t msglen)
{
    if (starts(reply, "WRONGPASS") || starts(reply, "ERR invalid password")
        || starts(reply, "ERR invalid username-password") || starts(reply, "ERR AUTH")
        || starts(reply, "ERR Client sent AUTH")) {
        snprintf(msg, msglen, "redis %s refused AUTH%s%s: wrong user or password (%s)", where,
                 u->user ? " as user " : "", u->user ? u->user : "", reply);
        return MQ_RV_CONFIG;
    }
    if (starts(reply, "NOAUTH")) {
        snprintf(msg, msglen, "redis %s needs a password (NOAUTH): put it in the URL "
                 "(redis://:password@host)", where);
        return MQ_RV_CONFIG;
    }
    if (starts(reply, "NOPERM") || strstr(reply, "user executing the script can't") != NULL) {
        snprintf(msg, msglen, "redis %s: the user may not run %s (%s): allow the limiter's "
                 "commands in its ACL", where, cmd, reply);
        return MQ_RV_CONFIG;
    }
    if (u->kind != MQ_RU_CLUSTER && (starts(reply, "MOVED ") || starts(reply, "ASK "))) {
        snprintf(msg, msglen, "redis %s is a Cluster node (%s answered %s): use redis-cluster://",
                 where, cmd, reply);
        return MQ_RV_CONFIG;
    }
    if (mq_redis_transient(reply)) {
        snprintf(msg, msglen, "redis %s not available now (%s): %s", where, cmd, reply);
        return MQ_RV_DOWN;
    }
    snprintf(msg, msglen, "redis %s refused %s: %s", where, cmd, reply);
    return MQ_RV_CONFIG;
}
