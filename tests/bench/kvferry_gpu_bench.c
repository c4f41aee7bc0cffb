/*
 * tests/bench/kvferry_gpu_bench.c - GPU KV through two sidecars: a
 * 4096-token request of a Llama-3-8B and a Llama-3-70B layout (per GPU, no
 * tensor parallelism), pushed GPU to GPU staged (sidecars that claim
 * different hosts) and same-host; in the same run cudaMemcpy D2H, H2D and
 * D2D of the same bytes (one copy, and the same 64 KiB block pattern) and
 * the host-memory network figure through the same sidecars.
 *
 *   kvferry_gpu_bench [-p provider] [-t tokens] [-i iterations] [-o csv]
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
#include "tests/tap/proc.h"

#ifndef KVF_HAVE_CUDA
int main(void)
{
	printf("kvferry_gpu_bench: built without CUDA\n");
	return 0;
}
#else
#include <cuda_runtime_api.h>

#define PIECE (64u << 10) /* 2 (K,V) x 8 heads x 16 tokens x 128 x bf16 */

struct model {
	const char *name;
	uint32_t layers;
};

static const struct model models[] = {
	{"llama3-8b", 32},
	{"llama3-70b", 80},
};

/* Push every block src -> dst, return the best GB/s over iters. */
static double push(kvf_client *src, kvf_client *dst, kvf_peer peer,
                   kvf_region lr, kvf_region rr, uint32_t blocks,
                   uint64_t bytes, int iters)
{
	uint32_t *ids = malloc(blocks * sizeof *ids);
	struct kvf_event ev;
	double best = 0;
	for (uint32_t i = 0; i < blocks; i++)
		ids[i] = i;
	for (int it = 0; it <= iters; it++) {
		struct kvf_xfer_opts o = {.tag = "b", .tag_len = 1,
		                          .timeout_ms = 60000};
		double t0 = tp_now_s();
		if (kvf_submit_blocks(src, KVF_WRITE, peer, lr, rr, ids, ids,
		                      blocks, &o, NULL) != 0 ||
		    !tp_wait_event(dst, KVF_EV_NOTIF, 60000, &ev,
		                   &tp_wait_stderr)) {
			bench_err("push failed: %s", kvf_last_error());
			free(ids);
			return 0;
		}
		double gbs = (double)bytes / (tp_now_s() - t0) / 1e9;
		if (!tp_wait_event(src, KVF_EV_XFER_DONE, 60000, &ev,
		                   &tp_wait_stderr) || ev.status != 0)
			bench_err("completion not ok");
		if (it > 0 && gbs > best) /* the first is warm-up */
			best = gbs;
	}
	free(ids);
	return best;
}

static double memcpy_gbs(void *dst, const void *src, uint64_t bytes,
                         enum cudaMemcpyKind kind, uint64_t piece, int iters)
{
	cudaStream_t s;
	double best = 0;
	BENCH_CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	for (int it = 0; it <= iters; it++) {
		double t0 = tp_now_s();
		for (uint64_t off = 0; off < bytes; off += piece)
			BENCH_CK(cudaMemcpyAsync((uint8_t *)dst + off,
			    (const uint8_t *)src + off,
			    piece < bytes - off ? piece : bytes - off, kind,
			    s));
		BENCH_CK(cudaStreamSynchronize(s));
		double gbs = (double)bytes / (tp_now_s() - t0) / 1e9;
		if (it > 0 && gbs > best)
			best = gbs;
	}
	BENCH_CK(cudaStreamDestroy(s));
	return best;
}

