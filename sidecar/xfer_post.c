/*
 * sidecar/xfer_post.c - posting the planned RDMA operations of host
 * transfers, oldest transfer first, while fabric contexts and the rails'
 * queue slots last. An operation goes to rail 0's endpoint from here, or
 * to the thread of the rail sidecar/xfer_railpick.c chose; a full rail 0
 * queue ends the round, so that completions are reaped first. GPU
 * transfers are moved by sidecar/gpu_path.c instead.
 */
#include "sidecar/xfers_int.h"

#include "xfer/fabric.h"

int sc_post_some(struct sc_xfers *x)
{
	int posted = 0;

	for (struct sc_xfer *t = x->active, *next; t; t = next) {
		next = t->next;
		if (t->gpu && t->next_post < t->plan.nops)
			continue; /* sidecar/gpu_path.c moves it */
		if (t->next_post == t->plan.nops && t->inflight == 0 &&
		    sc_xfer_tail_pending(x, t)) {
			sc_xfer_advance(x, t); /* a notify that hit EAGAIN */
			continue;
		}
		if (t->inlined && t->status == 0 &&
		    t->next_post < t->plan.nops) {
			/* One message instead of operations and a tail. */
			if (sc_inline_post(x, t) == KVF_EAGAIN)
				return posted;
			posted++;
			continue;
		}
		while (t->status == 0 && t->next_post < t->plan.nops &&
		       x->nfree) {
			struct sc_op *op = &t->plan.ops[t->next_post];
			uint32_t ci = x->free_ctx[x->nfree - 1];
			struct xfer_ctx *ctx = &x->ctxs[ci];
			int rail, rc;

			if (t->striped)
				rail = sc_least_busy_rail(x, t->rail_mask);
			else
				rail = x->rail_ops[t->rail] < x->rail_cap[t->rail]
					? (int)t->rail : -1;
			if (rail < 0)
				break; /* its rails are full: others may go */
			ctx->owner = t;
			ctx->kind = CTX_OP;
			ctx->aux = ci;
			/* The wake-up goes ahead of the operations: once they
			 * fill the peer's queue nothing more gets in until it
			 * polls (shm). */
			sc_wake_peer(x, t);
			if (rail > 0)
				rc = sc_xfer_post_on_rail(x, t, op,
				                          (uint32_t)rail, ctx);
			else if (t->op == KVF_WRITE)
				rc = xfer_post_write(x->fab, op->local, op->len,
				                     op->desc, t->fi_addr, op->raddr,
				                     op->rkey, ctx);
			else
				rc = xfer_post_read(x->fab, op->local, op->len,
				                    op->desc, t->fi_addr, op->raddr,
				                    op->rkey, ctx);
			if (rc == KVF_EAGAIN && rail == 0)
				return posted; /* the queue is full: reap first */
			if (rc == KVF_EAGAIN)
				break;
			if (rc != 0) {
				sc_xfer_fail(t, KVF_EFABRIC,
				     "operation %u of %u (%llu bytes) to peer %u: "
				     "post failed",
				     t->next_post, t->plan.nops,
				     (unsigned long long)op->len, t->peer_id);
				sc_xfer_advance(x, t);
				break;
			}
			x->nfree--;
			x->ctx_rail[ci] = (uint8_t)rail;
			x->ctx_len[ci] = op->len;
			x->rail_ops[rail]++;
			if (t->assigned)
				t->assigned -= op->len;
			else
				x->rail_busy[rail] += op->len;
			atomic_fetch_add_explicit(&x->rail_bytes[rail], op->len,
			                          memory_order_relaxed);
			t->rails_used |= 1u << rail;
			t->next_post++;
			t->inflight++;
			posted++;
			/* In flight: the tail is posted, nothing is freed. */
			if (t->next_post == t->plan.nops &&
			    sc_xfer_tail_early(x, t))
				sc_xfer_advance(x, t);
		}
		if (!x->nfree)
			break;
	}
	return posted;
}
