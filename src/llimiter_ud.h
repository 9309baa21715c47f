/* llimiter_ud.h: the limiter userdata's layout and lookup, what the
 * limiter's two Lua halves share: llimiter.c (the class) and lredis.c (its
 * Redis methods). lredis.c includes this, not llimiter.h: llimiter.c
 * calls into lredis.c (attach, status), never the other way round. */
#ifndef MQ_LLIMITER_UD_H
#define MQ_LLIMITER_UD_H

#include "compat.h"
#include "limiter.h"
#include "lclass.h"

#define MQ_LIMITER_MT  "mediquo.core.limiter"
#define MQ_LIMITER_TAG "mq.limit"     /* lclass.h: each userdata's first 8 bytes */

typedef struct {
    char tag[MQ_LTAG_LEN];
    mq_limiter *l;              /* NULL once closed (or never opened) */
} mq_llimiter_ud;

/* The limiter behind the value at idx, or NULL when it is not a limiter or
 * has been closed. */
static inline mq_limiter *mq_llimiter_get(lua_State *L, int idx)
{
    mq_llimiter_ud *u = (mq_llimiter_ud *)mq_ltag_test(L, idx, MQ_LIMITER_TAG);
    return u ? u->l : NULL;
}

#endif
