/*
 * sidecar/gpu_pool.c - what the GPU path owns for the whole life of the
 * sidecar: the CUDA context (devices, the import cache), the copier
 * (streams and batches) and the staging pool, one pinned host allocation
 * registered with the fabric and cut into SLOT_BYTES slots, the first
 * SEND_SLOTS for chunks we send and the next RECV_SLOTS for chunks we
 * receive (slot_ptr in sidecar/gpu_path_int.h finds one). Set up by the
 * main thread before the progress thread starts, torn down after it
 * stopped; the accessors below hand the context and the copier to the
 * other modules. A sidecar without CUDA still starts: it keeps the reason,
 * and GPU regions are refused with it.
 */
#include "sidecar/gpu_path.h"

#include <stdio.h>
#include <stdlib.h>

#include "sidecar/daemon.h"
#include "sidecar/gpu_path_int.h"
#include "sidecar/log.h"
#include "xfer/cuda.h"

int sc_gpu_start(struct sc_xfers *x)
{
	struct sc_gpu *g = calloc(1, sizeof *g);
	size_t len = (size_t)(SEND_SLOTS + RECV_SLOTS) * SLOT_BYTES;
	int rc;

	if (!g)
		return KVF_ENOMEM;
	x->gpu = g;
	rc = xfer_cuda_open(&g->cu, g->why, sizeof g->why);
	if (rc != 0) {
		sc_info("gpu: no CUDA (%s): GPU regions will be refused",
		        g->why);
		g->cu = NULL;
		return 0;
	}
	rc = xfer_cuda_copier_open(&g->cp, g->why, sizeof g->why);
	if (rc == 0)
		rc = xfer_cuda_host_alloc(len, (void **)&g->stage);
	if (rc == 0)
		rc = xfer_mr_reg(x->fab, g->stage, len, XFER_MEM_HOST, -1,
		                 STAGE_KEY, &g->mr);
	if (rc != 0) {
		sc_error("gpu: staging pool of %zu bytes: %s", len,
		         kvf_strerror(rc));
		snprintf(g->why, sizeof g->why,
		         "the sidecar could not set up its staging pool");
		sc_gpu_stop(x);
		x->gpu = calloc(1, sizeof *g);
		if (x->gpu)
			snprintf(x->gpu->why, sizeof x->gpu->why,
			         "staging pool set-up failed");
		return 0;
	}
	g->desc = xfer_mr_desc(g->mr);
	g->remote_base = xfer_mr_remote_base(g->mr);
	g->key = xfer_mr_key(g->mr);
	for (uint32_t i = 0; i < SEND_SLOTS; i++) {
		g->send[i].slot = i;
		g->send_free[g->nsend_free++] = SEND_SLOTS - 1 - i;
	}
	for (uint32_t i = 0; i < RECV_SLOTS; i++)
		g->recv_free[g->nrecv_free++] = (int32_t)(SEND_SLOTS + i);
	sc_info("gpu: %d CUDA devices; staging pool %u x %u MiB pinned "
	        "(%s)",
	        xfer_cuda_device_count(g->cu), SEND_SLOTS + RECV_SLOTS,
	        SLOT_BYTES >> 20,
	        xfer_fabric_info(x->fab)->hmem_cuda ? "GPUDirect available"
	                                            : "staged transfers");
	return 0;
}

void sc_gpu_stop(struct sc_xfers *x)
{
	struct sc_gpu *g = x->gpu;
	if (!g)
		return;
	while (g->tq_head) {
		struct tchunk *tc = g->tq_head;
		g->tq_head = tc->next;
		if (tc->batch)
			xfer_cuda_batch_free(g->cp, tc->batch);
		for (uint32_t i = 0; i < tc->nregions; i++)
			sc_region_rele(tc->regions[i]);
		if (tc->s)
			sc_session_rele(tc->s);
		free(tc);
	}
	xfer_mr_close(g->mr);
	if (g->stage)
		xfer_cuda_host_free(g->stage);
	xfer_cuda_copier_close(g->cp);
	xfer_cuda_close(g->cu);
	free(g);
	x->gpu = NULL;
}

struct xfer_cuda *sc_gpu_cuda(struct sc_daemon *d, char *err, size_t errlen)
{
	struct sc_gpu *g = d->xfers ? d->xfers->gpu : NULL;
	if (g && g->cu)
		return g->cu;
	snprintf(err, errlen, "this sidecar cannot reach CUDA memory: %s",
	         g ? g->why : "not started");
	return NULL;
}

struct xfer_cuda_copier *sc_gpu_copier(struct sc_daemon *d)
{
	struct sc_gpu *g = d->xfers ? d->xfers->gpu : NULL;
	return g && g->cu ? g->cp : NULL;
}

void sc_gpu_busy_add(struct sc_daemon *d, int delta)
{
	struct sc_gpu *g = d->xfers ? d->xfers->gpu : NULL;
	if (g)
		g->busy = (uint32_t)((int64_t)g->busy + delta);
}
