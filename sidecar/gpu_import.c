/*
 * sidecar/gpu_import.c - an engine's CUDA memory exported to us, imported
 * for the sidecar's other modules (engine and peer handshakes, the storage
 * tier). The import itself, and its sharing between holders of the same
 * allocation, is xfer/cuda.c's reference-counted cache; here a reference
 * also remembers the context it came from and the requested range is
 * checked against the allocation it lies in. Called from control threads:
 * the first import of an allocation can take 100+ ms.
 */
#include "sidecar/gpu_path.h"

#include <stdio.h>
#include <stdlib.h>

#include "client/kvferry.h"
#include "xfer/cuda.h"

struct import_ref {
	struct xfer_cuda *cu;
	struct xfer_cuda_import *imp;
};

int sc_gpu_hold_import(struct sc_daemon *d, const struct ipc_cuda_mem *m,
                       int open_dev, void **ref, uint8_t **dptr, int *dev,
                       char *err, size_t errlen)
{
	struct xfer_cuda *cu = sc_gpu_cuda(d, err, errlen);
	struct import_ref *r;
	int rc;

	if (!cu)
		return KVF_ENOTSUP;
	if (!(r = calloc(1, sizeof *r)))
		return KVF_ENOMEM;
	rc = xfer_cuda_import_hold_on(cu, m, open_dev, &r->imp, err, errlen);
	if (rc != 0) {
		free(r);
		return rc;
	}
	if (m->offset > xfer_cuda_import_len(r->imp) ||
	    m->len > xfer_cuda_import_len(r->imp) - m->offset) {
		snprintf(err, errlen,
		         "CUDA range offset %llu + %llu bytes is outside the "
		         "%llu-byte allocation",
		         (unsigned long long)m->offset,
		         (unsigned long long)m->len,
		         (unsigned long long)xfer_cuda_import_len(r->imp));
		xfer_cuda_import_rele(cu, r->imp);
		free(r);
		return KVF_ERANGE;
	}
	r->cu = cu;
	*dptr = (uint8_t *)xfer_cuda_import_base(r->imp) + m->offset;
	*dev = xfer_cuda_import_device(r->imp);
	*ref = r;
	return 0;
}

void sc_gpu_rele_import(struct sc_daemon *d, void *ref)
{
	struct import_ref *r = ref;
	(void)d;
	if (!r)
		return;
	xfer_cuda_import_rele(r->cu, r->imp);
	free(r);
}
