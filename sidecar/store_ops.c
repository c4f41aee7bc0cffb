/*
 * sidecar/store_ops.c - the storage tier as a transfer target. An engine's
 * save or load arrives as one IPC_SUB_STORE record on its submission ring;
 * the progress thread validates it, resolves the region (it must belong to
 * the engine), turns the block ids into one pointer per layer-block and
 * hands the list to the io_uring store (xfer/store.h). When the store's
 * completion comes back, the request ends with one sc_xfers_complete
 * carrying the store's status and message.
 *
 * GPU regions are staged through pinned host memory, since the store only
 * reads and writes host memory: a save copies the layer-blocks
 * device-to-host into staging slabs (one asynchronous batch on the copy
 * engine, polled from the progress loop) and then saves the slabs; a load
 * reads the object into slabs and, only when every checksum verified,
 * copies it host-to-device, completing when that batch is done. So a
 * corrupt or mismatched object never reaches the GPU memory. The slabs
 * (SLAB_BYTES each, a layer-block never straddles two) come from a pool
 * of at most STAGE_MAX pinned bytes, grown on demand and kept; requests
 * wait for slabs in arrival order, and one that needs more than the whole
 * pool is refused with KVF_ENOSPC. A piece longer than a slab (a large
 * byte range) gets a slab of its own size, freed after the request.
 *
 * Lifetimes: each request holds a reference on its session and on a cache
 * entry for its region, which itself holds a region reference, so an
 * engine that dies or deregisters while its I/O or copies are in flight
 * leaves the memory mapped (and a GPU region imported) until the kernel
 * and the copy engine are done with it. The cache also remembers a host
 * region's io_uring buffer registration (done once per region, so blocks
 * move with READ_FIXED/WRITE_FIXED; standard slabs are registered too); a
 * periodic sweep drops entries whose region left the registry and has
 * nothing in flight.
 *
 * Threads: the store is driven by the progress thread. kvferryctl objects
 * lists the catalogue from a control thread, so every call into the store
 * is made under store_lock; the cache, the slabs and the requests are the
 * progress thread's alone (start and stop run while it does not). While
 * staging copies run, the progress loop is kept from sleeping
 * (sc_gpu_busy_add): the copier has no fd that could wake it.
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
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/cuda.h"
#include "xfer/fabric.h"

#define NO_BUF UINT32_MAX
#define DONE_BATCH 32
#define SWEEP_NS 100000000ull
/* Pointers in one request: bounds the sidecar memory one record costs. */
#define MAX_STORE_BLOCKS (1u << 24)
/* Staging of GPU regions: slab size, pinned bytes at most, slabs made at
 * start (so small requests never wait for cudaHostAlloc), and how long
 * stop waits for a copy still running. */
#define SLAB_BYTES (64ull << 20)
#define STAGE_MAX (1ull << 30)
#define SLABS_AT_START 2u
#define STOP_WAIT_MS 5000

struct sreg {
	struct sc_region *r; /* held while the entry lives */
	uint32_t buf;        /* xfer_store registration, or NO_BUF */
	uint32_t inflight;   /* requests using it */
	struct sreg *next;
};

/* Pinned host memory a GPU request stages through. */
struct slab {
	uint8_t *p;
	uint64_t len;
	uint32_t buf; /* store registration, or NO_BUF */
	struct slab *next;
};

enum gphase {
	GP_HOST = 0, /* host region: the store reads or writes it directly */
	GP_QUEUED,   /* GPU region: waiting for staging slabs */
	GP_D2H,      /* save: device-to-host copies into the slabs */
	GP_STORE,    /* the store's I/O (on the slabs for GPU regions) */
	GP_H2D,      /* load: host-to-device copies out of the slabs */
};

