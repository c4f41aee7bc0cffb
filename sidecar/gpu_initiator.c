/*
 * sidecar/gpu_initiator.c - the staged path on the side that starts the
 * transfer. Each of the SEND_SLOTS send slots carries one chunk at a time
 * (struct ichunk): cut from the plan's operations, gathered into the slot
 * (device-to-host copies, or memcpy for host pieces), then shipped: RDMA
 * writes into remote host memory, or a CHUNK message naming the slot for
 * the target to pull into remote GPU memory, whose DONE answer ends it. A
 * READ runs the other way: RDMA reads of remote host memory into the slot,
 * then host-to-device copies out of it. A chunk ends when its completions
 * (and a DONE it waits for) are in; the slot is free again and the
 * transfer moves on (sidecar/xfer_tail.c).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/gpu_path_int.h"
#include "xfer/cuda.h"

static void chunk_release(struct sc_xfers *x, struct ichunk *ic)
{
	struct sc_gpu *g = x->gpu;
	struct sc_xfer *t = ic->t;

	if (ic->batch)
		xfer_cuda_batch_free(g->cp, ic->batch);
	ic->batch = NULL;
	ic->state = IC_FREE;
	ic->t = NULL;
	ic->gen++;
	g->send_free[g->nsend_free++] = ic->slot;
	g->busy--;
	t->inflight--;
	if (ic->status && !t->status)
		sc_xfer_fail(t, ic->status, "staged chunk of %llu bytes (%u "
		             "pieces) to peer %u failed",
		             (unsigned long long)ic->bytes, ic->npieces,
		             t->peer_id);
	sc_xfer_advance(x, t);
}

/* Cut the next chunk of t into a free send slot and start its gather (or,
 * for READ, its RDMA reads). Returns 1 when a chunk started. */
int sc_gpu_chunk_start(struct sc_xfers *x, struct sc_xfer *t)
{
	struct sc_gpu *g = x->gpu;
	struct sc_gpu_xfer *gx = t->gpu;
	struct xfer_cuda_copy v[SC_CHUNK_PIECES];
	struct ichunk *ic;
	uint8_t *slot;
	uint64_t pos = 0;
	uint32_t n = 0;
	int rc;

	if (!g->nsend_free || t->status || t->next_post == t->plan.nops)
		return 0;
	ic = &g->send[g->send_free[--g->nsend_free]];
	slot = slot_ptr(g, ic->slot);
	ic->t = t;
	ic->status = 0;
	ic->inflight = 0;
	ic->lkind = t->plan.ops[t->next_post].lkind;
	ic->rkind = t->plan.ops[t->next_post].rkind;
	memset(&ic->msg, 0, offsetof(struct sc_chunk_msg, pieces));
	while (t->next_post < t->plan.nops && n < SC_CHUNK_PIECES &&
	       pos < SLOT_BYTES) {
		const struct sc_op *op = &t->plan.ops[t->next_post];
		uint64_t len = op->len - gx->op_off;
		if (op->lkind != ic->lkind || op->rkind != ic->rkind)
			break;
		if (len > SLOT_BYTES - pos)
			len = SLOT_BYTES - pos;
		ic->lptr[n] = op->local + gx->op_off;
		ic->raddr[n] = op->raddr + gx->op_off;
		ic->rkey[n] = op->rkey;
		ic->msg.pieces[n].region = op->rregion;
		ic->msg.pieces[n].off = op->roff + gx->op_off;
		ic->msg.pieces[n].len = (uint32_t)len;
		v[n].dst = t->op == KVF_WRITE ? slot + pos : ic->lptr[n];
		v[n].src = t->op == KVF_WRITE ? ic->lptr[n] : slot + pos;
		v[n].len = len;
		pos += len;
		n++;
		gx->op_off += len;
		if (gx->op_off == op->len) {
			gx->op_off = 0;
			t->next_post++;
		}
	}
	ic->npieces = n;
	ic->bytes = pos;
	g->busy++;
	t->inflight++;
	if (t->op == KVF_READ) {
		/* Remote host memory into the slot, then host-to-device. */
		uint64_t off = 0;
		for (uint32_t i = 0; i < n; i++) {
			struct xfer_ctx *c = &ic->ctx[i];
			c->owner = ic;
			c->kind = CTX_GPU;
			c->aux = GPU_AUX_PIECE;
			rc = xfer_post_read(x->fab, slot + off, v[i].len,
			                    g->desc, t->fi_addr, ic->raddr[i],
			                    ic->rkey[i], c);
			if (rc != 0) {
				ic->status =
					rc == KVF_EAGAIN ? KVF_EFABRIC : rc;
				break;
			}
			ic->inflight++;
			off += v[i].len;
		}
		ic->state = IC_READ;
		if (!ic->inflight)
			chunk_release(x, ic);
		return 1;
	}
	if (ic->lkind == XFER_MEM_HOST) {
		for (uint32_t i = 0; i < n; i++)
			memcpy((void *)v[i].dst, v[i].src, v[i].len);
		ic->state = IC_GATHER;
		ic->batch = NULL;
		return 1;
	}
	rc = xfer_cuda_copy_start(g->cp, gx->dev, XFER_CUDA_D2H, v, n,
	                          gx->event, &ic->batch);
	if (rc != 0) {
		ic->status = KVF_ECUDA;
		chunk_release(x, ic);
		return 1;
	}
	ic->state = IC_GATHER;
	return 1;
}

