/* fuzz_redis_url.c: libFuzzer harness for mq_redis_url_parse (the
 * rate_limit.redis URL). Invariants: no crash, no leak; on success the
 * host or the socket path is set (not both), port 1..65535, db >= 0, and
 * `where` (what messages name) is exactly host:port (each node's, for
 * several) or the path, so it
 * holds nothing else of the URL (no password); on failure the message is
 * NUL-terminated within its buffer. */
#include "redis_url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), err[200];
    mq_redis_url u;

    if (s == NULL) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (mq_redis_url_parse(s, &u, err, sizeof err) == 0) {
        if ((u.host == NULL) == (u.path == NULL)) abort();
        if (u.port < 1 || u.port > 65535 || u.db < 0 || u.where == NULL) abort();
        if (u.host && u.nnodes == 1 && strchr(u.host, ':') == NULL) {
            char want[400];
            snprintf(want, sizeof want, "%s:%d", u.host, u.port);
            if (strlen(u.host) > 255 || strcmp(want, u.where) != 0) abort();
        } else if (u.host) {            /* several nodes, or [IPv6]: each one named */
            for (int i = 0; i < u.nnodes; i++)
                if (strlen(u.nodes[i].host) > 255 || strstr(u.where, u.nodes[i].host) == NULL) abort();
        } else if (strcmp(u.path, u.where) != 0) {
            abort();
        }
        mq_redis_url_free(&u);
    } else {
        if (memchr(err, '\0', sizeof err) == NULL) abort();
    }
    free(s);
    return 0;
}
