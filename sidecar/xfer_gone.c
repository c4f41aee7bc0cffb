/*
 * sidecar/xfer_gone.c - telling peers that a region went.
 *
 * An initiator learns a target's regions at a resolve and writes into
 * them with their keys. When the target's engine frees one (or dies), an
 * RDMA write into the closed registration fails inside the provider, and
 * that damages the provider's link to the peer: on tcp;ofi_rxm the next
 * transfer fails, on libfabric 1.17's shm delivery-complete writes to it
 * stop completing for good (its target drops the command unanswered and
 * answers are taken in order). So:
 *
 *  - the target: when a region leaves the progress thread's view
 *    (sidecar/xfer_view.c), every sidecar run it exchanged a handshake
 *    with is sent a "gone" message naming the engine session and the
 *    region, and a host region stays registered and mapped GONE_GRACE_NS
 *    more, so that writes posted before the message arrived land in
 *    memory no engine reads instead of in a closed registration (GPU
 *    memory is let go at once: the engine may register it again);
 *  - the initiator: the region is marked gone in that peer's table;
 *    transfers into it are refused at once with KVF_ENOENT, and a
 *    resolve brings the peer's current table.
 *
 * A write that raced with the free still completes (into the dead
 * memory): freeing a region while peers write into it is the engine's
 * error, and what it loses is what it freed.
 */
#include "sidecar/xfers_int.h"

#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/log.h"

/* How long a region that went stays registered for late writes. */
#define GONE_GRACE_NS 2000000000ull

struct sc_gone {
	struct sc_gone *next;
	struct sc_region *r; /* our reference until until_ns (host only) */
	uint64_t session;
	uint32_t region;
	uint64_t until_ns;
	/* The sidecars to tell, copied when it went; next to post. */
	uint64_t *addrs;
	uint32_t naddrs, next_addr;
	uint32_t full; /* turns the next one found the queue full */
};

/* A peer whose queue stays full this many turns (a dead shm peer's does)
 * is skipped: the others must hear in time. */
#define GONE_MAX_FULL 1000u

void sc_gone_region(struct sc_xfers *x, struct sc_region *r)
{
	struct sc_gone *g = calloc(1, sizeof *g);
	size_t pos = 0;
	void *p;

	if (!g) {
		sc_region_rele(r);
		return;
	}
	g->session = r->session_id;
	g->region = r->id;
	g->until_ns = sc_now_ns() + GONE_GRACE_NS;
	/* Host regions are the engine's own shared memory: late writes land
	 * in pages nothing else uses. GPU memory may be registered again at
	 * once, so late writes would land in the new region: let go now
	 * (with GPUDirect they then meet a closed registration). */
	if (r->kind == XFER_MEM_HOST)
		g->r = r;
	else
		sc_region_rele(r);
	/* The map's values are fi_addr + 1; it holds len of them. */
	g->addrs = calloc(x->view.fabaddrs.len + 1, sizeof *g->addrs);
	while (g->addrs && (p = sc_idmap_next(&x->view.fabaddrs, &pos, NULL)))
		g->addrs[g->naddrs++] = (uint64_t)(uintptr_t)p - 1;
	if (x->gone_tail)
		x->gone_tail->next = g;
	else
		x->gone_head = g;
	x->gone_tail = g;
}

static void gone_free(struct sc_gone *g)
{
	sc_region_rele(g->r);
	free(g->addrs);
	free(g);
}

int sc_gone_flush(struct sc_xfers *x, uint64_t now)
{
	int posted = 0;

	for (struct sc_gone *g = x->gone_head; g; g = g->next) {
		struct sc_gone_msg m = {
			.magic = SC_GONE_MAGIC, .version = SC_INLINE_VERSION,
			.src_key = x->src_key, .session = g->session,
			.region = g->region};
		struct iovec iov = {&m, sizeof m};

		while (g->next_addr < g->naddrs) {
			int rc;
			x->ctl_ctx.kind = CTX_CTL;
			x->ctl_ctx.owner = NULL;
			rc = xfer_post_sendv(x->fab, &iov, 1,
			                     g->addrs[g->next_addr], false,
			                     &x->ctl_ctx);
			if (rc == KVF_EAGAIN && ++g->full < GONE_MAX_FULL)
				goto expire; /* the rest on a later turn */
			g->full = 0;
			if (rc != 0)
				sc_warn("region %u gone: telling a peer "
				        "failed: %s", g->region,
				        kvf_strerror(rc));
			else {
				posted++;
				atomic_fetch_add_explicit(
					&x->d->stats.regions_gone_sent, 1,
					memory_order_relaxed);
			}
			g->next_addr++;
		}
	}
expire:
	/* Oldest first: the list is in the order regions went. */
	while (x->gone_head && now >= x->gone_head->until_ns) {
		struct sc_gone *g = x->gone_head;
		x->gone_head = g->next;
		if (!x->gone_head)
			x->gone_tail = NULL;
		gone_free(g);
	}
	return posted;
}

void sc_gone_received(struct sc_xfers *x, const void *data, size_t len)
{
	const struct sc_gone_msg *m = data;
	struct sc_registry *reg = &x->reg;
	size_t pos = 0;
	struct sc_peer *p;
	uint32_t marked = 0;

	if (len != sizeof *m || m->version != SC_INLINE_VERSION) {
		sc_warn("fabric: malformed region-gone message (%zu bytes) "
		        "dropped", len);
		return;
	}
	atomic_fetch_add_explicit(&x->d->stats.regions_gone_received, 1,
	                          memory_order_relaxed);
	pthread_mutex_lock(&reg->lock);
	while ((p = sc_idmap_next(&reg->peers, &pos, NULL))) {
		if (p->remote_session != m->session ||
		    sc_hash_str(p->sidecar_id, p->epoch) != m->src_key)
			continue;
		for (uint32_t i = 0; i < p->nregions; i++)
			if (p->regions[i].id == m->region &&
			    !p->regions[i].gone) {
				p->regions[i].gone = true;
				p->version++;
				marked++;
				sc_info("peer %u (engine %s): region %u was "
				        "freed; transfers into it are refused",
				        p->id, p->engine, m->region);
			}
	}
	pthread_mutex_unlock(&reg->lock);
	if (marked)
		sc_xfers_registry_changed(x->d);
}

void sc_gone_fini(struct sc_xfers *x)
{
	while (x->gone_head) {
		struct sc_gone *g = x->gone_head;
		x->gone_head = g->next;
		gone_free(g);
	}
	x->gone_tail = NULL;
}
