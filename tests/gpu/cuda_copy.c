/*
 * tests/gpu/cuda_copy.c - the xfer/cuda copy engine in one process: H2D, D2D,
 * D2H of scattered pieces with and without cudaMemcpyBatchAsync, into
 * registered (cudaHostRegister) memory, peer copies when there are two
 * devices, bad arguments, and a bounded wait that times out.
 */
#include "tests/tap/tap.h"

#ifndef KVF_HAVE_CUDA
int main(void)
{
	skip_all("no CUDA device: this build has no CUDA support");
}
#else

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "client/kvferry.h"
#include "tests/gpu/gpu_util.h"
#include "tests/tap/pattern.h"
#include "xfer/cuda.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define NP 512    /* pieces */
#define PIECE (8 * KiB)

/* Piece i goes to slot perm(i): a fixed odd multiplier scatters them. */
static uint32_t perm(uint32_t i)
{
	return (i * 197u) % NP;
}

static int run(struct xfer_cuda_copier *cp, int dev, enum xfer_cuda_kind k,
               struct xfer_cuda_copy *v, uint32_t n)
{
	struct xfer_cuda_batch *b = NULL;
	int rc = xfer_cuda_copy_start(cp, dev, k, v, n, NULL, &b);

	if (rc)
		return rc;
	rc = xfer_cuda_batch_wait(b, 10000);
	xfer_cuda_batch_free(cp, b);
	return rc;
}

/* host(src, pattern) -H2D-> d1 (scattered) -D2D-> d2 (scattered back)
 * -D2H-> reg (registered host memory); reg must equal the pattern. */
static void round_trip(struct xfer_cuda_copier *cp, uint8_t *src,
                       uint8_t *reg, uint8_t *d1, uint8_t *d2, bool batch,
                       uint32_t seed)
{
	struct xfer_cuda_copy v[NP];
	const char *mode = batch ? "batch API" : "one call per piece";

	xfer_cuda_copier_use_batch_api(cp, batch);
	tp_pattern_fill(src, NP * PIECE, seed);
	memset(reg, 0, NP * PIECE);
	for (uint32_t i = 0; i < NP; i++)
		v[i] = (struct xfer_cuda_copy){d1 + perm(i) * PIECE,
		                               src + i * PIECE, PIECE};
	is_int(run(cp, 0, XFER_CUDA_H2D, v, NP), 0, "%s: H2D scattered",
	       mode);
	for (uint32_t i = 0; i < NP; i++)
		v[i] = (struct xfer_cuda_copy){d2 + i * PIECE,
		                               d1 + perm(i) * PIECE, PIECE};
	is_int(run(cp, 0, XFER_CUDA_D2D, v, NP), 0, "%s: D2D gathered",
	       mode);
	for (uint32_t i = 0; i < NP; i++)
		v[i] = (struct xfer_cuda_copy){reg + perm(i) * PIECE,
		                               d2 + perm(i) * PIECE, PIECE};
	is_int(run(cp, 0, XFER_CUDA_D2H, v, NP), 0, "%s: D2H scattered",
	       mode);
	is_int(tp_pattern_mismatch_at(reg, NP * PIECE, 0, seed), -1,
	       "%s: every byte made the round trip", mode);
}

