/*
 * tests/bench/sidecar_store_bench.c - save and load GB/s of the storage
 * tier as an engine sees it: kvf_save_blocks / kvf_load_blocks through the
 * submission ring, the sidecar's progress thread and its io_uring store,
 * against fio (io_uring, same block size, queue depth, O_DIRECT setting
 * and directory) measured in the same run. tests/bench/store_bench.c is
 * the same workload on the store alone, without the sidecar.
 *
 * Workload: a layer-major host KV region; an object is per_obj token
 * blocks with every layer, as an engine offloads a prefix. Default:
 * Llama-3-8B-like, 32 layers, 64 KiB per layer-block, 16 blocks per
 * object, 31 timed objects, all submitted at once, then waited for.
 *
 *   sidecar_store_bench [-d dir] [-b block_bytes] [-l layers]
 *                       [-n blocks/object] [-o objects] [-q depth]
 *                       [-D auto|on|off] [-i iters] [-m] [-F]
 * Needs KVF_BUILD (kvferryd from $KVF_BUILD/bin). -m prints CSV, -F skips
 * fio. Warm-up (one object saved and loaded) is excluded; each figure is
 * the best of iters runs.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/bench/lib/cli.h"
#include "tests/tap/clock.h"
#include "tests/tap/fio.h"
#include "tests/tap/proc.h"

struct cfg {
	const char *dir;
	uint64_t bbytes;
	uint32_t layers, per_obj, objects, qd, iters;
	const char *direct;
	int csv, nofio;
};

/* Submit saves or loads of objects [first, first + count), then wait for
 * every completion. Returns the seconds it took. */
static double pass(kvf_client *c, kvf_region r, const struct cfg *g,
                   uint32_t first, uint32_t count, int save)
{
	uint32_t *blocks = malloc(sizeof *blocks * g->per_obj);
	struct kvf_event ev[64];
	double t0 = tp_now_s(), end = t0 + 600;
	uint32_t left = count;
	char name[64];

	for (uint32_t o = first; o < first + count; o++) {
		int rc;
		for (uint32_t b = 0; b < g->per_obj; b++)
			blocks[b] = o * g->per_obj + b;
		snprintf(name, sizeof name, "prefix-%u", o);
		while ((rc = save ? kvf_save_blocks(c, r, blocks, g->per_obj,
		                                    name, NULL, NULL)
		                  : kvf_load_blocks(c, r, blocks, g->per_obj,
		                                    name, NULL, NULL)) ==
		       KVF_EAGAIN)
			usleep(100);
		if (rc)
			bench_die("%s: %s (%s)", save ? "save" : "load",
			          kvf_last_error(), kvf_strerror(rc));
	}
	while (left) {
		int n = 0, rc = kvf_wait(c, ev, 64, 1000, &n);
		if (rc)
			bench_die("kvf_wait: %s (%s)", kvf_last_error(),
			          kvf_strerror(rc));
		for (int i = 0; i < n; i++) {
			if (ev[i].type != KVF_EV_XFER_DONE)
				continue;
			if (ev[i].status) {
				bench_die("completion: %s (%s)", ev[i].message,
				          kvf_strerror(ev[i].status));
			}
			left--;
		}
		if (tp_now_s() > end)
			bench_die("wait: no completion in 600 s (%s)",
			          kvf_strerror(KVF_ETIMEDOUT));
	}
	free(blocks);
	return tp_now_s() - t0;
}

