/*
 * tests/bench/store_bench.c - save and load GB/s of the KV store for a
 * KV-shaped workload, against fio (io_uring, same block size, queue depth
 * and O_DIRECT setting, same directory) measured in the same run.
 *
 * The host "KV cache" is one region, layer-major: block b of layer l at
 * l * layer_stride + b * block_bytes. An object is one run of token blocks
 * with every layer (num_layers * blocks_per_object layer-blocks), as an
 * engine would offload a prefix. Default: Llama-3-8B, 32 layers, 64 KiB
 * per layer-block (16 tokens x 8 KV heads x 128 x bf16 x K and V).
 *
 *   store_bench [-d dir] [-b block_bytes] [-l layers] [-n blocks/object]
 *               [-o objects] [-q depth] [-D auto|on|off] [-R] [-i iters]
 *               [-m] [-F]
 * -R registers the region with the ring, -m prints CSV, -F skips fio.
 * Warm-up (one object saved and loaded) is excluded; each figure is the
 * best of iters runs.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/lib/cli.h"
#include "tests/tap/clock.h"
#include "tests/tap/fio.h"
#include "xfer/store.h"

/* Wait for n completions; exits on any failure. */
static void drain(struct xfer_store *s, int n)
{
	struct xfer_store_done d[64];
	double end = tp_now_s() + 600;
	while (n > 0) {
		int got = xfer_store_poll(s, d, 64);
		for (int i = 0; i < got; i++)
			if (d[i].status)
				bench_die("operation: %s (%s)", d[i].msg,
				          kvf_strerror(d[i].status));
		n -= got;
		if (n > 0 && got == 0) {
			if (tp_now_s() > end)
				bench_die("drain: no completion (%s)",
				          kvf_strerror(KVF_ETIMEDOUT));
			xfer_store_wait(s, 100);
		}
	}
}

struct cfg {
	const char *dir;
	uint64_t bbytes;
	uint32_t layers, per_obj, objects, qd, iters;
	enum xfer_store_direct direct;
	int reg, csv, nofio;
};

/* One pass: save or load objects [first, first + count). */
static double pass(struct xfer_store *s, const struct cfg *c, char *base,
                   uint32_t first, uint32_t count, int save)
{
	uint32_t nb = c->layers * c->per_obj;
	uint64_t layer_stride = (uint64_t)c->per_obj * c->objects * c->bbytes;
	void **v = malloc(sizeof(void *) * nb);
	double t0 = tp_now_s();
	char name[64];

	for (uint32_t o = first; o < first + count; o++) {
		for (uint32_t l = 0; l < c->layers; l++)
			for (uint32_t b = 0; b < c->per_obj; b++)
				v[l * c->per_obj + b] =
				        base + l * layer_stride +
				        ((uint64_t)o * c->per_obj + b) *
				                c->bbytes;
		snprintf(name, sizeof(name), "prefix-%u", o);
		int ret = save ? xfer_store_save(s, name, NULL, v, nb,
		                                 c->bbytes, NULL)
		               : xfer_store_load(s, name, NULL, v, nb,
		                                 c->bbytes, NULL);
		if (ret)
			bench_die("%s: refused (%s)", save ? "save" : "load",
			          kvf_strerror(ret));
	}
	drain(s, (int)count);
	free(v);
	return tp_now_s() - t0;
}

