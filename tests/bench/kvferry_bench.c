/*
 * tests/bench/kvferry_bench.c - kvferry-bench: engine to engine through two
 * kvferryd sidecars it starts on loopback, against the raw libfabric
 * baseline (fi_raw_bench, same provider, run as a subprocess in the same
 * invocation and parsed from its CSV).
 *
 * Modes (-m, default all):
 *   bw    WRITE and READ of one segment per transfer, sizes -s..-S (4 KiB to
 *         64 MiB), a window of -w transfers in flight, warm-up excluded,
 *         iterations scaled by size as fi_raw_bench scales them; then the
 *         KV workload of the demo (lib/kv_shape.h): a 4096-token and a
 *         128-token request pushed with kvf_submit_blocks, one at a time,
 *         timed from submit to the decode engine's notification, against
 *         raw 64 KiB writes (one per layer and block: what the blocks
 *         become on the wire). The bytes that arrived are checked once.
 *   lat   submit-to-remote-notification latency of a 4 KiB WRITE and of a
 *         128-token KV request, median and p99, against fi_raw_bench's
 *         write+notify one way: the median of its own time, write posted
 *         to notify received (the row write+notify), and half the mean
 *         round trip of its ping-pong, whose reply is a bare send (the
 *         row write+notify-rtt2, the baseline of earlier sessions).
 *   post  the engine-side cost of kvf_submit with 64 segments and of
 *         kvf_submit_blocks with 256 blocks: each call timed alone, in
 *         batches, completions drained between batches so the ring never
 *         fills; median and p99 in ns.
 *   kv    (only when named; lib/kv_sweep.c) KV-shaped requests of a model
 *         preset (Llama-3-8B/70B, Qwen2.5-32B, DeepSeek-V3 MLA) over
 *         request lengths, with prefill and decode TP (one engine per
 *         rank), WRITE or READ, requests in flight, decode peers and
 *         rails; its own sidecars; a fixed-column table and/or CSV or
 *         JSON; the raw baseline at the size of one operation on the
 *         wire.
 *
 * In bw, lat and post both engines live in this process (two kvf_client
 * connections, one per sidecar); the clock is the same for submit and
 * notification.
 *
 *   kvferry-bench [-p provider] [-m all|bw|lat|post] [-s min] [-S max]
 *                 [-w window] [-o csv] [-x write|read|kv] [-R]
 *   kvferry-bench -m kv [-p provider] [-M preset] [-B block_tokens]
 *                 [-T prefill_tp:decode_tp] [-L tokens,...] [-x write|read]
 *                 [-c concurrency] [-P peers] [-r rails] [-A sidecar_args]
 *                 [-i iters] [-w window] [-o table|csv|json[:file]] [-R]
 *   -R skips the raw baseline; -x runs one part of the bandwidth mode
 *   (with -m kv: the op). -h tells the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/fi_raw.h"
#include "tests/bench/lib/kv_shape.h"
#include "tests/bench/lib/kv_sweep.h"
#include "tests/bench/lib/samples.h"
#include "tests/tap/clock.h"
#include "tests/tap/proc.h"

#define PROG "kvferry-bench"
#define SEED 0x62656e6368ull
#define EV_MAX 64
#define RUN_LIMIT_S 120.0 /* no single measurement may take longer */
#define KV_SPARE 8u
#define GIB (1ull << 30) /* the largest -s and -S */

struct opts {
	const char *prov;
	bool bw, lat, post, csv, no_raw;
	const char *only; /* -x write|read|kv: one part of bw */
	char *extra_arg;   /* -A as given */
	const char *extra[KVS_MAX_EXTRA]; /* and split at blanks */
	int nextra;
	uint64_t min, max;
	int window;
};

struct bench {
	struct opts o;
	struct tp_daemon sa, sb;
	kvf_client *a, *b; /* "bench-a" on sidecar A, "bench-b" on B */
	kvf_peer peer;     /* bench-b as seen from bench-a */
	kvf_region ra, rb; /* flat regions of max bytes */
	uint8_t *pa, *pb;
	kvf_region ka, kb; /* KV regions: 256 blocks on A, 264 on B */
	uint8_t *kpa, *kpb;
	uint32_t ka_blocks, kb_blocks;
	struct raw_set raw;
	uint64_t next_tag;
};

