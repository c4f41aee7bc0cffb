/*
 * client/kvferryctl_stats.c - `kvferryctl stats [--interval SEC]`,
 * `stats --watch [SEC] [--count N]` and `log-level [LEVEL]`.
 *
 * The sidecar answers raw counters with its own clock; rates are the
 * difference of two samples over the difference of their clocks, so a
 * slow control link does not bend them. GB/s is 1e9 bytes per second
 * (bytes per nanosecond). Latency percentiles are estimated from the
 * histogram: the bucket holding the rank, interpolated linearly between
 * its bounds; a rank in the last (+Inf) bucket reports that bucket's
 * lower bound, as "at least". Interval percentiles use the buckets'
 * difference; "since start" the totals.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/kvferry.h"
#include "client/kvferryctl.h"

struct rates {
	double secs, gbps, write_gbps, read_gbps, xfers_s, errors_s;
	double p50, p90, p99;   /* µs over the interval; NAN: none ended */
	double tp50, tp90, tp99; /* µs since start */
	uint64_t n_interval;
};

static int sample(const struct ctl_conn *c, Kvf__Ctl__Reply **out)
{
	Kvf__Ctl__Request req = KVF__CTL__REQUEST__INIT;
	Kvf__Ctl__StatsRequest sr = KVF__CTL__STATS_REQUEST__INIT;

	req.body_case = KVF__CTL__REQUEST__BODY_STATS;
	req.stats = &sr;
	return ctl_request(c, "stats", &req, KVF__CTL__REPLY__BODY_STATS, out);
}

/* The q-quantile (0..1) of counts[0..n] (n bounds, +Inf last), in µs. */
static double quantile(const uint64_t *bounds, const uint64_t *counts,
                       size_t n, double q)
{
	uint64_t total = 0, cum = 0;
	double rank;

	for (size_t i = 0; i <= n; i++)
		total += counts[i];
	if (!total)
		return NAN;
	rank = q * (double)total;
	for (size_t i = 0; i <= n; i++) {
		double lo = i ? (double)bounds[i - 1] : 0, hi;
		if ((double)(cum + counts[i]) < rank || !counts[i]) {
			cum += counts[i];
			continue;
		}
		if (i == n)
			return lo;
		hi = (double)bounds[i];
		return lo + (hi - lo) * (rank - (double)cum) /
		    (double)counts[i];
	}
	return n ? (double)bounds[n - 1] : NAN;
}

static int compute(const Kvf__Ctl__StatsReply *a,
                   const Kvf__Ctl__StatsReply *b, struct rates *r)
{
	size_t n = b->n_lat_bounds_us;
	uint64_t *d;
	double ns;

	memset(r, 0, sizeof(*r));
	if (b->n_lat_buckets != n + 1 || a->n_lat_buckets != n + 1)
		return -1;
	ns = (double)(b->sample_ns - a->sample_ns);
	if (ns <= 0)
		ns = 1;
	r->secs = ns / 1e9;
	r->write_gbps = (double)(b->write_bytes - a->write_bytes) / ns;
	r->read_gbps = (double)(b->read_bytes - a->read_bytes) / ns;
	r->gbps = r->write_gbps + r->read_gbps;
	r->xfers_s = (double)(b->writes + b->reads - a->writes - a->reads) /
	    r->secs;
	r->errors_s = (double)(b->xfers_failed - a->xfers_failed) / r->secs;
	if (!(d = calloc(n + 1, sizeof(*d))))
		return -1;
	for (size_t i = 0; i <= n; i++) {
		d[i] = b->lat_buckets[i] - a->lat_buckets[i];
		r->n_interval += d[i];
	}
	r->p50 = quantile(b->lat_bounds_us, d, n, 0.50);
	r->p90 = quantile(b->lat_bounds_us, d, n, 0.90);
	r->p99 = quantile(b->lat_bounds_us, d, n, 0.99);
	r->tp50 = quantile(b->lat_bounds_us, b->lat_buckets, n, 0.50);
	r->tp90 = quantile(b->lat_bounds_us, b->lat_buckets, n, 0.90);
	r->tp99 = quantile(b->lat_bounds_us, b->lat_buckets, n, 0.99);
	free(d);
	return 0;
}

