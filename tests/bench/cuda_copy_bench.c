/*
 * tests/bench/cuda_copy_bench.c - the xfer/cuda copy engine against plain
 * cudaMemcpy for one Llama-3-8B request's KV cache at 4096 tokens: 32 layers
 * x 256 blocks x 64 KiB (512 MiB), as 8192 scattered pieces (blocks land
 * in a permuted order, so nothing merges) and as one piece, D2H, H2D and
 * D2D.
 *
 * Usage: cuda_copy_bench [-c] [iters]   (-c: CSV lines only)
 * Columns: direction, case, pieces issued, MiB per transfer, iterations,
 * GB/s (1e9 bytes/s), ms per transfer, us of CPU time to issue. One warm-up
 * transfer per case is not counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "tests/bench/lib/cli.h"
#include "tests/tap/clock.h"
#include "xfer/cuda.h"

#ifndef KVF_HAVE_CUDA
int main(void)
{
	printf("cuda_copy_bench: skipped: this build has no CUDA support\n");
	return 0;
}
#else

#include <cuda_runtime_api.h>

#define LAYERS 32u
#define BLOCKS 256u
#define BLOCK (64u * 1024u)
#define NPIECE (LAYERS * BLOCKS)
#define TOTAL ((uint64_t)NPIECE * BLOCK)

static int csv;

static void report(const char *dir, const char *name, uint32_t pieces,
                   int iters, double secs, double issue_s)
{
	double gbs = (double)TOTAL * iters / secs / 1e9;

	if (csv)
		printf("%s,%s,%u,%llu,%d,%.2f,%.3f,%.1f\n", dir, name, pieces,
		       (unsigned long long)TOTAL, iters, gbs,
		       secs * 1e3 / iters, issue_s * 1e6 / iters);
	else
		printf("%-4s %-26s %7u %8llu %5d %8.2f %9.3f %9.1f\n", dir,
		       name, pieces, (unsigned long long)(TOTAL >> 20), iters,
		       gbs, secs * 1e3 / iters, issue_s * 1e6 / iters);
	fflush(stdout);
}

/* The engine: iters transfers of v, each waited for before the next. */
static void engine(struct xfer_cuda_copier *cp, const char *dir,
                   enum xfer_cuda_kind kind, const char *name,
                   struct xfer_cuda_copy *v, uint32_t n, int iters)
{
	struct xfer_cuda_batch *b;
	double t0 = 0, t1, issue = 0;
	uint32_t pieces = 0;

	for (int i = -1; i < iters; i++) {
		if (i == 0)
			issue = 0, t0 = tp_now_s();
		t1 = tp_now_s();
		if (xfer_cuda_copy_start(cp, 0, kind, v, n, NULL, &b))
			bench_die("%s %s failed", dir, name);
		issue += tp_now_s() - t1;
		if (xfer_cuda_batch_wait(b, 60000))
			bench_die("%s %s: wait failed", dir, name);
		pieces = xfer_cuda_batch_pieces(b);
		xfer_cuda_batch_free(cp, b);
	}
	report(dir, name, pieces, iters, tp_now_s() - t0, issue);
}

/* The baselines: cudaMemcpy of the whole, and cudaMemcpyAsync per piece on
 * one stream followed by a synchronize. */
static void plain(const char *dir, enum cudaMemcpyKind kind,
                  struct xfer_cuda_copy *v, uint32_t n, const char *name,
                  cudaStream_t s, int iters)
{
	double t0 = 0, t1, issue = 0;
	cudaError_t rc;

	for (int i = -1; i < iters; i++) {
		if (i == 0)
			issue = 0, t0 = tp_now_s();
		t1 = tp_now_s();
		for (uint32_t k = 0; k < n; k++) {
			rc = n == 1 ? cudaMemcpy(v[k].dst, v[k].src, v[k].len,
			                         kind)
			            : cudaMemcpyAsync(v[k].dst, v[k].src,
			                              v[k].len, kind, s);
			if (rc != cudaSuccess)
				bench_die("%s failed: %s", name,
				          cudaGetErrorName(rc));
		}
		issue += tp_now_s() - t1;
		/* The device, not s: a D2D cudaMemcpy returns before the
		 * copy ends, on the legacy stream. */
		rc = cudaDeviceSynchronize();
		if (rc != cudaSuccess)
			bench_die("cudaDeviceSynchronize failed: %s",
			          cudaGetErrorName(rc));
	}
	report(dir, name, n, iters, tp_now_s() - t0, issue);
}