/* bench_die's clean-up: the sidecars must not outlive a failed run. */
static void stop(void *arg)
{
	struct bench *B = arg;

	kvf_close(B->a);
	kvf_close(B->b);
	B->a = B->b = NULL;
	tp_daemon_stop(&B->sa, SIGTERM, 5000);
	tp_daemon_stop(&B->sb, SIGTERM, 5000);
}

/* ---- helpers ------------------------------------------------------------ */

static void fill(uint8_t *p, uint64_t n, uint64_t seed)
{
	uint64_t *w = (uint64_t *)(void *)p;

	for (uint64_t i = 0; i < n / 8; i++)
		w[i] = kv_mix(seed ^ i);
}

/* Take events from c until want XFER_DONE (and, with notifs, as many
 * NOTIF on b) came; any failed transfer ends the run. */
static void drain(struct bench *B, kvf_client *c, uint64_t *done,
                  uint64_t want, double limit)
{
	struct kvf_event ev[EV_MAX];

	while (*done < want) {
		int n = 0, rc = kvf_wait(c, ev, EV_MAX, 1000, &n);
		if (rc != 0)
			bench_die("kvf_wait() failed: %s (%d): %s",
			    kvf_strerror(rc), rc, kvf_last_error());
		for (int i = 0; i < n; i++) {
			if (ev[i].type != KVF_EV_XFER_DONE)
				continue;
			if (ev[i].status != 0)
				bench_die("transfer %llu failed: %s: %s",
				    (unsigned long long)ev[i].xfer,
				    kvf_strerror(ev[i].status), ev[i].message);
			(*done)++;
		}
		if (n == 0 && tp_now_s() > limit)
			bench_die("no completion for %.0f s (%llu of %llu "
			    "done)", RUN_LIMIT_S, (unsigned long long)*done,
			    (unsigned long long)want);
	}
	(void)B;
}

/* Wait for the NOTIF with tag number tag on b. */
static void wait_notif(struct bench *B, uint64_t tag, double limit)
{
	struct kvf_event ev;

	for (;;) {
		int n = 0, rc = kvf_wait(B->b, &ev, 1, 1000, &n);
		if (rc != 0)
			bench_die("kvf_wait() on the target failed: %s (%d): "
			    "%s", kvf_strerror(rc), rc, kvf_last_error());
		if (n == 1 && ev.type == KVF_EV_NOTIF) {
			uint64_t got;
			if (ev.tag_len != sizeof got)
				bench_die("notification with a %u-byte tag",
				    ev.tag_len);
			memcpy(&got, ev.tag, sizeof got);
			if (got == tag)
				return;
			bench_die("notification %llu arrived, %llu expected",
			    (unsigned long long)got, (unsigned long long)tag);
		}
		if (tp_now_s() > limit)
			bench_die("no notification for %.0f s", RUN_LIMIT_S);
	}
}

/* ---- the raw baseline --------------------------------------------------- */

static void raw_run(struct bench *B, const char *mode, bool read,
                    uint64_t min, uint64_t max)
{
	char why[1024];

	if (B->o.no_raw)
		return;
	if (raw_bench_run(&B->raw, B->o.prov, mode, read, min, max,
	                  B->o.window, 0, !B->o.csv, why, sizeof why) != 0)
		bench_die("%s", why);
}

/* The raw rate of 64 KiB writes walking through bytes of cold memory, as
 * a KV request of that size does (0 with -R). */
static double raw_kv_gbps(struct bench *B, uint64_t bytes)
{
	char why[1024];
	double g = 0;

	if (!B->o.no_raw &&
	    raw_bench_rate(B->o.prov, false, KV_PIECE, B->o.window, bytes,
	                   !B->o.csv, &g, why, sizeof why) != 0)
		bench_die("%s", why);
	return g;
}

static const struct raw_row *raw_find(struct bench *B, const char *mode,
                                      const char *op, uint64_t size)
{
	return raw_bench_find(&B->raw, mode, op, size);
}

/* ---- output ------------------------------------------------------------- */

