/*
 * tests/bench/kv_sweep.h - kvferry-bench -m kv: KV-shaped requests of a
 * model preset (kv_shape.h) over a sweep of request lengths, with tensor
 * parallelism on each side, requests in flight, decode peers and rails.
 * Included by kvferry_bench.c only: a file of its own to keep that one
 * readable, a header because each .c in tests/bench is its own program.
 *
 * Processes: one prefill sidecar and -P decode sidecars, started with the
 * provider, --fabric-addr for -r rails and the -A arguments. One engine
 * per TP rank, each its own kvf_client: prefill TP p engines on the
 * prefill sidecar, decode TP d engines on each decode sidecar, all in
 * this process so submit and arrival are timed on one clock.
 *
 * A rank holds kv_heads/tp heads: per layer [blocks][K,V][heads/tp]
 * [block_tokens][head_dim]. With p == d rank i sends whole pieces to rank
 * i (kvf_submit_blocks). With p != d the pieces are split or joined by
 * heads: a kvf_submit of one segment per (layer, block, K or V) for every
 * prefill/decode rank pair whose heads overlap, the stride pattern a real
 * connector would post. MLA (kv_heads 0) caches one latent per token that
 * TP does not split: every rank holds it all, and decode rank j receives
 * it from prefill rank j mod p, so decode TP d moves d copies.
 *
 * A request of L tokens is ceil(L/B) blocks. The prefill ranks hold one
 * request's blocks (the source every request reads); each decode engine
 * holds ceil(c/P) request slots whose blocks are handed out top down, as
 * in kv_decode_block, so nothing merges: one operation per piece. Up to
 * -c requests are in flight, spread round-robin over the peers; a WRITE
 * is pushed by the prefill ranks and ends at the last decode rank's
 * notification, a READ is pulled by the decode ranks and ends at their
 * last completion. One request per peer warms up and is checked in full;
 * then the timed requests run, and every slot they wrote is checked in
 * full again: a wrong byte ends the run before its row is printed.
 *
 * The raw baseline, fi_raw_bench with the same provider and op, runs once
 * at the start with the size of one operation on the wire (the piece, or
 * the part of it a rank pair moves) and a window of -w.
 */
#ifndef KVF_BENCH_KV_SWEEP_H
#define KVF_BENCH_KV_SWEEP_H

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/bench/fi_raw.h"
#include "tests/bench/kv_shape.h"
#include "tests/tap/proc.h"

#define KVS_PROG "kvferry-bench"
#define KVS_SEED 0x6b7673776565702bull
#define KVS_MAX_LENGTHS 32
#define KVS_MAX_EXTRA 16
#define KVS_MAX_TP 64u
#define KVS_MAX_PEERS 16u
#define KVS_MAX_RAILS 16u
#define KVS_MAX_CONC 256u
#define KVS_MAX_TOKENS (1u << 20)
/* A byte-segment transfer carries at most this many segments (512 KiB of
 * submission ring); longer requests become several transfers per rank
 * pair, each with its own notification. */
#define KVS_SEGS_PER_XFER 16384u
#define KVS_BLOCKS_PER_XFER 16384u
#define KVS_RING_BYTES (8u << 20)
#define KVS_XFER_TIMEOUT_MS 120000u
#define KVS_QUIET_S 120.0 /* no event for this long ends the run */
#define KVS_MEM_MARGIN (512ull << 20)

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

/* One engine: a TP rank of the prefill side or of a decode peer. */
struct kvs_engine {
	kvf_client *c;
	char name[40];
	struct kv_shape sh;
	kvf_region reg;
	uint8_t *base;
	uint32_t nblocks;
	uint64_t bytes;
	bool has_reg;
	kvf_peer *to; /* to[e]: engine e as this one's peer */
};

/* Prefill rank i to decode rank j of every peer: heads [h_lo, h_hi). */
struct kvs_pair {
	uint32_t i, j, h_lo, h_hi;
	bool blocks; /* whole pieces: kvf_submit_blocks */
};

struct kvs_req {
	uint64_t id;
	uint32_t peer, slot;
	uint32_t dec_left;  /* decode-side events to come */
	uint32_t done_left; /* initiators' completions to come */
	double t0, t_dec;
	bool live;
};

struct kvs_out {
	uint32_t eng;
	kvf_xfer x;
	uint32_t req;
};

struct kvs {
	struct kvs_opts o;
	struct tp_daemon *sc; /* [0] prefill, [1 + k] decode peer k */
	uint32_t nsc;
	struct kvs_engine *eng; /* prefill ranks, then peer k rank j */
	uint32_t neng;
	struct kvs_pair *pairs;
	uint32_t npairs;
	uint64_t req_bytes, req_segs, op_bytes;
	uint32_t req_xfers;
	uint32_t
	    *rank_xfers; /* [j]: transfers of a request to decode rank j */
	/* Per length. */
	uint32_t nb, slots;
	uint8_t *used, *busy; /* [peer * slots + slot] */
	struct kvs_req *reqs; /* conc entries */
	uint32_t
	    *rank_left; /* [req * decode_tp + j]: rank j's events to come */
	struct kvs_out *outs;
	size_t nouts, capouts;
	struct kvf_seg *segs;
	uint32_t *lb, *rb;
	uint64_t next_id;
	/* The run in progress. */
	uint32_t run_done, run_live;
	double *run_lat, t_end, last_event;
	int idle;
	struct raw_set raw;
	bool mout_started;
	char fabric_addr[256]; /* the prefill sidecar's, as it reports it */
	uint64_t rail0[KVS_MAX_RAILS]; /* bytes per rail before a length */
	char rail_pct[128];            /* the timed requests' split, "52 48" */
	double max_ms;                 /* the slowest timed request */
};

static struct kvs *g_kvs;

static void kvs_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void kvs_stop_all(struct kvs *K)
{
	for (uint32_t e = 0; K->eng && e < K->neng; e++) {
		kvf_close(K->eng[e].c);
		K->eng[e].c = NULL;
	}
	for (uint32_t s = 0; K->sc && s < K->nsc; s++)
		tp_daemon_stop(&K->sc[s], SIGTERM, 5000);
}

