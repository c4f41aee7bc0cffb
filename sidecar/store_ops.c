/*
 * sidecar/store_ops.c - the storage tier as a transfer target. An engine's
 * save or load arrives as one IPC_SUB_STORE record on its submission ring;
 * the progress thread validates it, resolves the region (it must belong to
 * the engine and be host memory), turns the block ids into one pointer per
 * layer-block and hands the list to the io_uring store (xfer/store.h). When
 * the store's completion comes back, the request ends with one
 * sc_xfers_complete carrying the store's status and message.
 *
 * Lifetimes: each request holds a reference on its session and on a cache
 * entry for its region, which itself holds a region reference, so an
 * engine that dies or deregisters while its I/O is in flight leaves the
 * memory mapped until the kernel is done with it. The cache also remembers
 * the region's io_uring buffer registration (done once per region, so
 * blocks move with READ_FIXED/WRITE_FIXED); a periodic sweep drops entries
 * whose region left the registry and has nothing in flight.
 *
 * Threads: the store is driven by the progress thread. kvferryctl objects
 * lists the catalogue from a control thread, so every call into the store
 * is made under store_lock; the cache and the requests are the progress
 * thread's alone (start and stop run while it does not).
 *
 * One daemon per process: the state is file-static.
 */
#include "sidecar/store_ops.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/kvferry.h"
#include "ipc/wire.h"
#include "sidecar/ctl_server.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

#define NO_BUF UINT32_MAX
#define DONE_BATCH 32
#define SWEEP_NS 100000000ull
/* Pointers in one request: bounds the sidecar memory one record costs. */
#define MAX_STORE_BLOCKS (1u << 24)

struct sreg {
	struct sc_region *r; /* held while the entry lives */
	uint32_t buf;        /* xfer_store registration, or NO_BUF */
	uint32_t inflight;   /* requests using it */
	struct sreg *next;
};

struct sreq {
	uint64_t id;
	struct sc_session *s; /* held */
	struct sreg *reg;
	bool save;
	uint64_t start_ns;
	struct sreq *prev, *next; /* requests in flight */
};

struct sc_store {
	struct sc_daemon *d;
	pthread_mutex_t lock; /* around every xfer_store call */
	struct xfer_store *st;
	/* Progress thread only. */
	struct sreg *regs;
	struct sreq *reqs;
	uint32_t inflight;
	uint64_t last_sweep;
	bool reg_warned;
};

static struct sc_store store = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- region cache ----------------------------------------------------- */

static struct sreg *sreg_get(struct sc_store *g, struct sc_region *r)
{
	struct sreg *e;
	int rc;

	for (e = g->regs; e; e = e->next)
		if (e->r == r)
			return e;
	if (!(e = calloc(1, sizeof *e)))
		return NULL;
	sc_region_hold(r);
	e->r = r;
	e->buf = NO_BUF;
	/* Registration pins the pages once rather than per I/O; the store
	 * works without it (plain read/write), so a refusal is only logged. */
	pthread_mutex_lock(&g->lock);
	rc = xfer_store_register_memory(g->st, r->base, r->len, &e->buf);
	pthread_mutex_unlock(&g->lock);
	if (rc != 0) {
		e->buf = NO_BUF;
		if (!g->reg_warned)
			sc_info("store: region %u (%" PRIu64 " bytes): "
			        "xfer_store_register_memory() failed: %s; its "
			        "blocks move with plain read/write", r->id,
			        r->len, kvf_strerror(rc));
		g->reg_warned = true;
	}
	e->next = g->regs;
	g->regs = e;
	return e;
}

static void sreg_drop(struct sc_store *g, struct sreg *e)
{
	if (e->buf != NO_BUF && g->st) {
		pthread_mutex_lock(&g->lock);
		xfer_store_unregister_memory(g->st, e->buf);
		pthread_mutex_unlock(&g->lock);
	}
	sc_region_rele(e->r);
	free(e);
}

/* Let go of regions the engine deregistered (or lost with its session)
 * once nothing of ours still reads or writes them. */
static void sweep(struct sc_store *g)
{
	struct sc_registry *reg = g->d->registry;
	struct sreg **pp = &g->regs, *e;

	while ((e = *pp)) {
		bool gone;
		if (e->inflight) {
			pp = &e->next;
			continue;
		}
		pthread_mutex_lock(&reg->lock);
		gone = sc_idmap_get(&reg->regions, e->r->id) != e->r;
		pthread_mutex_unlock(&reg->lock);
		if (!gone) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		sc_debug("store: region %u released", e->r->id);
		sreg_drop(g, e);
	}
}

/* ---- requests --------------------------------------------------------- */

static void refuse(struct sc_daemon *d, struct sc_session *s, uint64_t id,
                   int status, const char *msg)
{
	sc_info("storage request %llu of %s refused: %s (%s)",
	        (unsigned long long)id, s->name, msg, kvf_strerror(status));
	sc_xfers_complete(d, s, id, status, 0, msg);
}

/* Check the request against region r (registry lock held) and build the
 * block pointers; 0 or KVF_E* with the reason in err. */
