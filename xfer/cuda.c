/*
 * xfer/cuda.c - devices by UUID, the CUDA IPC import cache, event import and
 * pinned host memory for the sidecar.
 *
 * Opening an IPC handle costs 100+ ms the first time and a process may map
 * an allocation only once, yet several regions of one engine pool share one
 * allocation and several engine sessions may register the same one. So the
 * imports live in a cache keyed by the 64 handle bytes, each with a
 * reference count: the first hold maps, the last release unmaps. The cache
 * is a short list under one lock; engines register a handful of pools, so
 * a lookup is a few memcmps and never on the data path.
 *
 * Devices are found by UUID because ordinals depend on each process's
 * CUDA_VISIBLE_DEVICES. The mapped size is read back with
 * cuMemGetAddressRange (through the runtime's driver entry points, so
 * nothing links libcuda.so) and every range is checked against it rather
 * than trusting the engine's figure.
 */
#include "xfer/cuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "sidecar/log.h"

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

#define NO_CUDA "this build of kvferry has no CUDA support (rebuild with " \
	"the CUDA toolkit in CUDA_HOME)"

int xfer_cuda_open(struct xfer_cuda **out, char *err, size_t errlen)
{
	(void)out;
	return fail(err, errlen, KVF_ENOTSUP, "open CUDA: %s", NO_CUDA);
}

void xfer_cuda_close(struct xfer_cuda *cu)
{
	(void)cu;
}

int xfer_cuda_device_count(const struct xfer_cuda *cu)
{
	(void)cu;
	return 0;
}

const char *xfer_cuda_bus_id(const struct xfer_cuda *cu, int dev)
{
	(void)cu;
	(void)dev;
	return "";
}

int xfer_cuda_find_device(const struct xfer_cuda *cu,
                          const uint8_t uuid[IPC_CUDA_UUID_LEN], int *dev,
                          char *err, size_t errlen)
{
	(void)cu;
	(void)uuid;
	(void)dev;
	return fail(err, errlen, KVF_ENOTSUP, "find CUDA device: %s",
	            NO_CUDA);
}

int xfer_cuda_import_hold_on(struct xfer_cuda *cu,
                             const struct ipc_cuda_mem *m, int open_dev,
                             struct xfer_cuda_import **out, char *err,
                             size_t errlen)
{
	(void)cu;
	(void)m;
	(void)open_dev;
	(void)out;
	return fail(err, errlen, KVF_ENOTSUP, "import CUDA memory: %s",
	            NO_CUDA);
}

void xfer_cuda_import_rele(struct xfer_cuda *cu, struct xfer_cuda_import *imp)
{
	(void)cu;
	(void)imp;
}

void *xfer_cuda_import_base(const struct xfer_cuda_import *imp)
{
	(void)imp;
	return NULL;
}

uint64_t xfer_cuda_import_len(const struct xfer_cuda_import *imp)
{
	(void)imp;
	return 0;
}

int xfer_cuda_import_device(const struct xfer_cuda_import *imp)
{
	(void)imp;
	return -1;
}

uint32_t xfer_cuda_import_refs(struct xfer_cuda *cu,
                               const struct xfer_cuda_import *imp)
{
	(void)cu;
	(void)imp;
	return 0;
}

uint32_t xfer_cuda_import_count(struct xfer_cuda *cu)
{
	(void)cu;
	return 0;
}

int xfer_cuda_event_open(struct xfer_cuda *cu, int dev,
                         const struct ipc_cuda_event *e, void **event,
                         char *err, size_t errlen)
{
	(void)cu;
	(void)dev;
	(void)e;
	(void)event;
	return fail(err, errlen, KVF_ENOTSUP, "import CUDA event: %s",
	            NO_CUDA);
}

void xfer_cuda_event_close(void *event)
{
	(void)event;
}

int xfer_cuda_host_alloc(size_t len, void **out)
{
	(void)len;
	(void)out;
	sc_error("pinned host memory: %s", NO_CUDA);
	return KVF_ENOTSUP;
}

void xfer_cuda_host_free(void *p)
{
	(void)p;
}

int xfer_cuda_host_register(void *p, size_t len)
{
	(void)p;
	(void)len;
	sc_error("register host memory with CUDA: %s", NO_CUDA);
	return KVF_ENOTSUP;
}

int xfer_cuda_host_unregister(void *p)
{
	(void)p;
	return KVF_ENOTSUP;
}

#else

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <pthread.h>

