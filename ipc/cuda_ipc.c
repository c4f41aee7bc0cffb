/*
 * ipc/cuda_ipc.c - export device memory and events for CUDA IPC.
 *
 * A caching allocator (PyTorch's, vLLM's block pool) makes one large
 * cudaMalloc and hands out tensors at offsets inside it, and
 * cudaIpcGetMemHandle only accepts an allocation's base. So the pointer is
 * resolved to its allocation with cuMemGetAddressRange and the handle of
 * the base travels with the offset; the sidecar maps the whole allocation
 * once and adds the offset.
 *
 * Memory that legacy IPC cannot share is refused before asking for a
 * handle, with a message that names the cause: VMM mappings (a
 * cuMemRetainAllocationHandle succeeds on them), stream-ordered pool memory
 * (it has a mempool handle), managed memory. Handing out a handle for such
 * memory would otherwise fail late, in the sidecar, or map the wrong pages.
 *
 * Only the CUDA runtime is linked (statically); the few driver functions
 * come through cudaGetDriverEntryPointByVersion so that nothing needs
 * libcuda.so at load time. This file is part of the engine library: it
 * reports through return codes and the caller's message buffer, never logs.
 */
#include "ipc/cuda_ipc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/kvferry.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

#ifndef KVF_HAVE_CUDA

int ipc_cuda_export_mem(const void *dptr, size_t len, struct ipc_cuda_mem *out,
                        char *err, size_t errlen)
{
	(void)len;
	(void)out;
	return fail(err, errlen, KVF_ENOTSUP,
	            "export CUDA memory %p: this build of kvferry has no "
	            "CUDA support (rebuild with the CUDA toolkit in "
	            "CUDA_HOME)",
	            dptr);
}

int ipc_cuda_export_event(void *event, struct ipc_cuda_event *out, char *err,
                          size_t errlen)
{
	(void)out;
	return fail(err, errlen, KVF_ENOTSUP,
	            "export CUDA event %p: this build of kvferry has no CUDA "
	            "support (rebuild with the CUDA toolkit in CUDA_HOME)",
	            event);
}

#else

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <pthread.h>

/* Driver entry points are asked for at this API version: every function
 * used here exists in it, and CUDA 13's runtime needs a newer driver. */
#define DRIVER_API_VERSION 12000

static struct {
	PFN_cuMemGetAddressRange_v3020 get_range;
	PFN_cuMemRetainAllocationHandle_v11000 retain;
	PFN_cuMemRelease_v10020 release;
	PFN_cuPointerGetAttribute_v4000 get_attr;
	cudaError_t rc; /* of the first lookup that failed */
	const char *missing;
} drv;
static pthread_once_t drv_once = PTHREAD_ONCE_INIT;

static void *lookup(const char *name)
{
	enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSuccess;
	void *fn = NULL;
	cudaError_t rc;

	rc = cudaGetDriverEntryPointByVersion(name, &fn, DRIVER_API_VERSION,
	                                      cudaEnableDefault, &q);
	if (rc != cudaSuccess || q != cudaDriverEntryPointSuccess || !fn) {
		if (!drv.missing) {
			drv.missing = name;
			drv.rc = rc;
		}
		(void)cudaGetLastError();
		return NULL;
	}
	return fn;
}

static void drv_init(void)
{
	drv.get_range = (PFN_cuMemGetAddressRange_v3020)lookup(
		"cuMemGetAddressRange");
	drv.retain = (PFN_cuMemRetainAllocationHandle_v11000)lookup(
		"cuMemRetainAllocationHandle");
	drv.release = (PFN_cuMemRelease_v10020)lookup("cuMemRelease");
	drv.get_attr = (PFN_cuPointerGetAttribute_v4000)lookup(
		"cuPointerGetAttribute");
}

/* The runtime's failures that mean "no GPU here" rather than a fault. */
static int no_device(cudaError_t rc)
{
	return rc == cudaErrorNoDevice || rc == cudaErrorInsufficientDriver ||
	       rc == cudaErrorInitializationError ||
	       rc == cudaErrorSystemDriverMismatch ||
	       rc == cudaErrorCompatNotSupportedOnDevice ||
	       rc == cudaErrorDevicesUnavailable ||
	       rc == cudaErrorStubLibrary;
}

