/*
 * sidecar/xfers.c - the progress thread, the one owner of the fabric's data
 * path: its loop, the sessions it serves, its start and stop. Each turn it
 * (1) takes new transfers and cancels off every engine's submission ring,
 * validating and planning them under the registry lock
 * (sidecar/xfer_accept.c), (2) posts planned operations while contexts and
 * queue slots last (sidecar/xfer_post.c; the rails are picked by
 * sidecar/xfer_railpick.c), (3) reaps the fabric's completions
 * (sidecar/xfer_reap.c), which move transfers through their tail of
 * delivery checks and notification to their end (sidecar/xfer_tail.c),
 * (4) delivers pending completion records (sidecar/xfer_report.c), and
 * (5) enforces deadlines (sidecar/xfer_deadline.c). It also answers
 * kvferryctl's requests for a snapshot (sidecar/xfer_snapshot.c).
 *
 * Idle: the thread spins briefly, then sleeps on the sidecar-wide doorbell
 * futex that engines ring after submitting. When the provider offers a CQ
 * wait fd, a watcher thread (sidecar/xfer_watch.c) blocks on it and rings
 * the same doorbell, so fabric events wake the progress thread too;
 * otherwise the sleep is bounded by a short, growing timeout.
 */
#include "sidecar/xfers_int.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc/doorbell.h"
#include "ipc/shm.h"
#include "ipc/wire.h"
#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/peers.h"
#include "sidecar/log.h"
#include "sidecar/plan.h"
#include "sidecar/registry.h"
#include "sidecar/store_ops.h"
#include "xfer/fabric.h"

static struct sc_xfers *X(struct sc_daemon *d)
{
	return d->xfers;
}

/* ---- sessions --------------------------------------------------------- */

struct sess_slot *sc_slot_of(struct sc_xfers *x, struct sc_session *s)
{
	for (uint32_t i = 0; i < x->nslots; i++)
		if (x->slots[i].s == s)
			return &x->slots[i];
	return NULL;
}

/* Sessions new in the view get a slot (and a reference of their own). */
static void refresh_sessions(struct sc_xfers *x)
{
	size_t pos = 0;
	struct sc_session *s;

	sc_view_sync(x);
	if (x->slots_generation == x->view.generation)
		return;
	x->slots_generation = x->view.generation;
	while ((s = sc_idmap_next(&x->view.sessions, &pos, NULL))) {
		if (sc_slot_of(x, s))
			continue;
		if (x->nslots == x->capslots) {
			uint32_t n = x->capslots ? x->capslots * 2 : 8;
			void *m = realloc(x->slots, n * sizeof *x->slots);
			if (!m)
				break;
			x->slots = m;
			x->capslots = n;
		}
		sc_session_hold(s);
		x->slots[x->nslots].s = s;
		sc_idmap_init(&x->slots[x->nslots].xfers);
		x->slots[x->nslots].dropped = false;
		x->nslots++;
	}
}

/* A closing session: its transfers stop posting and end once nothing is
 * in flight; then the progress thread lets go of it. */
static void reap_closing(struct sc_xfers *x)
{
	for (uint32_t i = 0; i < x->nslots;) {
		struct sess_slot *sl = &x->slots[i];
		struct sc_session *s = sl->s;
		if (!atomic_load(&s->closing)) {
			i++;
			continue;
		}
		for (struct sc_xfer *t = x->active, *next; t; t = next) {
			next = t->next;
			if (t->sess != s)
				continue;
			sc_xfer_fail(t, KVF_ECLOSED, "engine session closed");
			t->next_post = t->plan.nops;
			sc_inline_forget_ack(t);
			sc_xfer_advance(x, t);
		}
		if (s->inflight) {
			i++;
			continue;
		}
		sc_idmap_fini(&sl->xfers);
		sc_session_rele(s);
		x->slots[i] = x->slots[--x->nslots];
	}
}

/* ---- the loop --------------------------------------------------------- */

