/*
 * sidecar/xfer_view.c - the registry as the progress thread reads it: the
 * sessions, regions, peers and fabric addresses that accepting a transfer
 * and receiving one look up, copied out of the registry under its lock
 * when the registry changes, so the data path between an engine's ring
 * and the endpoint takes no lock.
 *
 * Control threads bump reg.generation after every change they make to
 * those tables (sc_registry_changed in sidecar/registry.c); the progress
 * thread compares it with the view's at the start of each turn and
 * of each operation that looks something up (one atomic load: accepting
 * a transfer, receiving a notification, an inline write or a staged
 * chunk, a storage request), and copies again when they differ; never in
 * the middle of one, so what it found stays put while it works. A lookup made after a change was published therefore sees it:
 * an engine that deregistered a region and then submits a transfer on it
 * gets KVF_ENOENT, as it would from the registry itself.
 *
 * The view holds a reference on each of its sessions and regions, so
 * what it points to stays mapped until the next copy lets go. A peer's
 * entry is a copy of what planning reads (addresses, rails, the inline
 * size, its region table), taken again only when that peer's version
 * moves; its health and statistics stay in the registry's own struct,
 * which lives as long as the registry.
 */
#include "sidecar/xfers_int.h"

#include <stdlib.h>
#include <string.h>

#include "sidecar/log.h"

static void drop_sessions(struct sc_idmap *m)
{
	size_t pos = 0;
	struct sc_session *s;

	while ((s = sc_idmap_next(m, &pos, NULL)))
		sc_session_rele(s);
	sc_idmap_fini(m);
}

static void drop_regions(struct sc_idmap *m)
{
	size_t pos = 0;
	struct sc_region *r;

	while ((r = sc_idmap_next(m, &pos, NULL)))
		sc_region_rele(r);
	sc_idmap_fini(m);
}

static void free_peer(struct sc_view_peer *vp)
{
	if (vp) {
		free(vp->snap.regions);
		free(vp);
	}
}

/* Copy what planning reads of p into vp (registry lock held). The
 * region table is copied whole; its imports stay owned by the registry's
 * table (import NULL here: nothing here releases them). */
static int copy_peer(struct sc_view_peer *vp, struct sc_peer *p)
{
	struct sc_peer *c = &vp->snap;
	struct sc_remote_region *regs = NULL;

	if (p->nregions) {
		regs = malloc(p->nregions * sizeof *regs);
		if (!regs)
			return KVF_ENOMEM;
		memcpy(regs, p->regions, p->nregions * sizeof *regs);
		for (uint32_t i = 0; i < p->nregions; i++)
			regs[i].import = NULL;
	}
	free(c->regions);
	memset(c, 0, sizeof *c);
	c->id = p->id;
	memcpy(c->url, p->url, sizeof c->url);
	memcpy(c->engine, p->engine, sizeof c->engine);
	c->epoch = p->epoch;
	c->remote_session = p->remote_session;
	c->fi_addr = p->fi_addr;
	memcpy(c->rail_fi_addr, p->rail_fi_addr, sizeof c->rail_fi_addr);
	c->nrails = p->nrails;
	c->inline_msg_max = p->inline_msg_max;
	c->regions = regs;
	c->nregions = p->nregions;
	c->same_host = p->same_host;
	c->near_dev = p->near_dev;
	vp->shared = p;
	vp->version = p->version;
	return 0;
}

/* Registry lock held. Fills the new maps; 0 or KVF_ENOMEM (then the
 * caller frees what was filled and keeps the old view). */
static int copy_tables(struct sc_xfers *x, struct sc_idmap *sessions,
                       struct sc_idmap *regions, struct sc_idmap *fabaddrs)
{
	struct sc_registry *reg = &x->reg;
	size_t pos = 0;
	uint64_t key;
	void *v;

