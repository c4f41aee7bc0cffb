/*
 * ipc/ring.h - a single-producer single-consumer ring of variable-size
 * records in shared memory: the engine's submission ring (engine produces,
 * sidecar consumes) and its completion ring (the other way round).
 *
 * Records are 8-byte aligned, each with an 8-byte header; a record never
 * wraps (a padding record fills the end instead). Neither side trusts the
 * other's indexes: the consumer checks every header against the bytes the
 * producer published and copies the record out before the caller looks at
 * it, so an engine that scribbles on the ring gets KVF_EPROTO, never an
 * out-of-bounds access in the sidecar.
 *
 * One thread produces and one consumes at a time; callers serialise more.
 */
#ifndef KVF_IPC_RING_H
#define KVF_IPC_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/doorbell.h"

#define IPC_RING_MAGIC 0x6b76667269676e31ull /* "kvfrign1" */
#define IPC_RING_MIN_BYTES 4096u
#define IPC_RING_MAX_BYTES (64u << 20)

struct ipc_ring_shared {
	uint64_t magic;
	uint32_t capacity; /* data bytes, a power of two */
	uint32_t pad0;
	_Alignas(64) _Atomic uint64_t head; /* producer: bytes published */
	_Alignas(64) _Atomic uint64_t tail; /* consumer: bytes consumed */
	_Alignas(64) struct ipc_doorbell consumer_bell;
	_Alignas(64) uint8_t data[];
};

/* A process's view of a ring: pointers into the shared part plus a cached
 * copy of the capacity that the other side cannot change. */
struct ipc_ring {
	struct ipc_ring_shared *sh;
	uint32_t capacity;
	uint64_t head_cache; /* producer: what it published last */
	uint64_t tail_cache; /* consumer: what it consumed last */
	uint32_t pending;    /* producer: size of the reserved record */
};

/* Bytes of shared memory for a ring of capacity data bytes. */
size_t ipc_ring_size(uint32_t capacity);

/* Format a ring in mem (ipc_ring_size(capacity) bytes) and attach to it. */
int ipc_ring_format(void *mem, uint32_t capacity, struct ipc_ring *r);

/* Attach to a ring someone else formatted in mem of len bytes. */
int ipc_ring_attach(void *mem, size_t len, struct ipc_ring *r);

/*
 * Producer: room for a record of len payload bytes, or NULL when full.
 * Write the payload, then ipc_ring_commit. type must be non-zero.
 */
void *ipc_ring_reserve(struct ipc_ring *r, uint32_t type, uint32_t len);
/* Publish the record reserved last; the consumer may see it at once. */
void ipc_ring_commit(struct ipc_ring *r);

/*
 * Consumer: copy the next record into buf (bufsize bytes). Returns 0 and
 * sets *type and *len, KVF_EAGAIN when the ring is empty, or KVF_EPROTO
 * when the producer corrupted the ring (the ring is then unusable).
 */
int ipc_ring_pop(struct ipc_ring *r, void *buf, uint32_t bufsize,
                 uint32_t *type, uint32_t *len);

/* True when the consumer has nothing to read (cheap, no copy). */
int ipc_ring_empty(struct ipc_ring *r);

/* Bytes free for the producer (an estimate across processes). */
uint32_t ipc_ring_free(struct ipc_ring *r);

#endif