static int turn(struct sc_xfers *x)
{
	int work = 0;
	/* One clock read per turn, for the deadlines and the wake-ups. */
	uint64_t now = x->turn_ns = sc_now_ns();

	refresh_sessions(x);
	for (uint32_t i = 0; i < x->nslots; i++) {
		struct sess_slot *sl = &x->slots[i];
		if (!atomic_load(&sl->s->closing))
			work += sc_drain_ring(x, sl);
	}
	sc_inline_flush_acks(x);
	if (x->gone_head)
		work += sc_gone_flush(x, now);
	work += sc_post_some(x);
	work += sc_poll_fabric(x);
	work += sc_post_some(x);
	sc_kick_rails(x);
	work += sc_gpu_progress(x);
	work += sc_store_progress(x->d);
	for (uint32_t i = 0; i < x->nslots; i++)
		work += sc_comp_flush(x->slots[i].s);
	reap_closing(x);
	sc_snapshot_answer(x);
	if (now - x->last_deadline_check > 1000000ull) {
		x->last_deadline_check = now;
		sc_check_deadlines(x, now);
		sc_inline_parts_expire(x, now);
		sc_check_peers(x);
	}
	return work;
}

static bool has_work(struct sc_xfers *x)
{
	for (uint32_t i = 0; i < x->nslots; i++)
		if (!ipc_ring_empty(&x->slots[i].s->sub) ||
		    x->slots[i].s->pending_head)
			return true;
	return atomic_load(&x->reg.generation) != x->view.generation ||
	       atomic_load(&x->snap_wanted) || sc_gpu_busy(x) || x->acks;
}

/*
 * Idle policy. While transfers or GPU work are in flight the thread never
 * blocks: providers with manual progress (tcp;ofi_rxm, shm) move bytes
 * only inside fi_cq_read, and their wait fd does not fire when a socket
 * drains. It spins, and after SPIN_TURNS idle turns yields the CPU between
 * turns so engines and a second sidecar on the same cores still run. With
 * nothing in flight it sleeps on the doorbell: engines ring it, and the
 * watcher rings it when the CQ wait fd fires (incoming messages, incoming
 * data); a wake-up starts a new spin, since more usually follows. Without
 * a wait fd the sleep is a short, growing timeout.
 */
static void *progress_main(void *arg)
{
	struct sc_xfers *x = arg;
	uint32_t idle = 0;
	int64_t backoff_us = 5;

	/* Short idle sleeps must be short: the default 50 us timer slack
	 * would stretch a 5 us poll interval tenfold. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	while (!atomic_load(&x->stop)) {
		if (turn(x)) {
			idle = 0;
			backoff_us = 5;
			continue;
		}
		if (++idle < SPIN_TURNS) {
			ipc_cpu_relax();
			continue;
		}
		/* Our operations in flight, or a peer's (its wake-up): the
		 * provider needs our polls to move their bytes. */
		if (x->active || sc_gpu_busy(x) ||
		    sc_wake_hot(x, sc_now_ns())) {
			sched_yield();
			continue;
		}
		int64_t timeout_us;
		if (x->wait_fd >= 0 && xfer_fabric_trywait(x->fab)) {
			sc_arm_watcher(x);
			timeout_us = 100000;
		} else if (x->wait_fd >= 0) {
			continue; /* events pending: go round again */
		} else {
			timeout_us = backoff_us;
			if (backoff_us < IDLE_POLL_MAX_US)
				backoff_us *= 2;
		}
		uint32_t seq = ipc_doorbell_prepare(x->bell);
		if (has_work(x) || atomic_load(&x->stop)) {
			ipc_doorbell_cancel(x->bell);
			idle = 0;
			continue;
		}
		if (ipc_doorbell_wait(x->bell, seq, timeout_us) == 0)
			idle = 0; /* woken: spin again, more usually follows */
	}
	return NULL;
}

/* ---- start / stop ----------------------------------------------------- */

