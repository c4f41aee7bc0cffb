# xfer/: libfabric, CUDA copies and liburing; linked by the daemon only.
CORE_SRCS += $(wildcard xfer/*.c)
