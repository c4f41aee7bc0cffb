/*
 * tests/gpu/cuda_ipc_import.c - two processes: an exporter (the engine)
 * allocates, fills and exports; the importer (the sidecar) maps through the
 * import cache and copies D2H, D2D and H2D, checking every byte, waits on an
 * exported event before reading memory a late kernel writes, and sees the
 * cache share and close imports.
 */
#include "tests/tap/tap.h"

#ifndef KVF_HAVE_CUDA
int main(void)
{
	skip_all("no CUDA device: this build has no CUDA support");
}
#else

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "ipc/cuda_ipc.h"
#include "tests/gpu/gpu_util.h"
#include "tests/tap/clock.h"
#include "tests/tap/pattern.h"
#include "xfer/cuda.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define NBUF 4
#define LATE_NS 200000000ull /* the late kernel's delay: 200 ms */

enum op { OP_PROBE, OP_ALLOC, OP_EXPORT, OP_LATE, OP_CHECK, OP_FREE,
	  OP_QUIT };

struct req {
	int op;
	int id;
	uint64_t size, off, len, first;
	uint32_t seed, value;
};

struct rep {
	int rc;
	long long mismatch;
	char msg[512];
	struct ipc_cuda_mem mem;
	struct ipc_cuda_event ev;
};

static int req_fd[2], rep_fd[2];
static pid_t child;

static void xwrite(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		_exit(3);
}

/* ---- the exporter (child): touches CUDA only after the fork ---- */

static void *bufs[NBUF];
static uint64_t sizes[NBUF];

static void serve_one(const struct req *q, struct rep *r)
{
	static cudaStream_t s;
	static cudaEvent_t ev;
	uint8_t *h;

	switch (q->op) {
	case OP_PROBE:
		r->rc = gpu_probe(r->msg, sizeof(r->msg));
		if (r->rc == 0)
			r->rc = cudaSetDevice(0) == cudaSuccess ? 0 : -1;
		break;
	case OP_ALLOC:
		if (cudaMalloc(&bufs[q->id], q->size) != cudaSuccess ||
		    !(h = malloc(q->size))) {
			r->rc = KVF_ENOMEM;
			snprintf(r->msg, sizeof(r->msg), "cudaMalloc failed");
			break;
		}
		sizes[q->id] = q->size;
		tp_pattern_fill(h, q->size, q->seed);
		if (cudaMemcpy(bufs[q->id], h, q->size,
		               cudaMemcpyHostToDevice) != cudaSuccess)
			r->rc = KVF_ECUDA;
		free(h);
		if (!r->rc)
			r->rc = ipc_cuda_export_mem(bufs[q->id], q->size,
			                            &r->mem, r->msg,
			                            sizeof(r->msg));
		break;
	case OP_EXPORT:
		r->rc = ipc_cuda_export_mem((char *)bufs[q->id] + q->off,
		                            q->len, &r->mem, r->msg,
		                            sizeof(r->msg));
		break;
	case OP_LATE:
		/* Write value over the whole buffer after LATE_NS, then
		 * record an interprocess event behind it and hand it out
		 * before the write has happened. */
		if ((!s && cudaStreamCreateWithFlags(
		                   &s, cudaStreamNonBlocking) != cudaSuccess) ||
		    (!ev && cudaEventCreateWithFlags(
		                    &ev, cudaEventInterprocess |
		                                 cudaEventDisableTiming) !=
		                    cudaSuccess)) {
			r->rc = KVF_ECUDA;
			break;
		}
		if (spin_fill(s, bufs[q->id], sizes[q->id] / 4, q->value,
		              LATE_NS) != cudaSuccess ||
		    cudaEventRecord(ev, s) != cudaSuccess) {
			r->rc = KVF_ECUDA;
			snprintf(r->msg, sizeof(r->msg), "launch failed: %s",
			         cudaGetErrorName(cudaGetLastError()));
			break;
		}
		r->rc = ipc_cuda_export_event(ev, &r->ev, r->msg,
		                              sizeof(r->msg));
		break;
	case OP_CHECK:
		h = malloc(q->len);
		if (!h || cudaMemcpy(h, (char *)bufs[q->id] + q->off, q->len,
		                     cudaMemcpyDeviceToHost) != cudaSuccess) {
			r->rc = KVF_ECUDA;
			free(h);
			break;
		}
		r->mismatch = tp_pattern_mismatch_at(h, q->len, q->first,
		                                     q->seed);
		free(h);
		break;
	case OP_FREE:
		r->rc = cudaFree(bufs[q->id]) == cudaSuccess ? 0 : KVF_ECUDA;
		bufs[q->id] = NULL;
		break;
	}
}

