# mk/packaging.mk: install for distribution packagers, and every runtime.
#
#   make install   [PREFIX=/usr/local] [DESTDIR=] [LUA_VERSION=5.4]
#                  the Lua modules, the C core and the commands
#   make uninstall the same files, removed
#   make test-all  every suite on Lua 5.4 and LuaJIT, and the specs that
#                  need no nginx (spec/unit.list) on Lua 5.3 and 5.1
#   LUA_INC        Lua headers for the direct build (/usr/include/lua$(LUA_VERSION))
#   LUA_LMOD, LUA_CMOD, BINDIR  where install puts Lua modules, the C module, commands

LUA_INC  ?= /usr/include/lua$(LUA_VERSION)
LUA_LMOD ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LUA_CMOD ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
BINDIR   ?= $(PREFIX)/bin

# every Lua module, the sandbox's handlers included (bin/mediquo-sandbox
# finds them next to the modules)
INSTALL_LUA := $(shell find lua -name '*.lua' | sort)
INSTALL_BIN := $(wildcard bin/mediquo bin/mediquo-sandbox)

.PHONY: install uninstall test-all core-direct

core-direct: $(BUILD)/lua$(LUA_VERSION)/mediquo/core.so
$(BUILD)/lua$(LUA_VERSION)/mediquo/core.so: $(CORE_SRCS) $(CORE_HDRS)
	@test -f $(LUA_INC)/lua.h || { echo "no Lua headers in $(LUA_INC): apt-get install liblua$(LUA_VERSION)-dev" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -I$(LUA_INC) $(CURL_CFLAGS) -shared -o $@ $(CORE_SRCS) $(CORE_LIBS)

install: core-direct
	install -d $(DESTDIR)$(LUA_CMOD)/mediquo $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/lua$(LUA_VERSION)/mediquo/core.so $(DESTDIR)$(LUA_CMOD)/mediquo/core.so
	@set -e; for f in $(INSTALL_LUA); do \
	    rel=$${f#lua/}; install -d $(DESTDIR)$(LUA_LMOD)/$$(dirname $$rel); \
	    install -m 0644 $$f $(DESTDIR)$(LUA_LMOD)/$$rel; echo "install $(DESTDIR)$(LUA_LMOD)/$$rel"; \
	done
	@set -e; for f in $(INSTALL_BIN); do \
	    install -m 0755 $$f $(DESTDIR)$(BINDIR)/; echo "install $(DESTDIR)$(BINDIR)/$$(basename $$f)"; \
	done

uninstall:
	rm -f $(DESTDIR)$(LUA_CMOD)/mediquo/core.so
	@for f in $(INSTALL_LUA); do rm -f $(DESTDIR)$(LUA_LMOD)/$${f#lua/}; done
	@for f in $(INSTALL_BIN); do rm -f $(DESTDIR)$(BINDIR)/$$(basename $$f); done
	-@rmdir $(DESTDIR)$(LUA_LMOD)/mediquo/sandbox $(DESTDIR)$(LUA_LMOD)/mediquo \
	    $(DESTDIR)$(LUA_CMOD)/mediquo 2>/dev/null || true

# the older Luas get trees of their own: one tree's bin/ holds one wrapper
# per command, and the 5.4 one must stay the 5.4 rock's
test-all: deps all
	@$(MAKE) --no-print-directory rock LUA_VERSION=5.3 TREE=$(CURDIR)/.rocks-5.3
	@$(MAKE) --no-print-directory rock LUA_VERSION=5.1 TREE=$(CURDIR)/.rocks-5.1
	@SUITES="cunit lua54 luajit lua53 lua51" bash spec/run.sh