int main(int argc, char **argv)
{
	struct cfg g = {"/tmp", 65536, 32, 16, 32, 64, 3, "auto", 0, 0};
	struct tp_daemon d;
	struct kvf_connect_opts co = {0};
	char dir[600], qd[16], cmd[1400];
	kvf_client *c = NULL;
	kvf_region r;
	void *base;
	int opt, rc, direct;

	bench_init("sidecar_store_bench", 2);
	while ((opt = getopt(argc, argv, "d:b:l:n:o:q:D:i:mF")) != -1) {
		switch (opt) {
		case 'd': g.dir = optarg; break;
		case 'b': g.bbytes = bench_opt_size("-b", optarg, 1, 1u << 30);
		          break;
		case 'l': g.layers = bench_opt_u32("-l", optarg, 1, 1024);
		          break;
		case 'n': g.per_obj = bench_opt_u32("-n", optarg, 1, 1u << 20);
		          break;
		case 'o': g.objects = bench_opt_u32("-o", optarg, 2, 1u << 20);
		          break;
		case 'q': g.qd = bench_opt_u32("-q", optarg, 1, 4096); break;
		case 'i': g.iters = bench_opt_u32("-i", optarg, 1, 1000);
		          break;
		case 'D': g.direct = optarg; break;
		case 'm': g.csv = 1; break;
		case 'F': g.nofio = 1; break;
		default:
			fprintf(stderr, "usage: see the top of "
			        "sidecar_store_bench.c\n");
			return 2;
		}
	}
	if (optind < argc)
		return bench_bad("argument", argv[optind], "none expected");
	snprintf(dir, sizeof dir, "%s/kvf-sc-store-bench-XXXXXX", g.dir);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	g.dir = dir;
	snprintf(qd, sizeof qd, "%u", g.qd);
	{
		const char *args[] = {"--provider", "tcp", "--store-dir", dir,
		                      "--store-queue-depth", qd,
		                      "--store-direct", g.direct, NULL};
		if (tp_daemon_start(&d, "sidecar", args, NULL) != 0)
			bench_die("kvferryd did not start");
	}
	co.socket_path = d.engine_socket;
	co.ring_bytes = 4u << 20;
	if ((rc = kvf_connect("bench", &co, &c)) != 0)
		bench_die("kvf_connect: %s (%s)", kvf_last_error(),
		          kvf_strerror(rc));
	uint32_t nblocks = g.per_obj * g.objects;
	struct kvf_layout l = {g.layers, nblocks, g.bbytes,
	                       (uint64_t)nblocks * g.bbytes, g.bbytes, 0};
	uint64_t region = (uint64_t)g.layers * nblocks * g.bbytes;
	if ((rc = kvf_alloc_host(c, region, &l, &base, &r)) != 0)
		bench_die("kvf_alloc_host: %s (%s)", kvf_last_error(),
		          kvf_strerror(rc));
	for (uint64_t i = 0; i < region; i += 4096)
		memset((char *)base + i, (int)(i >> 12),
		       region - i < 4096 ? region - i : 4096);

	pass(c, r, &g, 0, 1, 1); /* warm-up, excluded */
	pass(c, r, &g, 0, 1, 0);
	uint32_t count = g.objects - 1;
	uint64_t bytes = (uint64_t)count * g.layers * g.per_obj * g.bbytes;
	double bs = 1e30, bl = 1e30;
	for (uint32_t it = 0; it < g.iters; it++) {
		double t = pass(c, r, &g, 1, count, 1);
		bs = t < bs ? t : bs;
		t = pass(c, r, &g, 1, count, 0);
		bl = t < bl ? t : bl;
	}
	kvf_close(c);
	{
		char *log = tp_daemon_log(&d);
		direct = log && strstr(log, "O_DIRECT on") ? 1 : 0;
		free(log);
	}
	tp_daemon_stop(&d, SIGTERM, 10000);
	snprintf(cmd, sizeof cmd, "rm -f '%s'/*.kvs '%s'/.lock", dir, dir);
	if (system(cmd) != 0)
		bench_err("cleanup of %s failed", dir);

	double fw = 0, fr = 0;
	if (!g.nofio) {
		for (uint32_t it = 0; it < g.iters; it++) {
			double w = tp_fio_gbps(g.dir, "write", g.bbytes,
			                       g.qd, direct, bytes);
			double rr = tp_fio_gbps(g.dir, "read", g.bbytes,
			                        g.qd, direct, bytes);
			fw = w > fw ? w : fw;
			fr = rr > fr ? rr : fr;
		}
	}
	double gs = bytes / bs / 1e9, gl = bytes / bl / 1e9;
	if (g.csv) {
		printf("op,block_bytes,qd,direct,objects,bytes,gbps,fio_gbps,"
		       "ratio,us_per_object\n");
		printf("save,%" PRIu64 ",%u,%d,%u,%" PRIu64 ",%.3f,%.3f,%.3f,"
		       "%.1f\n", g.bbytes, g.qd, direct, count, bytes, gs, fw,
		       fw > 0 ? gs / fw : 0, bs / count * 1e6);
		printf("load,%" PRIu64 ",%u,%d,%u,%" PRIu64 ",%.3f,%.3f,%.3f,"
		       "%.1f\n", g.bbytes, g.qd, direct, count, bytes, gl, fr,
		       fr > 0 ? gl / fr : 0, bl / count * 1e6);
	} else {
		printf("# engine -> ring -> kvferryd -> io_uring; dir %s, "
		       "direct %s, %u objects of %u layers x %u blocks, best "
		       "of %u\n", g.dir, direct ? "on" : "off", count,
		       g.layers, g.per_obj, g.iters);
		printf("%-5s %10s %4s %12s %9s %9s %6s %12s\n", "op",
		       "block", "qd", "bytes", "GB/s", "fio GB/s", "ratio",
		       "us/object");
		printf("%-5s %10" PRIu64 " %4u %12" PRIu64 " %9.3f %9.3f "
		       "%6.2f %12.1f\n", "save", g.bbytes, g.qd, bytes, gs, fw,
		       fw > 0 ? gs / fw : 0, bs / count * 1e6);
		printf("%-5s %10" PRIu64 " %4u %12" PRIu64 " %9.3f %9.3f "
		       "%6.2f %12.1f\n", "load", g.bbytes, g.qd, bytes, gl, fr,
		       fr > 0 ? gl / fr : 0, bl / count * 1e6);
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		bench_err("cleanup of %s failed", dir);
	return 0;
}