static int cuda_fail(char *err, size_t errlen, int code, const char *what,
                     const void *p, const char *callee, cudaError_t rc)
{
	/* Our runtime copy records the error as "last error"; clear it so a
	 * later unrelated call does not report it again. */
	(void)cudaGetLastError();
	return fail(err, errlen, code, "%s %p: %s() failed: %s (%s)", what, p,
	            callee, cudaGetErrorString(rc), cudaGetErrorName(rc));
}

static int drv_fail(char *err, size_t errlen, int code, const char *what,
                    const void *p, const char *callee, CUresult rc)
{
	return fail(err, errlen, code, "%s %p: %s() failed: driver error %d",
	            what, p, callee, (int)rc);
}

/* Why legacy IPC cannot share the memory at p; fills the message. */
static int refuse_unshareable(const void *p, int dev, char *err,
                              size_t errlen)
{
	CUmemGenericAllocationHandle h;
	void *pool = NULL;

	if (drv.retain(&h, (void *)p) == CUDA_SUCCESS) {
		drv.release(h);
		return fail(err, errlen, KVF_ENOTSUP,
		            "export CUDA memory %p (device %d): it was mapped "
		            "with the CUDA VMM API (cuMemCreate/cuMemMap, as "
		            "PyTorch's expandable_segments does), which "
		            "cudaIpcGetMemHandle cannot share; allocate the KV "
		            "cache with cudaMalloc (for PyTorch set "
		            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:False)",
		            p, dev);
	}
	if (drv.get_attr(&pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE,
	                 (CUdeviceptr)(uintptr_t)p) == CUDA_SUCCESS &&
	    pool)
		return fail(err, errlen, KVF_ENOTSUP,
		            "export CUDA memory %p (device %d): it comes from a "
		            "stream-ordered memory pool (cudaMallocAsync), "
		            "which cudaIpcGetMemHandle cannot share; allocate "
		            "the KV cache with cudaMalloc",
		            p, dev);
	return fail(err, errlen, KVF_ENOTSUP,
	            "export CUDA memory %p (device %d): the driver says it "
	            "cannot be shared with cudaIpcGetMemHandle; allocate the "
	            "KV cache with cudaMalloc",
	            p, dev);
}

static int export_on_device(const void *dptr, size_t len, int dev,
                            struct ipc_cuda_mem *out, char *err,
                            size_t errlen)
{
	static const char what[] = "export CUDA memory";
	struct cudaDeviceProp prop;
	cudaIpcMemHandle_t h;
	CUdeviceptr base = 0;
	size_t size = 0;
	int capable = 0;
	uint64_t off;
	cudaError_t rc;
	CUresult cr;

	cr = drv.get_attr(&capable,
	                  CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE,
	                  (CUdeviceptr)(uintptr_t)dptr);
	if (cr != CUDA_SUCCESS)
		return drv_fail(err, errlen, KVF_ECUDA, what, dptr,
		                "cuPointerGetAttribute", cr);
	if (!capable)
		return refuse_unshareable(dptr, dev, err, errlen);

	cr = drv.get_range(&base, &size, (CUdeviceptr)(uintptr_t)dptr);
	if (cr != CUDA_SUCCESS)
		return drv_fail(err, errlen, KVF_EINVAL, what, dptr,
		                "cuMemGetAddressRange", cr);
	off = (uint64_t)(uintptr_t)dptr - (uint64_t)base;
	if (len > size - off)
		return fail(err, errlen, KVF_ERANGE,
		            "%s %p: %zu bytes from offset %llu run past the "
		            "end of its allocation (base 0x%llx, %zu bytes)",
		            what, dptr, len, (unsigned long long)off,
		            (unsigned long long)base, size);

	rc = cudaIpcGetMemHandle(&h, (void *)(uintptr_t)base);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen, KVF_ECUDA, what, dptr,
		                 "cudaIpcGetMemHandle", rc);
	rc = cudaGetDeviceProperties(&prop, dev);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen, KVF_ECUDA, what, dptr,
		                 "cudaGetDeviceProperties", rc);
	_Static_assert(sizeof(h) == IPC_CUDA_HANDLE_LEN, "IPC handle size");
	_Static_assert(sizeof(prop.uuid) == IPC_CUDA_UUID_LEN, "UUID size");
	memcpy(out->handle, &h, sizeof(h));
	memcpy(out->uuid, &prop.uuid, sizeof(prop.uuid));
	rc = cudaDeviceGetPCIBusId(out->bus_id, sizeof(out->bus_id), dev);
	if (rc != cudaSuccess) {
		(void)cudaGetLastError();
		snprintf(out->bus_id, sizeof(out->bus_id), "unknown");
	}
	out->alloc_len = size;
	out->offset = off;
	out->len = len;
	out->device = dev;
	return 0;
}

