/*
 * sidecar/gpu_same_host.c - a transfer between two engines' GPU memory on
 * this host: no network and no staging. The peer's handshake gave us the
 * remote engine's CUDA IPC handles and we imported them (sidecar/peers.c),
 * so the whole transfer is one batch of device-to-device copies, or peer
 * copies when a remote region is on another GPU, started after the
 * engine's CUDA event. The batch counts as one operation in flight; when
 * it completes the transfer's tail (its notification, sidecar/xfer_tail.c)
 * follows.
 */
#include <stdlib.h>

#include "sidecar/gpu_path_int.h"
#include "xfer/cuda.h"

int sc_gpu_same_host_step(struct sc_xfers *x, struct sc_xfer *t)
{
	struct sc_gpu *g = x->gpu;
	struct sc_gpu_xfer *gx = t->gpu;
	struct xfer_cuda_copy *v;
	int rc;

	if (gx->batch) {
		rc = xfer_cuda_batch_test(gx->batch);
		if (rc == KVF_EAGAIN)
			return 0;
		xfer_cuda_batch_free(g->cp, gx->batch);
		gx->batch = NULL;
		t->inflight--;
		if (rc != 0)
			sc_xfer_fail(t, KVF_ECUDA,
			             "same-host GPU copy failed");
		sc_xfer_advance(x, t);
		return 1;
	}
	if (t->status || t->next_post == t->plan.nops)
		return 0;
	v = calloc(t->plan.nops, sizeof *v);
	if (!v) {
		sc_xfer_fail(t, KVF_ENOMEM, "out of memory");
		t->next_post = t->plan.nops;
		sc_xfer_advance(x, t);
		return 1;
	}
	bool peer = false;
	for (uint32_t i = 0; i < t->plan.nops; i++) {
		const struct sc_op *op = &t->plan.ops[i];
		uint8_t *remote = (uint8_t *)(uintptr_t)op->raddr;
		v[i].len = op->len;
		v[i].dst = t->op == KVF_WRITE ? remote : op->local;
		v[i].src = t->op == KVF_WRITE ? op->local : remote;
		/* Any remote region on another GPU makes it a peer batch,
		 * not only the first op's. */
		if (op->rdev != gx->dev)
			peer = true;
	}
	/* Both engines' memory on one GPU: device-to-device; on two GPUs of
	 * this host: a peer copy (NVLink or PCIe). */
	rc = xfer_cuda_copy_start(g->cp, gx->dev,
	                          peer ? XFER_CUDA_PEER : XFER_CUDA_D2D, v,
	                          t->plan.nops, gx->event, &gx->batch);
	free(v);
	t->next_post = t->plan.nops;
	if (rc != 0) {
		sc_xfer_fail(t, KVF_ECUDA, "same-host GPU copy could not "
		             "start (%s)", kvf_strerror(rc));
		sc_xfer_advance(x, t);
		return 1;
	}
	t->inflight++;
	return 1;
}
