/* text.h: what a string's bytes are, for JSON and for the checks (text.c). */
#ifndef MQ_TEXT_H
#define MQ_TEXT_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef enum {
    MQ_TEXT_VERBATIM = 0,   /* printable ASCII without " / \ : JSON as it is */
    MQ_TEXT_ESCAPE,         /* valid UTF-8, no control characters, needs escaping */
    MQ_TEXT_CONTROL,        /* a control character (NUL, 0x01-0x1F, DEL) */
    MQ_TEXT_BAD_UTF8        /* not valid UTF-8 */
} mq_text_class;
mq_text_class mq_text_classify(const char *s, size_t len);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
