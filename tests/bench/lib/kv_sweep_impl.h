/*
 * tests/bench/lib/kv_sweep_impl.h - what the files of kvferry-bench -m kv
 * share (kv_sweep.c: sidecars, engines, the plan and the sweep;
 * kv_sweep_mem.c: regions, fill and check; kv_sweep_run.c: requests in
 * flight; kv_sweep_out.c: the table, CSV and JSON; kv_sweep_opts.c: the
 * options). Not for the bench programs: they include kv_sweep.h.
 */
#ifndef KVF_BENCH_KV_SWEEP_IMPL_H
#define KVF_BENCH_KV_SWEEP_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "tests/bench/lib/fi_raw.h"
#include "tests/bench/lib/kv_shape.h"
#include "tests/bench/lib/kv_sweep.h"
#include "tests/tap/proc.h"

#define KVS_SEED 0x6b7673776565702bull
#define KVS_MAX_TP 64u
#define KVS_MAX_PEERS 16u
#define KVS_MAX_RAILS 16u
#define KVS_MAX_CONC 256u
#define KVS_MAX_TOKENS (1u << 20)
/* The raw baseline's footprint at most (fi_raw_bench -F): past any
 * cache, and both of its processes allocate it. */
#define KVS_RAW_FOOTPRINT_MAX (1ull << 30)
/* A byte-segment transfer carries at most this many segments (512 KiB of
 * submission ring); longer requests become several transfers per rank
 * pair, each with its own notification. */
#define KVS_SEGS_PER_XFER 16384u
#define KVS_BLOCKS_PER_XFER 16384u
#define KVS_RING_BYTES (8u << 20)
#define KVS_XFER_TIMEOUT_MS 120000u
#define KVS_QUIET_S 120.0 /* no event for this long ends the run */
#define KVS_MEM_MARGIN (512ull << 20)

/* One engine: a TP rank of the prefill side or of a decode peer. */
struct kvs_engine {
	kvf_client *c;
	char name[40];
	struct kv_shape sh;
	kvf_region reg;
	uint8_t *base;
	uint32_t nblocks;
	uint64_t bytes;
	bool has_reg;
	kvf_peer *to; /* to[e]: engine e as this one's peer */
};

/* Prefill rank i to decode rank j of every peer: heads [h_lo, h_hi). */
struct kvs_pair {
	uint32_t i, j, h_lo, h_hi;
	bool blocks; /* whole pieces: kvf_submit_blocks */
};

struct kvs_req {
	uint64_t id;
	uint32_t peer, slot;
	uint32_t dec_left;  /* decode-side events to come */
	uint32_t done_left; /* initiators' completions to come */
	double t0, t_dec;
	bool live;
};

struct kvs_out {
	uint32_t eng;
	kvf_xfer x;
	uint32_t req;
};

struct kvs {
	struct kvs_opts o;
	struct tp_daemon *sc; /* [0] prefill, [1 + k] decode peer k */
	uint32_t nsc;
	struct kvs_engine *eng; /* prefill ranks, then peer k rank j */
	uint32_t neng;
	struct kvs_pair *pairs;
	uint32_t npairs;
	uint64_t req_bytes, req_segs, op_bytes;
	uint32_t req_xfers;
	uint32_t
	    *rank_xfers; /* [j]: transfers of a request to decode rank j */
	/* Per length. */
	uint32_t nb, slots;
	uint8_t *used, *busy; /* [peer * slots + slot] */
	struct kvs_req *reqs; /* conc entries */
	uint32_t
	    *rank_left; /* [req * decode_tp + j]: rank j's events to come */
	struct kvs_out *outs;
	size_t nouts, capouts;
	struct kvf_seg *segs;
	uint32_t *lb, *rb;
	uint64_t next_id;
	/* The run in progress. */
	uint32_t run_done, run_live;
	double *run_lat, t_end, last_event;
	int idle;
	bool mout_started;
	char fabric_addr[256]; /* the prefill sidecar's, as it reports it */
	uint64_t rail0[KVS_MAX_RAILS]; /* bytes per rail before a length */
	char rail_pct[128];            /* the timed requests' split, "52 48" */
	double max_ms;                 /* the slowest timed request */
};

/* The first engine of decode peer peer. */
static inline uint32_t kvs_p0(const struct kvs *K, uint32_t peer)
{
	return K->o.tp_p + peer * K->o.tp_d;
}

static inline const char *kvs_op(const struct kvs *K)
{
	return K->o.read ? "read" : "write";
}

/* Blocks of a request one transfer of rank pair pr carries. */
static inline uint32_t kvs_chunk(
    const struct kvs *K, const struct kvs_pair *pr)
{
	uint32_t per = K->o.preset->layers * K->eng[0].sh.kinds;

	if (pr->blocks)
		return KVS_BLOCKS_PER_XFER;
	return KVS_SEGS_PER_XFER / per ? KVS_SEGS_PER_XFER / per : 1;
}

/* Decode block of logical block b in request slot s. */
static inline uint32_t kvs_dblock(const struct kvs *K, uint32_t s, uint32_t b)
{
	return kv_decode_block(K->slots * K->nb, s * K->nb + b);
}

/* kv_sweep_mem.c. Regions for a request of K->nb blocks: false with why
 * when they cannot be had (nothing is left allocated then). */
bool kvs_alloc(struct kvs *K, char *why, size_t n);
void kvs_free_regions(struct kvs *K);
/* The request's pattern into the prefill ranks' regions. */
void kvs_fill(struct kvs *K);
/* The initiators learn the targets' new regions. */
void kvs_resolve(struct kvs *K);
/* Every slot written since the last zeroing must hold the request's
 * bytes, on every decode rank of its peer; a wrong byte ends the run. */
void kvs_check(struct kvs *K, uint64_t tokens, const char *when);

/* kv_sweep_run.c. n requests, up to -c in flight, round-robin over the
 * peers; lat gets each one's seconds. Returns the seconds from the first
 * submit to the last decode-side event. */
double kvs_run(struct kvs *K, uint32_t n, double *lat);

/* kv_sweep_out.c. The table's heading; one row: a measurement, or a
 * skipped length when skip is set. */
void kvs_describe(struct kvs *K);
void kvs_row(struct kvs *K, uint64_t tokens, uint32_t iters, double ms,
    double gbps, double raw, const char *skip);

#endif
