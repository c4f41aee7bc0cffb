/*
 * xfer/store_format.c - encode, decode and check the header of a stored KV
 * object (see store_format.h for the byte layout).
 *
 * Fields are written one by one at fixed offsets in little-endian order,
 * never by copying a C struct, so the format does not depend on padding or
 * the host. The header CRC covers the fixed part and the block CRC table;
 * the file's blocks are covered by their own CRCs, so a load can verify
 * each block as soon as it lands.
 */
#include "xfer/store_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "xfer/store_crc.h"

/* Offsets in the fixed part. */
enum {
	O_MAGIC = 0,
	O_VERSION = 8,
	O_HDR_BYTES = 12,
	O_NBLOCKS = 16,
	O_NAME_LEN = 20,
	O_BLOCK_LEN = 24,
	O_SLOT = 32,
	O_TOTAL = 40,
	O_CREATED = 48,
	O_L_LAYERS = 56,
	O_L_BLOCKS = 60,
	O_L_BBYTES = 64,
	O_L_LSTRIDE = 72,
	O_L_BSTRIDE = 80,
	O_L_OFFSET = 88,
	O_HDR_CRC = 96,
	O_NAME = 104,
};

_Static_assert(O_NAME + XFER_STORE_NAME_MAX + 1 <= XFER_STORE_FIXED_BYTES,
               "name must fit the fixed part");

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

int xfer_store_hdr_init(struct xfer_store_hdr *h, const char *name,
                        const struct kvf_layout *layout, uint32_t nblocks,
                        uint64_t block_len, char *why, size_t whylen)
{
	memset(h, 0, sizeof(*h));
	if (nblocks == 0 || block_len == 0) {
		snprintf(why, whylen, "%" PRIu32 " blocks of %" PRIu64
		         " bytes: need at least one non-empty block",
		         nblocks, block_len);
		return KVF_EINVAL;
	}
	/* Bounds keep every product below 2^63. */
	if (block_len > (UINT64_C(1) << 40) || nblocks > (1u << 24)) {
		snprintf(why, whylen, "%" PRIu32 " blocks of %" PRIu64
		         " bytes: more than the format allows (2^24 blocks "
		         "of at most 1 TiB)", nblocks, block_len);
		return KVF_EINVAL;
	}
	h->version = XFER_STORE_VERSION;
	h->header_bytes = (uint32_t)round_up(
		XFER_STORE_FIXED_BYTES + 4 * (uint64_t)nblocks,
		XFER_STORE_ALIGN);
	h->nblocks = nblocks;
	h->block_len = block_len;
	h->slot_bytes = round_up(block_len, XFER_STORE_ALIGN);
	h->total_bytes = h->header_bytes + (uint64_t)nblocks * h->slot_bytes;
	if (layout)
		h->layout = *layout;
	snprintf(h->name, sizeof(h->name), "%s", name);
	return 0;
}

void xfer_store_hdr_encode(const struct xfer_store_hdr *h,
                           const uint32_t *crcs, void *buf)
{
	unsigned char *p = buf;
	size_t nlen = strlen(h->name);

	memset(p, 0, h->header_bytes);
	memcpy(p + O_MAGIC, XFER_STORE_MAGIC, 8);
	put32(p + O_VERSION, h->version);
	put32(p + O_HDR_BYTES, h->header_bytes);
	put32(p + O_NBLOCKS, h->nblocks);
	put32(p + O_NAME_LEN, (uint32_t)nlen);
	put64(p + O_BLOCK_LEN, h->block_len);
	put64(p + O_SLOT, h->slot_bytes);
	put64(p + O_TOTAL, h->total_bytes);
	put64(p + O_CREATED, h->created_ns);
	put32(p + O_L_LAYERS, h->layout.num_layers);
	put32(p + O_L_BLOCKS, h->layout.num_blocks);
	put64(p + O_L_BBYTES, h->layout.block_bytes);
	put64(p + O_L_LSTRIDE, h->layout.layer_stride);
	put64(p + O_L_BSTRIDE, h->layout.block_stride);
	put64(p + O_L_OFFSET, h->layout.offset);
	memcpy(p + O_NAME, h->name, nlen);
	for (uint32_t i = 0; i < h->nblocks; i++)
		put32(p + XFER_STORE_FIXED_BYTES + 4 * (size_t)i, crcs[i]);
	put32(p + O_HDR_CRC,
	      xfer_store_crc32c(0, p, XFER_STORE_FIXED_BYTES +
	                                  4 * (size_t)h->nblocks));
}

int xfer_store_hdr_decode(const void *buf, size_t len,
                          struct xfer_store_hdr *h, char *why, size_t whylen)
{
	const unsigned char *p = buf;
	struct xfer_store_hdr t;
	uint32_t nlen;
	char tmp[XFER_STORE_NAME_MAX + 1];

