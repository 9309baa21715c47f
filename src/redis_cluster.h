/* redis_cluster.h: Redis Cluster's topology as data (redis_cluster.c): the
 * slot of a key, the slot map from a CLUSTER SLOTS reply, MOVED/ASK
 * redirections. Pure: no socket, no clock; the conversation decides. */
#ifndef MQ_REDIS_CLUSTER_H
#define MQ_REDIS_CLUSTER_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_REDIS_SLOTS 16384
/* a host name is at most 255 bytes; with its NUL */
#define MQ_REDIS_HOSTLEN 256

/* The slot of a key: CRC16 (XMODEM) mod 16384 of the key, or of its hash
 * tag (the bytes between the first '{' and the first '}' after it, when
 * there is at least one). */
unsigned mq_redis_key_slot(const char *key, size_t len);

/* One range of slots and the master serving it. host "" means the node
 * that answered CLUSTER SLOTS (it announced no endpoint). */
typedef struct {
    unsigned lo, hi;            /* inclusive, lo <= hi < MQ_REDIS_SLOTS */
    int port;                   /* 1..65535 */
    char host[MQ_REDIS_HOSTLEN];
} mq_redis_slot_range;

/* Ranges sorted by lo, never overlapping; slots no range covers have no
 * master known (the cluster is not fully covered: an outage). */
typedef struct {
    mq_redis_slot_range *r;
    size_t n;
} mq_redis_slot_map;

enum {
    MQ_TOPO_OK = 0,
    MQ_TOPO_MALFORMED = -1,     /* not the shape Redis sends: err says where */
    MQ_TOPO_ERROR_REPLY = -2,   /* Redis answered an error: err holds it */
    MQ_TOPO_NOMEM = -3
};

/* Builds m from a CLUSTER SLOTS reply (RESP2 as hiredis 0.14 reads it,
 * Redis 3 to 7 shapes: extra node fields and replicas are ignored).
 * MQ_TOPO_OK, or a failure with the reason in err and m empty. An empty
 * array is a valid map of no slot (a cluster with no slot assigned). */
int  mq_redis_slot_map_build(const redisReply *rep, mq_redis_slot_map *m, char *err, size_t errlen);
/* The range holding slot, or NULL when no master is known for it. */
const mq_redis_slot_range *mq_redis_slot_map_find(const mq_redis_slot_map *m, unsigned slot);
/* A MOVED answer: slot now lives on host:port (host "" : the node asked).
 * Splits the range that held it; MQ_TOPO_OK or MQ_TOPO_NOMEM/_MALFORMED
 * (m unchanged then). */
int  mq_redis_slot_map_move(mq_redis_slot_map *m, unsigned slot, const char *host, int port);
void mq_redis_slot_map_free(mq_redis_slot_map *m);

enum { MQ_REDIRECT_NONE = 0, MQ_REDIRECT_MOVED = 1, MQ_REDIRECT_ASK = 2, MQ_REDIRECT_BAD = -1 };

/* An error reply's text (with or without the leading '-'): "MOVED 3999
 * 127.0.0.1:6381" or "ASK 3999 host:port". The address is host:port,
 * [IPv6]:port, bare IPv6 (the last colon is the port's) or ":port" (host ""
 * : the node asked). Returns MQ_REDIRECT_MOVED or _ASK with slot, host
 * (NUL-terminated, never cut short) and port; _NONE for any other error;
 * _BAD when it starts as a redirection but is malformed or host does not
 * fit hostlen. */
int mq_redis_redirect_parse(const char *err, size_t len, unsigned *slot,
                            char *host, size_t hostlen, int *port);

/* "host:port", "[v6]:port" for a host holding ':' (the form MOVED and
 * URLs use), with asked (the node that answered) standing in for host "".
 * 0, or -1 when it does not fit n (buf then ""): never cut short. */
int mq_redis_addr_format(char *buf, size_t n, const char *host, int port, const char *asked);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
