# kvferry: one non-recursive Makefile. Each folder adds its sources in its
# own module.mk; every output lands in build/$(MODE)/.
#
#   make                 build kvferryd, kvferryctl, libkvferry.{so,a}
#   make check           run every TAP test with prove
#   make check MODE=asan the same under AddressSanitizer + UBSan
#   make check-gpu       the GPU tests (each skips with a reason without a GPU)
#   make deps            install build and test dependencies (Debian, root)
#   make demo            two sidecars, a prefill and a decode engine on loopback
#   make bench           kvferry-bench against the raw libfabric baseline

MODE ?= release
BUILD ?= build/$(MODE)
CUDA_HOME ?= /usr/local/cuda

.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:
.DEFAULT_GOAL := all

ifeq ($(V),1)
Q :=
else
Q := @
endif

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

HAVE_CUDA := $(shell test -f $(CUDA_HOME)/include/cuda_runtime.h && \
	test -f $(CUDA_HOME)/lib64/libcudart_static.a && echo 1)

PKGS := libfabric liburing libprotobuf-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
NNG_LIBS := $(shell pkg-config --libs nng 2>/dev/null || echo -lnng)

WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS_release := -O2 -g
CFLAGS_debug := -O0 -g3
CFLAGS_asan := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
CFLAGS_tsan := -O1 -g -fsanitize=thread
LDFLAGS_asan := -fsanitize=address,undefined
LDFLAGS_tsan := -fsanitize=thread

ifeq ($(filter $(MODE),release debug asan tsan),)
$(error MODE must be release, debug, asan or tsan, not '$(MODE)')
endif

CPPFLAGS_ALL := -I. -I$(BUILD)/gen -D_GNU_SOURCE $(PKG_CFLAGS) -MMD -MP
CFLAGS_ALL := -std=c11 -fPIC -pthread -fvisibility=hidden $(WARN) $(CFLAGS_$(MODE)) $(CFLAGS)
LDFLAGS_ALL := -pthread $(LDFLAGS_$(MODE)) $(LDFLAGS)
LIBS_ALL := $(PKG_LIBS) $(NNG_LIBS) -lm

ifeq ($(HAVE_CUDA),1)
CPPFLAGS_ALL += -DKVF_HAVE_CUDA=1 -I$(CUDA_HOME)/include
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt
LIBS_ALL += $(CUDA_LIBS)
endif

# Filled in by the module.mk files.
CORE_SRCS :=
CLIENT_SRCS :=
GEN_HDRS :=
BINS :=
TESTS :=
GPU_TESTS :=
BENCHES :=
EXTRA_SRCS :=

# Defined before the module.mk files: their rules expand it at once.
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

include proto/module.mk
include ipc/module.mk
include xfer/module.mk
include sidecar/module.mk
include client/module.mk
include tests/module.mk


CORE_OBJS := $(call obj,$(CORE_SRCS))
CLIENT_OBJS := $(call obj,$(CLIENT_SRCS))
ALL_OBJS := $(sort $(CORE_OBJS) $(CLIENT_OBJS) $(call obj,$(EXTRA_SRCS)))

# libkvfcore.a: everything the daemon and the internal tests link.
$(BUILD)/libkvfcore.a: $(CORE_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<

all: $(BINS)
	@echo "kvferry built in $(BUILD) (MODE=$(MODE), CUDA $(if $(HAVE_CUDA),enabled from $(CUDA_HOME),not found: built without GPU support))"

check: all $(TESTS)
	@echo "  PROVE   $(words $(TESTS)) tests (MODE=$(MODE))"
	$(Q)KVF_BUILD=$(abspath $(BUILD)) KVF_SRC=$(CURDIR) \
		prove -e '' $(PROVE_FLAGS) $(TESTS)

check-gpu: all $(GPU_TESTS)
	@echo "  PROVE   $(words $(GPU_TESTS)) GPU tests (MODE=$(MODE))"
	$(Q)KVF_BUILD=$(abspath $(BUILD)) KVF_SRC=$(CURDIR) \
		prove -e '' $(PROVE_FLAGS) $(GPU_TESTS)

tests: $(TESTS) $(GPU_TESTS)

deps:
	$(Q)sh .ci/deps.sh

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	$(Q)clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

.PHONY: all check check-gpu tests deps format check-format clean

-include $(ALL_OBJS:.o=.d)
