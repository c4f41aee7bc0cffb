/*
 * xfer/store.c - the KV storage tier's engine: saves and loads of block
 * lists as files, driven through one io_uring by the sidecar's progress
 * thread.
 *
 * store_ring.c issues the I/O and handles the completions.
 *
 * A save writes into a temporary file ".tmp.<pid>.<seq>", preallocated
 * with fallocate so a full disk shows before any data moves. Each block's
 * CRC is computed just before its write is queued, overlapping the CPU
 * work with the writes in flight; the header, which holds the CRCs, goes
 * last, then fdatasync/fsync per policy, then rename into place (then the
 * directory fsync for the full policy). Until the rename nothing carries
 * the object's name, and a file without its header has no magic, so a
 * crash never leaves a file that loads as valid; open removes the
 * temporaries.
 *
 * A load reads the header and the blocks at once and verifies each block
 * as it lands once the header is in (blocks that beat the header wait for
 * it). Aligned blocks move with O_DIRECT when the filesystem takes it;
 * an object with an unaligned block (address or length not a multiple of
 * 4096) opens its file without O_DIRECT instead of copying through a
 * bounce buffer: the page cache does that copy already. Blocks in
 * registered memory use READ_FIXED/WRITE_FIXED; objects of several blocks
 * get their descriptor in the ring's sparse file table.
 */
#include "xfer/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/log.h"
#include "xfer/store_crc.h"
#include "xfer/store_index.h"

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

/* ---- op lists and ending ------------------------------------------- */

static void act_push(struct xfer_store *s, struct op *op)
{
	op->next = NULL;
	op->prev = s->act_tail;
	if (s->act_tail)
		s->act_tail->next = op;
	else
		s->act_head = op;
	s->act_tail = op;
	op->active = true;
}

static void act_unlink(struct xfer_store *s, struct op *op)
{
	if (!op->active)
		return;
	if (op->prev)
		op->prev->next = op->next;
	else
		s->act_head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		s->act_tail = op->prev;
	op->prev = op->next = NULL;
	op->active = false;
}

static void xfer_store_op_free(struct op *op)
{
	free(op->blocks);
	free(op->hbuf);
	free(op->crcs);
	free(op->landed);
	free(op);
}

static void xfer_store_signal_fd(struct xfer_store *s)
{
	uint64_t one = 1;
	(void)!write(s->efd, &one, sizeof(one));
}

/* Record the first failure of op; later ones are consequences. */
void xfer_store_op_fail(struct op *op, int code, const char *fmt, ...)
{
	va_list ap;

	if (op->status)
		return;
	op->status = code;
	va_start(ap, fmt);
	vsnprintf(op->msg, sizeof(op->msg), fmt, ap);
	va_end(ap);
}

void xfer_store_op_end(struct xfer_store *s, struct op *op)
{
	if (op->save && op->status == 0 && op->renamed)
		xfer_store_save_commit(s, op);
	xfer_store_file_slot_put(s, op);
	if (op->save) {
		if (op->status && op->created && !op->renamed)
			unlinkat(s->dirfd, op->tmp, 0);
		if (op->status && op->renamed) {
			char fn[XFER_STORE_NAME_MAX + 8];
			xfer_store_file_name(op->hdr.name, fn, sizeof(fn));
			unlinkat(s->dirfd, fn, 0);
		}
		s->reserved -= op->reserved;
		op->reserved = 0;
	} else if (op->entry) {
		if (op->status == 0) {
			xfer_store_index_touch(s->ix, op->entry,
			                       xfer_store_now_ns());
			/* The mtime carries the LRU order across restarts. */
			if (op->fd >= 0)
				futimens(op->fd, NULL);
		}
		xfer_store_entry_rele(op->entry);
		op->entry = NULL;
	}
	if (op->fd >= 0)
		close(op->fd);
	op->fd = -1;
	if (op->status && op->status != KVF_ENOENT &&
	    op->status != KVF_EINVAL && op->status != KVF_ECANCELED)
		sc_warn("store %s: %s (%s)", s->dir, op->msg,
		        kvf_strerror(op->status));
	act_unlink(s, op);
	op->next = NULL;
	if (s->done_tail)
		s->done_tail->next = op;
	else
		s->done_head = op;
	s->done_tail = op;
}

/* An op refused before any I/O: ends now, the fd says so. */
static int op_refuse(struct xfer_store *s, struct op *op)
{
	xfer_store_op_end(s, op);
	xfer_store_signal_fd(s);
	return 0;
}

/* ---- save and load -------------------------------------------------- */

