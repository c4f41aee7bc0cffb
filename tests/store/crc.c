/* tests/store/crc.c - CRC-32C: known values, hardware and table agree. */
#include "tests/store/store_test.h"
#include "xfer/store_crc.h"

int main(void)
{
	static unsigned char buf[70000 + 64];
	int bad = 0;

	plan(6);
	is_int(xfer_store_crc32c(0, "123456789", 9), 0xe3069283,
	       "crc32c(\"123456789\") is the standard check value");
	is_int(xfer_store_crc32c_sw(0, "123456789", 9), 0xe3069283,
	       "table code gives the check value");
	memset(buf, 0, 32);
	is_int(xfer_store_crc32c(0, buf, 32), 0x8a9136aa,
	       "32 zero bytes (RFC 3720 vector)");
	memset(buf, 0xff, 32);
	is_int(xfer_store_crc32c(0, buf, 32), 0x62a8ab43,
	       "32 0xff bytes (RFC 3720 vector)");
	tp_pattern_fill(buf, sizeof(buf), 7);
	for (size_t len = 0; len < 70000; len += len < 300 ? 1 : 997)
		for (size_t off = 0; off < 9; off += 4)
			if (xfer_store_crc32c(0, buf + off, len) !=
			    xfer_store_crc32c_sw(0, buf + off, len))
				bad++;
	is_int(bad, 0, "fast path (%s) equals table code on lengths "
	       "0..70000 at several offsets",
	       xfer_store_crc32c_hw() ? "sse4.2" : "table");
	uint32_t c = xfer_store_crc32c(0, buf, 12345);
	c = xfer_store_crc32c(c, buf + 12345, 40000);
	is_int(c, xfer_store_crc32c(0, buf, 52345), "chained calls equal one");
	return tap_exit_status();
}
