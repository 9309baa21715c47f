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

# ---------------------------------------------------------------------------
# Releases: a versioned rockspec and a source rock.
#
#   make rockspec-release [RELEASE=0.2.0]  (re)writes rockspec/mediquo-RELEASE-1.rockspec
#                  from mediquo-scm-1.rockspec: same build, a release source
#   make dist      build/dist/mediquo-RELEASE-1.src.rock (the rockspec and
#                  lua-mediquo-RELEASE.tar.gz, the tracked files as they are
#                  in the work tree), installable offline:
#                  luarocks install --deps-mode=none build/dist/mediquo-0.2.0-1.src.rock
#
# The versioned rockspec is generated, never edited by hand: scm-1 is the one
# that changes with the sources, and `make dist` refuses a versioned rockspec
# that no longer matches it (run `make rockspec-release`).

# the release number is written once, in src/version.h
RELEASE      ?= $(shell sed -n 's/^#define MQ_VERSION "\(.*\)"$$/\1/p' src/version.h)
RELEASE_REV  ?= 1
RELEASE_NAME := mediquo-$(RELEASE)-$(RELEASE_REV)
RELEASE_SPEC := rockspec/$(RELEASE_NAME).rockspec
DIST         ?= $(BUILD)/dist
RELEASE_URL  ?= https://github.com/lua-mediquo/lua-mediquo/archive/v$(RELEASE).tar.gz

# scm-1's text with the version and the source swapped (awk, so that a field
# added to scm-1 appears in the release rockspec without anyone copying it)
define release_rockspec
awk -v ver='$(RELEASE)-$(RELEASE_REV)' -v url='$(RELEASE_URL)' -v rel='$(RELEASE)' ' \
    /^version = / { print "version = \"" ver "\""; next } \
    /^source = \{/ { print "source = {"; \
                     print "   url = \"" url "\","; \
                     print "   file = \"lua-mediquo-" rel ".tar.gz\","; \
                     print "   dir = \"lua-mediquo-" rel "\","; \
                     print "}"; skip = 1; next } \
    skip && /^\}/ { skip = 0; next } \
    skip { next } \
    { print }' rockspec/mediquo-scm-1.rockspec
endef

.PHONY: rockspec-release dist

rockspec-release:
	@$(release_rockspec) > $(RELEASE_SPEC)
	@echo "wrote $(RELEASE_SPEC)"

dist:
	@command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 \
	    || { echo "make dist: needs a git checkout (it packs the tracked files)" >&2; exit 1; }
	@command -v zip >/dev/null || { echo "make dist: needs zip (apt-get install zip)" >&2; exit 1; }
	@$(release_rockspec) | cmp -s - $(RELEASE_SPEC) \
	    || { echo "make dist: $(RELEASE_SPEC) is missing or no longer matches mediquo-scm-1.rockspec: run 'make rockspec-release'" >&2; exit 1; }
	@# the tracked files as they are in the work tree, read by tar (git
	@# stash create + git archive failed now and then under set -e with
	@# its stderr hidden: make dist exited 1 saying nothing, CI runs 19, 21)
	@set -e; rm -rf $(DIST)/stage; mkdir -p $(DIST)/stage; \
	git ls-files -z | tar --null -T - --transform 's,^,lua-mediquo-$(RELEASE)/,S' \
	    --owner=0 --group=0 --numeric-owner --mode=go-w -czf $(DIST)/stage/lua-mediquo-$(RELEASE).tar.gz; \
	cp $(RELEASE_SPEC) $(DIST)/stage/; \
	rm -f $(DIST)/$(RELEASE_NAME).src.rock; \
	cd $(DIST)/stage && zip -q -X ../$(RELEASE_NAME).src.rock $(RELEASE_NAME).rockspec lua-mediquo-$(RELEASE).tar.gz; \
	cd .. && rm -rf stage; \
	echo "$(DIST)/$(RELEASE_NAME).src.rock"
