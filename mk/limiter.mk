# mk/limiter.mk: the shared rate limiter's extra targets.
#   bench-limiter   cost per call (1 process, 2 threads, 2 processes) and
#                   accuracy under saturation; ~20 s, fails on a wrong count
#   lint-limiter    luacheck over the limiter's Lua files
#   spec-limiter    its spec alone, against the rock in TREE

.PHONY: bench-limiter lint-limiter spec-limiter

bench-limiter:
	@CC="$(CC)" OPT="$(OPT)" BUILD="$(BUILD)" bash bench/limiter.sh

lint-limiter:
	luacheck --std max lua/mediquo/limiter.lua
	luacheck --std max+busted spec/07-limiter_spec.lua spec/limiter_worker.lua

spec-limiter: rock
	@eval "$$($(MAKE) -s env)" && $(LUA) /usr/bin/busted spec/07-limiter_spec.lua
