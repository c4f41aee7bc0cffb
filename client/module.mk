# client/: libkvferry (the engine library) and kvferryctl (the operator CLI).
CLIENT_LIB_SRCS := $(filter-out client/kvferryctl%.c,$(wildcard client/*.c))
CLIENT_SRCS += $(CLIENT_LIB_SRCS)
# kvf_strerror is shared with the daemon.
CORE_SRCS += client/errors.c
CTL_SRCS := $(wildcard client/kvferryctl*.c)
BINS += $(BUILD)/bin/kvferryctl $(BUILD)/libkvferry.so $(BUILD)/libkvferry.a \
	$(BUILD)/include/kvferry.h

$(BUILD)/libkvferry.so.0: $(call obj,$(CLIENT_SRCS)) client/libkvferry.map
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) -shared $(LDFLAGS_ALL) -Wl,--version-script=client/libkvferry.map \
		-Wl,-soname,libkvferry.so.0 -o $@ $(call obj,$(CLIENT_SRCS)) $(LIBS_ALL)

$(BUILD)/libkvferry.so: $(BUILD)/libkvferry.so.0
	$(Q)ln -sf libkvferry.so.0 $@

$(BUILD)/libkvferry.a: $(call obj,$(CLIENT_SRCS))
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/include/kvferry.h: client/kvferry.h
	@mkdir -p $(@D)
	$(Q)cp $< $@

$(BUILD)/bin/kvferryctl: $(call obj,$(CTL_SRCS)) $(BUILD)/libkvfcore.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)
EXTRA_SRCS += $(CTL_SRCS)
