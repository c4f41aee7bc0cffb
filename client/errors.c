/*
 * client/errors.c - the one table of error names, shared by the engine
 * library and the daemon.
 */
#include "client/kvferry.h"

static const char *const names[KVF_ERR_COUNT] = {
	[KVF_OK] = "success",
	[KVF_EINVAL] = "invalid argument",
	[KVF_ENOMEM] = "out of memory",
	[KVF_ENOENT] = "no such region, peer, engine or object",
	[KVF_ERANGE] = "offset or length outside the region",
	[KVF_ETIMEDOUT] = "timed out",
	[KVF_ECLOSED] = "connection closed (sidecar or session gone)",
	[KVF_EPROTO] = "malformed or oversized message",
	[KVF_EVERSION] = "incompatible protocol version",
	[KVF_EPEER] = "remote sidecar failed or unreachable",
	[KVF_EFABRIC] = "fabric (libfabric) error",
	[KVF_ECUDA] = "CUDA error",
	[KVF_EBUSY] = "busy or draining",
	[KVF_ECANCELED] = "cancelled",
	[KVF_EAGAIN] = "queue full, try again",
	[KVF_ESYSTEM] = "system call failed",
	[KVF_EEXIST] = "already exists",
	[KVF_EPERM] = "permission denied",
	[KVF_EIO] = "I/O error",
	[KVF_ENOSPC] = "no space left",
	[KVF_ECORRUPT] = "corrupt data (checksum or header mismatch)",
	[KVF_ENOTSUP] = "not supported",
	[KVF_ECONFIG] = "bad configuration",
};

const char *kvf_strerror(int err)
{
	if (err < 0 || err >= KVF_ERR_COUNT || !names[err])
		return "unknown error";
	return names[err];
}