/* Block b of layer l sits at (l * BLOCKS + b) * BLOCK; on the far side it
 * lands in block (b * 97) % BLOCKS of the same layer. */
static void layout(struct xfer_cuda_copy *v, uint8_t *dst, const uint8_t *src)
{
	for (uint32_t l = 0; l < LAYERS; l++)
		for (uint32_t b = 0; b < BLOCKS; b++) {
			uint64_t i = (uint64_t)l * BLOCKS + b;
			uint64_t j = (uint64_t)l * BLOCKS + (b * 97u) % BLOCKS;

			v[i] = (struct xfer_cuda_copy){dst + j * BLOCK,
			                               src + i * BLOCK, BLOCK};
		}
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum xfer_cuda_kind kind;
		enum cudaMemcpyKind ck;
	} dirs[] = {
		{"D2H", XFER_CUDA_D2H, cudaMemcpyDeviceToHost},
		{"H2D", XFER_CUDA_H2D, cudaMemcpyHostToDevice},
		{"D2D", XFER_CUDA_D2D, cudaMemcpyDeviceToDevice},
	};
	struct xfer_cuda_copier *cp;
	struct xfer_cuda_copy *v, one;
	struct cudaDeviceProp prop;
	uint8_t *dsrc, *ddst, *host;
	cudaStream_t s;
	cudaError_t rc;
	char err[256];
	int iters = 10, n = 0;

	bench_init("cuda_copy_bench", 2);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c"))
			csv = 1;
		else
			iters = bench_opt_int("iters", argv[i], 1, 100000);
	}
	rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess || n == 0) {
		printf("cuda_copy_bench: skipped: no CUDA device (%s)\n",
		       rc != cudaSuccess ? cudaGetErrorName(rc) : "0 devices");
		return 0;
	}
	if ((rc = cudaSetDevice(0)) ||
	    (rc = cudaGetDeviceProperties(&prop, 0)))
		bench_die("cudaGetDeviceProperties failed: %s",
		          cudaGetErrorName(rc));
	if (xfer_cuda_copier_open(&cp, err, sizeof(err)))
		bench_die("%s", err);
	if ((rc = cudaMalloc((void **)&dsrc, TOTAL)) ||
	    (rc = cudaMalloc((void **)&ddst, TOTAL)) ||
	    (rc = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)))
		bench_die("cudaMalloc failed: %s", cudaGetErrorName(rc));
	if (xfer_cuda_host_alloc(TOTAL, (void **)&host))
		return 1;
	memset(host, 0x3c, TOTAL);
	if ((rc = cudaMemset(dsrc, 0x5a, TOTAL)) ||
	    (rc = cudaDeviceSynchronize()))
		bench_die("cudaMemset failed: %s", cudaGetErrorName(rc));
	v = calloc(NPIECE, sizeof(*v));
	if (!v)
		return 1;

	if (!csv) {
		printf("# %s, %d layers x %d blocks x %d KiB = %llu MiB per "
		       "transfer, pinned host memory\n",
		       prop.name, LAYERS, BLOCKS, BLOCK >> 10,
		       (unsigned long long)(TOTAL >> 20));
		printf("%-4s %-26s %7s %8s %5s %8s %9s %9s\n", "dir", "case",
		       "pieces", "MiB", "iters", "GB/s", "ms/xfer",
		       "issue_us");
	}
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		uint8_t *dst = dirs[d].kind == XFER_CUDA_D2H ? host : ddst;
		const uint8_t *src = dirs[d].kind == XFER_CUDA_H2D ? host
		                                                   : dsrc;

		layout(v, dst, src);
		one = (struct xfer_cuda_copy){dst, src, TOTAL};
		xfer_cuda_copier_use_batch_api(cp, true);
		engine(cp, dirs[d].name, dirs[d].kind,
		       "engine pieces batchapi", v, NPIECE, iters);
		xfer_cuda_copier_use_batch_api(cp, false);
		engine(cp, dirs[d].name, dirs[d].kind, "engine pieces async",
		       v, NPIECE, iters);
		engine(cp, dirs[d].name, dirs[d].kind, "engine one piece",
		       &one, 1, iters);
		plain(dirs[d].name, dirs[d].ck, v, NPIECE,
		      "cudaMemcpyAsync pieces", s, iters);
		plain(dirs[d].name, dirs[d].ck, &one, 1,
		      "cudaMemcpy one piece", s, iters);
	}
	xfer_cuda_copier_close(cp);
	xfer_cuda_host_free(host);
	cudaFree(dsrc);
	cudaFree(ddst);
	cudaStreamDestroy(s);
	free(v);
	return 0;
}
#endif
