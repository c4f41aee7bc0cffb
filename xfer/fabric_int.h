/*
 * xfer/fabric_int.h - the inside of a rail, shared by fabric.c (open,
 * close, completions, receive pool), mr.c (registration) and post.c (the
 * posting hot path). Nothing outside xfer/ includes this.
 */
#ifndef KVF_XFER_FABRIC_INT_H
#define KVF_XFER_FABRIC_INT_H

#include "xfer/fabric.h"

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

/* One buffer of the message pools: a receive slot posted with fi_recv, or
 * a send bounce slot that holds a copy of an outgoing message until its
 * completion. The context comes first so op_context maps straight back. */
struct xfer_slot {
	struct fi_context2 fi_ctx;
	struct xfer_ctx *user; /* send slots: the caller's context */
	uint32_t index;
	uint32_t next_free;    /* send slots: free list link */
};

struct xfer_fabric {
	struct fi_info *fi;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	struct xfer_fabric_info info;
	int wait_fd;

	/* mr_mode bits we honour, unpacked for the hot path. */
	bool mr_local;
	bool mr_virt_addr;
	bool mr_prov_key;
	bool mr_endpoint;
	uint64_t write_flags; /* FI_COMPLETION [| FI_DELIVERY_COMPLETE] */
	uint64_t send_flags;  /* the same, for messages */
	uint64_t key_reserved; /* the pools' key when keys are ours */

	/* Message pools: rx_count receive slots then tx_count send slots of
	 * slot_size bytes each in one registered buffer. */
	uint8_t *pool;
	size_t pool_len;
	size_t slot_size;
	struct fid_mr *pool_mr;
	void *pool_desc;
	struct xfer_slot *rx;
	uint32_t rx_count;
	struct xfer_slot *tx;
	uint32_t tx_count;
	uint32_t tx_free; /* head of the free list, UINT32_MAX when empty */
};

#define XFER_SLOT_NONE UINT32_MAX

/* mr.c: register host memory for the pools (no CUDA, reserved key). */
int xfer_mr_reg_raw(struct xfer_fabric *f, void *buf, size_t len,
                    uint64_t access, uint64_t key, struct fid_mr **out);

#endif
