/* The submission-record validator: well-formed records pass, every inconsistent count is refused with a reason. */
#include <stdlib.h>
#include <string.h>

#include "ipc/wire.h"
#include "tests/tap/tap.h"

int main(void)
{
	uint64_t storage[1024];
	struct ipc_sub_xfer *h = (void *)storage;
	struct ipc_xfer_view v;
	char err[200];
	size_t len = ipc_sub_xfer_size(5, IPC_SEG_BYTES, 3);

	plan(10);
	memset(storage, 0, sizeof storage);
	h->xfer_id = 7;
	h->op = KVF_WRITE;
	h->mode = IPC_SEG_BYTES;
	h->tag_len = 5;
	h->nseg = 3;
	memcpy(h + 1, "hello", 5);
	is_int(ipc_wire_parse_xfer(h, len, &v, err, sizeof err), 0,
	       "well-formed record accepted");
	is_blob(v.tag, "hello", 5, "tag located");
	ok((const char *)v.segs == (const char *)(h + 1) + 8,
	   "segments after the padded tag");
	is_int(ipc_wire_parse_xfer(h, len - 8, &v, err, sizeof err), KVF_EPROTO,
	       "short record refused");
	like(err, "record is", "message says the length disagrees");
	h->nseg = 0;
	is_int(ipc_wire_parse_xfer(h, len, &v, err, sizeof err), KVF_EPROTO,
	       "zero segments refused");
	h->nseg = 3;
	h->op = 9;
	is_int(ipc_wire_parse_xfer(h, len, &v, err, sizeof err), KVF_EPROTO,
	       "unknown op refused");
	like(err, "unknown op 9", "message names the op");
	h->op = KVF_READ;
	h->tag_len = KVF_MAX_TAG + 1;
	is_int(ipc_wire_parse_xfer(h, len, &v, err, sizeof err), KVF_EPROTO,
	       "oversized tag refused");
	h->tag_len = 0;
	h->mode = IPC_SEG_BLOCKS;
	is_int(ipc_wire_parse_xfer(h, ipc_sub_xfer_size(0, IPC_SEG_BLOCKS, 3),
	                           &v, err, sizeof err),
	       0, "block-pair record accepted");
	return tap_exit_status();
}
