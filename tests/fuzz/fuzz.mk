# tests/fuzz/: libFuzzer targets, built with clang into build/fuzz/ (their
# own objects: everything instrumented with -fsanitize=fuzzer,address).
#
#   make fuzz            each target for FUZZ_SECONDS (default 60) seconds
#   make fuzz-smoke      each target for 5 seconds (what CI runs)
#   make fuzz-build      only build them
#   make fuzz-seeds      regenerate tests/fuzz/corpus/ from seeds/gen.c
#
# Seeds in tests/fuzz/corpus/<target>/ are read, never written: a run's
# new inputs go to build/fuzz/corpus/<target>/, crashes to
# build/fuzz/crash-<target>-*.
FUZZ_CC ?= clang
FUZZ_OUT ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/*.c)))
FUZZ_BINS := $(addprefix $(FUZZ_OUT)/,$(FUZZ_TARGETS))
FUZZ_FLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer -pthread \
	-I. -I$(BUILD)/gen -D_GNU_SOURCE $(PKG_CFLAGS) -Wno-unused-parameter
# The handlers a target includes (engines.c, peer_server.c, ctl_server.c)
# come in through its own source; these are linked to all of them.
FUZZ_LINK_SRCS := ipc/wire.c ipc/ring.c ipc/doorbell.c ipc/shm.c \
	sidecar/registry.c sidecar/idmap.c sidecar/log.c sidecar/auth.c \
	sidecar/engine_watch.c xfer/topo.c \
	client/errors.c $(PROTO_GEN_C)
FUZZ_LINK_OBJS := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(FUZZ_LINK_SRCS))
# An archive, so each target pulls only the members it uses.
FUZZ_LIB := $(FUZZ_OUT)/libfuzzcore.a

$(FUZZ_LIB): $(FUZZ_LINK_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_OUT)/obj/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(@D)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OUT)/%: tests/fuzz/%.c $(FUZZ_LIB) tests/fuzz/sidecar_stubs.h \
		| $(GEN_HDRS)
	@mkdir -p $(@D)
	@echo "  FUZZLD  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB) \
		$(PKG_LIBS) $(NNG_LIBS) -lm

fuzz-build: $(FUZZ_BINS)

# One target at a time; ring_pop takes a whole session object, so longer
# inputs.  (2 cores are shared); -max_total_time bounds each.
define fuzz_run
	$(Q)for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_OUT)/corpus/$$t; \
		echo "  FUZZ    $$t for $(1) s"; \
		ASAN_OPTIONS=detect_leaks=1 $(FUZZ_OUT)/$$t \
			-max_total_time=$(1) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 \
			$$([ $$t = ring_pop ] && echo -max_len=24576) \
			-artifact_prefix=$(FUZZ_OUT)/crash-$$t- \
			$(FUZZ_OUT)/corpus/$$t tests/fuzz/corpus/$$t \
			>$(FUZZ_OUT)/$$t.log 2>&1 \
		|| { tail -40 $(FUZZ_OUT)/$$t.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units' $(FUZZ_OUT)/$$t.log; \
	done
endef

fuzz: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_SECONDS))

fuzz-smoke: $(FUZZ_BINS)
	$(call fuzz_run,5)

# The seed writer is an ordinary program (no instrumentation).
$(FUZZ_OUT)/gen_seeds: tests/fuzz/seeds/gen.c ipc/wire.c ipc/ring.c \
		ipc/doorbell.c sidecar/auth.c $(PROTO_GEN_C) | $(GEN_HDRS)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) -std=c11 -g -pthread -I. -I$(BUILD)/gen -D_GNU_SOURCE \
		$(PKG_CFLAGS) -o $@ $(filter %.c,$^) $(PKG_LIBS)

fuzz-seeds: $(FUZZ_OUT)/gen_seeds
	$(Q)$(FUZZ_OUT)/gen_seeds tests/fuzz/corpus

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-seeds