static void json_sample(FILE *out, const Kvf__Ctl__StatsReply *b,
                        const struct rates *r)
{
	struct ctl_json j, o, e;

	ctl_json_begin(&j, out);
	ctl_json_f64(&j, "interval_s", r->secs);
	ctl_json_f64(&j, "gbps", r->gbps);
	ctl_json_f64(&j, "write_gbps", r->write_gbps);
	ctl_json_f64(&j, "read_gbps", r->read_gbps);
	ctl_json_f64(&j, "xfers_per_s", r->xfers_s);
	ctl_json_f64(&j, "errors_per_s", r->errors_s);
	ctl_json_u64(&j, "xfers_in_flight", b->xfers_in_flight);
	ctl_json_bool(&j, "draining", b->draining);
	ctl_json_obj(&j, "latency_us", &o);
	ctl_json_u64(&o, "count", r->n_interval);
	ctl_json_f64(&o, "p50", r->p50);
	ctl_json_f64(&o, "p90", r->p90);
	ctl_json_f64(&o, "p99", r->p99);
	ctl_json_close_obj(&o);
	ctl_json_obj(&j, "latency_us_since_start", &o);
	ctl_json_u64(&o, "count", b->lat_count);
	ctl_json_f64(&o, "p50", r->tp50);
	ctl_json_f64(&o, "p90", r->tp90);
	ctl_json_f64(&o, "p99", r->tp99);
	ctl_json_close_obj(&o);
	ctl_json_obj(&j, "totals", &o);
	ctl_json_u64(&o, "writes", b->writes);
	ctl_json_u64(&o, "reads", b->reads);
	ctl_json_u64(&o, "write_bytes", b->write_bytes);
	ctl_json_u64(&o, "read_bytes", b->read_bytes);
	ctl_json_u64(&o, "xfers_total", b->xfers_total);
	ctl_json_u64(&o, "xfers_failed", b->xfers_failed);
	ctl_json_u64(&o, "notifs_sent", b->notifs_sent);
	ctl_json_u64(&o, "notifs_received", b->notifs_received);
	ctl_json_u64(&o, "inline_sent", b->inline_sent);
	ctl_json_u64(&o, "inline_received", b->inline_received);
	ctl_json_u64(&o, "inline_dropped", b->inline_dropped);
	ctl_json_u64(&o, "wakeups_sent", b->wakeups_sent);
	ctl_json_u64(&o, "wakeups_received", b->wakeups_received);
	ctl_json_u64(&o, "regions_gone_sent", b->regions_gone_sent);
	ctl_json_u64(&o, "regions_gone_received",
	             b->regions_gone_received);
	ctl_json_u64(&o, "uptime_ms", b->uptime_ms);
	ctl_json_close_obj(&o);
	ctl_json_obj(&j, "errors", &e);
	for (size_t i = 0; i < b->n_errors; i++)
		ctl_json_u64(&e, b->errors[i]->name, b->errors[i]->count);
	ctl_json_close_obj(&e);
	ctl_json_end(&j);
}

static void text_sample(FILE *out, const Kvf__Ctl__StatsReply *b,
                        const struct rates *r)
{
	char p[3][32];

	fprintf(out, "interval:            %.3f s\n", r->secs);
	fprintf(out, "throughput:          %.3f GB/s (write %.3f, read %.3f)"
	    "\n", r->gbps, r->write_gbps, r->read_gbps);
	fprintf(out, "transfers:           %.1f /s\n", r->xfers_s);
	fprintf(out, "errors:              %.1f /s\n", r->errors_s);
	fprintf(out, "in flight:           %llu%s\n",
	    (unsigned long long)b->xfers_in_flight,
	    b->draining ? " (draining)" : "");
	fprintf(out, "latency p50/p90/p99: %s / %s / %s (%llu transfers in "
	    "the interval)\n", ctl_fmt_us(p[0], 32, r->p50),
	    ctl_fmt_us(p[1], 32, r->p90), ctl_fmt_us(p[2], 32, r->p99),
	    (unsigned long long)r->n_interval);
	fprintf(out, "  since start:       %s / %s / %s (%llu transfers)\n",
	    ctl_fmt_us(p[0], 32, r->tp50), ctl_fmt_us(p[1], 32, r->tp90),
	    ctl_fmt_us(p[2], 32, r->tp99),
	    (unsigned long long)b->lat_count);
	fprintf(out, "totals:              %llu writes, %llu reads, %llu "
	    "failed, %llu bytes\n", (unsigned long long)b->writes,
	    (unsigned long long)b->reads,
	    (unsigned long long)b->xfers_failed,
	    (unsigned long long)(b->write_bytes + b->read_bytes));
	if (b->inline_sent || b->inline_received || b->inline_dropped)
		fprintf(out, "inline writes:       %llu sent, %llu received, "
		    "%llu dropped\n", (unsigned long long)b->inline_sent,
		    (unsigned long long)b->inline_received,
		    (unsigned long long)b->inline_dropped);
	for (size_t i = 0; i < b->n_errors; i++)
		fprintf(out, "errors since start:  %s: %llu\n",
		    b->errors[i]->name,
		    (unsigned long long)b->errors[i]->count);
}

static void text_row(FILE *out, const Kvf__Ctl__StatsReply *b,
                     const struct rates *r)
{
	char p[3][32], ts[16];
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(out, "%-8s %9.3f %10.1f %9.1f %9llu %9s %9s %9s\n", ts,
	    r->gbps, r->xfers_s, r->errors_s,
	    (unsigned long long)b->xfers_in_flight,
	    ctl_fmt_us(p[0], 32, r->p50), ctl_fmt_us(p[1], 32, r->p90),
	    ctl_fmt_us(p[2], 32, r->p99));
}

static void sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= 0.01 && v <= 3600))
		return -1;
	*out = v;
	return 0;
}

