# mk/bench.mk: benchmarks, written up in bench/RESULTS.md (+ bench/chart.png).
#
#   make bench                  every group (percall rss limiter ngx batch
#                               sandbox); a group whose target does not exist
#                               yet is skipped with a note
#   make bench BENCH=percall    the groups named (RESULTS.md keeps the others'
#                               last figures, each section dated)
#   make bench BENCH=report     rewrite RESULTS.md from bench/out/ only
#   make bench-percall          = make bench BENCH=percall
#   make bench-rss              = make bench BENCH=rss
# Per-call knobs (environment): BENCH_N (20000 calls a run), BENCH_RUNS (7,
# at least 5), BENCH_CAP (20 s a run at most), BENCH_MODES ("pinned split
# unpinned"), BENCH_ONLY (contenders), BENCH_STRICT=1 (fail when a claim is not met).

BENCH ?=
BENCH_DEB_PKGS := lua-curl lua-http lua5.1 lua5.3 gnuplot-nox util-linux wrk valgrind

.PHONY: bench bench-percall bench-rss bench-deps

bench: deps bench-deps rock luajit $(BUILD)/bench/c_loop $(BUILD)/bench/c_transport
	@MAKE="$(MAKE)" C_LOOP=$(BUILD)/bench/c_loop C_TRANSPORT=$(BUILD)/bench/c_transport \
	    bash bench/run.sh $(BENCH)

bench-percall:
	@$(MAKE) --no-print-directory bench BENCH=percall

bench-rss:
	@$(MAKE) --no-print-directory bench BENCH=rss

# the peers and tools the benchmark needs, installed only when missing
bench-deps:
	@missing=$$(for p in $(BENCH_DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# the physical limit: a C loop over one reused libcurl handle
$(BUILD)/bench/c_loop: bench/percall/c_loop.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(CSTD) $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

# the client's transport (src/transport.c) in the same loop, no Lua
$(BUILD)/bench/c_transport: bench/percall/c_transport.c src/transport.c src/headers.c src/transport.h src/headers.h
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(CSTD) $(CURL_CFLAGS) -Isrc -o $@ $< src/transport.c src/headers.c $(CURL_LIBS) -lpthread

# the limiter across hosts through Redis (bench/redis.lua): admission cost
# beside the local limiter's, Redis round trips per admission, a saturating
# 3-host run and what an outage costs; ~40 s, real redis-server on loopback
.PHONY: bench-redis
bench-redis: rock luajit
	@eval "$$($(MAKE) -s env)" && lua5.4 bench/redis.lua

# webhook events verified (size, constant-time signature, SHA-256 id) and
# parsed (cjson, envelope) per second in one worker: LuaJIT and Lua 5.4
.PHONY: bench-webhook
bench-webhook: rock luajit
	@LUA_PATH="$(CURDIR)/lua/?.lua;;" LUA_CPATH="$(BUILD)/luajit/?.so;;" luajit bench/webhook.lua $(or $(BENCH_SECONDS),3)
	@eval "$$($(MAKE) -s env)" && lua5.4 bench/webhook.lua $(or $(BENCH_SECONDS),3)
	@bash bench/webhook_ngx.sh $(or $(BENCH_SECONDS),5)
