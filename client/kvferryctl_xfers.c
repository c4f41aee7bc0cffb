/*
 * client/kvferryctl_xfers.c - `kvferryctl xfers`, `drain [--wait SEC]`,
 * `drain --cancel` and `undrain`.
 *
 * drain sets the sidecar draining (new transfers are refused with
 * KVF_EBUSY), lists the transfers it waits for, and repeats the request,
 * each one waiting up to two seconds on the sidecar, until nothing is in
 * flight or --wait seconds (default 30) pass; then it exits 4 and the
 * sidecar stays draining, so a retry or undrain is the operator's call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/kvferry.h"
#include "client/kvferryctl.h"

#define DRAIN_DEFAULT_S 30
#define DRAIN_STEP_MS 2000

static void xfer_json(struct ctl_json *a, const Kvf__Ctl__XferInfo *x)
{
	struct ctl_json o;

	ctl_json_obj(a, NULL, &o);
	ctl_json_u64(&o, "xfer_id", x->xfer_id);
	ctl_json_str(&o, "engine", x->engine);
	ctl_json_u64(&o, "peer_id", x->peer_id);
	ctl_json_str(&o, "op", x->op);
	ctl_json_u64(&o, "ops_posted", x->ops_posted);
	ctl_json_u64(&o, "ops_total", x->ops_total);
	ctl_json_u64(&o, "ops_in_flight", x->ops_in_flight);
	ctl_json_u64(&o, "bytes", x->bytes);
	ctl_json_u64(&o, "age_us", x->age_us);
	ctl_json_str(&o, "status", x->status ? kvf_strerror((int)x->status) :
	                                       "ok");
	ctl_json_close_obj(&o);
}

static void xfer_table(FILE *out, Kvf__Ctl__XferInfo *const *v, size_t n,
                       const char *indent)
{
	char b1[32], b2[32], prog[32];

	fprintf(out, "%s%10s %-20s %5s %-5s %11s %7s %10s %9s  %s\n", indent,
	    "ID", "ENGINE", "PEER", "OP", "POSTED", "ON-WIRE", "BYTES", "AGE",
	    "STATUS");
	for (size_t i = 0; i < n; i++) {
		const Kvf__Ctl__XferInfo *x = v[i];
		snprintf(prog, sizeof(prog), "%u/%u", x->ops_posted,
		    x->ops_total);
		fprintf(out, "%s%10llu %-20s %5u %-5s %11s %7u %10s %9s  %s\n",
		    indent, (unsigned long long)x->xfer_id,
		    x->engine && x->engine[0] ? x->engine : "-", x->peer_id,
		    x->op, prog, x->ops_in_flight,
		    ctl_fmt_bytes(b1, sizeof(b1), x->bytes),
		    ctl_fmt_us(b2, sizeof(b2), (double)x->age_us),
		    x->status ? kvf_strerror((int)x->status) : "ok");
	}
}

/* ---- xfers ------------------------------------------------------------- */

static int xfers_build(Kvf__Ctl__Request *req, int argc, char **argv,
                       char *err, size_t errlen)
{
	static Kvf__Ctl__XfersRequest r = KVF__CTL__XFERS_REQUEST__INIT;

	if (argc > 1) {
		snprintf(err, errlen, "xfers takes no arguments, not '%s'",
		    argv[1]);
		return CTL_EXIT_USAGE;
	}
	req->body_case = KVF__CTL__REQUEST__BODY_XFERS;
	req->xfers = &r;
	return 0;
}

static void xfers_print(const Kvf__Ctl__Reply *rep, int json, FILE *out)
{
	const Kvf__Ctl__XfersReply *r = rep->xfers;
	struct ctl_json j, a;

	if (json) {
		ctl_json_begin(&j, out);
		ctl_json_arr(&j, "xfers", &a);
		for (size_t i = 0; i < r->n_xfers; i++)
			xfer_json(&a, r->xfers[i]);
		ctl_json_close_arr(&a);
		ctl_json_end(&j);
		return;
	}
	xfer_table(out, r->xfers, r->n_xfers, "");
}

const struct ctl_cmd ctl_cmd_xfers = {
	.name = "xfers",
	.args = "",
	.help = "transfers in flight: age, ops posted/total, bytes",
	.build = xfers_build,
	.reply = KVF__CTL__REPLY__BODY_XFERS,
	.print = xfers_print,
};

