/* metrics.c: host-wide counters in a shared file (placeholder). */
#include "mq.h"

typedef int mq_metrics_placeholder;
