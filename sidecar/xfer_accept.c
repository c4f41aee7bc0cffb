/*
 * sidecar/xfer_accept.c - taking work off an engine's submission ring. A
 * transfer record is parsed, checked against the progress thread's copy
 * of the registry (sidecar/xfer_view.c: no lock) and planned, given its
 * rails (sidecar/xfer_railpick.c), and
 * queued on the active list, oldest first; or it is refused with the one
 * completion that says why. A cancel record stops a transfer's posting;
 * storage records go to sidecar/store_req.c. Each turn takes at most
 * RING_BUDGET records off a session's ring.
 */
#include "sidecar/xfers_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/wire.h"
#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/plan.h"
#include "sidecar/registry.h"
#include "sidecar/store_ops.h"
#include "xfer/fabric.h"

struct plan_arg {
	struct sc_xfers *x;
	struct sc_session *s;
	const struct sc_peer *peer; /* the view's copy */
};

static struct sc_region *lookup_local(void *arg, uint32_t id)
{
	struct plan_arg *a = arg;
	return sc_view_region(a->x, a->s->id, id);
}

static const struct sc_remote_region *lookup_remote(void *arg, uint32_t id)
{
	struct plan_arg *a = arg;
	for (uint32_t i = 0; i < a->peer->nregions; i++)
		if (a->peer->regions[i].id == id)
			return &a->peer->regions[i];
	return NULL;
}

/* End a transfer that was never started: report it and free it, with the
 * region references its plan holds. */
static void refuse(struct sc_xfers *x, struct sc_session *s,
                   struct sc_xfer *t, int rc, const char *err)
{
	struct sc_daemon *d = x->d;

	sc_gpu_xfer_free(x, t);
	sc_xfer_release_regions(&t->plan);
	sc_plan_fini(&t->plan);
	sc_info("xfer %llu of %s (peer %u) refused: %s",
	        (unsigned long long)t->xfer_id, s->name, t->peer_id, err);
	sc_comp_report(s, t->xfer_id, rc, 0, err);
	atomic_fetch_add(&d->counters.xfers_failed, 1);
	sc_stats_xfer_done(&d->stats, t->op, 0, 0, rc);
	free(t->rkeys);
	free(t);
}

