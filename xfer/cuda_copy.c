/*
 * xfer/cuda_copy.c - the CUDA copy engine: batches of pieces issued
 * asynchronously on one stream per device and kind, completion observed by
 * polling an event.
 *
 * A KV transfer is thousands of block-sized pieces (one per layer and
 * block). Issuing them costs CPU time per call, so adjacent pieces (source
 * and destination both continuing the previous piece) are merged first, and
 * what remains goes to cudaMemcpyBatchAsync, one call per 1024 pieces, when
 * the runtime has it; otherwise, or once the driver refused it, one
 * cudaMemcpyAsync per piece. Each kind has its own non-blocking stream per
 * device so that D2H staging of one transfer overlaps H2D of another and
 * none waits on the legacy default stream.
 *
 * A batch ends with an event recorded on its stream; the progress loop
 * polls it with cudaEventQuery, which never blocks. Events are kept on a
 * free list per device (an event belongs to the device it was made on) so
 * the data path allocates nothing once warm.
 */
#include "xfer/cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "sidecar/log.h"

#ifndef KVF_HAVE_CUDA

int xfer_cuda_copier_open(struct xfer_cuda_copier **out, char *err,
                          size_t errlen)
{
	(void)out;
	if (err && errlen)
		snprintf(err, errlen,
		         "open the CUDA copy engine: this build of kvferry has "
		         "no CUDA support (rebuild with the CUDA toolkit in "
		         "CUDA_HOME)");
	return KVF_ENOTSUP;
}

void xfer_cuda_copier_close(struct xfer_cuda_copier *cp)
{
	(void)cp;
}

void xfer_cuda_copier_use_batch_api(struct xfer_cuda_copier *cp, bool on)
{
	(void)cp;
	(void)on;
}

int xfer_cuda_copy_start(struct xfer_cuda_copier *cp, int dev,
                         enum xfer_cuda_kind kind,
                         const struct xfer_cuda_copy *v, uint32_t n,
                         void *wait_event, struct xfer_cuda_batch **out)
{
	(void)cp;
	(void)dev;
	(void)kind;
	(void)v;
	(void)n;
	(void)wait_event;
	(void)out;
	return KVF_ENOTSUP;
}

int xfer_cuda_batch_test(struct xfer_cuda_batch *b)
{
	(void)b;
	return KVF_ENOTSUP;
}

int xfer_cuda_batch_wait(struct xfer_cuda_batch *b, int timeout_ms)
{
	(void)b;
	(void)timeout_ms;
	return KVF_ENOTSUP;
}

uint32_t xfer_cuda_batch_pieces(const struct xfer_cuda_batch *b)
{
	(void)b;
	return 0;
}

uint64_t xfer_cuda_batch_bytes(const struct xfer_cuda_batch *b)
{
	(void)b;
	return 0;
}

void xfer_cuda_batch_free(struct xfer_cuda_copier *cp,
                          struct xfer_cuda_batch *b)
{
	(void)cp;
	(void)b;
}

#else

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <time.h>

/* Pieces per cudaMemcpyBatchAsync call: bounds the driver's work per call
 * and our scratch arrays' growth is independent of it. */
#define BATCH_CHUNK 1024
#define CLOSE_WAIT_MS 10000

struct xfer_cuda_batch {
	struct xfer_cuda_batch *next; /* on the free list */
	cudaEvent_t done;
	int dev;
	int state; /* KVF_EAGAIN while running, then 0 or KVF_ECUDA */
	uint32_t pieces;
	uint64_t bytes;
};

struct xfer_cuda_copier {
	int ndev;
	pthread_mutex_t lock; /* guards everything below */
	cudaStream_t *streams; /* [dev * XFER_CUDA_KINDS + kind], lazy */
	struct xfer_cuda_batch **free; /* per device */
	bool use_batch;
	uint32_t live; /* batches handed out and not freed */
	/* Scratch for merging and for cudaMemcpyBatchAsync. */
	void **dsts;
	const void **srcs;
	size_t *sizes;
	uint32_t cap;
};

static const char *const kind_names[XFER_CUDA_KINDS] = {
	[XFER_CUDA_D2H] = "D2H",
	[XFER_CUDA_H2D] = "H2D",
	[XFER_CUDA_D2D] = "D2D",
	[XFER_CUDA_PEER] = "peer",
};

