/*
 * xfer/store_ring.c - the store's io_uring: it turns the active ops' next
 * steps into SQEs and their CQEs back into progress.
 *
 * Each save or load is an op on the active list. xfer_store_issue()
 * walks the list and turns the ops' next steps into SQEs while I/O slots
 * are free (the queue depth bounds the I/Os in flight, so the CQ, twice
 * the SQ, never overflows) and submits them in one io_uring_submit.
 * xfer_store_reap() handles CQEs: a short read or write is resubmitted
 * for the rest from the same slot; an error marks the op failed, after
 * which it issues nothing more and ends when its last I/O is back.
 *
 * A save steps through its data, header, sync, rename and directory sync
 * here (store_op.c says why in that order); a load verifies its blocks
 * against the header as they land.
 */
#include "xfer/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sidecar/log.h"
#include "xfer/store_crc.h"

/* The kernel refuses single I/Os above this. */
#define IO_CHUNK (UINT64_C(1) << 30)

/* ---- issuing ------------------------------------------------------- */

static struct io_slot *slot_get(struct xfer_store *s)
{
	struct io_slot *sl = s->free_slots;
	if (sl)
		s->free_slots = sl->next_free;
	return sl;
}

void xfer_store_slot_put(struct xfer_store *s, struct io_slot *sl)
{
	sl->op = NULL;
	sl->next_free = s->free_slots;
	s->free_slots = sl;
}

static void sqe_file(struct op *op, struct io_uring_sqe *sqe)
{
	if (op->file_idx >= 0)
		sqe->flags |= IOSQE_FIXED_FILE;
}

/* Queue the (rest of the) I/O of slot sl. The SQ always has room: it is
 * as deep as the slots and is emptied by every issue round. */
static void prep(struct xfer_store *s, struct io_slot *sl)
{
	struct op *op = sl->op;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
	int fd = op->file_idx >= 0 ? op->file_idx : op->fd;

	if (sl->kind == IO_BLOCK) {
		char *p = (char *)op->blocks[sl->block] + sl->done;
		uint64_t len = op->hdr.block_len - sl->done;
		uint64_t off = xfer_store_block_off(&op->hdr, sl->block) +
		               sl->done;
		int bi = xfer_store_find_buf(s, op->blocks[sl->block],
		                             op->hdr.block_len);
		if (len > IO_CHUNK)
			len = IO_CHUNK;
		if (bi >= 0 && op->save)
			io_uring_prep_write_fixed(sqe, fd, p, (unsigned)len,
			                          off, bi);
		else if (bi >= 0)
			io_uring_prep_read_fixed(sqe, fd, p, (unsigned)len,
			                         off, bi);
		else if (op->save)
			io_uring_prep_write(sqe, fd, p, (unsigned)len, off);
		else
			io_uring_prep_read(sqe, fd, p, (unsigned)len, off);
	} else if (sl->kind == IO_HDR) {
		uint8_t *p = op->hbuf + sl->done;
		unsigned len = (unsigned)(op->hdr.header_bytes - sl->done);
		if (op->save)
			io_uring_prep_write(sqe, fd, p, len, sl->done);
		else
			io_uring_prep_read(sqe, fd, p, len, sl->done);
	} else if (sl->kind == IO_FSYNC) {
		io_uring_prep_fsync(sqe, fd,
		                    s->sync == XFER_STORE_SYNC_DATA ?
		                    IORING_FSYNC_DATASYNC : 0);
	} else {
		io_uring_prep_fsync(sqe, s->dirfd, 0);
	}
	if (sl->kind != IO_DIRSYNC)
		sqe_file(op, sqe);
	io_uring_sqe_set_data(sqe, sl);
	op->inflight++;
	s->inflight++;
	s->queued++;
}

static bool start_io(struct xfer_store *s, struct op *op, enum io_kind kind,
                     uint32_t block)
{
	struct io_slot *sl = slot_get(s);

	if (!sl)
		return false;
	sl->op = op;
	sl->kind = kind;
	sl->block = block;
	sl->done = 0;
	prep(s, sl);
	return true;
}