static void kvs_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, KVS_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (g_kvs)
		kvs_stop_all(g_kvs);
	exit(1);
}

static inline uint32_t kvs_p0(const struct kvs *K, uint32_t peer)
{
	return K->o.tp_p + peer * K->o.tp_d;
}

static const char *kvs_op(const struct kvs *K)
{
	return K->o.read ? "read" : "write";
}

/* ---- options ------------------------------------------------------------ */

/* "p:d", each 1..KVS_MAX_TP. */
static inline int kvs_parse_tp(const char *s, uint32_t *p, uint32_t *d)
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
static inline int kvs_parse_lengths(struct kvs_opts *o, const char *s)
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
static inline int kvs_parse_extra(struct kvs_opts *o, char *s)
{
	char *save = NULL;

	for (char *t = strtok_r(s, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save)) {
		if (o->nextra == KVS_MAX_EXTRA)
			return -1;
		o->extra[o->nextra++] = t;
	}
	return 0;
}

/* The -m kv options as given (NULL: not given). */
struct kvs_args {
	const char *preset, *block, *tp, *lengths, *conc, *peers, *rails,
	    *iters, *fmt;
	char *extra;
	bool any;
};

static inline int kvs_bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, KVS_PROG ": %s '%s': %s\n", opt, val, want);
	return 2;
}

static inline int kvs_num(
    const char *opt, const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end, want[64];
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		snprintf(want, sizeof want, "want %u..%u", lo, hi);
		return kvs_bad(opt, v, want);
	}
	*out = (uint32_t)n;
	return 0;
}

/* Check them and fill k; 0, or 2 (bad usage) with a message on stderr. */
static inline int kvs_opts_parse(struct kvs_opts *k, const struct kvs_args *a,
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
		    KVS_PROG ": -M '%s': no such preset; there are:",
		    a->preset);
		for (size_t i = 0; kv_preset_at(i); i++)
			fprintf(stderr, " %s", kv_preset_at(i)->name);
		fputc('\n', stderr);
		return 2;
	}
	m = k->preset;
	if ((a->block &&
		(rc = kvs_num("-B", a->block, 1, 4096, &k->block_tokens))) ||
	    (a->conc &&
		(rc = kvs_num("-c", a->conc, 1, KVS_MAX_CONC, &k->conc))) ||
	    (a->peers &&
		(rc = kvs_num("-P", a->peers, 1, KVS_MAX_PEERS, &k->peers))) ||
	    (a->rails &&
		(rc = kvs_num("-r", a->rails, 1, KVS_MAX_RAILS, &k->rails))) ||
	    (a->iters && (rc = kvs_num("-i", a->iters, 1, 100000, &k->iters))))
		return rc;
	if (a->tp && kvs_parse_tp(a->tp, &k->tp_p, &k->tp_d) != 0)
		return kvs_bad("-T", a->tp,
		    "want prefill_tp:decode_tp, each "
		    "1..64");
	if (m->kv_heads &&
	    (m->kv_heads % k->tp_p != 0 || m->kv_heads % k->tp_d != 0)) {
		fprintf(stderr,
		    KVS_PROG ": -T %u:%u: %s has %u KV heads, which "
			     "each TP degree must divide\n",
		    k->tp_p, k->tp_d, m->name, m->kv_heads);
		return 2;
	}
	if (kvs_parse_lengths(
		k, a->lengths ? a->lengths : "128,512,2048,8192,32768") != 0)
		return kvs_bad("-L", a->lengths,
		    "want up to 32 token counts, "
		    "1..1048576, comma-separated");
	if (only && strcmp(only, "write") && strcmp(only, "read"))
		return kvs_bad("-x", only, "-m kv wants write or read");
	k->read = only && !strcmp(only, "read");
	if (a->extra && kvs_parse_extra(k, a->extra) != 0)
		return kvs_bad("-A", a->extra, "at most 16 arguments");
	if (a->fmt) {
		const char *colon = strchr(a->fmt, ':');
		size_t n = colon ? (size_t)(colon - a->fmt) : strlen(a->fmt);

		if (n == 3 && !strncmp(a->fmt, "csv", 3))
			k->fmt = KVS_CSV;
		else if (n == 4 && !strncmp(a->fmt, "json", 4))
			k->fmt = KVS_JSON;
		else if (!(n == 5 && !strncmp(a->fmt, "table", 5)) || colon)
			return kvs_bad("-o", a->fmt,
			    "want table, csv, json, "
			    "csv:FILE or json:FILE");
		k->mout = stdout;
		k->table = k->fmt == KVS_TABLE;
		if (colon) {
			k->table = true;
			k->mout = fopen(colon + 1, "w");
			if (!k->mout) {
				fprintf(stderr, KVS_PROG ": -o %s: %s\n",
				    a->fmt, strerror(errno));
				return 2;
			}
		}
	}
	return 0;
}

/* The -m kv part of kvferry-bench's usage. */
static inline void kvs_usage(FILE *f)
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

/* ---- sidecars and engines ----------------------------------------------- */

static void kvs_start_sidecar(
    struct kvs *K, struct tp_daemon *d, const char *name)
{
	const char *args[8 + KVS_MAX_EXTRA];
	char addr[1024], line[2048];
	size_t at = 0;
	int n = 0;