static void header(struct bench *B, const char *title, const char *cols)
{
	static bool csv_done;

	if (B->o.csv) {
		if (!csv_done)
			printf("section,op,size,iters,kvferry,p99,raw,ratio,"
			       "unit\n");
		csv_done = true;
		return;
	}
	printf("\n# %s\n%s\n", title, cols);
}

static void fmt_raw(char *r, char *q, size_t n, double raw, double ratio,
                    const char *f)
{
	if (raw > 0) {
		snprintf(r, n, f, raw);
		snprintf(q, n, "%.2f", ratio);
	} else {
		snprintf(r, n, "-");
		snprintf(q, n, "-");
	}
}

/* ratio is kvferry over raw: for GB/s higher is better, for times lower. */
static void row(struct bench *B, const char *section, const char *op,
                uint64_t size, uint64_t iters, double v, double p99,
                double raw, const char *unit)
{
	double ratio = raw > 0 ? v / raw : 0;
	char r[32], q[32];

	if (B->o.csv) {
		printf("%s,%s,%llu,%llu,%.3f,", section, op,
		       (unsigned long long)size, (unsigned long long)iters, v);
		if (p99 >= 0)
			printf("%.3f", p99);
		if (raw > 0)
			printf(",%.3f,%.3f", raw, ratio);
		else
			printf(",,");
		printf(",%s\n", unit);
	} else if (!strcmp(section, "bw")) {
		fmt_raw(r, q, sizeof r, raw, ratio, "%.3f");
		printf("%-9s %10llu %7llu %12.3f %10s %7s\n", op,
		       (unsigned long long)size, (unsigned long long)iters, v,
		       r, q);
	} else if (!strcmp(section, "lat")) {
		fmt_raw(r, q, sizeof r, raw, ratio, "%.1f");
		printf("%-17s %7llu %7llu %10.1f %10.1f %10s %7s\n", op,
		       (unsigned long long)size, (unsigned long long)iters, v,
		       p99, r, q);
	} else {
		printf("%-22s %6llu %8llu %10.0f %10.0f\n", op,
		       (unsigned long long)size, (unsigned long long)iters, v,
		       p99);
	}
	fflush(stdout);
}

/* ---- bandwidth ---------------------------------------------------------- */

/* iters transfers of one size-byte segment, window in flight; seconds. */
static double bw_once(struct bench *B, enum kvf_op op, uint64_t size,
                      uint64_t iters)
{
	struct kvf_seg seg = {B->ra, B->rb, 0, 0, size};
	uint64_t posted = 0, done = 0;
	double t0 = tp_now_s(), limit = t0 + RUN_LIMIT_S;

	while (done < iters) {
		while (posted < iters &&
		       posted - done < (uint64_t)B->o.window) {
			int rc = kvf_submit(B->a, op, B->peer, &seg, 1, NULL,
			                    NULL);
			if (rc == KVF_EAGAIN)
				break;
			if (rc != 0)
				bench_die("kvf_submit(%llu bytes) failed: %s "
				    "(%d): %s", (unsigned long long)size,
				    kvf_strerror(rc), rc, kvf_last_error());
			posted++;
		}
		/* One event at least, then whatever else is there. */
		drain(B, B->a, &done, done + 1, limit);
	}
	return tp_now_s() - t0;
}

static void bw_sweep(struct bench *B, enum kvf_op op)
{
	const char *name = op == KVF_WRITE ? "write" : "read";

	for (uint64_t size = B->o.min; size <= B->o.max; size *= 2) {
		uint64_t iters = raw_bw_iters(size);
		uint64_t warm = iters / 10 < 2 ? 2 : iters / 10;
		const struct raw_row *r = raw_find(B, "bw", name, size);

		bw_once(B, op, size, warm);
		double t = bw_once(B, op, size, iters);
		row(B, "bw", name, size, iters,
		    (double)size * (double)iters / t / 1e9, -1,
		    r ? r->gbps : 0, "GB/s");
	}
}

/* Map the KV regions if not yet; A holds a request of up to 256 blocks in
 * blocks 0.., B receives it top down (kv_decode_block). */