static const enum cudaMemcpyKind cuda_kinds[XFER_CUDA_KINDS] = {
	[XFER_CUDA_D2H] = cudaMemcpyDeviceToHost,
	[XFER_CUDA_H2D] = cudaMemcpyHostToDevice,
	[XFER_CUDA_D2D] = cudaMemcpyDeviceToDevice,
	/* Unified addressing finds both devices from the pointers. */
	[XFER_CUDA_PEER] = cudaMemcpyDefault,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(long ns)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};

	nanosleep(&ts, NULL);
}

static int log_cuda(const char *what, int dev, const char *callee,
                    cudaError_t rc)
{
	(void)cudaGetLastError();
	sc_error("%s on device %d: %s() failed: %s (%s)", what, dev, callee,
	         cudaGetErrorString(rc), cudaGetErrorName(rc));
	return KVF_ECUDA;
}

int xfer_cuda_copier_open(struct xfer_cuda_copier **out, char *err,
                          size_t errlen)
{
	struct xfer_cuda_copier *cp;
	cudaError_t rc;
	int n = 0;

	rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess || n <= 0) {
		(void)cudaGetLastError();
		if (err && errlen)
			snprintf(err, errlen,
			         "open the CUDA copy engine: no usable CUDA "
			         "device: %s",
			         rc != cudaSuccess ? cudaGetErrorString(rc)
			                           : "cudaGetDeviceCount() "
			                             "says 0");
		return KVF_ENOTSUP;
	}
	cp = calloc(1, sizeof(*cp));
	if (cp) {
		cp->streams = calloc((size_t)n * XFER_CUDA_KINDS,
		                     sizeof(*cp->streams));
		cp->free = calloc((size_t)n, sizeof(*cp->free));
	}
	if (!cp || !cp->streams || !cp->free) {
		if (cp) {
			free(cp->streams);
			free(cp->free);
		}
		free(cp);
		if (err && errlen)
			snprintf(err, errlen,
			         "open the CUDA copy engine: out of memory");
		return KVF_ENOMEM;
	}
	cp->ndev = n;
	cp->use_batch = true;
	pthread_mutex_init(&cp->lock, NULL);
	*out = cp;
	return 0;
}

void xfer_cuda_copier_close(struct xfer_cuda_copier *cp)
{
	struct xfer_cuda_batch *b, *next;
	uint64_t deadline;

	if (!cp)
		return;
	if (cp->live)
		sc_warn("close the CUDA copy engine: %u batches not freed",
		        cp->live);
	deadline = now_ns() + (uint64_t)CLOSE_WAIT_MS * 1000000u;
	for (int i = 0; i < cp->ndev * XFER_CUDA_KINDS; i++) {
		cudaStream_t s = cp->streams[i];

		if (!s)
			continue;
		(void)cudaSetDevice(i / XFER_CUDA_KINDS);
		/* Bounded: a copy stuck behind an engine event that never
		 * fires must not hang the daemon's exit. */
		while (cudaStreamQuery(s) == cudaErrorNotReady &&
		       now_ns() < deadline)
			sleep_ns(1000000);
		if (cudaStreamQuery(s) == cudaErrorNotReady)
			sc_warn("close the CUDA copy engine: %s stream of "
			        "device %d still busy after %d ms",
			        kind_names[i % XFER_CUDA_KINDS],
			        i / XFER_CUDA_KINDS, CLOSE_WAIT_MS);
		(void)cudaStreamDestroy(s);
	}
	for (int d = 0; d < cp->ndev; d++) {
		for (b = cp->free[d]; b; b = next) {
			next = b->next;
			(void)cudaEventDestroy(b->done);
			free(b);
		}
	}
	(void)cudaGetLastError();
	pthread_mutex_destroy(&cp->lock);
	free(cp->dsts);
	free(cp->srcs);
	free(cp->sizes);
	free(cp->streams);
	free(cp->free);
	free(cp);
}

void xfer_cuda_copier_use_batch_api(struct xfer_cuda_copier *cp, bool on)
{
	pthread_mutex_lock(&cp->lock);
	cp->use_batch = on;
	pthread_mutex_unlock(&cp->lock);
}

static int grow(struct xfer_cuda_copier *cp, uint32_t n)
{
	void **d;
	const void **s;
	size_t *z;

	if (n <= cp->cap)
		return 0;
	d = realloc(cp->dsts, n * sizeof(*d));
	if (d)
		cp->dsts = d;
	s = realloc(cp->srcs, n * sizeof(*s));
	if (s)
		cp->srcs = s;
	z = realloc(cp->sizes, n * sizeof(*z));
	if (z)
		cp->sizes = z;
	if (!d || !s || !z)
		return KVF_ENOMEM;
	cp->cap = n;
	return 0;
}

