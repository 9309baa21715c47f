/* lcheck_op.c: an operation's arguments checked by the checker of its
 * family: the appointment operations by lcheck.c, the webhook ones by
 * lcheck_webhook.c. The dispatch sits above both, so neither of them
 * reaches the other (lcheck_webhook.c uses lcheck.c's field checks). */
#include "lcheck.h"
#include "lcheck_webhook.h"

#include <string.h>

int mq_check_op(lua_State *L, mq_op op, int ia, int ib, mq_op_args *a,
                const char **field, const char **why, char *buf)
{
    if (MQ_OP_IS_WEBHOOK(op)) {
        memset(a, 0, sizeof *a);
        a->op = op;
        return mq_check_webhook_op(L, op, ia, ib, a, field, why, buf);
    }
    return mq_check_appt_op(L, op, ia, ib, a, field, why, buf);
}
