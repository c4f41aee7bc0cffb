/*
 * xfer/store.c - the KV storage tier's entry points: config parsing, open
 * (directory lock, eventfd, ring, sparse tables, the O_DIRECT probe, the
 * catalogue read from the headers) and close, and progress (poll, wait).
 *
 * The engine behind them is split by job: store_op.c takes a save or load
 * and ends it, store_ring.c turns the ops' steps into SQEs and handles the
 * CQEs, store_fixed.c keeps the ring's registered buffer and file tables,
 * store_catalogue.c the object files, the catalogue and the capacity.
 * store_int.h holds the structures they share. Everything runs on the
 * sidecar's progress thread.
 */
#include "xfer/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/log.h"

#define DEFAULT_QD 64u
#define MAX_QD 4096u
/* How long close waits for the kernel to give back I/O in flight. */
#define CLOSE_WAIT_MS 30000

uint64_t xfer_store_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int xfer_store_errno_code(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return KVF_ENOSPC;
	case ENOMEM:
		return KVF_ENOMEM;
	case ENOENT:
		return KVF_ENOENT;
	case EIO:
		return KVF_EIO;
	default:
		return KVF_EIO;
	}
}

int xfer_store_direct_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcmp(s, "auto"))
		return XFER_STORE_DIRECT_AUTO;
	if (!strcmp(s, "on"))
		return XFER_STORE_DIRECT_ON;
	if (!strcmp(s, "off"))
		return XFER_STORE_DIRECT_OFF;
	return -1;
}

int xfer_store_sync_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcmp(s, "none"))
		return XFER_STORE_SYNC_NONE;
	if (!strcmp(s, "data"))
		return XFER_STORE_SYNC_DATA;
	if (!strcmp(s, "full"))
		return XFER_STORE_SYNC_FULL;
	return -1;
}

/* ---- progress -------------------------------------------------------- */

int xfer_store_poll(struct xfer_store *s, struct xfer_store_done *out,
                    int max)
{
	uint64_t v;
	int n = 0;

	if (!s || !out || max <= 0)
		return 0;
	(void)!read(s->efd, &v, sizeof(v));
	xfer_store_reap(s);
	xfer_store_issue(s);
	while (n < max && s->done_head) {
		struct op *op = s->done_head;
		s->done_head = op->next;
		if (!s->done_head)
			s->done_tail = NULL;
		out[n].ctx = op->ctx;
		out[n].status = op->status;
		out[n].save = op->save;
		out[n].bytes = op->status ? 0 : (uint64_t)op->hdr.nblocks *
		                                        op->hdr.block_len;
		snprintf(out[n].msg, sizeof(out[n].msg), "%s", op->msg);
		s->pending--;
		xfer_store_op_free(op);
		n++;
	}
	/* Completions left for the next call keep the fd readable. */
	if (s->done_head)
		xfer_store_signal_fd(s);
	return n;
}

int xfer_store_fd(const struct xfer_store *s)
{
	return s ? s->efd : -1;
}

uint32_t xfer_store_pending(const struct xfer_store *s)
{
	return s ? s->pending : 0;
}

int xfer_store_wait(struct xfer_store *s, int timeout_ms)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	int ret;

	if (!s || timeout_ms < 0)
		return KVF_EINVAL;
	if (s->done_head || io_uring_cq_ready(&s->ring))
		return 0;
	if (!s->inflight)
		return KVF_ETIMEDOUT;
	ts.tv_sec = timeout_ms / 1000;
	ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
	ret = io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts);
	if (ret == -ETIME)
		return KVF_ETIMEDOUT;
	return 0;
}

bool xfer_store_direct(const struct xfer_store *s)
{
	return s && s->direct;
}

/* ---- open and close -------------------------------------------------- */

static int probe_direct(struct xfer_store *s, enum xfer_store_direct mode,
                        char *err, size_t errlen)
{
	char name[64];
	void *buf;
	int fd, e = 0;
	bool ok = false;

	s->direct = false;
	if (mode == XFER_STORE_DIRECT_OFF)
		return 0;
	snprintf(name, sizeof(name), ".probe.%ld", (long)getpid());
	buf = xfer_store_aligned_buf(XFER_STORE_ALIGN);
	if (!buf) {
		snprintf(err, errlen, "store %s: out of memory", s->dir);
		return KVF_ENOMEM;
	}
	memset(buf, 0, XFER_STORE_ALIGN);
	fd = openat(s->dirfd, name, O_CREAT | O_RDWR | O_TRUNC | O_DIRECT |
	            O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
	} else {
		/* Some filesystems take the flag and fail the I/O. */
		if (pwrite(fd, buf, XFER_STORE_ALIGN, 0) == XFER_STORE_ALIGN &&
		    pread(fd, buf, XFER_STORE_ALIGN, 0) == XFER_STORE_ALIGN)
			ok = true;
		else
			e = errno ? errno : EIO;
		close(fd);
		unlinkat(s->dirfd, name, 0);
	}
	free(buf);
	if (ok) {
		s->direct = true;
		sc_info("store %s: O_DIRECT in use for blocks aligned to %u "
		        "bytes", s->dir, XFER_STORE_ALIGN);
		return 0;
	}
	if (mode == XFER_STORE_DIRECT_ON) {
		snprintf(err, errlen, "store %s: O_DIRECT asked for, but the "
		         "filesystem refuses it: %s", s->dir, strerror(e));
		return KVF_ENOTSUP;
	}
	sc_warn("store %s: the filesystem refuses O_DIRECT (%s): using the "
	        "page cache", s->dir, strerror(e));
	return 0;
}

