# mk/hardening.mk: sanitizers, valgrind and static checks (issue 9).
#
#   make test-asan      the C core built with AddressSanitizer + UBSan into
#                       $(BUILD)/asan/ and every Lua 5.4 spec that loads it run
#                       under it (ASAN_SPECS); any report aborts the run
#   make test-valgrind  memcheck over the client specs (VALGRIND_SPECS): zero
#                       errors and zero definite leaks
#   make lint           luacheck, cppcheck, clang-tidy (static analyzer), the
#                       sources at $(WARN) under gcc and clang against Lua 5.4
#                       and LuaJIT headers, and the one-exported-symbol rule
#
# Overridable: ASAN_SPECS, VALGRIND_SPECS, HARDEN_BUSTED_ARGS (e.g.
# --filter=...), ASAN_CC (the compiler for the instrumented core and host).

LUA54_INC     ?= $(shell $(PKG_CONFIG) --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
ASAN_CC       ?= gcc
ASAN_FLAGS    ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=all
ASAN_DIR      := $(BUILD)/asan
# Every spec that loads mediquo.core in lua5.4. Not: *-sandbox* (they talk
# to the sandbox over HTTP and never load the module), *-ngx* (nginx runs
# the LuaJIT build inside its own workers, not this one), 17-install and
# 33-dist (they build and load their own rocks: luarocks finds no Lua
# headers beside the instrumented host) and 32-readme (it runs the README's
# lines with the rock `make` built, as a reader would). The gateway-only
# specs (37, 44-46) and the sandbox's own (41: its jitter, over curl)
# drive nginx alone: nothing of the instrumented core runs in them.
# MEDIQUO_SPEC_SANITIZED=1 tells a spec its process runs several times
# slower: a timing proof (spec 40's >= 99% used) is left to
# the plain run.
ASAN_NOT      := spec/%-sandbox_spec.lua spec/%-sandbox_cli_spec.lua spec/%-sandbox_iso8601_spec.lua \
                 spec/%ngx_spec.lua spec/%ngx_metrics_spec.lua \
                 spec/20-ngx_faults_spec.lua spec/21-ngx_security_spec.lua spec/22-ngx_reload_spec.lua \
                 spec/17-install_spec.lua spec/32-readme_spec.lua spec/33-dist_spec.lua \
                 spec/37-redis_tls_ngx_spec.lua spec/44-ngx_reply_spec.lua \
                 spec/45-ngx_startup_spec.lua spec/46-ngx_resolver_spec.lua \
                 spec/41-sandbox_jitter_spec.lua
ASAN_SPECS    ?= $(filter-out $(ASAN_NOT),$(wildcard spec/[0-9]*_spec.lua))
VALGRIND_SPECS ?= $(wildcard spec/05-client_spec.lua spec/06-validation_spec.lua spec/08-resilience_spec.lua \
                  spec/11-batch_spec.lua spec/24-batch_faults_spec.lua spec/25-batch_exactly_once_spec.lua \
                  spec/13-tls_spec.lua spec/14-hostile_spec.lua \
                  spec/15-secrets_spec.lua spec/16-close_spec.lua spec/18-engine_faults_spec.lua \
                  spec/19-engine_unit_spec.lua)
HARDEN_BUSTED_ARGS ?=

# Lua path for the sanitized runs: our Lua modules from the source tree,
# the instrumented core from $(ASAN_DIR), everything else (cjson, busted,
# luasocket) from the system.
ASAN_LUA_ENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" \
               LUA_CPATH="$(ASAN_DIR)/?.so;;" MEDIQUO_TEST_CPATH="$(ASAN_DIR)/?.so" MEDIQUO_SPEC_SANITIZED=1

.PHONY: test-asan test-valgrind lint lint-lua lint-cc lint-cppcheck lint-tidy lint-symbols asan-build

asan-build: $(ASAN_DIR)/mediquo/core.so $(ASAN_DIR)/lua5.4-asan
$(ASAN_DIR)/mediquo/core.so: $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_FLAGS) -DMQ_TESTING $(WARN) $(CSTD) -fPIC -fvisibility=hidden $(LUA54_INC) $(CURL_CFLAGS) \
	    -shared -o $@ $(CORE_SRCS) $(CORE_LIBS)

