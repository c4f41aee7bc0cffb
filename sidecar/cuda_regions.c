/*
 * sidecar/cuda_regions.c - a CUDA region from an engine: the engine sent
 * the CUDA IPC handle of its allocation, the range's offset in it and the
 * device's UUID; we import the allocation once (xfer/cuda.h caches imports
 * per handle, reference-counted, so a pool with many regions costs one
 * cudaIpcOpenMemHandle) on the device with that UUID, whatever index it
 * has in our CUDA_VISIBLE_DEVICES.
 */
#include "sidecar/cuda_regions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/registry.h"
#include "xfer/fabric.h"

struct cuda_ref {
	struct sc_daemon *d;
	void *ref;
};

static void close_ref(void *p)
{
	struct cuda_ref *c = p;
	sc_gpu_rele_import(c->d, c->ref);
	free(c);
}

int sc_region_import_cuda(struct sc_daemon *d, struct sc_region *r,
                          const Kvf__Engine__RegisterRegion *m, char *err,
                          size_t errlen)
{
	struct ipc_cuda_mem mem;
	struct cuda_ref *c;
	int rc;

	if (m->cuda_ipc_handle.len != IPC_CUDA_HANDLE_LEN ||
	    m->cuda_device_uuid.len != IPC_CUDA_UUID_LEN) {
		snprintf(err, errlen,
		         "CUDA region: IPC handle of %zu bytes and device UUID of "
		         "%zu bytes (want %d and %d)",
		         m->cuda_ipc_handle.len, m->cuda_device_uuid.len,
		         IPC_CUDA_HANDLE_LEN, IPC_CUDA_UUID_LEN);
		return KVF_EINVAL;
	}
	memset(&mem, 0, sizeof mem);
	memcpy(mem.handle, m->cuda_ipc_handle.data, IPC_CUDA_HANDLE_LEN);
	memcpy(mem.uuid, m->cuda_device_uuid.data, IPC_CUDA_UUID_LEN);
	snprintf(mem.bus_id, sizeof mem.bus_id, "%s", m->cuda_pci_bus_id);
	mem.alloc_len = m->cuda_alloc_length;
	mem.offset = m->cuda_offset;
	mem.len = m->length;
	mem.device = -1;
	if (!(c = calloc(1, sizeof *c))) {
		snprintf(err, errlen, "out of memory");
		return KVF_ENOMEM;
	}
	c->d = d;
	rc = sc_gpu_hold_import(d, &mem, -1, &c->ref, &r->base,
	                        &r->cuda_device, err, errlen);
	if (rc != 0) {
		free(c);
		return rc;
	}
	r->kind = XFER_MEM_CUDA;
	r->cuda = c;
	r->cuda_close = close_ref;
	r->cuda_mem = mem;
	return 0;
}