static struct op *op_alloc(struct xfer_store *s, bool save, const char *name,
                           void *const *blocks, uint32_t nblocks, void *ctx)
{
	struct op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->blocks = malloc(sizeof(void *) * (nblocks ? nblocks : 1));
	if (!op->blocks) {
		free(op);
		return NULL;
	}
	if (nblocks)
		memcpy(op->blocks, blocks, sizeof(void *) * nblocks);
	op->save = save;
	op->ctx = ctx;
	op->fd = -1;
	op->file_idx = -1;
	/* Messages name the object even when its name is bad. */
	snprintf(op->hdr.name, sizeof(op->hdr.name), "%s", name ? name : "");
	s->pending++;
	return op;
}

static bool blocks_aligned(struct op *op)
{
	if (op->hdr.block_len % XFER_STORE_ALIGN)
		return false;
	for (uint32_t i = 0; i < op->hdr.nblocks; i++)
		if ((uintptr_t)op->blocks[i] % XFER_STORE_ALIGN)
			return false;
	return true;
}

static void pick_direct(struct xfer_store *s, struct op *op)
{
	op->direct = s->direct && blocks_aligned(op);
	if (s->direct && !op->direct && !s->warned_unaligned) {
		s->warned_unaligned = true;
		sc_info("store %s: '%s' has blocks not aligned to %u bytes "
		        "(address or length %" PRIu64 "): such objects use "
		        "buffered I/O", s->dir, op->hdr.name, XFER_STORE_ALIGN,
		        op->hdr.block_len);
	}
}

static void *xfer_store_aligned_buf(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, XFER_STORE_ALIGN, len) != 0)
		return NULL;
	return p;
}