static void kv_setup(struct bench *B)
{
	struct kvf_layout la, lb;
	int rc;

	if (B->kpa)
		return;
	B->ka_blocks = kv_blocks_for(4096);
	B->kb_blocks = B->ka_blocks + KV_SPARE;
	la = kv_layout(B->ka_blocks);
	lb = kv_layout(B->kb_blocks);
	rc = kvf_alloc_host(B->a, kv_region_bytes(B->ka_blocks), &la,
	                    (void **)&B->kpa, &B->ka);
	if (rc == 0)
		rc = kvf_alloc_host(B->b, kv_region_bytes(B->kb_blocks), &lb,
		                    (void **)&B->kpb, &B->kb);
	if (rc != 0)
		bench_die("KV regions: kvf_alloc_host() failed: %s (%d): %s",
		    kvf_strerror(rc), rc, kvf_last_error());
	for (uint32_t i = 0; i < B->ka_blocks; i++)
		for (uint32_t l = 0; l < KV_LAYERS; l++)
			kv_fill_piece(kv_piece(B->kpa, B->ka_blocks, l, i),
			              SEED, l, i);
	/* The handshake carries the regions: resolve again to learn it. */
	rc = kvf_resolve_peer(B->a, B->sb.peer_url, "bench-b", 10000,
	                      &B->peer);
	if (rc != 0)
		bench_die("kvf_resolve_peer() failed: %s (%d): %s",
		    kvf_strerror(rc), rc, kvf_last_error());
}

/* One KV request of nblocks pushed; seconds from submit to the target's
 * notification (the completion on A is drained after). */
static double kv_request(struct bench *B, uint32_t nblocks)
{
	uint32_t local[256], remote[256];
	uint64_t tag = ++B->next_tag, done = 0;
	struct kvf_xfer_opts xo = {.tag = &tag, .tag_len = sizeof tag};
	double t0, t1, limit;
	int rc;

	for (uint32_t i = 0; i < nblocks; i++) {
		local[i] = i;
		remote[i] = kv_decode_block(B->kb_blocks, i);
	}
	t0 = tp_now_s();
	limit = t0 + RUN_LIMIT_S;
	rc = kvf_submit_blocks(B->a, KVF_WRITE, B->peer, B->ka, B->kb, local,
	                       remote, nblocks, &xo, NULL);
	if (rc != 0)
		bench_die("kvf_submit_blocks(%u blocks) failed: %s (%d): %s",
		    nblocks, kvf_strerror(rc), rc, kvf_last_error());
	wait_notif(B, tag, limit);
	t1 = tp_now_s();
	drain(B, B->a, &done, 1, limit);
	return t1 - t0;
}

static void kv_check(struct bench *B, uint32_t nblocks)
{
	for (uint32_t i = 0; i < nblocks; i++)
		for (uint32_t l = 0; l < KV_LAYERS; l++) {
			uint32_t bb = kv_decode_block(B->kb_blocks, i);
			long at = kv_check_piece(
				kv_piece(B->kpb, B->kb_blocks, l, bb), SEED, l,
				i);
			if (at >= 0)
				bench_die("KV check: request block %u layer "
				    "%u byte %ld differs on the target",
				    i, l, at);
		}
}

static void bw_kv(struct bench *B, uint32_t tokens, uint32_t iters)
{
	uint32_t nblocks = kv_blocks_for(tokens);
	uint64_t bytes = (uint64_t)nblocks * KV_LAYERS * KV_PIECE;
	double raw = raw_kv_gbps(B, bytes);
	char name[32];
	double t = 0;

	kv_setup(B);
	memset(B->kpb, 0, kv_region_bytes(B->kb_blocks));
	kv_request(B, nblocks); /* warm-up */
	kv_check(B, nblocks);
	for (uint32_t i = 0; i < iters; i++)
		t += kv_request(B, nblocks);
	snprintf(name, sizeof name, "kv-%utok", tokens);
	row(B, "bw", name, bytes, iters, (double)bytes * iters / t / 1e9, -1,
	    raw, "GB/s");
}