int sc_xfers_start(struct sc_daemon *d)
{
	struct sc_xfers *x = calloc(1, sizeof *x);
	const struct xfer_fabric_info *fi = xfer_fabric_info(d->fabric);
	char err[256];
	int rc;

	if (!x)
		return KVF_ENOMEM;
	x->d = d;
	x->fab = d->fabric;
	x->epfd = -1;
	sc_registry_init(&x->reg);
	sc_view_init(x);
	x->slots_generation = UINT64_MAX;
	pthread_mutex_init(&x->snap_lock, NULL);
	pthread_cond_init(&x->snap_cond, NULL);
	x->max_op = fi->max_msg_size ? fi->max_msg_size : (1ull << 30);
	x->ctxs = calloc(CTX_POOL, sizeof *x->ctxs);
	x->free_ctx = calloc(CTX_POOL, sizeof *x->free_ctx);
	x->ctx_rail = calloc(CTX_POOL, sizeof *x->ctx_rail);
	x->ctx_len = calloc(CTX_POOL, sizeof *x->ctx_len);
	x->recbuf = malloc(REC_MAX);
	if (!x->ctxs || !x->free_ctx || !x->recbuf || !x->ctx_rail ||
	    !x->ctx_len) {
		rc = KVF_ENOMEM;
		goto fail;
	}
	x->tx_limit = fi->tx_size && fi->tx_size < CTX_POOL ? fi->tx_size
	                                                     : CTX_POOL;
	for (uint32_t i = 0; i < CTX_POOL; i++)
		x->free_ctx[x->nfree++] = CTX_POOL - 1 - i;
	x->nrails = d->nrails ? d->nrails : 1;
	x->rail_fab[0] = d->fabric;
	x->rail_cap[0] = x->tx_limit;
	for (uint32_t r = 1; r < x->nrails; r++) {
		x->rail_fab[r] = d->rails[r];
		x->rail_cap[r] = RAIL_DEPTH;
	}
	x->stripe_min = d->cfg.stripe_min;
	x->inline_max = d->cfg.inline_max;
	x->src_key = sc_hash_str(d->sidecar_id, d->epoch);
	if (getrandom(&x->cookie_key, sizeof x->cookie_key, GRND_NONBLOCK) !=
	    (ssize_t)sizeof x->cookie_key)
		x->cookie_key = sc_hash_str(d->sidecar_id, sc_now_ns());
	x->stripe_chunk = d->cfg.stripe_chunk ? d->cfg.stripe_chunk
	                                      : (1ull << 20);

	/* Delivery checks read one byte here; its key stays clear of region
	 * ids, which start at 1. */
	x->fence_buf = calloc(1, 64);
	if (!x->fence_buf ||
	    xfer_mr_reg(d->fabric, x->fence_buf, 64, XFER_MEM_HOST, -1,
	                0x7fff0002ull, &x->fence_mr) != 0)
		sc_warn("progress: no delivery-check buffer; WRITE completions "
		        "on ordered providers only mean the bytes left");
	x->rail_fence_mr[0] = x->fence_mr;
	for (uint32_t r = 1; r < x->nrails && x->fence_mr; r++)
		if (xfer_mr_reg(x->rail_fab[r], x->fence_buf, 64,
		                XFER_MEM_HOST, -1, 0x7fff0002ull,
		                &x->rail_fence_mr[r]) != 0) {
			sc_error("progress: rail %u: delivery-check buffer not "
			         "registered", r);
			rc = KVF_EFABRIC;
			goto fail;
		}
	for (uint32_t r = 1; r < x->nrails; r++)
		if ((rc = sc_rail_start(x->rail_fab[r], r, RAIL_DEPTH,
		                        d->cfg.poll_spin_us,
		                        &x->rail_thr[r])) != 0)
			goto fail;
		else
			sc_rail_hot_until(x->rail_thr[r], &x->hot_until_ns);
	rc = ipc_shm_create("doorbell", 4096, &x->bell_shm, err, sizeof err);
	if (rc != 0) {
		sc_error("doorbell: %s", err);
		goto fail;
	}
	x->bell = x->bell_shm.base;
	/* Engines of other users in the socket's group must be able to
	 * ring it; the socket permissions decide who connects at all. */
	{
		char path[128];
		snprintf(path, sizeof path, "/dev/shm%s", x->bell_shm.name);
		chmod(path, 0666 & d->cfg.socket_mode);
	}

	x->wait_fd = xfer_fabric_wait_fd(d->fabric);
	if (x->wait_fd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT,
		                         .data.fd = x->wait_fd};
		x->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (x->epfd < 0 ||
		    epoll_ctl(x->epfd, EPOLL_CTL_ADD, x->wait_fd, &ev) != 0) {
			sc_warn("progress: epoll on the CQ wait fd failed (%s); "
			        "polling with back-off instead",
			        strerror(errno));
			x->wait_fd = -1;
		} else {
			x->watched[x->nwatched++] = x->wait_fd;
		}
	}
	d->xfers = x;
	d->registry = &x->reg;
	if (x->wait_fd >= 0) {
		if (pthread_create(&x->watcher, NULL, sc_watch_main, x) == 0)
			x->watcher_running = true;
		else
			x->wait_fd = -1;
	}
	if ((rc = sc_gpu_start(x)) != 0 || (rc = sc_store_start(d)) != 0) {
		sc_gpu_stop(x);
		d->xfers = NULL;
		d->registry = NULL;
		atomic_store(&x->stop, 1);
		if (x->watcher_running)
			pthread_join(x->watcher, NULL);
		goto fail;
	}
	if (pthread_create(&x->thread, NULL, progress_main, x) != 0) {
		sc_store_stop(d);
		sc_gpu_stop(x);
		rc = KVF_ESYSTEM;
		d->xfers = NULL;
		d->registry = NULL;
		atomic_store(&x->stop, 1);
		if (x->watcher_running)
			pthread_join(x->watcher, NULL);
		goto fail;
	}
	sc_info("progress: started (queue depth %u, largest op %llu bytes, "
	        "%s; %u rail%s%s)",
	        x->tx_limit, (unsigned long long)x->max_op,
	        x->wait_fd >= 0 ? "sleeps on the CQ wait fd"
	                        : "polls the CQ with back-off",
	        x->nrails, x->nrails == 1 ? "" : "s",
	        x->nrails > 1 ? ", one thread each" : "");
	return 0;
