/*
 * tests/bench/lib/kv_sweep_out.c - what kvferry-bench -m kv prints: a
 * heading that says what was measured and how (preset, TP split, op,
 * provider, what the time and the ratio mean, the fabric address the
 * prefill sidecar reports), then one fixed-column row per request length
 * and, with -o, the same rows as CSV or one JSON document, on stdout or
 * into a file beside the table. A skipped length gets a row that says
 * why.
 */
#include <inttypes.h>
#include <stdio.h>

#include "tests/bench/lib/kv_sweep_impl.h"

static void kvs_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void kvs_describe(struct kvs *K)
{
	const struct kv_preset *m = K->o.preset;
	const struct kv_shape *ps = &K->eng[0].sh, *ds = &K->eng[K->o.tp_p].sh;

	if (!K->o.table)
		return;
	printf("\n# kv: %s (%s): %u layers, ", m->name, m->model, m->layers);
	if (m->kv_heads)
		printf("%u KV heads x %u, ", m->kv_heads, m->head_dim);
	else
		printf("one latent of %u elements per token, ", m->head_dim);
	printf("%u-byte elements, blocks of %u tokens\n", m->elem,
	    K->o.block_tokens);
	if (!m->kv_heads)
		printf(
		    "# MLA: the latent is not split by TP; every rank holds "
		    "all of it (%" PRIu64 " B per layer-block) and decode "
		    "rank j receives it from prefill rank j mod %u, so "
		    "decode TP %u moves %u copies\n",
		    ps->piece, K->o.tp_p, K->o.tp_d, K->o.tp_d);
	else
		printf("# TP %u:%u: a prefill rank holds %u heads (%" PRIu64
		       " B per layer-block), a decode rank %u (%" PRIu64
		       " B); %s\n",
		    K->o.tp_p, K->o.tp_d, ps->rank_heads, ps->piece,
		    ds->rank_heads, ds->piece,
		    K->o.tp_p == K->o.tp_d
			? "rank i sends whole pieces to rank i "
			  "(kvf_submit_blocks)"
			: "pieces split by heads: kvf_submit, one "
			  "segment per layer, block, K|V and rank pair");
	printf("# %s, provider %s, %u in flight over %u decode peer%s, %u "
	       "rail%s; time: submit to the last decode rank's %s; GB/s = "
	       "all requests' bytes / wall time; ms = median per request, "
	       "max ms = the slowest; "
	       "raw = fi_raw_bench bw %s of one op (piece), window %d, "
	       "walking through a rank pair's request bytes (-F)\n",
	    kvs_op(K), K->o.prov, K->o.conc, K->o.peers,
	    K->o.peers > 1 ? "s" : "", K->o.rails, K->o.rails > 1 ? "s" : "",
	    K->o.read ? "completion" : "notification", kvs_op(K), K->o.window);
	printf("# the prefill sidecar's fabric address (kvferryctl status): "
	       "%s\n",
	    K->fabric_addr);
	printf("%-12s %5s %7s %-5s %4s %5s %5s %12s %8s %7s %5s %9s %9s %8s "
	       "%8s %6s\n",
	    "model", "tp", "tokens", "op", "conc", "peers", "rails", "bytes",
	    "segs", "piece", "iters", "ms", "max ms", "GB/s", "raw GB/s",
	    "ratio");
	fflush(stdout);
}

