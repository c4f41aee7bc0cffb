/*
 * tests/bench/rails_bench.c - multi-rail scaling over real links: two
 * network namespaces joined by N veth pairs, each shaped to a fixed rate
 * with tc (tbf) so that one link, not the CPU, is the bottleneck; a
 * kvferryd in each namespace with 1, 2, ... N rails (--fabric-addr with
 * one address per link); engines (this process) push large WRITEs through
 * them and time them to the decode engine's notification. The baseline is
 * fi_raw_bench over one of the same links (its target in the other
 * namespace), measured in the same run: the ideal for R rails is R times
 * that. The bytes of one transfer per row are checked.
 *
 *   rails_bench [-n max-rails] [-r rate|none] [-s bytes] [-i iters]
 *               [-w window] [-p provider] [-o csv]
 *
 * Needs root (namespaces, tc). Binaries from $KVF_BUILD (default
 * build/release).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/fi_raw.h"
#include "tests/tap/clock.h"
#include "tests/tap/ctl.h"
#include "tests/tap/events.h"
#include "tests/tap/netns.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"

#define PROG "rails_bench"
#define MAX_RAILS 8
#define MAX_SIZE (64ull << 30) /* -s: one region per engine */

static struct tp_netns net;
static struct tp_daemon da, db;

/* N veth pairs between namespaces A and B, each shaped to rate with tc's
 * token bucket (both directions) unless rate is "none". */
static void make_links(int n, const char *rate)
{
	char why[160];

	if (tp_netns_open(&net, "rb", n, 220, TP_SAY_STDERR, why, sizeof why))
		bench_die("%s", why);
	if (strcmp(rate, "none") == 0)
		return;
	for (int i = 0; i < n; i++)
		if (tp_sh(TP_SAY_STDERR, "ip netns exec %s tc qdisc add dev "
		          "%s root tbf rate %s burst 1mb latency 100ms && "
		          "ip netns exec %s tc qdisc add dev %s root tbf "
		          "rate %s burst 1mb latency 100ms", net.ns[TP_NS_A],
		          net.dev[i][TP_NS_A], rate, net.ns[TP_NS_B],
		          net.dev[i][TP_NS_B], rate) != 0)
			bench_die("tc tbf on veth pair %d failed (rate '%s')",
			    i, rate);
}

/* fi_raw_bench over link 0, target in B: GB/s of size-byte writes. */
static double raw_one_link(const char *real, const char *prov, uint64_t size,
                           int window)
{
	char cmd[1024], line[256];
	double g = 0;
	FILE *p;

	snprintf(cmd, sizeof cmd,
	         "ip netns exec %s %s/tests/bench/fi_raw_bench -p '%s' "
	         "-s %llu -S %llu -w %d -a %s -A %s -N %s -o csv",
	         net.ns[TP_NS_A],
	         real, prov,
	         (unsigned long long)size, (unsigned long long)size, window,
	         net.addr[0][TP_NS_A], net.addr[0][TP_NS_B], net.ns[TP_NS_B]);
	if (!(p = popen(cmd, "r")))
		return 0;
	while (fgets(line, sizeof line, p)) {
		struct raw_row row;

		if (raw_parse_row(line, &row) == 0)
			g = row.gbps;
	}
	pclose(p);
	return g;
}

/* The next event of type, by limit (tp_now_s()); dies on a failed wait or
 * transfer. */
static void wait_ev(kvf_client *c, enum kvf_event_type type, double limit)
{
	struct kvf_event ev;

	if (!tp_wait_event(c, type, (int)((limit - tp_now_s()) * 1000), &ev,
	                   &tp_wait_stderr))
		bench_die("no %s in time", type == KVF_EV_NOTIF
		                                 ? "notification"
		                                 : "completion");
	if (type == KVF_EV_XFER_DONE && ev.status != 0)
		bench_die("transfer failed: %s: %s", kvf_strerror(ev.status),
		    ev.message);
}