int main(int argc, char **argv)
{
	struct cfg c = { "/tmp", 65536, 32, 16, 16, 32, 3,
	                 XFER_STORE_DIRECT_AUTO, 0, 0, 0 };
	int opt;

	bench_init("store_bench", 1);
	while ((opt = getopt(argc, argv, "d:b:l:n:o:q:D:i:RmF")) != -1) {
		switch (opt) {
		case 'd': c.dir = optarg; break;
		case 'b': c.bbytes = bench_opt_size("-b", optarg, 1, 1u << 30);
		          break;
		case 'l': c.layers = bench_opt_u32("-l", optarg, 1, 1024);
		          break;
		case 'n': c.per_obj = bench_opt_u32("-n", optarg, 1, 1u << 20);
		          break;
		case 'o': c.objects = bench_opt_u32("-o", optarg, 2, 1u << 20);
		          break;
		case 'q': c.qd = bench_opt_u32("-q", optarg, 1, 4096); break;
		case 'i': c.iters = bench_opt_u32("-i", optarg, 1, 1000);
		          break;
		case 'D':
			if (xfer_store_direct_parse(optarg) < 0)
				exit(bench_bad("-D", optarg,
				               "want auto, on or off"));
			c.direct = xfer_store_direct_parse(optarg);
			break;
		case 'R': c.reg = 1; break;
		case 'm': c.csv = 1; break;
		case 'F': c.nofio = 1; break;
		default:
			fprintf(stderr,
			        "usage: see the top of store_bench.c\n");
			return 2;
		}
	}
	if (optind < argc)
		exit(bench_bad("argument", argv[optind], "none expected"));

	char dir[600];
	snprintf(dir, sizeof(dir), "%s/kvf-store-bench-XXXXXX", c.dir);
	if (!mkdtemp(dir))
		bench_die("mkdtemp: %s (%s)", dir, strerror(errno));
	c.dir = dir;

	uint64_t region = (uint64_t)c.layers * c.per_obj * c.objects *
	                  c.bbytes;
	char *base = NULL;
	if (posix_memalign((void **)&base, 4096, region))
		bench_die("alloc: region of %" PRIu64 " bytes (%s)", region,
		          kvf_strerror(KVF_ENOMEM));
	for (uint64_t i = 0; i < region; i += 4096)
		memset(base + i, (int)(i >> 12), 4096);

	struct xfer_store_config sc = { .dir = dir, .queue_depth = c.qd,
		.direct = c.direct, .sync = XFER_STORE_SYNC_NONE };
	struct xfer_store *s;
	char err[400];
	int ret = xfer_store_open(&sc, &s, err, sizeof(err));
	if (ret)
		bench_die("open: %s (%s)", err, kvf_strerror(ret));
	uint32_t idx;
	if (c.reg && (ret = xfer_store_register_memory(s, base, region, &idx)))
		bench_die("register: see log (%s)", kvf_strerror(ret));
	int direct = xfer_store_direct(s);

	/* Warm-up: object 0, excluded. */
	pass(s, &c, base, 0, 1, 1);
	pass(s, &c, base, 0, 1, 0);
	uint32_t count = c.objects - 1;
	uint64_t bytes = (uint64_t)count * c.layers * c.per_obj * c.bbytes;
	double best_save = 1e30, best_load = 1e30;
	for (uint32_t it = 0; it < c.iters; it++) {
		double t = pass(s, &c, base, 1, count, 1);
		if (t < best_save)
			best_save = t;
		t = pass(s, &c, base, 1, count, 0);
		if (t < best_load)
			best_load = t;
	}
	xfer_store_close(s);
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "rm -f '%s'/*.kvs '%s'/.lock", dir, dir);
	if (system(cmd) != 0)
		bench_err("cleanup of %s failed", dir);

	double fw = 0, fr = 0;
	if (!c.nofio) {
		for (uint32_t it = 0; it < c.iters; it++) {
			double w = tp_fio_gbps(c.dir, "write", c.bbytes,
			                       c.qd, direct, bytes);
			double r = tp_fio_gbps(c.dir, "read", c.bbytes,
			                       c.qd, direct, bytes);
			fw = w > fw ? w : fw;
			fr = r > fr ? r : fr;
		}
	}
	double gs = bytes / best_save / 1e9, gl = bytes / best_load / 1e9;
	uint32_t nb = c.layers * c.per_obj;
	if (c.csv) {
		printf("op,block_bytes,qd,direct,registered,objects,bytes,"
		       "gbps,fio_gbps,ratio,us_per_object\n");
		printf("save,%" PRIu64 ",%u,%d,%d,%u,%" PRIu64 ",%.3f,%.3f,"
		       "%.3f,%.1f\n", c.bbytes, c.qd, direct, c.reg, count,
		       bytes, gs, fw, fw > 0 ? gs / fw : 0,
		       best_save / count * 1e6);
		printf("load,%" PRIu64 ",%u,%d,%d,%u,%" PRIu64 ",%.3f,%.3f,"
		       "%.3f,%.1f\n", c.bbytes, c.qd, direct, c.reg, count,
		       bytes, gl, fr, fr > 0 ? gl / fr : 0,
		       best_load / count * 1e6);
	} else {
		printf("# dir %s, direct %s, registered %s, %u objects of %u "
		       "blocks, best of %u\n", c.dir, direct ? "on" : "off",
		       c.reg ? "yes" : "no", count, nb, c.iters);
		printf("%-5s %10s %4s %12s %9s %9s %6s %12s\n", "op",
		       "block", "qd", "bytes", "GB/s", "fio GB/s", "ratio",
		       "us/object");
		printf("%-5s %10" PRIu64 " %4u %12" PRIu64 " %9.3f %9.3f "
		       "%6.2f %12.1f\n", "save", c.bbytes, c.qd, bytes, gs, fw,
		       fw > 0 ? gs / fw : 0, best_save / count * 1e6);
		printf("%-5s %10" PRIu64 " %4u %12" PRIu64 " %9.3f %9.3f "
		       "%6.2f %12.1f\n", "load", c.bbytes, c.qd, bytes, gl, fr,
		       fr > 0 ? gl / fr : 0, best_load / count * 1e6);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		bench_err("cleanup of %s failed", dir);
	free(base);
	return 0;
}