static void mode_bw(struct bench *B)
{
	raw_run(B, "bw", false, B->o.min, B->o.max);
	raw_run(B, "bw", true, B->o.min, B->o.max);
	header(B, "bandwidth: one segment per transfer, window of transfers "
	          "in flight; kv-*: whole requests, one at a time, submit to "
	          "notification, raw = 64 KiB writes through as many bytes "
	          "(fi_raw_bench -F)",
	       "op              size   iters  kvferry GB/s     raw GB/s   "
	       "ratio");
	if (!B->o.only || !strcmp(B->o.only, "write")) {
		memset(B->pb, 0, B->o.max);
		fill(B->pa, B->o.max, SEED);
		bw_sweep(B, KVF_WRITE);
		if (memcmp(B->pa, B->pb, B->o.max) != 0)
			bench_die("WRITE sweep: the target's bytes differ "
			    "from the source's");
	}
	if (!B->o.only || !strcmp(B->o.only, "read")) {
		fill(B->pb, B->o.max, SEED + 1);
		bw_sweep(B, KVF_READ);
		if (memcmp(B->pa, B->pb, B->o.max) != 0)
			bench_die("READ sweep: the bytes read differ from the "
			    "target's");
	}
	if (!B->o.only || !strcmp(B->o.only, "kv")) {
		bw_kv(B, 4096, 8);
		bw_kv(B, 128, 64);
	}
}

/* ---- latency ------------------------------------------------------------ */

static void mode_lat(struct bench *B)
{
	enum { N4K = 2000, NKV = 100 };
	uint64_t *v = malloc(N4K * sizeof *v);
	const struct raw_row *r;
	double raw_kv = 0, raw_1way = 0, kv_gbps;

	if (!v)
		bench_die("out of memory");
	raw_run(B, "lat", false, 4096, 4096);
	kv_gbps = raw_kv_gbps(B, 8ull * KV_LAYERS * KV_PIECE);
	header(B, "latency: submit to the target engine's notification, "
	          "microseconds; raw = fi_raw_bench write+notify one way, "
	          "its median from posting the write to the notify's arrival "
	          "(same clock); the -rtt2 row: raw = half its round trip's "
	          "mean, whose way back is a bare send; kv raw = 256 x 64 KiB "
	          "at the raw window rate through 16 MiB (-F) + one "
	          "write+notify",
	       "op                   size   iters     median        p99    "
	       "raw(us)   ratio");
	/* 4 KiB write with a notification. */
	for (int i = -N4K / 10; i < N4K; i++) {
		struct kvf_seg seg = {B->ra, B->rb, 0, 0, 4096};
		uint64_t tag = ++B->next_tag, done = 0;
		struct kvf_xfer_opts xo = {.tag = &tag, .tag_len = sizeof tag};
		uint64_t t0 = tp_now_ns();
		double limit = tp_now_s() + RUN_LIMIT_S;
		int rc = kvf_submit(B->a, KVF_WRITE, B->peer, &seg, 1, &xo,
		                    NULL);

		if (rc != 0)
			bench_die("kvf_submit() failed: %s (%d): %s",
			    kvf_strerror(rc), rc, kvf_last_error());
		wait_notif(B, tag, limit);
		if (i >= 0)
			v[i] = tp_now_ns() - t0;
		drain(B, B->a, &done, 1, limit);
	}
	/* No one-way median (a row from an older fi_raw_bench): no baseline
	 * rather than the half round trip under its name. */
	r = raw_find(B, "lat", "write", 4096);
	if (r)
		raw_1way = r->usec_med;
	{
		double med = (double)bench_pct(v, N4K, 0.5) / 1e3;
		double p99 = (double)bench_pct(v, N4K, 0.99) / 1e3;
		row(B, "lat", "write+notify", 4096, N4K, med, p99, raw_1way,
		    "us");
		row(B, "lat", "write+notify-rtt2", 4096, N4K, med, p99,
		    r ? r->usec : 0, "us");
	}
	/* A 128-token request. */
	kv_setup(B);
	kv_request(B, 8);
	for (int i = 0; i < NKV; i++)
		v[i] = (uint64_t)(kv_request(B, 8) * 1e9);
	{
		uint64_t bytes = 8ull * KV_LAYERS * KV_PIECE;
		if (kv_gbps > 0 && raw_1way > 0)
			raw_kv = (double)bytes / (kv_gbps * 1e9) * 1e6 +
			         raw_1way;
		row(B, "lat", "kv-128tok", bytes, NKV,
		    (double)bench_pct(v, NKV, 0.5) / 1e3,
		    (double)bench_pct(v, NKV, 0.99) / 1e3, raw_kv, "us");
	}
	free(v);
}

