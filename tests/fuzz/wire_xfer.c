/*
 * tests/fuzz/wire_xfer.c - libFuzzer target for ipc_wire_parse_xfer, the
 * sidecar's validator of submission records an engine writes into its
 * ring. The input is the record exactly as ipc_ring_pop copies it out (in
 * a heap buffer of its own size, so AddressSanitizer sees any read past
 * it); an accepted record has every tag byte and segment read, as the
 * progress thread would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_xfer_view v;
	char err[256];
	uint64_t sum = 0;
	/* malloc is 16-byte aligned, as the sidecar's copy-out buffer is. */
	uint8_t *rec = malloc(size ? size : 1);

	if (!rec)
		return 0;
	memcpy(rec, data, size);
	if (ipc_wire_parse_xfer(rec, size, &v, err, sizeof err) == 0) {
		const struct ipc_sub_xfer *h = v.hdr;
		for (uint32_t i = 0; i < h->tag_len; i++)
			sum += v.tag[i];
		for (uint32_t i = 0; i < h->nseg; i++) {
			if (h->mode == IPC_SEG_BYTES)
				sum += v.segs[i].length + v.segs[i].local_offset +
				       v.segs[i].remote_offset +
				       v.segs[i].local_region;
			else
				sum += v.pairs[i].local + v.pairs[i].remote;
		}
		if (ipc_sub_xfer_size(h->tag_len, h->mode, h->nseg) != size)
			abort(); /* accepted a record its counts disagree with */
	} else if (!err[0]) {
		abort(); /* refused without saying why */
	}
	free(rec);
	return (int)(sum & 0);
}
