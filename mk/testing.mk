# mk/testing.mk: the test build of the C core (issue 25). The shipped module
# (the rock, build/luajit) carries no test hook; this one is compiled with
# -DMQ_TESTING, which adds the limiter's `_freeze_mid_admission`,
# `_hold_lease_lock` and `_used_both` methods and honours
# MEDIQUO_TEST_NO_JITTER_GUARD. The
# specs that use a hook put it first on their children's LUA_CPATH
# (spec/helper.lua H.hooks_env), so nothing else loads it.
#
#   make test-build   build/testing/mediquo/core.so (Lua 5.4) and
#                     build/testing/luajit/mediquo/core.so (LuaJIT)

TESTING_DIR := $(BUILD)/testing
TESTING_LUA54_INC ?= $(shell $(PKG_CONFIG) --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)

.PHONY: test-build
test-build: $(TESTING_DIR)/mediquo/core.so $(TESTING_DIR)/luajit/mediquo/core.so

$(TESTING_DIR)/mediquo/core.so: $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -DMQ_TESTING $(TESTING_LUA54_INC) $(CURL_CFLAGS) -shared -o $@ $(CORE_SRCS) $(CORE_LIBS)

$(TESTING_DIR)/luajit/mediquo/core.so: $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -DMQ_TESTING -I$(LUAJIT_INC) $(CURL_CFLAGS) -shared -o $@ $(CORE_SRCS) $(CORE_LIBS)
