# mk/soak.mk: the resilience soak (issues 5 and 16), not part of `make test`.
#
#   make soak                     4 processes for SOAK_SECONDS (100), random
#                                 faults on ~10% of calls; checks every
#                                 process's record against the sandbox, the
#                                 deadline of every call and RSS growth;
#                                 SOAK_SHARERS (2) limiter-only processes on
#                                 the same key stopped and continued 4 times
#                                 a second, the state file (as root) on a
#                                 tmpfs filled to the last byte; the example
#                                 gateway (nginx + mediquo.ngx, same sandbox
#                                 and limiter key) booking, rescheduling and
#                                 cancelling for SOAK_GW_CLIENTS (8) curl
#                                 clients while its master gets SIGHUP
#                                 about every 2 s: every request answered,
#                                 every answer agrees with the server
#   make soak SOAK_SECONDS=20     a quick one
#   make soak SOAK_GATEWAY=0      without the gateway leg (no `make luajit`)
#   make soak SOAK_GW_SIGNAL=KILL SIGKILL a gateway worker instead of the
#                                 reload: must end in SOAK FAIL (requests
#                                 without an answer, [alert] in error.log)

SOAK_SECONDS ?= 100
SOAK_PROCS   ?= 4

.PHONY: soak
soak: deps rock $(if $(filter 0,$(SOAK_GATEWAY)),,luajit)
	@eval "$$($(MAKE) -s env)"; $(LUA) bench/soak.lua $(SOAK_SECONDS) $(SOAK_PROCS)

# make soak-redis-jitter   the transit guard's proof (issue 20, bench/jitter.lua):
#                          3 hosts x 2 processes on one Redis budget (100 per
#                          10 s) at full demand, the sandbox at its strictest
#                          (--sliding --latency-ms 0-50): no 429 in
#                          JITTER_SECONDS (300) and >= 99% used, through the
#                          client and with the limiter alone; then the same
#                          without the guard (test-only env), which must show
#                          the jitter (429s, or the pauses they cost). ~10 min.
JITTER_SECONDS ?= 300

.PHONY: soak-redis-jitter
soak-redis-jitter: deps rock test-build
	@eval "$$($(MAKE) -s env)"; $(LUA) bench/jitter.lua $(JITTER_SECONDS) 10 100 both