/* ---- posting cost ------------------------------------------------------- */

static void mode_post(struct bench *B)
{
	enum { BATCH = 32, SAMPLES = 4096, NSEG = 64, NBLK = 256 };
	uint64_t *v = malloc(SAMPLES * sizeof *v), t0, t1, tmin = UINT64_MAX;
	struct kvf_seg segs[NSEG];
	struct kvf_layout la = {32, NBLK, 64, NBLK * 64, 64, 0};
	uint32_t local[NBLK], remote[NBLK];
	kvf_region sa, sb;
	void *psa, *psb;
	int rc;

	if (!v)
		bench_die("out of memory");
	/* The clock's own cost, to read the figures against. */
	for (int i = 0; i < 1000; i++) {
		t0 = tp_now_ns();
		t1 = tp_now_ns();
		if (t1 - t0 < tmin)
			tmin = t1 - t0;
	}
	header(B, "posting cost: engine-side time of one call, ns (the "
	          "clock itself costs about that much less)",
	       "call                     segs  samples     median        p99");
	/* 64 segments of 64 bytes, every other 128 bytes: nothing merges. */
	for (int i = 0; i < NSEG; i++)
		segs[i] = (struct kvf_seg){B->ra, B->rb, (uint64_t)i * 128,
		                           (uint64_t)i * 128, 64};
	for (int s = -BATCH * 4; s < SAMPLES;) {
		uint64_t done = 0, n = 0;
		for (int k = 0; k < BATCH; k++, s++, n++) {
			t0 = tp_now_ns();
			rc = kvf_submit(B->a, KVF_WRITE, B->peer, segs, NSEG,
			                NULL, NULL);
			t1 = tp_now_ns();
			if (rc != 0)
				bench_die("kvf_submit(64 segments) failed: "
				    "%s (%d): %s",
				    kvf_strerror(rc), rc, kvf_last_error());
			if (s >= 0)
				v[s] = t1 - t0;
		}
		drain(B, B->a, &done, n, tp_now_s() + RUN_LIMIT_S);
	}
	row(B, "post", "kvf_submit", NSEG, SAMPLES,
	    (double)bench_pct(v, SAMPLES, 0.5), (double)bench_pct(v, SAMPLES, 0.99), 0,
	    "ns");

	/* 256 blocks of a 32-layer layout with 64-byte blocks; the engine's
	 * cost does not depend on the block size, the sidecar's work does. */
	rc = kvf_alloc_host(B->a, 32 * NBLK * 64, &la, &psa, &sa);
	if (rc == 0)
		rc = kvf_alloc_host(B->b, 32 * NBLK * 64, &la, &psb, &sb);
	if (rc == 0)
		rc = kvf_resolve_peer(B->a, B->sb.peer_url, "bench-b", 10000,
		                      &B->peer);
	if (rc != 0)
		bench_die("posting regions: %s (%d): %s", kvf_strerror(rc), rc,
		    kvf_last_error());
	for (uint32_t i = 0; i < NBLK; i++) {
		local[i] = i;
		remote[i] = i;
	}
	for (int s = -BATCH * 4; s < SAMPLES;) {
		uint64_t done = 0, n = 0;
		for (int k = 0; k < BATCH; k++, s++, n++) {
			t0 = tp_now_ns();
			rc = kvf_submit_blocks(B->a, KVF_WRITE, B->peer, sa,
			                       sb, local, remote, NBLK, NULL,
			                       NULL);
			t1 = tp_now_ns();
			if (rc != 0)
				bench_die("kvf_submit_blocks(256) failed: %s "
				    "(%d): %s",
				    kvf_strerror(rc), rc, kvf_last_error());
			if (s >= 0)
				v[s] = t1 - t0;
		}
		drain(B, B->a, &done, n, tp_now_s() + RUN_LIMIT_S);
	}
	row(B, "post", "kvf_submit_blocks", NBLK, SAMPLES,
	    (double)bench_pct(v, SAMPLES, 0.5), (double)bench_pct(v, SAMPLES, 0.99), 0,
	    "ns");
	if (!B->o.csv)
		printf("(clock_gettime pair: %llu ns)\n",
		       (unsigned long long)tmin);
	kvf_free_region(B->a, sa);
	kvf_free_region(B->b, sb);
	free(v);
}

