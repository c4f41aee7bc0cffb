/*
 * tests/bench/lib/kv_sweep.c - kvferry-bench -m kv: KV-shaped requests of
 * a model preset (kv_shape.h) over a sweep of request lengths, with
 * tensor parallelism on each side, requests in flight, decode peers and
 * rails. This file starts the sidecars and engines, plans which rank
 * sends what to which, and runs the sweep; kv_sweep_mem.c, _run.c,
 * _out.c and _opts.c do the rest (kv_sweep_impl.h).
 *
 * Processes: one prefill sidecar and -P decode sidecars, started with the
 * provider, --fabric-addr for -r rails and the -A arguments. One engine
 * per TP rank, each its own kvf_client: prefill TP p engines on the
 * prefill sidecar, decode TP d engines on each decode sidecar, all in
 * this process so submit and arrival are timed on one clock.
 *
 * A rank holds kv_heads/tp heads: per layer [blocks][K,V][heads/tp]
 * [block_tokens][head_dim]. With p == d rank i sends whole pieces to rank
 * i (kvf_submit_blocks). With p != d the pieces are split or joined by
 * heads: a kvf_submit of one segment per (layer, block, K or V) for every
 * prefill/decode rank pair whose heads overlap, the stride pattern a real
 * connector would post. MLA (kv_heads 0) caches one latent per token that
 * TP does not split: every rank holds it all, and decode rank j receives
 * it from prefill rank j mod p, so decode TP d moves d copies.
 *
 * A request of L tokens is ceil(L/B) blocks. The prefill ranks hold one
 * request's blocks (the source every request reads); each decode engine
 * holds ceil(c/P) request slots whose blocks are handed out top down, as
 * in kv_decode_block, so nothing merges: one operation per piece. Up to
 * -c requests are in flight, spread round-robin over the peers; a WRITE
 * is pushed by the prefill ranks and ends at the last decode rank's
 * notification, a READ is pulled by the decode ranks and ends at their
 * last completion. One request per slot of each peer warms up and is
 * checked in full; then the timed requests run, and every slot they
 * wrote is checked in full again: a wrong byte ends the run before its
 * row is printed.
 *
 * The raw baseline, fi_raw_bench with the same provider and op, runs at
 * the start, once per length, with the size of one operation on the wire
 * (the piece, or the part of it a rank pair moves), a window of -w, and
 * its operations walking through as many bytes as a rank pair's request
 * moves (-F, at most KVS_RAW_FOOTPRINT_MAX): on shared memory a copy of
 * cached bytes runs several times faster than one of a KV cache that does
 * not fit the caches, so a baseline writing one op's buffer over and over
 * would not be the same work.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/kv_sweep_impl.h"
#include "tests/tap/clock.h"

/* bench_die's clean-up: no sidecar of ours outlives a failed run. */
static void kvs_stop_all(void *arg)
{
	struct kvs *K = arg;

	for (uint32_t e = 0; K->eng && e < K->neng; e++) {
		kvf_close(K->eng[e].c);
		K->eng[e].c = NULL;
	}
	for (uint32_t s = 0; K->sc && s < K->nsc; s++)
		tp_daemon_stop(&K->sc[s], SIGTERM, 5000);
}

/* ---- sidecars and engines ----------------------------------------------- */

static void kvs_start_sidecar(
    struct kvs *K, struct tp_daemon *d, const char *name)
{
	const char *args[8 + KVS_MAX_EXTRA];
	char addr[1024], line[2048];
	size_t at = 0;
	int n = 0;

