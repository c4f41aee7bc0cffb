/* Operating kvferry against two real sidecars moving real bytes: every kvferryctl command in text and JSON (checked with jq), /metrics, /livez and /readyz scraped over HTTP, transfers held in flight by a stopped peer, and drain finishing them while refusing new ones with KVF_EBUSY. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (64u << 20)

static struct kvf_event ev;
static char ctl_url[64];
static int mport;

/* jq -e expr on json: 1 when true. */
static int jq(const char *json, const char *expr)
{
	char path[320];
	struct tp_run r;
	FILE *f;
	int good;

	snprintf(path, sizeof path, "%s/out.json", tp_tmpdir());
	if (!(f = fopen(path, "w")))
		return 0;
	fputs(json ? json : "", f);
	fclose(f);
	const char *argv[] = {"/usr/bin/jq", "-e", expr, path, NULL};
	if (tp_run(&r, 5000, NULL, argv) != 0)
		return 0;
	good = r.status == 0;
	if (!good)
		diag("jq -e '%s' on %s: %d %s", expr, json, r.status, r.err);
	tp_run_free(&r);
	return good;
}

/* kvferryctl -u ctl_url [-o json] args... */
static int ctl(struct tp_run *r, int json, const char *a1, const char *a2,
               const char *a3, const char *a4)
{
	const char *argv[10];
	int n = 0;
	argv[n++] = tp_bin("kvferryctl");
	argv[n++] = "-u";
	argv[n++] = ctl_url;
	if (json) {
		argv[n++] = "-o";
		argv[n++] = "json";
	}
	argv[n++] = a1;
	argv[n++] = a2;
	argv[n++] = a3;
	argv[n++] = a4;
	argv[n] = NULL;
	return tp_run(r, 20000, NULL, argv);
}

/* kvferryctl in the background, output to a pipe (popen: fork + exec). */
static FILE *ctl_bg(const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' -u '%s' %s", tp_bin("kvferryctl"),
	         ctl_url, args);
	return popen(cmd, "r");
}

static char *slurp_close(FILE *f, int *status)
{
	size_t cap = 1 << 16, len = 0, n;
	char *s = malloc(cap);
	while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 1024 && !(s = realloc(s, cap *= 2)))
			break;
	}
	if (s)
		s[len] = '\0';
	*status = pclose(f);
	*status = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128;
	return s;
}

/* GET path on 127.0.0.1:mport; *code gets the HTTP status, returns the
 * body (malloc'ed) or NULL. */
static char *http_get(const char *path, int *code)
{
	struct sockaddr_in sa = {0};
	struct timeval tv = {5, 0};
	char req[256], *buf, *body;
	size_t cap = 1 << 20, len = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*code = 0;
	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)mport);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (void *)&sa, sizeof sa) != 0) {
		close(fd);
		return NULL;
	}
	n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n"
	             "Connection: close\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n || !(buf = malloc(cap))) {
		close(fd);
		return NULL;
	}
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", code) != 1 ||
	    !(body = strstr(buf, "\r\n\r\n"))) {
		free(buf);
		return NULL;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return buf;
}

/* The value of the sample named exactly `series` (name plus labels, as
 * written) in a Prometheus text body; -1 when absent. */
static double metric(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return atof(p + n + 1);
	return -1;
}

static char *scrape(void)
{
	int code;
	char *m = http_get("/metrics", &code);
	if (code != 200) {
		free(m);
		return NULL;
	}
	return m;
}

