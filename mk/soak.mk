# mk/soak.mk: the resilience soak (issue 5), not part of `make test`.
#
#   make soak                     4 processes for SOAK_SECONDS (100), random
#                                 faults on ~10% of calls; checks every
#                                 process's record against the sandbox, the
#                                 deadline of every call and RSS growth;
#                                 SOAK_SHARERS (2) limiter-only processes on
#                                 the same key stopped and continued 4 times
#                                 a second, the state file (as root) on a
#                                 tmpfs filled to the last byte
#   make soak SOAK_SECONDS=20     a quick one

SOAK_SECONDS ?= 100
SOAK_PROCS   ?= 4

.PHONY: soak
soak: deps rock
	@eval "$$($(MAKE) -s env)"; $(LUA) bench/soak.lua $(SOAK_SECONDS) $(SOAK_PROCS)
