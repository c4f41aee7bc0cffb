/*
 * client/regions.c - memory the engine hands to its sidecar. Host regions
 * are shared-memory objects the library creates and the sidecar maps; CUDA
 * regions are exported as CUDA IPC handles (ipc/cuda_ipc.h). Either way the
 * sidecar assigns the region id and registers the memory with the fabric.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"

static void fill_layout(Kvf__KvLayout *pl, const struct kvf_layout *l)
{
	pl->num_layers = l->num_layers;
	pl->num_blocks = l->num_blocks;
	pl->block_bytes = l->block_bytes;
	pl->layer_stride = l->layer_stride;
	pl->block_stride = l->block_stride;
	pl->offset = l->offset;
}

int client_register(kvf_client *c, Kvf__Engine__RegisterRegion *rr,
                       const struct kvf_layout *layout, kvf_region *id)
{
	Kvf__Engine__Request req = KVF__ENGINE__REQUEST__INIT;
	Kvf__KvLayout pl = KVF__KV_LAYOUT__INIT;
	Kvf__Engine__Reply *rep = NULL;
	int rc;

	rr->session_id = c->session_id;
	if (layout) {
		fill_layout(&pl, layout);
		rr->layout = &pl;
	}
	req.body_case = KVF__ENGINE__REQUEST__BODY_REGISTER_REGION;
	req.register_region = rr;
	if ((rc = client_call(c, &req, &rep)) != 0)
		return rc;
	if (rep->body_case != KVF__ENGINE__REPLY__BODY_REGISTER_REGION) {
		kvf__engine__reply__free_unpacked(rep, NULL);
		return client_fail(KVF_EPROTO, "register: unexpected reply");
	}
	*id = rep->register_region->region_id;
	kvf__engine__reply__free_unpacked(rep, NULL);
	return 0;
}

void client_remember(kvf_client *c, struct client_region *r)
{
	pthread_mutex_lock(&c->regions_lock);
	r->next = c->regions;
	c->regions = r;
	pthread_mutex_unlock(&c->regions_lock);
}

int kvf_alloc_host(kvf_client *c, size_t len, const struct kvf_layout *layout,
                   void **ptr, kvf_region *out)
{
	Kvf__Engine__RegisterRegion rr = KVF__ENGINE__REGISTER_REGION__INIT;
	struct client_region *r;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char err[200];
	int rc;

	if (!c || !ptr || !out || len == 0)
		return client_fail(KVF_EINVAL, "kvf_alloc_host: NULL argument "
		                               "or zero length");
	if (!(r = calloc(1, sizeof *r)))
		return client_fail(KVF_ENOMEM, "kvf_alloc_host: out of memory");
	len = (len + page - 1) / page * page;
	rc = ipc_shm_create("kv", len, &r->shm, err, sizeof err);
	if (rc != 0) {
		free(r);
		return client_fail(rc, "kvf_alloc_host: %s", err);
	}
	rr.kind = KVF__ENGINE__MEM_KIND__MEM_HOST;
	rr.length = len;
	rr.shm_name = r->shm.name;
	rc = client_register(c, &rr, layout, &r->id);
	/* Whatever happened, the sidecar has mapped it or never will. */
	ipc_shm_unlink(r->shm.name);
	if (rc != 0) {
		ipc_shm_unmap(&r->shm);
		free(r);
		return rc;
	}
	r->host = 1;
	client_remember(c, r);
	*ptr = r->shm.base;
	*out = r->id;
	return 0;
}

int kvf_free_region(kvf_client *c, kvf_region region)
{
	Kvf__Engine__Request req = KVF__ENGINE__REQUEST__INIT;
	Kvf__Engine__DeregisterRegion d = KVF__ENGINE__DEREGISTER_REGION__INIT;
	Kvf__Engine__Reply *rep = NULL;
	struct client_region **pp, *r = NULL;
	int rc;

	if (!c)
		return client_fail(KVF_EINVAL, "kvf_free_region: NULL client");
	d.session_id = c->session_id;
	d.region_id = region;
	req.body_case = KVF__ENGINE__REQUEST__BODY_DEREGISTER_REGION;
	req.deregister_region = &d;
	rc = client_call(c, &req, &rep);
	if (rc == 0)
		kvf__engine__reply__free_unpacked(rep, NULL);
	/* Unmap our side even when the sidecar is gone. */
	if (rc == 0 || rc == KVF_ECLOSED) {
		pthread_mutex_lock(&c->regions_lock);
		for (pp = &c->regions; *pp; pp = &(*pp)->next) {
			if ((*pp)->id == region) {
				r = *pp;
				*pp = r->next;
				break;
			}
		}
		pthread_mutex_unlock(&c->regions_lock);
		if (r) {
			ipc_shm_unmap(&r->shm);
			free(r);
		}
	}
	return rc;
}