static void accept_xfer(struct sc_xfers *x, struct sess_slot *sl,
                        const void *rec, uint32_t len)
{
	struct sc_session *s = sl->s;
	struct sc_daemon *d = x->d;
	struct ipc_xfer_view v;
	struct sc_xfer *t;
	char err[IPC_MSG_MAX];
	int rc;

	rc = ipc_wire_parse_xfer(rec, len, &v, err, sizeof err);
	if (rc != 0) {
		const struct ipc_sub_xfer *h = rec;
		sc_warn("engine %s: malformed transfer record: %s", s->name, err);
		if (len >= sizeof(uint64_t))
			sc_comp_report(s, h->xfer_id, rc, 0, err);
		atomic_fetch_add(&d->counters.xfers_failed, 1);
		return;
	}
	atomic_fetch_add(&d->counters.xfers_total, 1);
	if (atomic_load(&d->draining)) {
		sc_info("xfer %llu of %s (peer %u) refused: the sidecar is "
		        "draining", (unsigned long long)v.hdr->xfer_id, s->name,
		        v.hdr->peer);
		sc_comp_report(s, v.hdr->xfer_id, KVF_EBUSY, 0,
		               "sidecar is draining: new transfers are "
		               "refused");
		atomic_fetch_add(&d->counters.xfers_failed, 1);
		sc_stats_xfer_done(&d->stats, v.hdr->op, 0, 0, KVF_EBUSY);
		return;
	}
	if (sc_idmap_get(&sl->xfers, v.hdr->xfer_id)) {
		snprintf(err, sizeof err, "transfer id %llu is already in flight",
		         (unsigned long long)v.hdr->xfer_id);
		sc_comp_report(s, v.hdr->xfer_id, KVF_EINVAL, 0, err);
		atomic_fetch_add(&d->counters.xfers_failed, 1);
		return;
	}
	if (!(t = calloc(1, sizeof *t))) {
		sc_comp_report(s, v.hdr->xfer_id, KVF_ENOMEM, 0,
		               "sidecar out of memory");
		atomic_fetch_add(&d->counters.xfers_failed, 1);
		return;
	}
	t->xfer_id = v.hdr->xfer_id;
	t->op = v.hdr->op;
	t->peer_id = v.hdr->peer;
	t->tag_len = v.hdr->tag_len;
	memcpy(t->tag, v.tag, t->tag_len);
	t->start_ns = sc_now_ns();
	t->deadline_ns =
		t->start_ns + (uint64_t)(v.hdr->timeout_ms ? v.hdr->timeout_ms
		                                           : d->cfg.xfer_timeout_ms) *
		                      1000000ull;
	sc_plan_init(&t->plan);

	sc_view_sync(x);
	struct sc_view_peer *vp = sc_view_peer(x, t->peer_id);
	const struct sc_peer *peer = vp ? &vp->snap : NULL;
	if (!peer) {
		rc = KVF_ENOENT;
		snprintf(err, sizeof err, "peer %u is not resolved (call "
		         "kvf_resolve_peer first)", t->peer_id);
	} else if (!atomic_load(&vp->shared->healthy)) {
		rc = KVF_EPEER;
		snprintf(err, sizeof err, "peer %u (engine %s at %.40s) is not "
		         "answering heartbeats", t->peer_id, peer->engine,
		         peer->url);
	} else {
		struct plan_arg a = {x, s, peer};
		struct sc_plan_env env = {lookup_local, lookup_remote, &a,
		                          x->max_op};
		/* Several rails: pieces small enough to spread. */
		if (x->nrails > 1 && peer->nrails > 1 &&
		    x->stripe_chunk < env.max_op)
			env.max_op = x->stripe_chunk;
		rc = sc_plan_build(&t->plan, &env, &v, err, sizeof err);
		if (rc == 0)
			rc = sc_xfer_rails_of(x, t, peer, err, sizeof err);
		if (rc == 0)
			t->inlined = sc_inline_fits(x, t, peer);
		if (rc == 0) {
			for (uint32_t i = 0; i < t->plan.nregions; i++)
				sc_region_hold(t->plan.regions[i]);
			for (uint32_t i = 0; i < t->plan.nmore; i++)
				sc_region_hold(t->plan.more_regions[i]);
			t->peer = vp->shared;
			t->same_host = peer->same_host;
			t->fi_addr = peer->fi_addr;
			t->remote_session = peer->remote_session;
			t->remote_epoch = peer->epoch;
		}
	}

	if (rc != 0) {
		/* Planning failed: no region references were taken. */
		t->plan.nregions = t->plan.nmore = 0;
		refuse(x, s, t, rc, err);
		return;
	}
	/* GPU memory: same-host copies, or staged through host slots unless
	 * the provider registers CUDA memory itself (GPUDirect). */
	if (rc == 0 && t->plan.any_cuda &&
	    (t->same_host || !xfer_fabric_info(x->fab)->hmem_cuda)) {
		rc = sc_gpu_accept(x, t, v.hdr->has_event ? v.hdr->cuda_event
		                                          : NULL);
		if (rc != 0)
			snprintf(err, sizeof err, "%s", t->msg);
	} else if (rc == 0 && v.hdr->has_event) {
		rc = KVF_ENOTSUP;
		snprintf(err, sizeof err, "a CUDA event only orders transfers "
		         "of GPU memory");
	}
	if (rc != 0) {
		refuse(x, s, t, rc, err);
		return;
	}
	if (!t->inlined)
		sc_xfer_pick_rails(x, t);
	sc_session_hold(s);
	t->sess = s;
	s->inflight++;
	atomic_fetch_add(&d->counters.xfers_in_flight, 1);
	sc_idmap_put(&sl->xfers, t->xfer_id, t);
	/* Oldest first, so posting serves transfers in submission order. */
	t->prev = x->active_tail;
	if (x->active_tail)
		x->active_tail->next = t;
	else
		x->active = t;
	x->active_tail = t;
}

static void cancel_xfer(struct sc_xfers *x, struct sess_slot *sl,
                        const struct ipc_sub_cancel *c)
{
	struct sc_xfer *t = sc_idmap_get(&sl->xfers, c->xfer_id);
	if (!t)
		return; /* already finished: its completion went out */
	/* Every byte is written and the notification is on its way: the
	 * peer will see it, so the transfer completes rather than report a
	 * cancel the remote engine contradicts. */
	if (t->notify_sent)
		return;
	sc_xfer_fail(t, KVF_ECANCELED, "cancelled by the engine after %u of %u "
	     "operations", t->next_post, t->plan.nops);
	t->next_post = t->plan.nops;
	sc_xfer_advance(x, t);
}

int sc_drain_ring(struct sc_xfers *x, struct sess_slot *sl)
{
	struct sc_session *s = sl->s;
	uint32_t type, len;
	int n = 0;

	while (n < RING_BUDGET) {
		int rc = ipc_ring_pop(&s->sub, x->recbuf, REC_MAX, &type, &len);
		if (rc == KVF_EAGAIN)
			break;
		if (rc != 0) {
			sc_error("engine %s: submission ring corrupt; closing "
			         "the session", s->name);
			s->ring_broken = true;
			atomic_store(&s->closing, 1);
			break;
		}
		n++;
		if (type == IPC_SUB_XFER)
			accept_xfer(x, sl, x->recbuf, len);
		else if (type == IPC_SUB_STORE)
			sc_store_accept(x->d, s, x->recbuf, len);
		else if (type == IPC_SUB_CANCEL &&
		         len == sizeof(struct ipc_sub_cancel))
			cancel_xfer(x, sl, (const void *)x->recbuf);
		else
			sc_warn("engine %s: unknown ring record type %u (%u "
			        "bytes) ignored", s->name, type, len);
	}
	return n;
}
