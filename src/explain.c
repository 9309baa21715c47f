/* explain.c: every message a caller is told about a failed call, in one
 * place, so the blocking client, batches and mediquo.ngx word the same
 * failure the same way. Values are never quoted but the server's own
 * words, which the engine has scrubbed and bounded (secrets.c). */
#include "explain.h"

#include <stdio.h>
#include <string.h>

#define CREATED "the appointment was created, but confirming it failed: "

/* the words for "it may have taken effect", by operation */
static const char *maybe(mq_op op)
{
    static const char *const w[MQ_OP__COUNT] = {
        "the appointment may have been created", "it may have been rescheduled",
        "it may have been cancelled", "nothing was changed", "it may have been subscribed",
        "it may have been updated", "it may have been unsubscribed",
    };
    return (unsigned)op < MQ_OP__COUNT ? w[op] : "it may have been processed";
}

/* s appended to buf (holding n bytes) after "; " when not first; the new
 * length (cut at cap). */
static size_t append(char *buf, size_t cap, size_t n, const char *s)
{
    int w;
    if (n + 1 >= cap)
        return n;
    w = snprintf(buf + n, cap - n, "%s%s", n ? "; " : "", s);
    if (w < 0)
        return n;
    return n + (size_t)w < cap ? n + (size_t)w : cap - 1;
}

void mq_explain_no_time(char *stop, size_t cap, double deadline)
{
    snprintf(stop, cap, "no time for another within the deadline of %.3gs", deadline);
}

void mq_explain_failure(char *msg, size_t cap, const char *why, int bare, mq_op op,
                        int attempts, int max_attempts, const char *stop, mq_effect effect)
{
    char tail[256];
    size_t t = 0;
    int unknown = effect == MQ_EFFECT_UNKNOWN;
    int said = stop != NULL && strstr(stop, "may have been processed") != NULL;

    /* the server's own words stand alone, unless the effect must be said */
    tail[0] = '\0';
    if (!bare || unknown) {
        char at[48];
        snprintf(at, sizeof at, "attempt %d of %d", attempts, max_attempts);
        t = append(tail, sizeof tail, t, at);
    }
    if (stop != NULL && (!bare || (said && unknown)))
        t = append(tail, sizeof tail, t, stop);
    if (unknown && !said)
        append(tail, sizeof tail, t, maybe(op));
    snprintf(msg, cap, "%s%.520s%s%.200s%s", effect == MQ_EFFECT_DONE ? CREATED : "", why,
             tail[0] ? " (" : "", tail, tail[0] ? ")" : "");
}

void mq_explain_before(char *msg, size_t cap, mq_op op, double bound, int rest,
                       double deadline, int before, int max_attempts, mq_effect effect)
{
    const char *note = effect == MQ_EFFECT_UNKNOWN ? maybe(op) : NULL;
    const char *created = effect == MQ_EFFECT_DONE ? CREATED : "";

    if (bound >= 0)
        snprintf(msg, cap, "%sno rate-limit slot within %.3gs%s (before attempt %d of %d%s%s)",
                 created, bound, rest ? ", the rest of the deadline" : "", before, max_attempts,
                 note ? "; " : "", note ? note : "");
    else
        snprintf(msg, cap, "%sdeadline of %.3gs reached before attempt %d of %d%s%s%s", created,
                 deadline, before, max_attempts, note ? " (" : "", note ? note : "",
                 note ? ")" : "");
}

void mq_explain_host_fault(char *msg, size_t cap, mq_op op, const char *what, const char *why,
                           int before, int max_attempts, mq_effect effect)
{
    const char *note = effect == MQ_EFFECT_UNKNOWN ? maybe(op) : NULL;
    snprintf(msg, cap, "%s%.40s: %.300s (before attempt %d of %d%s%s)",
             effect == MQ_EFFECT_DONE ? CREATED : "", what, why ? why : "failed", before,
             max_attempts, note ? "; " : "", note ? note : "");
}

void mq_explain_status(char *msg, size_t cap, long status)
{
    snprintf(msg, cap, "HTTP %ld", status);
}

void mq_explain_bad_answer(char *msg, size_t cap, long status)
{
    snprintf(msg, cap, "the %ld answer is not the documented JSON", status);
}

void mq_explain_refusal(char *msg, size_t cap, const char *field, const char *why)
{
    snprintf(msg, cap, "%s%s%s", field ? field : "", field ? ": " : "", why ? why : "refused");
}

void mq_explain_not_found(char *msg, size_t cap, const char *path)
{
    size_t n = strlen(msg);
    /* the API lives under /v1: a base_url without it 404s on every path */
    if (strstr(path, "/v1/") == NULL && n + 40 < cap)
        snprintf(msg + n, cap - n, " (is base_url missing /v1?)");
}
