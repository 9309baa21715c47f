/* lcheck_webhook.h: the arguments of the webhook subscription operations
 * (lcheck_webhook.c), read for mq_check_op. */
#ifndef MQ_LCHECK_WEBHOOK_H
#define MQ_LCHECK_WEBHOOK_H

#include "compat.h"
#include "request.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* The 15 subscription types mediQuo documents, NULL-terminated. */
extern const char *const mq_wh_types[];

/* op is a webhook operation: webhooks (nothing), subscribe (the table at
 * ia: type, url, headers?, channel? = "http"), update_subscription (the id
 * at ia, the table at ib), unsubscribe (the id at ia), checked into a. 0,
 * or -1 with *field and *why (static or in buf, MQ_WHY_LEN bytes). The
 * strings in a point into the Lua values: keep them on the stack. */
int mq_check_webhook_op(lua_State *L, mq_op op, int ia, int ib, mq_op_args *a,
                        const char **field, const char **why, char *buf);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