/* ---- drain, undrain ---------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int resume(const struct ctl_conn *c, const char *name, FILE *out)
{
	Kvf__Ctl__Request req = KVF__CTL__REQUEST__INIT;
	Kvf__Ctl__DrainRequest dr = KVF__CTL__DRAIN_REQUEST__INIT;
	Kvf__Ctl__Reply *rep;
	struct ctl_json j;
	int rv;

	dr.cancel = 1;
	req.body_case = KVF__CTL__REQUEST__BODY_DRAIN;
	req.drain = &dr;
	if ((rv = ctl_request(c, name, &req, KVF__CTL__REPLY__BODY_DRAIN,
	         &rep)) != 0)
		return rv;
	if (c->json) {
		ctl_json_begin(&j, out);
		ctl_json_bool(&j, "draining", rep->drain->draining);
		ctl_json_bool(&j, "was_draining", rep->drain->was_draining);
		ctl_json_u64(&j, "in_flight", rep->drain->in_flight);
		ctl_json_end(&j);
	} else {
		fprintf(out, "accepting transfers again (%s)\n",
		    rep->drain->was_draining ? "was draining" :
		                               "was not draining");
	}
	kvf__ctl__reply__free_unpacked(rep, NULL);
	return CTL_EXIT_OK;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= 0 && v <= 86400))
		return -1;
	*out = v;
	return 0;
}

static int drain_run(const struct ctl_conn *c, int argc, char **argv,
                     FILE *out)
{
	Kvf__Ctl__Request req = KVF__CTL__REQUEST__INIT;
	Kvf__Ctl__DrainRequest dr = KVF__CTL__DRAIN_REQUEST__INIT;
	Kvf__Ctl__Reply *rep = NULL, *first = NULL;
	struct ctl_conn step = *c;
	double wait_s = DRAIN_DEFAULT_S;
	uint64_t t0 = now_ms(), deadline, now, left = 0, calls = 0;
	struct ctl_json j, a;
	int rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cancel") == 0) {
			if (argc != 2) {
				fprintf(stderr, "kvferryctl: drain --cancel "
				    "takes no other argument\n");
				return CTL_EXIT_USAGE;
			}
			return resume(c, "drain --cancel", out);
		}
		if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
			if (parse_seconds(argv[++i], &wait_s) != 0) {
				fprintf(stderr, "kvferryctl: drain --wait '%s': "
				    "must be seconds in 0..86400\n", argv[i]);
				return CTL_EXIT_USAGE;
			}
			continue;
		}
		fprintf(stderr, "kvferryctl: drain: unknown argument '%s' "
		    "(usage: drain [--wait SEC] | drain --cancel)\n", argv[i]);
		return CTL_EXIT_USAGE;
	}
	deadline = t0 + (uint64_t)(wait_s * 1000);
	req.body_case = KVF__CTL__REQUEST__BODY_DRAIN;
	req.drain = &dr;
	for (;;) {
		now = now_ms();
		dr.wait_ms = now >= deadline ? 0 :
		    (uint32_t)(deadline - now < DRAIN_STEP_MS ? deadline - now :
		                                                DRAIN_STEP_MS);
		/* The sidecar may hold the request for wait_ms. */
		step.timeout_ms = c->timeout_ms + (int)dr.wait_ms;
		rv = ctl_request(&step, "drain", &req, KVF__CTL__REPLY__BODY_DRAIN,
		    &rep);
		if (rv != 0) {
			if (first)
				kvf__ctl__reply__free_unpacked(first, NULL);
			return rv;
		}
		calls++;
		left = rep->drain->in_flight;
		if (!first) {
			first = rep;
			if (!c->json && first->drain->n_waiting) {
				fprintf(out, "draining: new transfers are "
				    "refused (busy); waiting for %zu in "
				    "flight:\n", first->drain->n_waiting);
				xfer_table(out, first->drain->waiting,
				    first->drain->n_waiting, "  ");
				fflush(out);
			}
		} else {
			kvf__ctl__reply__free_unpacked(rep, NULL);
		}
		rep = NULL;
		if (left == 0 || now_ms() >= deadline)
			break;
	}
	now = now_ms();
	if (c->json) {
		ctl_json_begin(&j, out);
		ctl_json_bool(&j, "draining", 1);
		ctl_json_bool(&j, "was_draining", first->drain->was_draining);
		ctl_json_bool(&j, "drained", left == 0);
		ctl_json_u64(&j, "in_flight", left);
		ctl_json_u64(&j, "waited_ms", now - t0);
		ctl_json_arr(&j, "waited_for", &a);
		for (size_t i = 0; i < first->drain->n_waiting; i++)
			xfer_json(&a, first->drain->waiting[i]);
		ctl_json_close_arr(&a);
		ctl_json_end(&j);
	} else if (left == 0) {
		fprintf(out, "drained in %llu ms: no transfers in flight; new "
		    "ones are refused until kvferryctl undrain\n",
		    (unsigned long long)(now - t0));
	} else {
		fprintf(out, "not drained after %.1f s: %llu transfers still "
		    "in flight (kvferryctl xfers lists them); the sidecar "
		    "stays draining\n", (double)(now - t0) / 1000,
		    (unsigned long long)left);
	}
	kvf__ctl__reply__free_unpacked(first, NULL);
	return left == 0 ? CTL_EXIT_OK : CTL_EXIT_PENDING;
}

const struct ctl_cmd ctl_cmd_drain = {
	.name = "drain",
	.args = "[--wait SEC] | --cancel",
	.help = "refuse new transfers, wait for those in flight",
	.reply = KVF__CTL__REPLY__BODY_DRAIN,
	.run = drain_run,
};

static int undrain_run(const struct ctl_conn *c, int argc, char **argv,
                       FILE *out)
{
	if (argc > 1) {
		fprintf(stderr, "kvferryctl: undrain takes no arguments, not "
		    "'%s'\n", argv[1]);
		return CTL_EXIT_USAGE;
	}
	return resume(c, "undrain", out);
}

const struct ctl_cmd ctl_cmd_undrain = {
	.name = "undrain",
	.args = "",
	.help = "accept transfers again (same as drain --cancel)",
	.reply = KVF__CTL__REPLY__BODY_DRAIN,
	.run = undrain_run,
};
