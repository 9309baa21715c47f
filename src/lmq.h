/* lmq.h: an umbrella over the binding headers (lclient.h, llimiter.h,
 * lmetrics.h, lbatch.h), kept for the binding files other branches are
 * rewriting now (lbatch.c, llimiter.c, lmetrics.c); new code includes the
 * header of the file it uses. */
#ifndef MQ_LMQ_H
#define MQ_LMQ_H

#include "compat.h"
#include "mq.h"
#include "engine.h"
#include "lclient.h"
#include "llimiter.h"
#include "lmetrics.h"
#include "lbatch.h"

#endif
