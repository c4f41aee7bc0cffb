/*
 * ipc/cuda_ipc.h - the engine side of CUDA IPC: describe a range of device
 * memory (and a CUDA event) so that another process, the sidecar, can map
 * it with cudaIpcOpenMemHandle (see xfer/cuda.h for the other side).
 *
 * The engine library links this, so nothing here logs: every function
 * returns 0 or a KVF_E* code and, on failure, writes one line saying what
 * was wrong into the caller's err buffer (errlen 0: no message).
 *
 * Threads: any thread. The calling thread's current CUDA device is left as
 * it was. Nothing here keeps state; the CUDA runtime is initialised on the
 * first call (driver functions are looked up through the runtime, so the
 * program starts, and these calls fail cleanly, without a GPU driver).
 */
#ifndef KVF_IPC_CUDA_IPC_H
#define KVF_IPC_CUDA_IPC_H

#include <stddef.h>
#include <stdint.h>

#define IPC_CUDA_HANDLE_LEN 64 /* sizeof(cudaIpcMemHandle_t) */
#define IPC_CUDA_UUID_LEN 16
#define IPC_CUDA_BUS_ID_LEN 32

/*
 * One exported range of device memory. The handle names the whole
 * allocation (one cudaMalloc, which a caching allocator carves into many
 * tensors); the range is [offset, offset + len) inside it. The device is
 * named by UUID because ordinals depend on CUDA_VISIBLE_DEVICES, which may
 * differ between the engine and the sidecar; bus_id is for messages.
 * Plain data: copy it field by field into the wire message.
 */
struct ipc_cuda_mem {
	uint8_t handle[IPC_CUDA_HANDLE_LEN];
	uint64_t alloc_len; /* bytes of the whole allocation */
	uint64_t offset;    /* of the range, from the allocation's base */
	uint64_t len;       /* of the range */
	uint8_t uuid[IPC_CUDA_UUID_LEN];
	char bus_id[IPC_CUDA_BUS_ID_LEN]; /* "0000:19:00.0", NUL-terminated */
	int device; /* the exporter's ordinal: for messages only */
};

/* An exported CUDA event (cudaIpcEventHandle_t). */
struct ipc_cuda_event {
	uint8_t handle[IPC_CUDA_HANDLE_LEN];
};

/*
 * Export len bytes of device memory at dptr, which may lie anywhere inside
 * a cudaMalloc allocation. Returns
 *  KVF_EINVAL   dptr is NULL, len is 0, or dptr is host memory or no CUDA
 *               memory at all;
 *  KVF_ERANGE   the range runs past the end of its allocation;
 *  KVF_ENOTSUP  a build without CUDA, no usable CUDA driver or device, or
 *               memory that legacy CUDA IPC cannot share: memory mapped
 *               with the VMM API (cuMemCreate/cuMemMap, which PyTorch's
 *               expandable_segments uses), stream-ordered pool memory
 *               (cudaMallocAsync), managed memory; the message says what
 *               to change;
 *  KVF_ECUDA    another CUDA failure.
 * *out is written only on success. Does not block on the GPU.
 */
int ipc_cuda_export_mem(const void *dptr, size_t len, struct ipc_cuda_mem *out,
                        char *err, size_t errlen);

/*
 * Export a CUDA event so the sidecar can wait for the engine's work before
 * it reads the memory. The event must have been created with
 * cudaEventCreateWithFlags(cudaEventInterprocess | cudaEventDisableTiming),
 * on the device of the memory it orders; KVF_EINVAL otherwise (the message
 * says so). event is a cudaEvent_t. KVF_ENOTSUP without CUDA.
 */
int ipc_cuda_export_event(void *event, struct ipc_cuda_event *out, char *err,
                          size_t errlen);

#endif
