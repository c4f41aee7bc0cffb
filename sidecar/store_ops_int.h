/*
 * sidecar/store_ops_int.h - the storage tier's private state, shared by the
 * files of sidecar/store_ops.h: store_ops.c (start, stop, the catalogue),
 * store_req.c (requests and completions), store_stage.c (GPU regions
 * staged through pinned slabs) and store_cache.c (the region cache). The
 * requests, the cache and the slabs are the progress thread's alone; every
 * call into the store is made under the lock of sc_store_state.
 */
#ifndef KVF_SIDECAR_STORE_OPS_INT_H
#define KVF_SIDECAR_STORE_OPS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "ipc/wire.h"
#include "sidecar/store_ops.h"

struct sc_region;
struct xfer_cuda_batch;
struct xfer_cuda_copier;

#define NO_BUF UINT32_MAX
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

/* The storage tier: one per process (defined in store_ops.c). */
extern struct sc_store sc_store_state;

/* The cache entry of region r, made and held on first use; NULL: no
 * memory. */
struct sreg *sc_store_sreg_get(struct sc_store *g, struct sc_region *r);

/* Free a cache entry: unregister its buffer, release its region. */
void sc_store_sreg_drop(struct sc_store *g, struct sreg *e);

/* Drop the entries of regions gone from the registry, unused by us. */
void sc_store_sweep(struct sc_store *g);

/* A pinned slab of len bytes, counted in the pool; 0 or KVF_E*. */
int sc_store_slab_new(struct sc_store *g, uint64_t len, struct slab **out);

/* Unregister and free a slab, and take it off the pinned count. */
void sc_store_slab_free(struct sc_store *g, struct slab *sl);

/* Return q's slabs to the pool (standard ones) or free them. */
void sc_store_stage_give_back(struct sc_store *g, struct sreq *q);

/* The slabs a GPU request needs; KVF_ENOSPC (reason in err) if too many. */
int sc_store_stage_plan(struct sreq *q, char *err, size_t errlen);

/* Start q's copies, device-to-host when d2h; a failure ends q. */
int sc_store_copy_start(struct sc_store *g, struct sreq *q, bool d2h);

/* Start the queued GPU requests the pool has room for; returns how many. */
int sc_store_pump(struct sc_store *g);

/* q's copy batch finished with rc: on to the store, or end q. */
void sc_store_copy_done(struct sc_store *g, struct sreq *q, int rc);

/* Unlink and free q, giving back its slabs, cache entry and session. */
void sc_store_req_free(struct sc_store *g, struct sreq *q);

/* Complete q to its engine (status, bytes, msg) and free it. */
void sc_store_req_end(struct sc_store *g, struct sreq *q, int status,
                      uint64_t bytes, const char *msg);

/* Hand q's pointers to the store (save or load); 0 or KVF_E*. */
int sc_store_submit(struct sc_store *g, struct sreq *q, void **ptrs);

/* End q with the store's refusal rc. */
void sc_store_refused(struct sc_store *g, struct sreq *q, int rc);

#endif
