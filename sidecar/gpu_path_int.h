/*
 * sidecar/gpu_path_int.h - what the files of the GPU path share: the
 * staging pool's sizes, the CHUNK and DONE messages the staged path sends
 * between sidecars, the initiator's and the target's chunk states, the
 * per-transfer and per-sidecar GPU state, and the functions one file of the
 * path calls in another. The files: sidecar/gpu_path.c (accept, the turn,
 * routing completions and messages; the protocol is described there),
 * gpu_pool.c (CUDA and the staging pool), gpu_import.c (engines' CUDA
 * memory imported for the control threads), gpu_same_host.c (GPU-to-GPU
 * copies on one host), gpu_initiator.c (staged chunks we send or pull) and
 * gpu_target.c (staged chunks a peer sends us). Progress thread only,
 * unless a comment says otherwise.
 */
#ifndef KVF_SIDECAR_GPU_PATH_INT_H
#define KVF_SIDECAR_GPU_PATH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/xfers_int.h"

struct xfer_comp;
struct xfer_cuda;
struct xfer_cuda_batch;
struct xfer_cuda_copier;
struct xfer_mr;

#define SLOT_BYTES (4u << 20)
#define SEND_SLOTS 16u
#define RECV_SLOTS 16u
#define STAGE_KEY 0x7fff0001ull
#define SC_CHUNK_PIECES 48u
#define SC_CHUNK_MAGIC 0x6b766663u /* "kvfc" */
#define SC_DONE_MAGIC 0x6b766664u  /* "kvfd" */

struct sc_chunk_piece {
	uint32_t region;
	uint32_t len;
	uint64_t off;
};

struct sc_chunk_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t npieces;
	uint64_t target_session;
	uint64_t target_epoch;
	uint64_t src_key; /* names the sender's address at the target */
	uint64_t token;   /* the sender's slot and generation */
	uint64_t src_addr;
	uint64_t src_rkey;
	uint64_t len;
	struct sc_chunk_piece pieces[SC_CHUNK_PIECES];
};

struct sc_done_msg {
	uint32_t magic;
	int32_t status;
	uint64_t token;
	char why[96];
};

/* What a context of kind CTX_GPU is (struct xfer_ctx.aux), which also
 * says whose completion it is: the initiator's or the target's. */
enum {
	GPU_AUX_PIECE = 1, /* initiator: RDMA write or read of one piece */
	GPU_AUX_CHUNK = 2, /* initiator: its CHUNK message */
	GPU_AUX_PULL = 3,  /* target: the RDMA read of a whole chunk */
	GPU_AUX_DONE = 4,  /* target: its DONE answer */
};

enum ic_state {
	IC_FREE = 0,
	IC_GATHER,  /* device-to-host copies into the slot running */
	IC_SEND,    /* CHUNK message to post (EAGAIN retried) */
	IC_WAIT,    /* waiting for the target's DONE */
	IC_WRITE,   /* RDMA writes from the slot to remote host memory */
	IC_READ,    /* RDMA reads from remote host memory into the slot */
	IC_SCATTER, /* host-to-device copies out of the slot running */
};

/* A send-side chunk, one per send slot. */
struct ichunk {
	enum ic_state state;
	uint32_t slot;
	uint32_t gen;
	struct sc_xfer *t;
	struct xfer_cuda_batch *batch;
	uint32_t npieces;
	uint64_t bytes;
	uint8_t *lptr[SC_CHUNK_PIECES]; /* local end of each piece */
	uint64_t raddr[SC_CHUNK_PIECES];
	uint64_t rkey[SC_CHUNK_PIECES];
	bool await_done; /* the target's DONE has not come yet */
	uint32_t rkind;
	uint32_t lkind;
	int ldev;
	uint32_t inflight;
	int status;
	struct xfer_ctx ctx[SC_CHUNK_PIECES];
	struct xfer_ctx msg_ctx;
	struct sc_chunk_msg msg;
};

enum tc_state {
	TC_QUEUED = 0, /* waiting for a receive slot */
	TC_READ,       /* RDMA read of the chunk into the slot */
	TC_SCATTER,    /* host-to-device copies running */
	TC_REPLY,      /* DONE to post */
	TC_SENT,       /* DONE posted; freed when its completion comes */
};

/* A receive-side chunk. */
struct tchunk {
	enum tc_state state;
	int32_t slot;
	struct sc_chunk_msg msg;
	uint64_t fi_addr;
	struct sc_session *s;
	struct sc_region *regions[SC_CHUNK_PIECES];
	uint32_t nregions;
	struct xfer_cuda_batch *batch;
	int status;
	char why[96];
	struct xfer_ctx ctx;
	struct xfer_ctx reply_ctx;
	struct sc_done_msg reply;
	struct tchunk *next;
};

/* Per-transfer GPU state. */
struct sc_gpu_xfer {
	bool same_host;
	uint64_t op_off; /* bytes of plan.ops[next_post] already chunked */
	struct xfer_cuda_batch *batch; /* same host: the one batch */
	int dev;
	void *event; /* the engine's CUDA event to wait for, or NULL */
};

struct sc_gpu {
	struct xfer_cuda *cu;
	struct xfer_cuda_copier *cp;
	char why[200]; /* why there is no CUDA */
	uint8_t *stage;
	struct xfer_mr *mr;
	void *desc;
	uint64_t remote_base;
	uint64_t key;
	struct ichunk send[SEND_SLOTS];
	uint32_t send_free[SEND_SLOTS];
	uint32_t nsend_free;
	int32_t recv_free[RECV_SLOTS];
	uint32_t nrecv_free;
	struct tchunk *tq_head, *tq_tail; /* receive chunks, oldest first */
	uint32_t busy;
};

/* Where send or receive slot number slot starts in the pool. */
static inline uint8_t *slot_ptr(struct sc_gpu *g, uint32_t slot)
{
	return g->stage + (size_t)slot * SLOT_BYTES;
}

/* ---- sidecar/gpu_same_host.c ---- */

/* Start, or check on, t's one batch of same-host copies; 1 if it moved. */
int sc_gpu_same_host_step(struct sc_xfers *x, struct sc_xfer *t);

/* ---- sidecar/gpu_initiator.c: chunks we send (or pull for a READ) ---- */

/* Cut t's next chunk into a free send slot and start it; 1 if one started. */
int sc_gpu_chunk_start(struct sc_xfers *x, struct sc_xfer *t);
/* Move the send slots' chunks forward; how much happened. */
int sc_gpu_send_side(struct sc_xfers *x);
/* A target's DONE for one of our chunks (stale ones are ignored). */
void sc_gpu_on_done(struct sc_xfers *x, const struct sc_done_msg *dm);
/* A completion of a send slot's write, read or CHUNK message. */
void sc_gpu_send_on_comp(struct sc_xfers *x, const struct xfer_comp *c);

/* ---- sidecar/gpu_target.c: chunks peers send us ---- */

/* Queue a received CHUNK message (its magic and header length checked). */
void sc_gpu_on_chunk(struct sc_xfers *x, const void *data, size_t len);
/* Move the queued receive chunks forward; how much happened. */
int sc_gpu_recv_side(struct sc_xfers *x);
/* A completion of a receive chunk's read or DONE answer. */
void sc_gpu_recv_on_comp(struct sc_xfers *x, const struct xfer_comp *c);

#endif