	args[n++] = "--provider";
	args[n++] = K->o.prov;
	args[n++] = "--log-level";
	args[n++] = "warn";
	/* shm names its endpoint after the fabric address, so each rail of
	 * each sidecar needs a name of its own (kv_sidecar_args); the other
	 * providers get -r copies of the loopback address. */
	addr[0] = '\0';
	for (uint32_t r = 0; r < K->o.rails; r++) {
		const char *sep = r ? "," : "";
		int pid = (int)getpid();

		if (!strcmp(K->o.prov, "shm") && K->o.rails == 1)
			at += (size_t)snprintf(addr + at, sizeof addr - at,
			    "kvf-%d-%s", pid, name);
		else if (!strcmp(K->o.prov, "shm"))
			at += (size_t)snprintf(addr + at, sizeof addr - at,
			    "%skvf-%d-%s-r%u", sep, pid, name, r + 1);
		else if (K->o.rails > 1)
			at += (size_t)snprintf(
			    addr + at, sizeof addr - at, "%s127.0.0.1", sep);
	}
	if (addr[0]) {
		args[n++] = "--fabric-addr";
		args[n++] = addr;
	}
	for (int i = 0; i < K->o.nextra; i++)
		args[n++] = K->o.extra[i];
	args[n] = NULL;
	at = 0;
	for (int i = 0; i < n && at < sizeof line; i++)
		at += (size_t)snprintf(
		    line + at, sizeof line - at, " %s", args[i]);
	if (tp_daemon_spawn(d, name, args, NULL) != 0)
		kvs_die("sidecar %s: kvferryd could not be started", name);
	if (tp_daemon_wait_ready(d, 15000) != 0) {
		char *log = tp_daemon_log(d);

		fprintf(stderr,
		    KVS_PROG ": sidecar %s (kvferryd%s) did not "
			     "start%s; its log:\n%s",
		    name, line,
		    K->o.rails > 1 ? " (-r needs a kvferryd that takes one "
				     "--fabric-addr per rail)"
				   : "",
		    log);
		free(log);
		kvs_die("sidecar %s did not start", name);
	}
}

/* What sidecar d reports (kvferryctl status): its fabric address into
 * addr (when not NULL) and the bytes each of its rails carried into
 * bytes[0..KVS_MAX_RAILS). Returns the number of rails, -1 when the
 * status has no rails (a kvferryd without multi-rail), -2 when there was
 * no status. */
static int kvs_status(
    struct tp_daemon *d, char *addr, size_t n, uint64_t *bytes)
{
	const char *argv[] = { tp_bin("kvferryctl"), "-u", d->control_url,
		"-o", "json", "status", NULL };
	const char *key = "\"fabric_addr\":\"", *at, *end;
	struct tp_run r;
	int rails = -1;

	if (addr)
		snprintf(addr, n, "?");
	if (tp_run(&r, 5000, NULL, argv) != 0)
		return -2;
	if (r.status != 0) {
		tp_run_free(&r);
		return -2;
	}
	if (addr && (at = strstr(r.out, key)) != NULL &&
	    (end = strchr(at + strlen(key), '"')) != NULL)
		snprintf(addr, n, "%.*s", (int)(end - at - strlen(key)),
		    at + strlen(key));
	/* "rails":[{..., "bytes":N}, ...]: no arrays nest inside. */
	if ((at = strstr(r.out, "\"rails\":[")) != NULL &&
	    (end = strchr(at, ']')) != NULL) {
		rails = 0;
		while ((at = strstr(at, "\"bytes\":")) != NULL && at < end) {
			at += strlen("\"bytes\":");
			if (rails < (int)KVS_MAX_RAILS)
				bytes[rails] = strtoull(at, NULL, 10);
			rails++;
		}
	}
	tp_run_free(&r);
	return rails;
}

/* Bytes per rail index, summed over every sidecar. */
static void kvs_rail_bytes(struct kvs *K, uint64_t *sum)
{
	memset(sum, 0, KVS_MAX_RAILS * sizeof *sum);
	for (uint32_t i = 0; i < K->nsc; i++) {
		uint64_t b[KVS_MAX_RAILS] = { 0 };
		int n = kvs_status(&K->sc[i], NULL, 0, b);

		for (int r = 0; r < n && r < (int)KVS_MAX_RAILS; r++)
			sum[r] += b[r];
	}
}

/* Engines' names and shapes; nothing runs yet. */
static void kvs_setup(struct kvs *K)
{
	uint32_t p = K->o.tp_p, d = K->o.tp_d;

	K->nsc = 1 + K->o.peers;
	K->neng = p + K->o.peers * d;
	K->sc = calloc(K->nsc, sizeof *K->sc);
	K->eng = calloc(K->neng, sizeof *K->eng);
	if (!K->sc || !K->eng)
		kvs_die("out of memory");
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];
		bool pre = e < p;
		uint32_t k = pre ? 0 : (e - p) / d,
			 rank = pre ? e : (e - p) % d;

		E->to = calloc(K->neng, sizeof *E->to);
		if (!E->to)
			kvs_die("out of memory");
		if (pre)
			snprintf(E->name, sizeof E->name, "prefill-r%u", rank);
		else
			snprintf(
			    E->name, sizeof E->name, "decode%u-r%u", k, rank);
		if (kv_shape_init(&E->sh, K->o.preset, K->o.block_tokens,
			pre ? p : d, rank) != 0)
			kvs_die(
			    "%s: no shape for TP %u", E->name, pre ? p : d);
	}
}