void kvs_row(struct kvs *K, uint64_t tokens, uint32_t iters, double ms,
    double gbps, double raw, const char *skip)
{
	const struct kv_preset *m = K->o.preset;
	char tp[16], note[600];
	FILE *f = K->o.mout;

	snprintf(tp, sizeof tp, "%u:%u", K->o.tp_p, K->o.tp_d);
	if (skip)
		snprintf(note, sizeof note, "skipped: %s", skip);
	else
		snprintf(note, sizeof note, "%s%s%s%s",
		    m->kv_heads ? ""
				: "mla: latent not split by TP, decode rank "
				  "j <- prefill rank j mod p",
		    !m->kv_heads && K->rail_pct[0] ? "; " : "",
		    K->rail_pct[0] ? "bytes per rail (%): " : "", K->rail_pct);
	if (K->o.table) {
		printf("%-12s %5s %7" PRIu64 " %-5s %4u %5u %5u ", m->name, tp,
		    tokens, kvs_op(K), K->o.conc, K->o.peers, K->o.rails);
		if (skip)
			printf("skipped: %s\n", skip);
		else if (raw > 0)
			printf("%12" PRIu64 " %8" PRIu64 " %7" PRIu64
			       " %5u %9.3f %9.3f %8.3f %8.3f %6.2f\n",
			    K->req_bytes, K->req_segs, K->op_bytes, iters, ms,
			    K->max_ms, gbps, raw, gbps / raw);
		else
			printf("%12" PRIu64 " %8" PRIu64 " %7" PRIu64
			       " %5u %9.3f %9.3f %8.3f %8s %6s\n",
			    K->req_bytes, K->req_segs, K->op_bytes, iters, ms,
			    K->max_ms, gbps, "-", "-");
		if (!skip && K->rail_pct[0])
			printf("#   bytes per rail (%%, all sidecars): %s\n",
			    K->rail_pct);
		fflush(stdout);
	}
	if (K->o.fmt == KVS_CSV) {
		if (!K->mout_started)
			fprintf(f, "model,tp,tokens,op,conc,peers,rails,bytes,"
				   "segs,piece,iters,ms,max_ms,gbps,raw_gbps,"
				   "ratio,"
				   "note\n");
		K->mout_started = true;
		fprintf(f, "%s,%s,%" PRIu64 ",%s,%u,%u,%u,", m->name, tp,
		    tokens, kvs_op(K), K->o.conc, K->o.peers, K->o.rails);
		if (skip)
			fprintf(f, ",,,,,,,,,");
		else {
			fprintf(f,
			    "%" PRIu64 ",%" PRIu64 ",%" PRIu64
			    ",%u,%.3f,%.3f,%.3f,",
			    K->req_bytes, K->req_segs, K->op_bytes, iters, ms,
			    K->max_ms, gbps);
			if (raw > 0)
				fprintf(f, "%.3f,%.3f,", raw, gbps / raw);
			else
				fprintf(f, ",,");
		}
		/* Commas are the only character the note could break. */
		for (char *c = note; *c; c++)
			if (*c == ',')
				*c = ';';
		fprintf(f, "%s\n", note);
	} else if (K->o.fmt == KVS_JSON) {
		if (!K->mout_started) {
			fprintf(f, "{\"bench\": \"kvferry-bench\", \"mode\": "
				   "\"kv\", \"provider\": ");
			kvs_json_str(f, K->o.prov);
			fprintf(f,
			    ", \"preset\": {\"name\": \"%s\", "
			    "\"model\": \"%s\", \"layers\": %u, "
			    "\"kv_heads\": %u, \"head_dim\": %u, "
			    "\"elem_bytes\": %u, \"mla\": %s}, "
			    "\"block_tokens\": %u, \"raw_window\": %d, "
			    "\"fabric_addr\": ",
			    m->name, m->model, m->layers, m->kv_heads,
			    m->head_dim, m->elem,
			    m->kv_heads ? "false" : "true", K->o.block_tokens,
			    K->o.window);
			kvs_json_str(f, K->fabric_addr);
			fprintf(f, ",\n \"rows\": [\n");
		} else {
			fprintf(f, ",\n");
		}
		K->mout_started = true;
		fprintf(f,
		    "  {\"model\": \"%s\", \"tp\": \"%s\", "
		    "\"prefill_tp\": %u, \"decode_tp\": %u, \"tokens\": "
		    "%" PRIu64 ", \"op\": \"%s\", \"conc\": %u, "
		    "\"peers\": %u, \"rails\": %u",
		    m->name, tp, K->o.tp_p, K->o.tp_d, tokens, kvs_op(K),
		    K->o.conc, K->o.peers, K->o.rails);
		if (skip) {
			fprintf(f, ", \"skipped\": ");
			kvs_json_str(f, skip);
		} else {
			fprintf(f,
			    ", \"bytes\": %" PRIu64 ", \"segs\": %" PRIu64
			    ", \"piece\": %" PRIu64 ", \"iters\": %u, "
			    "\"ms\": %.3f, \"max_ms\": %.3f, \"gbps\": %.3f",
			    K->req_bytes, K->req_segs, K->op_bytes, iters, ms,
			    K->max_ms, gbps);
			if (raw > 0)
				fprintf(f,
				    ", \"raw_gbps\": %.3f, \"ratio\": "
				    "%.3f",
				    raw, gbps / raw);
			else
				fprintf(f, ", \"raw_gbps\": null, \"ratio\": "
					   "null");
			fprintf(f, ", \"note\": ");
			kvs_json_str(f, note);
		}
		fprintf(f, "}");
	}
	if (f)
		fflush(f);
}
