/*
 * xfer/store_op.c - the life of one save or load: the request is checked,
 * its file opened, and the op put on the active list for store_ring.c to
 * drive; xfer_store_op_end() commits or cleans up and moves it to the done
 * list that xfer_store_poll hands out.
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

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sidecar/log.h"

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

void xfer_store_op_free(struct op *op)
{
	free(op->blocks);
	free(op->hbuf);
	free(op->crcs);
	free(op->landed);
	free(op);
}

void xfer_store_signal_fd(struct xfer_store *s)
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

void *xfer_store_aligned_buf(size_t len)
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
