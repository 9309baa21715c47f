/* check.h: the one pass/fail counter the C test programs share: check()
 * counts a result and prints a failure with what was tested, the input
 * and what came back; the program ends with
 *     printf("%d passed, %d failed\n", passed, failed). */
#ifndef MQ_TEST_CHECK_H
#define MQ_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

static void check(int ok, const char *what, const char *input, const char *got)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s: input \"%s\" got \"%s\"\n", what, input, got);
    }
}

#endif
