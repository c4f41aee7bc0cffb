/*
 * sidecar/stats.c - recording into the histogram: exponential buckets from
 * 10 µs to about 1.3 s, which covers a 4 KiB notification on a fast fabric
 * up to a large KV transfer on a slow one.
 */
#include "sidecar/stats.h"

const uint64_t sc_lat_bounds_us[SC_LAT_BUCKETS] = {
	10,    20,    50,     100,    200,    500,    1000,    2000,    5000,
	10000, 20000, 50000, 100000, 200000, 500000, 1000000, 2000000, 5000000,
};

void sc_stats_xfer_done(struct sc_stats *s, int op, uint64_t bytes,
                        uint64_t ns, int status)
{
	uint64_t us = ns / 1000;
	int b = 0;

	if (status != 0) {
		if (status > 0 && status < KVF_ERR_COUNT)
			atomic_fetch_add_explicit(&s->errors[status], 1,
			                          memory_order_relaxed);
		return;
	}
	while (b < SC_LAT_BUCKETS && us > sc_lat_bounds_us[b])
		b++;
	atomic_fetch_add_explicit(&s->lat_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->lat_sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->lat_count, 1, memory_order_relaxed);
	if (op == KVF_WRITE) {
		atomic_fetch_add_explicit(&s->write_bytes, bytes,
		                          memory_order_relaxed);
		atomic_fetch_add_explicit(&s->writes, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&s->read_bytes, bytes,
		                          memory_order_relaxed);
		atomic_fetch_add_explicit(&s->reads, 1, memory_order_relaxed);
	}
}
