# lua-mediquo build. Every variable below can be overridden on the command
# line, e.g. `make LUA_VERSION=5.3` or `make test BUSTED_ARGS=--filter=create`.
#
#   LUA_VERSION   Lua the rock is built for (5.4)          LUAJIT_INC  LuaJIT headers
#   TREE          local LuaRocks tree for make/test (.rocks) CURL_CFLAGS/CURL_LIBS from pkg-config
#   PREFIX        install prefix for `make install` (/usr/local)   DESTDIR  staging root
#   WARN          warnings, always fatal                      OPT  optimisation flags
#
# Targets: all (default: the rock into TREE + the LuaJIT module), env, test,
# demo, clean; more in mk/*.mk (bench, soak, fuzz, lint, asan, ...).

LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
TREE        ?= $(CURDIR)/.rocks
ROCKSPEC    ?= rockspec/mediquo-scm-1.rockspec
LUAROCKS    ?= luarocks
PKG_CONFIG  ?= pkg-config
CC          ?= cc
OPT         ?= -O2 -g
WARN        ?= -Wall -Wextra -Werror
CSTD        ?= -std=c99 -D_GNU_SOURCE
CURL_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS   ?= $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)
CURL_INCDIR ?= $(or $(shell $(PKG_CONFIG) --variable=includedir libcurl 2>/dev/null),/usr/include)
CURL_LIBDIR ?= $(or $(shell $(PKG_CONFIG) --variable=libdir libcurl 2>/dev/null),/usr/lib)
HIREDIS_LIBS ?= -lhiredis
HIREDIS_INCDIR ?= /usr/include
# where the compiler finds libhiredis.so (Debian's hiredis.pc names /usr/lib,
# the library is in the multiarch dir); curl's dir when it finds none
HIREDIS_LIBDIR ?= $(or $(patsubst %/,%,$(dir $(filter /%,$(shell $(CC) -print-file-name=libhiredis.so 2>/dev/null)))),$(CURL_LIBDIR))
LUAJIT_INC  ?= /usr/include/luajit-2.1
BUILD       ?= $(CURDIR)/build
PREFIX      ?= /usr/local
DESTDIR     ?=

CORE_SRCS := src/lmediquo.c src/lclient.c src/llimiter.c src/transport.c \
             src/policy.c src/limiter.c src/limiter_file.c src/limiter_rule.c src/iso8601.c \
             src/urlenc.c src/headers.c src/batch.c src/lbatch.c src/metrics.c \
             src/lmetrics.c src/shmfile.c src/shmguard.c src/text.c src/lcheck.c src/lbody.c src/answer.c \
             src/engine.c src/request.c src/secrets.c src/secrets_enc.c src/explain.c src/lengine.c src/lengine_wire.c \
             src/driver_easy.c src/lhttp.c src/baseurl.c \
             src/ljournal.c src/lopt.c src/lclass.c src/ltz.c src/suggest.c \
             src/redis_conn.c src/lease_file.c src/limiter_redis.c src/limiter_redis_script.c src/lredis.c \
             src/redis_url.c src/redis_conv.c src/redis_tls.c src/redis_verdict.c \
             src/webhook.c src/lwebhook.c src/lcheck_webhook.c src/lcheck_op.c src/limiter_opts.c