#define DRIVER_API_VERSION 12000

struct xfer_cuda_import {
	struct xfer_cuda_import *next;
	uint8_t handle[IPC_CUDA_HANDLE_LEN];
	void *base;
	uint64_t len;
	int dev;
	uint32_t refs;
};

struct cuda_dev {
	uint8_t uuid[IPC_CUDA_UUID_LEN];
	char bus_id[IPC_CUDA_BUS_ID_LEN];
};

struct xfer_cuda {
	int ndev;
	struct cuda_dev *devs;
	PFN_cuMemGetAddressRange_v3020 get_range;
	pthread_mutex_t lock; /* guards imports and every refs */
	struct xfer_cuda_import *imports;
	uint32_t nimports;
};

static void uuid_str(const uint8_t *u, char *buf, size_t len)
{
	snprintf(buf, len,
	         "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	         "%02x%02x%02x%02x%02x%02x",
	         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
	         u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Log a CUDA failure once, by name, and put the reason in err. */
static int cuda_fail(char *err, size_t errlen, int code, const char *what,
                     const char *callee, cudaError_t rc)
{
	(void)cudaGetLastError();
	sc_error("%s: %s() failed: %s (%s)", what, callee,
	         cudaGetErrorString(rc), cudaGetErrorName(rc));
	return fail(err, errlen, code, "%s: %s() failed: %s (%s)", what,
	            callee, cudaGetErrorString(rc), cudaGetErrorName(rc));
}

/*
 * Let every device reach every other directly (NVLink or PCIe P2P) before
 * anything is imported: a copy between two GPUs of the host otherwise goes
 * through host memory, at a tenth of the speed. IPC imports use
 * cudaIpcMemLazyEnablePeerAccess, so they are mapped for peers too.
 */
static void enable_peer_access(int n)
{
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			int can = 0;
			cudaError_t rc;
			if (i == j || cudaDeviceCanAccessPeer(&can, i, j) !=
			                      cudaSuccess || !can)
				continue;
			cudaSetDevice(i);
			rc = cudaDeviceEnablePeerAccess(j, 0);
			if (rc != cudaSuccess &&
			    rc != cudaErrorPeerAccessAlreadyEnabled)
				sc_warn("CUDA: peer access %d -> %d: %s", i, j,
				        cudaGetErrorName(rc));
			(void)cudaGetLastError();
		}
	}
	if (n > 0)
		cudaSetDevice(0);
}

int xfer_cuda_open(struct xfer_cuda **out, char *err, size_t errlen)
{
	enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSuccess;
	struct cudaDeviceProp prop;
	struct xfer_cuda *cu;
	void *fn = NULL;
	cudaError_t rc;
	int n = 0;

	rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess || n <= 0) {
		(void)cudaGetLastError();
		return fail(err, errlen, KVF_ENOTSUP,
		            "open CUDA: no usable CUDA device: %s",
		            rc != cudaSuccess ? cudaGetErrorString(rc)
		                              : "cudaGetDeviceCount() says 0");
	}
	rc = cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn,
	                                      DRIVER_API_VERSION,
	                                      cudaEnableDefault, &q);
	if (rc != cudaSuccess || q != cudaDriverEntryPointSuccess || !fn)
		return cuda_fail(err, errlen, KVF_ENOTSUP,
		                 "open CUDA: look up cuMemGetAddressRange",
		                 "cudaGetDriverEntryPointByVersion",
		                 rc != cudaSuccess ? rc : cudaErrorNotSupported);

	cu = calloc(1, sizeof(*cu));
	if (cu)
		cu->devs = calloc((size_t)n, sizeof(*cu->devs));
	if (!cu || !cu->devs) {
		free(cu);
		return fail(err, errlen, KVF_ENOMEM, "open CUDA: out of memory");
	}
	cu->ndev = n;
	cu->get_range = (PFN_cuMemGetAddressRange_v3020)fn;
	for (int d = 0; d < n; d++) {
		rc = cudaGetDeviceProperties(&prop, d);
		if (rc != cudaSuccess) {
			free(cu->devs);
			free(cu);
			return cuda_fail(err, errlen, KVF_ECUDA,
			                 "open CUDA: read device properties",
			                 "cudaGetDeviceProperties", rc);
		}
		memcpy(cu->devs[d].uuid, &prop.uuid, IPC_CUDA_UUID_LEN);
		if (cudaDeviceGetPCIBusId(cu->devs[d].bus_id,
		                          sizeof(cu->devs[d].bus_id),
		                          d) != cudaSuccess) {
			(void)cudaGetLastError();
			snprintf(cu->devs[d].bus_id,
			         sizeof(cu->devs[d].bus_id), "unknown");
		}
	}
	enable_peer_access(n);
	pthread_mutex_init(&cu->lock, NULL);
	*out = cu;
	return 0;
}

