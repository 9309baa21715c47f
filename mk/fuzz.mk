# mk/fuzz.mk: libFuzzer harnesses (clang; ASan + UBSan).
#
#   make fuzz                      every harness for FUZZ_SECONDS (300) each,
#                                  FUZZ_JOBS (2) at a time; one summary line
#                                  each; fails if any crashed
#   make fuzz-ci                   the same, 5 s each (CI: a smoke run; `make fuzz` is the real one)
#   make fuzz FUZZERS=iso8601      just the ones named
#   FUZZ_ARGS=...                  extra libFuzzer flags for every harness
#
# Harness NAME is fuzz/fuzz_NAME.c linked with FUZZ_SRCS_NAME; it is built
# only when both exist, so a harness can land before its code (or the
# reverse) without breaking the build. Seeds: fuzz/corpus/NAME/, dictionary:
# fuzz/NAME.dict (optional). Output: $(BUILD)/fuzz/.

FUZZ_SECONDS ?= 300
FUZZ_JOBS    ?= 2
FUZZ_CC      ?= clang
FUZZ_CFLAGS  ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                $(WARN) $(CSTD) -Isrc

FUZZ_SRCS_iso8601        := src/iso8601.c
FUZZ_SRCS_urlenc         := src/urlenc.c
FUZZ_SRCS_headers        := src/headers.c
FUZZ_SRCS_limiter_header := src/limiter.c src/limiter_file.c src/limiter_opts.c src/shmfile.c src/shmguard.c
FUZZ_LIBS_limiter_header := -lpthread
FUZZ_NEEDS_limiter_header := mq_limiter_check_header
# Slot: response classification, fuzz/fuzz_policy.c against src/policy.c
# (add what policy.c links against to FUZZ_SRCS_policy / FUZZ_LIBS_policy).
FUZZ_SRCS_policy         := src/policy.c
FUZZ_LIBS_policy         :=

FUZZ_SRCS_text           := src/text.c
FUZZ_SRCS_answer         := src/answer.c
# the rate_limit.redis URL (every scheme: redis_url.c)
FUZZ_SRCS_redis_url      := src/redis_url.c
FUZZ_LIBS_redis_url      :=
# the Redis topology replies (CLUSTER SLOTS, MOVED/ASK, Sentinel, ROLE)
FUZZ_SRCS_redis_topo     := src/redis_cluster.c src/redis_sentinel.c
FUZZ_LIBS_redis_topo     := -lhiredis
# the Redis conversation fed any answers (redis_conv.c and what it uses)
FUZZ_SRCS_redis_conv     := src/redis_conv.c src/redis_url.c src/redis_verdict.c src/redis_cluster.c \
                            src/redis_sentinel.c
FUZZ_LIBS_redis_conv     := -lhiredis -lcrypto
# the webhook checks (size, constant-time signature, id); libcrypto
FUZZ_SRCS_webhook        := src/webhook.c
FUZZ_LIBS_webhook        := -lcrypto
# the scrub: no encoding of a key survives (secrets_enc.c builds the needles)
FUZZ_SRCS_secrets        := src/secrets.c src/secrets_enc.c src/text.c
FUZZ_ALL := iso8601 urlenc headers limiter_header policy text answer redis_url redis_topo redis_conv webhook secrets
# Ready: the harness and every source exist, and (FUZZ_NEEDS_NAME) the
# sources define the function it calls -- so a harness written against a
# declared interface waits, without breaking `make fuzz`, until it lands.
fuzz_lp := (
fuzz_ready = $(and $(wildcard fuzz/fuzz_$(1).c),\
               $(if $(filter-out $(wildcard $(FUZZ_SRCS_$(1))),$(FUZZ_SRCS_$(1))),,yes),\
               $(if $(FUZZ_NEEDS_$(1)),$(shell grep -ls '^[a-z].*[ *]$(FUZZ_NEEDS_$(1))[[:space:]]*[$(fuzz_lp)]' $(FUZZ_SRCS_$(1))),yes))
FUZZERS ?= $(foreach f,$(FUZZ_ALL),$(if $(call fuzz_ready,$(f)),$(f)))

.PHONY: fuzz fuzz-ci fuzz-build
fuzz-build: $(FUZZERS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: fuzz-build
	@sh fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZERS)

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=5

define FUZZ_RULE
$(BUILD)/fuzz/fuzz_$(1): fuzz/fuzz_$(1).c $(FUZZ_SRCS_$(1)) $(CORE_HDRS)
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $$@ fuzz/fuzz_$(1).c $(FUZZ_SRCS_$(1)) $(FUZZ_LIBS_$(1))
endef
$(foreach f,$(FUZZERS),$(eval $(call FUZZ_RULE,$(f))))