# lua5.4 itself is not instrumented, and LD_PRELOAD of the ASan runtime would
# reach every child of the specs (uninstrumented curl hangs under it), so the
# specs run in a small instrumented Lua host (spec/asan/lua_host.c, linked
# with the system liblua5.4). It is `lua5.4` first in PATH, and MEDIQUO_LUA,
# so the processes the specs start (limiter workers, the CLI) run it too.
$(ASAN_DIR)/lua5.4-asan: spec/asan/lua_host.c
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_FLAGS) $(WARN) $(CSTD) $(LUA54_INC) -o $@ $< \
	    $$($(PKG_CONFIG) --libs lua5.4 2>/dev/null || echo -llua5.4)
	@mkdir -p $(ASAN_DIR)/bin && ln -sf ../lua5.4-asan $(ASAN_DIR)/bin/lua5.4

# Leak detection is off here (valgrind, below, is the leak check): LSan's
# view of libcurl's and OpenSSL's global caches at exit is noise. Any ASan
# or UBSan report aborts the process, and fails the run even if busted had
# already printed its "ok" lines.
test-asan: deps asan-build
	@for f in $(ASAN_DIR)/mediquo/core.so $(ASAN_DIR)/lua5.4-asan; do \
	    nm -D "$$f" | grep -q __asan_report_load && nm -D "$$f" | grep -q __ubsan_handle \
	    || { echo "test-asan: $$f is not instrumented" >&2; exit 1; }; done
	@echo "test-asan: $(ASAN_SPECS)"
	@cd $(CURDIR) && $(ASAN_LUA_ENV) \
	    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    PATH="$(ASAN_DIR)/bin:$$PATH" MEDIQUO_LUA=$(ASAN_DIR)/lua5.4-asan MEDIQUO_SANITIZER=asan \
	    $(ASAN_DIR)/lua5.4-asan /usr/bin/busted -o TAP $(HARDEN_BUSTED_ARGS) $(ASAN_SPECS) >$(BUILD)/asan/tap.log 2>&1; \
	    rc=$$?; \
	    grep -E '^not ok|ERROR: AddressSanitizer|runtime error:|SUMMARY: ' -A 30 $(BUILD)/asan/tap.log | head -n 200; \
	    p=$$(grep -c '^ok ' $(BUILD)/asan/tap.log); f=$$(grep -c '^not ok ' $(BUILD)/asan/tap.log); \
	    if grep -qE 'ERROR: AddressSanitizer|runtime error:' $(BUILD)/asan/tap.log; then rc=1; fi; \
	    if [ $$rc -ne 0 ] && [ $$f -eq 0 ]; then tail -n 40 $(BUILD)/asan/tap.log; f=1; fi; \
	    echo "test-asan: $$p passed, $$f failed (log: $(BUILD)/asan/tap.log)"; \
	    [ $$rc -eq 0 ]

# The rock build as users get it (-O2 -g), under memcheck. Only errors and
# definite leaks fail the run: libcurl and OpenSSL keep still-reachable
# blocks until exit by design. spec/valgrind.supp says what it hides and why.
VALGRIND ?= valgrind --quiet --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite --show-leak-kinds=definite \
            --track-origins=yes --num-callers=30 --keep-debuginfo=yes --suppressions=$(CURDIR)/spec/valgrind.supp
test-valgrind: deps rock
	@mkdir -p $(BUILD)/valgrind
	@echo "test-valgrind: $(VALGRIND_SPECS)"
	@eval "$$($(MAKE) -s --no-print-directory env)"; \
	    MEDIQUO_SANITIZER=valgrind \
	    $(VALGRIND) --log-file=$(BUILD)/valgrind/memcheck.log \
	    lua5.4 /usr/bin/busted -o TAP $(HARDEN_BUSTED_ARGS) $(VALGRIND_SPECS) >$(BUILD)/valgrind/tap.log 2>&1; \
	    rc=$$?; \
	    grep -E '^not ok' -A 25 $(BUILD)/valgrind/tap.log | head -n 100; \
	    p=$$(grep -c '^ok ' $(BUILD)/valgrind/tap.log); f=$$(grep -c '^not ok ' $(BUILD)/valgrind/tap.log); \
	    if [ -s $(BUILD)/valgrind/memcheck.log ]; then head -n 150 $(BUILD)/valgrind/memcheck.log; fi; \
	    if [ $$rc -eq 99 ]; then echo "test-valgrind: memcheck errors or definite leaks (log: $(BUILD)/valgrind/memcheck.log)"; fi; \
	    if [ $$rc -ne 0 ] && [ $$f -eq 0 ]; then f=1; tail -n 20 $(BUILD)/valgrind/tap.log; fi; \
	    echo "test-valgrind: $$p passed, $$f failed, memcheck exit $$rc"; \
	    [ $$rc -eq 0 ]