/* The slot holds the chunk: ship it. */
static void chunk_ship(struct sc_xfers *x, struct ichunk *ic)
{
	struct sc_gpu *g = x->gpu;
	struct sc_xfer *t = ic->t;
	uint64_t off = 0;
	int rc;

	if (ic->rkind == XFER_MEM_HOST) {
		for (uint32_t i = 0; i < ic->npieces; i++) {
			struct xfer_ctx *c = &ic->ctx[i];
			uint32_t len = ic->msg.pieces[i].len;
			c->owner = ic;
			c->kind = CTX_GPU;
			c->aux = GPU_AUX_PIECE;
			rc = xfer_post_write(x->fab,
			                     slot_ptr(g, ic->slot) + off, len,
			                     g->desc, t->fi_addr, ic->raddr[i],
			                     ic->rkey[i], c);
			if (rc != 0) {
				ic->status = KVF_EFABRIC;
				break;
			}
			ic->inflight++;
			off += len;
		}
		ic->state = IC_WRITE;
		if (!ic->inflight)
			chunk_release(x, ic);
		return;
	}
	ic->msg.magic = SC_CHUNK_MAGIC;
	ic->msg.version = 1;
	ic->msg.npieces = (uint16_t)ic->npieces;
	ic->msg.target_session = t->remote_session;
	ic->msg.target_epoch = t->remote_epoch;
	ic->msg.src_key = sc_hash_str(x->d->sidecar_id, x->d->epoch);
	ic->msg.token = (uint64_t)ic->gen << 32 | ic->slot;
	ic->msg.src_addr = g->remote_base + (uint64_t)ic->slot * SLOT_BYTES;
	ic->msg.src_rkey = g->key;
	ic->msg.len = ic->bytes;
	ic->state = IC_SEND;
}

