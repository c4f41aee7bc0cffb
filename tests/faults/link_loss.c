/* Link loss: two network namespaces joined by a veth pair (10.200.x.y/30), one sidecar in each bound to its namespace address, engines on the shared filesystem; the link set down mid-transfer fails the pushes within their deadline, set up again new pushes work with bytes checked. Skips when not root or without netns; the namespaces are removed at exit, also on failure. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/netns.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (32u << 20)
#define DEADLINE_MS 3000

static struct tp_netns net;
static struct tp_daemon a, b;

int main(void)
{
	kvf_client *pre = NULL, *dec = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer ids[4], x;
	char why[160], url_a[64], url_b[64];
	const char *ip_a, *ip_b;
	int port;

	if (tp_netns_open(&net, "kv", 1, 200, TP_SAY_DIAG, why, sizeof why))
		skip_all("%s", why);
	alarm(120);
	ip_a = net.addr[0][TP_NS_A];
	ip_b = net.addr[0][TP_NS_B];

	plan(10);
	/* kvferryd through `ip netns exec`: a bin/ directory whose kvferryd
	 * enters $KVF_NETNS first. */
	if (!tp_netns_wrap_bins(&net))
		bail("no kvferryd wrapper");

	port = tp_free_port();
	snprintf(url_a, sizeof url_a, "tcp://%s:%d", ip_a, port);
	snprintf(url_b, sizeof url_b, "tcp://%s:%d", ip_b, port);
	{
		const char *args_a[] = {"--provider", "tcp", "--fabric-addr",
		                        ip_a, "--peer-url", url_a,
		                        "--heartbeat-ms", "300", NULL};
		const char *args_b[] = {"--provider", "tcp", "--fabric-addr",
		                        ip_b, "--peer-url", url_b,
		                        "--heartbeat-ms", "300", NULL};
		if (tp_netns_daemon_start(&net, TP_NS_A, &a, "a", args_a) ||
		    tp_netns_daemon_start(&net, TP_NS_B, &b, "b", args_b))
			bail("sidecars did not start in the namespaces");
	}
	tp_engine_open("pre", &a, NULL, REGION, &pre, &pbuf, &pr);
	tp_engine_open("dec", &b, NULL, REGION, &dec, &dbuf, &dr);
	is_int(kvf_resolve_peer(pre, b.peer_url, "dec", 3000, &peer), 0,
	       "A resolves decode across the veth link (%s)", kvf_last_error());

	tp_pattern_fill(pbuf, 1 << 20, 1);
	struct kvf_seg s = {pr, dr, 0, 0, 1 << 20};
	struct kvf_xfer_opts xo = {.tag = "ok", .tag_len = 2,
	                           .timeout_ms = DEADLINE_MS};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
	ok(tp_wait_event(dec, KVF_EV_NOTIF, 10000, &ev, &tp_wait_quiet) &&
	   tp_pattern_ok(dbuf, 1 << 20, 1), "a push crosses the link, bytes "
	   "checked");
	tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev, &tp_wait_quiet);

	/* Large pushes in flight, then the link goes down. */
	struct kvf_seg big[16];
	for (int i = 0; i < 16; i++)
		big[i] = (struct kvf_seg){pr, dr, 0, 0, REGION};
	for (int i = 0; i < 4; i++)
		kvf_submit(pre, KVF_WRITE, peer, big, 16, &xo, &ids[i]);
	usleep(100 * 1000);
	long t0 = tp_now_ms();
	ok(tp_netns_link_set(&net, 0, false) == 0, "link set down");
	int seen = 0, bad = 0, late = 0;
	while (tp_now_ms() - t0 < DEADLINE_MS + 5000 && seen < 4) {
		int n = 0;
		if (kvf_wait(pre, &ev, 1, 100, &n) != 0)
			break;
		if (!n || ev.type != KVF_EV_XFER_DONE)
			continue;
		seen++;
		if (ev.status != KVF_EPEER && ev.status != KVF_ETIMEDOUT &&
		    ev.status != 0)
			bad++;
		if (tp_now_ms() - t0 > DEADLINE_MS + 1000)
			late++;
		diag("push %llu: %s after %ld ms", (unsigned long long)ev.xfer,
		     kvf_strerror(ev.status), tp_now_ms() - t0);
	}
	is_int(seen, 4, "all four pushes ended");
	is_int(bad, 0, "with KVF_EPEER or KVF_ETIMEDOUT");
	is_int(late, 0, "within their %d ms deadline (+1 s)", DEADLINE_MS);

	ok(tp_netns_link_set(&net, 0, true) == 0, "link set up");
	/* The heartbeats see the peer again; allow them a few rounds. */
	int okd = 0;
	t0 = tp_now_ms();
	for (int i = 0; i < 40 && !okd; i++) {
		tp_pattern_fill(pbuf, 1 << 20, 100 + i);
		kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
		if (tp_wait_event(pre, KVF_EV_XFER_DONE, DEADLINE_MS + 2000,
		                  &ev, &tp_wait_quiet) && ev.status == 0)
			okd = 100 + i;
		else
			usleep(300 * 1000);
	}
	ok(okd, "after the link is back a new push completes (%ld ms)",
	   tp_now_ms() - t0);
	{
		int found = 0;
		long t1 = tp_now_ms();
		while (!found && tp_now_ms() - t1 < 5000 &&
		       tp_wait_event(dec, KVF_EV_NOTIF, 1000, &ev, &tp_wait_quiet))
			found = tp_pattern_ok(dbuf, 1 << 20, (uint32_t)okd);
		ok(found, "with its bytes in place");
	}
	kvf_close(pre);
	kvf_close(dec);
	/* Operations lost on the downed link may still be draining in the
	 * provider; a stop waits for them (bounded). */
	t0 = tp_now_ms();
	int stopped = tp_daemon_stop(&a, SIGTERM, 15000) == 0 &&
	              tp_daemon_stop(&b, SIGTERM, 15000) == 0;
	ok(stopped, "both sidecars stop (%ld ms)", tp_now_ms() - t0);
	tp_netns_close(&net);
	return tap_exit_status();
}
