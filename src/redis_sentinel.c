/* redis_sentinel.c: reads Sentinel's answer for a master's address and
 * ROLE's answer (master, replica, sentinel). No I/O: the conversation
 * (redis_conv.c) asks, this says what the answer means. */
#include <stdio.h>
#include <string.h>

#include "redis_sentinel.h"

static int is_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        && (r->len == 0 || r->str != NULL);
}

static int str_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return is_str(r) && r->len == n && memcmp(r->str, s, n) == 0;
}

/* a host: printable, no space or bracket, 1..hostlen-1 bytes */
static int host_ok(const char *h, size_t n, size_t hostlen)
{
    size_t i;

    if (n == 0 || n >= hostlen || n > 255) return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '/' || c == '@') return 0;
    }
    return 1;
}

static int port_of(const redisReply *r, int *port)
{
    long v = 0;
    size_t i;

    if (r && r->type == REDIS_REPLY_INTEGER) {
        v = (long)r->integer;
    } else if (is_str(r) && r->len > 0 && r->len <= 5) {
        for (i = 0; i < r->len; i++) {
            if (r->str[i] < '0' || r->str[i] > '9') return -1;
            v = v * 10 + (r->str[i] - '0');
        }
    } else {
        return -1;
    }
    if (v < 1 || v > 65535) return -1;
    *port = (int)v;
    return 0;
}

int mq_redis_sentinel_master(const redisReply *rep, const char *name, char *host, size_t hostlen,
                             int *port, char *err, size_t errlen)
{
    char tmp[1];
    const char *nm = name ? name : "?";

    if (err == NULL || errlen == 0) {
        err = tmp;
        errlen = sizeof tmp;
    }
    err[0] = '\0';
    if (rep == NULL) {
        snprintf(err, errlen, "no reply to SENTINEL get-master-addr-by-name %s", nm);
        return MQ_SENTINEL_MALFORMED;
    }
    if (rep->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "the Sentinel knows no master named '%s' (check the name after the last "
                 "'/' of the URL against its sentinel monitor lines)", nm);
        return MQ_SENTINEL_UNKNOWN;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "SENTINEL get-master-addr-by-name %s answered: %.*s", nm,
                 (int)(rep->len < 400 ? rep->len : 400), rep->str ? rep->str : "");
        return MQ_SENTINEL_ERROR_REPLY;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element == NULL
        || !is_str(rep->element[0]) || port_of(rep->element[1], port) != 0) {
        snprintf(err, errlen, "SENTINEL get-master-addr-by-name %s: the reply is not [host, port] "
                 "(is this a Sentinel?)", nm);
        return MQ_SENTINEL_MALFORMED;
    }
    if (host == NULL || !host_ok(rep->element[0]->str, rep->element[0]->len, hostlen)) {
        snprintf(err, errlen, "SENTINEL get-master-addr-by-name %s: the master's host is not a host "
                 "name or address of at most %zu bytes", nm, hostlen ? hostlen - 1 : 0);
        return MQ_SENTINEL_MALFORMED;
    }
    memcpy(host, rep->element[0]->str, rep->element[0]->len);
    host[rep->element[0]->len] = '\0';
    return MQ_SENTINEL_OK;
}

int mq_redis_role(const redisReply *rep)
{
    int port;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element == NULL)
        return MQ_ROLE_UNKNOWN;
    if (str_is(rep->element[0], "master")) {
        if (rep->elements >= 3 && rep->element[1] && rep->element[1]->type == REDIS_REPLY_INTEGER
            && rep->element[2] && rep->element[2]->type == REDIS_REPLY_ARRAY)
            return MQ_ROLE_MASTER;
        return MQ_ROLE_UNKNOWN;
    }
    if (str_is(rep->element[0], "slave") || str_is(rep->element[0], "replica")) {
        if (rep->elements >= 3 && is_str(rep->element[1]) && port_of(rep->element[2], &port) == 0)
            return MQ_ROLE_REPLICA;
        return MQ_ROLE_UNKNOWN;
    }
    if (str_is(rep->element[0], "sentinel")) {
        if (rep->elements >= 2 && rep->element[1] && rep->element[1]->type == REDIS_REPLY_ARRAY)
            return MQ_ROLE_SENTINEL;
        return MQ_ROLE_UNKNOWN;
    }
    return MQ_ROLE_UNKNOWN;
}

const char *mq_redis_role_name(int role)
{
    switch (role) {
    case MQ_ROLE_MASTER: return "master";
    case MQ_ROLE_REPLICA: return "replica";
    case MQ_ROLE_SENTINEL: return "sentinel";
    default: return "unknown";
    }
}