void xfer_cuda_close(struct xfer_cuda *cu)
{
	struct xfer_cuda_import *imp, *next;

	if (!cu)
		return;
	for (imp = cu->imports; imp; imp = next) {
		next = imp->next;
		sc_warn("close CUDA: import %p (device %d, %llu bytes) still "
		        "held %u times; unmapping it",
		        imp->base, imp->dev, (unsigned long long)imp->len,
		        imp->refs);
		if (cudaSetDevice(imp->dev) != cudaSuccess ||
		    cudaIpcCloseMemHandle(imp->base) != cudaSuccess)
			(void)cudaGetLastError();
		free(imp);
	}
	pthread_mutex_destroy(&cu->lock);
	free(cu->devs);
	free(cu);
}

int xfer_cuda_device_count(const struct xfer_cuda *cu)
{
	return cu ? cu->ndev : 0;
}

const char *xfer_cuda_bus_id(const struct xfer_cuda *cu, int dev)
{
	if (!cu || dev < 0 || dev >= cu->ndev ||
	    strcmp(cu->devs[dev].bus_id, "unknown") == 0)
		return "";
	return cu->devs[dev].bus_id;
}

int xfer_cuda_find_device(const struct xfer_cuda *cu,
                          const uint8_t uuid[IPC_CUDA_UUID_LEN], int *dev,
                          char *err, size_t errlen)
{
	char want[48], seen[256] = "", one[48];
	size_t used = 0;

	for (int d = 0; d < cu->ndev; d++) {
		if (memcmp(cu->devs[d].uuid, uuid, IPC_CUDA_UUID_LEN) == 0) {
			*dev = d;
			return 0;
		}
	}
	for (int d = 0; d < cu->ndev && used < sizeof(seen); d++) {
		uuid_str(cu->devs[d].uuid, one, sizeof(one));
		used += (size_t)snprintf(seen + used, sizeof(seen) - used,
		                         "%s%s (%s)", d ? ", " : "", one,
		                         cu->devs[d].bus_id);
	}
	uuid_str(uuid, want, sizeof(want));
	return fail(err, errlen, KVF_ENOENT,
	            "find CUDA device %s: the sidecar does not see it (check "
	            "its CUDA_VISIBLE_DEVICES); it sees %s",
	            want, seen);
}

/* The import of handle mapped in dev's context; dev < 0: any. */
static struct xfer_cuda_import *cache_find(struct xfer_cuda *cu,
                                           const uint8_t *handle, int dev)
{
	struct xfer_cuda_import *imp;

	for (imp = cu->imports; imp; imp = imp->next)
		if (memcmp(imp->handle, handle, IPC_CUDA_HANDLE_LEN) == 0 &&
		    (dev < 0 || imp->dev == dev))
			return imp;
	return NULL;
}

static int check_range(const struct xfer_cuda_import *imp,
                       const struct ipc_cuda_mem *m, char *err,
                       size_t errlen)
{
	if (m->offset > imp->len || m->len > imp->len - m->offset)
		return fail(err, errlen, KVF_ERANGE,
		            "import CUDA memory on device %s: range [%llu, "
		            "+%llu) does not fit the %llu-byte allocation",
		            m->bus_id, (unsigned long long)m->offset,
		            (unsigned long long)m->len,
		            (unsigned long long)imp->len);
	return 0;
}

