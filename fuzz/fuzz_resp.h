/* fuzz_resp.h: what the Redis harnesses (fuzz_redis_conv.c,
 * fuzz_redis_topo.c) share: which inputs to leave out.
 *
 * hiredis 0.14's reader callocs an array's declared element count at once
 * ("*999999999\r\n" asks for 8 GB): that is hiredis's allocation, not
 * ours, and no server declares such a count; inputs declaring more than
 * 100000 elements are left out so the fuzzer's memory limit tests our
 * code. */
#ifndef MQ_FUZZ_RESP_H
#define MQ_FUZZ_RESP_H

#include <stddef.h>
#include <stdint.h>

static inline int huge_count(const uint8_t *data, size_t size)
{
    size_t i, j;

    for (i = 0; i < size; i++) {
        if (data[i] != '*' && data[i] != '%' && data[i] != '~' && data[i] != '>')
            continue;
        for (j = i + 1; j < size && data[j] >= '0' && data[j] <= '9'; j++)
            ;
        if (j - i - 1 > 5) return 1;
    }
    return 0;
}

#endif