/* Merge pieces that continue the previous one on both sides, drop empty
 * ones; the result lands in the scratch arrays. */
static uint32_t merge(struct xfer_cuda_copier *cp,
                      const struct xfer_cuda_copy *v, uint32_t n,
                      uint64_t *bytes)
{
	uint32_t k = 0;

	*bytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (!v[i].len)
			continue;
		*bytes += v[i].len;
		if (k && (char *)cp->dsts[k - 1] + cp->sizes[k - 1] ==
		             (char *)v[i].dst &&
		    (const char *)cp->srcs[k - 1] + cp->sizes[k - 1] ==
		            (const char *)v[i].src) {
			cp->sizes[k - 1] += v[i].len;
			continue;
		}
		cp->dsts[k] = v[i].dst;
		cp->srcs[k] = v[i].src;
		cp->sizes[k] = v[i].len;
		k++;
	}
	return k;
}

static int issue(struct xfer_cuda_copier *cp, int dev,
                 enum xfer_cuda_kind kind, uint32_t k, cudaStream_t s)
{
	struct cudaMemcpyAttributes attr;
	size_t idx0 = 0;
	cudaError_t rc;
	uint32_t i = 0;

	if (cp->use_batch && k > 1) {
		memset(&attr, 0, sizeof(attr));
		attr.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
		for (; i < k; i += BATCH_CHUNK) {
			uint32_t c = k - i < BATCH_CHUNK ? k - i : BATCH_CHUNK;

			rc = cudaMemcpyBatchAsync(cp->dsts + i, cp->srcs + i,
			                          cp->sizes + i, c, &attr,
			                          &idx0, 1, s);
			if (rc == cudaSuccess)
				continue;
			if (i == 0 && (rc == cudaErrorNotSupported ||
			               rc == cudaErrorCallRequiresNewerDriver)) {
				(void)cudaGetLastError();
				sc_warn("CUDA copy engine: "
				        "cudaMemcpyBatchAsync() failed: %s "
				        "(%s); one cudaMemcpyAsync per piece "
				        "from now on",
				        cudaGetErrorString(rc),
				        cudaGetErrorName(rc));
				cp->use_batch = false;
				break;
			}
			return log_cuda(kind_names[kind], dev,
			                "cudaMemcpyBatchAsync", rc);
		}
		if (i >= k)
			return 0;
	}
	for (; i < k; i++) {
		rc = cudaMemcpyAsync(cp->dsts[i], cp->srcs[i], cp->sizes[i],
		                     cuda_kinds[kind], s);
		if (rc != cudaSuccess) {
			sc_error("CUDA %s copy %u of %u: %p <- %p, %zu bytes",
			         kind_names[kind], i, k, cp->dsts[i],
			         cp->srcs[i], cp->sizes[i]);
			return log_cuda(kind_names[kind], dev,
			                "cudaMemcpyAsync", rc);
		}
	}
	return 0;
}

static int get_batch(struct xfer_cuda_copier *cp, int dev,
                     struct xfer_cuda_batch **out)
{
	struct xfer_cuda_batch *b = cp->free[dev];
	cudaError_t rc;

	if (b) {
		cp->free[dev] = b->next;
	} else {
		b = calloc(1, sizeof(*b));
		if (!b)
			return KVF_ENOMEM;
		rc = cudaEventCreateWithFlags(&b->done,
		                              cudaEventDisableTiming);
		if (rc != cudaSuccess) {
			free(b);
			return log_cuda("CUDA copy engine", dev,
			                "cudaEventCreateWithFlags", rc);
		}
	}
	b->next = NULL;
	b->dev = dev;
	*out = b;
	return 0;
}