/* Queue what op can do next; false when the slots ran out. */
static bool issue_op(struct xfer_store *s, struct op *op)
{
	if (op->status)
		return true;
	switch (op->step) {
	case S_DATA:
		if (!op->save && !op->hdr_issued) {
			if (!start_io(s, op, IO_HDR, 0))
				return false;
			op->hdr_issued = true;
		}
		while (op->next_block < op->hdr.nblocks) {
			uint32_t i = op->next_block;
			if (!s->free_slots)
				return false;
			/* The sum just before the write: the CPU works
			 * while the earlier writes are in flight. */
			if (op->save)
				op->crcs[i] = xfer_store_crc32c(
					0, op->blocks[i], op->hdr.block_len);
			start_io(s, op, IO_BLOCK, i);
			op->next_block++;
		}
		return true;
	case S_HEADER:
	case S_SYNC:
	case S_DIRSYNC:
		if (op->step_issued)
			return true;
		if (op->step == S_HEADER)
			xfer_store_hdr_encode(&op->hdr, op->crcs, op->hbuf);
		if (!start_io(s, op, op->step == S_HEADER ? IO_HDR :
		              op->step == S_SYNC ? IO_FSYNC : IO_DIRSYNC, 0))
			return false;
		op->step_issued = true;
		return true;
	default:
		return true;
	}
}

void xfer_store_submit(struct xfer_store *s)
{
	while (s->queued) {
		int ret = io_uring_submit(&s->ring);
		if (ret > 0) {
			s->queued -= (uint32_t)ret < s->queued ? (uint32_t)ret
			                                        : s->queued;
			continue;
		}
		if (ret == -EINTR)
			continue;
		/* -EAGAIN / -EBUSY: the kernel is short of resources; the
		 * SQEs stay queued for the next round. */
		if (ret != -EAGAIN && ret != -EBUSY)
			sc_warn("store %s: io_uring_submit() failed: %s",
			        s->dir, strerror(-ret));
		return;
	}
}

void xfer_store_issue(struct xfer_store *s)
{
	for (struct op *op = s->act_head; op && s->free_slots; op = op->next)
		if (!issue_op(s, op))
			break;
	xfer_store_submit(s);
}

/* ---- completions ------------------------------------------------- */

static void verify_block(struct op *op, uint32_t i)
{
	uint32_t want = xfer_store_hdr_block_crc(op->hbuf, i);
	uint32_t have = xfer_store_crc32c(0, op->blocks[i], op->hdr.block_len);

	if (have != want)
		xfer_store_op_fail(op, KVF_ECORRUPT, "load '%s': block %"
		                   PRIu32 " of %" PRIu32 ": checksum mismatch "
		                   "(stored 0x%08" PRIx32 ", computed 0x%08"
		                   PRIx32 ")", op->hdr.name, i,
		                   op->hdr.nblocks, want, have);
}

static void load_header_in(struct op *op)
{
	struct xfer_store_hdr h;
	char why[200];

	if (xfer_store_hdr_decode(op->hbuf, op->hdr.header_bytes, &h, why,
	                          sizeof(why)) != 0 ||
	    xfer_store_hdr_verify(&h, op->hbuf, why, sizeof(why)) != 0) {
		xfer_store_op_fail(op, KVF_ECORRUPT, "load '%s': %s",
		                   op->hdr.name, why);
		return;
	}
	if (strcmp(h.name, op->hdr.name) != 0 ||
	    h.nblocks != op->hdr.nblocks || h.block_len != op->hdr.block_len) {
		xfer_store_op_fail(op, KVF_ECORRUPT, "load '%s': header "
		                   "changed since the catalogue read it (name "
		                   "'%s', %" PRIu32 " blocks of %" PRIu64
		                   " bytes)", op->hdr.name, h.name, h.nblocks,
		                   h.block_len);
		return;
	}
	op->hdr_ok = true;
	for (uint32_t i = 0; i < op->hdr.nblocks; i++)
		if (op->landed[i])
			verify_block(op, i);
}

