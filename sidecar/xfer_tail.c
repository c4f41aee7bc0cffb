/*
 * sidecar/xfer_tail.c - the tail of a host transfer, what follows its
 * operations: the delivery checks (post_fence, post_rail_fences), the
 * notification to the target sidecar (post_notify), and finish, which
 * reports the transfer and frees it. sc_xfer_advance decides which of
 * these a transfer needs each time its in-flight count moves.
 *
 * Notification ordering on unordered fabrics (EFA's SRD): a transfer's
 * notification is sent to the target sidecar only after the completion of
 * every one of its writes has been reaped, and writes are posted with
 * FI_DELIVERY_COMPLETE where the provider offers it, so each completion
 * means the bytes are in the target's memory. The target then hands the
 * notification to its engine on receipt (deliver_notify in
 * sidecar/xfer_reap.c). We chose this over counting remote-CQ-data
 * completions on the target because it needs no receive buffers per
 * write, works for READ too (the notification follows the last read's
 * completion), and keeps the target passive.
 */
#include "sidecar/xfers_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/plan.h"
#include "sidecar/registry.h"
#include "xfer/fabric.h"

void sc_xfer_release_regions(struct sc_plan *p)
{
	for (uint32_t i = 0; i < p->nregions; i++)
		sc_region_rele(p->regions[i]);
	for (uint32_t i = 0; i < p->nmore; i++)
		sc_region_rele(p->more_regions[i]);
	p->nregions = p->nmore = 0;
}

/*
 * The transfer is over once nothing of it is in flight: report it (unless
 * a deadline or a dead peer reported it earlier) and free it. Until then a
 * reported transfer stays, holding its regions, so a late completion never
 * refers to freed memory.
 */
static void finish(struct sc_xfers *x, struct sc_xfer *t)
{
	struct sess_slot *sl = sc_slot_of(x, t->sess);

	sc_xfer_report_now(x, t);
	x->rail_busy[t->rail] -= t->assigned; /* never posted */
	if (sl)
		sc_idmap_del(&sl->xfers, t->xfer_id);
	t->sess->inflight--;
	if (t->prev)
		t->prev->next = t->next;
	else
		x->active = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		x->active_tail = t->prev;
	sc_gpu_xfer_free(x, t);
	sc_xfer_release_regions(&t->plan);
	sc_plan_fini(&t->plan);
	sc_session_rele(t->sess);
	free(t->rkeys);
	free(t);
}

static void post_notify(struct sc_xfers *x, struct sc_xfer *t)
{
	struct sc_notify_msg *m = &t->notify;
	size_t len = offsetof(struct sc_notify_msg, tag) + t->tag_len;
	int rc;

	memset(m, 0, offsetof(struct sc_notify_msg, tag));
	m->magic = SC_NOTIFY_MAGIC;
	m->version = SC_NOTIFY_VERSION;
	m->tag_len = t->tag_len;
	m->target_session = t->remote_session;
	m->target_epoch = t->remote_epoch;
	snprintf(m->src_engine, sizeof m->src_engine, "%s", t->sess->name);
	memcpy(m->tag, t->tag, t->tag_len);
	t->notify_ctx.owner = t;
	t->notify_ctx.kind = CTX_NOTIFY;
	rc = xfer_post_send(x->fab, m, len, t->fi_addr, &t->notify_ctx);
	if (rc == KVF_EAGAIN)
		return; /* retried on the next turn */
	t->notify_sent = true;
	if (rc != 0)
		sc_xfer_fail(t, KVF_EPEER, "notification to peer %u: post failed: %s",
		     t->peer_id, kvf_strerror(rc));
	else {
		t->inflight++;
		atomic_fetch_add_explicit(&x->d->stats.notifs_sent, 1,
		                          memory_order_relaxed);
	}
}

/*
 * Proof of delivery on ordered providers. Where writes go without
 * delivery-complete (tcp;ofi_rxm orders reads and sends after writes), a
 * write's completion only means the bytes left; they may sit in a socket
 * buffer of a hung peer. So a WRITE transfer ends with a one-byte RDMA
 * read of its last remote byte: the provider processes it after the writes
 * (FI_ORDER_RAW) and it cannot complete without the target, so its
 * completion proves every byte landed. The notification, ordered after the
 * writes too (FI_ORDER_SAW), goes out at the same time.
 */
static bool fence_base(struct sc_xfers *x, const struct sc_xfer *t)
{
	return t->op == KVF_WRITE && !t->inlined &&
	       xfer_fabric_info(x->fab)->ordered_saw &&
	       t->plan.nops && t->plan.ops[t->plan.nops - 1].rkind == 0 &&
	       x->fence_mr;
}

/* Rail 0's check: when rail 0 carried writes (or the GPU path, which
 * posts on rail 0 without recording it, did). */
static bool needs_fence(struct sc_xfers *x, const struct sc_xfer *t)
{
	return fence_base(x, t) &&
	       ((t->rails_used & 1u) || t->rails_used == 0);
}