int ipc_cuda_export_mem(const void *dptr, size_t len, struct ipc_cuda_mem *out,
                        char *err, size_t errlen)
{
	static const char what[] = "export CUDA memory";
	struct cudaPointerAttributes a;
	struct ipc_cuda_mem m;
	int prev = -1;
	cudaError_t rc;
	int ret;

	if (!dptr || !len || !out)
		return fail(err, errlen, KVF_EINVAL,
		            "%s %p: %s", what, dptr,
		            !dptr ? "the pointer is NULL"
		            : !len ? "the length is 0"
		                   : "no output given");
	rc = cudaPointerGetAttributes(&a, dptr);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen,
		                 no_device(rc) ? KVF_ENOTSUP : KVF_EINVAL, what,
		                 dptr, "cudaPointerGetAttributes", rc);
	switch (a.type) {
	case cudaMemoryTypeDevice:
		break;
	case cudaMemoryTypeManaged:
		return fail(err, errlen, KVF_ENOTSUP,
		            "%s %p: it is managed memory (cudaMallocManaged), "
		            "which CUDA IPC cannot share; allocate the KV cache "
		            "with cudaMalloc",
		            what, dptr);
	case cudaMemoryTypeHost:
		return fail(err, errlen, KVF_EINVAL,
		            "%s %p: it is pinned host memory, not device "
		            "memory; host KV cache goes through kvf_alloc_host",
		            what, dptr);
	default:
		return fail(err, errlen, KVF_EINVAL,
		            "%s %p: CUDA does not know this pointer (host "
		            "memory, freed or never allocated)",
		            what, dptr);
	}

	pthread_once(&drv_once, drv_init);
	if (drv.missing)
		return fail(err, errlen, KVF_ENOTSUP,
		            "%s %p: cudaGetDriverEntryPointByVersion(%s) "
		            "failed: %s (the driver is older than CUDA 12?)",
		            what, dptr, drv.missing,
		            cudaGetErrorName(drv.rc));

	/* The IPC calls act on the current device; put back the caller's. */
	rc = cudaGetDevice(&prev);
	if (rc == cudaSuccess && prev != a.device)
		rc = cudaSetDevice(a.device);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen, KVF_ECUDA, what, dptr,
		                 "cudaSetDevice", rc);
	ret = export_on_device(dptr, len, a.device, &m, err, errlen);
	if (prev != a.device)
		(void)cudaSetDevice(prev);
	if (ret == 0)
		*out = m;
	return ret;
}

int ipc_cuda_export_event(void *event, struct ipc_cuda_event *out, char *err,
                          size_t errlen)
{
	cudaIpcEventHandle_t h;
	cudaError_t rc;

	if (!event || !out)
		return fail(err, errlen, KVF_EINVAL,
		            "export CUDA event %p: %s", event,
		            !event ? "the event is NULL" : "no output given");
	rc = cudaIpcGetEventHandle(&h, (cudaEvent_t)event);
	if (rc == cudaErrorInvalidResourceHandle ||
	    rc == cudaErrorInvalidValue) {
		(void)cudaGetLastError();
		return fail(err, errlen, KVF_EINVAL,
		            "export CUDA event %p: cudaIpcGetEventHandle() "
		            "failed: %s (%s): create the event with "
		            "cudaEventCreateWithFlags(cudaEventInterprocess | "
		            "cudaEventDisableTiming)",
		            event, cudaGetErrorString(rc), cudaGetErrorName(rc));
	}
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen,
		                 no_device(rc) ? KVF_ENOTSUP : KVF_ECUDA,
		                 "export CUDA event", event,
		                 "cudaIpcGetEventHandle", rc);
	_Static_assert(sizeof(h) == IPC_CUDA_HANDLE_LEN, "event handle size");
	memcpy(out->handle, &h, sizeof(h));
	return 0;
}

#endif
