/*
 * sidecar/rails.c - one thread per extra rail (see rails.h). Two rings of
 * fixed size connect it to the transfer thread: operations in, completions
 * out. Each ring has one writer and one reader, so a release store of the
 * tail after the entry and an acquire load on the other side are all the
 * synchronisation there is. The completion ring never overflows: it is as
 * large as the operation ring, and the transfer thread hands over at most
 * that many operations before it reaps their completions.
 *
 * Sleeping: the thread announces it (sleeping = 1), checks the operation
 * ring once more, then blocks in ppoll on an eventfd (the transfer
 * thread's kick) and the completion queue's wait fd. The transfer thread
 * publishes an operation, then reads sleeping; sequentially consistent
 * order on both sides means one of them sees the other.
 */
#include "sidecar/rails.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "ipc/doorbell.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"

#define RAIL_COMP_BATCH 64
/* Without a wait fd an idle rail polls at least this often (us). */
#define RAIL_IDLE_POLL_MAX_US 20

struct sc_rail {
	struct xfer_fabric *f;
	uint32_t index;
	uint32_t mask; /* ring size - 1 */
	uint32_t spin_us;
	const _Atomic uint64_t *hot_until; /* NULL: never hot */
	int wake_fd;   /* eventfd */
	int wait_fd;   /* the CQ's, or -1 */
	pthread_t thread;
	_Atomic int stop;
	_Atomic int sleeping;

	/* Operations: the transfer thread writes sq_tail, we sq_head. */
	struct sc_rail_op *sq;
	_Atomic uint32_t sq_head, sq_tail;
	/* Completions: we write cq_tail, the transfer thread cq_head. */
	struct xfer_comp *cq;
	_Atomic uint32_t cq_head, cq_tail;

	/* Rail thread only. */
	uint64_t posted, completed;
	bool warned_recv;
};

static void comp_push(struct sc_rail *r, const struct xfer_comp *c)
{
	uint32_t t = atomic_load_explicit(&r->cq_tail, memory_order_relaxed);

	r->cq[t & r->mask] = *c;
	atomic_store_explicit(&r->cq_tail, t + 1, memory_order_release);
}

/* Post what the transfer thread queued; stop at a full provider queue. */
static int post_queued(struct sc_rail *r)
{
	uint32_t h = atomic_load_explicit(&r->sq_head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&r->sq_tail, memory_order_acquire);
	int n = 0;

	while (h != t) {
		const struct sc_rail_op *op = &r->sq[h & r->mask];
		int rc = op->read
			? xfer_post_read(r->f, op->buf, op->len, op->desc,
			                 op->fi_addr, op->raddr, op->rkey,
			                 op->ctx)
			: xfer_post_write(r->f, op->buf, op->len, op->desc,
			                  op->fi_addr, op->raddr, op->rkey,
			                  op->ctx);
		if (rc == KVF_EAGAIN)
			break; /* reap first */
		if (rc != 0) {
			struct xfer_comp c;
			memset(&c, 0, sizeof c);
			c.type = XFER_COMP_OP;
			c.status = rc;
			c.ctx = op->ctx;
			snprintf(c.errstr, sizeof c.errstr, "rail %u: post "
			         "failed: %s", r->index, kvf_strerror(rc));
			comp_push(r, &c);
		} else {
			r->posted++;
		}
		h++;
		n++;
	}
	atomic_store_explicit(&r->sq_head, h, memory_order_release);
	return n;
}

static int reap_cq(struct sc_rail *r)
{
	struct xfer_comp comps[RAIL_COMP_BATCH];
	int n = 0, total = 0;

	do {
		if (xfer_fabric_poll(r->f, comps, RAIL_COMP_BATCH, &n) != 0)
			return total;
		for (int i = 0; i < n; i++) {
			if (comps[i].type == XFER_COMP_RECV) {
				/* Messages travel on rail 0; nobody sends
				 * here, so this is a confused peer. */
				if (!r->warned_recv)
					sc_warn("rail %u: unexpected message "
					        "(%zu bytes) dropped", r->index,
					        comps[i].len);
				r->warned_recv = true;
				xfer_fabric_repost(r->f, comps[i].recv_slot);
				continue;
			}
			r->completed++;
			comp_push(r, &comps[i]);
		}
		total += n;
	} while (n == RAIL_COMP_BATCH);
	return total;
}

static bool queue_empty(struct sc_rail *r)
{
	return atomic_load(&r->sq_head) == atomic_load(&r->sq_tail);
}