static int build_ptrs(const struct ipc_store_view *v, struct sc_region *r,
                      void ***out, uint32_t *nout, uint64_t *len_out,
                      char *err, size_t errlen)
{
	const struct ipc_sub_store *h = v->hdr;
	const char *what = h->op == IPC_STORE_SAVE ? "save" : "load";
	void **p;
	uint64_t total;

	if (h->mode == IPC_STORE_BYTES) {
		for (uint32_t i = 0; i < h->count; i++) {
			uint64_t o = v->offsets[i];
			if (o > r->len || h->range_len > r->len - o) {
				snprintf(err, errlen, "%s '%s': range %u "
				         "[%" PRIu64 ", +%" PRIu64 ") is outside "
				         "region %u (%" PRIu64 " bytes)", what,
				         v->name, i, o, h->range_len, r->id,
				         r->len);
				return KVF_ERANGE;
			}
		}
		if (!(p = malloc(sizeof *p * h->count)))
			goto nomem;
		for (uint32_t i = 0; i < h->count; i++)
			p[i] = r->base + v->offsets[i];
		*out = p;
		*nout = h->count;
		*len_out = h->range_len;
		return 0;
	}
	if (!r->has_layout) {
		snprintf(err, errlen, "%s '%s': region %u has no KV layout "
		         "(register it with one, or use the byte-range form)",
		         what, v->name, r->id);
		return KVF_EINVAL;
	}
	total = (uint64_t)h->count * r->layout.num_layers;
	if (total > MAX_STORE_BLOCKS) {
		snprintf(err, errlen, "%s '%s': %u blocks of %u layers are %"
		         PRIu64 " pieces, more than %u in one request", what,
		         v->name, h->count, r->layout.num_layers, total,
		         MAX_STORE_BLOCKS);
		return KVF_EINVAL;
	}
	for (uint32_t i = 0; i < h->count; i++) {
		if (v->blocks[i] >= r->layout.num_blocks) {
			snprintf(err, errlen, "%s '%s': block id %u (entry %u) "
			         "is outside region %u's %u blocks", what,
			         v->name, v->blocks[i], i, r->id,
			         r->layout.num_blocks);
			return KVF_ERANGE;
		}
	}
	if (!(p = malloc(sizeof *p * total)))
		goto nomem;
	/* Block-major: block i's layers are pieces i*L .. i*L+L-1, so an
	 * object loads into any region of the same layers and block size. */
	for (uint32_t i = 0; i < h->count; i++)
		for (uint32_t l = 0; l < r->layout.num_layers; l++)
			p[(uint64_t)i * r->layout.num_layers + l] =
				r->base + r->layout.offset +
				(uint64_t)l * r->layout.layer_stride +
				(uint64_t)v->blocks[i] * r->layout.block_stride;
	*out = p;
	*nout = (uint32_t)total;
	*len_out = r->layout.block_bytes;
	return 0;
nomem:
	snprintf(err, errlen, "%s '%s': sidecar out of memory", what, v->name);
	return KVF_ENOMEM;
}

