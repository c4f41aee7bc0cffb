/*
 * tests/bench/lib/kv_sweep_mem.c - the KV regions of kvferry-bench -m kv:
 * one per engine, sized for the current request length (prefill ranks
 * hold one request, each decode rank a slot per request it may have in
 * flight), refused up front with the reason when the host memory or
 * /dev/shm cannot hold them, filled with the model-wide pattern on the
 * prefill side and checked in full on the decode side: a wrong byte ends
 * the run with where it landed and where it came from, before any figure
 * is printed for it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/kv_sweep_impl.h"

/* Whether need bytes of shared memory can be had; why says not. */
static bool kvs_mem_ok(uint64_t need, char *why, size_t n)
{
	unsigned long long kb = 0;
	struct statvfs v;
	char l[256];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(l, sizeof l, f))
		if (sscanf(l, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	if (kb && need + KVS_MEM_MARGIN > kb * 1024ull) {
		snprintf(why, n,
		    "needs %.2f GiB of host memory for its KV "
		    "regions (+%.1f GiB margin), MemAvailable is %.2f GiB",
		    need / 1073741824.0, KVS_MEM_MARGIN / 1073741824.0,
		    kb / 1048576.0);
		return false;
	}
	if (statvfs("/dev/shm", &v) == 0 &&
	    need > (uint64_t)v.f_bavail * v.f_frsize) {
		snprintf(why, n,
		    "needs %.2f GiB of /dev/shm for its KV "
		    "regions, %.2f GiB free there",
		    need / 1073741824.0,
		    (double)v.f_bavail * v.f_frsize / 1073741824.0);
		return false;
	}
	return true;
}

void kvs_free_regions(struct kvs *K)
{
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];

		if (E->has_reg) {
			int rc = kvf_free_region(E->c, E->reg);
			if (rc != 0)
				bench_die(
				    "engine %s: kvf_free_region(%u) failed: "
				    "%s (%d): %s",
				    E->name, E->reg, kvf_strerror(rc), rc,
				    kvf_last_error());
		}
		E->has_reg = false;
		E->base = NULL;
	}
}

/* Regions for a request of nb blocks: false with why when they cannot be
 * had (nothing is left allocated then). */
bool kvs_alloc(struct kvs *K, char *why, size_t n)
{
	uint64_t need = 0;

	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];

		E->nblocks = e < K->o.tp_p ? K->nb : K->slots * K->nb;
		E->bytes = kv_shape_region_bytes(&E->sh, E->nblocks);
		need += E->bytes;
	}
	if (!kvs_mem_ok(need, why, n))
		return false;
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];
		struct kvf_layout lay = kv_shape_layout(&E->sh, E->nblocks);
		int rc = kvf_alloc_host(
		    E->c, E->bytes, &lay, (void **)&E->base, &E->reg);
		if (rc != 0) {
			snprintf(why, n,
			    "engine %s: kvf_alloc_host(%" PRIu64
			    " bytes) failed: %s (%d): %s",
			    E->name, E->bytes, kvf_strerror(rc), rc,
			    kvf_last_error());
			kvs_free_regions(K);
			return false;
		}
		E->has_reg = true;
	}
	return true;
}

void kvs_fill(struct kvs *K)
{
	for (uint32_t e = 0; e < K->o.tp_p; e++) {
		struct kvs_engine *E = &K->eng[e];

		for (uint32_t l = 0; l < E->sh.layers; l++)
			for (uint32_t b = 0; b < K->nb; b++)
				kv_shape_fill_piece(&E->sh,
				    E->base + kv_shape_offset(
						  &E->sh, E->nblocks, l, b),
				    KVS_SEED, l, b);
	}
}

/* The initiators learn the targets' new regions: the handshake carries
 * them, and resolving an engine again refreshes them. */
void kvs_resolve(struct kvs *K)
{
	for (uint32_t k = 0; k < K->o.peers; k++)
		for (uint32_t q = 0; q < K->npairs; q++) {
			uint32_t pe = K->pairs[q].i;
			uint32_t de = kvs_p0(K, k) + K->pairs[q].j;
			uint32_t ini = K->o.read ? de : pe,
				 tgt = K->o.read ? pe : de;
			const char *url =
			    K->sc[K->o.read ? 0 : 1 + k].peer_url;
			int rc = kvf_resolve_peer(K->eng[ini].c, url,
			    K->eng[tgt].name, 10000, &K->eng[ini].to[tgt]);
			if (rc != 0)
				bench_die(
				    "engine %s: kvf_resolve_peer(%s, %s) "
				    "failed: %s (%d): %s",
				    K->eng[ini].name, url, K->eng[tgt].name,
				    kvf_strerror(rc), rc, kvf_last_error());
		}
}

/* Byte at of engine E's piece (layer l, request block b, region block
 * db) of slot s is wrong: say where it came from and end the run. */
static void kvs_check_fail(struct kvs *K, const struct kvs_engine *E,
    uint32_t s, uint32_t l, uint32_t b, uint32_t db, long at, uint64_t tokens,
    const char *when)
{
	const struct kv_shape *sh = &E->sh;
	uint32_t e = (uint32_t)(E - K->eng) - K->o.tp_p;
	uint32_t k = e / K->o.tp_d, j = e % K->o.tp_d;
	uint64_t in_kind = (uint64_t)at % (sh->rank_heads * sh->run);
	uint32_t head = sh->head0 + (uint32_t)(in_kind / sh->run);
	uint32_t from = K->o.preset->kv_heads ? head / K->eng[0].sh.rank_heads
					      : j % K->o.tp_p;

	bench_die("KV check after the %s: %s, %" PRIu64 " tokens, %s, TP "
		  "%u:%u: engine %s (decode peer %u rank %u), request slot "
		  "%u: layer %u, request block %u (region block %u), byte %ld "
		  "of the piece (head %u, from prefill rank %u) is not what "
		  "was sent; no figure is reported for wrong bytes",
	    when, K->o.preset->name, tokens, kvs_op(K), K->o.tp_p, K->o.tp_d,
	    E->name, k, j, s, l, b, db, at, head, from);
}

/* Every slot written since the last zeroing must hold the request's
 * bytes, on every decode rank of its peer. */
void kvs_check(struct kvs *K, uint64_t tokens, const char *when)
{
	for (uint32_t e = K->o.tp_p; e < K->neng; e++) {
		const struct kvs_engine *E = &K->eng[e];
		uint32_t k = (e - K->o.tp_p) / K->o.tp_d;

		for (uint32_t s = 0; s < K->slots; s++) {
			if (!K->used[k * K->slots + s])
				continue;
			for (uint32_t l = 0; l < E->sh.layers; l++)
				for (uint32_t b = 0; b < K->nb; b++) {
					uint32_t db = kvs_dblock(K, s, b);
					const uint8_t *piece =
					    E->base + kv_shape_offset(&E->sh,
							  E->nblocks, l, db);
					long at = kv_shape_check_piece(
					    &E->sh, piece, KVS_SEED, l, b);

					if (at >= 0)
						kvs_check_fail(K, E, s, l, b,
						    db, at, tokens, when);
				}
		}
	}
}
