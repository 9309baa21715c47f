# mk/limiter.mk: the shared rate limiter's extra targets.
#   bench-limiter   cost per call (1 process, 2 threads, 2 processes) and
#                   accuracy under saturation; ~20 s, fails on a wrong count
#   lint-limiter    luacheck over the limiter's Lua files
#   spec-limiter    its spec alone, against the rock in TREE
#   src/limiter_redis_script.inc   the Redis script (src/limiter_redis_script.lua)
#                   as a C string, comment lines left out: generated here and
#                   committed (the rockspec's builtin build runs no generator,
#                   `make dist` packs it); `make lint` checks it is up to date

.PHONY: bench-limiter lint-limiter spec-limiter lint-redis-script

# each line a C string: \ and " escaped, a newline kept; comment lines out
REDIS_SCRIPT_C = awk 'BEGIN { print "/* generated from src/limiter_redis_script.lua by mk/limiter.mk: do not edit */" } \
    /^[ \t]*--/ { next } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print "\"" $$0 "\\n\"" }'

src/limiter_redis_script.inc: src/limiter_redis_script.lua
	$(REDIS_SCRIPT_C) $< > $@.tmp && mv $@.tmp $@

lint-redis-script:
	@$(REDIS_SCRIPT_C) src/limiter_redis_script.lua | cmp -s - src/limiter_redis_script.inc \
	    || { echo "src/limiter_redis_script.inc is out of date: run make src/limiter_redis_script.inc" >&2; exit 1; }

bench-limiter:
	@CC="$(CC)" OPT="$(OPT)" BUILD="$(BUILD)" bash bench/limiter.sh

lint-limiter:
	luacheck --std max lua/mediquo/limiter.lua
	luacheck --std max+busted spec/07-limiter_spec.lua spec/limiter_worker.lua

spec-limiter: rock
	@eval "$$($(MAKE) -s env)" && $(LUA) /usr/bin/busted spec/07-limiter_spec.lua

# the script's source is Lua too (its own std in .luacheckrc), and its C
# string must be the one made from it
LINT_LUA += src/limiter_redis_script.lua
lint: lint-redis-script