	args[n++] = "--provider";
	args[n++] = K->o.prov;
	args[n++] = "--log-level";
	args[n++] = "warn";
	/* shm names its endpoint after the fabric address, so each rail of
	 * each sidecar needs a name of its own (kv_sidecar_args); the other
	 * providers get -r copies of the loopback address. */
	addr[0] = '\0';
	for (uint32_t r = 0; r < K->o.rails; r++) {
		const char *sep = r ? "," : "";
		int pid = (int)getpid();

		if (!strcmp(K->o.prov, "shm") && K->o.rails == 1)
			at += (size_t)snprintf(addr + at, sizeof addr - at,
			    "kvf-%d-%s", pid, name);
		else if (!strcmp(K->o.prov, "shm"))
			at += (size_t)snprintf(addr + at, sizeof addr - at,
			    "%skvf-%d-%s-r%u", sep, pid, name, r + 1);
		else if (K->o.rails > 1)
			at += (size_t)snprintf(
			    addr + at, sizeof addr - at, "%s127.0.0.1", sep);
	}
	if (addr[0]) {
		args[n++] = "--fabric-addr";
		args[n++] = addr;
	}
	for (int i = 0; i < K->o.nextra; i++)
		args[n++] = K->o.extra[i];
	args[n] = NULL;
	at = 0;
	for (int i = 0; i < n && at < sizeof line; i++)
		at += (size_t)snprintf(
		    line + at, sizeof line - at, " %s", args[i]);
	if (tp_daemon_spawn(d, name, args, NULL) != 0)
		bench_die("sidecar %s: kvferryd could not be started", name);
	if (tp_daemon_wait_ready(d, 15000) != 0) {
		char *log = tp_daemon_log(d);

		fprintf(stderr,
		    "%s: sidecar %s (kvferryd%s) did not start%s; "
		    "its log:\n%s",
		    bench_prog(), name, line,
		    K->o.rails > 1 ? " (-r needs a kvferryd that takes one "
				     "--fabric-addr per rail)"
				   : "",
		    log);
		free(log);
		bench_die("sidecar %s did not start", name);
	}
}

/* What sidecar d reports (kvferryctl status): its fabric address into
 * addr (when not NULL) and the bytes each of its rails carried into
 * bytes[0..KVS_MAX_RAILS). Returns the number of rails, -1 when the
 * status has no rails (a kvferryd without multi-rail), -2 when there was
 * no status. */
static int kvs_status(
    struct tp_daemon *d, char *addr, size_t n, uint64_t *bytes)
{
	const char *argv[] = { tp_bin("kvferryctl"), "-u", d->control_url,
		"-o", "json", "status", NULL };
	const char *key = "\"fabric_addr\":\"", *at, *end;
	struct tp_run r;
	int rails = -1;

	if (addr)
		snprintf(addr, n, "?");
	if (tp_run(&r, 5000, NULL, argv) != 0)
		return -2;
	if (r.status != 0) {
		tp_run_free(&r);
		return -2;
	}
	if (addr && (at = strstr(r.out, key)) != NULL &&
	    (end = strchr(at + strlen(key), '"')) != NULL)
		snprintf(addr, n, "%.*s", (int)(end - at - strlen(key)),
		    at + strlen(key));
	/* "rails":[{..., "bytes":N}, ...]: no arrays nest inside. */
	if ((at = strstr(r.out, "\"rails\":[")) != NULL &&
	    (end = strchr(at, ']')) != NULL) {
		rails = 0;
		while ((at = strstr(at, "\"bytes\":")) != NULL && at < end) {
			at += strlen("\"bytes\":");
			if (rails < (int)KVS_MAX_RAILS)
				bytes[rails] = strtoull(at, NULL, 10);
			rails++;
		}
	}
	tp_run_free(&r);
	return rails;
}

/* Bytes per rail index, summed over every sidecar. */
static void kvs_rail_bytes(struct kvs *K, uint64_t *sum)
{
	memset(sum, 0, KVS_MAX_RAILS * sizeof *sum);
	for (uint32_t i = 0; i < K->nsc; i++) {
		uint64_t b[KVS_MAX_RAILS] = { 0 };
		int n = kvs_status(&K->sc[i], NULL, 0, b);

		for (int r = 0; r < n && r < (int)KVS_MAX_RAILS; r++)
			sum[r] += b[r];
	}
}

/* Engines' names and shapes; nothing runs yet. */
static void kvs_setup(struct kvs *K)
{
	uint32_t p = K->o.tp_p, d = K->o.tp_d;

	K->nsc = 1 + K->o.peers;
	K->neng = p + K->o.peers * d;
	K->sc = calloc(K->nsc, sizeof *K->sc);
	K->eng = calloc(K->neng, sizeof *K->eng);
	if (!K->sc || !K->eng)
		bench_die("out of memory");
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];
		bool pre = e < p;
		uint32_t k = pre ? 0 : (e - p) / d,
			 rank = pre ? e : (e - p) % d;

		E->to = calloc(K->neng, sizeof *E->to);
		if (!E->to)
			bench_die("out of memory");
		if (pre)
			snprintf(E->name, sizeof E->name, "prefill-r%u", rank);
		else
			snprintf(
			    E->name, sizeof E->name, "decode%u-r%u", k, rank);
		if (kv_shape_init(&E->sh, K->o.preset, K->o.block_tokens,
			pre ? p : d, rank) != 0)
			bench_die(
			    "%s: no shape for TP %u", E->name, pre ? p : d);
	}
}

