/* lmetrics.c: the Lua binding of metrics.c (placeholder). */
#include "lmq.h"

void mq_lmetrics_open(lua_State *L)
{
    (void)L;
}
