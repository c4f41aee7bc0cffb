/*
 * sidecar/rails.h - the progress thread of one extra rail. The transfer
 * progress thread (sidecar/xfers.c) drives rail 0 itself and owns every
 * transfer; each further rail has a thread of its own that posts the
 * operations handed to it, polls its completion queue and hands the
 * completions back. Hand-over is two single-producer single-consumer
 * queues in memory: no lock between the transfer thread and an endpoint.
 *
 * The rail thread also keeps its endpoint progressing while idle (manual
 * progress providers move a peer's incoming writes and reads only while
 * someone polls): it spins for a configured time after its last work,
 * then sleeps on the completion queue's wait fd, or polls with a short
 * back-off where the provider has none.
 *
 * Threads: sc_rail_start/stop from one control thread; sc_rail_post,
 * sc_rail_kick and sc_rail_reap from the transfer progress thread only.
 */
#ifndef KVF_SIDECAR_RAILS_H
#define KVF_SIDECAR_RAILS_H

#include <stdbool.h>
#include <stdint.h>

#include "xfer/fabric.h"

struct sc_rail;

/* One RDMA operation for a rail: the arguments of xfer_post_write/read. */
struct sc_rail_op {
	struct xfer_ctx *ctx; /* comes back in the completion */
	void *buf;
	void *desc;
	uint64_t len;
	uint64_t fi_addr;
	uint64_t raddr;
	uint64_t rkey;
	bool read;
};

/*
 * Start the thread of rail index (for names and logs) on fabric f, with
 * queues of at least depth entries. The caller never has more than depth
 * operations handed over and not reaped. 0, KVF_ENOMEM or KVF_ESYSTEM.
 */
int sc_rail_start(struct xfer_fabric *f, uint32_t index, uint32_t depth,
                  uint32_t spin_us, struct sc_rail **out);
/* While *until (CLOCK_MONOTONIC ns, sidecar/xfer_wake.c) lies ahead, a
 * peer is writing to or reading from us: the thread keeps polling
 * instead of sleeping. Set once, before operations are posted. */
void sc_rail_hot_until(struct sc_rail *r, const _Atomic uint64_t *until);

/* Stop and join the thread, free everything. Operations still queued are
 * dropped (call once nothing is in flight). Accepts NULL. */
void sc_rail_stop(struct sc_rail *r);

/* Queue one operation; KVF_EAGAIN when the queue is full. */
int sc_rail_post(struct sc_rail *r, const struct sc_rail_op *op);

/* Wake the rail thread if it sleeps; after a batch of sc_rail_post. */
void sc_rail_kick(struct sc_rail *r);

/*
 * Take up to max completions of handed-over operations (XFER_COMP_OP
 * only: a failed post comes back as a failed completion). Returns the
 * count.
 */
int sc_rail_reap(struct sc_rail *r, struct xfer_comp *out, int max);

#endif
