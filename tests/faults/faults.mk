# tests/faults/: failure-injection tests (real processes) and the soak.
# They use the public library, like tests/e2e.
#
#   make soak                          the soak with SOAK_TRANSFERS
#                                      (default 1000000) transfers
PUBLIC_AREAS += faults
SOAK_TRANSFERS ?= 1000000

soak: all $(BUILD)/tests/faults/soak
	$(Q)KVF_BUILD=$(abspath $(BUILD)) KVF_SRC=$(CURDIR) \
		SOAK_TRANSFERS=$(SOAK_TRANSFERS) SOAK_SECONDS=$(or $(SOAK_SECONDS),0) \
		prove -v -e '' $(BUILD)/tests/faults/soak

.PHONY: soak