int main(void)
{
	struct xfer_cuda_copier *cp = NULL;
	struct xfer_cuda_batch *b = NULL;
	struct xfer_cuda_copy v[2];
	cudaStream_t s;
	cudaEvent_t ev;
	char why[256], err[256];
	uint8_t *src, *reg, *d1, *d2;
	int ndev = 0, rc;

	if (gpu_probe(why, sizeof(why)))
		skip_all("no CUDA device: %s", why);
	CK(cudaGetDeviceCount(&ndev));
	rc = xfer_cuda_copier_open(&cp, err, sizeof(err));
	is_int(rc, 0, "copier opens (%s)", err);
	if (rc)
		bail("no copier");
	CK(cudaSetDevice(0));
	CK(cudaMalloc((void **)&d1, NP * PIECE));
	CK(cudaMalloc((void **)&d2, NP * PIECE));
	is_int(xfer_cuda_host_alloc(NP * PIECE, (void **)&src), 0,
	       "pinned host buffer");
	/* Memory the sidecar did not allocate, as a shared-memory slot. */
	reg = mmap(NULL, NP * PIECE, PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reg == MAP_FAILED)
		bail("mmap failed");
	is_int(xfer_cuda_host_register(reg, NP * PIECE), 0,
	       "register an mmap'd slot with CUDA");
	is_int(xfer_cuda_host_register(reg, NP * PIECE), KVF_EEXIST,
	       "registering it twice: EEXIST");

	round_trip(cp, src, reg, d1, d2, true, 11);
	round_trip(cp, src, reg, d1, d2, false, 12);

	is_int(xfer_cuda_copy_start(cp, 0, XFER_CUDA_D2H, v, 0, NULL, &b),
	       KVF_EINVAL, "no pieces: EINVAL");
	is_int(xfer_cuda_copy_start(cp, ndev, XFER_CUDA_D2H, v, 1, NULL, &b),
	       KVF_EINVAL, "a device out of range: EINVAL");
	is_int(xfer_cuda_copy_start(cp, 0, XFER_CUDA_KINDS, v, 1, NULL, &b),
	       KVF_EINVAL, "a bad kind: EINVAL");

	/* A copy behind an event that fires 300 ms later: the bounded wait
	 * must time out, not hang, and the copy finish afterwards. */
	CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
	CK(spin_fill(s, d1, NP * PIECE / 4, 0x01020304u, 300000000ull));
	CK(cudaEventRecord(ev, s));
	v[0] = (struct xfer_cuda_copy){reg, d1, NP * PIECE};
	is_int(xfer_cuda_copy_start(cp, 0, XFER_CUDA_D2H, v, 1, ev, &b), 0,
	       "D2H behind a 300 ms kernel");
	is_int(xfer_cuda_batch_test(b), KVF_EAGAIN, "polling: still running");
	is_int(xfer_cuda_batch_wait(b, 20), KVF_ETIMEDOUT,
	       "a 20 ms wait times out");
	is_int(xfer_cuda_batch_wait(b, 10000), 0, "a long wait completes");
	is_int((long long)xfer_cuda_batch_bytes(b), NP * PIECE,
	       "the batch counts its bytes");
	ok(((uint32_t *)reg)[0] == 0x01020304u &&
	           ((uint32_t *)reg)[NP * PIECE / 4 - 1] == 0x01020304u,
	   "and read what the kernel wrote");
	xfer_cuda_batch_free(cp, b);
	CK(cudaEventDestroy(ev));
	CK(cudaStreamDestroy(s));

	if (ndev >= 2) {
		uint8_t *p1;

		CK(cudaSetDevice(1));
		CK(cudaMalloc((void **)&p1, NP * PIECE));
		tp_pattern_fill(src, NP * PIECE, 13);
		v[0] = (struct xfer_cuda_copy){d2, src, NP * PIECE};
		is_int(run(cp, 0, XFER_CUDA_H2D, v, 1), 0, "H2D on device 0");
		v[0] = (struct xfer_cuda_copy){p1, d2, NP * PIECE / 2};
		v[1] = (struct xfer_cuda_copy){p1 + NP * PIECE / 2,
		                               d2 + NP * PIECE / 2,
		                               NP * PIECE / 2};
		is_int(run(cp, 0, XFER_CUDA_PEER, v, 2), 0,
		       "peer copy device 0 -> 1");
		v[0] = (struct xfer_cuda_copy){reg, p1, NP * PIECE};
		is_int(run(cp, 1, XFER_CUDA_D2H, v, 1), 0, "D2H on device 1");
		is_int(tp_pattern_mismatch_at(reg, NP * PIECE, 0, 13), -1,
		       "device 1 holds device 0's bytes");
		CK(cudaFree(p1));
	} else {
		skip(4, "peer copies need two devices, this machine has %d",
		     ndev);
	}

	is_int(xfer_cuda_host_unregister(reg), 0, "unregister the slot");
	munmap(reg, NP * PIECE);
	xfer_cuda_host_free(src);
	CK(cudaSetDevice(0));
	CK(cudaFree(d1));
	CK(cudaFree(d2));
	xfer_cuda_copier_close(cp);
	done_testing();
}
#endif
