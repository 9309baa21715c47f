/* version.h: the one place the release number is written. mediquo.core's
 * _VERSION, the User-Agent, `mediquo --version` and `make rockspec-release`
 * (mk/packaging.mk reads it from here) all take it from this line. */
#ifndef MQ_VERSION_H
#define MQ_VERSION_H

#define MQ_VERSION "0.2.0"

#endif
