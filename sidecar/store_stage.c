/*
 * sidecar/store_stage.c - GPU regions staged through pinned host memory,
 * since the store only reads and writes host memory: a save copies the
 * layer-blocks device-to-host into staging slabs (one asynchronous batch
 * on the copy engine, polled from the progress loop) and then saves the
 * slabs; a load reads the object into slabs and, only when every checksum
 * verified, copies it host-to-device, completing when that batch is done.
 * So a corrupt or mismatched object never reaches the GPU memory. The
 * slabs (SLAB_BYTES each, a layer-block never straddles two) come from a
 * pool of at most STAGE_MAX pinned bytes, grown on demand and kept;
 * requests wait for slabs in arrival order, and one that needs more than
 * the whole pool is refused with KVF_ENOSPC. A piece longer than a slab (a
 * large byte range) gets a slab of its own size, freed after the request.
 * While staging copies run, the progress loop is kept from sleeping
 * (sc_gpu_busy_add): the copier has no fd that could wake it.
 */
#include "sidecar/store_ops_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "xfer/cuda.h"

int sc_store_slab_new(struct sc_store *g, uint64_t len, struct slab **out)
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

void sc_store_slab_free(struct sc_store *g, struct slab *sl)
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
			sc_store_slab_free(g, sl);
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
		if ((rc = sc_store_slab_new(g, q->slab_len,
		                            &q->slabs[i])) != 0)
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

void sc_store_stage_give_back(struct sc_store *g, struct sreq *q)
{
	for (uint32_t i = 0; q->slabs && i < q->nslabs; i++) {
		struct slab *sl = q->slabs[i];
		if (sl->len == SLAB_BYTES) {
			sl->next = g->free_slabs;
			g->free_slabs = sl;
		} else {
			sc_store_slab_free(g, sl);
		}
	}
	free(q->slabs);
	q->slabs = NULL;
	q->nslabs = 0;
}

/* Slabs a GPU request needs; KVF_ENOSPC (reason in err) when more than
 * the whole pool. */
int sc_store_stage_plan(struct sreq *q, char *err, size_t errlen)
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

/* Start q's copies between its GPU region and its slabs. */
int sc_store_copy_start(struct sc_store *g, struct sreq *q, bool d2h)
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
		sc_store_req_end(g, q, rc, 0, err);
		return rc;
	}
	q->phase = d2h ? GP_D2H : GP_H2D;
	g->copying++;
	sc_gpu_busy_add(g->d, 1);
	return 0;
}

/* Start the queued GPU requests the pool has room for, oldest first. */
int sc_store_pump(struct sc_store *g)
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
			sc_store_req_end(g, q, rc, 0, err);
		} else if (q->save) {
			sc_store_copy_start(g, q, true);
		} else if ((rc = sc_store_submit(g, q, q->hptrs)) != 0) {
			sc_store_refused(g, q, rc);
		}
	}
	return work;
}

/* A copy batch of q finished (or failed). */
void sc_store_copy_done(struct sc_store *g, struct sreq *q, int rc)
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
		sc_store_req_end(g, q, rc, 0, err);
	} else if (d2h) {
		if ((rc = sc_store_submit(g, q, q->hptrs)) != 0)
			sc_store_refused(g, q, rc);
	} else {
		sc_store_req_end(g, q, 0, q->bytes, NULL);
	}
}