/*
 * Multi-rail WRITEs on ordered providers: a rail's order holds only among
 * its own operations, so the notification (rail 0) could overtake bytes
 * still travelling on another rail. Each other rail that carried writes
 * gets its own one-byte read first; the notification waits for all of
 * them.
 */
static void post_rail_fences(struct sc_xfers *x, struct sc_xfer *t)
{
	const struct sc_op *op = &t->plan.ops[t->plan.nops - 1];

	while (t->rfence_todo && x->nfree) {
		uint32_t r = (uint32_t)__builtin_ctz(t->rfence_todo);
		uint32_t ci;
		struct xfer_ctx *ctx;
		struct sc_rail_op ro;

		if (x->rail_ops[r] >= x->rail_cap[r])
			return; /* retried on the next turn */
		ci = x->free_ctx[x->nfree - 1];
		ctx = &x->ctxs[ci];
		ctx->owner = t;
		ctx->kind = CTX_RFENCE;
		ctx->aux = ci;
		ro = (struct sc_rail_op){
			.ctx = ctx, .buf = x->fence_buf,
			.desc = xfer_mr_desc(x->rail_fence_mr[r]), .len = 1,
			.fi_addr = t->rail_fi[r],
			.raddr = op->raddr + op->len - 1,
			.rkey = sc_xfer_op_rkey(t, op, r), .read = true};
		if (sc_rail_post(x->rail_thr[r], &ro) != 0)
			return;
		x->nfree--;
		x->ctx_rail[ci] = (uint8_t)r;
		x->ctx_len[ci] = 0;
		x->rail_ops[r]++;
		x->rail_kick[r] = true;
		t->inflight++;
		t->rfence_todo &= ~(1u << r);
	}
}

static void post_fence(struct sc_xfers *x, struct sc_xfer *t)
{
	const struct sc_op *op = &t->plan.ops[t->plan.nops - 1];
	int rc;

	t->fence_ctx.owner = t;
	t->fence_ctx.kind = CTX_FENCE;
	rc = xfer_post_read(x->fab, x->fence_buf, 1, xfer_mr_desc(x->fence_mr),
	                    t->fi_addr, op->raddr + op->len - 1, op->rkey,
	                    &t->fence_ctx);
	if (rc == KVF_EAGAIN)
		return; /* retried on the next turn */
	t->fence_sent = true;
	if (rc != 0)
		sc_xfer_fail(t, KVF_EPEER, "delivery check to peer %u: post "
		             "failed: %s", t->peer_id, kvf_strerror(rc));
	else
		t->inflight++;
}

/* Something of the transfer's tail (delivery check, notification) is
 * still to be posted. */
bool sc_xfer_tail_pending(struct sc_xfers *x, const struct sc_xfer *t)
{
	return t->status == 0 && ((needs_fence(x, t) && !t->fence_sent) ||
	                           (t->tag_len && !t->notify_sent) ||
	                           t->rfence_todo ||
	                           (fence_base(x, t) && !t->rfence_init));
}

/*
 * On a provider that orders sends and reads after writes (FI_ORDER_SAW,
 * see needs_fence), a WRITE's tail need not wait for its writes'
 * completions: there they only say the bytes went into the connection
 * (writes skip delivery-complete), the provider delivers the notification
 * and serves the delivery check behind the writes anyway, and a write
 * that fails to go out fails what is queued behind it. So the tail goes
 * with the last write, which saves a completion round on the latency
 * path of small transfers.
 */
bool sc_xfer_tail_early(struct sc_xfers *x, const struct sc_xfer *t)
{
	/* Rail 0 only: another rail's writes are not ordered before a
	 * notification on rail 0 (see post_rail_fences). */
	return t->op == KVF_WRITE && !t->gpu &&
	       xfer_fabric_info(x->fab)->ordered_saw &&
	       (t->rails_used & ~1u) == 0;
}

/*
 * Decide what a transfer needs next once its in-flight count moved: more
 * operations, then (all of them done) its tail, then the end.
 */
void sc_xfer_advance(struct sc_xfers *x, struct sc_xfer *t)
{
	if (t->inflight && !sc_xfer_tail_early(x, t))
		return;
	if (t->status == 0 && t->next_post < t->plan.nops)
		return; /* more to post */
	if (t->status == 0 && fence_base(x, t) && !t->rfence_init) {
		t->rfence_todo = t->rails_used & ~1u;
		t->rfence_init = true;
	}
	if (t->status == 0 && t->rfence_todo) {
		post_rail_fences(x, t);
		return; /* the notification waits for every other rail */
	}
	/* The notification first: the target then hands it to its engine
	 * before it serves the delivery check. */
	if (t->status == 0 && t->tag_len && !t->notify_sent)
		post_notify(x, t);
	if (t->status == 0 && needs_fence(x, t) && !t->fence_sent)
		post_fence(x, t);
	if (t->inflight || sc_xfer_tail_pending(x, t))
		return; /* the tail is in flight, or hit EAGAIN */
	finish(x, t);
}
