/*
 * tests/bench/kvferry_mgpu_bench.c - GPU to GPU on one host through two
 * sidecars that share a host id: a Llama-3-8B request's KV (32 layers x
 * tokens/16 blocks x 64 KiB, 512 MiB for 4096 tokens) pushed from an engine
 * region on GPU 0 into one on GPU 1, block for block (contiguous: the
 * sidecar can merge the pieces) and scattered (destination blocks
 * reversed: one peer copy per 64 KiB piece); in the same run
 * cudaMemcpyPeerAsync of the same bytes as one copy and as 64 KiB pieces.
 * The bytes of each kvferry push are checked once. GB/s is the best
 * iteration after a warm-up; the mean is printed beside it. The one-copy
 * baseline is also measured before this process enables peer access, to
 * show what a copy staged through host memory by the driver costs.
 *
 *   kvferry_mgpu_bench [-p provider] [-t tokens] [-i iterations] [-o csv]
 *                      [-d]   (-d: sidecars log at debug level)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/bench/lib/cli.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"

#ifndef KVF_HAVE_CUDA
int main(void)
{
	printf("kvferry_mgpu_bench: built without CUDA\n");
	return 0;
}
#else
#include <cuda_runtime_api.h>

#define PIECE (64u << 10) /* 2 (K,V) x 8 heads x 16 tokens x 128 x bf16 */
#define LAYERS 32u        /* Llama-3-8B */

struct fig {
	double best, mean; /* GB/s */
	int n;
};

static void fig_add(struct fig *f, double gbs)
{
	if (gbs > f->best)
		f->best = gbs;
	f->mean = (f->mean * f->n + gbs) / (f->n + 1);
	f->n++;
}

/* Push every block src -> dst (dst block dst_ids[i] gets src block i);
 * time from submission to the target's notification. */
static int push(kvf_client *src, kvf_client *dst, kvf_peer peer,
                kvf_region lr, kvf_region rr, const uint32_t *ids,
                const uint32_t *dst_ids, uint32_t blocks, uint64_t bytes,
                int iters, struct fig *f)
{
	struct kvf_event ev;

	for (int it = 0; it <= iters; it++) {
		struct kvf_xfer_opts o = {.tag = "b", .tag_len = 1,
		                          .timeout_ms = 60000};
		double t0 = tp_now_s();
		if (kvf_submit_blocks(src, KVF_WRITE, peer, lr, rr, ids,
		                      dst_ids, blocks, &o, NULL) != 0) {
			bench_err("submit: %s", kvf_last_error());
			return -1;
		}
		if (!tp_wait_event(dst, KVF_EV_NOTIF, 60000, &ev,
		                   &tp_wait_stderr))
			return -1;
		double dt = tp_now_s() - t0;
		if (!tp_wait_event(src, KVF_EV_XFER_DONE, 60000, &ev,
		                   &tp_wait_stderr) || ev.status != 0) {
			bench_err("completion not ok");
			return -1;
		}
		if (it > 0) /* the first is warm-up */
			fig_add(f, (double)bytes / dt / 1e9);
	}
	return 0;
}

/* cudaMemcpyPeerAsync GPU 0 -> GPU 1 in pieces of piece bytes. */
static void peer_copy(void *dst, const void *src, uint64_t bytes,
                      uint64_t piece, int iters, struct fig *f)
{
	cudaStream_t s;
	BENCH_CK(cudaSetDevice(0));
	BENCH_CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	for (int it = 0; it <= iters; it++) {
		double t0 = tp_now_s();
		for (uint64_t off = 0; off < bytes; off += piece)
			BENCH_CK(cudaMemcpyPeerAsync((uint8_t *)dst + off, 1,
			    (const uint8_t *)src + off, 0,
			    piece < bytes - off ? piece : bytes - off, s));
		BENCH_CK(cudaStreamSynchronize(s));
		double dt = tp_now_s() - t0;
		if (it > 0)
			fig_add(f, (double)bytes / dt / 1e9);
	}
	BENCH_CK(cudaStreamDestroy(s));
}

