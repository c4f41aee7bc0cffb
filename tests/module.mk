# tests/: one TAP program per tests/<area>/<what>.c (or an executable
# tests/<area>/<what>.sh). Areas client/ and e2e/ link the public library
# only; gpu/ tests run under check-gpu; bench/ programs are not tests.
#
# Benchmarks: each tests/bench/<what>.c holds the main() of one program,
# $(BUILD)/tests/bench/<what>, built by `make bench` and never run by
# `make check`. The code they share (option parsing and die(), the KV
# shapes, the raw libfabric baseline, kvferry-bench's -m kv sweep) lives
# in tests/bench/lib/<module>.c with its header beside it, archived into
# $(BUILD)/libkvfbench.a and linked into every bench program ahead of the
# TAP helpers: the linker takes only the members a program calls, so a
# bench on the core library does not pull in the engine-side sweep. A new
# shared file is a new .c in tests/bench/lib/; nothing here changes.
TAP_SRCS := $(wildcard tests/tap/*.c)
TAP_LIB := $(BUILD)/libtap.a
EXTRA_SRCS += $(TAP_SRCS)

TEST_AREAS := $(filter-out tap bench gpu fuzz,$(notdir $(wildcard tests/*)))
TEST_C := $(foreach a,$(TEST_AREAS),$(wildcard tests/$(a)/*.c))
TEST_SH := $(foreach a,$(TEST_AREAS),$(wildcard tests/$(a)/*.sh))
# GPU tests need the CUDA toolkit to build; without it check-gpu runs none.
GPU_C := $(if $(HAVE_CUDA),$(wildcard tests/gpu/*.c))
BENCH_C := $(wildcard tests/bench/*.c)
BENCH_LIB_SRCS := $(wildcard tests/bench/lib/*.c)
BENCH_LIB := $(BUILD)/libkvfbench.a
EXTRA_SRCS += $(TEST_C) $(GPU_C) $(BENCH_C) $(BENCH_LIB_SRCS)

test_bin = $(patsubst tests/%.c,$(BUILD)/tests/%,$(1))
PUBLIC_AREAS := client e2e gpu bench ops
# These test internal modules (ipc/cuda_ipc, xfer/cuda, xfer/store), which
# the public library hides, so they link the core although their area is
# public.
CORE_LINKED := gpu/cuda_% bench/cuda_% bench/store_% bench/plan_%
# These drive the core's own modules against a sidecar whose engines use
# the public library: both.
BOTH_LINKED := sidecar/inline_%

TESTS += $(call test_bin,$(TEST_C)) $(TEST_SH)
GPU_TESTS += $(call test_bin,$(GPU_C))
BENCHES += $(call test_bin,$(BENCH_C))
# tests/perf runs the benchmarks briefly (their output, not their speed):
# make check builds them.
check: $(BENCHES)

$(TAP_LIB): $(call obj,$(TAP_SRCS))
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BENCH_LIB): $(call obj,$(BENCH_LIB_SRCS))
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^
$(call test_bin,$(BENCH_C)): $(BENCH_LIB)

# A test in a public area links libkvferry.so; the others the core. (In a
# variable: a comma written inside $(if) would split its arguments.)
PUBLIC_LINK = -L$(BUILD) -Wl,-rpath,'$$ORIGIN/../..' -lkvferry
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TAP_LIB) $(BUILD)/libkvfcore.a $(BUILD)/libkvferry.so
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< \
		$(if $(filter bench/%,$*),$(BENCH_LIB)) $(TAP_LIB) \
		$(if $(and $(filter $(PUBLIC_AREAS),$(firstword $(subst /, ,$*))), \
			$(filter-out $(CORE_LINKED),$*)), \
			$(PUBLIC_LINK),$(BUILD)/libkvfcore.a \
			$(if $(filter $(BOTH_LINKED),$*),$(PUBLIC_LINK))) \
		$(LIBS_ALL)

# kvferry-bench also under bin/, next to kvferryd, which it starts.
$(BUILD)/bin/kvferry-bench: $(BUILD)/tests/bench/kvferry_bench
	@mkdir -p $(@D)
	$(Q)ln -sf ../tests/bench/kvferry_bench $@

# make demo [DEMO_ARGS="--provider shm --tokens 128"]
demo: all $(BUILD)/tests/bench/kvferry_demo
	$(Q)KVF_BUILD=$(abspath $(BUILD)) $(BUILD)/tests/bench/kvferry_demo \
		$(DEMO_ARGS)

# make bench builds every benchmark; BENCH_ARGS="-p shm -o csv" also runs
# kvferry-bench with them (BENCH_ARGS=all: its default full run).
bench: all $(BENCHES) $(BUILD)/bin/kvferry-bench
ifneq ($(BENCH_ARGS),)
	$(Q)KVF_BUILD=$(abspath $(BUILD)) $(BUILD)/bin/kvferry-bench \
		$(filter-out all,$(BENCH_ARGS))
endif
.PHONY: bench demo
include tests/fuzz/fuzz.mk
include tests/faults/faults.mk
