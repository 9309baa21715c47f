/* suggest.h: the known name nearest a mistyped one (suggest.c). */
#ifndef MQ_SUGGEST_H
#define MQ_SUGGEST_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* The name of names[0..n) nearest to name (edit distance, a swap of two
 * neighbours counting one), when it is near enough to be what was meant:
 * at most max(1, (longer length + 2) / 4) edits ("timout" for "timeout",
 * not "note" for "code"), or name a prefix of it of 3 bytes or more. NULL
 * when none is. */
const char *mq_suggest(const char *name, size_t len, const char *const *names, size_t n);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