static void exporter(void)
{
	struct req q;
	struct rep r;

	close(req_fd[1]);
	close(rep_fd[0]);
	while (read(req_fd[0], &q, sizeof(q)) == (ssize_t)sizeof(q)) {
		if (q.op == OP_QUIT)
			_exit(0);
		memset(&r, 0, sizeof(r));
		serve_one(&q, &r);
		xwrite(rep_fd[1], &r, sizeof(r));
	}
	_exit(0); /* the importer is gone */
}

/* ---- the importer (parent) ---- */

static struct rep call(struct req q)
{
	struct pollfd p = {.fd = rep_fd[0], .events = POLLIN};
	struct rep r;

	xwrite(req_fd[1], &q, sizeof(q));
	/* Bounded: a stuck exporter fails the test, never hangs it. */
	if (poll(&p, 1, 60000) != 1 ||
	    read(rep_fd[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
		kill(child, SIGKILL);
		bail("the exporter did not answer op %d", q.op);
	}
	return r;
}

static int copy_wait(struct xfer_cuda_copier *cp, int dev,
                     enum xfer_cuda_kind kind, struct xfer_cuda_copy *v,
                     uint32_t n, void *ev, uint32_t *pieces)
{
	struct xfer_cuda_batch *b = NULL;
	int rc;

	rc = xfer_cuda_copy_start(cp, dev, kind, v, n, ev, &b);
	if (rc)
		return rc;
	rc = xfer_cuda_batch_wait(b, 10000);
	if (pieces)
		*pieces = xfer_cuda_batch_pieces(b);
	xfer_cuda_batch_free(cp, b);
	return rc;
}

int main(void)
{
	struct xfer_cuda_copy *v;
	struct xfer_cuda *cu = NULL;
	struct xfer_cuda_copier *cp = NULL;
	struct xfer_cuda_import *ia, *ia2, *ib, *ic, *bad;
	struct ipc_cuda_mem ma, ma2, mb, mc, m;
	struct cudaPointerAttributes pa;
	struct xfer_cuda_batch *bt;
	double t0;
	struct rep r;
	char err[512] = "";
	uint8_t *host;
	uint32_t *words, pieces = 0;
	void *event = NULL, *old;
	int rc, dev, status = -1;
	long long bad_word;

	if (pipe(req_fd) || pipe(rep_fd))
		bail("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		bail("fork: %s", strerror(errno));
	if (child == 0)
		exporter();
	close(req_fd[0]);
	close(rep_fd[1]);

	r = call((struct req){.op = OP_PROBE});
	if (r.rc) {
		xwrite(req_fd[1], &(struct req){.op = OP_QUIT},
		       sizeof(struct req));
		waitpid(child, NULL, 0);
		skip_all("no CUDA device: %s", r.msg);
	}
	rc = xfer_cuda_open(&cu, err, sizeof(err));
	if (rc)
		bail("xfer_cuda_open: %s", err);
	rc = xfer_cuda_copier_open(&cp, err, sizeof(err));
	if (rc)
		bail("xfer_cuda_copier_open: %s", err);
	if (xfer_cuda_host_alloc(8 * MiB, (void **)&host))
		bail("xfer_cuda_host_alloc failed");
	v = calloc(4096, sizeof(*v));

	/* A: 8 MiB, pattern 1, imported and read back whole. */
	r = call((struct req){.op = OP_ALLOC, .id = 0, .size = 8 * MiB,
	                      .seed = 1});
	is_int(r.rc, 0, "exporter: allocate and export A (%s)", r.msg);
	ma = r.mem;
	t0 = tp_now_s();
	rc = xfer_cuda_import_hold(cu, &ma, &ia, err, sizeof(err));
	is_int(rc, 0, "import A (%s)", err);
	if (rc)
		bail("cannot go on without the import");
	diag("first import took %.1f ms", (tp_now_s() - t0) * 1e3);
	dev = xfer_cuda_import_device(ia);
	is_int((long long)xfer_cuda_import_len(ia), 8 * MiB,
	       "the mapping is A's 8 MiB");
	memset(host, 0, 8 * MiB);
	v[0] = (struct xfer_cuda_copy){host, xfer_cuda_import_base(ia),
	                               8 * MiB};
	is_int(copy_wait(cp, dev, XFER_CUDA_D2H, v, 1, NULL, NULL), 0,
	       "D2H of A");
	is_int(tp_pattern_mismatch_at(host, 8 * MiB, 0, 1), -1,
	       "every byte of A arrived");

	/* A tensor of the pool at an offset: same handle, same import. */
	r = call((struct req){.op = OP_EXPORT, .id = 0,
	                      .off = 3 * MiB + 4 * KiB, .len = MiB});
	is_int(r.rc, 0, "exporter: export a tensor at 3 MiB + 4 KiB (%s)",
	       r.msg);
	ma2 = r.mem;
	is_int((long long)ma2.offset, 3 * MiB + 4 * KiB, "its offset");
	t0 = tp_now_s();
	rc = xfer_cuda_import_hold(cu, &ma2, &ia2, err, sizeof(err));
	is_int(rc, 0, "import the tensor (%s)", err);
	diag("cached import took %.3f ms", (tp_now_s() - t0) * 1e3);
	ok(ia2 == ia, "the cache returns A's import");
	is_int(xfer_cuda_import_refs(cu, ia), 2, "held twice");
	is_int(xfer_cuda_import_count(cu), 1, "one import in the cache");
	/* 256 pieces of 4 KiB, reversed: nothing to merge. */
	memset(host, 0, MiB);
	for (uint32_t i = 0; i < 256; i++)
		v[i] = (struct xfer_cuda_copy){
			host + (uint64_t)i * 4 * KiB,
			(char *)xfer_cuda_import_base(ia2) + ma2.offset +
				(uint64_t)(255 - i) * 4 * KiB,
			4 * KiB};
	is_int(copy_wait(cp, dev, XFER_CUDA_D2H, v, 256, NULL, &pieces), 0,
	       "D2H of the tensor in 256 reversed pieces");
	is_int(pieces, 256, "issued as 256 pieces");
	bad_word = -1;
	for (uint32_t i = 0; i < 256 && bad_word < 0; i++) {
		long long at = tp_pattern_mismatch_at(
			host + (uint64_t)i * 4 * KiB, 4 * KiB,
			ma2.offset + (uint64_t)(255 - i) * 4 * KiB, 1);
		if (at >= 0)
			bad_word = (long long)i * 4 * KiB + at;
	}
	is_int(bad_word, -1, "every piece holds its bytes");
	for (uint32_t i = 0; i < 256; i++)
		v[i] = (struct xfer_cuda_copy){
			host + (uint64_t)i * 4 * KiB,
			(char *)xfer_cuda_import_base(ia2) + ma2.offset +
				(uint64_t)i * 4 * KiB,
			4 * KiB};
	memset(host, 0, MiB);
	is_int(copy_wait(cp, dev, XFER_CUDA_D2H, v, 256, NULL, &pieces), 0,
	       "D2H of the tensor in 256 adjacent pieces");
	is_int(pieces, 1, "merged into one copy");
	is_int(tp_pattern_mismatch_at(host, MiB, ma2.offset, 1), -1,
	       "bytes right");
	m = ma2;
	m.offset = ma2.alloc_len - 10;
	m.len = 11;
	rc = xfer_cuda_import_hold(cu, &m, &bad, err, sizeof(err));
	is_int(rc, KVF_ERANGE, "a range past the allocation: ERANGE");
	is_int(xfer_cuda_import_refs(cu, ia), 2, "and takes no reference");
	m = ma2;
	memset(m.uuid, 0xee, sizeof(m.uuid));
	rc = xfer_cuda_import_hold(cu, &m, &bad, err, sizeof(err));
	is_int(rc, KVF_ENOENT, "an unknown device UUID: ENOENT");
	err[0] = 0;

	/* The event orders the importer's read after the exporter's late
	 * write. */
	r = call((struct req){.op = OP_ALLOC, .id = 1, .size = 4 * MiB,
	                      .seed = 2});
	is_int(r.rc, 0, "exporter: allocate B (%s)", r.msg);
	mb = r.mem;
	rc = xfer_cuda_import_hold(cu, &mb, &ib, err, sizeof(err));
	is_int(rc, 0, "import B (%s)", err);
	is_int(xfer_cuda_import_count(cu), 2, "two imports in the cache");
	r = call((struct req){.op = OP_LATE, .id = 1, .value = 0xc0ffee11});
	is_int(r.rc, 0, "exporter: a kernel writes B in 200 ms, event "
	                "exported (%s)",
	       r.msg);
	rc = xfer_cuda_event_open(cu, dev, &r.ev, &event, err, sizeof(err));
	is_int(rc, 0, "import the event (%s)", err);
	memset(host, 0, 4 * MiB);
	v[0] = (struct xfer_cuda_copy){host, xfer_cuda_import_base(ib),
	                               4 * MiB};
	rc = xfer_cuda_copy_start(cp, dev, XFER_CUDA_D2H, v, 1, event, &bt);
	is_int(rc, 0, "D2H of B behind the event");
	is_int(xfer_cuda_batch_test(bt), KVF_EAGAIN,
	       "it is still waiting for the kernel");
	is_int(xfer_cuda_batch_wait(bt, 1), KVF_ETIMEDOUT,
	       "a 1 ms wait times out");
	t0 = tp_now_s();
	is_int(xfer_cuda_batch_wait(bt, 10000), 0, "then it completes");
	diag("waited %.1f ms for the late kernel", (tp_now_s() - t0) * 1e3);
	xfer_cuda_batch_free(cp, bt);
	words = (uint32_t *)host;
	bad_word = -1;
	for (uint64_t i = 0; i < 4 * MiB / 4 && bad_word < 0; i++)
		if (words[i] != 0xc0ffee11)
			bad_word = (long long)i;
	is_int(bad_word, -1, "every word holds the kernel's value");
	xfer_cuda_event_close(event);

	/* D2D between two imports, checked by the exporter. */
	r = call((struct req){.op = OP_ALLOC, .id = 2, .size = 4 * MiB,
	                      .seed = 3});
	is_int(r.rc, 0, "exporter: allocate C (%s)", r.msg);
	mc = r.mem;
	rc = xfer_cuda_import_hold(cu, &mc, &ic, err, sizeof(err));
	is_int(rc, 0, "import C (%s)", err);
	for (uint32_t i = 0; i < 64; i++)
		v[i] = (struct xfer_cuda_copy){
			(char *)xfer_cuda_import_base(ic) + 512 * KiB +
				(uint64_t)i * 32 * KiB,
			(char *)xfer_cuda_import_base(ia) + MiB +
				(uint64_t)i * 32 * KiB,
			32 * KiB};
	/* Break adjacency on one side every other piece so merging does
	 * not hide the per-piece path: swap pairs. */
	for (uint32_t i = 0; i + 1 < 64; i += 2) {
		struct xfer_cuda_copy t = v[i];

		v[i] = v[i + 1];
		v[i + 1] = t;
	}
	is_int(copy_wait(cp, dev, XFER_CUDA_D2D, v, 64, NULL, &pieces), 0,
	       "D2D A -> C in 64 pieces");
	is_int(pieces, 64, "issued as 64 pieces");
	r = call((struct req){.op = OP_CHECK, .id = 2, .off = 512 * KiB,
	                      .len = 2 * MiB, .first = MiB, .seed = 1});
	is_int(r.mismatch, -1, "exporter sees A's bytes in C");
	r = call((struct req){.op = OP_CHECK, .id = 2, .off = 0,
	                      .len = 512 * KiB, .first = 0, .seed = 3});
	is_int(r.mismatch, -1, "and C's own bytes before them untouched");
	r = call((struct req){.op = OP_CHECK, .id = 2, .off = 2560 * KiB,
	                      .len = 1536 * KiB, .first = 2560 * KiB,
	                      .seed = 3});
	is_int(r.mismatch, -1, "and after them");

	/* H2D into C's last MiB, checked by the exporter. */
	tp_pattern_fill(host, MiB, 4);
	v[0] = (struct xfer_cuda_copy){
		(char *)xfer_cuda_import_base(ic) + 3 * MiB, host, MiB};
	is_int(copy_wait(cp, dev, XFER_CUDA_H2D, v, 1, NULL, NULL), 0,
	       "H2D into C");
	r = call((struct req){.op = OP_CHECK, .id = 2, .off = 3 * MiB,
	                      .len = MiB, .first = 0, .seed = 4});
	is_int(r.mismatch, -1, "exporter sees the host's bytes in C");

	/* The reference count closes the import. */
	old = xfer_cuda_import_base(ia);
	xfer_cuda_import_rele(cu, ia2);
	is_int(xfer_cuda_import_refs(cu, ia), 1, "one release: one left");
	is_int(xfer_cuda_import_count(cu), 3, "A still cached");
	xfer_cuda_import_rele(cu, ia);
	is_int(xfer_cuda_import_count(cu), 2, "the last release drops A");
	rc = cudaPointerGetAttributes(&pa, old);
	ok(rc == cudaSuccess && pa.type != cudaMemoryTypeDevice,
	   "and unmaps it (type %d)", (int)pa.type);
	(void)cudaGetLastError();
	rc = xfer_cuda_import_hold(cu, &ma, &ia, err, sizeof(err));
	is_int(rc, 0, "A imports again (%s)", err);
	is_int(xfer_cuda_import_refs(cu, ia), 1, "with one reference");
	xfer_cuda_import_rele(cu, ia);

	/* An allocation the exporter freed cannot be imported. */
	r = call((struct req){.op = OP_FREE, .id = 0});
	is_int(r.rc, 0, "exporter frees A");
	rc = xfer_cuda_import_hold(cu, &ma, &bad, err, sizeof(err));
	ok(rc != 0, "importing freed A fails: %d (%s)", rc, err);
	if (!rc)
		xfer_cuda_import_rele(cu, bad);

	xfer_cuda_import_rele(cu, ib);
	xfer_cuda_import_rele(cu, ic);
	is_int(xfer_cuda_import_count(cu), 0, "every import released");
	xfer_cuda_host_free(host);
	xfer_cuda_copier_close(cp);
	xfer_cuda_close(cu);
	free(v);
	xwrite(req_fd[1], &(struct req){.op = OP_QUIT}, sizeof(struct req));
	waitpid(child, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "the exporter exits cleanly (status %d)", status);
	done_testing();
}
#endif