static int start_locked(struct xfer_cuda_copier *cp, int dev,
                        enum xfer_cuda_kind kind,
                        const struct xfer_cuda_copy *v, uint32_t n,
                        void *wait_event, struct xfer_cuda_batch **out)
{
	cudaStream_t *s = &cp->streams[dev * XFER_CUDA_KINDS + kind];
	struct xfer_cuda_batch *b;
	uint64_t bytes;
	cudaError_t rc;
	uint32_t k;
	int ret;

	rc = cudaSetDevice(dev);
	if (rc != cudaSuccess)
		return log_cuda(kind_names[kind], dev, "cudaSetDevice", rc);
	if (!*s) {
		rc = cudaStreamCreateWithFlags(s, cudaStreamNonBlocking);
		if (rc != cudaSuccess) {
			*s = NULL;
			return log_cuda(kind_names[kind], dev,
			                "cudaStreamCreateWithFlags", rc);
		}
	}
	if (grow(cp, n)) {
		sc_error("CUDA %s copy of %u pieces: out of memory",
		         kind_names[kind], n);
		return KVF_ENOMEM;
	}
	ret = get_batch(cp, dev, &b);
	if (ret)
		return ret;
	if (wait_event) {
		rc = cudaStreamWaitEvent(*s, (cudaEvent_t)wait_event, 0);
		if (rc != cudaSuccess) {
			ret = log_cuda(kind_names[kind], dev,
			               "cudaStreamWaitEvent", rc);
			goto fail;
		}
	}
	k = merge(cp, v, n, &bytes);
	ret = issue(cp, dev, kind, k, *s);
	if (ret)
		goto fail;
	rc = cudaEventRecord(b->done, *s);
	if (rc != cudaSuccess) {
		ret = log_cuda(kind_names[kind], dev, "cudaEventRecord", rc);
		goto fail;
	}
	b->state = KVF_EAGAIN;
	b->pieces = k;
	b->bytes = bytes;
	cp->live++;
	*out = b;
	return 0;
fail:
	b->next = cp->free[dev];
	cp->free[dev] = b;
	return ret;
}

int xfer_cuda_copy_start(struct xfer_cuda_copier *cp, int dev,
                         enum xfer_cuda_kind kind,
                         const struct xfer_cuda_copy *v, uint32_t n,
                         void *wait_event, struct xfer_cuda_batch **out)
{
	int ret;

	if (dev < 0 || dev >= cp->ndev || (unsigned)kind >= XFER_CUDA_KINDS ||
	    !n || !v || !out) {
		sc_error("CUDA copy: bad arguments (device %d of %d, kind %d, "
		         "%u pieces)",
		         dev, cp->ndev, (int)kind, n);
		return KVF_EINVAL;
	}
	pthread_mutex_lock(&cp->lock);
	ret = start_locked(cp, dev, kind, v, n, wait_event, out);
	pthread_mutex_unlock(&cp->lock);
	return ret;
}

int xfer_cuda_batch_test(struct xfer_cuda_batch *b)
{
	cudaError_t rc;

	if (b->state != KVF_EAGAIN)
		return b->state;
	rc = cudaEventQuery(b->done);
	if (rc == cudaSuccess)
		b->state = 0;
	else if (rc == cudaErrorNotReady)
		(void)cudaGetLastError();
	else
		b->state = log_cuda("CUDA copy batch", b->dev,
		                    "cudaEventQuery", rc);
	return b->state;
}

int xfer_cuda_batch_wait(struct xfer_cuda_batch *b, int timeout_ms)
{
	uint64_t start = now_ns(), deadline;
	long nap = 20000;
	int ret;

	deadline = start + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) *
	                           1000000u;
	for (;;) {
		ret = xfer_cuda_batch_test(b);
		if (ret != KVF_EAGAIN)
			return ret;
		if (now_ns() >= deadline)
			return KVF_ETIMEDOUT;
		/* Spin for the first 50 us (a small copy ends about then),
		 * then sleep, doubling up to 1 ms. */
		if (now_ns() - start < 50000)
			continue;
		sleep_ns(nap);
		if (nap < 1000000)
			nap *= 2;
	}
}

uint32_t xfer_cuda_batch_pieces(const struct xfer_cuda_batch *b)
{
	return b->pieces;
}

uint64_t xfer_cuda_batch_bytes(const struct xfer_cuda_batch *b)
{
	return b->bytes;
}

void xfer_cuda_batch_free(struct xfer_cuda_copier *cp,
                          struct xfer_cuda_batch *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&cp->lock);
	cp->live--;
	if (b->state == KVF_ECUDA) {
		/* An event that saw an error is not worth reusing. */
		(void)cudaEventDestroy(b->done);
		(void)cudaGetLastError();
		free(b);
	} else {
		b->next = cp->free[b->dev];
		cp->free[b->dev] = b;
	}
	pthread_mutex_unlock(&cp->lock);
}

#endif
