/* batch.c: several calls of one client in flight at once over curl's multi
 * interface (placeholder until the batch driver lands). */
#include "lmq.h"

typedef int mq_batch_placeholder;
