/*
 * ipc/wire.c - session layout and the validator for submission records.
 * The validator is the sidecar's first line of defence against a buggy or
 * hostile engine: it only accepts records whose every count agrees with the
 * record's length, so later code can index segments without checks of its
 * own beyond the region bounds.
 */
#include "ipc/wire.h"

#include <stdio.h>
#include <string.h>

static size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

size_t ipc_session_size(uint32_t sub_capacity, uint32_t comp_capacity)
{
	return 4096 + align_up(ipc_ring_size(sub_capacity), 4096) +
	       align_up(ipc_ring_size(comp_capacity), 4096);
}

int ipc_session_format(void *mem, uint32_t sub_capacity,
                       uint32_t comp_capacity, struct ipc_ring *sub,
                       struct ipc_ring *comp)
{
	struct ipc_session_hdr *h = mem;
	int rc;

	memset(h, 0, sizeof *h);
	h->version = IPC_WIRE_VERSION;
	h->sub_capacity = sub_capacity;
	h->comp_capacity = comp_capacity;
	h->sub_off = 4096;
	h->comp_off = 4096 + align_up(ipc_ring_size(sub_capacity), 4096);
	rc = ipc_ring_format((char *)mem + h->sub_off, sub_capacity, sub);
	if (rc == 0)
		rc = ipc_ring_format((char *)mem + h->comp_off, comp_capacity,
		                     comp);
	h->magic = IPC_SESSION_MAGIC;
	return rc;
}

int ipc_session_attach(void *mem, size_t len, struct ipc_ring *sub,
                       struct ipc_ring *comp, char *err, size_t errlen)
{
	const struct ipc_session_hdr *h = mem;
	uint64_t sub_off, comp_off;

	if (len < 4096 || h->magic != IPC_SESSION_MAGIC) {
		snprintf(err, errlen, "session memory: bad magic");
		return KVF_EPROTO;
	}
	if (h->version != IPC_WIRE_VERSION) {
		snprintf(err, errlen,
		         "session memory: ring format version %u, sidecar speaks "
		         "%u",
		         h->version, IPC_WIRE_VERSION);
		return KVF_EVERSION;
	}
	sub_off = h->sub_off;
	comp_off = h->comp_off;
	if (sub_off < 4096 || sub_off >= len || comp_off < 4096 ||
	    comp_off >= len || (sub_off & 63) || (comp_off & 63)) {
		snprintf(err, errlen, "session memory: ring offsets out of range");
		return KVF_EPROTO;
	}
	/* The two rings must not overlap each other. */
	if (ipc_ring_attach((char *)mem + sub_off, comp_off > sub_off ? comp_off - sub_off : len - sub_off, sub) != 0 ||
	    ipc_ring_attach((char *)mem + comp_off, sub_off > comp_off ? sub_off - comp_off : len - comp_off, comp) != 0) {
		snprintf(err, errlen, "session memory: ring header invalid");
		return KVF_EPROTO;
	}
	return 0;
}

size_t ipc_sub_xfer_size(uint32_t tag_len, enum ipc_seg_mode mode,
                         uint32_t nseg)
{
	size_t seg = mode == IPC_SEG_BLOCKS ? sizeof(struct ipc_block_pair)
	                                    : sizeof(struct kvf_seg);
	return sizeof(struct ipc_sub_xfer) + align_up(tag_len, 8) +
	       (size_t)nseg * seg;
}

int ipc_wire_parse_xfer(const void *rec, size_t len,
                        struct ipc_xfer_view *view, char *err, size_t errlen)
{
	const struct ipc_sub_xfer *h = rec;
	const uint8_t *after;

	if (len < sizeof *h) {
		snprintf(err, errlen, "transfer record: %zu bytes, shorter than "
		         "its header (%zu)", len, sizeof *h);
		return KVF_EPROTO;
	}
	if (h->op != KVF_WRITE && h->op != KVF_READ) {
		snprintf(err, errlen, "transfer %llu: unknown op %u",
		         (unsigned long long)h->xfer_id, h->op);
		return KVF_EPROTO;
	}
	if (h->mode != IPC_SEG_BYTES && h->mode != IPC_SEG_BLOCKS) {
		snprintf(err, errlen, "transfer %llu: unknown segment mode %u",
		         (unsigned long long)h->xfer_id, h->mode);
		return KVF_EPROTO;
	}
	if (h->tag_len > KVF_MAX_TAG) {
		snprintf(err, errlen, "transfer %llu: tag of %u bytes (max %u)",
		         (unsigned long long)h->xfer_id, h->tag_len, KVF_MAX_TAG);
		return KVF_EPROTO;
	}
	if (h->nseg == 0 || h->nseg > IPC_MAX_SEGS) {
		snprintf(err, errlen,
		         "transfer %llu: %u segments (want 1..%u)",
		         (unsigned long long)h->xfer_id, h->nseg, IPC_MAX_SEGS);
		return KVF_EPROTO;
	}
	if (ipc_sub_xfer_size(h->tag_len, h->mode, h->nseg) != len) {
		snprintf(err, errlen,
		         "transfer %llu: record is %zu bytes, its counts say %zu",
		         (unsigned long long)h->xfer_id, len,
		         ipc_sub_xfer_size(h->tag_len, h->mode, h->nseg));
		return KVF_EPROTO;
	}
	after = (const uint8_t *)(h + 1);
	view->hdr = h;
	view->tag = after;
	after += align_up(h->tag_len, 8);
	view->segs = h->mode == IPC_SEG_BYTES ? (const void *)after : NULL;
	view->pairs = h->mode == IPC_SEG_BLOCKS ? (const void *)after : NULL;
	return 0;
}
