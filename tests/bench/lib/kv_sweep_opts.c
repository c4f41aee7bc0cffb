/*
 * tests/bench/lib/kv_sweep_opts.c - the options of kvferry-bench -m kv:
 * the model preset, block size, TP degrees, request lengths, requests in
 * flight, decode peers, rails, extra sidecar arguments, iterations and
 * the output format, each checked against its limits with a message that
 * names the option, and the -m kv part of the usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/kv_sweep_impl.h"

/* "p:d", each 1..KVS_MAX_TP. */
static int kvs_parse_tp(const char *s, uint32_t *p, uint32_t *d)
{
	unsigned a, b;
	char end;

	if (sscanf(s, "%u:%u%c", &a, &b, &end) != 2 || a < 1 || b < 1 ||
	    a > KVS_MAX_TP || b > KVS_MAX_TP)
		return -1;
	*p = a;
	*d = b;
	return 0;
}

/* Comma-separated token counts, k suffix allowed (32k = 32768). */
static int kvs_parse_lengths(struct kvs_opts *o, const char *s)
{
	char buf[512], *save = NULL;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	o->nlengths = 0;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long long v = strtoull(t, &end, 10);

		if (*end == 'k' || *end == 'K') {
			v <<= 10;
			end++;
		}
		if (end == t || *end || v < 1 || v > KVS_MAX_TOKENS ||
		    o->nlengths == KVS_MAX_LENGTHS)
			return -1;
		o->lengths[o->nlengths++] = v;
	}
	return o->nlengths ? 0 : -1;
}

/* -A: split at blanks into o->extra; s must outlive the run. */
static int kvs_parse_extra(struct kvs_opts *o, char *s)
{
	o->nextra = bench_split_words(s, o->extra, KVS_MAX_EXTRA);
	return o->nextra < 0 ? -1 : 0;
}

int kvs_opts_parse(struct kvs_opts *k, const struct kvs_args *a,
    const char *prov, int window, bool no_raw, const char *only)
{
	const struct kv_preset *m;
	int rc;

	memset(k, 0, sizeof *k);
	k->prov = prov;
	k->window = window;
	k->no_raw = no_raw;
	k->block_tokens = 16;
	k->tp_p = k->tp_d = 1;
	k->conc = k->peers = k->rails = 1;
	k->table = true;
	k->preset = kv_preset_at(0);
	if (a->preset && !(k->preset = kv_preset_find(a->preset))) {
		fprintf(stderr,
		    "%s: -M '%s': no such preset; there are:", bench_prog(),
		    a->preset);
		for (size_t i = 0; kv_preset_at(i); i++)
			fprintf(stderr, " %s", kv_preset_at(i)->name);
		fputc('\n', stderr);
		return 2;
	}
	m = k->preset;
	if ((a->block && (rc = bench_num_u32(
			      "-B", a->block, 1, 4096, &k->block_tokens))) ||
	    (a->conc && (rc = bench_num_u32(
			     "-c", a->conc, 1, KVS_MAX_CONC, &k->conc))) ||
	    (a->peers && (rc = bench_num_u32(
			      "-P", a->peers, 1, KVS_MAX_PEERS, &k->peers))) ||
	    (a->rails && (rc = bench_num_u32(
			      "-r", a->rails, 1, KVS_MAX_RAILS, &k->rails))) ||
	    (a->iters &&
		(rc = bench_num_u32("-i", a->iters, 1, 100000, &k->iters))))
		return rc;
	if (a->tp && kvs_parse_tp(a->tp, &k->tp_p, &k->tp_d) != 0)
		return bench_bad("-T", a->tp,
		    "want prefill_tp:decode_tp, each "
		    "1..64");
	if (m->kv_heads &&
	    (m->kv_heads % k->tp_p != 0 || m->kv_heads % k->tp_d != 0)) {
		bench_err("-T %u:%u: %s has %u KV heads, which each TP "
			  "degree must divide",
		    k->tp_p, k->tp_d, m->name, m->kv_heads);
		return 2;
	}
	if (kvs_parse_lengths(
		k, a->lengths ? a->lengths : "128,512,2048,8192,32768") != 0)
		return bench_bad("-L", a->lengths,
		    "want up to 32 token counts, "
		    "1..1048576, comma-separated");
	if (only && strcmp(only, "write") && strcmp(only, "read"))
		return bench_bad("-x", only, "-m kv wants write or read");
	k->read = only && !strcmp(only, "read");
	if (a->extra && kvs_parse_extra(k, a->extra) != 0)
		return bench_bad("-A", a->extra, "at most 16 arguments");
	if (a->fmt) {
		const char *colon = strchr(a->fmt, ':');
		size_t n = colon ? (size_t)(colon - a->fmt) : strlen(a->fmt);

		if (n == 3 && !strncmp(a->fmt, "csv", 3))
			k->fmt = KVS_CSV;
		else if (n == 4 && !strncmp(a->fmt, "json", 4))
			k->fmt = KVS_JSON;
		else if (!(n == 5 && !strncmp(a->fmt, "table", 5)) || colon)
			return bench_bad("-o", a->fmt,
			    "want table, csv, json, "
			    "csv:FILE or json:FILE");
		k->mout = stdout;
		k->table = k->fmt == KVS_TABLE;
		if (colon) {
			k->table = true;
			k->mout = fopen(colon + 1, "w");
			if (!k->mout) {
				bench_err(
				    "-o %s: %s", a->fmt, strerror(errno));
				return 2;
			}
		}
	}
	return 0;
}

/* The -m kv part of kvferry-bench's usage. */
void kvs_usage(FILE *f)
{
	fprintf(f, "-m kv, KV-shaped requests of a model:\n"
		   "  -M  preset:");
	for (size_t i = 0; kv_preset_at(i); i++)
		fprintf(
		    f, " %s%s", kv_preset_at(i)->name, i ? "" : " (default)");
	fprintf(f,
	    "\n"
	    "  -B  tokens per block (default 16)\n"
	    "  -T  prefill_tp:decode_tp, one engine per rank (default "
	    "1:1)\n"
	    "  -L  request lengths in tokens, k allowed (default "
	    "128,512,2048,8192,32768)\n"
	    "  -c  requests in flight (default 1)\n"
	    "  -P  decode sidecars, each with decode_tp engines; requests "
	    "round-robin (default 1)\n"
	    "  -r  rails: each sidecar gets --fabric-addr with that many "
	    "addresses (default 1: none)\n"
	    "  -A  extra arguments for every sidecar, one string split at "
	    "blanks\n"
	    "  -i  timed requests per length (default about 1 GiB, 4..64, "
	    "at least 2 x -c)\n");
}