	while ((v = sc_idmap_next(&reg->sessions, &pos, &key))) {
		if (sc_idmap_put(sessions, key, v) != 0)
			return KVF_ENOMEM;
		sc_session_hold(v);
	}
	pos = 0;
	while ((v = sc_idmap_next(&reg->regions, &pos, &key))) {
		if (sc_idmap_put(regions, key, v) != 0)
			return KVF_ENOMEM;
		sc_region_hold(v);
	}
	pos = 0;
	while ((v = sc_idmap_next(&reg->rail0_addrs, &pos, &key)))
		if (sc_idmap_put(fabaddrs, key, v) != 0)
			return KVF_ENOMEM;
	pos = 0;
	while ((v = sc_idmap_next(&reg->peers, &pos, &key))) {
		struct sc_peer *p = v;
		struct sc_view_peer *vp = sc_idmap_get(&x->view.peers, key);
		if (vp && vp->version == p->version)
			continue;
		if (vp) {
			if (copy_peer(vp, p) != 0)
				return KVF_ENOMEM;
			continue;
		}
		if (!(vp = calloc(1, sizeof *vp)))
			return KVF_ENOMEM;
		if (copy_peer(vp, p) != 0 ||
		    sc_idmap_put(&x->view.peers, key, vp) != 0) {
			free_peer(vp);
			return KVF_ENOMEM;
		}
	}
	return 0;
}

static void refresh(struct sc_xfers *x, uint64_t gen)
{
	struct sc_idmap sessions, regions, fabaddrs;
	int rc;

	sc_idmap_init(&sessions);
	sc_idmap_init(&regions);
	sc_idmap_init(&fabaddrs);
	pthread_mutex_lock(&x->reg.lock);
	rc = copy_tables(x, &sessions, &regions, &fabaddrs);
	pthread_mutex_unlock(&x->reg.lock);
	if (rc != 0) {
		/* The old view stays; the next turn tries again. */
		sc_error("progress: out of memory copying the registry; "
		         "transfers see it as it was");
		drop_sessions(&sessions);
		drop_regions(&regions);
		sc_idmap_fini(&fabaddrs);
		return;
	}
	/* Outside the lock: a last reference closes an MR and unmaps. A
	 * region that left goes to sidecar/xfer_gone.c with our reference:
	 * peers are told, and it stays registered a while. */
	drop_sessions(&x->view.sessions);
	{
		size_t pos = 0;
		uint64_t key;
		struct sc_region *r;
		while ((r = sc_idmap_next(&x->view.regions, &pos, &key))) {
			if (sc_idmap_get(&regions, key))
				sc_region_rele(r);
			else
				sc_gone_region(x, r);
		}
		sc_idmap_fini(&x->view.regions);
	}
	sc_idmap_fini(&x->view.fabaddrs);
	x->view.sessions = sessions;
	x->view.regions = regions;
	x->view.fabaddrs = fabaddrs;
	x->view.generation = gen;
}

bool sc_view_sync(struct sc_xfers *x)
{
	uint64_t gen = atomic_load_explicit(&x->reg.generation,
	                                    memory_order_acquire);

	if (gen == x->view.generation)
		return false;
	refresh(x, gen);
	return true;
}

struct sc_session *sc_view_session(struct sc_xfers *x, uint64_t id)
{
	return sc_idmap_get(&x->view.sessions, id);
}

struct sc_region *sc_view_region(struct sc_xfers *x, uint64_t session_id,
                                 uint32_t id)
{
	struct sc_region *r = sc_idmap_get(&x->view.regions, id);
	return r && r->session_id == session_id ? r : NULL;
}

struct sc_view_peer *sc_view_peer(struct sc_xfers *x, uint32_t id)
{
	return sc_idmap_get(&x->view.peers, id);
}

uint64_t sc_view_fabaddr(struct sc_xfers *x, uint64_t src_key)
{
	return (uint64_t)(uintptr_t)sc_idmap_get(&x->view.fabaddrs, src_key);
}

void sc_view_init(struct sc_xfers *x)
{
	memset(&x->view, 0, sizeof x->view);
	sc_idmap_init(&x->view.sessions);
	sc_idmap_init(&x->view.regions);
	sc_idmap_init(&x->view.peers);
	sc_idmap_init(&x->view.fabaddrs);
	/* Not the registry's: the first sync copies it. */
	x->view.generation = UINT64_MAX;
}

void sc_view_fini(struct sc_xfers *x)
{
	size_t pos = 0;
	struct sc_view_peer *vp;

	drop_sessions(&x->view.sessions);
	drop_regions(&x->view.regions);
	sc_idmap_fini(&x->view.fabaddrs);
	while ((vp = sc_idmap_next(&x->view.peers, &pos, NULL)))
		free_peer(vp);
	sc_idmap_fini(&x->view.peers);
	memset(&x->view, 0, sizeof x->view);
}
