/*
 * sidecar/registry.c - table set-up and the reference counting that ties
 * a region's mapping and registration to the transfers using it.
 */
#include "sidecar/registry.h"

#include <stdlib.h>
#include <string.h>

#include "sidecar/log.h"
#include "xfer/fabric.h"

int sc_registry_init(struct sc_registry *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	sc_idmap_init(&r->sessions);
	sc_idmap_init(&r->regions);
	sc_idmap_init(&r->peers);
	sc_idmap_init(&r->fabaddrs);
	sc_idmap_init(&r->rail0_addrs);
	r->next_session = 1;
	r->next_region = 1;
	r->next_peer = 1;
	return 0;
}

void sc_registry_fini(struct sc_registry *r)
{
	size_t pos = 0;
	struct sc_peer *p;
	while ((p = sc_idmap_next(&r->peers, &pos, NULL))) {
		free(p->regions);
		free(p);
	}
	sc_idmap_fini(&r->sessions);
	sc_idmap_fini(&r->regions);
	sc_idmap_fini(&r->peers);
	sc_idmap_fini(&r->fabaddrs);
	sc_idmap_fini(&r->rail0_addrs);
	pthread_mutex_destroy(&r->lock);
}

void sc_session_hold(struct sc_session *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void sc_session_rele(struct sc_session *s)
{
	struct sc_pending_comp *pc, *next;
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (pc = s->pending_head; pc; pc = next) {
		next = pc->next;
		free(pc);
	}
	ipc_shm_unmap(&s->shm);
	free(s);
}

void sc_region_hold(struct sc_region *r)
{
	atomic_fetch_add(&r->refs, 1);
}

void sc_region_rele(struct sc_region *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	sc_debug("region %u: released (%llu bytes)", r->id,
	         (unsigned long long)r->len);
	xfer_mr_close(r->mr);
	for (uint32_t i = 1; i < r->nrails; i++)
		xfer_mr_close(r->rail[i].mr);
	if (r->cuda && r->cuda_close)
		r->cuda_close(r->cuda);
	ipc_shm_unmap(&r->shm);
	free(r);
}

struct sc_session *sc_registry_session_by_name(struct sc_registry *r,
                                               const char *name)
{
	size_t pos = 0;
	struct sc_session *s;
	while ((s = sc_idmap_next(&r->sessions, &pos, NULL)))
		if (!atomic_load(&s->closing) && strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

uint64_t sc_hash_str(const char *s, uint64_t seed)
{
	uint64_t h = 1469598103934665603ull ^ seed;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h ? h : 1;
}