/* The sidecars, then one connection per engine. */
static void kvs_start(struct kvs *K)
{
	uint32_t p = K->o.tp_p;
	char name[32];
	int rc;

	kvs_start_sidecar(K, &K->sc[0], "prefill");
	for (uint32_t k = 0; k < K->o.peers; k++) {
		snprintf(name, sizeof name, "decode%u", k);
		kvs_start_sidecar(K, &K->sc[1 + k], name);
	}
	/* A sidecar that does not open the rails asked for must not give
	 * figures labelled with them (an older kvferryd takes a shm name
	 * with commas as one name). */
	for (uint32_t i = 0; i < K->nsc; i++) {
		uint64_t b[KVS_MAX_RAILS];
		int n = kvs_status(&K->sc[i], i ? NULL : K->fabric_addr,
		    sizeof K->fabric_addr, b);

		const char *who =
		    i ? "a decode sidecar" : "the prefill sidecar";

		if (K->o.rails == 1)
			continue;
		if (n == -2)
			kvs_die("-r %u: kvferryctl status of %s failed",
			    K->o.rails, who);
		if (n == -1)
			kvs_die("-r %u: %s reports no rails in its status: a "
				"kvferryd without multi-rail",
			    K->o.rails, who);
		if (n != (int)K->o.rails)
			kvs_die(
			    "-r %u: %s opened %d rails", K->o.rails, who, n);
	}
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];
		struct tp_daemon *sc =
		    e < p ? &K->sc[0] : &K->sc[1 + (e - p) / K->o.tp_d];
		struct kvf_connect_opts co = { 0 };

		co.socket_path = sc->engine_socket;
		co.ring_bytes = KVS_RING_BYTES;
		rc = kvf_connect(E->name, &co, &E->c);
		if (rc != 0)
			kvs_die(
			    "engine %s: kvf_connect(%s) failed: %s (%d): %s",
			    E->name, sc->engine_socket, kvf_strerror(rc), rc,
			    kvf_last_error());
	}
}

/* ---- the request's shape ------------------------------------------------ */

static uint32_t kvs_chunk(const struct kvs *K, const struct kvs_pair *pr)
{
	uint32_t per = K->o.preset->layers * K->eng[0].sh.kinds;

	if (pr->blocks)
		return KVS_BLOCKS_PER_XFER;
	return KVS_SEGS_PER_XFER / per ? KVS_SEGS_PER_XFER / per : 1;
}

/* Which prefill rank sends what to which decode rank. */
static void kvs_plan(struct kvs *K)
{
	uint32_t p = K->o.tp_p, d = K->o.tp_d;
	bool mla = K->o.preset->kv_heads == 0;
	uint32_t hp = K->eng[0].sh.rank_heads;
	uint32_t hd = K->eng[p].sh.rank_heads;

	K->pairs = calloc((size_t)p * d, sizeof *K->pairs);
	if (!K->pairs)
		kvs_die("out of memory");
	for (uint32_t j = 0; j < d; j++)
		for (uint32_t i = 0; i < p; i++) {
			struct kvs_pair pr = { i, j, 0, 1, true };

			if (mla) {
				if (i != j % p)
					continue;
			} else {
				pr.h_lo = i * hp > j * hd ? i * hp : j * hd;
				pr.h_hi = (i + 1) * hp < (j + 1) * hd
					      ? (i + 1) * hp
					      : (j + 1) * hd;
				if (pr.h_lo >= pr.h_hi)
					continue;
				pr.blocks = p == d;
			}
			K->pairs[K->npairs++] = pr;
		}
}

/* Bytes, operations and transfers of one request of nb blocks. */
static void kvs_measure(struct kvs *K, uint32_t nb)
{
	const struct kv_shape *sh = &K->eng[0].sh;

	K->req_bytes = K->req_segs = 0;
	K->req_xfers = 0;
	memset(K->rank_xfers, 0, K->o.tp_d * sizeof *K->rank_xfers);
	for (uint32_t q = 0; q < K->npairs; q++) {
		const struct kvs_pair *pr = &K->pairs[q];
		uint32_t ch = kvs_chunk(K, pr);

		if (pr->blocks) {
			K->req_segs += (uint64_t)sh->layers * nb;
			K->req_bytes += (uint64_t)sh->layers * nb * sh->piece;
		} else {
			K->req_segs += (uint64_t)sh->layers * nb * sh->kinds;
			K->req_bytes += (uint64_t)sh->layers * nb * sh->kinds *
					(pr->h_hi - pr->h_lo) * sh->run;
		}
		K->req_xfers += (nb + ch - 1) / ch;
		K->rank_xfers[pr->j] += (nb + ch - 1) / ch;
	}
	/* Every operation has the same size for the presets (TP degrees
	 * divide the head count, so overlaps are all alike). */
	K->op_bytes = K->req_bytes / K->req_segs;
}

/* Decode block of logical block b in request slot s. */
static inline uint32_t kvs_dblock(const struct kvs *K, uint32_t s, uint32_t b)
{
	return kv_decode_block(K->slots * K->nb, s * K->nb + b);
}

/* ---- memory ------------------------------------------------------------- */

/* Whether need bytes of shared memory can be had; why says not. */
static bool kvs_mem_ok(uint64_t need, char *why, size_t n)
{
	unsigned long long kb = 0;
	struct statvfs v;
	char l[256];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(l, sizeof l, f))
		if (sscanf(l, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	if (kb && need + KVS_MEM_MARGIN > kb * 1024ull) {
		snprintf(why, n,
		    "needs %.2f GiB of host memory for its KV "
		    "regions (+%.1f GiB margin), MemAvailable is %.2f GiB",
		    need / 1073741824.0, KVS_MEM_MARGIN / 1073741824.0,
		    kb / 1048576.0);
		return false;
	}
	if (statvfs("/dev/shm", &v) == 0 &&
	    need > (uint64_t)v.f_bavail * v.f_frsize) {
		snprintf(why, n,
		    "needs %.2f GiB of /dev/shm for its KV "
		    "regions, %.2f GiB free there",
		    need / 1073741824.0,
		    (double)v.f_bavail * v.f_frsize / 1073741824.0);
		return false;
	}
	return true;
}

static void kvs_free_regions(struct kvs *K)
{
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];

		if (E->has_reg) {
			int rc = kvf_free_region(E->c, E->reg);
			if (rc != 0)
				kvs_die(
				    "engine %s: kvf_free_region(%u) failed: "
				    "%s (%d): %s",
				    E->name, E->reg, kvf_strerror(rc), rc,
				    kvf_last_error());
		}
		E->has_reg = false;
		E->base = NULL;
	}
}

/* Regions for a request of nb blocks: false with why when they cannot be
 * had (nothing is left allocated then). */
