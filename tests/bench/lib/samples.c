/*
 * tests/bench/lib/samples.c - percentiles of timing samples (see
 * samples.h).
 */
#include "tests/bench/lib/samples.h"

#include <stdlib.h>

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

uint64_t bench_pct(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	qsort(v, n, sizeof *v, cmp_u64);
	return v[i < n ? i : n - 1];
}
