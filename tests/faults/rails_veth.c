/* Rails over real links: two network namespaces joined by two veth pairs, a sidecar in each with one rail per pair (--fabric-addr a0,a1); a striped push, a striped pull and a spread of small pushes, with the bytes checked and the kernel's own counters of each veth showing that both links carried about half the data. Skips when not root or without netns; the namespaces are removed at exit, also on failure. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/netns.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (64u << 20)

static struct tp_netns net;
static struct tp_daemon a, b;

/* Bytes the kernel counted leaving a veth of namespace A. */
static long long tx_bytes(int link)
{
	return tp_netns_tx_bytes(&net, link, TP_NS_A);
}

int main(void)
{
	kvf_client *pre = NULL, *dec = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x;
	char why[160], url_a[64], url_b[64], fa[80], fb[80];
	int port;

	if (tp_netns_open(&net, "kr", 2, 210, TP_SAY_DIAG, why, sizeof why))
		skip_all("%s", why);
	alarm(120);

	plan(13);
	if (!tp_netns_wrap_bins(&net))
		bail("no kvferryd wrapper");

	port = tp_free_port();
	snprintf(url_a, sizeof url_a, "tcp://%s:%d", net.addr[0][TP_NS_A],
	         port);
	snprintf(url_b, sizeof url_b, "tcp://%s:%d", net.addr[0][TP_NS_B],
	         port);
	snprintf(fa, sizeof fa, "%s,%s", net.addr[0][TP_NS_A],
	         net.addr[1][TP_NS_A]);
	snprintf(fb, sizeof fb, "%s,%s", net.addr[0][TP_NS_B],
	         net.addr[1][TP_NS_B]);
	{
		const char *args_a[] = {"--provider", "tcp", "--fabric-addr", fa,
		                        "--peer-url", url_a, NULL};
		const char *args_b[] = {"--provider", "tcp", "--fabric-addr", fb,
		                        "--peer-url", url_b, NULL};
		if (tp_netns_daemon_start(&net, TP_NS_A, &a, "a", args_a) ||
		    tp_netns_daemon_start(&net, TP_NS_B, &b, "b", args_b))
			bail("sidecars did not start in the namespaces");
	}
	tp_engine_open("pre", &a, NULL, REGION, &pre, &pbuf, &pr);
	tp_engine_open("dec", &b, NULL, REGION, &dec, &dbuf, &dr);
	is_int(kvf_resolve_peer(pre, b.peer_url, "dec", 3000, &peer), 0,
	       "A resolves decode across the links (%s)", kvf_last_error());

	/* A striped push: each link carries about half. */
	long long t0 = tx_bytes(0), t1 = tx_bytes(1);
	tp_pattern_fill(pbuf, REGION, 1);
	struct kvf_seg s = {pr, dr, 0, 0, REGION};
	struct kvf_xfer_opts xo = {.tag = "big", .tag_len = 3};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
	ok(tp_wait_event(dec, KVF_EV_NOTIF, 30000, &ev, &tp_wait_quiet),
	   "decode notified of a 64 MiB push");
	ok(tp_pattern_ok(dbuf, REGION, 1), "every byte landed");
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 30000, &ev, &tp_wait_quiet) &&
	   ev.status == 0, "the push completed ok");
	t0 = tx_bytes(0) - t0;
	t1 = tx_bytes(1) - t1;
	diag("veth 0 sent %lld bytes, veth 1 %lld", t0, t1);
	ok(t0 > REGION / 4 && t1 > REGION / 4,
	   "both links carried a large share (kernel counters)");
	ok(t0 + t1 >= REGION && t0 + t1 < REGION + REGION / 8,
	   "together the data once, plus headers");

	/* A striped pull: the data flows B -> A, requests A -> B. */
	memset(pbuf, 0, REGION);
	tp_pattern_fill(dbuf, REGION, 2);
	kvf_submit(pre, KVF_READ, peer, &s, 1, NULL, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 30000, &ev, &tp_wait_quiet) &&
	   ev.status == 0, "a 64 MiB pull completed ok");
	ok(tp_pattern_ok(pbuf, REGION, 2), "the pulled bytes match");

	/* Small pushes, many in flight: spread over the links. */
	t0 = tx_bytes(0);
	t1 = tx_bytes(1);
	tp_pattern_fill(pbuf, REGION, 3);
	int n = 0, good = 0;
	for (int i = 0; i < 32; i++) {
		struct kvf_seg ss = {pr, dr, (uint64_t)i << 20, (uint64_t)i << 20,
		                     128u << 10};
		struct kvf_xfer_opts so = {.tag = "s", .tag_len = 1};
		n += kvf_submit(pre, KVF_WRITE, peer, &ss, 1, &so, &x) == 0;
	}
	is_int(n, 32, "32 small pushes submitted");
	for (int i = 0; i < 32; i++)
		good += tp_wait_event(dec, KVF_EV_NOTIF, 20000, &ev, &tp_wait_quiet);
	is_int(good, 32, "each was notified");
	good = 1;
	for (int i = 0; i < 32; i++)
		good &= memcmp(dbuf + ((uint64_t)i << 20),
		               pbuf + ((uint64_t)i << 20), 128u << 10) == 0;
	ok(good, "and their bytes landed");
	t0 = tx_bytes(0) - t0;
	t1 = tx_bytes(1) - t1;
	diag("small: veth 0 sent %lld bytes, veth 1 %lld", t0, t1);
	ok(t0 > (128 << 10) && t1 > (128 << 10),
	   "both links carried some of them");

	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 10000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 10000) == 0, "both sidecars stop");
	tp_netns_close(&net);
	return tap_exit_status();
}
