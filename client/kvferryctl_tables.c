/*
 * client/kvferryctl_tables.c - `kvferryctl engines`, `regions [ENGINE]`
 * and `peers`: the sidecar's tables as aligned columns for people, or as
 * {"<table>": [ {...}, ... ]} for scripts (keys are the proto field
 * names, values exact: bytes in bytes, times in their unit's name).
 */
#include <stdlib.h>
#include <string.h>

#include "client/kvferryctl.h"

static int no_args(const char *name, int argc, char **argv, char *err,
                   size_t errlen)
{
	if (argc > 1) {
		snprintf(err, errlen, "%s takes no arguments, not '%s'", name,
		    argv[1]);
		return CTL_EXIT_USAGE;
	}
	return 0;
}

static const char *or_dash(const char *s)
{
	return s && s[0] ? s : "-";
}

/* ---- engines ----------------------------------------------------------- */

static int engines_build(Kvf__Ctl__Request *req, int argc, char **argv,
                         char *err, size_t errlen)
{
	static Kvf__Ctl__EnginesRequest r = KVF__CTL__ENGINES_REQUEST__INIT;

	req->body_case = KVF__CTL__REQUEST__BODY_ENGINES;
	req->engines = &r;
	return no_args("engines", argc, argv, err, errlen);
}

static void engines_print(const Kvf__Ctl__Reply *rep, int json, FILE *out)
{
	const Kvf__Ctl__EnginesReply *r = rep->engines;
	struct ctl_json j, a, o;

	if (json) {
		ctl_json_begin(&j, out);
		ctl_json_arr(&j, "engines", &a);
		for (size_t i = 0; i < r->n_engines; i++) {
			const Kvf__Ctl__EngineInfo *e = r->engines[i];
			ctl_json_obj(&a, NULL, &o);
			ctl_json_str(&o, "name", e->name);
			ctl_json_u64(&o, "pid", e->pid);
			ctl_json_u64(&o, "session_id", e->session_id);
			ctl_json_u64(&o, "regions", e->regions);
			ctl_json_u64(&o, "xfers_in_flight", e->xfers_in_flight);
			ctl_json_close_obj(&o);
		}
		ctl_json_close_arr(&a);
		ctl_json_end(&j);
		return;
	}
	fprintf(out, "%-24s %8s %8s %8s %10s\n", "NAME", "PID", "SESSION",
	    "REGIONS", "IN-FLIGHT");
	for (size_t i = 0; i < r->n_engines; i++) {
		const Kvf__Ctl__EngineInfo *e = r->engines[i];
		fprintf(out, "%-24s %8u %8llu %8llu %10llu\n", or_dash(e->name),
		    e->pid, (unsigned long long)e->session_id,
		    (unsigned long long)e->regions,
		    (unsigned long long)e->xfers_in_flight);
	}
}

const struct ctl_cmd ctl_cmd_engines = {
	.name = "engines",
	.args = "",
	.help = "connected engines: pid, session, regions, transfers",
	.build = engines_build,
	.reply = KVF__CTL__REPLY__BODY_ENGINES,
	.print = engines_print,
};

/* ---- regions ----------------------------------------------------------- */

static int regions_build(Kvf__Ctl__Request *req, int argc, char **argv,
                         char *err, size_t errlen)
{
	static Kvf__Ctl__RegionsRequest r = KVF__CTL__REGIONS_REQUEST__INIT;

	if (argc > 2) {
		snprintf(err, errlen, "regions takes at most one argument "
		    "(an engine name), not '%s'", argv[2]);
		return CTL_EXIT_USAGE;
	}
	r.engine = argc == 2 ? argv[1] : "";
	req->body_case = KVF__CTL__REQUEST__BODY_REGIONS;
	req->regions = &r;
	return 0;
}

static void regions_print(const Kvf__Ctl__Reply *rep, int json, FILE *out)
{
	const Kvf__Ctl__RegionsReply *r = rep->regions;
	struct ctl_json j, a, o, l;
	char b1[32], b2[32];

	if (json) {
		ctl_json_begin(&j, out);
		ctl_json_arr(&j, "regions", &a);
		for (size_t i = 0; i < r->n_regions; i++) {
			const Kvf__Ctl__RegionInfo *ri = r->regions[i];
			const Kvf__KvLayout *y = ri->layout;
			ctl_json_obj(&a, NULL, &o);
			ctl_json_u64(&o, "id", ri->id);
			ctl_json_str(&o, "engine", ri->engine);
			ctl_json_str(&o, "kind", ri->kind);
			ctl_json_u64(&o, "bytes", ri->bytes);
			if (!y) {
				ctl_json_null(&o, "layout");
			} else {
				ctl_json_obj(&o, "layout", &l);
				ctl_json_u64(&l, "num_layers", y->num_layers);
				ctl_json_u64(&l, "num_blocks", y->num_blocks);
				ctl_json_u64(&l, "block_bytes", y->block_bytes);
				ctl_json_u64(&l, "layer_stride",
				    y->layer_stride);
				ctl_json_u64(&l, "block_stride",
				    y->block_stride);
				ctl_json_u64(&l, "offset", y->offset);
				ctl_json_close_obj(&l);
			}
			ctl_json_close_obj(&o);
		}
		ctl_json_close_arr(&a);
		ctl_json_end(&j);
		return;
	}
	fprintf(out, "%6s %-24s %-5s %12s  %s\n", "ID", "ENGINE", "KIND",
	    "BYTES", "LAYOUT");
	for (size_t i = 0; i < r->n_regions; i++) {
		const Kvf__Ctl__RegionInfo *ri = r->regions[i];
		const Kvf__KvLayout *y = ri->layout;
		fprintf(out, "%6u %-24s %-5s %12s  ", ri->id,
		    or_dash(ri->engine), or_dash(ri->kind),
		    ctl_fmt_bytes(b1, sizeof(b1), ri->bytes));
		if (y)
			fprintf(out, "%u layers x %u blocks x %s (layer "
			    "stride %s)\n", y->num_layers, y->num_blocks,
			    ctl_fmt_bytes(b2, sizeof(b2), y->block_bytes),
			    ctl_fmt_bytes(b1, sizeof(b1), y->layer_stride));
		else
			fputs("-\n", out);
	}
}