int xfer_store_save(struct xfer_store *s, const char *name,
                    const struct kvf_layout *layout, void *const *blocks,
                    uint32_t nblocks, uint64_t block_len, void *ctx)
{
	struct op *op;
	char why[200];
	int ret;

	if (!s || (!blocks && nblocks))
		return KVF_EINVAL;
	op = op_alloc(s, true, name, blocks, nblocks, ctx);
	if (!op)
		return KVF_ENOMEM;
	if (xfer_store_name_check(name, why, sizeof(why)) != 0) {
		xfer_store_op_fail(op, KVF_EINVAL, "save: %s", why);
		return op_refuse(s, op);
	}
	if (xfer_store_hdr_init(&op->hdr, name, layout, nblocks, block_len,
	                        why, sizeof(why)) != 0) {
		xfer_store_op_fail(op, KVF_EINVAL, "save '%s': %s", name, why);
		return op_refuse(s, op);
	}
	for (uint32_t i = 0; i < nblocks; i++) {
		if (!blocks[i]) {
			xfer_store_op_fail(op, KVF_EINVAL,
			                   "save '%s': block %" PRIu32
			                   " has a NULL address", name, i);
			return op_refuse(s, op);
		}
	}
	op->hdr.created_ns = xfer_store_now_ns();
	if (s->capacity && op->hdr.total_bytes > s->capacity) {
		xfer_store_op_fail(op, KVF_ENOSPC, "save '%s': object needs %"
		                   PRIu64 " bytes, more than the store's "
		                   "capacity of %" PRIu64, name,
		                   op->hdr.total_bytes, s->capacity);
		return op_refuse(s, op);
	}
	if (xfer_store_make_room(s, op, op->hdr.total_bytes) != 0)
		return op_refuse(s, op);
	op->reserved = op->hdr.total_bytes;
	s->reserved += op->reserved;
	op->crcs = calloc(nblocks, sizeof(uint32_t));
	op->hbuf = xfer_store_aligned_buf(op->hdr.header_bytes);
	if (!op->crcs || !op->hbuf) {
		xfer_store_op_fail(op, KVF_ENOMEM, "save '%s': out of memory "
		                   "for %" PRIu32 " block checksums", name,
		                   nblocks);
		return op_refuse(s, op);
	}
	pick_direct(s, op);
	snprintf(op->tmp, sizeof(op->tmp),
	         XFER_STORE_TMP_PREFIX "%ld.%" PRIu64, (long)getpid(),
	         ++s->seq);
	op->fd = openat(s->dirfd, op->tmp, O_WRONLY | O_CREAT | O_EXCL |
	                O_CLOEXEC | (op->direct ? O_DIRECT : 0), 0644);
	if (op->fd < 0) {
		xfer_store_op_fail(op,
		                   errno == ENOSPC ? KVF_ENOSPC : KVF_ESYSTEM,
		                   "save '%s': open() of %s/%s failed: %s",
		                   name, s->dir, op->tmp, strerror(errno));
		return op_refuse(s, op);
	}
	op->created = true;
	/* Take the space now: a full disk fails here, before any write. */
	ret = fallocate(op->fd, 0, 0, (off_t)op->hdr.total_bytes);
	if (ret != 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
		ret = ftruncate(op->fd, (off_t)op->hdr.total_bytes);
	if (ret != 0) {
		xfer_store_op_fail(op, xfer_store_errno_code(errno),
		                   "save '%s': fallocate() of %" PRIu64
		                   " bytes in %s failed: %s", name,
		                   op->hdr.total_bytes, s->dir,
		                   strerror(errno));
		return op_refuse(s, op);
	}
	xfer_store_file_slot_take(s, op);
	act_push(s, op);
	xfer_store_issue(s);
	return 0;
}

static bool layouts_match(const struct kvf_layout *a,
                          const struct kvf_layout *b)
{
	static const struct kvf_layout none;

	/* An object saved without a layout, or a load without one, is
	 * checked by block count and length only. */
	if (!a || !memcmp(b, &none, sizeof(none)))
		return true;
	return a->num_layers == b->num_layers &&
	       a->block_bytes == b->block_bytes;
}

int xfer_store_load(struct xfer_store *s, const char *name,
                    const struct kvf_layout *layout, void *const *blocks,
                    uint32_t nblocks, uint64_t block_len, void *ctx)
{
	struct xfer_store_entry *e;
	struct op *op;
	char why[200], fn[XFER_STORE_NAME_MAX + 8];

	if (!s || (!blocks && nblocks))
		return KVF_EINVAL;
	op = op_alloc(s, false, name, blocks, nblocks, ctx);
	if (!op)
		return KVF_ENOMEM;
	if (xfer_store_name_check(name, why, sizeof(why)) != 0) {
		xfer_store_op_fail(op, KVF_EINVAL, "load: %s", why);
		return op_refuse(s, op);
	}
	e = xfer_store_index_find(s->ix, name);
	if (!e) {
		xfer_store_op_fail(op, KVF_ENOENT, "load '%s': no such object "
		                   "in %s", name, s->dir);
		return op_refuse(s, op);
	}
	/* Layouts first: other layers or block_bytes change the count and
	 * length too, and the two layouts tell the engine more. */
	if (!layouts_match(layout, &e->layout)) {
		char have[160], want[160];
		xfer_store_layout_str(&e->layout, have, sizeof(have));
		xfer_store_layout_str(layout, want, sizeof(want));
		xfer_store_op_fail(op, KVF_EINVAL, "load '%s': layout "
		                   "mismatch: saved with %s, loading into %s "
		                   "(layers and block_bytes must agree)", name,
		                   have, want);
		return op_refuse(s, op);
	}
	if (e->nblocks != nblocks || e->block_len != block_len) {
		xfer_store_op_fail(op, KVF_EINVAL, "load '%s': the object has "
		                   "%" PRIu32 " blocks of %" PRIu64 " bytes, "
		                   "the load asks for %" PRIu32 " of %" PRIu64,
		                   name, e->nblocks, e->block_len, nblocks,
		                   block_len);
		return op_refuse(s, op);
	}
	for (uint32_t i = 0; i < nblocks; i++) {
		if (!blocks[i]) {
			xfer_store_op_fail(op, KVF_EINVAL,
			                   "load '%s': block %" PRIu32
			                   " has a NULL address", name, i);
			return op_refuse(s, op);
		}
	}
	xfer_store_hdr_init(&op->hdr, name, &e->layout, nblocks, block_len,
	                    why, sizeof(why));
	op->hbuf = xfer_store_aligned_buf(op->hdr.header_bytes);
	op->landed = calloc(nblocks, 1);
	if (!op->hbuf || !op->landed) {
		xfer_store_op_fail(op, KVF_ENOMEM, "load '%s': out of memory",
		                   name);
		return op_refuse(s, op);
	}
	pick_direct(s, op);
	xfer_store_file_name(name, fn, sizeof(fn));
	op->fd = openat(s->dirfd, fn, O_RDONLY | O_CLOEXEC |
	                (op->direct ? O_DIRECT : 0));
	if (op->fd < 0) {
		int err = errno;
		xfer_store_op_fail(op, xfer_store_errno_code(err),
		                   "load '%s': open() of %s/%s failed: %s",
		                   name, s->dir, fn, strerror(err));
		if (err == ENOENT)
			xfer_store_index_remove(s->ix, e);
		return op_refuse(s, op);
	}
	xfer_store_entry_hold(e);
	op->entry = e;
	xfer_store_file_slot_take(s, op);
	act_push(s, op);
	xfer_store_issue(s);
	return 0;
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