/* After the last I/O of a step: go on, or end. */
static void advance(struct xfer_store *s, struct op *op)
{
	if (op->inflight)
		return;
	if (op->status) {
		xfer_store_op_end(s, op);
		return;
	}
	if (!op->save) {
		if (op->blocks_done == op->hdr.nblocks && op->hdr_ok)
			xfer_store_op_end(s, op);
		return;
	}
	switch (op->step) {
	case S_DATA:
		if (op->blocks_done < op->hdr.nblocks)
			return;
		op->step = S_HEADER;
		break;
	case S_HEADER:
		if (s->sync != XFER_STORE_SYNC_NONE) {
			op->step = S_SYNC;
			break;
		}
		/* fall through */
	case S_SYNC: {
		char fn[XFER_STORE_NAME_MAX + 8];
		xfer_store_file_name(op->hdr.name, fn, sizeof(fn));
		if (renameat(s->dirfd, op->tmp, s->dirfd, fn) != 0) {
			xfer_store_op_fail(op, xfer_store_errno_code(errno),
			                   "save '%s': rename() of %s to %s "
			                   "failed: %s", op->hdr.name, op->tmp,
			                   fn, strerror(errno));
			xfer_store_op_end(s, op);
			return;
		}
		op->renamed = true;
		if (s->sync == XFER_STORE_SYNC_FULL) {
			op->step = S_DIRSYNC;
			break;
		}
		op->step = S_END;
		xfer_store_op_end(s, op);
		return;
	}
	default:
		op->step = S_END;
		xfer_store_op_end(s, op);
		return;
	}
	op->step_issued = false;
}

static void complete(struct xfer_store *s, struct io_slot *sl, int res)
{
	struct op *op = sl->op;
	const char *verb = op->save ? "write" : "read";
	const char *file = op->save ? op->tmp : op->hdr.name;

	op->inflight--;
	s->inflight--;
	if (sl->kind == IO_FSYNC || sl->kind == IO_DIRSYNC) {
		if (res < 0)
			xfer_store_op_fail(op, xfer_store_errno_code(-res),
			                   "save '%s': %s() failed: %s",
			                   op->hdr.name,
			                   sl->kind == IO_DIRSYNC ?
			                   "fsync(directory)" : "fsync",
			                   strerror(-res));
		xfer_store_slot_put(s, sl);
		advance(s, op);
		return;
	}
	uint64_t want = sl->kind == IO_BLOCK ? op->hdr.block_len
	                                     : op->hdr.header_bytes;
	uint64_t off = (sl->kind == IO_BLOCK ?
	                xfer_store_block_off(&op->hdr, sl->block) : 0) +
	               sl->done;
	if (res < 0) {
		xfer_store_op_fail(op, xfer_store_errno_code(-res),
		                   "%s '%s': %s() of %s at offset %" PRIu64
		                   " (%s) failed: %s",
		                   op->save ? "save" : "load", op->hdr.name,
		                   verb, file, off,
		                   sl->kind == IO_BLOCK ? "block" : "header",
		                   strerror(-res));
	} else if (res == 0) {
		if (op->save)
			xfer_store_op_fail(op, KVF_EIO, "save '%s': write() "
			                   "of %s at offset %" PRIu64 " wrote "
			                   "nothing", op->hdr.name, file, off);
		else
			xfer_store_op_fail(op, KVF_ECORRUPT, "load '%s': file "
			                   "ends at offset %" PRIu64 ", "
			                   "before its %s", op->hdr.name, off,
			                   sl->kind == IO_BLOCK ? "blocks" :
			                   "header");
	} else {
		sl->done += (uint64_t)res;
		if (sl->done < want && !op->status) {
			/* Short read or write: the rest from here. */
			prep(s, sl);
			return;
		}
		if (sl->kind == IO_BLOCK) {
			op->blocks_done++;
			if (!op->save) {
				if (op->hdr_ok)
					verify_block(op, sl->block);
				else
					op->landed[sl->block] = 1;
			}
		} else if (!op->save) {
			load_header_in(op);
		}
	}
	xfer_store_slot_put(s, sl);
	advance(s, op);
}

void xfer_store_reap(struct xfer_store *s)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&s->ring, head, cqe) {
		struct io_slot *sl = io_uring_cqe_get_data(cqe);
		n++;
		if (sl && sl->op)
			complete(s, sl, cqe->res);
	}
	io_uring_cq_advance(&s->ring, n);
}