	if (len < XFER_STORE_FIXED_BYTES) {
		snprintf(why, whylen, "header truncated (%zu bytes)", len);
		return KVF_ECORRUPT;
	}
	if (memcmp(p + O_MAGIC, XFER_STORE_MAGIC, 8) != 0) {
		snprintf(why, whylen, "bad magic (not a kvferry object)");
		return KVF_ECORRUPT;
	}
	memset(&t, 0, sizeof(t));
	t.version = get32(p + O_VERSION);
	if (t.version != XFER_STORE_VERSION) {
		snprintf(why, whylen, "format version %" PRIu32
		         ", this build reads %u", t.version,
		         XFER_STORE_VERSION);
		return KVF_ECORRUPT;
	}
	t.header_bytes = get32(p + O_HDR_BYTES);
	t.nblocks = get32(p + O_NBLOCKS);
	nlen = get32(p + O_NAME_LEN);
	t.block_len = get64(p + O_BLOCK_LEN);
	t.slot_bytes = get64(p + O_SLOT);
	t.total_bytes = get64(p + O_TOTAL);
	t.created_ns = get64(p + O_CREATED);
	t.layout.num_layers = get32(p + O_L_LAYERS);
	t.layout.num_blocks = get32(p + O_L_BLOCKS);
	t.layout.block_bytes = get64(p + O_L_BBYTES);
	t.layout.layer_stride = get64(p + O_L_LSTRIDE);
	t.layout.block_stride = get64(p + O_L_BSTRIDE);
	t.layout.offset = get64(p + O_L_OFFSET);
	if (nlen == 0 || nlen > XFER_STORE_NAME_MAX) {
		snprintf(why, whylen, "name length %" PRIu32 " out of range",
		         nlen);
		return KVF_ECORRUPT;
	}
	memcpy(t.name, p + O_NAME, nlen);
	t.name[nlen] = '\0';
	/* Recompute the sizes: a header that disagrees with itself is
	 * damaged even if its CRC happens to match. */
	struct xfer_store_hdr want;
	if (xfer_store_hdr_init(&want, t.name, &t.layout, t.nblocks,
	                        t.block_len, tmp, sizeof(tmp)) != 0 ||
	    want.header_bytes != t.header_bytes ||
	    want.slot_bytes != t.slot_bytes ||
	    want.total_bytes != t.total_bytes) {
		snprintf(why, whylen, "inconsistent sizes (%" PRIu32
		         " blocks of %" PRIu64 " bytes, header %" PRIu32
		         ", total %" PRIu64 ")", t.nblocks, t.block_len,
		         t.header_bytes, t.total_bytes);
		return KVF_ECORRUPT;
	}
	*h = t;
	return 0;
}

int xfer_store_hdr_verify(const struct xfer_store_hdr *h, const void *buf,
                          char *why, size_t whylen)
{
	const unsigned char *p = buf;
	size_t n = XFER_STORE_FIXED_BYTES + 4 * (size_t)h->nblocks;
	unsigned char zero[4] = {0};
	uint32_t want = get32(p + O_HDR_CRC);
	uint32_t c;

	c = xfer_store_crc32c(0, p, O_HDR_CRC);
	c = xfer_store_crc32c(c, zero, 4);
	c = xfer_store_crc32c(c, p + O_HDR_CRC + 4, n - O_HDR_CRC - 4);
	if (c != want) {
		snprintf(why, whylen, "header checksum mismatch (stored "
		         "0x%08" PRIx32 ", computed 0x%08" PRIx32 ")", want, c);
		return KVF_ECORRUPT;
	}
	return 0;
}

uint32_t xfer_store_hdr_block_crc(const void *buf, uint32_t i)
{
	return get32((const unsigned char *)buf + XFER_STORE_FIXED_BYTES +
	             4 * (size_t)i);
}

int xfer_store_name_check(const char *name, char *why, size_t whylen)
{
	size_t n;

	if (!name || !*name) {
		snprintf(why, whylen, "empty object name");
		return KVF_EINVAL;
	}
	n = strnlen(name, XFER_STORE_NAME_MAX + 1);
	if (n > XFER_STORE_NAME_MAX) {
		snprintf(why, whylen, "object name longer than %u bytes",
		         XFER_STORE_NAME_MAX);
		return KVF_EINVAL;
	}
	if (name[0] == '.') {
		snprintf(why, whylen, "object name '%s' starts with '.'",
		         name);
		return KVF_EINVAL;
	}
	if (strstr(name, "..")) {
		snprintf(why, whylen, "object name '%s' contains '..'", name);
		return KVF_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c < 0x21 || c > 0x7e) {
			snprintf(why, whylen, "object name '%.*s' has a bad "
			         "character (0x%02x) at %zu: '/', spaces "
			         "and non-printable bytes are refused",
			         (int)n, name, c, i);
			return KVF_EINVAL;
		}
	}
	return 0;
}

void xfer_store_layout_str(const struct kvf_layout *l, char *buf, size_t len)
{
	snprintf(buf, len, "{layers %" PRIu32 ", blocks %" PRIu32
	         ", block_bytes %" PRIu64 ", layer_stride %" PRIu64
	         ", block_stride %" PRIu64 ", offset %" PRIu64 "}",
	         l->num_layers, l->num_blocks, l->block_bytes,
	         l->layer_stride, l->block_stride, l->offset);
}
