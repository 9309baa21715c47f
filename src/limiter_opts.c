/* limiter_opts.c: the rate-limit rule's option rules (per_minute, burst,
 * period: default, bounds, words), in one table. The constructor and
 * :set_rule (llimiter.c), the state file's check (limiter_file.c) and Lua
 * (mediquo.limiter, through core.limiter_rule) all ask here; none keeps a
 * copy of a bound or of a message. */
#include <math.h>

#include "limiter.h"
#include "xstr.h"

/* The words are Lua's (mediquo.limiter prefixes the field with
 * "rate_limit."): they name the bound, never the value. */
static const char *const why_not[MQ_RULE__COUNT] = {
    [MQ_RULE_PER_MINUTE] = "must be an integer > 0",
    [MQ_RULE_BURST]      = "must be an integer from 1 to per_minute",
    [MQ_RULE_PERIOD]     = "must be a number > 0 (seconds, at most " MQ_XSTR(MQ_LIMITER_MAX_PERIOD_N) ")",
};

const char *const mq_limiter_rule_fields[MQ_RULE__COUNT] = {
    [MQ_RULE_PER_MINUTE] = "per_minute", [MQ_RULE_BURST] = "burst", [MQ_RULE_PERIOD] = "period",
};

static int whole(double v)
{
    return isfinite(v) && v == floor(v);
}

int mq_limiter_check_rule(double v[MQ_RULE__COUNT], const int given[MQ_RULE__COUNT],
                          const char **field, const char **why)
{
    double pm, burst, period;

    if (!given[MQ_RULE_PER_MINUTE]) v[MQ_RULE_PER_MINUTE] = MQ_LIMITER_DEFAULT_PER_MIN;
    pm = v[MQ_RULE_PER_MINUTE];
    *field = mq_limiter_rule_fields[MQ_RULE_PER_MINUTE];
    if (!whole(pm) || pm <= 0) {
        *why = why_not[MQ_RULE_PER_MINUTE];
        return -1;
    }
    if (pm > MQ_LIMITER_MAX_PER_MIN) {
        *why = "must be at most " MQ_XSTR(MQ_LIMITER_MAX_PER_MIN_N);
        return -1;
    }
    if (!given[MQ_RULE_BURST]) v[MQ_RULE_BURST] = pm < 60 ? pm : 60;
    burst = v[MQ_RULE_BURST];
    *field = mq_limiter_rule_fields[MQ_RULE_BURST];
    if (!whole(burst) || burst < 1 || burst > pm) {
        *why = why_not[MQ_RULE_BURST];
        return -1;
    }
    if (!given[MQ_RULE_PERIOD]) v[MQ_RULE_PERIOD] = MQ_LIMITER_DEFAULT_PERIOD;
    period = v[MQ_RULE_PERIOD];
    *field = mq_limiter_rule_fields[MQ_RULE_PERIOD];
    /* a period shorter than per_minute ns cannot space its starts */
    if (!(period > 0 && period <= MQ_LIMITER_MAX_PERIOD) || period * 1e9 < pm) {
        *why = why_not[MQ_RULE_PERIOD];
        return -1;
    }
    *field = *why = NULL;
    return 0;
}
