/* mq.h: an umbrella over the one-job headers (clock.h, text.h, iso8601.h,
 * urlenc.h, headers.h, shmfile.h, limiter.h), kept only for the files
 * other branches are rewriting now (limiter*, metrics*); new code includes
 * the header of the file it uses. Only luaopen_mediquo_core is exported
 * from the shared object; every header hides its symbols. */
#ifndef MQ_H
#define MQ_H

#include "clock.h"
#include "headers.h"
#include "iso8601.h"
#include "limiter.h"
#include "shmfile.h"
#include "text.h"
#include "urlenc.h"

#endif
