/*
 * tests/gpu/cuda_export.c - ipc/cuda_ipc exports pool offsets, refuses host,
 * bad, managed, VMM and stream-ordered pool memory with the right code and
 * message, exports only interprocess events; xfer/cuda finds devices by UUID.
 */
#include "tests/tap/tap.h"

#ifndef KVF_HAVE_CUDA
int main(void)
{
	skip_all("no CUDA device: this build has no CUDA support");
}
#else

#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "ipc/cuda_ipc.h"
#include "tests/gpu/gpu_util.h"
#include "xfer/cuda.h"

#define MiB (1024u * 1024u)

static void *drv(const char *name)
{
	enum cudaDriverEntryPointQueryResult q;
	void *fn = NULL;

	CK(cudaGetDriverEntryPointByVersion(name, &fn, 12000,
	                                    cudaEnableDefault, &q));
	if (!fn)
		bail("driver entry point %s not found", name);
	return fn;
}

/* Map size bytes with the VMM API, as PyTorch's expandable_segments does. */
static void vmm_case(int dev)
{
	PFN_cuMemGetAllocationGranularity_v10020 gran =
		drv("cuMemGetAllocationGranularity");
	PFN_cuMemCreate_v10020 create = drv("cuMemCreate");
	PFN_cuMemAddressReserve_v10020 reserve = drv("cuMemAddressReserve");
	PFN_cuMemMap_v10020 map = drv("cuMemMap");
	PFN_cuMemSetAccess_v10020 access = drv("cuMemSetAccess");
	PFN_cuMemUnmap_v10020 unmap = drv("cuMemUnmap");
	PFN_cuMemRelease_v10020 release = drv("cuMemRelease");
	PFN_cuMemAddressFree_v10020 addr_free = drv("cuMemAddressFree");
	CUmemAllocationProp prop;
	CUmemAccessDesc ad;
	CUmemGenericAllocationHandle h;
	struct ipc_cuda_mem m;
	CUdeviceptr va = 0;
	size_t g = 0;
	char err[512] = "";
	int rc;

	memset(&prop, 0, sizeof(prop));
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = dev;
	if (gran(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS ||
	    create(&h, g, &prop, 0) != CUDA_SUCCESS) {
		skip(3, "cuMemCreate failed on device %d", dev);
		return;
	}
	if (reserve(&va, g, 0, 0, 0) != CUDA_SUCCESS ||
	    map(va, g, 0, h, 0) != CUDA_SUCCESS)
		bail("cuMemAddressReserve/cuMemMap failed");
	memset(&ad, 0, sizeof(ad));
	ad.location = prop.location;
	ad.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	if (access(va, g, &ad, 1) != CUDA_SUCCESS)
		bail("cuMemSetAccess failed");
	CK(cudaMemset((void *)(uintptr_t)va, 0x5a, g));
	CK(cudaDeviceSynchronize());

	rc = ipc_cuda_export_mem((void *)(uintptr_t)(va + 4096), 4096, &m, err,
	                         sizeof(err));
	is_int(rc, KVF_ENOTSUP, "VMM memory is refused with KVF_ENOTSUP");
	like(err, "VMM", "the message says it is VMM memory");
	like(err, "expandable_segments", "and what to change");
	diag("%s", err);
	unmap(va, g);
	addr_free(va, g);
	release(h);
}

int main(void)
{
	struct ipc_cuda_mem m, m2;
	struct ipc_cuda_event ev_out;
	struct cudaDeviceProp prop;
	struct xfer_cuda *cu = NULL;
	struct xfer_cuda_import *imp = NULL;
	char why[256], err[512] = "", bus[64];
	uint8_t zero_uuid[16] = {0};
	cudaEvent_t ev;
	void *base, *host, *pinned, *managed, *pooled;
	int dev = -1, after = -1, found = -1, rc;

	if (gpu_probe(why, sizeof(why)))
		skip_all("no CUDA device: %s", why);
	CK(cudaSetDevice(0));
	CK(cudaGetDevice(&dev));
	CK(cudaGetDeviceProperties(&prop, dev));
	CK(cudaDeviceGetPCIBusId(bus, sizeof(bus), dev));
	diag("device %d: %s, %s", dev, prop.name, bus);

	/* A pool: one allocation, tensors at offsets. */
	CK(cudaMalloc(&base, 4 * MiB));
	err[0] = 0;
	rc = ipc_cuda_export_mem(base, 4 * MiB, &m, err, sizeof(err));
	is_int(rc, 0, "export a whole allocation (%s)", err);
	is_int((long long)m.offset, 0, "its offset is 0");
	is_int((long long)m.len, 4 * MiB, "its length is the range's");
	is_int((long long)m.alloc_len, 4 * MiB, "alloc_len is the allocation");
	ok(memcmp(m.uuid, &prop.uuid, 16) == 0, "the device UUID is the "
	                                        "allocation's device's");
	is_str(m.bus_id, bus, "the PCI bus id is the device's");
	is_int(m.device, dev, "the ordinal is the device's");

	rc = ipc_cuda_export_mem((char *)base + MiB + 123, 1000, &m2, err,
	                         sizeof(err));
	is_int(rc, 0, "export a tensor inside the pool (%s)", err);
	is_int((long long)m2.offset, MiB + 123, "offset from the base");
	is_int((long long)m2.len, 1000, "length of the tensor");
	is_int((long long)m2.alloc_len, 4 * MiB, "alloc_len of the pool");
	ok(memcmp(m.handle, m2.handle, IPC_CUDA_HANDLE_LEN) == 0,
	   "both carry the same handle (the pool's base)");
	CK(cudaGetDevice(&after));
	is_int(after, dev, "the current device is left as it was");

	rc = ipc_cuda_export_mem((char *)base + 4 * MiB - 10, 11, &m2, err,
	                         sizeof(err));
	is_int(rc, KVF_ERANGE, "a range past the allocation's end: ERANGE");
	like(err, "run past the end", "the message says so");

	rc = ipc_cuda_export_mem(NULL, 10, &m2, err, sizeof(err));
	is_int(rc, KVF_EINVAL, "NULL pointer: EINVAL");
	rc = ipc_cuda_export_mem(base, 0, &m2, err, sizeof(err));
	is_int(rc, KVF_EINVAL, "zero length: EINVAL");
	like(err, "length is 0", "the message names it");

	host = malloc(4096);
	rc = ipc_cuda_export_mem(host, 4096, &m2, err, sizeof(err));
	is_int(rc, KVF_EINVAL, "malloc'd host memory: EINVAL");
	like(err, "does not know", "the message says CUDA does not know it");
	free(host);
	rc = ipc_cuda_export_mem((void *)(uintptr_t)0x1000, 16, &m2, err,
	                         sizeof(err));
	is_int(rc, KVF_EINVAL, "a bad pointer: EINVAL");

	CK(cudaHostAlloc(&pinned, 4096, cudaHostAllocPortable));
	rc = ipc_cuda_export_mem(pinned, 4096, &m2, err, sizeof(err));
	is_int(rc, KVF_EINVAL, "pinned host memory: EINVAL");
	like(err, "pinned host", "the message says it is pinned host memory");
	CK(cudaFreeHost(pinned));

	CK(cudaMallocManaged(&managed, MiB, cudaMemAttachGlobal));
	rc = ipc_cuda_export_mem(managed, 4096, &m2, err, sizeof(err));
	is_int(rc, KVF_ENOTSUP, "managed memory: ENOTSUP");
	like(err, "managed", "the message says managed");
	CK(cudaFree(managed));

	CK(cudaMallocAsync(&pooled, MiB, 0));
	CK(cudaStreamSynchronize(0));
	rc = ipc_cuda_export_mem(pooled, 4096, &m2, err, sizeof(err));
	is_int(rc, KVF_ENOTSUP, "cudaMallocAsync pool memory: ENOTSUP");
	like(err, "cudaMallocAsync", "the message names cudaMallocAsync");
	CK(cudaFreeAsync(pooled, 0));
	CK(cudaStreamSynchronize(0));

	vmm_case(dev);

	CK(cudaEventCreate(&ev));
	rc = ipc_cuda_export_event(ev, &ev_out, err, sizeof(err));
	is_int(rc, KVF_EINVAL, "an event without cudaEventInterprocess: "
	                       "EINVAL");
	like(err, "cudaEventInterprocess", "the message says how to make it");
	err[0] = 0;
	CK(cudaEventDestroy(ev));
	CK(cudaEventCreateWithFlags(&ev, cudaEventInterprocess |
	                                         cudaEventDisableTiming));
	rc = ipc_cuda_export_event(ev, &ev_out, err, sizeof(err));
	is_int(rc, 0, "an interprocess event is exported (%s)", err);
	CK(cudaEventDestroy(ev));

	/* The sidecar side, in this process. */
	rc = xfer_cuda_open(&cu, err, sizeof(err));
	is_int(rc, 0, "xfer_cuda_open (%s)", err);
	if (rc)
		bail("cannot go on without xfer_cuda");
	ok(xfer_cuda_device_count(cu) >= 1, "it sees %d devices",
	   xfer_cuda_device_count(cu));
	rc = xfer_cuda_find_device(cu, m.uuid, &found, err, sizeof(err));
	is_int(rc, 0, "the exported UUID is found");
	is_int(found, dev, "on the exporting device");
	rc = xfer_cuda_find_device(cu, zero_uuid, &found, err, sizeof(err));
	is_int(rc, KVF_ENOENT, "an unknown UUID: ENOENT");
	like(err, "CUDA_VISIBLE_DEVICES", "the message points at "
	                                  "CUDA_VISIBLE_DEVICES");
	rc = xfer_cuda_import_hold(cu, &m, &imp, err, sizeof(err));
	ok(rc != 0, "importing a handle of this very process fails (%d: %s)",
	   rc, err);
	is_int(xfer_cuda_import_count(cu), 0, "and leaves nothing cached");
	xfer_cuda_close(cu);

	CK(cudaFree(base));
	done_testing();
}
#endif