const struct ctl_cmd ctl_cmd_regions = {
	.name = "regions",
	.args = "[ENGINE]",
	.help = "registered KV regions: engine, host|cuda, size, layout",
	.build = regions_build,
	.reply = KVF__CTL__REPLY__BODY_REGIONS,
	.print = regions_print,
};

/* ---- peers ------------------------------------------------------------- */

static int peers_build(Kvf__Ctl__Request *req, int argc, char **argv,
                       char *err, size_t errlen)
{
	static Kvf__Ctl__PeersRequest r = KVF__CTL__PEERS_REQUEST__INIT;

	req->body_case = KVF__CTL__REQUEST__BODY_PEERS;
	req->peers = &r;
	return no_args("peers", argc, argv, err, errlen);
}

static void peers_print(const Kvf__Ctl__Reply *rep, int json, FILE *out)
{
	const Kvf__Ctl__PeersReply *r = rep->peers;
	struct ctl_json j, a, o;
	char b1[32], b2[32];

	if (json) {
		ctl_json_begin(&j, out);
		ctl_json_arr(&j, "peers", &a);
		for (size_t i = 0; i < r->n_peers; i++) {
			const Kvf__Ctl__PeerInfo *p = r->peers[i];
			ctl_json_obj(&a, NULL, &o);
			ctl_json_u64(&o, "id", p->id);
			ctl_json_str(&o, "engine", p->engine);
			ctl_json_str(&o, "url", p->url);
			ctl_json_str(&o, "sidecar_id", p->sidecar_id);
			ctl_json_str(&o, "provider", p->provider);
			ctl_json_str(&o, "path", p->path);
			ctl_json_str(&o, "health",
			    p->healthy ? "healthy" : "unhealthy");
			ctl_json_bool(&o, "same_host", p->same_host);
			if (p->rtt_ns)
				ctl_json_u64(&o, "rtt_ns", p->rtt_ns);
			else
				ctl_json_null(&o, "rtt_ns");
			ctl_json_u64(&o, "bytes", p->bytes);
			ctl_json_u64(&o, "errors", p->errors);
			ctl_json_u64(&o, "regions", p->regions);
			ctl_json_u64(&o, "rails", p->rails);
			ctl_json_u64(&o, "last_ok_ms_ago", p->last_ok_ms_ago);
			ctl_json_close_obj(&o);
		}
		ctl_json_close_arr(&a);
		ctl_json_end(&j);
		return;
	}
	fprintf(out, "%4s %-16s %-28s %-12s %-14s %-9s %5s %-9s %9s %10s "
	    "%6s\n", "ID", "ENGINE", "URL", "SIDECAR", "PROVIDER", "PATH",
	    "RAILS", "HEALTH", "RTT", "BYTES", "ERRORS");
	for (size_t i = 0; i < r->n_peers; i++) {
		const Kvf__Ctl__PeerInfo *p = r->peers[i];
		fprintf(out, "%4u %-16s %-28s %-12.12s %-14s %-9s %5u %-9s %9s "
		    "%10s %6llu\n", p->id, or_dash(p->engine), or_dash(p->url),
		    or_dash(p->sidecar_id), or_dash(p->provider),
		    or_dash(p->path), p->rails,
		    p->healthy ? "healthy" : "unhealthy",
		    p->rtt_ns ? ctl_fmt_us(b1, sizeof(b1),
		                    (double)p->rtt_ns / 1e3) : "-",
		    ctl_fmt_bytes(b2, sizeof(b2), p->bytes),
		    (unsigned long long)p->errors);
	}
}

const struct ctl_cmd ctl_cmd_peers = {
	.name = "peers",
	.args = "",
	.help = "remote engines: url, sidecar, path, health, rtt, bytes",
	.build = peers_build,
	.reply = KVF__CTL__REPLY__BODY_PEERS,
	.print = peers_print,
};
