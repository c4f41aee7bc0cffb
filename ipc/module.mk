# ipc/: engine <-> sidecar transport; linked by both the daemon and libkvferry.
IPC_SRCS := $(wildcard ipc/*.c)
CORE_SRCS += $(IPC_SRCS)
CLIENT_SRCS += $(IPC_SRCS)