fail:
	for (uint32_t r = 1; r < x->nrails; r++) {
		sc_rail_stop(x->rail_thr[r]);
		xfer_mr_close(x->rail_fence_mr[r]);
	}
	if (x->epfd >= 0)
		close(x->epfd);
	xfer_mr_close(x->fence_mr);
	free(x->ctx_rail);
	free(x->ctx_len);
	free(x->fence_buf);
	ipc_shm_unmap(&x->bell_shm);
	ipc_shm_unlink(x->bell_shm.name);
	free(x->ctxs);
	free(x->free_ctx);
	free(x->recbuf);
	sc_view_fini(x);
	sc_registry_fini(&x->reg);
	free(x);
	return rc;
}

void sc_xfers_kick(struct sc_daemon *d)
{
	struct sc_xfers *x = X(d);
	if (!x)
		return;
	atomic_fetch_add(&x->bell->seq, 1);
	ipc_doorbell_ring(x->bell);
}

void sc_xfers_registry_changed(struct sc_daemon *d)
{
	struct sc_xfers *x = X(d);

	if (!x)
		return;
	atomic_fetch_add_explicit(&x->reg.generation, 1,
	                          memory_order_release);
	sc_xfers_kick(d);
}

struct sc_region *sc_xfers_region(struct sc_daemon *d, uint64_t session_id,
                                  uint32_t id)
{
	struct sc_xfers *x = X(d);

	if (!x)
		return NULL;
	sc_view_sync(x);
	return sc_view_region(x, session_id, id);
}

