/* answer.h: the appointment in a create or reschedule answer, read in C
 * without cjson (answer.c). */
#ifndef MQ_ANSWER_H
#define MQ_ANSWER_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct {
    const char *code; size_t code_len;   /* into body, or buf (see below) */
    const char *url;  size_t url_len;
} mq_appt;

/* 1: body (len bytes, need not be NUL-terminated) is one JSON object that
 * cjson would decode without error, and data.appointment.code and
 * data.appointment.url are strings: *a is filled. A string written with no
 * escape is pointed at where it is in body; one with escapes is unescaped
 * into buf (which must hold at least len bytes). 0: anything else, or
 * anything this scanner does not handle (the caller decodes with cjson). */
int mq_answer_appointment(const char *body, size_t len, char *buf, mq_appt *a);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
