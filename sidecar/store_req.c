/*
 * sidecar/store_req.c - the storage tier's requests. An engine's save or
 * load arrives as one IPC_SUB_STORE record on its submission ring; the
 * progress thread validates it, resolves the region (it must belong to the
 * engine), turns the block ids into one pointer per layer-block and hands
 * the list to the io_uring store (xfer/store.h), or first to the staging
 * of GPU regions (sidecar/store_stage.c). When the store's completion
 * comes back, the request ends with one sc_xfers_complete carrying the
 * store's status and message.
 */
#include "sidecar/store_ops_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/cuda.h"
#include "xfer/fabric.h"

#define DONE_BATCH 32
#define SWEEP_NS 100000000ull
/* Pointers in one request: bounds the sidecar memory one record costs. */
#define MAX_STORE_BLOCKS (1u << 24)

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

void sc_store_req_free(struct sc_store *g, struct sreq *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		g->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	sc_store_stage_give_back(g, q);
	q->reg->inflight--;
	g->inflight--;
	sc_session_rele(q->s);
	free(q->dptrs);
	free(q->hptrs);
	free(q);
}

/* The one completion of a request in flight. */
void sc_store_req_end(struct sc_store *g, struct sreq *q, int status,
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
	sc_store_req_free(g, q);
}

/* Hand q's pointers (host memory, or its slabs) to the store. */
int sc_store_submit(struct sc_store *g, struct sreq *q, void **ptrs)
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

void sc_store_refused(struct sc_store *g, struct sreq *q, int rc)
{
	char err[512];
	snprintf(err, sizeof err, "%s '%s': the store refused: %s",
	         q->save ? "save" : "load", q->name, kvf_strerror(rc));
	sc_store_req_end(g, q, rc, 0, err);
}

void sc_store_accept(struct sc_daemon *d, struct sc_session *s,
                     const void *rec, uint32_t len)
{
	struct sc_store *g = &sc_store_state;
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

	r = sc_xfers_region(d, s->id, v.hdr->region);
	if (!r) {
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
	if (rc != 0) {
		refuse(d, s, id, rc, err);
		return;
	}

	q = calloc(1, sizeof *q);
	if (q)
		q->reg = sc_store_sreg_get(g, r);
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
		rc = sc_store_stage_plan(q, err, sizeof err);
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
		rc = sc_store_submit(g, q, ptrs);
		free(ptrs); /* the store keeps its own copy of the list */
		if (rc != 0)
			sc_store_refused(g, q, rc);
		return;
	}
	q->phase = GP_QUEUED;
	if (g->wait_tail)
		g->wait_tail->qnext = q;
	else
		g->wait_head = q;
	g->wait_tail = q;
	sc_store_pump(g);
}

int sc_store_progress(struct sc_daemon *d)
{
	struct sc_store *g = &sc_store_state;
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
				sc_store_copy_start(g, q, false);
				continue;
			}
			sc_store_req_end(g, q, done[i].status,
			                 done[i].bytes, done[i].msg);
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
			sc_store_copy_done(g, q, rc);
			total++;
		}
	}
	if (g->wait_head)
		total += sc_store_pump(g);
	if (g->regs) {
		uint64_t now = sc_now_ns();
		if (now - g->last_sweep > SWEEP_NS) {
			g->last_sweep = now;
			sc_store_sweep(g);
		}
	}
	return total;
}

bool sc_store_busy(struct sc_daemon *d)
{
	(void)d;
	return sc_store_state.inflight != 0;
}