int main(void)
{
	struct tp_daemon a, b;
	char murl[64], a_peer[64], expr[1024], want[512], b_id[64] = "";
	struct kvf_connect_opts oa = {0}, ob = {0};
	struct kvf_layout lay = {.num_layers = 4, .num_blocks = 256,
	                         .block_bytes = 65536,
	                         .layer_stride = 256 * 65536,
	                         .block_stride = 65536};
	kvf_client *pre = NULL, *dec = NULL;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x, held, refused;
	struct tp_run r;
	char *m, *s;
	int code, st, nw = 0;

	if (access("/usr/bin/jq", X_OK) != 0)
		skip_all("jq is not installed (/usr/bin/jq)");
	plan(68);
	mport = tp_free_port();
	snprintf(murl, sizeof murl, "http://127.0.0.1:%d", mport);
	snprintf(ctl_url, sizeof ctl_url, "tcp://127.0.0.1:%d", tp_free_port());
	snprintf(a_peer, sizeof a_peer, "tcp://127.0.0.1:%d", tp_free_port());
	{
		/* A: remote (tcp://) control URL and the metrics endpoint. */
		/* Heartbeats slow enough that a peer stopped for a few
		 * seconds is not declared dead: its transfers must stay in
		 * flight. */
		const char *aa[] = {"--provider", "tcp", "--metrics-url", murl,
		                    "--heartbeat-ms", "20000",
		                    "--control-url", ctl_url, "--peer-url",
		                    a_peer, NULL};
		const char *ba[] = {"--provider", "tcp", NULL};
		if (tp_daemon_start(&a, "a", aa, NULL) != 0 ||
		    tp_daemon_start(&b, "b", ba, NULL) != 0)
			bail("sidecars did not start");
	}

	/* Probes before any engine. */
	s = http_get("/livez", &code);
	ok(code == 200 && s && strcmp(s, "ok\n") == 0, "/livez: 200 ok");
	free(s);
	s = http_get("/readyz", &code);
	is_int(code, 200, "/readyz: 200 with --provider tcp in use");
	like(s, "ready: provider tcp;ofi_rxm, as required by --provider",
	     "/readyz names the provider and the option");
	free(s);
	s = http_get("/nothing", &code);
	is_int(code, 404, "unknown path: 404");
	free(s);

	oa.socket_path = a.engine_socket;
	ob.socket_path = b.engine_socket;
	if (kvf_connect("prefill", &oa, &pre) != 0 ||
	    kvf_connect("decode", &ob, &dec) != 0)
		bail("engines cannot connect: %s", kvf_last_error());
	if (kvf_alloc_host(pre, REGION, &lay, (void **)&pbuf, &pr) != 0 ||
	    kvf_alloc_host(dec, REGION, NULL, (void **)&dbuf, &dr) != 0)
		bail("alloc: %s", kvf_last_error());
	if (kvf_resolve_peer(pre, b.peer_url, "decode", 5000, &peer) != 0)
		bail("resolve: %s", kvf_last_error());
	tp_pattern_fill(pbuf, REGION, 7);

	m = scrape();
	ok(m != NULL, "/metrics: 200");
	ok(m && strstr(m, "# HELP kvferry_transfers_total ") &&
	   strstr(m, "# TYPE kvferry_transfers_total counter\n") &&
	   strstr(m, "# TYPE kvferry_transfer_duration_seconds histogram\n"),
	   "HELP and TYPE lines");
	ok(m && strstr(m, "kvferry_info{version=\"0.1.0\",provider=\"tcp;"
	                  "ofi_rxm\""), "kvferry_info names version and provider");
	ok(m && metric(m, "kvferry_up") == 1 &&
	   metric(m, "kvferry_engines") == 1 &&
	   metric(m, "kvferry_regions") == 1 && metric(m, "kvferry_peers") == 1,
	   "up 1, one engine, one region, one peer");
	snprintf(want, sizeof want, "kvferry_peer_up{peer=\"%u\",engine=\""
	         "decode\",url=\"%s\"}", peer, b.peer_url);
	ok(m && metric(m, want) == 1, "per-peer health series: %s", want);
	ok(m && metric(m, "kvferry_transfers_total{op=\"write\"}") == 0 &&
	   metric(m, "kvferry_transfer_errors_total{code=\"KVF_EBUSY\"}") == 0,
	   "no transfers yet; error series exist at 0");
	free(m);

	/* Real transfers while `stats` samples its interval: write until
	 * its answer (which comes after the second sample) is readable,
	 * so some writes fall between the samples however slow the start. */
	{
		FILE *f = ctl_bg("-o json stats --interval 1");
		struct pollfd pfd = {f ? fileno(f) : -1, POLLIN, 0};
		long t0 = tp_now_ms();
		int good = 1;
		while (f && poll(&pfd, 1, 0) == 0 &&
		       tp_now_ms() - t0 < 15000) {
			struct kvf_seg sg = {pr, dr, (uint64_t)(nw % 6) << 20,
			                     (uint64_t)(nw % 6) << 20, 1u << 20};
			if (kvf_submit(pre, KVF_WRITE, peer, &sg, 1, NULL, &x) ||
			    !tp_wait_event(pre, KVF_EV_XFER_DONE, 10000, &ev,
			                   &tp_wait_quiet) ||
			    ev.status != 0) {
				good = 0;
				break;
			}
			nw++;
			usleep(20000);
		}
		ok(good && nw >= 6 && memcmp(dbuf, pbuf, 6u << 20) == 0,
		   "%d writes of 1 MiB landed, bytes match", nw);
		s = f ? slurp_close(f, &st) : NULL;
		is_int(st, 0, "stats -o json exits 0 (%ld ms)",
		       tp_now_ms() - t0);
		ok(jq(s, ".xfers_per_s > 0 and .gbps > 0 and .errors_per_s == 0 "
		         "and .latency_us.count >= 1 and .latency_us.count <= "
		         ".totals.writes and .totals.write_bytes == "
		         ".totals.writes * 1048576 and .interval_s >= 0.9"),
		   "stats json: rates from two samples, bytes per write");
		snprintf(expr, sizeof expr, ".totals.writes == %d or "
		         ".totals.writes == %d", nw, nw - 1);
		ok(jq(s, expr), "stats json: the writes done by then");
		ok(jq(s, ".latency_us.p50 > 0 and .latency_us.p50 <= "
		         ".latency_us.p90 and .latency_us.p90 <= .latency_us.p99"),
		   "stats json: p50 <= p90 <= p99");
		free(s);
	}
	ctl(&r, 0, "stats", "--interval", "0.1", NULL);
	snprintf(want, sizeof want, "totals:              %d writes", nw);
	ok(r.status == 0 && strstr(r.out, "throughput:") &&
	   strstr(r.out, "latency p50/p90/p99:") && strstr(r.out, want),
	   "stats text");
	tp_run_free(&r);
	ctl(&r, 0, "stats", "--watch", "0.1", "--count");
	is_int(r.status, 1, "stats --count without a number: usage error");
	tp_run_free(&r);
	{
		FILE *f = ctl_bg("stats --watch 0.1 --count 3");
		s = f ? slurp_close(f, &st) : NULL;
		int rows = 0;
		for (char *p = s; p && (p = strchr(p, '\n')); p++)
			rows++;
		ok(st == 0 && s && strncmp(s, "TIME", 4) == 0 && rows == 4,
		   "stats --watch 0.1 --count 3: header and 3 rows");
		free(s);
	}

	m = scrape();
	ok(m && metric(m, "kvferry_transfers_total{op=\"write\"}") == nw &&
	   metric(m, "kvferry_transfer_bytes_total{op=\"write\"}") ==
	   nw * 1048576.0, "/metrics: %d writes, their bytes counted", nw);
	ok(m && metric(m, "kvferry_transfer_duration_seconds_count") == nw &&
	   metric(m, "kvferry_transfer_duration_seconds_bucket{le=\"+Inf\"}") == nw &&
	   metric(m, "kvferry_transfer_duration_seconds_sum") > 0,
	   "histogram count, +Inf bucket and sum");
	ok(m && metric(m, "kvferry_rail_bytes_total{rail=\"0\",domain=\"lo\"}")
	   == nw * 1048576.0,
	   "/metrics: the one rail (lo) posted the writes' bytes");
	free(m);

	/* engines, regions, peers. */
	ctl(&r, 0, "engines", NULL, NULL, NULL);
	ok(r.status == 0 && strstr(r.out, "NAME") && strstr(r.out, "prefill"),
	   "engines text");
	tp_run_free(&r);
	ctl(&r, 1, "engines", NULL, NULL, NULL);
	ok(r.status == 0 && jq(r.out, ".engines | length == 1") &&
	   jq(r.out, ".engines[0] | .name == \"prefill\" and .regions == 1 and "
	             ".xfers_in_flight == 0 and .session_id > 0 and .pid > 0"),
	   "engines json");
	tp_run_free(&r);
	ctl(&r, 0, "regions", NULL, NULL, NULL);
	ok(r.status == 0 && strstr(r.out, "prefill") && strstr(r.out, "host") &&
	   strstr(r.out, "64.0 MiB") &&
	   strstr(r.out, "4 layers x 256 blocks x 64.0 KiB"),
	   "regions text: kind, size, layout");
	tp_run_free(&r);
	ctl(&r, 1, "regions", "prefill", NULL, NULL);
	snprintf(expr, sizeof expr, ".regions | length == 1 and .[0].id == %u "
	         "and .[0].kind == \"host\" and .[0].bytes == %u and "
	         ".[0].layout.num_layers == 4 and .[0].layout.block_bytes == "
	         "65536", pr, REGION);
	ok(r.status == 0 && jq(r.out, expr), "regions prefill json");
	tp_run_free(&r);
	ctl(&r, 0, "regions", "nobody", NULL, NULL);
	ok(r.status == 3 && strstr(r.err, "no engine named 'nobody'"),
	   "regions of an unknown engine: exit 3 naming it");
	tp_run_free(&r);
	{
		const char *argv[] = {tp_bin("kvferryctl"), "-u", b.control_url,
		                      "-o", "json", "status", NULL};
		tp_run(&r, 10000, NULL, argv);
		const char *p = strstr(r.out, "\"sidecar_id\":\"");
		if (p)
			sscanf(p + 14, "%32[0-9a-f]", b_id);
		tp_run_free(&r);
	}
	ctl(&r, 1, "peers", NULL, NULL, NULL);
	snprintf(expr, sizeof expr, ".peers | length == 1 and (.[0] | .id == %u "
	         "and .engine == \"decode\" and .url == \"%s\" and .sidecar_id "
	         "== \"%s\" and .provider == \"tcp;ofi_rxm\" and .path == "
	         "\"host\" and .health == \"healthy\" and .same_host == true "
	         "and .regions == 1 and .bytes >= %d and .errors == 0)", peer,
	         b.peer_url, b_id, nw * 1048576);
	ok(r.status == 0 && jq(r.out, expr), "peers json: %s", expr);
	tp_run_free(&r);
	ctl(&r, 0, "peers", NULL, NULL, NULL);
	ok(r.status == 0 && strstr(r.out, "decode") &&
	   strstr(r.out, b.peer_url) && strstr(r.out, "healthy"),
	   "peers text");
	tp_run_free(&r);
	ctl(&r, 0, "peers", "extra", NULL, NULL);
	is_int(r.status, 1, "peers with an argument: usage error");
	tp_run_free(&r);

	/* log-level. */
	ctl(&r, 0, "log-level", "debug", NULL, NULL);
	ok(r.status == 0 && strcmp(r.out, "log level: debug (was info)\n") == 0,
	   "log-level debug: %s", r.out);
	tp_run_free(&r);
	ctl(&r, 1, "log-level", NULL, NULL, NULL);
	ok(r.status == 0 &&
	   jq(r.out, ".level == \"debug\" and .previous == \"debug\""),
	   "log-level json reads it back");
	tp_run_free(&r);
	{
		struct kvf_seg sg = {pr, dr, 0, 0, 4096};
		kvf_submit(pre, KVF_WRITE, peer, &sg, 1, NULL, &x);
		tp_wait_event(pre, KVF_EV_XFER_DONE, 10000, &ev,
		              &tp_wait_quiet);
		s = tp_daemon_log(&a);
		snprintf(want, sizeof want, "DEBUG xfer %llu of prefill: done",
		         (unsigned long long)x);
		like(s, want, "at debug a transfer's end is logged");
		like(s, "log level: info -> debug (kvferryctl)",
		     "the change itself is logged");
		free(s);
	}
	ctl(&r, 0, "log-level", "loud", NULL, NULL);
	ok(r.status == 1 && strstr(r.err, "'loud'"), "log-level loud: exit 1");
	tp_run_free(&r);
	ctl(&r, 0, "log-level", "info", NULL, NULL);
	is_int(r.status, 0, "log-level info");
	tp_run_free(&r);

	/* A transfer held in flight: the target sidecar is stopped. */
	ctl(&r, 1, "xfers", NULL, NULL, NULL);
	ok(r.status == 0 && jq(r.out, ".xfers == []"), "xfers: none in flight");
	tp_run_free(&r);
	tp_pattern_fill(pbuf, REGION, 9);
	memset(dbuf, 0, REGION);
	kill(b.pid, SIGSTOP);
	{
		struct kvf_seg sg = {pr, dr, 0, 0, REGION};
		is_int(kvf_submit(pre, KVF_WRITE, peer, &sg, 1, NULL, &held), 0,
		       "a 64 MiB write to the stopped sidecar is submitted");
	}
	usleep(300000);
	ctl(&r, 1, "xfers", NULL, NULL, NULL);
	snprintf(expr, sizeof expr, ".xfers | length == 1 and (.[0] | "
	         ".xfer_id == %llu and .engine == \"prefill\" and .peer_id == "
	         "%u and .op == \"write\" and .bytes == %u and .ops_total >= 1 "
	         "and .ops_posted <= .ops_total and .age_us >= 200000 and "
	         ".status == \"ok\")", (unsigned long long)held, peer, REGION);
	ok(r.status == 0 && jq(r.out, expr), "xfers json: the held transfer");
	tp_run_free(&r);
	ctl(&r, 0, "xfers", NULL, NULL, NULL);
	snprintf(want, sizeof want, "%llu prefill", (unsigned long long)held);
	ok(r.status == 0 && strstr(r.out, "POSTED") && strstr(r.out, want) &&
	   strstr(r.out, "64.0 MiB"), "xfers text");
	tp_run_free(&r);
	ctl(&r, 1, "engines", NULL, NULL, NULL);
	ok(jq(r.out, ".engines[0].xfers_in_flight == 1"),
	   "engines counts it in flight");
	tp_run_free(&r);
	m = scrape();
	ok(m && metric(m, "kvferry_transfers_in_flight") == 1,
	   "/metrics: one transfer in flight");
	free(m);

	/* Drain while it is held: new transfers refused, drain waits. */
	{
		FILE *f = ctl_bg("-o json drain --wait 20");
		long t0 = tp_now_ms();
		usleep(400000);
		struct kvf_seg sg = {pr, dr, 0, 0, 4096};
		kvf_submit(pre, KVF_WRITE, peer, &sg, 1, NULL, &refused);
		ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev,
		                 &tp_wait_quiet) &&
		   ev.xfer == refused && ev.status == KVF_EBUSY,
		   "a transfer submitted while draining ends with KVF_EBUSY");
		like(ev.message, "draining", "its message: %s", ev.message);
		s = http_get("/readyz", &code);
		ok(code == 503 && s && strstr(s, "not ready: draining"),
		   "/readyz: 503 while draining");
		free(s);
		m = scrape();
		ok(m && metric(m, "kvferry_draining") == 1 &&
		   metric(m, "kvferry_ready") == 0, "/metrics: draining 1, ready 0");
		free(m);
		ctl(&r, 1, "stats", "--interval", "0.05", NULL);
		ok(jq(r.out, ".draining == true and .xfers_in_flight == 1"),
		   "stats shows draining with one in flight");
		tp_run_free(&r);
		kill(b.pid, SIGCONT);
		ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 20000, &ev,
		                 &tp_wait_quiet) && ev.xfer == held &&
		   ev.status == 0, "the held transfer completes after SIGCONT");
		is_blob(dbuf, pbuf, REGION, "and its 64 MiB arrived intact");
		s = f ? slurp_close(f, &st) : NULL;
		is_int(st, 0, "drain exits 0 once drained (%ld ms)",
		       tp_now_ms() - t0);
		snprintf(expr, sizeof expr, ".drained == true and .draining == "
		         "true and .was_draining == false and .in_flight == 0 and "
		         "(.waited_for | length == 1) and .waited_for[0].xfer_id "
		         "== %llu and .waited_ms >= 300", (unsigned long long)held);
		ok(jq(s, expr), "drain json: what it waited for");
		free(s);
	}
	s = tp_daemon_log(&a);
	like(s, "drain: requested by kvferryctl", "drain logged");
	like(s, "transfers in flight finished; the sidecar is drained",
	     "drained logged");
	free(s);
	ctl(&r, 0, "drain", "--wait", "1", NULL);
	ok(r.status == 0 && strstr(r.out, "drained in"),
	   "drain again (text): nothing in flight, exit 0");
	tp_run_free(&r);
	ctl(&r, 0, "drain", "--bogus", NULL, NULL);
	is_int(r.status, 1, "drain --bogus: usage error");
	tp_run_free(&r);
	ctl(&r, 0, "undrain", NULL, NULL, NULL);
	ok(r.status == 0 && strstr(r.out, "accepting transfers again (was "
	                                  "draining)"), "undrain");
	tp_run_free(&r);
	s = http_get("/readyz", &code);
	is_int(code, 200, "/readyz: 200 again");
	free(s);
	{
		struct kvf_seg sg = {pr, dr, 0, 0, 4096};
		kvf_submit(pre, KVF_WRITE, peer, &sg, 1, NULL, &x);
		ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 10000, &ev,
		                 &tp_wait_quiet) && ev.status == 0,
		   "transfers accepted again");
	}

	/* Drain that times out: exit 4, the sidecar stays draining. */
	kill(b.pid, SIGSTOP);
	{
		struct kvf_seg sg = {pr, dr, 0, 0, REGION};
		kvf_submit(pre, KVF_WRITE, peer, &sg, 1, NULL, &held);
	}
	usleep(200000);
	ctl(&r, 0, "drain", "--wait", "0.5", NULL);
	ok(r.status == 4 && strstr(r.out, "waiting for 1 in flight") &&
	   strstr(r.out, "not drained after") && r.ms < 5000,
	   "drain --wait 0.5 with a stuck transfer: exit 4 after %ld ms",
	   r.ms);
	tp_run_free(&r);
	ctl(&r, 1, "drain", "--cancel", NULL, NULL);
	ok(r.status == 0 && jq(r.out, ".draining == false and .was_draining "
	                              "== true and .in_flight == 1"),
	   "drain --cancel json");
	tp_run_free(&r);
	kill(b.pid, SIGCONT);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 20000, &ev, &tp_wait_quiet) &&
	   ev.xfer == held &&
	   ev.status == 0, "that transfer completes too");

	m = scrape();
	ok(m && metric(m, "kvferry_transfers_total{op=\"write\"}") == nw + 4 &&
	   metric(m, "kvferry_transfers_failed_total") == 1 &&
	   metric(m, "kvferry_transfers_in_flight") == 0,
	   "/metrics after all: %d writes ok, 1 refused, none in flight",
	   nw + 4);
	free(m);
	ctl(&r, 1, "stats", "--interval", "0.05", NULL);
	snprintf(expr, sizeof expr, ".totals.writes == %d and "
	         ".totals.xfers_failed == 1 and .latency_us_since_start.count "
	         "== %d", nw + 4, nw + 4);
	ok(jq(r.out, expr), "stats totals agree");
	tp_run_free(&r);

	/* Usage of the new commands. */
	ctl(&r, 0, "xfers", "now", NULL, NULL);
	is_int(r.status, 1, "xfers with an argument: usage error");
	tp_run_free(&r);
	ctl(&r, 0, "stats", "--interval", "0", NULL);
	is_int(r.status, 1, "stats --interval 0: usage error");
	tp_run_free(&r);

	kvf_close(pre);
	kvf_close(dec);
	ctl(&r, 1, "engines", NULL, NULL, NULL);
	ok(r.status == 0 && jq(r.out, ".engines == []"),
	   "engines empty after the engine left");
	tp_run_free(&r);

	/* A metrics port in use is a start-up error naming the option. */
	{
		struct tp_daemon c;
		const char *ca[] = {"--provider", "tcp", "--metrics-url", murl,
		                    NULL};
		tp_daemon_spawn(&c, "c", ca, NULL);
		ok(tp_daemon_wait(&c, 10000) == 0 && WIFEXITED(c.status) &&
		   WEXITSTATUS(c.status) == 1, "a second sidecar on the metrics "
		   "port exits 1");
		s = tp_daemon_log(&c);
		snprintf(want, sizeof want, "--metrics-url %s: "
		         "nng_http_server_start() failed: address in use", murl);
		like(s, want, "naming the option and the reason");
		free(s);
	}

	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0, "both sidecars stop");
	return tap_exit_status();
}
