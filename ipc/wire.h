/*
 * ipc/wire.h - what travels through the shared-memory rings between an
 * engine and its sidecar, and the layout of the session's shared memory.
 *
 * The session object (created by the engine, ipc/shm.h) holds a header and
 * two rings: submissions (engine -> sidecar) and completions (sidecar ->
 * engine). Submission records describe transfers; completion records
 * report their end and deliver notifications. The sidecar validates every
 * submission with ipc_wire_parse_xfer before acting on it.
 */
#ifndef KVF_IPC_WIRE_H
#define KVF_IPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "ipc/ring.h"

#define IPC_SESSION_MAGIC 0x6b7666736573736eull /* "kvfsessn" */
#define IPC_WIRE_VERSION 1u

struct ipc_session_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t sub_capacity;
	uint32_t comp_capacity;
	uint32_t pad;
	uint64_t sub_off;
	uint64_t comp_off;
};

/* Bytes of the session object for rings of the given capacities. */
size_t ipc_session_size(uint32_t sub_capacity, uint32_t comp_capacity);

/* Engine: format the session object at mem (ipc_session_size bytes). */
int ipc_session_format(void *mem, uint32_t sub_capacity,
                       uint32_t comp_capacity, struct ipc_ring *sub,
                       struct ipc_ring *comp);

/* Sidecar: check the object's header and attach to both rings. */
int ipc_session_attach(void *mem, size_t len, struct ipc_ring *sub,
                       struct ipc_ring *comp, char *err, size_t errlen);

/* Record types. */
enum {
	IPC_SUB_XFER = 1,
	IPC_SUB_CANCEL = 2,
	IPC_SUB_STORE = 3, /* a storage save/load; starts with its u64 id */
	IPC_COMP_DONE = 16,
	IPC_COMP_NOTIF = 17,
};

enum ipc_seg_mode {
	IPC_SEG_BYTES = 0,  /* segs are struct kvf_seg */
	IPC_SEG_BLOCKS = 1, /* segs are struct ipc_block_pair */
};

#define IPC_MAX_SEGS (1u << 20)
#define IPC_CUDA_EVENT_BYTES 64

struct ipc_sub_xfer {
	uint64_t xfer_id;
	uint32_t peer;
	uint8_t op;   /* enum kvf_op */
	uint8_t mode; /* enum ipc_seg_mode */
	uint16_t tag_len;
	uint32_t nseg;
	uint32_t timeout_ms;
	uint32_t local_region; /* IPC_SEG_BLOCKS */
	uint32_t remote_region;
	uint32_t has_event;
	uint32_t pad;
	uint8_t cuda_event[IPC_CUDA_EVENT_BYTES];
	/* then tag_len bytes of tag, padded to 8, then the segments */
};

struct ipc_block_pair {
	uint32_t local;
	uint32_t remote;
};

struct ipc_sub_cancel {
	uint64_t xfer_id;
};

#define IPC_MSG_MAX 160

struct ipc_comp_done {
	uint64_t xfer_id;
	int32_t status;
	uint32_t pad;
	uint64_t bytes;
	char message[IPC_MSG_MAX];
};

struct ipc_comp_notif {
	uint32_t tag_len;
	uint32_t pad;
	char peer_engine[KVF_MAX_NAME];
	uint8_t tag[KVF_MAX_TAG];
};

/* Bytes of an IPC_SUB_XFER record with these counts. */
size_t ipc_sub_xfer_size(uint32_t tag_len, enum ipc_seg_mode mode,
                         uint32_t nseg);

/* A validated view into a copied-out submission record. */
struct ipc_xfer_view {
	const struct ipc_sub_xfer *hdr;
	const uint8_t *tag;
	const struct kvf_seg *segs;         /* IPC_SEG_BYTES */
	const struct ipc_block_pair *pairs; /* IPC_SEG_BLOCKS */
};

/*
 * Check that rec (len bytes, copied out of the ring, 8-byte aligned) is a
 * well-formed transfer: known op and mode, tag and segment counts that
 * match the length exactly. KVF_EPROTO with a reason otherwise. Bounds
 * against regions are checked later, by the sidecar, which knows them.
 */
int ipc_wire_parse_xfer(const void *rec, size_t len,
                        struct ipc_xfer_view *view, char *err,
                        size_t errlen);

#endif