static int stats_run(const struct ctl_conn *c, int argc, char **argv,
                     FILE *out)
{
	Kvf__Ctl__Reply *a = NULL, *b = NULL;
	const char *bad = "";
	double interval = 1.0;
	long count = 1, done = 0;
	int watch = 0, rv;
	struct rates r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--watch") == 0) {
			watch = 1;
			count = 0;
			if (i + 1 < argc && argv[i + 1][0] != '-' &&
			    parse_seconds(argv[i + 1], &interval) == 0)
				i++;
		} else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			if (parse_seconds(argv[++i], &interval) != 0) {
				bad = argv[i];
				goto bad_secs;
			}
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			char *end;
			count = strtol(argv[++i], &end, 10);
			if (*end || count < 1 || count > 1000000) {
				fprintf(stderr, "kvferryctl: stats --count '%s':"
				    " must be 1..1000000\n", argv[i]);
				return CTL_EXIT_USAGE;
			}
		} else {
			if (argv[i][0] != '-' && i > 1 &&
			    strcmp(argv[i - 1], "--watch") == 0) {
				bad = argv[i];
				goto bad_secs;
			}
			fprintf(stderr, "kvferryctl: stats: unknown argument "
			    "'%s' (usage: stats [--interval SEC] | stats "
			    "--watch [SEC] [--count N])\n", argv[i]);
			return CTL_EXIT_USAGE;
		}
	}
	/* A pipe closed by `head` ends a watch; no SIGPIPE death. */
	signal(SIGPIPE, SIG_IGN);
	if ((rv = sample(c, &a)) != 0)
		return rv;
	if (watch && !c->json)
		fprintf(out, "%-8s %9s %10s %9s %9s %9s %9s %9s\n", "TIME",
		    "GB/s", "XFERS/s", "ERRORS/s", "IN-FLIGHT", "P50", "P90",
		    "P99");
	for (;;) {
		sleep_s(interval);
		if ((rv = sample(c, &b)) != 0)
			break;
		if (compute(a->stats, b->stats, &r) != 0) {
			fprintf(stderr, "kvferryctl: stats: the sidecar at %s "
			    "sent a malformed histogram\n", c->url);
			rv = CTL_EXIT_ERROR;
			break;
		}
		if (c->json)
			json_sample(out, b->stats, &r);
		else if (watch)
			text_row(out, b->stats, &r);
		else
			text_sample(out, b->stats, &r);
		if (fflush(out) != 0) {
			rv = CTL_EXIT_ERROR;
			break;
		}
		kvf__ctl__reply__free_unpacked(a, NULL);
		a = b;
		b = NULL;
		if (count && ++done >= count)
			break;
	}
	if (b)
		kvf__ctl__reply__free_unpacked(b, NULL);
	kvf__ctl__reply__free_unpacked(a, NULL);
	return rv;

bad_secs:
	fprintf(stderr, "kvferryctl: stats: interval '%s': must be seconds "
	    "in 0.01..3600\n", bad);
	return CTL_EXIT_USAGE;
}

const struct ctl_cmd ctl_cmd_stats = {
	.name = "stats",
	.args = "[--interval S] | --watch [S] [--count N]",
	.help = "GB/s, transfers/s, errors/s, latency p50/p90/p99",
	.reply = KVF__CTL__REPLY__BODY_STATS,
	.run = stats_run,
};

/* ---- log-level --------------------------------------------------------- */

static int log_build(Kvf__Ctl__Request *req, int argc, char **argv,
                     char *err, size_t errlen)
{
	static Kvf__Ctl__LogLevelRequest r = KVF__CTL__LOG_LEVEL_REQUEST__INIT;
	static const char *const ok[] = { "error", "warn", "info", "debug" };

	if (argc > 2) {
		snprintf(err, errlen, "log-level takes at most one argument, "
		    "not '%s'", argv[2]);
		return CTL_EXIT_USAGE;
	}
	r.level = "";
	if (argc == 2) {
		for (size_t i = 0; i < 4; i++)
			if (strcmp(argv[1], ok[i]) == 0)
				r.level = argv[1];
		if (!r.level[0]) {
			snprintf(err, errlen, "log-level '%s': must be error, "
			    "warn, info or debug", argv[1]);
			return CTL_EXIT_USAGE;
		}
	}
	req->body_case = KVF__CTL__REQUEST__BODY_LOG_LEVEL;
	req->log_level = &r;
	return 0;
}

static void log_print(const Kvf__Ctl__Reply *rep, int json, FILE *out)
{
	const Kvf__Ctl__LogLevelReply *r = rep->log_level;
	struct ctl_json j;

	if (json) {
		ctl_json_begin(&j, out);
		ctl_json_str(&j, "level", r->level);
		ctl_json_str(&j, "previous", r->previous);
		ctl_json_end(&j);
	} else if (strcmp(r->level, r->previous) != 0) {
		fprintf(out, "log level: %s (was %s)\n", r->level,
		    r->previous);
	} else {
		fprintf(out, "log level: %s\n", r->level);
	}
}

const struct ctl_cmd ctl_cmd_log_level = {
	.name = "log-level",
	.args = "[error|warn|info|debug]",
	.help = "show or set the sidecar's log level",
	.build = log_build,
	.reply = KVF__CTL__REPLY__BODY_LOG_LEVEL,
	.print = log_print,
};