# ---- lint ------------------------------------------------------------------

# directories (their *.lua files) and Lua scripts without the extension
LINT_LUA   := lua spec examples bench $(shell grep -l '^\#!.*lua' bin/* 2>/dev/null)
LINT_C     := $(CORE_SRCS)
# Harnesses and tests: compiled by their own targets; here only analysed.
LINT_C_AUX := $(wildcard test/*.c fuzz/*.c bench/*.c)
# The static analyzer and bug-prone patterns. Left out: narrowing and
# implicit-widening conversions (values here are bounded far below the
# limits: body cap 1 MiB, periods in seconds), swappable parameters and
# reserved identifiers (style, not defects), the Annex K "use memcpy_s"
# advice glibc does not provide, and sizeof-expression, which flags the
# `p = realloc(p, n * sizeof *p)` idiom whenever p points to pointers.
TIDY_CHECKS := -*,clang-analyzer-*,bugprone-*,-bugprone-easily-swappable-parameters,\
-bugprone-reserved-identifier,-bugprone-narrowing-conversions,\
-bugprone-implicit-widening-of-multiplication-result,-bugprone-sizeof-expression,\
-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling

lint: lint-lua lint-cc lint-cppcheck lint-tidy lint-symbols
	@echo "lint: clean"

lint-lua:
	luacheck -q --no-color $(wildcard $(LINT_LUA))

# every core file under both compilers and both Lua header sets
lint-cc:
	@set -e; for cc in gcc clang; do for inc in "$(LUA54_INC)" "-I$(LUAJIT_INC)"; do \
	    echo "$$cc $(WARN) $$inc"; \
	    $$cc -fsyntax-only $(WARN) $(CSTD) $$inc $(CURL_CFLAGS) -Isrc $(LINT_C); \
	done; done
	@clang -fsyntax-only $(WARN) $(CSTD) -Isrc $(LINT_C_AUX) -Wno-unused-command-line-argument

# cppcheck cannot evaluate __has_include: it is undefined for it, which
# skips only the "install libcurl's headers" hint in transport.c.
lint-cppcheck:
	cppcheck --enable=warning,performance,portability --std=c99 --error-exitcode=1 \
	    --inline-suppr -q -Isrc --suppress=missingIncludeSystem -U__has_include \
	    $(LINT_C) $(LINT_C_AUX)

lint-tidy:
	@mkdir -p $(BUILD)
	@clang-tidy -quiet --checks='$(TIDY_CHECKS)' --warnings-as-errors='*' $(LINT_C) \
	    -- $(CSTD) -Isrc $(LUA54_INC) $(CURL_CFLAGS) >$(BUILD)/clang-tidy.log 2>&1; \
	    rc=$$?; grep -vE '^[0-9]+ warnings? generated\.$$' $(BUILD)/clang-tidy.log; \
	    echo "clang-tidy: exit $$rc ($(words $(LINT_C)) files)"; exit $$rc

# one exported symbol per built module (everything else static or hidden),
# and no test hook in its strings: the hooks are compiled only with
# -DMQ_TESTING (make test-build, mk/testing.mk). LINT_HOOKS matches their
# names (Lua methods, C functions, env switches, the refusal message).
LINT_HOOKS ?= MEDIQUO_TEST_|hold_lease_lock|freeze_mid_admission|used_both|^l_hold_lease$$|^l_freeze$$|MEDIQUO_TEST_NO_JITTER_GUARD|test hook disabled
lint-symbols: all
	@set -e; for so in $(TREE)/lib/lua/$(LUA_VERSION)/mediquo/core.so $(BUILD)/luajit/mediquo/core.so; do \
	    syms=$$(nm -D --defined-only "$$so" | awk '{print $$3}' | grep -v '^_init$$\|^_fini$$' | sort | tr '\n' ' '); \
	    if [ "$$syms" != "luaopen_mediquo_core " ]; then echo "$$so exports: $$syms" >&2; exit 1; fi; \
	    echo "$$so: exports only luaopen_mediquo_core"; \
	    hooks=$$(strings "$$so" | grep -E '$(LINT_HOOKS)' | sort -u | tr '\n' ' '); \
	    if [ -n "$$hooks" ]; then echo "$$so carries test hooks: $$hooks" >&2; exit 1; fi; \
	    echo "$$so: no test hook (strings)"; \
	done