CORE_SRCS += src/redis_cluster.c src/redis_sentinel.c
CORE_HDRS := $(wildcard src/*.h) src/limiter_redis_script.inc
# what mediquo/core.so links with (http_parser: src/lhttp.c)
CORE_LIBS = $(CURL_LIBS) -lhttp_parser $(HIREDIS_LIBS) -lssl -lcrypto -lpthread
MODULE_CFLAGS := $(OPT) $(WARN) $(CSTD) -fPIC -fvisibility=hidden

LUA_MODS := $(shell find lua -name '*.lua' -not -path 'lua/mediquo/sandbox/*')

.PHONY: all rock luajit env test demo clean deps

# `make` on a fresh Debian 12 box installs what is missing first (make deps)
all: deps rock luajit

# The rock, installed into the local tree exactly as a user would get it.
rock: $(TREE)/.stamp-$(LUA_VERSION)
$(TREE)/.stamp-$(LUA_VERSION): $(CORE_SRCS) $(CORE_HDRS) $(LUA_MODS) $(ROCKSPEC)
	@mkdir -p $(BUILD)
	@command -v $(LUAROCKS) >/dev/null || { echo "luarocks missing: run 'make deps' as root (apt-get install luarocks)" >&2; exit 1; }
	@# luarocks builds objects next to the sources: build in a private copy
	@# so two builds (two Lua versions, two shells) never mix objects
	@set -e; dir=$$(mktemp -d $(BUILD)/rock.XXXXXX); \
	cp -R $(ROCKSPEC) src lua bin $$dir/; \
	cd $$dir && $(LUAROCKS) --lua-version $(LUA_VERSION) --tree $(TREE) make --deps-mode=none \
	    $(notdir $(ROCKSPEC)) CURL_INCDIR=$(CURL_INCDIR) CURL_LIBDIR=$(CURL_LIBDIR) \
	    HIREDIS_INCDIR=$(HIREDIS_INCDIR) HIREDIS_LIBDIR=$(HIREDIS_LIBDIR) \
	    CFLAGS="$(MODULE_CFLAGS)" >$(BUILD)/rock-$(LUA_VERSION).log 2>&1 \
	    || { cat $(BUILD)/rock-$(LUA_VERSION).log >&2; rm -rf $$dir; exit 1; }; \
	rm -rf $$dir
	@touch $@

# The same sources against LuaJIT (what nginx's Lua module runs).
luajit: $(BUILD)/luajit/mediquo/core.so
$(BUILD)/luajit/mediquo/core.so: $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -I$(LUAJIT_INC) $(CURL_CFLAGS) -shared -o $@ $(CORE_SRCS) $(CORE_LIBS)

# `eval "$(make -s env)"` makes `require "mediquo"` work from any folder, for
# $(LUA) (lua5.4). The C module is built for that one Lua: another Lua
# loading it fails (5.3: "undefined symbol: lua_newuserdatauv"), so when plain
# `lua` is another version this says so on stderr (stdout stays eval-able).
env:
	@echo 'export LUA_PATH="$(TREE)/share/lua/$(LUA_VERSION)/?.lua;$(TREE)/share/lua/$(LUA_VERSION)/?/init.lua;$(CURDIR)/lua/?.lua;;"'
	@echo 'export LUA_CPATH="$(TREE)/lib/lua/$(LUA_VERSION)/?.so;;"'
	@echo 'export PATH="$(CURDIR)/bin:$$PATH"'
	@v=$$(lua -v 2>&1 | sed -n 's/^Lua \([0-9]*\.[0-9]*\).*/\1/p'); \
	if [ "$$v" != "$(LUA_VERSION)" ]; then \
	    echo "make env: these paths are for Lua $(LUA_VERSION): run scripts with $(LUA)$${v:+, not plain lua (which is Lua $$v here and cannot load this build of mediquo.core)}" >&2; \
	fi

# Debian packages the build, the tests and the demo need; installed only
# when one is missing (needs root, as on CI).
DEB_PKGS := make gcc zip unzip lua5.4 liblua5.4-dev lua-cjson lua-busted luarocks lua-check lua-socket \
            libcurl4-openssl-dev pkg-config nginx-core libnginx-mod-http-lua \
            luajit2 libluajit2-5.1-dev openssl curl tmux iproute2 \
            lua5.3 liblua5.3-dev lua5.1 liblua5.1-0-dev libhttp-parser-dev redis-server libhiredis-dev \
            libssl-dev
# Sentinel and Cluster specs (38, 39): redis-sentinel, redis-cli --cluster
DEB_PKGS += redis-sentinel redis-tools
# Installs the Debian packages that are missing (as root; otherwise says
# which and how). `make APT_UPDATE=true APT_GET="apt-get -s"` shows what
# would be installed without installing it.
APT_GET    ?= apt-get
APT_UPDATE ?= $(APT_GET) update -qq
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "missing Debian packages:" $$missing >&2; \
	        echo "run 'make deps' as root (sudo make deps), or install them, then make again" >&2; \
	        exit 1; \
	    fi; \
	    echo "make deps: installing the missing Debian packages:" $$missing; \
	    $(APT_UPDATE) && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $$missing \
	        || { echo "make deps: apt-get could not install:" $$missing >&2; exit 1; }; \
	fi

# Every suite; the last line is "N passed, N failed".
test: deps all test-build
	@bash spec/run.sh

demo: deps rock
	@bash examples/demo.sh

clean:
	rm -rf $(TREE) $(TREE)-5.3 $(TREE)-5.1 $(BUILD) src/*.o

-include mk/*.mk