int xfer_store_open(const struct xfer_store_config *cfg,
                    struct xfer_store **out, char *err, size_t errlen)
{
	struct xfer_store *s;
	int ret;

	if (!cfg || !out || !cfg->dir || !*cfg->dir) {
		snprintf(err, errlen, "store: no directory given");
		return KVF_EINVAL;
	}
	if (cfg->queue_depth > MAX_QD ||
	    (unsigned)cfg->direct > XFER_STORE_DIRECT_OFF ||
	    (unsigned)cfg->sync > XFER_STORE_SYNC_FULL) {
		snprintf(err, errlen, "store %s: bad config (queue depth %"
		         PRIu32 ", at most %u; direct %d; sync %d)", cfg->dir,
		         cfg->queue_depth, MAX_QD, (int)cfg->direct,
		         (int)cfg->sync);
		return KVF_ECONFIG;
	}
	if (strlen(cfg->dir) >= PATH_MAX) {
		snprintf(err, errlen, "store: directory path too long");
		return KVF_ECONFIG;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "store %s: out of memory", cfg->dir);
		return KVF_ENOMEM;
	}
	s->dirfd = s->lockfd = s->efd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", cfg->dir);
	s->qd = cfg->queue_depth ? cfg->queue_depth : DEFAULT_QD;
	s->capacity = cfg->capacity;
	s->sync = cfg->sync;

	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		ret = errno == ENOENT ? KVF_ENOENT :
		      errno == ENOTDIR ? KVF_ECONFIG : KVF_ESYSTEM;
		snprintf(err, errlen, "store %s: open() of the directory "
		         "failed: %s", s->dir, strerror(errno));
		goto fail;
	}
	s->lockfd = openat(s->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC,
	                   0644);
	if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		ret = errno == EWOULDBLOCK ? KVF_EBUSY : KVF_ESYSTEM;
		snprintf(err, errlen, "store %s: lock of %s/.lock failed: %s",
		         s->dir, s->dir, ret == KVF_EBUSY ?
		         "another store uses this directory" :
		         strerror(errno));
		goto fail;
	}
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		ret = KVF_ESYSTEM;
		snprintf(err, errlen, "store %s: eventfd() failed: %s", s->dir,
		         strerror(errno));
		goto fail;
	}
	ret = io_uring_queue_init(s->qd, &s->ring, 0);
	if (ret < 0) {
		snprintf(err, errlen, "store %s: io_uring_queue_init(%" PRIu32
		         ") failed: %s", s->dir, s->qd, strerror(-ret));
		ret = (ret == -ENOSYS || ret == -EPERM) ? KVF_ENOTSUP :
		      ret == -ENOMEM ? KVF_ENOMEM : KVF_ESYSTEM;
		goto fail;
	}
	s->ring_ok = true;
	ret = io_uring_register_eventfd(&s->ring, s->efd);
	if (ret < 0) {
		snprintf(err, errlen, "store %s: io_uring_register_eventfd() "
		         "failed: %s", s->dir, strerror(-ret));
		ret = KVF_ESYSTEM;
		goto fail;
	}
	s->buf_table = io_uring_register_buffers_sparse(&s->ring, MAX_BUFS) ==
	               0;
	s->file_table = io_uring_register_files_sparse(&s->ring, MAX_FILES) ==
	                0;
	if (!s->buf_table || !s->file_table)
		sc_info("store %s: sparse %s table unavailable: plain I/O",
		        s->dir, !s->buf_table ? "buffer" : "file");
	s->slots = calloc(s->qd, sizeof(*s->slots));
	s->ix = xfer_store_index_alloc();
	if (!s->slots || !s->ix) {
		snprintf(err, errlen, "store %s: out of memory", s->dir);
		ret = KVF_ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < s->qd; i++)
		xfer_store_slot_put(s, &s->slots[i]);
	ret = probe_direct(s, cfg->direct, err, errlen);
	if (ret)
		goto fail;
	ret = xfer_store_scan(s, err, errlen);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	xfer_store_close(s);
	return ret;
}

void xfer_store_close(struct xfer_store *s)
{
	if (!s)
		return;
	if (s->ring_ok) {
		struct op *op, *next;
		int waited = 0;

		for (op = s->act_head; op; op = next) {
			next = op->next;
			xfer_store_op_fail(op, KVF_ECANCELED,
			                   "%s '%s': store closed",
			                   op->save ? "save" : "load",
			                   op->hdr.name);
			if (!op->inflight)
				xfer_store_op_end(s, op);
		}
		xfer_store_submit(s);
		while (s->inflight && waited < CLOSE_WAIT_MS) {
			struct io_uring_cqe *cqe;
			struct __kernel_timespec ts = { 0, 100000000L };
			xfer_store_reap(s);
			if (!s->inflight)
				break;
			if (io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts) ==
			    -ETIME)
				waited += 100;
		}
		if (s->inflight)
			sc_error("store %s: close: %" PRIu32 " I/Os still in "
			         "flight after %d ms", s->dir, s->inflight,
			         CLOSE_WAIT_MS);
		/* Tears down the ring; the kernel cancels what is left. */
		io_uring_queue_exit(&s->ring);
		for (op = s->act_head; op; op = next) {
			next = op->next;
			xfer_store_op_free(op);
		}
		for (op = s->done_head; op; op = next) {
			next = op->next;
			xfer_store_op_free(op);
		}
	}
	xfer_store_index_free(s->ix);
	free(s->slots);
	if (s->efd >= 0)
		close(s->efd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s);
}
