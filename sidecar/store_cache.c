/*
 * sidecar/store_cache.c - the storage tier's region cache. Each request
 * holds a reference on its session and on a cache entry for its region,
 * which itself holds a region reference, so an engine that dies or
 * deregisters while its I/O or copies are in flight leaves the memory
 * mapped (and a GPU region imported) until the kernel and the copy engine
 * are done with it. The cache also remembers a host region's io_uring
 * buffer registration (done once per region, so blocks move with
 * READ_FIXED/WRITE_FIXED; standard slabs are registered too); a periodic
 * sweep drops entries whose region left the registry and has nothing in
 * flight. Progress thread only.
 */
#include "sidecar/store_ops_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "sidecar/daemon.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

struct sreg *sc_store_sreg_get(struct sc_store *g, struct sc_region *r)
{
	struct sreg *e;
	int rc;

	for (e = g->regs; e; e = e->next)
		if (e->r == r)
			return e;
	if (!(e = calloc(1, sizeof *e)))
		return NULL;
	sc_region_hold(r);
	e->r = r;
	e->buf = NO_BUF;
	e->next = g->regs;
	g->regs = e;
	/* GPU memory never goes to the store: its slabs do. */
	if (r->kind != XFER_MEM_HOST)
		return e;
	/* Registration pins the pages once rather than per I/O; the store
	 * works without it (plain read/write), so a refusal is only logged. */
	pthread_mutex_lock(&g->lock);
	rc = xfer_store_register_memory(g->st, r->base, r->len, &e->buf);
	pthread_mutex_unlock(&g->lock);
	if (rc != 0) {
		e->buf = NO_BUF;
		if (!g->reg_warned)
			sc_info("store: region %u (%" PRIu64 " bytes): "
			        "xfer_store_register_memory() failed: %s; its "
			        "blocks move with plain read/write", r->id,
			        r->len, kvf_strerror(rc));
		g->reg_warned = true;
	}
	return e;
}

void sc_store_sreg_drop(struct sc_store *g, struct sreg *e)
{
	if (e->buf != NO_BUF && g->st) {
		pthread_mutex_lock(&g->lock);
		xfer_store_unregister_memory(g->st, e->buf);
		pthread_mutex_unlock(&g->lock);
	}
	sc_region_rele(e->r);
	free(e);
}

/* Let go of regions the engine deregistered (or lost with its session)
 * once nothing of ours still reads or writes them. */
void sc_store_sweep(struct sc_store *g)
{
	struct sreg **pp = &g->regs, *e;

	while ((e = *pp)) {
		bool gone;
		if (e->inflight) {
			pp = &e->next;
			continue;
		}
		gone = sc_xfers_region(g->d, e->r->session_id, e->r->id) !=
		       e->r;
		if (!gone) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		sc_debug("store: region %u released", e->r->id);
		sc_store_sreg_drop(g, e);
	}
}
