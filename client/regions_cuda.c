/*
 * client/regions_cuda.c - GPU KV memory: the library exports the
 * allocation that holds [dptr, dptr + len) as a CUDA IPC handle plus the
 * range's offset, with the device's UUID and PCI bus id (ipc/cuda_ipc.h),
 * and the sidecar imports it. Pools work: many regions inside one
 * cudaMalloc share one handle, and the sidecar imports it once.
 */
#include <stdlib.h>

#include "client/client_int.h"
#include "ipc/cuda_ipc.h"

int kvf_register_cuda(kvf_client *c, void *dptr, size_t len,
                      const struct kvf_layout *layout, kvf_region *out)
{
	Kvf__Engine__RegisterRegion rr = KVF__ENGINE__REGISTER_REGION__INIT;
	struct ipc_cuda_mem ex;
	struct client_region *r;
	char err[256];
	int rc;

	if (!c || !dptr || !out || len == 0)
		return client_fail(KVF_EINVAL, "kvf_register_cuda: NULL argument "
		                               "or zero length");
	rc = ipc_cuda_export_mem(dptr, len, &ex, err, sizeof err);
	if (rc != 0)
		return client_fail(rc, "kvf_register_cuda: %s", err);
	if (!(r = calloc(1, sizeof *r)))
		return client_fail(KVF_ENOMEM, "kvf_register_cuda: out of "
		                               "memory");
	rr.kind = KVF__ENGINE__MEM_KIND__MEM_CUDA;
	rr.length = len;
	rr.cuda_ipc_handle.data = ex.handle;
	rr.cuda_ipc_handle.len = sizeof ex.handle;
	rr.cuda_offset = ex.offset;
	rr.cuda_alloc_length = ex.alloc_len;
	rr.cuda_device_uuid.data = ex.uuid;
	rr.cuda_device_uuid.len = sizeof ex.uuid;
	rr.cuda_pci_bus_id = ex.bus_id;
	rc = client_register(c, &rr, layout, &r->id);
	if (rc != 0) {
		free(r);
		return rc;
	}
	client_remember(c, r);
	*out = r->id;
	return 0;
}
