# mk/parsers.mk: C unit tests of the parsers (iso8601.c, urlenc.c, headers.c,
# answer.c), of the call engine (engine.c), of the scrub (secrets.c) and of
# the Redis topology (redis_cluster.c, redis_sentinel.c), built with the project's own
# WARN flags. `make test-parsers`; the last line is "N passed, N failed"
# (both binaries summed).

PARSER_SRCS := src/iso8601.c src/urlenc.c src/headers.c src/answer.c

# the call engine, driven in C with a fake clock (test/test_engine.c)
ENGINE_TEST_SRCS := src/engine.c src/baseurl.c src/request.c src/secrets.c src/secrets_enc.c src/explain.c src/policy.c src/answer.c src/text.c src/urlenc.c src/iso8601.c

# the scrub, each key in each encoding (test/test_secrets.c)
SECRETS_TEST_SRCS := src/secrets.c src/secrets_enc.c src/text.c

# the Redis topology: slots, CLUSTER SLOTS, MOVED/ASK, Sentinel, ROLE
TOPO_TEST_SRCS := src/redis_cluster.c src/redis_sentinel.c

.PHONY: test-parsers
test-parsers: $(BUILD)/test/test_parsers $(BUILD)/test/test_engine $(BUILD)/test/test_secrets $(BUILD)/test/test_redis_topo
	@$(BUILD)/test/test_parsers >$(BUILD)/test/parsers.out; p=$$?; \
	$(BUILD)/test/test_engine >$(BUILD)/test/engine.out; e=$$?; \
	$(BUILD)/test/test_secrets >$(BUILD)/test/secrets.out; s=$$?; \
	$(BUILD)/test/test_redis_topo >$(BUILD)/test/redis_topo.out; t=$$?; \
	grep -v ' passed, ' $(BUILD)/test/parsers.out $(BUILD)/test/engine.out $(BUILD)/test/secrets.out $(BUILD)/test/redis_topo.out; \
	cat $(BUILD)/test/parsers.out $(BUILD)/test/engine.out $(BUILD)/test/secrets.out $(BUILD)/test/redis_topo.out \
	    | awk '/^[0-9]+ passed, [0-9]+ failed$$/ \
	    { p += $$1; f += $$3 } END { printf "%d passed, %d failed\n", p, f }'; \
	[ $$p -eq 0 ] && [ $$e -eq 0 ] && [ $$s -eq 0 ] && [ $$t -eq 0 ]

$(BUILD)/test/test_secrets: test/test_secrets.c test/check.h $(SECRETS_TEST_SRCS) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(CSTD) -Isrc -o $@ test/test_secrets.c $(SECRETS_TEST_SRCS)

$(BUILD)/test/test_redis_topo: test/test_redis_topo.c test/check.h $(TOPO_TEST_SRCS) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(CSTD) -Isrc -o $@ test/test_redis_topo.c $(TOPO_TEST_SRCS) -lhiredis

$(BUILD)/test/test_engine: test/test_engine.c $(ENGINE_TEST_SRCS) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(CSTD) $(CURL_CFLAGS) -Isrc -o $@ test/test_engine.c $(ENGINE_TEST_SRCS) $(CURL_LIBS) -lm

$(BUILD)/test/test_parsers: test/test_parsers.c test/check.h $(PARSER_SRCS) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(CSTD) -Isrc -o $@ test/test_parsers.c $(PARSER_SRCS) -lm
