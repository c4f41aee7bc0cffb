/*
 * sidecar/xfer_wake.c - keeping a target's progress thread polling while
 * a peer's RDMA operations are in flight to it.
 *
 * On providers with manual data progress (tcp;ofi_rxm, shm) the bytes of
 * a write into our memory, or of a read from it, move only while our
 * progress thread calls into the provider, and nothing tells an idle
 * thread that they are coming: such operations make no completion here,
 * and tcp;ofi_rxm's CQ wait fd does not fire for them (seen with strace:
 * the socket readable, the wait fd quiet, the thread asleep for its whole
 * 100 ms timeout, three 64 KiB writes moved per wake-up). So the sender
 * tells us: while it has operations in flight to a peer it sends that
 * peer a small wake-up message at most every WAKE_EVERY_NS (ahead of the
 * operations: on shm a queue full of reads the target does not serve
 * takes no more messages either, seen as 26 us per 4 KiB READ), and a sidecar
 * that receives one polls instead of sleeping for WAKE_HOLD_NS. Messages
 * do wake a sleeping thread (they complete a receive), so the first one
 * also ends a sleep. Providers with automatic progress (EFA's hardware
 * RDMA) need none of this and send none.
 */
#include "sidecar/xfers_int.h"

#include <sys/uio.h>

#include "sidecar/daemon.h"
#include "sidecar/log.h"

/* A sender repeats its wake-up at most this often per peer... */
#define WAKE_EVERY_NS 1000000ull
/* ...and a wake-up keeps the receiver polling this long. */
#define WAKE_HOLD_NS 5000000ull

void sc_wake_peer(struct sc_xfers *x, struct sc_xfer *t)
{
	struct sc_wake_msg m = { SC_WAKE_MAGIC, SC_INLINE_VERSION };
	struct iovec iov = { &m, sizeof m };
	/* Called per operation posted or completed: the turn's clock,
	 * not a clock read each time. */
	uint64_t now = x->turn_ns;

	if (!t->peer || now - t->peer->wake_sent_ns < WAKE_EVERY_NS ||
	    !xfer_fabric_info(x->fab)->manual_progress)
		return;
	x->ctl_ctx.kind = CTX_CTL;
	x->ctl_ctx.owner = NULL;
	/* A full queue: the next operation or completion tries again. */
	if (xfer_post_sendv(x->fab, &iov, 1, t->fi_addr, false,
	                    &x->ctl_ctx) == 0) {
		t->peer->wake_sent_ns = now;
		atomic_fetch_add_explicit(&x->d->stats.wakeups_sent, 1,
		                          memory_order_relaxed);
	}
}

void sc_wake_received(struct sc_xfers *x)
{
	atomic_store_explicit(&x->hot_until_ns, sc_now_ns() + WAKE_HOLD_NS,
	                      memory_order_relaxed);
	atomic_fetch_add_explicit(&x->d->stats.wakeups_received, 1,
	                          memory_order_relaxed);
}

bool sc_wake_hot(struct sc_xfers *x, uint64_t now)
{
	return now < atomic_load_explicit(&x->hot_until_ns,
	                                  memory_order_relaxed);
}