static bool kvs_alloc(struct kvs *K, char *why, size_t n)
{
	uint64_t need = 0;

	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];

		E->nblocks = e < K->o.tp_p ? K->nb : K->slots * K->nb;
		E->bytes = kv_shape_region_bytes(&E->sh, E->nblocks);
		need += E->bytes;
	}
	if (!kvs_mem_ok(need, why, n))
		return false;
	for (uint32_t e = 0; e < K->neng; e++) {
		struct kvs_engine *E = &K->eng[e];
		struct kvf_layout lay = kv_shape_layout(&E->sh, E->nblocks);
		int rc = kvf_alloc_host(
		    E->c, E->bytes, &lay, (void **)&E->base, &E->reg);
		if (rc != 0) {
			snprintf(why, n,
			    "engine %s: kvf_alloc_host(%" PRIu64
			    " bytes) failed: %s (%d): %s",
			    E->name, E->bytes, kvf_strerror(rc), rc,
			    kvf_last_error());
			kvs_free_regions(K);
			return false;
		}
		E->has_reg = true;
	}
	return true;
}

static void kvs_fill(struct kvs *K)
{
	for (uint32_t e = 0; e < K->o.tp_p; e++) {
		struct kvs_engine *E = &K->eng[e];

		for (uint32_t l = 0; l < E->sh.layers; l++)
			for (uint32_t b = 0; b < K->nb; b++)
				kv_shape_fill_piece(&E->sh,
				    E->base + kv_shape_offset(
						  &E->sh, E->nblocks, l, b),
				    KVS_SEED, l, b);
	}
}

/* The initiators learn the targets' new regions: the handshake carries
 * them, and resolving an engine again refreshes them. */
static void kvs_resolve(struct kvs *K)
{
	for (uint32_t k = 0; k < K->o.peers; k++)
		for (uint32_t q = 0; q < K->npairs; q++) {
			uint32_t pe = K->pairs[q].i;
			uint32_t de = kvs_p0(K, k) + K->pairs[q].j;
			uint32_t ini = K->o.read ? de : pe,
				 tgt = K->o.read ? pe : de;
			const char *url =
			    K->sc[K->o.read ? 0 : 1 + k].peer_url;
			int rc = kvf_resolve_peer(K->eng[ini].c, url,
			    K->eng[tgt].name, 10000, &K->eng[ini].to[tgt]);
			if (rc != 0)
				kvs_die("engine %s: kvf_resolve_peer(%s, %s) "
					"failed: %s (%d): %s",
				    K->eng[ini].name, url, K->eng[tgt].name,
				    kvf_strerror(rc), rc, kvf_last_error());
		}
}

/* Byte at of engine E's piece (layer l, request block b, region block
 * db) of slot s is wrong: say where it came from and end the run. */
static void kvs_check_fail(struct kvs *K, const struct kvs_engine *E,
    uint32_t s, uint32_t l, uint32_t b, uint32_t db, long at, uint64_t tokens,
    const char *when)
{
	const struct kv_shape *sh = &E->sh;
	uint32_t e = (uint32_t)(E - K->eng) - K->o.tp_p;
	uint32_t k = e / K->o.tp_d, j = e % K->o.tp_d;
	uint64_t in_kind = (uint64_t)at % (sh->rank_heads * sh->run);
	uint32_t head = sh->head0 + (uint32_t)(in_kind / sh->run);
	uint32_t from = K->o.preset->kv_heads ? head / K->eng[0].sh.rank_heads
					      : j % K->o.tp_p;

	kvs_die("KV check after the %s: %s, %" PRIu64 " tokens, %s, TP "
		"%u:%u: engine %s (decode peer %u rank %u), request slot "
		"%u: layer %u, request block %u (region block %u), byte %ld "
		"of the piece (head %u, from prefill rank %u) is not what "
		"was sent; no figure is reported for wrong bytes",
	    when, K->o.preset->name, tokens, kvs_op(K), K->o.tp_p, K->o.tp_d,
	    E->name, k, j, s, l, b, db, at, head, from);
}

/* Every slot written since the last zeroing must hold the request's
 * bytes, on every decode rank of its peer. */
static void kvs_check(struct kvs *K, uint64_t tokens, const char *when)
{
	for (uint32_t e = K->o.tp_p; e < K->neng; e++) {
		const struct kvs_engine *E = &K->eng[e];
		uint32_t k = (e - K->o.tp_p) / K->o.tp_d;

		for (uint32_t s = 0; s < K->slots; s++) {
			if (!K->used[k * K->slots + s])
				continue;
			for (uint32_t l = 0; l < E->sh.layers; l++)
				for (uint32_t b = 0; b < K->nb; b++) {
					uint32_t db = kvs_dblock(K, s, b);
					const uint8_t *piece =
					    E->base + kv_shape_offset(&E->sh,
							  E->nblocks, l, db);
					long at = kv_shape_check_piece(
					    &E->sh, piece, KVS_SEED, l, b);

					if (at >= 0)
						kvs_check_fail(K, E, s, l, b,
						    db, at, tokens, when);
				}
		}
	}
}

/* ---- requests ----------------------------------------------------------- */

static void kvs_add_out(struct kvs *K, uint32_t eng, kvf_xfer x, uint32_t req)
{
	if (K->nouts == K->capouts) {
		size_t cap = K->capouts ? K->capouts * 2 : 256;
		void *m = realloc(K->outs, cap * sizeof *K->outs);
		if (!m)
			kvs_die("out of memory");
		K->outs = m;
		K->capouts = cap;
	}
	K->outs[K->nouts++] = (struct kvs_out){ eng, x, req };
}

static void kvs_complete(struct kvs *K, struct kvs_req *r)
{
	K->run_lat[K->run_done++] = r->t_dec - r->t0;
	if (r->t_dec > K->t_end)
		K->t_end = r->t_dec;
	K->busy[r->peer * K->slots + r->slot] = 0;
	K->used[r->peer * K->slots + r->slot] = 1;
	r->live = false;
	K->run_live--;
}

