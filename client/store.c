/*
 * client/store.c - saves and loads of the storage tier from the engine's
 * side: one IPC_SUB_STORE record on the same submission ring as transfers
 * (under sub_lock, ids from the same counter, so completions are told
 * apart by id alone), then the sidecar's doorbell. The sidecar checks the
 * region, the block ids and the name, and answers with one
 * KVF_EV_XFER_DONE event.
 */
#include <string.h>

#include "client/client_int.h"
#include "ipc/wire.h"

static int store_submit(kvf_client *c, enum ipc_store_op op,
                        enum ipc_store_mode mode, kvf_region region,
                        const void *list, uint32_t n, uint64_t range_len,
                        const char *name, const struct kvf_xfer_opts *o,
                        kvf_xfer *out)
{
	const char *what = op == IPC_STORE_SAVE ? "save" : "load";
	size_t each = mode == IPC_STORE_BYTES ? sizeof(uint64_t)
	                                      : sizeof(uint32_t);
	struct ipc_sub_store *h;
	size_t name_len, size;
	uint64_t id;

	if (!c)
		return client_fail(KVF_EINVAL, "NULL client");
	if (atomic_load_explicit(&c->dead, memory_order_relaxed))
		return client_fail(KVF_ECLOSED, "sidecar connection lost");
	if (!name)
		return client_fail(KVF_EINVAL, "%s: NULL object name", what);
	name_len = strlen(name);
	if (name_len == 0 || name_len > IPC_STORE_NAME_MAX)
		return client_fail(KVF_EINVAL, "%s '%.40s': object name of %zu "
		                   "bytes (want 1..%u)", what, name, name_len,
		                   IPC_STORE_NAME_MAX);
	if (!list)
		return client_fail(KVF_EINVAL, "%s '%s': NULL %s list", what,
		                   name, mode == IPC_STORE_BYTES ? "offset"
		                                                 : "block");
	if (n == 0 || n > IPC_MAX_SEGS)
		return client_fail(KVF_EINVAL, "%s '%s': %u entries (want "
		                   "1..%u)", what, name, n, IPC_MAX_SEGS);
	if (mode == IPC_STORE_BYTES && range_len == 0)
		return client_fail(KVF_EINVAL, "%s '%s': ranges of length 0",
		                   what, name);
	if (o && (o->tag_len || o->tag))
		return client_fail(KVF_EINVAL, "%s '%s': storage requests "
		                   "carry no notification tag", what, name);
	if (o && o->cuda_event)
		return client_fail(KVF_EINVAL, "%s '%s': storage requests "
		                   "take no CUDA event", what, name);
	size = ipc_sub_store_size((uint32_t)name_len, mode, n);
	pthread_mutex_lock(&c->sub_lock);
	h = size <= UINT32_MAX ? ipc_ring_reserve(&c->sub, IPC_SUB_STORE,
	                                          (uint32_t)size)
	                       : NULL;
	if (!h) {
		pthread_mutex_unlock(&c->sub_lock);
		if ((uint64_t)n * each > c->sub.capacity / 2)
			return client_fail(KVF_EINVAL, "%s '%s': %u entries do "
			                   "not fit the %u-byte ring (raise "
			                   "ring_bytes)", what, name, n,
			                   c->sub.capacity);
		return client_fail(KVF_EAGAIN, "submission ring full");
	}
	id = atomic_fetch_add_explicit(&c->next_xfer, 1,
	                               memory_order_relaxed);
	memset(h, 0, sizeof *h);
	h->xfer_id = id;
	h->op = (uint8_t)op;
	h->mode = (uint8_t)mode;
	h->name_len = (uint16_t)name_len;
	h->region = region;
	h->count = n;
	h->range_len = range_len;
	memcpy(h + 1, name, name_len);
	memset((char *)(h + 1) + name_len, 0,
	       ((name_len + 7) & ~(size_t)7) - name_len);
	memcpy((char *)(h + 1) + ((name_len + 7) & ~(size_t)7), list,
	       (size_t)n * each);
	ipc_ring_commit(&c->sub);
	pthread_mutex_unlock(&c->sub_lock);
	ipc_doorbell_ring(c->sidecar_bell);
	if (out)
		*out = id;
	return 0;
}

int kvf_save_blocks(kvf_client *c, kvf_region region, const uint32_t *blocks,
                    uint32_t nblocks, const char *name,
                    const struct kvf_xfer_opts *opts, kvf_xfer *out)
{
	return store_submit(c, IPC_STORE_SAVE, IPC_STORE_BLOCKS, region,
	                    blocks, nblocks, 0, name, opts, out);
}

int kvf_load_blocks(kvf_client *c, kvf_region region, const uint32_t *blocks,
                    uint32_t nblocks, const char *name,
                    const struct kvf_xfer_opts *opts, kvf_xfer *out)
{
	return store_submit(c, IPC_STORE_LOAD, IPC_STORE_BLOCKS, region,
	                    blocks, nblocks, 0, name, opts, out);
}

int kvf_save_bytes(kvf_client *c, kvf_region region, const uint64_t *offsets,
                   uint32_t n, uint64_t length, const char *name,
                   const struct kvf_xfer_opts *opts, kvf_xfer *out)
{
	return store_submit(c, IPC_STORE_SAVE, IPC_STORE_BYTES, region,
	                    offsets, n, length, name, opts, out);
}

int kvf_load_bytes(kvf_client *c, kvf_region region, const uint64_t *offsets,
                   uint32_t n, uint64_t length, const char *name,
                   const struct kvf_xfer_opts *opts, kvf_xfer *out)
{
	return store_submit(c, IPC_STORE_LOAD, IPC_STORE_BYTES, region,
	                    offsets, n, length, name, opts, out);
}
