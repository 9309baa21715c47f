/* lbatch.c: the Lua binding of batch.c (placeholder). */
#include "lmq.h"

void mq_lbatch_open(lua_State *L)
{
    (void)L;
}
