/*
 * tests/bench/fi_raw.h - the raw libfabric baseline as kvferry-bench runs
 * it: fi_raw_bench (built next to it, in $KVF_BUILD/tests/bench) as a
 * subprocess with a provider, a size range, a window and an op, its CSV
 * rows parsed into a growing set that the rows of a run look sizes up in.
 *
 * Header-only (static functions) because each .c file in tests/bench is a
 * program of its own.
 */
#ifndef KVF_BENCH_FI_RAW_H
#define KVF_BENCH_FI_RAW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/tap/proc.h"

/* One row of fi_raw_bench's CSV. */
struct raw_row {
	char mode[8], op[8];
	uint64_t size, iters;
	double gbps, usec;
};

struct raw_set {
	struct raw_row *rows;
	int n;
};

/*
 * Run fi_raw_bench -p prov -m mode -s min -S max -w window [-r] -o csv and
 * append its rows to set. announce: say on stderr what runs. Returns 0,
 * or -1 with why filled (not built, failed, timed out, out of memory).
 * Blocks up to 10 minutes.
 */
static inline int raw_bench_run(struct raw_set *set, const char *prov,
    const char *mode, bool read, uint64_t min, uint64_t max, int window,
    bool announce, char *why, size_t whylen)
{
	char bin[600], smin[32], smax[32], win[16];
	const char *argv[16];
	struct tp_run r;
	int n = 0, rc = 0;

	snprintf(bin, sizeof bin, "%s/tests/bench/fi_raw_bench",
	    getenv("KVF_BUILD"));
	snprintf(smin, sizeof smin, "%llu", (unsigned long long)min);
	snprintf(smax, sizeof smax, "%llu", (unsigned long long)max);
	snprintf(win, sizeof win, "%d", window);
	argv[n++] = bin;
	argv[n++] = "-p";
	argv[n++] = prov;
	argv[n++] = "-m";
	argv[n++] = mode;
	argv[n++] = "-s";
	argv[n++] = smin;
	argv[n++] = "-S";
	argv[n++] = smax;
	argv[n++] = "-w";
	argv[n++] = win;
	argv[n++] = "-o";
	argv[n++] = "csv";
	if (read)
		argv[n++] = "-r";
	argv[n] = NULL;
	if (access(bin, X_OK) != 0) {
		snprintf(why, whylen, "%s: not built (make bench)", bin);
		return -1;
	}
	if (announce)
		fprintf(stderr,
		    "  running fi_raw_bench -p %s -m %s -s %s -S %s "
		    "-w %s%s\n",
		    prov, mode, smin, smax, win, read ? " -r" : "");
	if (tp_run(&r, 600000, NULL, argv) != 0) {
		snprintf(why, whylen, "%s could not start", bin);
		return -1;
	}
	if (r.status != 0 || r.timed_out) {
		snprintf(why, whylen,
		    "fi_raw_bench %s%s failed (status %d%s): "
		    "%s",
		    mode, read ? " -r" : "", r.status,
		    r.timed_out ? ", timed out" : "", r.err);
		tp_run_free(&r);
		return -1;
	}
	for (char *save = NULL, *l = strtok_r(r.out, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		struct raw_row row;
		char p[64];
		unsigned long long size, iters;
		void *m;

		if (sscanf(l, "%63[^,],%7[^,],%7[^,],%llu,%llu,%lf,%lf", p,
			row.mode, row.op, &size, &iters, &row.gbps,
			&row.usec) != 7)
			continue;
		row.size = size;
		row.iters = iters;
		m = realloc(set->rows, (set->n + 1) * sizeof *set->rows);
		if (!m) {
			snprintf(why, whylen, "out of memory");
			rc = -1;
			break;
		}
		set->rows = m;
		set->rows[set->n++] = row;
	}
	tp_run_free(&r);
	return rc;
}

static inline const struct raw_row *raw_bench_find(
    const struct raw_set *set, const char *mode, const char *op, uint64_t size)
{
	for (int i = 0; i < set->n; i++)
		if (!strcmp(set->rows[i].mode, mode) &&
		    !strcmp(set->rows[i].op, op) && set->rows[i].size == size)
			return &set->rows[i];
	return NULL;
}

static inline void raw_set_fini(struct raw_set *set)
{
	free(set->rows);
	set->rows = NULL;
	set->n = 0;
}

#endif
