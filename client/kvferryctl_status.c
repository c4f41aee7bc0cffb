/*
 * client/kvferryctl_status.c - `kvferryctl status`: what a sidecar runs
 * (version, fabric, addresses) and what it serves (counters).
 *
 * The text form is a key: value block for people; the JSON form is one
 * object whose keys are the StatusReply field names, for scripts. Both
 * list the fields in the same fixed order.
 */
#include <stdlib.h>

#include "client/kvferryctl.h"

static int build(Kvf__Ctl__Request *req, int argc, char **argv, char *err,
                 size_t errlen)
{
	static Kvf__Ctl__StatusRequest sr = KVF__CTL__STATUS_REQUEST__INIT;

	if (argc > 1) {
		snprintf(err, errlen, "status takes no arguments, not '%s'",
		    argv[1]);
		return CTL_EXIT_USAGE;
	}
	req->body_case = KVF__CTL__REQUEST__BODY_STATUS;
	req->status = &sr;
	return 0;
}

static const char *or_dash(const char *s)
{
	return s && s[0] ? s : "-";
}

static void print(const Kvf__Ctl__Reply *rep, int json, FILE *out)
{
	const Kvf__Ctl__StatusReply *s = rep->status;
	struct ctl_json j, a, o;

	if (json) {
		ctl_json_begin(&j, out);
		ctl_json_str(&j, "version", s->version);
		ctl_json_str(&j, "sidecar_id", s->sidecar_id);
		ctl_json_u64(&j, "pid", s->pid);
		ctl_json_u64(&j, "uptime_ms", s->uptime_ms);
		ctl_json_str(&j, "provider", s->provider);
		ctl_json_str(&j, "fabric", s->fabric);
		ctl_json_str(&j, "domain", s->domain);
		ctl_json_str(&j, "fabric_addr", s->fabric_addr);
		ctl_json_str(&j, "engine_socket", s->engine_socket);
		ctl_json_str(&j, "control_url", s->control_url);
		ctl_json_str(&j, "peer_url", s->peer_url);
		ctl_json_u64(&j, "engines", s->engines);
		ctl_json_u64(&j, "peers", s->peers);
		ctl_json_u64(&j, "regions", s->regions);
		ctl_json_u64(&j, "xfers_in_flight", s->xfers_in_flight);
		ctl_json_u64(&j, "xfers_total", s->xfers_total);
		ctl_json_u64(&j, "xfers_failed", s->xfers_failed);
		ctl_json_u64(&j, "bytes_total", s->bytes_total);
		ctl_json_arr(&j, "rails", &a);
		for (size_t i = 0; i < s->n_rails; i++) {
			const Kvf__Ctl__RailStatus *r = s->rails[i];
			ctl_json_obj(&a, NULL, &o);
			ctl_json_u64(&o, "index", r->index);
			ctl_json_str(&o, "domain", r->domain);
			ctl_json_str(&o, "address", r->address);
			ctl_json_str(&o, "nic", r->nic);
			ctl_json_u64(&o, "bytes", r->bytes);
			ctl_json_close_obj(&o);
		}
		ctl_json_close_arr(&a);
		ctl_json_end(&j);
		return;
	}
	fprintf(out,
	    "version:             %s\n"
	    "sidecar id:          %s\n"
	    "pid:                 %u\n"
	    "uptime:              %llu.%03llu s\n"
	    "provider:            %s\n"
	    "fabric:              %s\n"
	    "domain:              %s\n"
	    "fabric address:      %s\n"
	    "engine socket:       %s\n"
	    "control url:         %s\n"
	    "peer url:            %s\n"
	    "engines:             %llu\n"
	    "peers:               %llu\n"
	    "regions:             %llu\n"
	    "transfers in flight: %llu\n"
	    "transfers total:     %llu\n"
	    "transfers failed:    %llu\n"
	    "bytes total:         %llu\n",
	    or_dash(s->version), or_dash(s->sidecar_id), s->pid,
	    (unsigned long long)(s->uptime_ms / 1000),
	    (unsigned long long)(s->uptime_ms % 1000), or_dash(s->provider),
	    or_dash(s->fabric), or_dash(s->domain), or_dash(s->fabric_addr),
	    or_dash(s->engine_socket), or_dash(s->control_url),
	    or_dash(s->peer_url), (unsigned long long)s->engines,
	    (unsigned long long)s->peers, (unsigned long long)s->regions,
	    (unsigned long long)s->xfers_in_flight,
	    (unsigned long long)s->xfers_total,
	    (unsigned long long)s->xfers_failed,
	    (unsigned long long)s->bytes_total);
	for (size_t i = 0; i < s->n_rails; i++) {
		const Kvf__Ctl__RailStatus *r = s->rails[i];
		char b[32];
		fprintf(out, "rail %-2u              %s at %s, %s posted%s%s\n",
		    r->index, or_dash(r->domain), or_dash(r->address),
		    ctl_fmt_bytes(b, sizeof b, r->bytes),
		    r->nic && r->nic[0] ? ", NIC " : "",
		    r->nic && r->nic[0] ? r->nic : "");
	}
}

const struct ctl_cmd ctl_cmd_status = {
	.name = "status",
	.args = "",
	.help = "version, uptime, fabric, addresses and counters",
	.build = build,
	.reply = KVF__CTL__REPLY__BODY_STATUS,
	.print = print,
};
