/* fuzz_limiter_header.c: libFuzzer harness for mq_limiter_check_header, the
 * check a process runs on a shared state file's header before mapping it
 * (the file is written by other processes, so its bytes are untrusted).
 * Invariants: returns 0 or -1; on -1 the reason is NUL-terminated inside
 * errlen, for any errlen including 1; nothing is written past errlen. */
#include "limiter.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size copy so ASan sees any read past len */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    if (size)
        memcpy(buf, data, size);

    char err[128];
    memset(err, 'X', sizeof err);
    int rc = mq_limiter_check_header(buf, size, err, sizeof err);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0'))
        abort();

    /* a tiny error buffer, allocated exactly */
    size_t errlen = size ? (size_t)(data[0] % 4) + 1 : 1;
    char *small = malloc(errlen);
    if (!small)
        abort();
    memset(small, 'X', errlen);
    int rc2 = mq_limiter_check_header(buf, size, small, errlen);
    if (rc2 != rc)
        abort();
    if (rc2 == -1 && memchr(small, '\0', errlen) == NULL)
        abort();

    free(small);
    free(buf);
    return 0;
}