int main(int argc, char **argv)
{
	const char *rate = "1gbit", *prov = "tcp", *real;
	uint64_t size = 64ull << 20;
	int max = 4, iters = 6, window = 2, c;
	bool csv = false;
	double raw;

	bench_init(PROG, 1);
	while ((c = getopt(argc, argv, "n:r:s:i:w:p:o:")) != -1) {
		switch (c) {
		case 'n': max = bench_opt_int("-n", optarg, 1, MAX_RAILS);
		          break;
		case 'r': rate = optarg; break;
		case 's': size = bench_opt_size("-s", optarg, 4096, MAX_SIZE);
		          break;
		case 'i': iters = bench_opt_int("-i", optarg, 1, 100000);
		          break;
		case 'w': window = bench_opt_int("-w", optarg, 1, 1024);
		          break;
		case 'p': prov = optarg; break;
		case 'o': csv = strcmp(optarg, "csv") == 0; break;
		default:
			fprintf(stderr, "usage: " PROG " [-n max-rails] [-r "
			        "rate|none] [-s bytes] [-i iters] [-w window] "
			        "[-p provider] [-o csv]\n");
			return 2;
		}
	}
	if (optind < argc)
		bench_die("unexpected argument '%s'", argv[optind]);
	if (geteuid() != 0)
		bench_die("needs root (network namespaces, tc)");
	if (!getenv("KVF_BUILD"))
		setenv("KVF_BUILD", "build/release", 1);
	{
		static char abs[600];
		if (!realpath(getenv("KVF_BUILD"), abs))
			bench_die("KVF_BUILD %s: %s", getenv("KVF_BUILD"),
			    strerror(errno));
		real = abs;
		setenv("KVF_BUILD", abs, 1);
	}
	make_links(max, rate);
	raw = raw_one_link(real, prov, size < (64u << 20) ? size : 64u << 20,
	                   64);
	if (!tp_netns_wrap_bins(&net))
		bench_die("cannot make the kvferryd wrapper");
	if (csv)
		printf("provider,rate,rails,bytes,iters,gbps,raw_1link_gbps,"
		       "ideal_gbps,ratio,rail_share\n");
	else
		printf("# %s over %d veth pairs shaped to %s each, %llu-byte "
		       "WRITEs, window %d; raw = fi_raw_bench over one link\n"
		       "%-6s %10s %14s %12s %7s  %s\n", prov, max, rate,
		       (unsigned long long)size, window, "rails", "GB/s",
		       "raw 1-link", "ideal", "ratio", "bytes per rail (%)");
	for (int r = 1; r <= max; r++) {
		char fa[640] = "", fb[640] = "";
		char url_a[64], url_b[64];
		int port = tp_free_port();

		for (int i = 0; i < r; i++) {
			snprintf(fa + strlen(fa), sizeof fa - strlen(fa),
			         "%s%s", i ? "," : "", net.addr[i][TP_NS_A]);
			snprintf(fb + strlen(fb), sizeof fb - strlen(fb),
			         "%s%s", i ? "," : "", net.addr[i][TP_NS_B]);
		}
		snprintf(url_a, sizeof url_a, "tcp://%s:%d",
		         net.addr[0][TP_NS_A], port);
		snprintf(url_b, sizeof url_b, "tcp://%s:%d",
		         net.addr[0][TP_NS_B], port);
		const char *args_a[] = {"--provider", prov, "--fabric-addr",
		                        fa, "--peer-url", url_a, NULL};
		const char *args_b[] = {"--provider", prov, "--fabric-addr",
		                        fb, "--peer-url", url_b, NULL};
		char na[16], nb[16];
		snprintf(na, sizeof na, "a%d", r);
		snprintf(nb, sizeof nb, "b%d", r);
		if (tp_netns_daemon_start(&net, TP_NS_A, &da, na, args_a) ||
		    tp_netns_daemon_start(&net, TP_NS_B, &db, nb, args_b))
			bench_die("sidecars with %d rails did not start", r);

		struct kvf_connect_opts oa = {.socket_path = da.engine_socket};
		struct kvf_connect_opts ob = {.socket_path = db.engine_socket};
		kvf_client *pre, *dec;
		uint8_t *pb, *db_;
		kvf_region pr, dr;
		kvf_peer peer;
		kvf_xfer x;
		if (kvf_connect("pre", &oa, &pre) ||
		    kvf_connect("dec", &ob, &dec))
			bench_die("connect: %s", kvf_last_error());
		if (kvf_alloc_host(pre, size, NULL, (void **)&pb, &pr) ||
		    kvf_alloc_host(dec, size, NULL, (void **)&db_, &dr))
			bench_die("alloc: %s", kvf_last_error());
		if (kvf_resolve_peer(pre, db.peer_url, "dec", 5000, &peer))
			bench_die("resolve: %s", kvf_last_error());
		struct kvf_seg s = {pr, dr, 0, 0, size};
		struct kvf_xfer_opts o = {.tag = "r", .tag_len = 1};
		double limit = tp_now_s() + 600;

		/* Warm-up, then the bytes check on a fresh pattern. */
		tp_pattern_fill(pb, size, (uint64_t)r);
		kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o, &x);
		wait_ev(dec, KVF_EV_NOTIF, limit);
		wait_ev(pre, KVF_EV_XFER_DONE, limit);
		if (memcmp(pb, db_, size) != 0)
			bench_die("%d rails: the bytes that arrived differ",
			          r);

		long long before[MAX_RAILS], per[MAX_RAILS];
		if (tp_ctl_rails(&da, before, MAX_RAILS) != r)
			bench_die("kvferryctl status does not list %d rails",
			          r);
		double t0 = tp_now_s();
		int sent = 0, got = 0;
		while (got < iters) {
			while (sent < iters && sent - got < window) {
				if (kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o,
				               &x))
					bench_die("submit: %s",
					          kvf_last_error());
				sent++;
			}
			wait_ev(dec, KVF_EV_NOTIF, limit);
			got++;
		}
		double el = tp_now_s() - t0;
		for (int i = 0; i < iters; i++)
			wait_ev(pre, KVF_EV_XFER_DONE, limit);
		double gbps = (double)size * iters / el / 1e9;
		char share[128] = "";
		long long tot = 0;
		if (tp_ctl_rails(&da, per, MAX_RAILS) != r)
			bench_die("kvferryctl status does not list %d rails",
			          r);
		for (int i = 0; i < r; i++)
			tot += per[i] -= before[i];
		for (int i = 0; i < r; i++)
			snprintf(share + strlen(share),
			         sizeof share - strlen(share), "%s%.0f",
			         i ? (csv ? ";" : " ") : "",
			         tot ? 100.0 * (double)per[i] / (double)tot
			             : 0);
		double ideal = raw * r;
		if (csv)
			printf("%s,%s,%d,%llu,%d,%.3f,%.3f,%.3f,%.2f,%s\n",
			       prov, rate, r, (unsigned long long)size, iters,
			       gbps, raw, ideal, ideal > 0 ? gbps / ideal : 0,
			       share);
		else
			printf("%-6d %10.3f %14.3f %12.3f %7.2f  %s\n", r,
			       gbps, raw, ideal, ideal > 0 ? gbps / ideal : 0,
			       share);
		fflush(stdout);
		kvf_close(pre);
		kvf_close(dec);
		tp_daemon_stop(&da, SIGTERM, 5000);
		tp_daemon_stop(&db, SIGTERM, 5000);
	}
	return 0;
}