uint64_t sc_xfers_rail_bytes(struct sc_daemon *d, uint32_t rail)
{
	struct sc_xfers *x = X(d);

	if (!x || rail >= x->nrails)
		return 0;
	return atomic_load_explicit(&x->rail_bytes[rail],
	                            memory_order_relaxed);
}

const char *sc_xfers_doorbell_name(struct sc_daemon *d)
{
	return X(d) ? X(d)->bell_shm.name : "";
}

void sc_xfers_stop(struct sc_daemon *d)
{
	struct sc_xfers *x = X(d);
	uint64_t until;

	if (!x)
		return;
	/* Close every session so their transfers end, and give in-flight
	 * operations a moment to come back before the thread stops. */
	pthread_mutex_lock(&x->reg.lock);
	{
		size_t pos = 0;
		struct sc_session *s;
		while ((s = sc_idmap_next(&x->reg.sessions, &pos, NULL)))
			atomic_store(&s->closing, 1);
	}
	pthread_mutex_unlock(&x->reg.lock);
	atomic_fetch_add(&x->reg.generation, 1);
	sc_xfers_kick(d);
	until = sc_now_ns() + 2000000000ull;
	while (sc_now_ns() < until) {
		bool busy;
		pthread_mutex_lock(&x->reg.lock);
		busy = atomic_load(&d->counters.xfers_in_flight) != 0;
		pthread_mutex_unlock(&x->reg.lock);
		if (!busy)
			break;
		sc_xfers_kick(d);
		usleep(2000);
	}
	atomic_store(&x->stop, 1);
	sc_xfers_kick(d);
	pthread_join(x->thread, NULL);
	if (x->watcher_running)
		pthread_join(x->watcher, NULL);
	for (uint32_t r = 1; r < x->nrails; r++) {
		sc_rail_stop(x->rail_thr[r]);
		x->rail_thr[r] = NULL;
	}
	sc_store_stop(d);
	if (x->active)
		sc_warn("progress: %llu transfers still had operations in "
		        "flight at shutdown",
		        (unsigned long long)atomic_load(
				&d->counters.xfers_in_flight));
	for (uint32_t i = 0; i < x->nslots; i++) {
		sc_idmap_fini(&x->slots[i].xfers);
		sc_session_rele(x->slots[i].s);
	}
	free(x->slots);
	sc_gone_fini(x);
	sc_view_fini(x);
	sc_inline_fini(x);
	sc_inline_parts_fini(x);
	if (x->epfd >= 0)
		close(x->epfd);
	ipc_shm_unmap(&x->bell_shm);
	ipc_shm_unlink(x->bell_shm.name);
	free(x->ctxs);
	free(x->free_ctx);
	free(x->recbuf);
	free(x->snap);
	xfer_mr_close(x->fence_mr);
	for (uint32_t r = 1; r < x->nrails; r++)
		xfer_mr_close(x->rail_fence_mr[r]);
	free(x->ctx_rail);
	free(x->ctx_len);
	free(x->fence_buf);
	pthread_mutex_destroy(&x->snap_lock);
	pthread_cond_destroy(&x->snap_cond);
	d->xfers = NULL;
	/* The registry goes with the engines and peers modules, which are
	 * stopped before us. */
	{
		size_t pos = 0;
		struct sc_region *r;
		while ((r = sc_idmap_next(&x->reg.regions, &pos, NULL)))
			sc_region_rele(r);
		pos = 0;
		struct sc_session *s;
		while ((s = sc_idmap_next(&x->reg.sessions, &pos, NULL)))
			sc_session_rele(s);
	}
	{
		size_t pos = 0;
		struct sc_peer *p;
		while ((p = sc_idmap_next(&x->reg.peers, &pos, NULL))) {
			sc_peer_regions_free(d, p->regions, p->nregions);
			p->regions = NULL;
			p->nregions = 0;
		}
	}
	d->registry = NULL;
	sc_registry_fini(&x->reg);
	sc_gpu_stop(x);
	free(x);
}
