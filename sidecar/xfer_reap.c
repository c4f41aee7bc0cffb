/*
 * sidecar/xfer_reap.c - the fabric's completions: those of rail 0, read
 * from its completion queue here, and those the other rails' threads hand
 * back. An operation's completion frees its context and moves its
 * transfer on (sc_xfer_advance); a failed one fails the transfer.
 * Messages received are the notifications of other sidecars
 * (deliver_notify), which go to the target engine's completion ring, or
 * messages of the GPU path (sidecar/gpu_path.c).
 */
#include "sidecar/xfers_int.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "ipc/wire.h"
#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "xfer/fabric.h"

static void deliver_notify(struct sc_xfers *x, const void *data, size_t len)
{
	const struct sc_notify_msg *m = data;
	struct sc_session *s;
	size_t hdr = offsetof(struct sc_notify_msg, tag);

	if (len >= sizeof m->magic && m->magic == SC_INLINE_MAGIC) {
		sc_inline_deliver(x, data, len);
		return;
	}
	if (len >= sizeof m->magic && m->magic == SC_INLINE_PART_MAGIC) {
		sc_inline_on_part(x, data, len);
		return;
	}
	if (len >= sizeof m->magic && m->magic == SC_INLINE_ACK_MAGIC) {
		sc_inline_on_ack(x, data, len);
		return;
	}
	if (len == sizeof(struct sc_wake_msg) && m->magic == SC_WAKE_MAGIC) {
		sc_wake_received(x);
		return;
	}
	if (len >= sizeof m->magic && m->magic == SC_GONE_MAGIC) {
		sc_gone_received(x, data, len);
		return;
	}
	if (len >= sizeof m->magic && m->magic != SC_NOTIFY_MAGIC) {
		sc_gpu_on_msg(x, data, len);
		return;
	}
	if (len < hdr || m->magic != SC_NOTIFY_MAGIC ||
	    m->version != SC_NOTIFY_VERSION || m->tag_len > KVF_MAX_TAG ||
	    len != hdr + m->tag_len) {
		sc_warn("fabric: malformed notification (%zu bytes) dropped",
		        len);
		return;
	}
	if (m->target_epoch != x->d->epoch) {
		sc_info("fabric: notification for an earlier run of this "
		        "sidecar (epoch %llu) dropped",
		        (unsigned long long)m->target_epoch);
		return;
	}
	sc_view_sync(x);
	s = sc_view_session(x, m->target_session);
	if (s)
		sc_session_hold(s);
	if (m->tag_len == 0) {
		/* A delivery proof only: the sender's completion is its use. */
		if (s)
			sc_session_rele(s);
		return;
	}
	if (!s) {
		sc_info("fabric: notification from %.*s for session %llu, "
		        "which is gone, dropped",
		        KVF_MAX_NAME, m->src_engine,
		        (unsigned long long)m->target_session);
		return;
	}
	sc_xfers_notify_engine(x, s, m->src_engine, m->tag, m->tag_len);
	sc_session_rele(s);
}

void sc_xfers_notify_engine(struct sc_xfers *x, struct sc_session *s,
                            const char *src_engine, const uint8_t *tag,
                            uint16_t tag_len)
{
	struct ipc_comp_notif n;

	memset(&n, 0, sizeof n);
	n.tag_len = tag_len;
	memcpy(n.peer_engine, src_engine, KVF_MAX_NAME);
	n.peer_engine[KVF_MAX_NAME - 1] = 0;
	memcpy(n.tag, tag, tag_len);
	sc_comp_put(s, IPC_COMP_NOTIF, &n, sizeof n);
	atomic_fetch_add_explicit(&x->d->stats.notifs_received, 1,
	                          memory_order_relaxed);
}

/* One completion of an operation, of rail 0 or handed back by a rail
 * thread. */
static void on_comp(struct sc_xfers *x, const struct xfer_comp *c)
{
	struct sc_xfer *t = c->ctx->owner;
	uint32_t kind = c->ctx->kind, rail = 0;

	if (kind == CTX_CTL)
		return; /* an answer or a wake-up of ours left */
	if (kind == CTX_GPU) {
		sc_gpu_on_comp(x, (struct xfer_comp *)c);
		return;
	}
	if (kind == CTX_OP || kind == CTX_RFENCE) {
		uint32_t ci = c->ctx->aux;
		rail = x->ctx_rail[ci];
		x->rail_ops[rail]--;
		x->rail_busy[rail] -= x->ctx_len[ci];
		x->free_ctx[x->nfree++] = ci;
	}
	t->inflight--;
	/* Operations still at the peer: it must keep polling for them. */
	if (t->inflight && c->status == 0 && kind != CTX_NOTIFY)
		sc_wake_peer(x, t);
	if ((kind == CTX_FENCE || kind == CTX_RFENCE) && c->status != 0) {
		sc_xfer_fail(t, KVF_EPEER, "peer %u did not confirm delivery "
		             "on rail %u: %s", t->peer_id, rail, c->errstr);
		sc_xfer_advance(x, t);
		return;
	}
	if (c->status != 0) {
		if (kind == CTX_NOTIFY && t->inlined)
			sc_inline_forget_ack(t); /* it never arrived */
		if (kind == CTX_NOTIFY)
			sc_xfer_fail(t, KVF_EPEER,
			             "notification to peer %u failed: %s",
			             t->peer_id, c->errstr);
		else
			sc_xfer_fail(t, c->status == KVF_ECANCELED ? KVF_EPEER
			                                           : c->status,
			             "%s to peer %u failed on rail %u: %s",
			             t->op == KVF_WRITE ? "write" : "read",
			             t->peer_id, rail, c->errstr);
		t->next_post = t->plan.nops;
	}
	sc_xfer_advance(x, t);
}

int sc_poll_fabric(struct sc_xfers *x)
{
	struct xfer_comp comps[COMP_BATCH];
	int n = 0, total = 0;

	do {
		if (xfer_fabric_poll(x->fab, comps, COMP_BATCH, &n) != 0)
			return total;
		for (int i = 0; i < n; i++) {
			struct xfer_comp *c = &comps[i];
			if (c->type == XFER_COMP_RECV) {
				if (c->status == 0)
					deliver_notify(x, c->data, c->len);
				xfer_fabric_repost(x->fab, c->recv_slot);
				continue;
			}
			on_comp(x, c);
		}
		total += n;
	} while (n == COMP_BATCH);
	for (uint32_t r = 1; r < x->nrails; r++) {
		if (!x->rail_ops[r])
			continue;
		do {
			n = sc_rail_reap(x->rail_thr[r], comps, COMP_BATCH);
			for (int i = 0; i < n; i++)
				on_comp(x, &comps[i]);
			total += n;
		} while (n == COMP_BATCH);
	}
	return total;
}