/* Does GPU 1 hold GPU 0's layer-blocks where dst_ids put them? */
static int check(const uint8_t *want, const uint8_t *g1, uint8_t *got,
                 uint32_t blocks, const uint32_t *dst_ids, uint64_t bytes)
{
	BENCH_CK(cudaMemcpy(got, g1, bytes, cudaMemcpyDeviceToHost));
	for (uint32_t l = 0; l < LAYERS; l++)
		for (uint32_t b = 0; b < blocks; b++) {
			size_t s = ((size_t)l * blocks + b) * PIECE;
			size_t d = ((size_t)l * blocks + dst_ids[b]) * PIECE;
			if (memcmp(got + d, want + s, PIECE) != 0) {
				bench_err("layer %u block %u -> %u: wrong "
				          "bytes on GPU 1", l, b, dst_ids[b]);
				return -1;
			}
		}
	return 0;
}

int main(int argc, char **argv)
{
	const char *prov = "tcp";
	uint32_t tokens = 4096;
	int iters = 5, csv = 0, debug = 0, opt, n = 0, p01 = 0, p10 = 0;
	struct tp_daemon c, d;

	bench_init("kvferry_mgpu_bench", 2);
	while ((opt = getopt(argc, argv, "p:t:i:o:d")) != -1) {
		if (opt == 'p')
			prov = optarg;
		else if (opt == 't')
			tokens = bench_opt_u32("-t", optarg, 16, 1u << 20);
		else if (opt == 'i')
			iters = bench_opt_int("-i", optarg, 1, 1000);
		else if (opt == 'o')
			csv = strcmp(optarg, "csv") == 0;
		else if (opt == 'd')
			debug = 1;
		else {
			fprintf(stderr, "usage: %s [-p provider] [-t tokens] "
			        "[-i iters] [-o csv] [-d]\n", argv[0]);
			return 2;
		}
	}
	if (cudaGetDeviceCount(&n) != cudaSuccess || n < 2) {
		printf("kvferry_mgpu_bench: needs 2 CUDA devices, sees %d\n",
		       n);
		return 0;
	}
	uint32_t blocks = (tokens + 15) / 16;
	uint64_t bytes = (uint64_t)LAYERS * blocks * PIECE;
	uint8_t *g0, *g1;
	BENCH_CK(cudaSetDevice(0));
	BENCH_CK(cudaMalloc((void **)&g0, bytes));
	BENCH_CK(cudaSetDevice(1));
	BENCH_CK(cudaMalloc((void **)&g1, bytes));
	struct fig p1off = {0};
	peer_copy(g1, g0, bytes, bytes, iters, &p1off);

	BENCH_CK(cudaDeviceCanAccessPeer(&p01, 0, 1));
	BENCH_CK(cudaDeviceCanAccessPeer(&p10, 1, 0));
	/* The baseline gets direct peer copies, as the sidecar's imports do
	 * (cudaIpcMemLazyEnablePeerAccess). */
	if (p01) {
		BENCH_CK(cudaSetDevice(0));
		cudaError_t e = cudaDeviceEnablePeerAccess(1, 0);
		if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled)
			BENCH_CK(e);
	}
	if (p10) {
		BENCH_CK(cudaSetDevice(1));
		cudaError_t e = cudaDeviceEnablePeerAccess(0, 0);
		if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled)
			BENCH_CK(e);
	}
	(void)cudaGetLastError();

	const char *const ss[] = {"--provider", prov, "--host-id", "S",
	                          "--log-level", debug ? "debug" : "info",
	                          NULL};
	if (tp_daemon_start(&c, "c", ss, NULL) ||
	    tp_daemon_start(&d, "d", ss, NULL))
		bench_die("sidecars did not start");
	struct kvf_connect_opts oc = {.socket_path = c.engine_socket};
	struct kvf_connect_opts od = {.socket_path = d.engine_socket};
	kvf_client *pc, *pd;
	if (kvf_connect("gpu0", &oc, &pc) || kvf_connect("gpu1", &od, &pd))
		bench_die("connect: %s", kvf_last_error());

	struct kvf_layout l = {LAYERS, blocks, PIECE, (uint64_t)blocks * PIECE,
	                       PIECE, 0};
	uint32_t *ids = malloc(blocks * sizeof *ids);
	uint32_t *rev = malloc(blocks * sizeof *rev);
	uint8_t *want = malloc(bytes), *got = malloc(bytes);
	kvf_region r0, r1;
	kvf_peer peer;

	if (!ids || !rev || !want || !got)
		bench_die("out of memory");
	for (uint32_t i = 0; i < blocks; i++) {
		ids[i] = i;
		rev[i] = blocks - 1 - i;
	}
	tp_pattern_fill(want, bytes, 1);
	BENCH_CK(cudaMemcpy(g0, want, bytes, cudaMemcpyHostToDevice));
	BENCH_CK(cudaMemset(g1, 0, bytes));
	if (kvf_register_cuda(pc, g0, bytes, &l, &r0) ||
	    kvf_register_cuda(pd, g1, bytes, &l, &r1) ||
	    kvf_resolve_peer(pc, d.peer_url, "gpu1", 0, &peer))
		bench_die("setup: %s", kvf_last_error());

	struct fig kc = {0}, ks = {0}, p1 = {0}, pp = {0};
	int bad = 0;
	if (push(pc, pd, peer, r0, r1, ids, ids, blocks, bytes, iters, &kc) ||
	    check(want, g1, got, blocks, ids, bytes))
		bad = 1;
	BENCH_CK(cudaMemset(g1, 0, bytes));
	if (push(pc, pd, peer, r0, r1, ids, rev, blocks, bytes, iters, &ks) ||
	    check(want, g1, got, blocks, rev, bytes))
		bad = 1;
	peer_copy(g1, g0, bytes, bytes, iters, &p1);
	peer_copy(g1, g0, bytes, PIECE, iters, &pp);

	if (csv) {
		printf("tokens,bytes,p2p,kvf_contig_gbs,kvf_scatter_gbs,"
		       "peer_one_gbs,peer_pieces_gbs,peer_one_no_access_gbs,"
		       "contig_ratio,scatter_ratio,bytes_ok\n");
		printf("%u,%llu,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%d\n",
		       tokens, (unsigned long long)bytes, p01 && p10, kc.best,
		       ks.best, p1.best, pp.best, p1off.best,
		       kc.best / p1.best, ks.best / pp.best, !bad);
	} else {
		printf("# GPU 0 -> GPU 1, llama3-8b %u tokens: %u layers x %u "
		       "blocks x 64 KiB = %.0f MiB; peer access %s; provider "
		       "%s\n", tokens, LAYERS, blocks,
		       (double)bytes / 1048576.0, p01 && p10 ? "yes" : "NO",
		       prov);
		printf("%-36s %6s %9s %9s %9s\n", "path", "iters", "GB/s",
		       "mean", "ms/xfer");
		const struct {
			const char *name;
			struct fig *f;
		} rows[] = {
			{"kvferry same-host, blocks in order", &kc},
			{"kvferry same-host, blocks reversed", &ks},
			{"cudaMemcpyPeerAsync, one copy", &p1},
			{"cudaMemcpyPeerAsync, 64 KiB pieces", &pp},
			{"cudaMemcpyPeerAsync, 1 copy, no P2P", &p1off},
		};
		for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
			printf("%-36s %6d %9.2f %9.2f %9.3f\n", rows[i].name,
			       rows[i].f->n, rows[i].f->best, rows[i].f->mean,
			       rows[i].f->best > 0
			               ? (double)bytes / rows[i].f->best / 1e6
			               : 0.0);
		printf("ratio kvferry in order / peer one copy:    %.2f\n",
		       kc.best / p1.best);
		printf("ratio kvferry reversed / peer 64 KiB pieces: %.2f\n",
		       ks.best / pp.best);
		printf("bytes on GPU 1 after each kvferry push: %s\n",
		       bad ? "WRONG" : "right");
	}
	fflush(stdout);
	kvf_free_region(pc, r0);
	kvf_free_region(pd, r1);
	kvf_close(pc);
	kvf_close(pd);
	tp_daemon_stop(&c, SIGTERM, 8000);
	tp_daemon_stop(&d, SIGTERM, 8000);
	BENCH_CK(cudaFree(g0));
	BENCH_CK(cudaFree(g1));
	free(want);
	free(got);
	free(ids);
	free(rev);
	return bad;
}
#endif
