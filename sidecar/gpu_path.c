/*
 * sidecar/gpu_path.c - GPU memory without GPUDirect, and GPU memory on the
 * same host.
 *
 * Staged (Debian's libfabric cannot register CUDA memory): the sidecar owns
 * a pool of pinned host slots registered with the fabric, half for chunks
 * it sends and half for chunks it receives, so two sidecars pushing to each
 * other can never starve each other of slots. A transfer is cut into
 * chunks of up to one slot and SC_CHUNK_PIECES pieces; many small KV blocks
 * are packed into one chunk so the wire sees large messages. Per chunk:
 *   1. gather into a local slot (device-to-host copy for GPU pieces, memcpy
 *      for host pieces), several chunks in flight so copies and network
 *      overlap;
 *   2a. remote host memory: RDMA-write each piece from the slot into it;
 *   2b. remote GPU memory: send a CHUNK message naming the slot (address,
 *      key) and where each piece goes; the target sidecar takes a slot of
 *      its own, RDMA-reads the chunk, copies it host-to-device into the
 *      engine's GPU memory, waits for that copy, and answers DONE;
 *   3. the slot is free again.
 * Credit-based flow control falls out of this: a sender never has more
 * chunks outstanding than its send slots, and a receiver reads a chunk
 * only into a free receive slot (others queue), so nothing overruns.
 * The transfer's notification is sent (by sidecar/xfer_tail.c) only after
 * every chunk is DONE, i.e. after the bytes are visible in the target's
 * GPU memory.
 *
 * Same host (the peer's host id equals ours, both regions in GPU memory):
 * the handshake gave us the remote engine's CUDA IPC handles, we imported
 * them, and the transfer is one batch of device-to-device (or peer) copies;
 * its notification follows the batch's completion event.
 *
 * This file is the path's entry from the progress thread: it takes a
 * transfer (accept, per-transfer state, freeing it), runs one turn of GPU
 * work and routes completions and messages to the side they belong to.
 * The rest, with what the files share in sidecar/gpu_path_int.h:
 * sidecar/gpu_pool.c (CUDA and the staging pool), gpu_import.c (imports
 * for the control threads), gpu_same_host.c, gpu_initiator.c (steps 1, 2a
 * and the sender's side of 2b and 3) and gpu_target.c (the target's side
 * of 2b).
 */
#include "sidecar/gpu_path.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/gpu_path_int.h"
#include "sidecar/log.h"
#include "xfer/cuda.h"

const char *sc_gpu_path_name(struct sc_daemon *d, bool same_host)
{
	if (same_host)
		return "same-host";
	if (d->fabric && xfer_fabric_info(d->fabric)->hmem_cuda)
		return "gpudirect";
	return "staged";
}

/* ---- accepting ------------------------------------------------------- */

int sc_gpu_accept(struct sc_xfers *x, struct sc_xfer *t,
                  const uint8_t *event_handle)
{
	struct sc_gpu *g = x->gpu;
	struct sc_gpu_xfer *gx;
	bool all_cuda = true;

	if (!g || !g->cu) {
		sc_xfer_fail(t, KVF_ENOTSUP, "GPU memory: %s",
		             g ? g->why : "no CUDA");
		return KVF_ENOTSUP;
	}
	for (uint32_t i = 0; i < t->plan.nops; i++) {
		const struct sc_op *op = &t->plan.ops[i];
		if (op->lkind != XFER_MEM_CUDA || op->rkind != XFER_MEM_CUDA)
			all_cuda = false;
		if (t->op == KVF_READ && op->rkind == XFER_MEM_CUDA &&
		    !t->same_host) {
			sc_xfer_fail(t, KVF_ENOTSUP,
			             "READ from remote GPU region %u across "
			             "hosts is not supported by the staged "
			             "path; push it with WRITE from the other "
			             "side",
			             op->rregion);
			return KVF_ENOTSUP;
		}
	}
	if (t->same_host && !all_cuda) {
		/* Mixed host and GPU regions on one host still go through
		 * the fabric, staged. */
		t->same_host = false;
	}
	if (t->same_host) {
		for (uint32_t i = 0; i < t->plan.nops; i++) {
			if (t->plan.ops[i].rdev < 0) {
				sc_xfer_fail(t, KVF_EPEER,
				             "remote GPU region %u was not "
				             "imported (same-host handshake)",
				             t->plan.ops[i].rregion);
				return KVF_EPEER;
			}
		}
	}
	if (!(gx = calloc(1, sizeof *gx))) {
		sc_xfer_fail(t, KVF_ENOMEM, "out of memory");
		return KVF_ENOMEM;
	}
	gx->same_host = t->same_host;
	gx->dev = t->plan.nregions ? t->plan.regions[0]->cuda_device : 0;
	if (gx->dev < 0)
		gx->dev = 0;
	t->gpu = gx;
	if (event_handle) {
		struct ipc_cuda_event ev;
		char err[160];
		memcpy(ev.handle, event_handle, sizeof ev.handle);
		if (xfer_cuda_event_open(g->cu, gx->dev, &ev, &gx->event, err,
		                         sizeof err) != 0) {
			sc_xfer_fail(t, KVF_ECUDA,
			             "the engine's CUDA event: %.120s", err);
			return KVF_ECUDA;
		}
	}
	return 0;
}

void sc_gpu_xfer_free(struct sc_xfers *x, struct sc_xfer *t)
{
	struct sc_gpu_xfer *gx = t->gpu;
	if (!gx)
		return;
	if (gx->batch)
		xfer_cuda_batch_free(x->gpu->cp, gx->batch);
	if (gx->event)
		xfer_cuda_event_close(gx->event);
	free(gx);
	t->gpu = NULL;
}

/* ---- routing ----------------------------------------------------------- */

void sc_gpu_on_msg(struct sc_xfers *x, const void *data, size_t len)
{
	struct sc_gpu *g = x->gpu;
	uint32_t magic;

	if (len < sizeof magic)
		return;
	memcpy(&magic, data, sizeof magic);
	if (magic == SC_DONE_MAGIC && len == sizeof(struct sc_done_msg) && g) {
		sc_gpu_on_done(x, data);
		return;
	}
	if (!g) {
		sc_warn("fabric: message (%zu bytes) for the GPU path, which "
		        "is not running, dropped", len);
		return;
	}
	if (magic != SC_CHUNK_MAGIC || len < offsetof(struct sc_chunk_msg,
	                                              pieces)) {
		sc_warn("fabric: unknown message (%zu bytes) dropped", len);
		return;
	}
	sc_gpu_on_chunk(x, data, len);
}

void sc_gpu_on_comp(struct sc_xfers *x, const struct xfer_comp *c)
{
	if (c->ctx->aux == GPU_AUX_DONE || c->ctx->aux == GPU_AUX_PULL)
		sc_gpu_recv_on_comp(x, c);
	else
		sc_gpu_send_on_comp(x, c);
}

/* ---- the loop ----------------------------------------------------------- */

int sc_gpu_progress(struct sc_xfers *x)
{
	struct sc_gpu *g = x->gpu;
	int work = 0;

	if (!g || !g->cu)
		return 0;
	for (struct sc_xfer *t = x->active, *next; t; t = next) {
		next = t->next;
		if (!t->gpu)
			continue;
		if (t->gpu->same_host)
			work += sc_gpu_same_host_step(x, t);
		else
			while (sc_gpu_chunk_start(x, t))
				work++;
	}
	work += sc_gpu_send_side(x);
	work += sc_gpu_recv_side(x);
	return work;
}

bool sc_gpu_busy(struct sc_xfers *x)
{
	return x->gpu && x->gpu->busy;
}