int main(int argc, char **argv)
{
	const char *prov = "tcp";
	uint32_t tokens = 4096;
	int iters = 3, csv = 0, opt;
	struct tp_daemon a, b, c, d;
	int n = 0;

	bench_init("kvferry_gpu_bench", 2);
	while ((opt = getopt(argc, argv, "p:t:i:o:")) != -1) {
		if (opt == 'p')
			prov = optarg;
		else if (opt == 't')
			tokens = bench_opt_u32("-t", optarg, 1, 1u << 20);
		else if (opt == 'i')
			iters = bench_opt_int("-i", optarg, 1, 1000);
		else if (opt == 'o')
			csv = strcmp(optarg, "csv") == 0;
		else {
			fprintf(stderr, "usage: %s [-p provider] [-t tokens] "
			        "[-i iters] [-o csv]\n", argv[0]);
			return 2;
		}
	}
	if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
		printf("kvferry_gpu_bench: no CUDA device\n");
		return 0;
	}
	const char *const sa[] = {"--provider", prov, "--host-id", "A", NULL};
	const char *const sb[] = {"--provider", prov, "--host-id", "B", NULL};
	const char *const ss[] = {"--provider", prov, "--host-id", "S", NULL};
	if (tp_daemon_start(&a, "a", sa, NULL) ||
	    tp_daemon_start(&b, "b", sb, NULL) ||
	    tp_daemon_start(&c, "c", ss, NULL) ||
	    tp_daemon_start(&d, "d", ss, NULL))
		bench_die("sidecars did not start");
	struct kvf_connect_opts oa = {.socket_path = a.engine_socket};
	struct kvf_connect_opts ob = {.socket_path = b.engine_socket};
	struct kvf_connect_opts oc = {.socket_path = c.engine_socket};
	struct kvf_connect_opts od = {.socket_path = d.engine_socket};
	kvf_client *pa, *pb, *pc, *pd;
	if (kvf_connect("pa", &oa, &pa) || kvf_connect("pb", &ob, &pb) ||
	    kvf_connect("pc", &oc, &pc) || kvf_connect("pd", &od, &pd))
		bench_die("connect: %s", kvf_last_error());
	if (csv)
		printf("model,tokens,bytes,staged_gbs,same_host_gbs,"
		       "host_net_gbs,d2h_gbs,h2d_gbs,d2d_gbs,d2d_pieces_gbs,"
		       "staged_ratio,same_host_ratio\n");
	else
		printf("%-11s %6s %9s %8s %8s %8s %8s %8s %8s %8s %7s %7s\n",
		       "model", "tokens", "MiB", "staged", "samehost",
		       "hostnet", "D2H", "H2D", "D2D", "D2Dpiece", "st/min",
		       "sh/d2dp");
	for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
		uint32_t blocks = (tokens + 15) / 16;
		struct kvf_layout l = {models[m].layers, blocks, PIECE,
		                       (uint64_t)blocks * PIECE, PIECE, 0};
		uint64_t bytes = (uint64_t)models[m].layers * blocks * PIECE;
		uint8_t *g1, *g2, *g3, *g4, *h1, *h2;
		kvf_region r1, r2, r3, r4, hr1, hr2;
		kvf_peer ab, cd;
		void *pinned;

		BENCH_CK(cudaMalloc((void **)&g1, bytes));
		BENCH_CK(cudaMalloc((void **)&g2, bytes));
		BENCH_CK(cudaMalloc((void **)&g3, bytes));
		BENCH_CK(cudaMalloc((void **)&g4, bytes));
		BENCH_CK(cudaMemset(g1, 1, bytes));
		BENCH_CK(cudaMemset(g3, 3, bytes));
		BENCH_CK(cudaMallocHost(&pinned, bytes));
		if (kvf_register_cuda(pa, g1, bytes, &l, &r1) ||
		    kvf_register_cuda(pb, g2, bytes, &l, &r2) ||
		    kvf_register_cuda(pc, g3, bytes, &l, &r3) ||
		    kvf_register_cuda(pd, g4, bytes, &l, &r4) ||
		    kvf_alloc_host(pa, bytes, &l, (void **)&h1, &hr1) ||
		    kvf_alloc_host(pb, bytes, &l, (void **)&h2, &hr2) ||
		    kvf_resolve_peer(pa, b.peer_url, "pb", 0, &ab) ||
		    kvf_resolve_peer(pc, d.peer_url, "pd", 0, &cd))
			bench_die("setup: %s", kvf_last_error());
		memset(h1, 5, bytes);
		double st = push(pa, pb, ab, r1, r2, blocks, bytes, iters);
		double sh = push(pc, pd, cd, r3, r4, blocks, bytes, iters);
		double hn = push(pa, pb, ab, hr1, hr2, blocks, bytes, iters);
		double d2h = memcpy_gbs(pinned, g1, bytes,
		                        cudaMemcpyDeviceToHost, bytes, iters);
		double h2d = memcpy_gbs(g2, pinned, bytes,
		                        cudaMemcpyHostToDevice, bytes, iters);
		double d2d = memcpy_gbs(g2, g1, bytes,
		                        cudaMemcpyDeviceToDevice, bytes,
		                        iters);
		double d2dp = memcpy_gbs(g2, g1, bytes,
		                         cudaMemcpyDeviceToDevice, PIECE,
		                         iters);
		double mn = d2h < h2d ? d2h : h2d;
		if (hn < mn)
			mn = hn;
		if (csv)
			printf("%s,%u,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,"
			       "%.3f,%.3f\n",
			       models[m].name, tokens,
			       (unsigned long long)bytes, st, sh, hn, d2h, h2d,
			       d2d, d2dp, st / mn, sh / d2dp);
		else
			printf("%-11s %6u %9.0f %8.2f %8.2f %8.2f %8.2f %8.2f "
			       "%8.1f %8.2f %7.2f %7.2f\n",
			       models[m].name, tokens,
			       (double)bytes / 1048576.0, st, sh, hn, d2h, h2d,
			       d2d, d2dp, st / mn, sh / d2dp);
		fflush(stdout);
		kvf_free_region(pa, r1);
		kvf_free_region(pb, r2);
		kvf_free_region(pc, r3);
		kvf_free_region(pd, r4);
		kvf_free_region(pa, hr1);
		kvf_free_region(pb, hr2);
		BENCH_CK(cudaFree(g1));
		BENCH_CK(cudaFree(g2));
		BENCH_CK(cudaFree(g3));
		BENCH_CK(cudaFree(g4));
		BENCH_CK(cudaFreeHost(pinned));
	}
	if (!csv)
		printf("GB/s, best of %d after a warm-up; staged goal: st/min "
		       ">= 0.8 of min(D2H, H2D, host network); same-host "
		       "goal: >= 0.8 of D2D for the same 64 KiB block "
		       "pattern\n",
		       iters);
	kvf_close(pa);
	kvf_close(pb);
	kvf_close(pc);
	kvf_close(pd);
	tp_daemon_stop(&a, SIGTERM, 8000);
	tp_daemon_stop(&b, SIGTERM, 8000);
	tp_daemon_stop(&c, SIGTERM, 8000);
	tp_daemon_stop(&d, SIGTERM, 8000);
	return 0;
}
#endif
