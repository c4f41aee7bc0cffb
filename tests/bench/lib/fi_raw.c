/*
 * tests/bench/lib/fi_raw.c - runs the raw libfabric baseline for
 * kvferry-bench: fi_raw_bench, the program with no kvferry code in it, as
 * a subprocess (tests/tap/proc.h bounds its run), with the provider, op,
 * sizes and window of the measurement it is compared with; its CSV rows
 * are kept so that each kvferry row can look up the raw figure of its
 * size. A missing or failing fi_raw_bench is an error the caller reports:
 * a ratio against nothing would mislead.
 */
#include "tests/bench/lib/fi_raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/tap/proc.h"

uint64_t raw_bw_iters(uint64_t size)
{
	uint64_t it = ((uint64_t)512 << 20) / size;

	return it > 20000 ? 20000 : it < 8 ? 8 : it;
}

int raw_parse_row(const char *line, struct raw_row *row)
{
	struct raw_row r;
	char prov[64];
	unsigned long long size, iters;
	int n;

	r.usec_med = 0;
	n = sscanf(line, "%63[^,],%7[^,],%7[^,],%llu,%llu,%lf,%lf,%lf", prov,
	    r.mode, r.op, &size, &iters, &r.gbps, &r.usec, &r.usec_med);
	if (n != 7 && n != 8)
		return -1;
	r.size = size;
	r.iters = iters;
	*row = r;
	return 0;
}

int raw_bench_run(struct raw_set *set, const char *prov, const char *mode,
    bool read, uint64_t min, uint64_t max, int window, uint64_t footprint,
    bool announce, char *why, size_t whylen)
{
	char bin[600], smin[32], smax[32], win[16], fp[32];
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
	snprintf(fp, sizeof fp, "%llu", (unsigned long long)footprint);
	if (footprint) {
		argv[n++] = "-F";
		argv[n++] = fp;
	}
	argv[n] = NULL;
	if (access(bin, X_OK) != 0) {
		snprintf(why, whylen, "%s: not built (make bench)", bin);
		return -1;
	}
	if (announce)
		fprintf(stderr,
		    "  running fi_raw_bench -p %s -m %s -s %s -S %s "
		    "-w %s%s%s%s\n",
		    prov, mode, smin, smax, win, read ? " -r" : "",
		    footprint ? " -F " : "", footprint ? fp : "");
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
		void *m;

		if (raw_parse_row(l, &row) != 0)
			continue;
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

const struct raw_row *raw_bench_find(
    const struct raw_set *set, const char *mode, const char *op, uint64_t size)
{
	for (int i = 0; i < set->n; i++)
		if (!strcmp(set->rows[i].mode, mode) &&
		    !strcmp(set->rows[i].op, op) && set->rows[i].size == size)
			return &set->rows[i];
	return NULL;
}

int raw_bench_rate(const char *prov, bool read, uint64_t size, int window,
    uint64_t footprint, bool announce, double *gbps, char *why,
    size_t whylen)
{
	struct raw_set set = {0};
	const struct raw_row *r;
	int rc = -1;

	if (raw_bench_run(&set, prov, "bw", read, size, size, window,
	        footprint, announce, why, whylen) != 0)
		return -1;
	r = raw_bench_find(&set, "bw", read ? "read" : "write", size);
	if (r) {
		*gbps = r->gbps;
		rc = 0;
	} else {
		snprintf(why, whylen, "fi_raw_bench gave no row for %s of "
		    "%llu bytes", read ? "read" : "write",
		    (unsigned long long)size);
	}
	raw_set_fini(&set);
	return rc;
}

void raw_set_fini(struct raw_set *set)
{
	free(set->rows);
	set->rows = NULL;
	set->n = 0;
}