static void kvs_event(struct kvs *K, uint32_t e, const struct kvf_event *ev)
{
	struct kvs_req *r = NULL;
	double now = kv_now();

	if (ev->type == KVF_EV_XFER_DONE) {
		size_t i;

		for (i = 0; i < K->nouts; i++)
			if (K->outs[i].eng == e && K->outs[i].x == ev->xfer)
				break;
		if (i == K->nouts)
			kvs_die("engine %s: completion of transfer %" PRIu64
				" that it did not submit",
			    K->eng[e].name, (uint64_t)ev->xfer);
		r = &K->reqs[K->outs[i].req];
		if (ev->status != 0)
			kvs_die("%s %s, %u blocks: request %" PRIu64
				", transfer %" PRIu64 " of engine %s "
				"failed: %s (%d): %s",
			    K->o.preset->name, kvs_op(K), K->nb, r->id,
			    (uint64_t)ev->xfer, K->eng[e].name,
			    kvf_strerror(ev->status), ev->status, ev->message);
		K->outs[i] = K->outs[--K->nouts];
		r->done_left--;
		if (K->o.read) {
			K->rank_left[(r - K->reqs) * K->o.tp_d + e -
				     kvs_p0(K, r->peer)]--;
			if (--r->dec_left == 0)
				r->t_dec = now;
		}
	} else if (ev->type == KVF_EV_NOTIF) {
		uint64_t id;

		if (ev->tag_len != sizeof id)
			kvs_die("engine %s: notification with a %u-byte tag",
			    K->eng[e].name, ev->tag_len);
		memcpy(&id, ev->tag, sizeof id);
		for (uint32_t i = 0; i < K->o.conc && !r; i++)
			if (K->reqs[i].live && K->reqs[i].id == id)
				r = &K->reqs[i];
		if (!r || K->o.read || e < kvs_p0(K, r->peer) ||
		    e >= kvs_p0(K, r->peer) + K->o.tp_d ||
		    K->rank_left[(r - K->reqs) * K->o.tp_d + e -
				 kvs_p0(K, r->peer)] == 0)
			kvs_die("engine %s: notification for request %" PRIu64
				" it should not get (from %s)",
			    K->eng[e].name, id, ev->peer_engine);
		K->rank_left[(r - K->reqs) * K->o.tp_d + e -
			     kvs_p0(K, r->peer)]--;
		if (--r->dec_left == 0)
			r->t_dec = now;
	} else {
		return;
	}
	if (r->dec_left == 0 && r->done_left == 0)
		kvs_complete(K, r);
}

/* The engine whose next event ends the oldest request's wait. */
static uint32_t kvs_expected(const struct kvs *K)
{
	const struct kvs_req *o = NULL;

	for (uint32_t i = 0; i < K->o.conc; i++)
		if (K->reqs[i].live && (!o || K->reqs[i].id < o->id))
			o = &K->reqs[i];
	if (!o || o->dec_left == 0)
		return 0; /* a WRITE's last completions, on the prefill side */
	for (uint32_t j = 0; j < K->o.tp_d; j++)
		if (K->rank_left[(o - K->reqs) * K->o.tp_d + j])
			return kvs_p0(K, o->peer) + j;
	return kvs_p0(K, o->peer);
}

/* Take every engine's events; when none came for a while, block up to
 * 1 ms on the engine most likely to get the next one (two cores cannot
 * afford a busy loop beside the sidecars' own). */
static void kvs_progress(struct kvs *K)
{
	struct kvf_event ev[64];
	int total = 0, n, rc;

	for (uint32_t e = 0; e < K->neng; e++) {
		n = 0;
		rc = kvf_poll(K->eng[e].c, ev, 64, &n);
		if (rc != 0)
			kvs_die("engine %s: kvf_poll() failed: %s (%d): %s",
			    K->eng[e].name, kvf_strerror(rc), rc,
			    kvf_last_error());
		for (int i = 0; i < n; i++)
			kvs_event(K, e, &ev[i]);
		total += n;
	}
	if (total == 0 && ++K->idle > 16) {
		uint32_t e = kvs_expected(K);

		n = 0;
		rc = kvf_wait(K->eng[e].c, ev, 64, 1, &n);
		if (rc != 0)
			kvs_die("engine %s: kvf_wait() failed: %s (%d): %s",
			    K->eng[e].name, kvf_strerror(rc), rc,
			    kvf_last_error());
		for (int i = 0; i < n; i++)
			kvs_event(K, e, &ev[i]);
		total += n;
	}
	if (total > 0) {
		K->idle = 0;
		K->last_event = kv_now();
	} else if (kv_now() - K->last_event > KVS_QUIET_S) {
		kvs_die("%s %s, %u blocks: no event for %.0f s (%u requests "
			"in flight, %zu transfers outstanding)",
		    K->o.preset->name, kvs_op(K), K->nb, KVS_QUIET_S,
		    K->run_live, K->nouts);
	}
}

