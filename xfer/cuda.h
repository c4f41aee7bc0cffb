/*
 * xfer/cuda.h - the sidecar's CUDA side: find devices by UUID, import the
 * engines' device memory (CUDA IPC) through a reference-counted cache,
 * import their events, pin host memory for staging, and copy batches of
 * pieces asynchronously (D2H, H2D, D2D, peer) with completion that can be
 * polled without blocking.
 *
 * Two objects: struct xfer_cuda (devices and the import cache,
 * xfer/cuda.c) and struct xfer_cuda_copier (streams and batches,
 * xfer/cuda_copy.c). They share nothing but device ordinals, which are the
 * sidecar's own (its CUDA_VISIBLE_DEVICES), never the engine's.
 *
 * Errors: KVF_E* codes; KVF_ENOTSUP (with a message) in a build without
 * CUDA or on a machine without a usable CUDA device. The functions that
 * take err/errlen write a one-line reason there for the engine; all of
 * them log the CUDA error once, by name, through sidecar/log.h.
 *
 * Threads:
 * - xfer_cuda_open/close and xfer_cuda_copier_open/close: one thread, when
 *   no other call on the object runs.
 * - Imports, releases, event import/close, host memory: any thread (the
 *   cache has a lock; an import holds it for the 100+ ms of the first
 *   cudaIpcOpenMemHandle of an allocation, so call them from a control
 *   thread, never from the progress loop).
 * - Copier calls: meant for one progress thread; they are also safe from
 *   several (the free lists have a lock), but a batch is polled, waited and
 *   freed by one thread at a time.
 * - Calls that act on a device make it the calling thread's current CUDA
 *   device and leave it so.
 */
#ifndef KVF_XFER_CUDA_H
#define KVF_XFER_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/cuda_ipc.h"

struct xfer_cuda;
struct xfer_cuda_import;

/*
 * Enumerate the devices. KVF_ENOTSUP when the build has no CUDA or the
 * machine no usable device or driver (the message says which). Blocks
 * while the CUDA runtime initialises (up to seconds).
 */
int xfer_cuda_open(struct xfer_cuda **out, char *err, size_t errlen);

/* Close every import still held (logged as a leak) and free. Accepts
 * NULL. */
void xfer_cuda_close(struct xfer_cuda *cu);

int xfer_cuda_device_count(const struct xfer_cuda *cu);

/* The PCI bus id of device dev ("0000:1b:00.0"), "" when unknown. */
const char *xfer_cuda_bus_id(const struct xfer_cuda *cu, int dev);

/* The ordinal of the device with this UUID; KVF_ENOENT when it is not
 * visible to the sidecar (the message names the UUID and the devices). */
int xfer_cuda_find_device(const struct xfer_cuda *cu,
                          const uint8_t uuid[IPC_CUDA_UUID_LEN], int *dev,
                          char *err, size_t errlen);

/*
 * Take a reference on the import of the allocation m describes, mapping it
 * (cudaIpcOpenMemHandle, peer access enabled lazily) on the device with
 * m->uuid if no one holds it yet. The range [m->offset, m->offset + m->len)
 * is checked against the mapping: KVF_ERANGE when it does not fit,
 * KVF_ENOENT when the device is not visible, KVF_ECUDA when the handle
 * cannot be opened (the exporter freed it, or lives in this process).
 * Each successful hold needs one xfer_cuda_import_rele.
 */
int xfer_cuda_import_hold(struct xfer_cuda *cu, const struct ipc_cuda_mem *m,
                          struct xfer_cuda_import **out, char *err,
                          size_t errlen);

/* Drop a reference; the last one unmaps the allocation
 * (cudaIpcCloseMemHandle). The caller's copies from or to it must be
 * complete. Accepts NULL. */
/*
 * The same, mapped in the context of device open_dev (the device that will
 * issue copies to or from it) rather than the memory's own; -1: its own.
 * The memory is then reached from open_dev over NVLink or PCIe P2P.
 */
int xfer_cuda_import_hold_on(struct xfer_cuda *cu,
                             const struct ipc_cuda_mem *m, int open_dev,
                             struct xfer_cuda_import **out, char *err,
                             size_t errlen);

void xfer_cuda_import_rele(struct xfer_cuda *cu, struct xfer_cuda_import *imp);

/* The allocation's base in this process (add ipc_cuda_mem.offset for the
 * region), its length and device ordinal. Valid while a reference is
 * held. */