/* Map a handle nobody holds yet. Called with the lock held. */
static int import_open(struct xfer_cuda *cu, const struct ipc_cuda_mem *m,
                       int dev, struct xfer_cuda_import **out, char *err,
                       size_t errlen)
{
	struct xfer_cuda_import *imp;
	cudaIpcMemHandle_t h;
	CUdeviceptr base = 0;
	size_t size = 0;
	void *p = NULL;
	cudaError_t rc;
	CUresult cr;
	char what[96];

	snprintf(what, sizeof(what), "import CUDA memory on device %d (%s)",
	         dev, m->bus_id);
	rc = cudaSetDevice(dev);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen, KVF_ECUDA, what, "cudaSetDevice",
		                 rc);
	memcpy(&h, m->handle, sizeof(h));
	rc = cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen, KVF_ECUDA, what,
		                 "cudaIpcOpenMemHandle", rc);
	cr = cu->get_range(&base, &size, (CUdeviceptr)(uintptr_t)p);
	if (cr != CUDA_SUCCESS) {
		sc_error("%s: cuMemGetAddressRange() failed: driver error %d",
		         what, (int)cr);
		(void)cudaIpcCloseMemHandle(p);
		return fail(err, errlen, KVF_ECUDA,
		            "%s: cuMemGetAddressRange() failed: driver error "
		            "%d",
		            what, (int)cr);
	}
	if (m->alloc_len && m->alloc_len != size)
		sc_warn("%s: the engine says %llu bytes, the mapping has %zu; "
		        "using the mapping's",
		        what, (unsigned long long)m->alloc_len, size);
	imp = calloc(1, sizeof(*imp));
	if (!imp) {
		(void)cudaIpcCloseMemHandle(p);
		return fail(err, errlen, KVF_ENOMEM, "%s: out of memory",
		            what);
	}
	memcpy(imp->handle, m->handle, IPC_CUDA_HANDLE_LEN);
	imp->base = p;
	imp->len = size;
	imp->dev = dev;
	*out = imp;
	return 0;
}

int xfer_cuda_import_hold_on(struct xfer_cuda *cu,
                             const struct ipc_cuda_mem *m, int open_dev,
                             struct xfer_cuda_import **out, char *err,
                             size_t errlen)
{
	struct xfer_cuda_import *imp;
	int dev, ret;

	ret = xfer_cuda_find_device(cu, m->uuid, &dev, err, errlen);
	if (ret)
		return ret;
	/* Mapped in another device's context, the memory is reached from
	 * that device over NVLink/P2P (cudaIpcMemLazyEnablePeerAccess)
	 * instead of through host memory. */
	if (open_dev >= 0 && open_dev < cu->ndev)
		dev = open_dev;
	/* The lock stays held across the slow first open so that two
	 * sessions registering the same pool map it once, not twice. */
	pthread_mutex_lock(&cu->lock);
	imp = cache_find(cu, m->handle, open_dev >= 0 ? dev : -1);
	if (imp && imp->dev != dev && open_dev < 0)
		dev = imp->dev; /* already mapped elsewhere: share it */
	if (!imp) {
		ret = import_open(cu, m, dev, &imp, err, errlen);
		if (ret) {
			pthread_mutex_unlock(&cu->lock);
			return ret;
		}
		ret = check_range(imp, m, err, errlen);
		if (ret) {
			(void)cudaIpcCloseMemHandle(imp->base);
			free(imp);
			pthread_mutex_unlock(&cu->lock);
			return ret;
		}
		imp->next = cu->imports;
		cu->imports = imp;
		cu->nimports++;
		sc_debug("imported CUDA allocation %p (%llu bytes) on device "
		         "%d",
		         imp->base, (unsigned long long)imp->len, dev);
	} else {
		ret = check_range(imp, m, err, errlen);
		if (ret) {
			pthread_mutex_unlock(&cu->lock);
			return ret;
		}
	}
	imp->refs++;
	pthread_mutex_unlock(&cu->lock);
	*out = imp;
	return 0;
}

void xfer_cuda_import_rele(struct xfer_cuda *cu, struct xfer_cuda_import *imp)
{
	struct xfer_cuda_import **pp;
	cudaError_t rc;

	if (!imp)
		return;
	pthread_mutex_lock(&cu->lock);
	if (--imp->refs > 0) {
		pthread_mutex_unlock(&cu->lock);
		return;
	}
	for (pp = &cu->imports; *pp && *pp != imp; pp = &(*pp)->next)
		;
	if (*pp) {
		*pp = imp->next;
		cu->nimports--;
	}
	pthread_mutex_unlock(&cu->lock);
	rc = cudaSetDevice(imp->dev);
	if (rc == cudaSuccess)
		rc = cudaIpcCloseMemHandle(imp->base);
	if (rc != cudaSuccess) {
		(void)cudaGetLastError();
		sc_error("release CUDA import %p (device %d): "
		         "cudaIpcCloseMemHandle() failed: %s (%s)",
		         imp->base, imp->dev, cudaGetErrorString(rc),
		         cudaGetErrorName(rc));
	}
	free(imp);
}