/* The sidecars, then one connection per engine. */
static void kvs_start(struct kvs *K)
{
	uint32_t p = K->o.tp_p;
	char name[32];
	int rc;

	kvs_start_sidecar(K, &K->sc[0], "prefill");
	for (uint32_t k = 0; k < K->o.peers; k++) {
		snprintf(name, sizeof name, "decode%u", k);
		kvs_start_sidecar(K, &K->sc[1 + k], name);
	}
	/* A sidecar that does not open the rails asked for must not give
	 * figures labelled with them (an older kvferryd takes a shm name
	 * with commas as one name). */
	for (uint32_t i = 0; i < K->nsc; i++) {
		uint64_t b[KVS_MAX_RAILS];
		int n = kvs_status(&K->sc[i], i ? NULL : K->fabric_addr,
		    sizeof K->fabric_addr, b);

		const char *who =
		    i ? "a decode sidecar" : "the prefill sidecar";

		if (K->o.rails == 1)
			continue;
		if (n == -2)
			bench_die("-r %u: kvferryctl status of %s failed",
			    K->o.rails, who);
		if (n == -1)
			bench_die(
			    "-r %u: %s reports no rails in its status: a "
			    "kvferryd without multi-rail",
			    K->o.rails, who);
		if (n != (int)K->o.rails)
			bench_die(
			    "-r %u: %s opened %d rails", K->o.rails, who, n);
	}
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];
		struct tp_daemon *sc =
		    e < p ? &K->sc[0] : &K->sc[1 + (e - p) / K->o.tp_d];
		struct kvf_connect_opts co = { 0 };

		co.socket_path = sc->engine_socket;
		co.ring_bytes = KVS_RING_BYTES;
		rc = kvf_connect(E->name, &co, &E->c);
		if (rc != 0)
			bench_die(
			    "engine %s: kvf_connect(%s) failed: %s (%d): %s",
			    E->name, sc->engine_socket, kvf_strerror(rc), rc,
			    kvf_last_error());
	}
}

/* ---- the request's shape ------------------------------------------------ */

/* Which prefill rank sends what to which decode rank. */
static void kvs_plan(struct kvs *K)
{
	uint32_t p = K->o.tp_p, d = K->o.tp_d;
	bool mla = K->o.preset->kv_heads == 0;
	uint32_t hp = K->eng[0].sh.rank_heads;
	uint32_t hd = K->eng[p].sh.rank_heads;

	K->pairs = calloc((size_t)p * d, sizeof *K->pairs);
	if (!K->pairs)
		bench_die("out of memory");
	for (uint32_t j = 0; j < d; j++)
		for (uint32_t i = 0; i < p; i++) {
			struct kvs_pair pr = { i, j, 0, 1, true };

			if (mla) {
				if (i != j % p)
					continue;
			} else {
				pr.h_lo = i * hp > j * hd ? i * hp : j * hd;
				pr.h_hi = (i + 1) * hp < (j + 1) * hd
					      ? (i + 1) * hp
					      : (j + 1) * hd;
				if (pr.h_lo >= pr.h_hi)
					continue;
				pr.blocks = p == d;
			}
			K->pairs[K->npairs++] = pr;
		}
}

