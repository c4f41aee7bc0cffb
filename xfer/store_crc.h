/*
 * xfer/store_crc.h - CRC-32C (Castagnoli) for the KV store's checksums.
 *
 * The SSE4.2 crc32 instruction runs three interleaved streams where the CPU
 * has it; elsewhere a slicing-by-8 table does the work. Both give the same
 * values (the iSCSI / ext4 CRC-32C: init and final xor 0xffffffff).
 * Thread-safe; no setup needed.
 */
#ifndef KVF_XFER_STORE_CRC_H
#define KVF_XFER_STORE_CRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC-32C: crc is 0 for a fresh start or the value a previous
 * call returned for the bytes before buf.
 */
uint32_t xfer_store_crc32c(uint32_t crc, const void *buf, size_t len);

/* The same with the portable table code only (for tests and comparison). */
uint32_t xfer_store_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Whether xfer_store_crc32c uses the crc32 instruction. */
bool xfer_store_crc32c_hw(void);

#endif
