/* fuzz_redis_topo.c: libFuzzer harness for the Redis topology readers
 * (redis_cluster.c, redis_sentinel.c). The bytes go through hiredis's own
 * reader, as a server's answer would; every reply read is given to the
 * CLUSTER SLOTS map, the Sentinel master reader and ROLE, and every error
 * or string reply (and the raw bytes) to the MOVED/ASK parser.
 * Invariants: no crash, no leak; a map is sorted, never overlapping, each
 * range 0 <= lo <= hi <= 16383 with a port 1..65535 and a NUL-terminated
 * host, find() agrees with the ranges, a failed build leaves the map empty;
 * a redirect's host is NUL-terminated within its buffer, the slot < 16384,
 * the port 1..65535, and its address formatted (mq_redis_addr_format)
 * parses back to the same; messages are NUL-terminated within their
 * buffer. */
#include "redis_cluster.h"
#include "redis_sentinel.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include "fuzz_resp.h"

static void check_map(const mq_redis_slot_map *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        const mq_redis_slot_range *r = &m->r[i];
        if (r->lo > r->hi || r->hi >= MQ_REDIS_SLOTS || r->port < 1 || r->port > 65535) abort();
        if (memchr(r->host, '\0', sizeof r->host) == NULL) abort();
        if (i && r->lo <= m->r[i - 1].hi) abort();
        if (mq_redis_slot_map_find(m, r->lo) != r || mq_redis_slot_map_find(m, r->hi) != r) abort();
        if (r->lo > 0 && mq_redis_slot_map_find(m, r->lo - 1) == r) abort();
    }
}

static void redirect(const char *s, size_t n, mq_redis_slot_map *m)
{
    char host[64];
    unsigned slot = 0;
    int port = 0, rc;

    memset(host, 'x', sizeof host);
    rc = mq_redis_redirect_parse(s, n, &slot, host, sizeof host, &port);
    if (rc < MQ_REDIRECT_BAD || rc > MQ_REDIRECT_ASK) abort();
    if (rc > 0) {
        if (slot >= MQ_REDIS_SLOTS || port < 1 || port > 65535) abort();
        if (memchr(host, '\0', sizeof host) == NULL) abort();
        if (strlen(host) >= n) abort();
        {   /* what the address formats to parses back to the same */
            char addr[80], again[96], h2[64];
            unsigned s2 = 0;
            int p2 = 0;
            if (mq_redis_addr_format(addr, sizeof addr, host, port, NULL) != 0) abort();
            snprintf(again, sizeof again, "MOVED %u %s", slot, addr);
            if (mq_redis_redirect_parse(again, strlen(again), &s2, h2, sizeof h2, &p2) != MQ_REDIRECT_MOVED
                || s2 != slot || p2 != port || strcmp(h2, host) != 0)
                abort();
        }
        if (m && rc == MQ_REDIRECT_MOVED) {
            int mv = mq_redis_slot_map_move(m, slot, host, port);
            const mq_redis_slot_range *r;
            if (mv == MQ_TOPO_MALFORMED) abort();   /* what the parser gave is always valid */
            if (mv == MQ_TOPO_OK
                && ((r = mq_redis_slot_map_find(m, slot)) == NULL || r->port != port || strcmp(r->host, host) != 0))
                abort();
            check_map(m);
        }
    }
}

static void one(const redisReply *rep, mq_redis_slot_map *last)
{
    mq_redis_slot_map m;
    char err[160], host[MQ_REDIS_HOSTLEN];
    int rc, port = 0;
    size_t i;

    memset(err, 'x', sizeof err);
    rc = mq_redis_slot_map_build(rep, &m, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL) abort();
    if (rc == MQ_TOPO_OK) {
        check_map(&m);
        mq_redis_slot_map_free(last);
        *last = m;
    } else if (m.n != 0 || m.r != NULL) {
        abort();
    }
    memset(err, 'x', sizeof err);
    rc = mq_redis_sentinel_master(rep, "mymaster", host, sizeof host, &port, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL) abort();
    if (rc == MQ_SENTINEL_OK && (port < 1 || port > 65535 || strlen(host) == 0)) abort();
    rc = mq_redis_role(rep);
    if (rc < MQ_ROLE_UNKNOWN || rc > MQ_ROLE_SENTINEL || mq_redis_role_name(rc) == NULL) abort();
    if (rep->type == REDIS_REPLY_ERROR || rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
        redirect(rep->str, rep->len, last);
    if (rep->type == REDIS_REPLY_ARRAY)
        for (i = 0; i < rep->elements && i < 64; i++)
            if (rep->element[i] && rep->element[i]->type == REDIS_REPLY_ERROR)
                redirect(rep->element[i]->str, rep->element[i]->len, last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *rd;
    mq_redis_slot_map last = {NULL, 0};
    void *rep = NULL;
    int k;

    if (huge_count(data, size)) return 0;

    redirect((const char *)data, size, NULL);
    (void)mq_redis_key_slot((const char *)data, size);
    rd = redisReaderCreate();
    if (rd == NULL) return 0;
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        for (k = 0; k < 16; k++) {
            rep = NULL;
            if (redisReaderGetReply(rd, &rep) != REDIS_OK || rep == NULL) break;
            one(rep, &last);
            freeReplyObject(rep);
        }
    }
    mq_redis_slot_map_free(&last);
    redisReaderFree(rd);
    return 0;
}