static void sleep_once(struct sc_rail *r, int64_t timeout_us)
{
	struct pollfd fds[2] = {{.fd = r->wake_fd, .events = POLLIN},
	                        {.fd = r->wait_fd, .events = POLLIN}};
	struct timespec ts = {.tv_sec = timeout_us / 1000000,
	                      .tv_nsec = (timeout_us % 1000000) * 1000};
	uint64_t v;

	atomic_store(&r->sleeping, 1);
	if (!queue_empty(r) || atomic_load(&r->stop)) {
		atomic_store(&r->sleeping, 0);
		return;
	}
	if (ppoll(fds, r->wait_fd >= 0 ? 2 : 1, &ts, NULL) > 0 &&
	    (fds[0].revents & POLLIN))
		(void)!read(r->wake_fd, &v, sizeof v);
	atomic_store(&r->sleeping, 0);
}

static void *rail_main(void *arg)
{
	struct sc_rail *r = arg;
	uint64_t last_work = sc_now_ns() / 1000u;
	int64_t backoff_us = 5;
	char name[16];

	snprintf(name, sizeof name, "kvf-rail%u", r->index);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	/* Short sleeps must stay short (default slack is 50 us). */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	while (!atomic_load(&r->stop)) {
		int work = post_queued(r);
		work += reap_cq(r);
		if (work) {
			last_work = sc_now_ns() / 1000u;
			backoff_us = 5;
			continue;
		}
		/* Operations at the provider, or a peer's at ours: keep
		 * polling, it may need us to move their bytes; let others
		 * run in between. */
		if (r->posted != r->completed ||
		    (r->hot_until &&
		     sc_now_ns() < atomic_load_explicit(r->hot_until,
		                                        memory_order_relaxed))) {
			sched_yield();
			continue;
		}
		if (sc_now_ns() / 1000u - last_work < r->spin_us) {
			ipc_cpu_relax();
			continue;
		}
		if (r->wait_fd >= 0) {
			if (!xfer_fabric_trywait(r->f))
				continue; /* events pending */
			sleep_once(r, 100000);
		} else {
			sleep_once(r, backoff_us);
			if (backoff_us < RAIL_IDLE_POLL_MAX_US)
				backoff_us *= 2;
		}
	}
	return NULL;
}

void sc_rail_hot_until(struct sc_rail *r, const _Atomic uint64_t *until)
{
	r->hot_until = until;
}

int sc_rail_start(struct xfer_fabric *f, uint32_t index, uint32_t depth,
                  uint32_t spin_us, struct sc_rail **out)
{
	struct sc_rail *r = calloc(1, sizeof *r);
	uint32_t size = 64;

	if (!r)
		return KVF_ENOMEM;
	while (size < depth && size < (1u << 20))
		size <<= 1;
	r->f = f;
	r->index = index;
	r->mask = size - 1;
	r->spin_us = spin_us;
	r->wait_fd = xfer_fabric_wait_fd(f);
	r->sq = calloc(size, sizeof *r->sq);
	r->cq = calloc(size, sizeof *r->cq);
	r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!r->sq || !r->cq || r->wake_fd < 0) {
		int rc = r->wake_fd < 0 ? KVF_ESYSTEM : KVF_ENOMEM;
		sc_error("rail %u: start failed: %s", index,
		         r->wake_fd < 0 ? strerror(errno) : "out of memory");
		if (r->wake_fd >= 0)
			close(r->wake_fd);
		free(r->sq);
		free(r->cq);
		free(r);
		return rc;
	}
	if (pthread_create(&r->thread, NULL, rail_main, r) != 0) {
		sc_error("rail %u: pthread_create() failed", index);
		close(r->wake_fd);
		free(r->sq);
		free(r->cq);
		free(r);
		return KVF_ESYSTEM;
	}
	*out = r;
	return 0;
}

void sc_rail_stop(struct sc_rail *r)
{
	uint64_t one = 1;

	if (!r)
		return;
	atomic_store(&r->stop, 1);
	(void)!write(r->wake_fd, &one, sizeof one);
	pthread_join(r->thread, NULL);
	close(r->wake_fd);
	free(r->sq);
	free(r->cq);
	free(r);
}

int sc_rail_post(struct sc_rail *r, const struct sc_rail_op *op)
{
	uint32_t t = atomic_load_explicit(&r->sq_tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&r->sq_head, memory_order_acquire);

	if (t - h > r->mask)
		return KVF_EAGAIN;
	r->sq[t & r->mask] = *op;
	atomic_store_explicit(&r->sq_tail, t + 1, memory_order_release);
	return 0;
}

void sc_rail_kick(struct sc_rail *r)
{
	uint64_t one = 1;

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&r->sleeping))
		(void)!write(r->wake_fd, &one, sizeof one);
}

int sc_rail_reap(struct sc_rail *r, struct xfer_comp *out, int max)
{
	uint32_t h = atomic_load_explicit(&r->cq_head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&r->cq_tail, memory_order_acquire);
	int n = 0;

	while (h != t && n < max)
		out[n++] = r->cq[h++ & r->mask];
	atomic_store_explicit(&r->cq_head, h, memory_order_release);
	return n;
}