void *xfer_cuda_import_base(const struct xfer_cuda_import *imp);
uint64_t xfer_cuda_import_len(const struct xfer_cuda_import *imp);
int xfer_cuda_import_device(const struct xfer_cuda_import *imp);

/* References on imp, and the number of distinct imports held: for tests
 * and the control server. */
uint32_t xfer_cuda_import_refs(struct xfer_cuda *cu,
                               const struct xfer_cuda_import *imp);
uint32_t xfer_cuda_import_count(struct xfer_cuda *cu);

/*
 * Import an engine's event on device dev (the device of the memory it
 * orders). *event is a cudaEvent_t to pass to xfer_cuda_copy_start as
 * wait_event; close it with xfer_cuda_event_close.
 */
int xfer_cuda_event_open(struct xfer_cuda *cu, int dev,
                         const struct ipc_cuda_event *e, void **event,
                         char *err, size_t errlen);
void xfer_cuda_event_close(void *event);

/* Pinned, portable host memory for staging (cudaHostAlloc); free with
 * xfer_cuda_host_free, which accepts NULL. */
int xfer_cuda_host_alloc(size_t len, void **out);
void xfer_cuda_host_free(void *p);

/* Pin existing host memory (e.g. shared-memory staging slots) so copies
 * to and from it run at full speed; unregister before unmapping it. */
int xfer_cuda_host_register(void *p, size_t len);
int xfer_cuda_host_unregister(void *p);

/* ---- the copy engine ---- */

enum xfer_cuda_kind {
	XFER_CUDA_D2H = 0,
	XFER_CUDA_H2D = 1,
	XFER_CUDA_D2D = 2,  /* both ends on dev */
	XFER_CUDA_PEER = 3, /* dev to another device (or the reverse) */
	XFER_CUDA_KINDS
};

struct xfer_cuda_copy {
	void *dst;
	const void *src;
	uint64_t len;
};

struct xfer_cuda_copier;
struct xfer_cuda_batch;

/* Streams are made on first use, one per device and kind (so D2H and H2D
 * overlap); nothing is allocated on the GPU here. */
int xfer_cuda_copier_open(struct xfer_cuda_copier **out, char *err,
                          size_t errlen);
/* Waits (bounded, 10 s) for every batch, then frees. Accepts NULL. Every
 * batch must have been freed first. */
void xfer_cuda_copier_close(struct xfer_cuda_copier *cp);

/* Use cudaMemcpyBatchAsync for batches of several pieces (default on when
 * the runtime has it; turned off for good if the driver refuses it). */
void xfer_cuda_copier_use_batch_api(struct xfer_cuda_copier *cp, bool on);

/*
 * Issue n copies of one kind on dev's stream for that kind, after the
 * stream waits for wait_event (a cudaEvent_t, or NULL). Pieces whose source
 * and destination both continue the previous piece are merged first.
 * Returns at once; *out is the batch to poll. Host memory in D2H/H2D should
 * be pinned (xfer_cuda_host_alloc/register) or the copies run synchronously.
 * KVF_EINVAL for n == 0, a bad device or kind; KVF_ECUDA when issuing
 * failed (no copy of the batch may have run, or some may: treat the
 * destination as undefined).
 */
int xfer_cuda_copy_start(struct xfer_cuda_copier *cp, int dev,
                         enum xfer_cuda_kind kind,
                         const struct xfer_cuda_copy *v, uint32_t n,
                         void *wait_event, struct xfer_cuda_batch **out);

/* 0 when every copy of the batch is done, KVF_EAGAIN while it runs,
 * KVF_ECUDA when it failed. Never blocks. */
int xfer_cuda_batch_test(struct xfer_cuda_batch *b);

/* As xfer_cuda_batch_test, but waits up to timeout_ms (sleeping, not
 * spinning, after a short spin): KVF_ETIMEDOUT when it has not finished. */
int xfer_cuda_batch_wait(struct xfer_cuda_batch *b, int timeout_ms);

/* The number of copies issued after merging, and the bytes. */
uint32_t xfer_cuda_batch_pieces(const struct xfer_cuda_batch *b);
uint64_t xfer_cuda_batch_bytes(const struct xfer_cuda_batch *b);

/* Give the batch back. One still running keeps running (its memory must
 * stay valid until then). Accepts NULL. */
void xfer_cuda_batch_free(struct xfer_cuda_copier *cp,
                          struct xfer_cuda_batch *b);

#endif
