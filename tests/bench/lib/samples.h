/*
 * tests/bench/lib/samples.h - percentiles of timing samples, the one rule
 * the benchmarks report medians and p99s by (fi_raw_bench's one-way
 * median as kvferry-bench's latencies).
 */
#ifndef KVF_BENCH_SAMPLES_H
#define KVF_BENCH_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

/* The p-quantile (0..1) of v[0..n), n > 0: the sample at rank
 * round(p * (n - 1)) once sorted. Sorts v in place. */
uint64_t bench_pct(uint64_t *v, size_t n, double p);

#endif
