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
 */
#include "sidecar/gpu_path.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/gpu_path_int.h"
#include "sidecar/log.h"
#include "sidecar/xfers_int.h"
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
			             "READ from remote GPU region %u across hosts "
			             "is not supported by the staged path; push "
			             "it with WRITE from the other side",
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
			sc_xfer_fail(t, KVF_ECUDA, "the engine's CUDA event: %.120s",
			             err);
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

/* ---- staged: send side ------------------------------------------------- */

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
static int chunk_start(struct sc_xfers *x, struct sc_xfer *t)
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
			c->aux = 1;
			rc = xfer_post_read(x->fab, slot + off, v[i].len, g->desc,
			                    t->fi_addr, ic->raddr[i], ic->rkey[i],
			                    c);
			if (rc != 0) {
				ic->status = rc == KVF_EAGAIN ? KVF_EFABRIC : rc;
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
			c->aux = 1;
			rc = xfer_post_write(x->fab, slot_ptr(g, ic->slot) + off,
			                     len, g->desc, t->fi_addr, ic->raddr[i],
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

static int send_side(struct sc_xfers *x)
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
			size_t len = offsetof(struct sc_chunk_msg, pieces) +
			             ic->npieces * sizeof(struct sc_chunk_piece);
			ic->msg_ctx.owner = ic;
			ic->msg_ctx.kind = CTX_GPU;
			ic->msg_ctx.aux = 2;
			rc = xfer_post_send(x->fab, &ic->msg, len, ic->t->fi_addr,
			                    &ic->msg_ctx);
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

/* ---- staged: receive side ---------------------------------------------- */

static void tchunk_free(struct sc_xfers *x, struct tchunk *tc)
{
	struct sc_gpu *g = x->gpu;
	if (tc->batch)
		xfer_cuda_batch_free(g->cp, tc->batch);
	if (tc->slot >= 0)
		g->recv_free[g->nrecv_free++] = tc->slot;
	for (uint32_t i = 0; i < tc->nregions; i++)
		sc_region_rele(tc->regions[i]);
	if (tc->s)
		sc_session_rele(tc->s);
	g->busy--;
	free(tc);
}

static void tchunk_error(struct tchunk *tc, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tchunk_error(struct tchunk *tc, int status, const char *fmt, ...)
{
	va_list ap;
	if (tc->status)
		return;
	tc->status = status;
	va_start(ap, fmt);
	vsnprintf(tc->why, sizeof tc->why, fmt, ap);
	va_end(ap);
	sc_info("staged chunk from a peer refused: %s", tc->why);
	tc->state = TC_REPLY;
}

/* Check the pieces against the target session's regions (bounds first:
 * nothing is read into a slot that cannot be scattered). */
static void tchunk_check(struct sc_xfers *x, struct tchunk *tc)
{
	struct sc_registry *reg = &x->reg;
	const struct sc_chunk_msg *m = &tc->msg;
	uint64_t sum = 0;

	pthread_mutex_lock(&reg->lock);
	tc->s = sc_idmap_get(&reg->sessions, m->target_session);
	if (tc->s)
		sc_session_hold(tc->s);
	for (uint32_t i = 0; tc->s && i < m->npieces; i++) {
		const struct sc_chunk_piece *p = &m->pieces[i];
		struct sc_region *r = sc_idmap_get(&reg->regions, p->region);
		bool have = false;
		if (!r || r->session_id != tc->s->id) {
			pthread_mutex_unlock(&reg->lock);
			tchunk_error(tc, KVF_ENOENT, "region %u is not the "
			             "target engine's", p->region);
			return;
		}
		if (p->off > r->len || p->len > r->len - p->off) {
			pthread_mutex_unlock(&reg->lock);
			tchunk_error(tc, KVF_ERANGE, "piece %u: region %u offset "
			             "%llu + %u is outside its %llu bytes", i,
			             p->region, (unsigned long long)p->off, p->len,
			             (unsigned long long)r->len);
			return;
		}
		for (uint32_t k = 0; k < tc->nregions && !have; k++)
			have = tc->regions[k] == r;
		if (!have) {
			sc_region_hold(r);
			tc->regions[tc->nregions++] = r;
		}
		sum += p->len;
	}
	pthread_mutex_unlock(&reg->lock);
	if (!tc->s)
		tchunk_error(tc, KVF_ECLOSED, "target session %llu is gone",
		             (unsigned long long)m->target_session);
	else if (sum != m->len || m->len > SLOT_BYTES)
		tchunk_error(tc, KVF_EPROTO, "chunk of %llu bytes whose pieces "
		             "add up to %llu", (unsigned long long)m->len,
		             (unsigned long long)sum);
}

void sc_gpu_on_msg(struct sc_xfers *x, const void *data, size_t len)
{
	struct sc_gpu *g = x->gpu;
	uint32_t magic;

	if (len < sizeof magic)
		return;
	memcpy(&magic, data, sizeof magic);
	if (magic == SC_DONE_MAGIC && len == sizeof(struct sc_done_msg) && g) {
		const struct sc_done_msg *dm = data;
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
		return;
	}
	if (!g) {
		sc_warn("fabric: message (%zu bytes) for the GPU path, which is "
		        "not running, dropped", len);
		return;
	}
	if (magic != SC_CHUNK_MAGIC || len < offsetof(struct sc_chunk_msg,
	                                              pieces)) {
		sc_warn("fabric: unknown message (%zu bytes) dropped", len);
		return;
	}
	const struct sc_chunk_msg *m = data;
	struct tchunk *tc;
	if (m->npieces > SC_CHUNK_PIECES ||
	    len != offsetof(struct sc_chunk_msg, pieces) +
	                   m->npieces * sizeof(struct sc_chunk_piece)) {
		sc_warn("fabric: malformed chunk message (%zu bytes) dropped",
		        len);
		return;
	}
	if (!(tc = calloc(1, sizeof *tc)))
		return;
	memcpy(&tc->msg, m, len);
	tc->slot = -1;
	/* The sender's address: inserted when it handshaked with us. */
	pthread_mutex_lock(&x->reg.lock);
	uintptr_t a = (uintptr_t)sc_idmap_get(&x->reg.fabaddrs, m->src_key);
	pthread_mutex_unlock(&x->reg.lock);
	if (!a) {
		/* Without its address we cannot even answer: drop; its
		 * transfer ends at its deadline. */
		sc_warn("fabric: chunk from a sidecar that never handshaked "
		        "with us dropped");
		free(tc);
		return;
	}
	tc->fi_addr = a - 1;
	g->busy++;
	if (!g->cu) {
		tchunk_error(tc, KVF_ENOTSUP, "no CUDA on the target sidecar");
	} else if (m->target_epoch != x->d->epoch) {
		tchunk_error(tc, KVF_EPEER, "chunk for an earlier run of this "
		             "sidecar");
	} else {
		tchunk_check(x, tc);
	}
	if (g->tq_tail)
		g->tq_tail->next = tc;
	else
		g->tq_head = tc;
	g->tq_tail = tc;
}

static int recv_side(struct sc_xfers *x)
{
	struct sc_gpu *g = x->gpu;
	struct tchunk **pp = &g->tq_head, *prev = NULL;
	int work = 0, rc;

	while (*pp) {
		struct tchunk *tc = *pp;
		if (tc->state == TC_QUEUED && g->nrecv_free) {
			tc->slot = g->recv_free[--g->nrecv_free];
			tc->ctx.owner = tc;
			tc->ctx.kind = CTX_GPU;
			tc->ctx.aux = 3;
			rc = xfer_post_read(x->fab, slot_ptr(g, (uint32_t)tc->slot),
			                    tc->msg.len, g->desc, tc->fi_addr,
			                    tc->msg.src_addr, tc->msg.src_rkey,
			                    &tc->ctx);
			if (rc == KVF_EAGAIN) {
				g->recv_free[g->nrecv_free++] = tc->slot;
				tc->slot = -1;
			} else if (rc != 0) {
				tchunk_error(tc, KVF_EFABRIC, "reading the chunk "
				             "failed to post");
			} else {
				tc->state = TC_READ;
			}
			work++;
		}
		if (tc->state == TC_SCATTER) {
			rc = xfer_cuda_batch_test(tc->batch);
			if (rc != KVF_EAGAIN) {
				work++;
				if (rc != 0)
					tchunk_error(tc, KVF_ECUDA, "host-to-device "
					             "copy failed");
				tc->state = TC_REPLY;
			}
		}
		if (tc->state == TC_REPLY) {
			struct sc_done_msg *dm = &tc->reply;
			memset(dm, 0, sizeof *dm);
			dm->magic = SC_DONE_MAGIC;
			dm->status = tc->status;
			dm->token = tc->msg.token;
			snprintf(dm->why, sizeof dm->why, "%s", tc->why);
			tc->reply_ctx.owner = tc;
			tc->reply_ctx.kind = CTX_GPU;
			tc->reply_ctx.aux = 4;
			rc = xfer_post_send(x->fab, dm, sizeof *dm, tc->fi_addr,
			                    &tc->reply_ctx);
			if (rc != KVF_EAGAIN) {
				work++;
				tc->state = TC_SENT;
				if (rc != 0) {
					/* Unreachable sender: nothing to wait for. */
					*pp = tc->next;
					if (g->tq_tail == tc)
						g->tq_tail = prev;
					tchunk_free(x, tc);
					continue;
				}
			}
		}
		prev = tc;
		pp = &tc->next;
	}
	return work;
}

/* The chunk is in the receive slot: scatter it into GPU (or host) memory. */
static void tchunk_scatter(struct sc_xfers *x, struct tchunk *tc)
{
	struct sc_gpu *g = x->gpu;
	struct xfer_cuda_copy v[SC_CHUNK_PIECES];
	uint8_t *slot = slot_ptr(g, (uint32_t)tc->slot);
	uint64_t pos = 0;
	uint32_t n = 0;
	int dev = -1, rc;

	pthread_mutex_lock(&x->reg.lock);
	for (uint32_t i = 0; i < tc->msg.npieces; i++) {
		const struct sc_chunk_piece *p = &tc->msg.pieces[i];
		struct sc_region *r = NULL;
		for (uint32_t k = 0; k < tc->nregions; k++)
			if (tc->regions[k]->id == p->region)
				r = tc->regions[k];
		if (r->kind == XFER_MEM_HOST) {
			memcpy(r->base + p->off, slot + pos, p->len);
		} else {
			v[n].dst = r->base + p->off;
			v[n].src = slot + pos;
			v[n].len = p->len;
			dev = r->cuda_device;
			n++;
		}
		pos += p->len;
	}
	pthread_mutex_unlock(&x->reg.lock);
	if (!n) {
		tc->state = TC_REPLY;
		return;
	}
	rc = xfer_cuda_copy_start(g->cp, dev < 0 ? 0 : dev, XFER_CUDA_H2D, v, n,
	                          NULL, &tc->batch);
	if (rc != 0)
		tchunk_error(tc, KVF_ECUDA, "host-to-device copy could not start");
	else
		tc->state = TC_SCATTER;
}

void sc_gpu_on_comp(struct sc_xfers *x, const struct xfer_comp *c)
{
	struct sc_gpu *g = x->gpu;

	if (c->ctx->aux == 4) {
		/* The DONE left: the receive chunk is over. */
		struct tchunk *tc = c->ctx->owner, **pp = &g->tq_head;
		struct tchunk *prev = NULL;
		while (*pp && *pp != tc) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		if (*pp) {
			*pp = tc->next;
			if (g->tq_tail == tc)
				g->tq_tail = prev;
		}
		tchunk_free(x, tc);
		return;
	}
	if (c->ctx->aux == 3) {
		struct tchunk *tc = c->ctx->owner;
		if (c->status)
			tchunk_error(tc, KVF_EFABRIC, "reading the chunk failed: "
			             "%.60s", c->errstr);
		else
			tchunk_scatter(x, tc);
		return;
	}
	struct ichunk *ic = c->ctx->owner;
	if (c->status && !ic->status) {
		ic->status = c->ctx->aux == 2 ? KVF_EPEER : KVF_EFABRIC;
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
		if (xfer_cuda_copy_start(g->cp, ic->t->gpu->dev, XFER_CUDA_H2D,
		                         v, ic->npieces, NULL, &ic->batch) != 0) {
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

/* ---- the loop ------------------------------------------------------------ */

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
			while (chunk_start(x, t))
				work++;
	}
	work += send_side(x);
	work += recv_side(x);
	return work;
}

bool sc_gpu_busy(struct sc_xfers *x)
{
	return x->gpu && x->gpu->busy;
}
