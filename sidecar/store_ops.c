/*
 * sidecar/store_ops.c - the storage tier as a transfer target: its state,
 * its start and stop, and the catalogue kvferryctl objects lists. An
 * engine's save and load requests are sidecar/store_req.c, the staging of
 * GPU regions through pinned slabs sidecar/store_stage.c, the cache of the
 * regions requests use sidecar/store_cache.c.
 *
 * Threads: the store is driven by the progress thread. kvferryctl objects
 * lists the catalogue from a control thread, so every call into the store
 * is made under its lock; the cache, the slabs and the requests are the
 * progress thread's alone (start and stop run while it does not).
 *
 * One daemon per process: the state is one object, sc_store_state.
 */
#include "sidecar/store_ops.h"
#include "sidecar/store_ops_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "sidecar/ctl_server.h"
#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/cuda.h"

struct sc_store sc_store_state = {.lock = PTHREAD_MUTEX_INITIALIZER};

int sc_store_start(struct sc_daemon *d)
{
	struct sc_store *g = &sc_store_state;
	const struct sc_config *c = &d->cfg;
	struct xfer_store_config sc = {0};
	char err[512];
	int rc;

	g->d = d;
	sc_ctl_objects_register();
	if (!c->store_dir[0]) {
		sc_info("store: off (no --store-dir)");
		return 0;
	}
	sc.dir = c->store_dir;
	sc.capacity = c->store_capacity;
	sc.queue_depth = c->store_queue_depth;
	sc.direct = (enum xfer_store_direct)c->store_direct;
	sc.sync = (enum xfer_store_sync)c->store_fsync;
	rc = xfer_store_open(&sc, &g->st, err, sizeof err);
	if (rc != 0) {
		sc_error("%s '%s': xfer_store_open() failed: %s (%s)",
		         sc_config_origin(c, SC_OPT_STORE_DIR), c->store_dir, err,
		         kvf_strerror(rc));
		g->st = NULL;
		return rc;
	}
	rc = sc_xfers_watch_fd(d, xfer_store_fd(g->st));
	if (rc != 0)
		sc_warn("store: the progress thread cannot sleep on the "
		        "store's eventfd (%s); completions are picked up on its "
		        "next turn", kvf_strerror(rc));
	{
		uint64_t used, cap;
		xfer_store_usage(g->st, &used, &cap);
		sc_info("store: %s, %" PRIu64 " bytes used of %s%" PRIu64
		        ", O_DIRECT %s, queue depth %u", c->store_dir, used,
		        cap ? "" : "no limit ", cap,
		        xfer_store_direct(g->st) ? "on" : "off",
		        c->store_queue_depth);
	}
	/* GPU regions stage through pinned slabs: make a few now, off the
	 * progress thread, so small requests never wait for an allocation. */
	if ((g->cp = sc_gpu_copier(d))) {
		uint32_t i;
		for (i = 0; i < SLABS_AT_START; i++) {
			struct slab *sl;
			if (sc_store_slab_new(g, SLAB_BYTES, &sl) != 0)
				break;
			sl->next = g->free_slabs;
			g->free_slabs = sl;
		}
		sc_info("store: GPU regions staged through pinned slabs of "
		        "%llu MiB, %u made, at most %llu MiB", SLAB_BYTES >> 20,
		        i, STAGE_MAX >> 20);
	}
	return 0;
}

void sc_store_stop(struct sc_daemon *d)
{
	struct sc_store *g = &sc_store_state;
	struct xfer_store *st;
	uint32_t leaked = 0;

	(void)d;
	/* The progress thread has stopped: close waits (bounded) for the
	 * kernel to give back what is in flight and drops the completions,
	 * so the memory we hold is released only after that. */
	pthread_mutex_lock(&g->lock);
	st = g->st;
	g->st = NULL;
	pthread_mutex_unlock(&g->lock);
	if (g->inflight)
		sc_warn("store: %u storage requests still in flight at "
		        "shutdown; abandoned", g->inflight);
	xfer_store_close(st);
	/* Copies still running write into slabs or GPU memory we hold: wait
	 * for them (bounded) before anything is freed; the copier and the
	 * CUDA context go after us (sc_gpu_stop). */
	for (struct sreq *q = g->reqs; q; q = q->next) {
		if (!q->batch)
			continue;
		if (xfer_cuda_batch_wait(q->batch, STOP_WAIT_MS) ==
		    KVF_ETIMEDOUT) {
			/* Keep the slabs and the region mapped for good
			 * rather than let the copy engine write into freed
			 * memory. */
			q->slabs = NULL;
			q->nslabs = 0;
			sc_region_hold(q->reg->r);
			leaked++;
		}
		xfer_cuda_batch_free(g->cp, q->batch);
		q->batch = NULL;
		g->copying--;
		sc_gpu_busy_add(g->d, -1);
	}
	if (leaked)
		sc_error("store: %u staging copies still running after %d ms "
		         "at shutdown; their pinned memory and regions are "
		         "left allocated", leaked, STOP_WAIT_MS);
	g->wait_head = g->wait_tail = NULL;
	while (g->reqs) {
		atomic_fetch_sub(&g->d->counters.xfers_in_flight, 1);
		sc_store_req_free(g, g->reqs);
	}
	while (g->free_slabs) {
		struct slab *sl = g->free_slabs;
		g->free_slabs = sl->next;
		sl->buf = NO_BUF; /* released with the store */
		sc_store_slab_free(g, sl);
	}
	while (g->regs) {
		struct sreg *e = g->regs;
		g->regs = e->next;
		e->buf = NO_BUF; /* released with the store */
		sc_store_sreg_drop(g, e);
	}
	g->cp = NULL;
	g->pinned = 0;
	g->grow_noted = false;
}

int sc_store_objects(struct sc_daemon *d, struct xfer_store_object **out,
                     size_t *n, uint64_t *used, uint64_t *capacity,
                     char *dir, size_t dirlen, char *err, size_t errlen)
{
	struct sc_store *g = &sc_store_state;
	struct xfer_store_object *v = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;

	for (;;) {
		pthread_mutex_lock(&g->lock);
		if (!g->st) {
			pthread_mutex_unlock(&g->lock);
			free(v);
			snprintf(err, errlen, "no storage directory is "
			         "configured on this sidecar: start kvferryd with "
			         "--store-dir DIR (or KVFERRY_STORE_DIR)");
			return KVF_ENOTSUP;
		}
		rc = xfer_store_list(g->st, v, cap, &count);
		if (rc == 0 && count <= cap) {
			xfer_store_usage(g->st, used, capacity);
			snprintf(dir, dirlen, "%s", d->cfg.store_dir);
			pthread_mutex_unlock(&g->lock);
			break;
		}
		pthread_mutex_unlock(&g->lock);
		if (rc != 0)
			break;
		/* Grown since we sized the array: size it again. */
		free(v);
		cap = count + 16;
		if (!(v = calloc(cap, sizeof *v))) {
			snprintf(err, errlen, "objects: out of memory for %zu "
			         "entries", cap);
			return KVF_ENOMEM;
		}
	}
	if (rc != 0) {
		free(v);
		snprintf(err, errlen, "objects: xfer_store_list() failed: %s",
		         kvf_strerror(rc));
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}