void sc_store_accept(struct sc_daemon *d, struct sc_session *s,
                     const void *rec, uint32_t len)
{
	struct sc_store *g = &store;
	struct sc_registry *reg = d->registry;
	struct ipc_store_view v;
	struct sc_region *r;
	const struct kvf_layout *layout;
	struct sreq *q;
	void **ptrs = NULL;
	uint32_t nptrs = 0;
	uint64_t blen = 0, id = 0;
	char err[512]; /* cut to IPC_MSG_MAX on the ring */
	int rc;

	if (len >= sizeof id)
		memcpy(&id, rec, sizeof id);
	rc = ipc_wire_parse_store(rec, len, &v, err, sizeof err);
	if (rc != 0) {
		sc_warn("engine %s: malformed storage record: %s", s->name,
		        err);
		sc_xfers_complete(d, s, id, rc, 0, err);
		return;
	}
	atomic_fetch_add(&d->counters.xfers_total, 1);
	if (!g->st) {
		sc_xfers_complete(d, s, id, KVF_ENOTSUP, 0,
		                  "no storage directory is configured on this "
		                  "sidecar: start kvferryd with --store-dir DIR "
		                  "(or KVFERRY_STORE_DIR)");
		return;
	}
	if (atomic_load(&d->draining)) {
		sc_xfers_complete(d, s, id, KVF_EBUSY, 0,
		                  "sidecar is draining: new storage requests are "
		                  "refused");
		return;
	}

	pthread_mutex_lock(&reg->lock);
	r = sc_idmap_get(&reg->regions, v.hdr->region);
	if (!r || r->session_id != s->id) {
		rc = KVF_ENOENT;
		snprintf(err, sizeof err, "%s '%s': region %u is not registered "
		         "by this engine",
		         v.hdr->op == IPC_STORE_SAVE ? "save" : "load", v.name,
		         v.hdr->region);
	} else if (r->kind != XFER_MEM_HOST) {
		rc = KVF_ENOTSUP;
		snprintf(err, sizeof err, "%s '%s': region %u is GPU memory: "
		         "GPU regions: storage needs the staging pipeline",
		         v.hdr->op == IPC_STORE_SAVE ? "save" : "load", v.name,
		         r->id);
	} else {
		rc = build_ptrs(&v, r, &ptrs, &nptrs, &blen, err, sizeof err);
		if (rc == 0)
			sc_region_hold(r);
	}
	pthread_mutex_unlock(&reg->lock);
	if (rc != 0) {
		refuse(d, s, id, rc, err);
		return;
	}

	q = calloc(1, sizeof *q);
	if (q)
		q->reg = sreg_get(g, r);
	sc_region_rele(r); /* the cache entry holds its own */
	if (!q || !q->reg) {
		free(q);
		free(ptrs);
		refuse(d, s, id, KVF_ENOMEM, "sidecar out of memory");
		return;
	}
	q->id = id;
	q->s = s;
	q->save = v.hdr->op == IPC_STORE_SAVE;
	q->start_ns = sc_now_ns();
	/* Byte ranges are not blocks of the layout: saved without one. */
	layout = v.hdr->mode == IPC_STORE_BLOCKS ? &r->layout : NULL;
	pthread_mutex_lock(&g->lock);
	if (q->save)
		rc = xfer_store_save(g->st, v.name, layout, ptrs, nptrs, blen,
		                     q);
	else
		rc = xfer_store_load(g->st, v.name, layout, ptrs, nptrs, blen,
		                     q);
	pthread_mutex_unlock(&g->lock);
	free(ptrs); /* the store keeps its own copy of the list */
	if (rc != 0) {
		snprintf(err, sizeof err, "%s '%s': the store refused: %s",
		         q->save ? "save" : "load", v.name, kvf_strerror(rc));
		free(q);
		refuse(d, s, id, rc, err);
		return;
	}
	sc_session_hold(s);
	q->next = g->reqs;
	if (g->reqs)
		g->reqs->prev = q;
	g->reqs = q;
	q->reg->inflight++;
	g->inflight++;
	atomic_fetch_add(&d->counters.xfers_in_flight, 1);
	sc_debug("storage request %llu of %s: %s '%s', %u pieces of %" PRIu64
	         " bytes", (unsigned long long)id, s->name,
	         q->save ? "save" : "load", v.name, nptrs, blen);
}

static void req_free(struct sc_store *g, struct sreq *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		g->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->reg->inflight--;
	g->inflight--;
	sc_session_rele(q->s);
	free(q);
}

int sc_store_progress(struct sc_daemon *d)
{
	struct sc_store *g = &store;
	struct xfer_store_done done[DONE_BATCH];
	int n, total = 0;

	if (!g->st)
		return 0;
	do {
		pthread_mutex_lock(&g->lock);
		n = xfer_store_poll(g->st, done, DONE_BATCH);
		pthread_mutex_unlock(&g->lock);
		for (int i = 0; i < n; i++) {
			struct sreq *q = done[i].ctx;
			uint64_t us = (sc_now_ns() - q->start_ns) / 1000;
			if (done[i].status == 0) {
				atomic_fetch_add(&d->counters.bytes_total,
				                 done[i].bytes);
				sc_debug("storage request %llu of %s: done, "
				         "%" PRIu64 " bytes in %" PRIu64 " us",
				         (unsigned long long)q->id, q->s->name,
				         done[i].bytes, us);
			} else {
				sc_info("storage request %llu of %s: %s (%s)",
				        (unsigned long long)q->id, q->s->name,
				        done[i].msg,
				        kvf_strerror(done[i].status));
			}
			sc_xfers_complete(d, q->s, q->id, done[i].status,
			                  done[i].bytes,
			                  done[i].status ? done[i].msg : NULL);
			atomic_fetch_sub(&d->counters.xfers_in_flight, 1);
			req_free(g, q);
		}
		total += n;
	} while (n == DONE_BATCH);
	if (g->regs) {
		uint64_t now = sc_now_ns();
		if (now - g->last_sweep > SWEEP_NS) {
			g->last_sweep = now;
			sweep(g);
		}
	}
	return total;
}

bool sc_store_busy(struct sc_daemon *d)
{
	(void)d;
	return store.inflight != 0;
}

/* ---- start / stop ----------------------------------------------------- */

int sc_store_start(struct sc_daemon *d)
{
	struct sc_store *g = &store;
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
	return 0;
}

void sc_store_stop(struct sc_daemon *d)
{
	struct sc_store *g = &store;
	struct xfer_store *st;

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
	while (g->reqs) {
		atomic_fetch_sub(&g->d->counters.xfers_in_flight, 1);
		req_free(g, g->reqs);
	}
	while (g->regs) {
		struct sreg *e = g->regs;
		g->regs = e->next;
		e->buf = NO_BUF; /* released with the store */
		sreg_drop(g, e);
	}
}

int sc_store_objects(struct sc_daemon *d, struct xfer_store_object **out,
                     size_t *n, uint64_t *used, uint64_t *capacity,
                     char *dir, size_t dirlen, char *err, size_t errlen)
{
	struct sc_store *g = &store;
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
