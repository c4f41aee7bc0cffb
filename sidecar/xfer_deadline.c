/*
 * sidecar/xfer_deadline.c - the progress thread's checks of time and
 * peers, made about once a millisecond: a transfer past its deadline, or
 * one whose peer the heartbeat thread declared dead, is reported to its
 * engine now, and freed once the provider has returned its operations.
 */
#include "sidecar/xfers_int.h"

#include <pthread.h>

#include "sidecar/registry.h"

/*
 * A transfer past its deadline stops posting and is reported to the engine
 * at once with KVF_ETIMEDOUT (or the error it already had), even when
 * operations are still in flight to a peer that stopped answering; the
 * transfer itself stays, holding its regions registered, until the
 * provider returns those operations, so no completion ever refers to freed
 * memory. The engine must treat the bytes the transfer was writing as
 * undefined (kvferry.h).
 */
static void expire(struct sc_xfers *x, struct sc_xfer *t)
{
	t->next_post = t->plan.nops;
	sc_inline_forget_ack(t);
	if (t->inflight)
		sc_xfer_report_now(x, t);
	sc_xfer_advance(x, t);
}

void sc_check_deadlines(struct sc_xfers *x, uint64_t now)
{
	for (struct sc_xfer *t = x->active, *next; t; t = next) {
		next = t->next;
		/* Reported already (a dead peer, a closed session) and
		 * still waiting for an inline write's answer: not forever. */
		if (t->reported && t->ack_wait &&
		    now >= t->deadline_ns + NOTIFY_GRACE_NS) {
			sc_inline_forget_ack(t);
			sc_xfer_advance(x, t);
			continue;
		}
		if (now < t->deadline_ns || t->reported)
			continue;
		/* The notification is out: the target may already have
		 * told its engine, so a timeout now would contradict it.
		 * Give its confirmation a grace period of its own. */
		if (t->status == 0 && t->notify_sent &&
		    now < t->deadline_ns + NOTIFY_GRACE_NS)
			continue;
		if (t->status == 0 && t->notify_sent) {
			sc_xfer_fail(t, KVF_EPEER,
			             "notification sent to peer %u but not "
			             "confirmed: its engine may or may not have it",
			             t->peer_id);
			expire(x, t);
			continue;
		}
		if (t->status == 0)
			sc_xfer_fail(t, KVF_ETIMEDOUT,
			     "deadline passed after %u of %u operations to peer "
			     "%u (%u in flight)",
			     t->next_post - t->inflight, t->plan.nops, t->peer_id,
			     t->inflight);
		expire(x, t);
	}
}

/* A peer declared dead by the heartbeat thread: its transfers fail now. */
void sc_check_peers(struct sc_xfers *x)
{
	uint64_t gen = atomic_load(&x->reg.peer_generation);

	if (gen == x->seen_peer_generation)
		return;
	x->seen_peer_generation = gen;
	for (struct sc_xfer *t = x->active, *next; t; t = next) {
		struct sc_peer *p;
		int healthy;
		next = t->next;
		if (t->reported)
			continue;
		pthread_mutex_lock(&x->reg.lock);
		p = sc_idmap_get(&x->reg.peers, t->peer_id);
		healthy = p ? atomic_load(&p->healthy) : 0;
		pthread_mutex_unlock(&x->reg.lock);
		if (healthy)
			continue;
		sc_xfer_fail(t, KVF_EPEER, "peer %u stopped answering heartbeats (%u of "
		     "%u operations done)", t->peer_id,
		     t->next_post - t->inflight, t->plan.nops);
		expire(x, t);
	}
}
