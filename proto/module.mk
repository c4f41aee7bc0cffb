# proto/: protobuf-c schemas; code is generated at build time, never committed.
PROTOS := $(wildcard proto/*.proto)
PROTO_GEN_C := $(patsubst proto/%.proto,$(BUILD)/gen/proto/%.pb-c.c,$(PROTOS))
PROTO_GEN_H := $(PROTO_GEN_C:.c=.h)
GEN_HDRS += $(PROTO_GEN_H)
CORE_SRCS += $(PROTO_GEN_C)
CLIENT_SRCS += $(BUILD)/gen/proto/engine.pb-c.c $(BUILD)/gen/proto/common.pb-c.c

$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --c_out=$(BUILD)/gen $<