/* Bytes, operations and transfers of one request of nb blocks. */
static void kvs_measure(struct kvs *K, uint32_t nb)
{
	const struct kv_shape *sh = &K->eng[0].sh;

	K->req_bytes = K->req_segs = 0;
	K->req_xfers = 0;
	memset(K->rank_xfers, 0, K->o.tp_d * sizeof *K->rank_xfers);
	for (uint32_t q = 0; q < K->npairs; q++) {
		const struct kvs_pair *pr = &K->pairs[q];
		uint32_t ch = kvs_chunk(K, pr);

		if (pr->blocks) {
			K->req_segs += (uint64_t)sh->layers * nb;
			K->req_bytes += (uint64_t)sh->layers * nb * sh->piece;
		} else {
			K->req_segs += (uint64_t)sh->layers * nb * sh->kinds;
			K->req_bytes += (uint64_t)sh->layers * nb * sh->kinds *
					(pr->h_hi - pr->h_lo) * sh->run;
		}
		K->req_xfers += (nb + ch - 1) / ch;
		K->rank_xfers[pr->j] += (nb + ch - 1) / ch;
	}
	/* Every operation has the same size for the presets (TP degrees
	 * divide the head count, so overlaps are all alike). */
	K->op_bytes = K->req_bytes / K->req_segs;
}

/* ---- the sweep ---------------------------------------------------------- */

static int kvs_cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void kvs_length(struct kvs *K, uint64_t tokens, double raw)
{
	uint32_t iters = K->o.iters, warm;
	double *lat, wall, ms, gbps;
	char why[700];

	K->nb =
	    (uint32_t)((tokens + K->o.block_tokens - 1) / K->o.block_tokens);
	K->slots = (K->o.conc + K->o.peers - 1) / K->o.peers;
	/* Every slot of every peer once: a KV cache in service is touched
	 * memory, and the first write into fresh pages would charge page
	 * faults to the timed requests (-c 4: a quarter less GB/s). */
	warm = K->o.peers * K->slots;
	kvs_measure(K, K->nb);
	if (!iters) {
		/* About 1 GiB moved per row, and enough requests that -c
		 * and -P are really exercised. */
		uint64_t it = (1ull << 30) / K->req_bytes;
		iters = it < 4 ? 4 : it > 64 ? 64 : (uint32_t)it;
		if (iters < 2 * K->o.conc)
			iters = 2 * K->o.conc;
		if (iters < K->o.peers)
			iters = K->o.peers;
	}
	if (!kvs_alloc(K, why, sizeof why)) {
		if (!K->o.table)
			bench_err("%s %" PRIu64 " tokens skipped: %s (lower "
				  "-L, -c or -P)",
			    K->o.preset->name, tokens, why);
		kvs_row(K, tokens, 0, 0, 0, 0, why);
		return;
	}
	K->used = calloc((size_t)K->o.peers * K->slots, 1);
	K->busy = calloc((size_t)K->o.peers * K->slots, 1);
	lat = calloc(iters > warm ? iters : warm, sizeof *lat);
	if (!K->used || !K->busy || !lat)
		bench_die("out of memory");
	kvs_fill(K);
	kvs_resolve(K);
	kvs_run(K, warm, lat); /* every route and slot once */
	kvs_check(K, tokens, "warm-up");
	memset(K->used, 0, (size_t)K->o.peers * K->slots);
	for (uint32_t e = K->o.tp_p; e < K->neng; e++)
		memset(K->eng[e].base, 0, K->eng[e].bytes);
	if (K->o.rails > 1)
		kvs_rail_bytes(K, K->rail0);
	wall = kvs_run(K, iters, lat);
	K->rail_pct[0] = '\0';
	if (K->o.rails > 1) {
		uint64_t now[KVS_MAX_RAILS], all = 0;
		size_t at = 0;

		kvs_rail_bytes(K, now);
		for (uint32_t r = 0; r < K->o.rails; r++)
			all += now[r] - K->rail0[r];
		for (uint32_t r = 0; r < K->o.rails && all; r++)
			at += (size_t)snprintf(K->rail_pct + at,
			    sizeof K->rail_pct - at, "%s%.0f", r ? " " : "",
			    100.0 * (double)(now[r] - K->rail0[r]) /
				(double)all);
	}
	kvs_check(K, tokens, "timed requests");
	qsort(lat, iters, sizeof *lat, kvs_cmp_d);
	K->max_ms = lat[iters - 1] * 1e3;
	ms = (iters % 2 ? lat[iters / 2]
			: (lat[iters / 2 - 1] + lat[iters / 2]) / 2) *
	     1e3;
	gbps = (double)K->req_bytes * iters / wall / 1e9;
	kvs_row(K, tokens, iters, ms, gbps, raw, NULL);
	free(lat);
	free(K->used);
	free(K->busy);
	K->used = K->busy = NULL;
	kvs_free_regions(K);
}