/* ---- set-up ------------------------------------------------------------- */

static void start(struct bench *B)
{
	const char *args_a[8 + KVS_MAX_EXTRA], *args_b[8 + KVS_MAX_EXTRA];
	char addr_a[64], addr_b[64];
	struct kvf_connect_opts oa = {0}, ob = {0};
	int rc;

	kv_sidecar_args(args_a, B->o.prov, addr_a, sizeof addr_a, "a",
	                B->o.extra, B->o.nextra);
	kv_sidecar_args(args_b, B->o.prov, addr_b, sizeof addr_b, "b",
	                B->o.extra, B->o.nextra);
	if (tp_daemon_start(&B->sa, "a", args_a, NULL) != 0)
		bench_die("sidecar A (provider %s) did not start", B->o.prov);
	if (tp_daemon_start(&B->sb, "b", args_b, NULL) != 0)
		bench_die("sidecar B (provider %s) did not start", B->o.prov);
	oa.socket_path = B->sa.engine_socket;
	ob.socket_path = B->sb.engine_socket;
	oa.ring_bytes = ob.ring_bytes = 4u << 20;
	if ((rc = kvf_connect("bench-a", &oa, &B->a)) != 0 ||
	    (rc = kvf_connect("bench-b", &ob, &B->b)) != 0)
		bench_die("kvf_connect() failed: %s (%d): %s",
		    kvf_strerror(rc), rc, kvf_last_error());
	rc = kvf_alloc_host(B->a, B->o.max, NULL, (void **)&B->pa, &B->ra);
	if (rc == 0)
		rc = kvf_alloc_host(B->b, B->o.max, NULL, (void **)&B->pb,
		                    &B->rb);
	if (rc != 0)
		bench_die("kvf_alloc_host(%llu) failed: %s (%d): %s",
		    (unsigned long long)B->o.max, kvf_strerror(rc), rc,
		    kvf_last_error());
	rc = kvf_resolve_peer(B->a, B->sb.peer_url, "bench-b", 10000,
	                      &B->peer);
	if (rc != 0)
		bench_die("kvf_resolve_peer() failed: %s (%d): %s",
		    kvf_strerror(rc), rc, kvf_last_error());
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " [-p provider] [-m all|bw|lat|post] [-s min] "
	        "[-S max] [-w window] [-o csv] [-x write|read|kv] [-R]\n"
	        "       " PROG " -m kv [-p provider] [-M preset] [-B tokens] "
	        "[-T p:d] [-L n,n,...]\n"
	        "                     [-x write|read] [-c conc] [-P peers] "
	        "[-r rails] [-A args] [-i iters]\n"
	        "                     [-w window] [-o table|csv|json[:file]] "
	        "[-R]\n"
	        "  -p  libfabric provider for the sidecars and the baseline "
	        "(default tcp = tcp;ofi_rxm)\n"
	        "  -m  what to measure (default all = bw, lat, post; kv only "
	        "when named)\n"
	        "  -s, -S  size sweep, bytes with k/m/g (default 4k..64m)\n"
	        "  -w  transfers in flight (default 64, as fi_raw_bench); "
	        "-m kv: the baseline's window\n"
	        "  -o csv  machine-readable output instead of the table; -m "
	        "kv also takes json,\n"
	        "      and FMT:FILE writes it to FILE beside the table\n"
	        "  -x write|read|kv  only that part of -m bw; -m kv: the op "
	        "(default write)\n"
	        "  -R  skip the raw libfabric baseline\n"
	        "  -A  extra kvferryd arguments for both sidecars, split at "
	        "blanks (any mode)\n");
	kvs_usage(f);
}

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *B = &bench;
	struct kvs_args ka = {0};
	const char *mode = "all", *fmt = NULL;
	int c;

	bench_init(PROG, 2);
	B->o.prov = "tcp";
	B->o.min = 4096;
	B->o.max = 64ull << 20;
	B->o.window = 64;
	while ((c = getopt(argc, argv,
	                   "p:m:s:S:w:o:x:RM:B:T:L:c:P:r:A:i:h")) != -1) {
		switch (c) {
		case 'p': B->o.prov = optarg; break;
		case 'm': mode = optarg; break;
		case 's': B->o.min = bench_opt_size("-s", optarg, 64, GIB);
		          break;
		case 'S': B->o.max = bench_opt_size("-S", optarg, 64, GIB);
		          break;
		case 'w': B->o.window = bench_opt_int("-w", optarg, 1, 1024);
		          break;
		case 'o': fmt = optarg; break;
		case 'R': B->o.no_raw = true; break;
		case 'x': B->o.only = optarg; break;
		case 'M': ka.preset = optarg; ka.any = true; break;
		case 'B': ka.block = optarg; ka.any = true; break;
		case 'T': ka.tp = optarg; ka.any = true; break;
		case 'L': ka.lengths = optarg; ka.any = true; break;
		case 'c': ka.conc = optarg; ka.any = true; break;
		case 'P': ka.peers = optarg; ka.any = true; break;
		case 'r': ka.rails = optarg; ka.any = true; break;
		case 'A': ka.extra = optarg; B->o.extra_arg = optarg; break;
		case 'i': ka.iters = optarg; ka.any = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		bench_err("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!strcmp(mode, "kv")) {
		struct kvs_opts ko;
		int rc;

		ka.fmt = fmt;
		if ((rc = kvs_opts_parse(&ko, &ka, B->o.prov, B->o.window,
		                         B->o.no_raw, B->o.only)) != 0)
			return rc;
		if (kv_find_build() != 0)
			return 1;
		rc = kv_sweep_main(&ko);
		if (ko.mout && ko.mout != stdout && fclose(ko.mout) != 0) {
			bench_err("-o %s: %s", fmt, strerror(errno));
			rc = 1;
		}
		return rc;
	}
	if (ka.any) {
		bench_err("-M, -B, -T, -L, -c, -P, -r and -i go with -m kv");
		return 2;
	}
	if (B->o.extra_arg &&
	    (B->o.nextra = bench_split_words(B->o.extra_arg, B->o.extra,
	                                     KVS_MAX_EXTRA)) < 0)
		return bench_bad("-A", B->o.extra_arg, "at most 16 arguments");
	if (fmt && strcmp(fmt, "csv") != 0) {
		bench_err("-o '%s': only csv (json goes with -m kv)", fmt);
		return 2;
	}
	B->o.csv = fmt != NULL;
	B->o.bw = !strcmp(mode, "all") || !strcmp(mode, "bw");
	B->o.lat = !strcmp(mode, "all") || !strcmp(mode, "lat");
	B->o.post = !strcmp(mode, "all") || !strcmp(mode, "post");
	if (!B->o.bw && !B->o.lat && !B->o.post) {
		bench_err("-m '%s': want all, bw, lat, post or kv", mode);
		return 2;
	}
	if (B->o.max < B->o.min) {
		bench_err("bad arguments: sizes want 64 <= min <= max <= 1g");
		usage(stderr);
		return 2;
	}
	if (B->o.max < 128 * 64)
		B->o.max = 128 * 64; /* the posting test's segments */
	if (kv_find_build() != 0)
		return 1;
	bench_at_die(stop, B);
	start(B);
	if (!B->o.csv)
		printf("kvferry-bench: provider %s, window %d, sidecars %s "
		       "and %s, %ld CPUs online\n",
		       B->o.prov, B->o.window, B->sa.peer_url, B->sb.peer_url,
		       sysconf(_SC_NPROCESSORS_ONLN));
	if (B->o.bw)
		mode_bw(B);
	if (B->o.lat)
		mode_lat(B);
	if (B->o.post)
		mode_post(B);
	kvf_close(B->a);
	kvf_close(B->b);
	B->a = B->b = NULL;
	if (tp_daemon_stop(&B->sa, SIGTERM, 5000) != 0 ||
	    tp_daemon_stop(&B->sb, SIGTERM, 5000) != 0) {
		bench_err("a sidecar did not stop on SIGTERM");
		return 1;
	}
	raw_set_fini(&B->raw);
	return 0;
}
