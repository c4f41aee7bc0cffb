/*
 * sidecar/ctl_objects.c - the `objects` control command: the storage
 * tier's catalogue (name, size, last use, blocks), most recently used
 * first, with the bytes used and the capacity. The list is copied under
 * the store's lock (sc_store_objects), so this control thread never
 * touches the store while the progress thread drives it.
 */
#include <stdlib.h>

#include "client/kvferry.h"
#include "sidecar/ctl_server.h"
#include "sidecar/daemon.h"
#include "sidecar/store_ops.h"

#define DEFAULT_LIMIT 1000u
/* Keeps the reply well under the client's receive limit. */
#define MAX_LIMIT 10000u

static int objects(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                   Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	Kvf__Ctl__ObjectsReply *o;
	struct xfer_store_object *v = NULL;
	uint64_t used = 0, cap = 0;
	uint32_t limit = req->objects ? req->objects->limit : 0;
	char dir[4096];
	size_t n = 0, shown;
	int rc;

	if (limit == 0)
		limit = DEFAULT_LIMIT;
	if (limit > MAX_LIMIT)
		limit = MAX_LIMIT;
	rc = sc_store_objects(d, &v, &n, &used, &cap, dir, sizeof dir, err,
	                      errlen);
	if (rc != 0)
		return rc;
	shown = n < limit ? n : limit;
	o = malloc(sizeof *o);
	if (!o || (shown && !(o->objects = calloc(shown,
	                                           sizeof *o->objects)))) {
		free(o);
		free(v);
		snprintf(err, errlen, "objects: out of memory");
		return KVF_ENOMEM;
	}
	{
		Kvf__Ctl__StoredObject **keep = shown ? o->objects : NULL;
		kvf__ctl__objects_reply__init(o);
		o->objects = keep;
	}
	rep->body_case = KVF__CTL__REPLY__BODY_OBJECTS;
	rep->objects = o;
	o->dir = sc_ctl_strdup(dir);
	o->used_bytes = used;
	o->capacity_bytes = cap;
	o->count = n;
	for (size_t i = 0; i < shown; i++) {
		Kvf__Ctl__StoredObject *e = malloc(sizeof *e);
		if (!e)
			break;
		kvf__ctl__stored_object__init(e);
		e->name = sc_ctl_strdup(v[i].name);
		e->bytes = v[i].bytes;
		e->last_use_ns = v[i].last_use_ns;
		e->blocks = v[i].nblocks;
		e->block_bytes = v[i].block_len;
		o->objects[o->n_objects++] = e;
	}
	free(v);
	return 0;
}

void sc_ctl_objects_register(void)
{
	sc_ctl_register(KVF__CTL__REQUEST__BODY_OBJECTS, objects);
}
