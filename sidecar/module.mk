# sidecar/: the kvferryd daemon.
CORE_SRCS += $(filter-out sidecar/main.c,$(wildcard sidecar/*.c))
BINS += $(BUILD)/bin/kvferryd

$(BUILD)/bin/kvferryd: $(call obj,sidecar/main.c) $(BUILD)/libkvfcore.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)
EXTRA_SRCS += sidecar/main.c