int sc_gpu_send_side(struct sc_xfers *x)
{
	struct sc_gpu *g = x->gpu;
	int work = 0;

	for (uint32_t i = 0; i < SEND_SLOTS; i++) {
		struct ichunk *ic = &g->send[i];
		int rc;
		switch (ic->state) {
		case IC_GATHER:
			rc = ic->batch ? xfer_cuda_batch_test(ic->batch) : 0;
			if (rc == KVF_EAGAIN)
				break;
			work++;
			if (ic->batch) {
				xfer_cuda_batch_free(g->cp, ic->batch);
				ic->batch = NULL;
			}
			if (rc != 0 || ic->t->status) {
				ic->status = rc ? KVF_ECUDA : 0;
				chunk_release(x, ic);
				break;
			}
			chunk_ship(x, ic);
			if (ic->state != IC_SEND)
				break;
			/* fall through */
		case IC_SEND: {
			size_t len =
				offsetof(struct sc_chunk_msg, pieces) +
				ic->npieces * sizeof(struct sc_chunk_piece);
			ic->msg_ctx.owner = ic;
			ic->msg_ctx.kind = CTX_GPU;
			ic->msg_ctx.aux = GPU_AUX_CHUNK;
			rc = xfer_post_send(x->fab, &ic->msg, len,
			                    ic->t->fi_addr, &ic->msg_ctx);
			if (rc == KVF_EAGAIN)
				break;
			work++;
			if (rc != 0) {
				ic->status = KVF_EPEER;
				chunk_release(x, ic);
				break;
			}
			ic->inflight++; /* the send's own completion */
			ic->await_done = true;
			ic->state = IC_WAIT;
			break;
		}
		case IC_SCATTER:
			rc = xfer_cuda_batch_test(ic->batch);
			if (rc == KVF_EAGAIN)
				break;
			work++;
			if (rc != 0)
				ic->status = KVF_ECUDA;
			chunk_release(x, ic);
			break;
		default:
			break;
		}
	}
	return work;
}

/* A target answered one of our chunks: the chunk ends once its own
 * completions are in too. */
void sc_gpu_on_done(struct sc_xfers *x, const struct sc_done_msg *dm)
{
	struct sc_gpu *g = x->gpu;
	uint32_t slot = (uint32_t)dm->token;
	struct ichunk *ic;

	if (slot >= SEND_SLOTS)
		return;
	ic = &g->send[slot];
	if (ic->state != IC_WAIT || !ic->await_done ||
	    ic->gen != (uint32_t)(dm->token >> 32))
		return; /* stale: that chunk ended already */
	if (dm->status) {
		ic->status = dm->status > 0 && dm->status < KVF_ERR_COUNT
		                     ? dm->status
		                     : KVF_EPEER;
		if (!ic->t->status)
			sc_xfer_fail(ic->t, ic->status,
			             "peer could not place a chunk: %.90s",
			             dm->why);
	}
	ic->await_done = false;
	if (!ic->inflight)
		chunk_release(x, ic);
}

void sc_gpu_send_on_comp(struct sc_xfers *x, const struct xfer_comp *c)
{
	struct sc_gpu *g = x->gpu;
	struct ichunk *ic = c->ctx->owner;

	if (c->status && !ic->status) {
		ic->status = c->ctx->aux == GPU_AUX_CHUNK ? KVF_EPEER
		                                          : KVF_EFABRIC;
		ic->await_done = false; /* its CHUNK never left */
	}
	ic->inflight--;
	if (ic->inflight)
		return;
	if (ic->state == IC_READ && !ic->status) {
		/* The slot holds the pulled bytes: scatter them. */
		struct xfer_cuda_copy v[SC_CHUNK_PIECES];
		uint64_t pos = 0;
		for (uint32_t i = 0; i < ic->npieces; i++) {
			v[i].dst = ic->lptr[i];
			v[i].src = slot_ptr(g, ic->slot) + pos;
			v[i].len = ic->msg.pieces[i].len;
			pos += v[i].len;
		}
		if (ic->lkind == XFER_MEM_HOST) {
			for (uint32_t i = 0; i < ic->npieces; i++)
				memcpy(ic->lptr[i], v[i].src, v[i].len);
			chunk_release(x, ic);
			return;
		}
		if (xfer_cuda_copy_start(g->cp, ic->t->gpu->dev,
		                         XFER_CUDA_H2D, v, ic->npieces, NULL,
		                         &ic->batch) != 0) {
			ic->status = KVF_ECUDA;
			chunk_release(x, ic);
			return;
		}
		ic->state = IC_SCATTER;
		return;
	}
	if (ic->state == IC_WAIT && ic->await_done)
		return; /* the DONE message ends it */
	chunk_release(x, ic);
}