struct sreq {
	uint64_t id;
	struct sc_session *s; /* held */
	struct sreg *reg;
	bool save;
	uint64_t start_ns;
	struct sreq *prev, *next; /* requests in flight */
	enum gphase phase;
	/* GPU regions only. */
	int dev;
	uint32_t n;         /* pieces */
	uint64_t blen;      /* bytes of each */
	void **dptrs;       /* each piece in device memory */
	void **hptrs;       /* its place in the slabs */
	struct slab **slabs; /* held while staged */
	uint32_t nslabs;
	uint64_t slab_len;
	struct xfer_cuda_batch *batch;
	bool has_layout;
	struct kvf_layout layout;
	uint64_t bytes; /* what the store moved */
	char name[IPC_STORE_NAME_MAX + 1];
	struct sreq *qnext; /* GP_QUEUED */
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
	/* Staging of GPU regions (progress thread). */
	struct xfer_cuda_copier *cp;
	struct slab *free_slabs; /* standard slabs not in use */
	uint64_t pinned;         /* bytes of slabs allocated */
	struct sreq *wait_head, *wait_tail;
	uint32_t copying; /* requests with a copy batch running */
	bool grow_noted;
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
	e->next = g->regs;
	g->regs = e;
	/* GPU memory never goes to the store: its slabs do. */
	if (r->kind != XFER_MEM_HOST)
		return e;
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

/* ---- staging slabs (GPU regions) -------------------------------------- */

static int slab_new(struct sc_store *g, uint64_t len, struct slab **out)
{
	struct slab *sl = calloc(1, sizeof *sl);
	int rc;

	if (!sl)
		return KVF_ENOMEM;
	rc = xfer_cuda_host_alloc(len, (void **)&sl->p);
	if (rc != 0) {
		sc_warn("store: staging slab of %" PRIu64 " bytes: "
		        "xfer_cuda_host_alloc() failed: %s", len,
		        kvf_strerror(rc));
		free(sl);
		return rc;
	}
	sl->len = len;
	sl->buf = NO_BUF;
	/* Standard slabs live until stop: register them so their I/O skips
	 * the per-request page pinning. A refusal only costs that. */
	if (len == SLAB_BYTES && g->st) {
		pthread_mutex_lock(&g->lock);
		if (xfer_store_register_memory(g->st, sl->p, len, &sl->buf))
			sl->buf = NO_BUF;
		pthread_mutex_unlock(&g->lock);
	}
	g->pinned += len;
	*out = sl;
	return 0;
}

static void slab_free(struct sc_store *g, struct slab *sl)
{
	if (sl->buf != NO_BUF && g->st) {
		pthread_mutex_lock(&g->lock);
		xfer_store_unregister_memory(g->st, sl->buf);
		pthread_mutex_unlock(&g->lock);
	}
	xfer_cuda_host_free(sl->p);
	g->pinned -= sl->len;
	free(sl);
}

static uint32_t free_count(const struct sc_store *g)
{
	uint32_t n = 0;
	for (const struct slab *sl = g->free_slabs; sl; sl = sl->next)
		n++;
	return n;
}

/* Give q its slabs: 0, KVF_EAGAIN when the pool has no room now (q waits
 * for a request to give some back), or an allocation error. */
static int stage_take(struct sc_store *g, struct sreq *q)
{
	uint64_t stride = (q->blen + XFER_STORE_ALIGN - 1) /
	                  XFER_STORE_ALIGN * XFER_STORE_ALIGN;
	uint64_t per = q->slab_len / stride;
	uint32_t i, have = free_count(g);
	int rc = 0;

	if (q->slab_len == SLAB_BYTES) {
		uint32_t grow = q->nslabs > have ? q->nslabs - have : 0;
		if (g->pinned + grow * SLAB_BYTES > STAGE_MAX)
			return KVF_EAGAIN;
		if (grow && !g->grow_noted) {
			sc_info("store: staging pool grows to %" PRIu64
			        " MiB pinned (at most %llu)",
			        (uint64_t)(g->pinned + grow * SLAB_BYTES) >> 20,
			        STAGE_MAX >> 20);
			g->grow_noted = true;
		}
	} else {
		uint64_t need = q->nslabs * q->slab_len;
		/* Idle standard slabs make room for a big piece: they come
		 * back on demand. */
		while (g->pinned + need > STAGE_MAX && g->free_slabs) {
			struct slab *sl = g->free_slabs;
			g->free_slabs = sl->next;
			slab_free(g, sl);
		}
		if (g->pinned + need > STAGE_MAX)
			return KVF_EAGAIN;
	}
	if (!(q->slabs = calloc(q->nslabs, sizeof *q->slabs)))
		return KVF_ENOMEM;
	for (i = 0; i < q->nslabs; i++) {
		if (q->slab_len == SLAB_BYTES && g->free_slabs) {
			q->slabs[i] = g->free_slabs;
			g->free_slabs = q->slabs[i]->next;
			continue;
		}
		if ((rc = slab_new(g, q->slab_len, &q->slabs[i])) != 0)
			break;
	}
	if (rc != 0) {
		q->nslabs = i; /* give back what was taken */
		return rc;
	}
	/* Each piece starts at an aligned offset so it can move with
	 * O_DIRECT; pieces never straddle two slabs. */
	for (uint64_t k = 0; k < q->n; k++)
		q->hptrs[k] = q->slabs[k / per]->p + k % per * stride;
	return 0;
}

static void stage_give_back(struct sc_store *g, struct sreq *q)
{
	for (uint32_t i = 0; q->slabs && i < q->nslabs; i++) {
		struct slab *sl = q->slabs[i];
		if (sl->len == SLAB_BYTES) {
			sl->next = g->free_slabs;
			g->free_slabs = sl;
		} else {
			slab_free(g, sl);
		}
	}
	free(q->slabs);
	q->slabs = NULL;
	q->nslabs = 0;
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

/* Slabs a GPU request needs; KVF_ENOSPC (reason in err) when more than
 * the whole pool. */
static int stage_plan(struct sreq *q, char *err, size_t errlen)
{
	uint64_t stride = (q->blen + XFER_STORE_ALIGN - 1) /
	                  XFER_STORE_ALIGN * XFER_STORE_ALIGN;
	uint64_t nslabs, per;

	if (stride <= SLAB_BYTES) {
		per = SLAB_BYTES / stride;
		nslabs = (q->n + per - 1) / per;
		q->slab_len = SLAB_BYTES;
	} else {
		nslabs = q->n;
		q->slab_len = stride;
	}
	if (nslabs * q->slab_len > STAGE_MAX) {
		snprintf(err, errlen, "%s '%s': %u pieces of %" PRIu64
		         " bytes from GPU memory need %" PRIu64 " MiB of "
		         "staging, more than the %llu MiB this sidecar pins: "
		         "split the request", q->save ? "save" : "load",
		         q->name, q->n, q->blen,
		         nslabs * q->slab_len >> 20, STAGE_MAX >> 20);
		return KVF_ENOSPC;
	}
	q->nslabs = (uint32_t)nslabs;
	return 0;
}

static void req_free(struct sc_store *g, struct sreq *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		g->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	stage_give_back(g, q);
	q->reg->inflight--;
	g->inflight--;
	sc_session_rele(q->s);
	free(q->dptrs);
	free(q->hptrs);
	free(q);
}

/* The one completion of a request in flight. */
static void req_end(struct sc_store *g, struct sreq *q, int status,
                    uint64_t bytes, const char *msg)
{
	struct sc_daemon *d = g->d;
	uint64_t us = (sc_now_ns() - q->start_ns) / 1000;

	if (status == 0) {
		atomic_fetch_add(&d->counters.bytes_total, bytes);
		sc_debug("storage request %llu of %s: done, %" PRIu64
		         " bytes in %" PRIu64 " us", (unsigned long long)q->id,
		         q->s->name, bytes, us);
	} else {
		sc_info("storage request %llu of %s: %s (%s)",
		        (unsigned long long)q->id, q->s->name, msg,
		        kvf_strerror(status));
	}
	sc_xfers_complete(d, q->s, q->id, status, status ? 0 : bytes,
	                  status ? msg : NULL);
	atomic_fetch_sub(&d->counters.xfers_in_flight, 1);
	req_free(g, q);
}

/* Hand q's pointers (host memory, or its slabs) to the store. */
static int store_submit(struct sc_store *g, struct sreq *q, void **ptrs)
{
	const struct kvf_layout *layout = q->has_layout ? &q->layout : NULL;
	int rc;

	pthread_mutex_lock(&g->lock);
	if (q->save)
		rc = xfer_store_save(g->st, q->name, layout, ptrs, q->n,
		                     q->blen, q);
	else
		rc = xfer_store_load(g->st, q->name, layout, ptrs, q->n,
		                     q->blen, q);
	pthread_mutex_unlock(&g->lock);
	if (rc == 0)
		q->phase = GP_STORE;
	return rc;
}

static void store_refused(struct sc_store *g, struct sreq *q, int rc)
{
	char err[512];
	snprintf(err, sizeof err, "%s '%s': the store refused: %s",
	         q->save ? "save" : "load", q->name, kvf_strerror(rc));
	req_end(g, q, rc, 0, err);
}

/* Start q's copies between its GPU region and its slabs. */
static int copy_start(struct sc_store *g, struct sreq *q, bool d2h)
{
	struct xfer_cuda_copy *v = malloc(sizeof *v * q->n);
	char err[512];
	int rc;

	if (!v) {
		rc = KVF_ENOMEM;
	} else {
		for (uint32_t i = 0; i < q->n; i++) {
			v[i].dst = d2h ? q->hptrs[i] : q->dptrs[i];
			v[i].src = d2h ? q->dptrs[i] : q->hptrs[i];
			v[i].len = q->blen;
		}
		rc = xfer_cuda_copy_start(g->cp, q->dev,
		                          d2h ? XFER_CUDA_D2H : XFER_CUDA_H2D,
		                          v, q->n, NULL, &q->batch);
		free(v);
	}
	if (rc != 0) {
		q->batch = NULL;
		snprintf(err, sizeof err, "%s '%s': %s copies on GPU %d: "
		         "xfer_cuda_copy_start() failed: %s",
		         q->save ? "save" : "load", q->name,
		         d2h ? "device-to-host" : "host-to-device", q->dev,
		         kvf_strerror(rc));
		req_end(g, q, rc, 0, err);
		return rc;
	}
	q->phase = d2h ? GP_D2H : GP_H2D;
	g->copying++;
	sc_gpu_busy_add(g->d, 1);
	return 0;
}

/* Start the queued GPU requests the pool has room for, oldest first. */
static int pump(struct sc_store *g)
{
	struct sreq *q;
	int work = 0, rc;

	while ((q = g->wait_head)) {
		rc = stage_take(g, q);
		if (rc == KVF_EAGAIN)
			break;
		g->wait_head = q->qnext;
		if (!g->wait_head)
			g->wait_tail = NULL;
		q->qnext = NULL;
		work++;
		if (rc != 0) {
			char err[512];
			snprintf(err, sizeof err, "%s '%s': no pinned staging "
			         "memory: %s", q->save ? "save" : "load",
			         q->name, kvf_strerror(rc));
			req_end(g, q, rc, 0, err);
		} else if (q->save) {
			copy_start(g, q, true);
		} else if ((rc = store_submit(g, q, q->hptrs)) != 0) {
			store_refused(g, q, rc);
		}
	}
	return work;
}

/* A copy batch of q finished (or failed). */
static void copy_done(struct sc_store *g, struct sreq *q, int rc)
{
	bool d2h = q->phase == GP_D2H;
	char err[512];

	xfer_cuda_batch_free(g->cp, q->batch);
	q->batch = NULL;
	g->copying--;
	sc_gpu_busy_add(g->d, -1);
	if (rc != 0) {
		snprintf(err, sizeof err, "%s '%s': %s copies on GPU %d "
		         "failed: %s%s", q->save ? "save" : "load", q->name,
		         d2h ? "device-to-host" : "host-to-device", q->dev,
		         kvf_strerror(rc),
		         d2h ? "" : "; the blocks' GPU memory is undefined");
		req_end(g, q, rc, 0, err);
	} else if (d2h) {
		if ((rc = store_submit(g, q, q->hptrs)) != 0)
			store_refused(g, q, rc);
	} else {
		req_end(g, q, 0, q->bytes, NULL);
	}
}

void sc_store_accept(struct sc_daemon *d, struct sc_session *s,
                     const void *rec, uint32_t len)
{
	struct sc_store *g = &store;
	struct sc_registry *reg = d->registry;
	struct ipc_store_view v;
	struct sc_region *r;
	struct sreq *q;
	void **ptrs = NULL;
	uint32_t nptrs = 0;
	uint64_t blen = 0, id = 0;
	bool gpu = false;
	int dev = -1;
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
	} else if (r->kind != XFER_MEM_HOST && !(g->cp = sc_gpu_copier(d))) {
		rc = KVF_ENOTSUP;
		snprintf(err, sizeof err, "%s '%s': region %u is GPU memory "
		         "and this sidecar has no CUDA copier",
		         v.hdr->op == IPC_STORE_SAVE ? "save" : "load", v.name,
		         r->id);
	} else {
		gpu = r->kind != XFER_MEM_HOST;
		dev = r->cuda_device;
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
	if (!q || !q->reg) {
		sc_region_rele(r);
		free(q);
		free(ptrs);
		refuse(d, s, id, KVF_ENOMEM, "sidecar out of memory");
		return;
	}
	q->id = id;
	q->s = s;
	q->save = v.hdr->op == IPC_STORE_SAVE;
	q->start_ns = sc_now_ns();
	q->n = nptrs;
	q->blen = blen;
	q->dev = dev;
	/* Byte ranges are not blocks of the layout: saved without one. */
	q->has_layout = v.hdr->mode == IPC_STORE_BLOCKS;
	if (q->has_layout)
		q->layout = r->layout;
	sc_region_rele(r); /* the cache entry holds its own */
	snprintf(q->name, sizeof q->name, "%s", v.name);
	if (gpu) {
		rc = stage_plan(q, err, sizeof err);
		if (rc == 0 && !(q->hptrs = calloc(nptrs, sizeof *q->hptrs))) {
			rc = KVF_ENOMEM;
			snprintf(err, sizeof err, "sidecar out of memory");
		}
		if (rc != 0) {
			free(q->hptrs);
			free(q);
			free(ptrs);
			refuse(d, s, id, rc, err);
			return;
		}
		q->dptrs = ptrs;
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
	         " bytes%s", (unsigned long long)id, s->name,
	         q->save ? "save" : "load", v.name, nptrs, blen,
	         gpu ? " from GPU memory, staged" : "");
	if (!gpu) {
		q->phase = GP_HOST;
		rc = store_submit(g, q, ptrs);
		free(ptrs); /* the store keeps its own copy of the list */
		if (rc != 0)
			store_refused(g, q, rc);
		return;
	}
	q->phase = GP_QUEUED;
	if (g->wait_tail)
		g->wait_tail->qnext = q;
	else
		g->wait_head = q;
	g->wait_tail = q;
	pump(g);
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
			/* A verified load into GPU memory: now copy it
			 * there. A failed one never touches the GPU. */
			if (q->hptrs && !q->save && done[i].status == 0) {
				q->bytes = done[i].bytes;
				copy_start(g, q, false);
				continue;
			}
			req_end(g, q, done[i].status, done[i].bytes,
			        done[i].msg);
		}
		total += n;
	} while (n == DONE_BATCH);
	if (g->copying) {
		for (struct sreq *q = g->reqs, *next; q; q = next) {
			int rc;
			next = q->next;
			if (!q->batch)
				continue;
			rc = xfer_cuda_batch_test(q->batch);
			if (rc == KVF_EAGAIN)
				continue;
			copy_done(g, q, rc);
			total++;
		}
	}
	if (g->wait_head)
		total += pump(g);
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
	/* GPU regions stage through pinned slabs: make a few now, off the
	 * progress thread, so small requests never wait for an allocation. */
	if ((g->cp = sc_gpu_copier(d))) {
		uint32_t i;
		for (i = 0; i < SLABS_AT_START; i++) {
			struct slab *sl;
			if (slab_new(g, SLAB_BYTES, &sl) != 0)
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
	struct sc_store *g = &store;
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
		req_free(g, g->reqs);
	}
	while (g->free_slabs) {
		struct slab *sl = g->free_slabs;
		g->free_slabs = sl->next;
		sl->buf = NO_BUF; /* released with the store */
		slab_free(g, sl);
	}
	while (g->regs) {
		struct sreg *e = g->regs;
		g->regs = e->next;
		e->buf = NO_BUF; /* released with the store */
		sreg_drop(g, e);
	}
	g->cp = NULL;
	g->pinned = 0;
	g->grow_noted = false;
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
