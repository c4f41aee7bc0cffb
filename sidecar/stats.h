/*
 * sidecar/stats.h - transfer statistics the progress thread records and
 * the control server and metrics endpoint read: latency histogram, bytes
 * and errors by kind. Lock-free counters; readers see a consistent enough
 * picture for monitoring, not a snapshot.
 */
#ifndef KVF_SIDECAR_STATS_H
#define KVF_SIDECAR_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "client/kvferry.h"

/* Upper bounds of the latency buckets in microseconds; the last bucket
 * (+Inf) follows them. */
#define SC_LAT_BUCKETS 18
extern const uint64_t sc_lat_bounds_us[SC_LAT_BUCKETS];

struct sc_stats {
	_Atomic uint64_t lat_bucket[SC_LAT_BUCKETS + 1];
	_Atomic uint64_t lat_sum_ns;
	_Atomic uint64_t lat_count;
	_Atomic uint64_t write_bytes;
	_Atomic uint64_t read_bytes;
	_Atomic uint64_t writes;
	_Atomic uint64_t reads;
	_Atomic uint64_t notifs_sent;
	_Atomic uint64_t notifs_received;
	/* WRITEs carried inside their notification (sidecar/xfer_inline.c):
	 * sent, applied here, and refused here. */
	_Atomic uint64_t inline_sent;
	_Atomic uint64_t inline_received;
	_Atomic uint64_t inline_dropped;
	/* Wake-ups sent to peers with our operations in flight to them, and
	 * received from peers (sidecar/xfer_wake.c). */
	_Atomic uint64_t wakeups_sent;
	_Atomic uint64_t wakeups_received;
	/* Region-gone messages sent to peers, and received from them
	 * (sidecar/xfer_gone.c). */
	_Atomic uint64_t regions_gone_sent;
	_Atomic uint64_t regions_gone_received;
	_Atomic uint64_t errors[KVF_ERR_COUNT]; /* by KVF_E* code */
};

/* A transfer ended (progress thread). op is enum kvf_op. */
void sc_stats_xfer_done(struct sc_stats *s, int op, uint64_t bytes,
                        uint64_t ns, int status);

#endif
