/*
 * xfer/store_format.h - the on-disk format of a stored KV object.
 *
 * A file <name>.kvs holds a header then the blocks:
 *
 *   [0, 512)                 fixed part: magic "KVFSTORE", version, sizes,
 *                            the saver's KV layout, the name, a CRC-32C of
 *                            the whole header (taken with that field zero)
 *   [512, 512 + 4 * n)       CRC-32C of each block, little-endian
 *   [header_bytes, ...)      block i at header_bytes + i * slot_bytes
 *
 * header_bytes and slot_bytes are multiples of XFER_STORE_ALIGN so every
 * block can move with O_DIRECT. All integers are little-endian.
 */
#ifndef KVF_XFER_STORE_FORMAT_H
#define KVF_XFER_STORE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"

#define XFER_STORE_MAGIC "KVFSTORE"
#define XFER_STORE_VERSION 1u
/* Alignment of the header size and of each block's slot in the file. */
#define XFER_STORE_ALIGN 4096u
/* Bytes of the fixed part of the header; the per-block CRCs follow. */
#define XFER_STORE_FIXED_BYTES 512u
/* Longest object name, in bytes, without the terminating NUL. */
#define XFER_STORE_NAME_MAX 200u
/* File name suffix of stored objects, prefix of temporary files. */
#define XFER_STORE_SUFFIX ".kvs"
#define XFER_STORE_TMP_PREFIX ".tmp."

struct xfer_store_hdr {
	uint32_t version;
	uint32_t header_bytes;
	uint32_t nblocks;
	uint64_t block_len;
	uint64_t slot_bytes;
	uint64_t total_bytes; /* the file's size */
	uint64_t created_ns;  /* CLOCK_REALTIME of the save */
	struct kvf_layout layout;
	char name[XFER_STORE_NAME_MAX + 1];
};

/*
 * Fill h for an object of nblocks blocks of block_len bytes. KVF_EINVAL
 * when the sizes overflow the format (the reason goes into why).
 */
int xfer_store_hdr_init(struct xfer_store_hdr *h, const char *name,
                        const struct kvf_layout *layout, uint32_t nblocks,
                        uint64_t block_len, char *why, size_t whylen);

/* Offset of block i in the file. */
static inline uint64_t xfer_store_block_off(const struct xfer_store_hdr *h,
                                            uint32_t i)
{
	return h->header_bytes + (uint64_t)i * h->slot_bytes;
}

/*
 * Write the header into buf (h->header_bytes, zero filled here), with the
 * block CRCs crcs[0..nblocks) and the header's own CRC.
 */
void xfer_store_hdr_encode(const struct xfer_store_hdr *h,
                           const uint32_t *crcs, void *buf);

/*
 * Parse the fixed part (buf holds at least XFER_STORE_FIXED_BYTES) into h
 * and check magic, version and that the sizes agree with each other.
 * KVF_ECORRUPT with the reason in why otherwise. The CRC is not checked:
 * the caller reads h->header_bytes then calls xfer_store_hdr_verify.
 */
int xfer_store_hdr_decode(const void *buf, size_t len,
                          struct xfer_store_hdr *h, char *why, size_t whylen);

/* Check the header CRC over buf[0, header_bytes). KVF_ECORRUPT if wrong. */
int xfer_store_hdr_verify(const struct xfer_store_hdr *h, const void *buf,
                          char *why, size_t whylen);

/* The stored CRC of block i from an encoded header. */
uint32_t xfer_store_hdr_block_crc(const void *buf, uint32_t i);

/*
 * Whether name is a valid object name: 1..XFER_STORE_NAME_MAX bytes of
 * printable ASCII without '/', not starting with '.', not containing "..".
 * KVF_EINVAL with the reason otherwise.
 */
int xfer_store_name_check(const char *name, char *why, size_t whylen);

/* "L=.. B=.. bytes=.. lstride=.. bstride=.. off=.." for messages. */
void xfer_store_layout_str(const struct kvf_layout *l, char *buf, size_t len);

#endif
