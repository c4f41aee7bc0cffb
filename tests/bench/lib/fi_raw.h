/*
 * tests/bench/lib/fi_raw.h - the raw libfabric baseline as kvferry-bench
 * runs it: fi_raw_bench (built next to it, in $KVF_BUILD/tests/bench) as
 * a subprocess with a provider, a size range, a window and an op, its CSV
 * rows parsed into a growing set that the rows of a run look sizes up in.
 */
#ifndef KVF_BENCH_FI_RAW_H
#define KVF_BENCH_FI_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One row of fi_raw_bench's CSV. usec: bandwidth mode, time per op;
 * latency mode, half the round trip's mean. usec_med: latency mode only
 * (else 0), the median one-way time of the write+notify itself. */
struct raw_row {
	char mode[8], op[8];
	uint64_t size, iters;
	double gbps, usec, usec_med;
};

/* Rows of every run so far; zero-initialised before the first. */
struct raw_set {
	struct raw_row *rows;
	int n;
};

/* Iterations of one size in bandwidth mode: about 512 MiB moved, 8 to
 * 20000. fi_raw_bench's, and kvferry-bench -m bw's so that both move
 * about as many bytes. */
uint64_t raw_bw_iters(uint64_t size);

/* A line of fi_raw_bench -o csv (provider,mode,op,size,iters,gbps,usec
 * and, in latency mode, usec_med) into *row: 0, or -1 (row untouched) when it is not one, as the header
 * line is not. */
int raw_parse_row(const char *line, struct raw_row *row);

/*
 * Run fi_raw_bench -p prov -m mode -s min -S max -w window [-r] [-F
 * footprint] -o csv and append its rows to set (footprint 0: none, every
 * op at offset 0, from cache). announce: say on stderr what runs. Returns 0,
 * or -1 with why filled (not built, failed, timed out, out of memory).
 * Blocks up to 10 minutes.
 */
int raw_bench_run(struct raw_set *set, const char *prov, const char *mode,
    bool read, uint64_t min, uint64_t max, int window, uint64_t footprint,
    bool announce, char *why, size_t whylen);

/* The row of that mode ("bw", "lat"), op ("write", "read") and size, or
 * NULL. */
const struct raw_row *raw_bench_find(const struct raw_set *set,
    const char *mode, const char *op, uint64_t size);

/* Free the rows; the set is empty again. */
void raw_set_fini(struct raw_set *set);

/*
 * The raw bandwidth (GB/s) of ops of size bytes, WRITE or READ, window in
 * flight, walking through footprint bytes (0: none): one fi_raw_bench run
 * (raw_bench_run) and its one row. Returns 0 with *gbps, or -1 with why
 * filled (the run failed, or it gave no such row).
 */
int raw_bench_rate(const char *prov, bool read, uint64_t size, int window,
    uint64_t footprint, bool announce, double *gbps, char *why,
    size_t whylen);

#endif
