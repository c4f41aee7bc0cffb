/*
 * xfer/store_fixed.c - the ring's registered tables. The buffer table
 * holds memory the caller registered, in pieces of at most 1 GiB, so
 * blocks inside one piece move with READ_FIXED/WRITE_FIXED; the file
 * table holds the descriptors of objects of several blocks, saving the
 * kernel a file lookup per I/O. Both tables are sparse, registered at
 * open; the store works without them when the kernel has none.
 */
#include "xfer/store_int.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "sidecar/log.h"

/* The kernel refuses registered buffers above this. */
#define BUF_CHUNK (UINT64_C(1) << 30)
/* Objects of fewer blocks do not pay the two syscalls of a file slot. */
#define FIXED_FILE_MIN_BLOCKS 4u

/* ---- registered memory ------------------------------------------------ */

int xfer_store_find_buf(struct xfer_store *s, const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (uint32_t i = 0; i < MAX_REGS; i++) {
		struct mreg *r = &s->regs[i];
		if (!r->used || a < r->base || a + len > r->base + r->len)
			continue;
		uint64_t first = (a - r->base) / BUF_CHUNK;
		uint64_t last = (a + len - 1 - r->base) / BUF_CHUNK;
		return first == last ? (int)(r->first + first) : -1;
	}
	return -1;
}

int xfer_store_register_memory(struct xfer_store *s, void *base, size_t len,
                               uint32_t *index)
{
	uint32_t pieces, ri, first;
	int ret;

	if (!s || !base || !len || !index)
		return KVF_EINVAL;
	if (!s->buf_table) {
		sc_warn("store %s: register_memory: this kernel has no sparse "
		        "buffer table; blocks move with plain read/write",
		        s->dir);
		return KVF_ENOTSUP;
	}
	pieces = (uint32_t)((len + BUF_CHUNK - 1) / BUF_CHUNK);
	for (ri = 0; ri < MAX_REGS && s->regs[ri].used; ri++)
		;
	for (first = 0; first + pieces <= MAX_BUFS; first++) {
		uint32_t k = 0;
		while (k < pieces && !s->buf_used[first + k])
			k++;
		if (k == pieces)
			break;
	}
	if (ri == MAX_REGS || pieces > MAX_BUFS || first + pieces > MAX_BUFS) {
		sc_warn("store %s: register_memory(%zu bytes): buffer table "
		        "full (%u regions, %u pieces of 1 GiB)", s->dir, len,
		        MAX_REGS, MAX_BUFS);
		return KVF_ENOSPC;
	}
	for (uint32_t k = 0; k < pieces; k++) {
		struct iovec iov;
		__u64 tag = 0;
		iov.iov_base = (char *)base + k * BUF_CHUNK;
		iov.iov_len = k + 1 < pieces ? BUF_CHUNK : len - k * BUF_CHUNK;
		ret = io_uring_register_buffers_update_tag(
			&s->ring, first + k, &iov, &tag, 1);
		if (ret < 0) {
			struct iovec none = {0};
			for (uint32_t j = 0; j < k; j++)
				io_uring_register_buffers_update_tag(
					&s->ring, first + j, &none, &tag, 1);
			sc_warn("store %s: register_memory(%p, %zu bytes): "
			        "io_uring_register_buffers_update_tag() "
			        "failed: %s", s->dir, base, len,
			        strerror(-ret));
			return ret == -ENOMEM ? KVF_ENOMEM : KVF_ESYSTEM;
		}
	}
	for (uint32_t k = 0; k < pieces; k++)
		s->buf_used[first + k] = 1;
	s->regs[ri] = (struct mreg){ .used = true, .base = (uintptr_t)base,
		.len = len, .first = first, .pieces = pieces };
	*index = ri;
	return 0;
}

int xfer_store_unregister_memory(struct xfer_store *s, uint32_t index)
{
	struct mreg *r;

	if (!s || index >= MAX_REGS || !s->regs[index].used)
		return KVF_ENOENT;
	r = &s->regs[index];
	for (uint32_t k = 0; k < r->pieces; k++) {
		struct iovec none = {0};
		__u64 tag = 0;
		io_uring_register_buffers_update_tag(&s->ring, r->first + k,
		                                     &none, &tag, 1);
		s->buf_used[r->first + k] = 0;
	}
	r->used = false;
	return 0;
}

/* ---- file table ------------------------------------------------------ */

void xfer_store_file_slot_take(struct xfer_store *s, struct op *op)
{
	if (!s->file_table || op->hdr.nblocks < FIXED_FILE_MIN_BLOCKS)
		return;
	for (uint32_t i = 0; i < MAX_FILES; i++) {
		if (s->file_used[i])
			continue;
		if (io_uring_register_files_update(&s->ring, i, &op->fd, 1) ==
		    1) {
			s->file_used[i] = 1;
			op->file_idx = (int)i;
		}
		return;
	}
}

void xfer_store_file_slot_put(struct xfer_store *s, struct op *op)
{
	int minus = -1;

	if (op->file_idx < 0)
		return;
	io_uring_register_files_update(&s->ring, (unsigned)op->file_idx,
	                               &minus, 1);
	s->file_used[op->file_idx] = 0;
	op->file_idx = -1;
}
