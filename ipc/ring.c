/*
 * ipc/ring.c - the SPSC record ring. head and tail count bytes since the
 * start and only grow; position = count & (capacity - 1). The producer
 * writes the record, then releases head; the consumer acquires head, copies
 * the record out, then releases tail. Each side keeps its own index in
 * private memory (head_cache, tail_cache) and treats the other side's as
 * untrusted: a value outside [own - capacity, own + capacity] is corruption.
 */
#include "ipc/ring.h"

#include <string.h>

#include "client/kvferry.h"

#define REC_HDR 8u
#define REC_PAD 0u

struct rec_hdr {
	uint32_t len;
	uint32_t type;
};

static uint32_t align8(uint32_t n)
{
	return (n + 7u) & ~7u;
}

size_t ipc_ring_size(uint32_t capacity)
{
	return sizeof(struct ipc_ring_shared) + capacity;
}

static int capacity_ok(uint32_t c)
{
	return c >= IPC_RING_MIN_BYTES && c <= IPC_RING_MAX_BYTES &&
	       (c & (c - 1)) == 0;
}

int ipc_ring_format(void *mem, uint32_t capacity, struct ipc_ring *r)
{
	struct ipc_ring_shared *sh = mem;
	if (!capacity_ok(capacity))
		return KVF_EINVAL;
	memset(sh, 0, sizeof *sh);
	sh->capacity = capacity;
	atomic_store(&sh->head, 0);
	atomic_store(&sh->tail, 0);
	atomic_store(&sh->consumer_bell.seq, 0);
	atomic_store(&sh->consumer_bell.sleepers, 0);
	atomic_thread_fence(memory_order_release);
	sh->magic = IPC_RING_MAGIC;
	r->sh = sh;
	r->capacity = capacity;
	r->head_cache = 0;
	r->tail_cache = 0;
	r->pending = 0;
	return 0;
}

int ipc_ring_attach(void *mem, size_t len, struct ipc_ring *r)
{
	struct ipc_ring_shared *sh = mem;
	uint32_t cap;
	if (len < sizeof *sh || sh->magic != IPC_RING_MAGIC)
		return KVF_EPROTO;
	cap = sh->capacity;
	if (!capacity_ok(cap) || ipc_ring_size(cap) > len)
		return KVF_EPROTO;
	r->sh = sh;
	r->capacity = cap;
	r->head_cache = atomic_load_explicit(&sh->head, memory_order_acquire);
	r->tail_cache = atomic_load_explicit(&sh->tail, memory_order_acquire);
	r->pending = 0;
	return 0;
}

static uint32_t used(const struct ipc_ring *r, uint64_t head, uint64_t tail)
{
	uint64_t u = head - tail;
	/* A consumer claiming to be ahead of us, or more than a ring behind,
	 * is lying; report the ring full so the producer stops. */
	return u > r->capacity ? r->capacity : (uint32_t)u;
}

void *ipc_ring_reserve(struct ipc_ring *r, uint32_t type, uint32_t len)
{
	uint64_t head = r->head_cache;
	uint64_t tail = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
	uint32_t need = REC_HDR + align8(len);
	uint32_t pos = (uint32_t)head & (r->capacity - 1);
	uint32_t to_end = r->capacity - pos;
	uint32_t pad = need > to_end ? to_end : 0;
	struct rec_hdr *h;

	if (type == REC_PAD || len > r->capacity / 2)
		return NULL;
	if (r->capacity - used(r, head, tail) < need + pad)
		return NULL;
	if (pad) {
		/* The record does not fit before the end: fill the end with
		 * padding; the consumer skips it. */
		h = (struct rec_hdr *)(r->sh->data + pos);
		h->len = pad - REC_HDR;
		h->type = REC_PAD;
		head += pad;
		pos = 0;
	}
	h = (struct rec_hdr *)(r->sh->data + pos);
	h->len = len;
	h->type = type;
	/* The commit publishes head + need; remember it privately. */
	r->head_cache = head;
	r->pending = need;
	return h + 1;
}

void ipc_ring_commit(struct ipc_ring *r)
{
	r->head_cache += r->pending;
	r->pending = 0;
	atomic_store_explicit(&r->sh->head, r->head_cache,
	                      memory_order_release);
	ipc_doorbell_ring(&r->sh->consumer_bell);
}

int ipc_ring_empty(struct ipc_ring *r)
{
	return atomic_load_explicit(&r->sh->head, memory_order_acquire) ==
	       r->tail_cache;
}

uint32_t ipc_ring_free(struct ipc_ring *r)
{
	uint64_t tail = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
	return r->capacity - used(r, r->head_cache, tail);
}

int ipc_ring_pop(struct ipc_ring *r, void *buf, uint32_t bufsize,
                 uint32_t *type, uint32_t *len)
{
	for (;;) {
		uint64_t tail = r->tail_cache;
		uint64_t head =
			atomic_load_explicit(&r->sh->head, memory_order_acquire);
		uint64_t avail = head - tail;
		uint32_t pos = (uint32_t)tail & (r->capacity - 1);
		struct rec_hdr h;
		uint32_t size;

		if (avail == 0)
			return KVF_EAGAIN;
		if (avail > r->capacity || avail < REC_HDR)
			return KVF_EPROTO;
		memcpy(&h, r->sh->data + pos, sizeof h);
		if (h.len > r->capacity - pos - REC_HDR)
			return KVF_EPROTO;
		size = REC_HDR + align8(h.len);
		if (size > avail)
			return KVF_EPROTO;
		if (h.type == REC_PAD) {
			if (pos + size != r->capacity)
				return KVF_EPROTO;
			r->tail_cache = tail + size;
			atomic_store_explicit(&r->sh->tail, r->tail_cache,
			                      memory_order_release);
			continue;
		}
		if (h.len > bufsize)
			return KVF_EPROTO;
		memcpy(buf, r->sh->data + pos + REC_HDR, h.len);
		r->tail_cache = tail + size;
		atomic_store_explicit(&r->sh->tail, r->tail_cache,
		                      memory_order_release);
		*type = h.type;
		*len = h.len;
		return 0;
	}
}