int kv_sweep_main(const struct kvs_opts *o)
{
	static struct kvs kvs;
	struct kvs *K = &kvs;
	double raw[KVS_MAX_LENGTHS] = {0};
	uint32_t maxnb = 0;
	char why[1024];
	int status = 0;

	K->o = *o;
	bench_at_die(kvs_stop_all, K);
	K->reqs = calloc(K->o.conc, sizeof *K->reqs);
	K->rank_left =
	    calloc((size_t)K->o.conc * K->o.tp_d, sizeof *K->rank_left);
	K->rank_xfers = calloc(K->o.tp_d, sizeof *K->rank_xfers);
	if (!K->reqs || !K->rank_left || !K->rank_xfers)
		bench_die("out of memory");
	/* The shapes and the plan first: the raw baseline needs the op size
	 * and runs before the sidecars, on a quiet machine. */
	kvs_setup(K);
	kvs_plan(K);
	kvs_measure(K, 1);
	for (int i = 0; i < K->o.nlengths && !K->o.no_raw; i++) {
		uint64_t fp;

		kvs_measure(K, (uint32_t)((K->o.lengths[i] +
		                           K->o.block_tokens - 1) /
		                          K->o.block_tokens));
		fp = K->req_bytes / K->npairs;
		if (fp > KVS_RAW_FOOTPRINT_MAX)
			fp = KVS_RAW_FOOTPRINT_MAX;
		if (raw_bench_rate(K->o.prov, K->o.read, K->op_bytes,
			K->o.window, fp, true, &raw[i], why, sizeof why) != 0)
			bench_die("raw baseline: %s", why);
	}
	kvs_start(K);
	for (int i = 0; i < K->o.nlengths; i++) {
		uint32_t nb =
		    (uint32_t)((K->o.lengths[i] + K->o.block_tokens - 1) /
			       K->o.block_tokens);
		if (nb > maxnb)
			maxnb = nb;
	}
	K->segs = calloc(KVS_SEGS_PER_XFER, sizeof *K->segs);
	K->lb =
	    calloc(maxnb < KVS_BLOCKS_PER_XFER ? maxnb : KVS_BLOCKS_PER_XFER,
		sizeof *K->lb);
	K->rb =
	    calloc(maxnb < KVS_BLOCKS_PER_XFER ? maxnb : KVS_BLOCKS_PER_XFER,
		sizeof *K->rb);
	if (!K->segs || !K->lb || !K->rb)
		bench_die("out of memory");
	if (K->o.table)
		printf("kvferry-bench -m kv: provider %s, prefill sidecar %s, "
		       "%u decode sidecar%s, %u engines, %ld CPUs online\n",
		    K->o.prov, K->sc[0].peer_url, K->o.peers,
		    K->o.peers > 1 ? "s" : "", K->neng,
		    sysconf(_SC_NPROCESSORS_ONLN));
	kvs_describe(K);
	for (int i = 0; i < K->o.nlengths; i++)
		kvs_length(K, K->o.lengths[i], raw[i]);
	if (K->o.fmt == KVS_JSON && K->mout_started)
		fprintf(K->o.mout, "\n ]}\n");
	fflush(K->o.mout ? K->o.mout : stdout);
	for (uint32_t e = 0; e < K->neng; e++) {
		kvf_close(K->eng[e].c);
		K->eng[e].c = NULL;
	}
	for (uint32_t s = 0; s < K->nsc; s++)
		if (tp_daemon_stop(&K->sc[s], SIGTERM, 5000) != 0) {
			bench_err("sidecar %s did not stop on SIGTERM",
			    s ? "decode" : "prefill");
			status = 1;
		}
	for (uint32_t e = 0; e < K->neng; e++)
		free(K->eng[e].to);
	free(K->eng);
	free(K->sc);
	free(K->pairs);
	free(K->reqs);
	free(K->rank_left);
	free(K->rank_xfers);
	free(K->outs);
	free(K->segs);
	free(K->lb);
	free(K->rb);
	bench_at_die(NULL, NULL);
	return status;
}