/* Submit one transfer of request r: rank pair pr, blocks [b0, b1). */
static void kvs_submit_xfer(struct kvs *K, uint32_t ri,
    const struct kvs_pair *pr, uint32_t b0, uint32_t b1)
{
	struct kvs_req *r = &K->reqs[ri];
	uint32_t pe = pr->i, de = kvs_p0(K, r->peer) + pr->j;
	uint32_t ini = K->o.read ? de : pe, tgt = K->o.read ? pe : de;
	struct kvs_engine *P = &K->eng[pe], *D = &K->eng[de];
	struct kvs_engine *I = &K->eng[ini], *T = &K->eng[tgt];
	enum kvf_op op = K->o.read ? KVF_READ : KVF_WRITE;
	uint64_t tag = r->id;
	struct kvf_xfer_opts xo = { .timeout_ms = KVS_XFER_TIMEOUT_MS };
	uint32_t n = 0;
	kvf_xfer x;
	int rc;

	if (!K->o.read) {
		xo.tag = &tag;
		xo.tag_len = sizeof tag;
	}
	if (pr->blocks) {
		for (uint32_t b = b0; b < b1; b++, n++) {
			uint32_t db = kvs_dblock(K, r->slot, b);
			K->lb[n] = K->o.read ? db : b;
			K->rb[n] = K->o.read ? b : db;
		}
	} else {
		const struct kv_shape *ps = &P->sh, *ds = &D->sh;
		uint64_t len = (pr->h_hi - pr->h_lo) * ps->run;

		for (uint32_t l = 0; l < ps->layers; l++)
			for (uint32_t b = b0; b < b1; b++) {
				uint64_t po =
				    kv_shape_offset(ps, P->nblocks, l, b);
				uint64_t dof = kv_shape_offset(ds, D->nblocks,
				    l, kvs_dblock(K, r->slot, b));

				for (uint32_t k = 0; k < ps->kinds; k++, n++) {
					uint64_t pk =
					    po +
					    ((uint64_t)k * ps->rank_heads +
						pr->h_lo - ps->head0) *
						ps->run;
					uint64_t dk =
					    dof +
					    ((uint64_t)k * ds->rank_heads +
						pr->h_lo - ds->head0) *
						ds->run;
					K->segs[n] = (struct kvf_seg){ I->reg,
						T->reg, K->o.read ? dk : pk,
						K->o.read ? pk : dk, len };
				}
			}
	}
	for (;;) {
		if (pr->blocks)
			rc = kvf_submit_blocks(I->c, op, I->to[tgt], I->reg,
			    T->reg, K->lb, K->rb, n, &xo, &x);
		else
			rc = kvf_submit(
			    I->c, op, I->to[tgt], K->segs, n, &xo, &x);
		if (rc != KVF_EAGAIN)
			break;
		kvs_progress(K); /* the ring is full: let the sidecar drain */
	}
	if (rc != 0)
		kvs_die("engine %s: %s(%s to %s, %u %s) failed: %s (%d): %s",
		    I->name, pr->blocks ? "kvf_submit_blocks" : "kvf_submit",
		    kvs_op(K), T->name, n, pr->blocks ? "blocks" : "segments",
		    kvf_strerror(rc), rc, kvf_last_error());
	kvs_add_out(K, ini, x, ri);
}

static void kvs_submit(struct kvs *K, uint32_t ri)
{
	struct kvs_req *r = &K->reqs[ri];

	/* Both counts are known before the first transfer goes, so events
	 * of early transfers cannot end the request too soon. */
	r->dec_left = r->done_left = K->req_xfers;
	memcpy(&K->rank_left[ri * K->o.tp_d], K->rank_xfers,
	    K->o.tp_d * sizeof *K->rank_xfers);
	r->t0 = kv_now();
	for (uint32_t q = 0; q < K->npairs; q++) {
		uint32_t ch = kvs_chunk(K, &K->pairs[q]);

		for (uint32_t b0 = 0; b0 < K->nb; b0 += ch)
			kvs_submit_xfer(K, ri, &K->pairs[q], b0,
			    b0 + ch < K->nb ? b0 + ch : K->nb);
	}
}

/* n requests, up to -c in flight, round-robin over the peers; lat gets
 * each one's seconds. Returns the seconds from the first submit to the
 * last decode-side event. */
static double kvs_run(struct kvs *K, uint32_t n, double *lat)
{
	uint32_t next = 0;
	double t0 = kv_now();

	K->run_done = K->run_live = 0;
	K->run_lat = lat;
	K->t_end = t0;
	K->last_event = t0;
	while (K->run_done < n) {
		while (next < n && K->run_live < K->o.conc) {
			uint32_t k = next % K->o.peers, s, ri;

			for (s = 0; s < K->slots; s++)
				if (!K->busy[k * K->slots + s])
					break;
			if (s == K->slots)
				break; /* that peer's slots are all in flight
					*/
			for (ri = 0; K->reqs[ri].live; ri++)
				;
			K->busy[k * K->slots + s] = 1;
			K->reqs[ri] = (struct kvs_req){ .id = ++K->next_id,
				.peer = k,
				.slot = s,
				.live = true };
			K->run_live++;
			next++;
			kvs_submit(K, ri);
		}
		kvs_progress(K);
	}
	return K->t_end - t0;
}

/* ---- output ------------------------------------------------------------- */

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

static void kvs_describe(struct kvs *K)
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
	       "raw = fi_raw_bench bw %s of one op (piece), window %d\n",
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

