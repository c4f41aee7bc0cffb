/*
 * sidecar/gpu_target.c - the staged path on the side that receives: a
 * peer's CHUNK message names a chunk waiting in one of its send slots and
 * where each piece goes in our engine's memory. Each becomes a struct
 * tchunk on a queue, oldest first: checked against the target session's
 * regions (bounds first, so nothing is read that cannot be placed), given
 * a receive slot when one is free (the others wait: this is the credit
 * that keeps senders from overrunning us), RDMA-read into it, copied
 * host-to-device (or memcpy'd into host regions), and answered with a DONE
 * carrying the status and, on error, the reason. It is freed when the
 * DONE's send completes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/gpu_path_int.h"
#include "sidecar/log.h"
#include "xfer/cuda.h"

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
	const struct sc_chunk_msg *m = &tc->msg;
	uint64_t sum = 0;

	sc_view_sync(x);
	tc->s = sc_view_session(x, m->target_session);
	if (tc->s)
		sc_session_hold(tc->s);
	for (uint32_t i = 0; tc->s && i < m->npieces; i++) {
		const struct sc_chunk_piece *p = &m->pieces[i];
		struct sc_region *r = sc_view_region(x, tc->s->id, p->region);
		bool have = false;
		if (!r) {
			tchunk_error(tc, KVF_ENOENT, "region %u is not the "
			             "target engine's", p->region);
			return;
		}
		if (p->off > r->len || p->len > r->len - p->off) {
			tchunk_error(tc, KVF_ERANGE, "piece %u: region %u "
			             "offset %llu + %u is outside its %llu "
			             "bytes", i, p->region,
			             (unsigned long long)p->off, p->len,
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
	if (!tc->s)
		tchunk_error(tc, KVF_ECLOSED, "target session %llu is gone",
		             (unsigned long long)m->target_session);
	else if (sum != m->len || m->len > SLOT_BYTES)
		tchunk_error(tc, KVF_EPROTO, "chunk of %llu bytes whose "
		             "pieces add up to %llu",
		             (unsigned long long)m->len,
		             (unsigned long long)sum);
}

/* A CHUNK message from a peer: queue it for a receive slot or, refused,
 * for its DONE with the reason. A malformed one, or one from a sidecar
 * whose address we lack, is dropped. */
void sc_gpu_on_chunk(struct sc_xfers *x, const void *data, size_t len)
{
	struct sc_gpu *g = x->gpu;
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
	sc_view_sync(x);
	uintptr_t a = (uintptr_t)sc_view_fabaddr(x, m->src_key);
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

int sc_gpu_recv_side(struct sc_xfers *x)
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
			tc->ctx.aux = GPU_AUX_PULL;
			rc = xfer_post_read(x->fab,
			                    slot_ptr(g, (uint32_t)tc->slot),
			                    tc->msg.len, g->desc, tc->fi_addr,
			                    tc->msg.src_addr, tc->msg.src_rkey,
			                    &tc->ctx);
			if (rc == KVF_EAGAIN) {
				g->recv_free[g->nrecv_free++] = tc->slot;
				tc->slot = -1;
			} else if (rc != 0) {
				tchunk_error(tc, KVF_EFABRIC, "reading the "
				             "chunk failed to post");
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
					tchunk_error(tc, KVF_ECUDA,
					             "host-to-device copy "
					             "failed");
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
			tc->reply_ctx.aux = GPU_AUX_DONE;
			rc = xfer_post_send(x->fab, dm, sizeof *dm,
			                    tc->fi_addr, &tc->reply_ctx);
			if (rc != KVF_EAGAIN) {
				work++;
				tc->state = TC_SENT;
				if (rc != 0) {
					/* Unreachable sender: nothing to
					 * wait for. */
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

	/* tc holds the regions: no lookup, no lock. */
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
	if (!n) {
		tc->state = TC_REPLY;
		return;
	}
	rc = xfer_cuda_copy_start(g->cp, dev < 0 ? 0 : dev, XFER_CUDA_H2D, v,
	                          n, NULL, &tc->batch);
	if (rc != 0)
		tchunk_error(tc, KVF_ECUDA,
		             "host-to-device copy could not start");
	else
		tc->state = TC_SCATTER;
}

void sc_gpu_recv_on_comp(struct sc_xfers *x, const struct xfer_comp *c)
{
	struct sc_gpu *g = x->gpu;

	if (c->ctx->aux == GPU_AUX_DONE) {
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
	if (c->ctx->aux == GPU_AUX_PULL) {
		struct tchunk *tc = c->ctx->owner;
		if (c->status)
			tchunk_error(tc, KVF_EFABRIC,
			             "reading the chunk failed: %.60s",
			             c->errstr);
		else
			tchunk_scatter(x, tc);
	}
}