void *xfer_cuda_import_base(const struct xfer_cuda_import *imp)
{
	return imp->base;
}

uint64_t xfer_cuda_import_len(const struct xfer_cuda_import *imp)
{
	return imp->len;
}

int xfer_cuda_import_device(const struct xfer_cuda_import *imp)
{
	return imp->dev;
}

uint32_t xfer_cuda_import_refs(struct xfer_cuda *cu,
                               const struct xfer_cuda_import *imp)
{
	uint32_t n;

	pthread_mutex_lock(&cu->lock);
	n = imp->refs;
	pthread_mutex_unlock(&cu->lock);
	return n;
}

uint32_t xfer_cuda_import_count(struct xfer_cuda *cu)
{
	uint32_t n;

	pthread_mutex_lock(&cu->lock);
	n = cu->nimports;
	pthread_mutex_unlock(&cu->lock);
	return n;
}

int xfer_cuda_event_open(struct xfer_cuda *cu, int dev,
                         const struct ipc_cuda_event *e, void **event,
                         char *err, size_t errlen)
{
	cudaIpcEventHandle_t h;
	cudaEvent_t ev;
	cudaError_t rc;

	if (dev < 0 || dev >= cu->ndev)
		return fail(err, errlen, KVF_EINVAL,
		            "import CUDA event: no device %d (the sidecar sees "
		            "%d)",
		            dev, cu->ndev);
	rc = cudaSetDevice(dev);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen, KVF_ECUDA, "import CUDA event",
		                 "cudaSetDevice", rc);
	memcpy(&h, e->handle, sizeof(h));
	rc = cudaIpcOpenEventHandle(&ev, h);
	if (rc != cudaSuccess)
		return cuda_fail(err, errlen, KVF_ECUDA, "import CUDA event",
		                 "cudaIpcOpenEventHandle", rc);
	*event = ev;
	return 0;
}

void xfer_cuda_event_close(void *event)
{
	if (event && cudaEventDestroy((cudaEvent_t)event) != cudaSuccess)
		(void)cudaGetLastError();
}

int xfer_cuda_host_alloc(size_t len, void **out)
{
	void *p = NULL;
	cudaError_t rc;

	rc = cudaHostAlloc(&p, len, cudaHostAllocPortable);
	if (rc != cudaSuccess) {
		(void)cudaGetLastError();
		sc_error("pinned host memory of %zu bytes: cudaHostAlloc() "
		         "failed: %s (%s)",
		         len, cudaGetErrorString(rc), cudaGetErrorName(rc));
		return rc == cudaErrorMemoryAllocation ? KVF_ENOMEM
		                                       : KVF_ECUDA;
	}
	*out = p;
	return 0;
}

void xfer_cuda_host_free(void *p)
{
	if (p && cudaFreeHost(p) != cudaSuccess)
		(void)cudaGetLastError();
}

int xfer_cuda_host_register(void *p, size_t len)
{
	cudaError_t rc;

	rc = cudaHostRegister(p, len, cudaHostRegisterPortable);
	if (rc != cudaSuccess) {
		(void)cudaGetLastError();
		sc_error("register %zu bytes of host memory at %p with CUDA: "
		         "cudaHostRegister() failed: %s (%s)",
		         len, p, cudaGetErrorString(rc), cudaGetErrorName(rc));
		return rc == cudaErrorHostMemoryAlreadyRegistered ? KVF_EEXIST
		       : rc == cudaErrorInvalidValue             ? KVF_EINVAL
		                                                 : KVF_ECUDA;
	}
	return 0;
}

int xfer_cuda_host_unregister(void *p)
{
	cudaError_t rc;

	rc = cudaHostUnregister(p);
	if (rc != cudaSuccess) {
		(void)cudaGetLastError();
		sc_error("unregister host memory at %p from CUDA: "
		         "cudaHostUnregister() failed: %s (%s)",
		         p, cudaGetErrorString(rc), cudaGetErrorName(rc));
		return rc == cudaErrorHostMemoryNotRegistered ? KVF_ENOENT
		                                              : KVF_ECUDA;
	}
	return 0;
}

#endif

/* With or without CUDA: the memory's own device. */
int xfer_cuda_import_hold(struct xfer_cuda *cu, const struct ipc_cuda_mem *m,
                          struct xfer_cuda_import **out, char *err,
                          size_t errlen)
{
	return xfer_cuda_import_hold_on(cu, m, -1, out, err, errlen);
}
