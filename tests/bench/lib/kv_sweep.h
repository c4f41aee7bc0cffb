/*
 * tests/bench/lib/kv_sweep.h - kvferry-bench -m kv: KV-shaped requests of
 * a model preset (kv_shape.h) over a sweep of request lengths, with
 * tensor parallelism on each side, requests in flight, decode peers and
 * rails, against the raw libfabric baseline. How it works is told at the
 * top of kv_sweep.c; kv_sweep_impl.h holds what its files share.
 *
 * kvferry_bench.c's main() collects the -m kv options as given
 * (struct kvs_args), checks them into struct kvs_opts with
 * kvs_opts_parse() and runs kv_sweep_main().
 */
#ifndef KVF_BENCH_KV_SWEEP_H
#define KVF_BENCH_KV_SWEEP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tests/bench/lib/kv_shape.h"

#define KVS_MAX_LENGTHS 32
#define KVS_MAX_EXTRA 16

enum kvs_fmt { KVS_TABLE, KVS_CSV, KVS_JSON };

struct kvs_opts {
	const char *prov;
	const struct kv_preset *preset;
	uint32_t block_tokens;
	uint32_t tp_p, tp_d;
	uint64_t lengths[KVS_MAX_LENGTHS];
	int nlengths;
	bool read;
	uint32_t conc, peers, rails;
	uint32_t iters;                   /* 0: by request size */
	const char *extra[KVS_MAX_EXTRA]; /* -A, split at blanks */
	int nextra;
	int window; /* the raw baseline's */
	bool no_raw;
	enum kvs_fmt fmt; /* machine-readable format, KVS_TABLE: none */
	FILE *mout;       /* where it goes (stdout or a file) */
	bool table;       /* the fixed-column table on stdout */
};

/* The -m kv options as given (NULL: not given). */
struct kvs_args {
	const char *preset, *block, *tp, *lengths, *conc, *peers, *rails,
	    *iters, *fmt;
	char *extra; /* split in place: must outlive the run */
	bool any;
};

/*
 * Check a's options, with kvferry-bench's -p, -w, -R and -x (only: NULL,
 * "write" or "read"), and fill k. Returns 0, or the usage status (2) with
 * a message on stderr. With -o FMT:FILE, k->mout is FILE opened for
 * writing: the caller closes it after the run.
 */
int kvs_opts_parse(struct kvs_opts *k, const struct kvs_args *a,
    const char *prov, int window, bool no_raw, const char *only);

/* The -m kv part of kvferry-bench's usage. */
void kvs_usage(FILE *f);

/* Run the sweep o describes (sidecars from $KVF_BUILD/bin, which must be
 * set: kv_find_build); the exit status. A failed step ends the program
 * (bench_die) after stopping the sidecars. */
int kv_sweep_main(const struct kvs_opts *o);

#endif