/* One row: a measurement, or a skipped length when skip is set. */
static void kvs_row(struct kvs *K, uint64_t tokens, uint32_t iters, double ms,
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

/* ---- the sweep ---------------------------------------------------------- */

static int kvs_cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void kvs_length(struct kvs *K, uint64_t tokens, double raw)
{
	uint32_t iters = K->o.iters, warm = K->o.peers;
	double *lat, wall, ms, gbps;
	char why[700];

	K->nb =
	    (uint32_t)((tokens + K->o.block_tokens - 1) / K->o.block_tokens);
	K->slots = (K->o.conc + K->o.peers - 1) / K->o.peers;
	kvs_measure(K, K->nb);
	if (!iters) {
		/* About 1 GiB moved per row, and enough requests that -c
		 * and -P are really exercised. */
		uint64_t it = (1ull << 30) / K->req_bytes;
		iters = it < 4 ? 4 : it > 64 ? 64 : (uint32_t)it;
		if (iters < 2 * K->o.conc)
			iters = 2 * K->o.conc;
		if (iters < K->o.peers)
			iters = K->o.peers;
	}
	if (!kvs_alloc(K, why, sizeof why)) {
		if (!K->o.table)
			fprintf(stderr,
			    KVS_PROG ": %s %" PRIu64 " tokens "
				     "skipped: %s (lower -L, -c or -P)\n",
			    K->o.preset->name, tokens, why);
		kvs_row(K, tokens, 0, 0, 0, 0, why);
		return;
	}
	K->used = calloc((size_t)K->o.peers * K->slots, 1);
	K->busy = calloc((size_t)K->o.peers * K->slots, 1);
	lat = calloc(iters > warm ? iters : warm, sizeof *lat);
	if (!K->used || !K->busy || !lat)
		kvs_die("out of memory");
	kvs_fill(K);
	kvs_resolve(K);
	kvs_run(K, warm, lat); /* one per peer: every route once */
	kvs_check(K, tokens, "warm-up");
	memset(K->used, 0, (size_t)K->o.peers * K->slots);
	for (uint32_t e = K->o.tp_p; e < K->neng; e++)
		memset(K->eng[e].base, 0, K->eng[e].bytes);
	if (K->o.rails > 1)
		kvs_rail_bytes(K, K->rail0);
	wall = kvs_run(K, iters, lat);
	K->rail_pct[0] = '\0';
	if (K->o.rails > 1) {
		uint64_t now[KVS_MAX_RAILS], all = 0;
		size_t at = 0;

		kvs_rail_bytes(K, now);
		for (uint32_t r = 0; r < K->o.rails; r++)
			all += now[r] - K->rail0[r];
		for (uint32_t r = 0; r < K->o.rails && all; r++)
			at += (size_t)snprintf(K->rail_pct + at,
			    sizeof K->rail_pct - at, "%s%.0f", r ? " " : "",
			    100.0 * (double)(now[r] - K->rail0[r]) /
				(double)all);
	}
	kvs_check(K, tokens, "timed requests");
	qsort(lat, iters, sizeof *lat, kvs_cmp_d);
	K->max_ms = lat[iters - 1] * 1e3;
	ms = (iters % 2 ? lat[iters / 2]
			: (lat[iters / 2 - 1] + lat[iters / 2]) / 2) *
	     1e3;
	gbps = (double)K->req_bytes * iters / wall / 1e9;
	kvs_row(K, tokens, iters, ms, gbps, raw, NULL);
	free(lat);
	free(K->used);
	free(K->busy);
	K->used = K->busy = NULL;
	kvs_free_regions(K);
}

/* Run the sweep the options describe; the exit status. */
static inline int kv_sweep_main(const struct kvs_opts *o)
{
	static struct kvs kvs;
	struct kvs *K = &kvs;
	const struct raw_row *rr = NULL;
	uint32_t maxnb = 0;
	char why[1024];
	int status = 0;

	K->o = *o;
	g_kvs = K;
	K->reqs = calloc(K->o.conc, sizeof *K->reqs);
	K->rank_left =
	    calloc((size_t)K->o.conc * K->o.tp_d, sizeof *K->rank_left);
	K->rank_xfers = calloc(K->o.tp_d, sizeof *K->rank_xfers);
	if (!K->reqs || !K->rank_left || !K->rank_xfers)
		kvs_die("out of memory");
	/* The shapes and the plan first: the raw baseline needs the op size
	 * and runs before the sidecars, on a quiet machine. */
	kvs_setup(K);
	kvs_plan(K);
	kvs_measure(K, 1);
	if (!K->o.no_raw) {
		if (raw_bench_run(&K->raw, K->o.prov, "bw", K->o.read,
			K->op_bytes, K->op_bytes, K->o.window, true, why,
			sizeof why) != 0)
			kvs_die("raw baseline: %s", why);
		rr = raw_bench_find(&K->raw, "bw", kvs_op(K), K->op_bytes);
		if (!rr)
			kvs_die(
			    "raw baseline: fi_raw_bench gave no row for %s "
			    "of %" PRIu64 " bytes",
			    kvs_op(K), K->op_bytes);
	}
	kvs_start(K);
	for (int i = 0; i < K->o.nlengths; i++) {
		uint32_t nb =
		    (uint32_t)((K->o.lengths[i] + K->o.block_tokens - 1) /
			       K->o.block_tokens);
		if (nb > maxnb)
			maxnb = nb;
	}
	K->segs = calloc(KVS_SEGS_PER_XFER, sizeof *K->segs);
	K->lb =
	    calloc(maxnb < KVS_BLOCKS_PER_XFER ? maxnb : KVS_BLOCKS_PER_XFER,
		sizeof *K->lb);
	K->rb =
	    calloc(maxnb < KVS_BLOCKS_PER_XFER ? maxnb : KVS_BLOCKS_PER_XFER,
		sizeof *K->rb);
	if (!K->segs || !K->lb || !K->rb)
		kvs_die("out of memory");
	if (K->o.table)
		printf("kvferry-bench -m kv: provider %s, prefill sidecar %s, "
		       "%u decode sidecar%s, %u engines, %ld CPUs online\n",
		    K->o.prov, K->sc[0].peer_url, K->o.peers,
		    K->o.peers > 1 ? "s" : "", K->neng,
		    sysconf(_SC_NPROCESSORS_ONLN));
	kvs_describe(K);
	for (int i = 0; i < K->o.nlengths; i++)
		kvs_length(K, K->o.lengths[i], rr ? rr->gbps : 0);
	if (K->o.fmt == KVS_JSON && K->mout_started)
		fprintf(K->o.mout, "\n ]}\n");
	fflush(K->o.mout ? K->o.mout : stdout);
	for (uint32_t e = 0; e < K->neng; e++) {
		kvf_close(K->eng[e].c);
		K->eng[e].c = NULL;
	}
	for (uint32_t s = 0; s < K->nsc; s++)
		if (tp_daemon_stop(&K->sc[s], SIGTERM, 5000) != 0) {
			fprintf(stderr,
			    KVS_PROG ": sidecar %s did not stop on "
				     "SIGTERM\n",
			    s ? "decode" : "prefill");
			status = 1;
		}
	for (uint32_t e = 0; e < K->neng; e++)
		free(K->eng[e].to);
	free(K->eng);
	free(K->sc);
	free(K->pairs);
	free(K->reqs);
	free(K->rank_left);
	free(K->rank_xfers);
	free(K->outs);
	free(K->segs);
	free(K->lb);
	free(K->rb);
	raw_set_fini(&K->raw);
	g_kvs = NULL;
	return status;
}

#endif
