# mk/parsers.mk: C unit tests of the parsers (iso8601.c, urlenc.c, headers.c,
# answer.c), built with the project's own WARN flags. `make test-parsers`;
# the last line is "N passed, N failed".

PARSER_SRCS := src/iso8601.c src/urlenc.c src/headers.c src/answer.c

.PHONY: test-parsers
test-parsers: $(BUILD)/test/test_parsers
	$(BUILD)/test/test_parsers

$(BUILD)/test/test_parsers: test/test_parsers.c $(PARSER_SRCS) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(CSTD) -Isrc -o $@ test/test_parsers.c $(PARSER_SRCS) -lm
