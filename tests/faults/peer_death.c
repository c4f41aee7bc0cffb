/* The remote sidecar killed (SIGKILL) with eight pushes in flight: each ends exactly once with KVF_EPEER or KVF_ETIMEDOUT within its deadline, none hangs, a third sidecar's engine keeps receiving with bytes checked; SIGSTOP makes pushes time out within their deadline; after a restart on the same URL the same peer works again. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (32u << 20)
#define N 8
#define DEADLINE_MS 3000

int main(void)
{
	struct tp_daemon a, b, c;
	const char *const args[] = {"--provider", "tcp", NULL};
	kvf_client *pre = NULL, *db = NULL, *dc = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *cbuf, *bbuf;
	kvf_region pr, br, cr;
	kvf_peer pb, pc;
	kvf_xfer ids[N], x;
	int count[N] = {0}, bad = 0, late = 0;

	plan(11);
	if (tp_daemon_start(&a, "a", args, NULL) != 0 ||
	    tp_daemon_start(&b, "b", args, NULL) != 0 ||
	    tp_daemon_start(&c, "c", args, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("pre", &a, NULL, REGION, &pre, &pbuf, &pr);
	tp_engine_open("dec", &b, NULL, REGION, &db, &bbuf, &br);
	tp_engine_open("dec", &c, NULL, 1 << 20, &dc, &cbuf, &cr);
	if (kvf_resolve_peer(pre, b.peer_url, "dec", 0, &pb) != 0 ||
	    kvf_resolve_peer(pre, c.peer_url, "dec", 0, &pc) != 0)
		bail("resolve: %s", kvf_last_error());

	struct kvf_seg big[8];
	for (int i = 0; i < 8; i++)
		big[i] = (struct kvf_seg){pr, br, 0, 0, REGION};
	struct kvf_xfer_opts xo = {.tag = "b", .tag_len = 1,
	                           .timeout_ms = DEADLINE_MS};
	for (int i = 0; i < N; i++)
		if (kvf_submit(pre, KVF_WRITE, pb, big, 8, &xo, &ids[i]) != 0)
			bail("submit: %s", kvf_last_error());
	usleep(50 * 1000);
	long t0 = tp_now_ms();
	tp_daemon_stop(&b, SIGKILL, 5000);

	/* Meanwhile C keeps serving. */
	tp_pattern_fill(pbuf, 1 << 20, 11);
	struct kvf_seg sc = {pr, cr, 0, 0, 1 << 20};
	struct kvf_xfer_opts co = {.tag = "c", .tag_len = 1};
	kvf_submit(pre, KVF_WRITE, pc, &sc, 1, &co, &x);
	int c_ok = -1, seen = 0;
	while (tp_now_ms() - t0 < DEADLINE_MS + 5000 &&
	       (seen < N || c_ok < 0)) {
		int n = 0;
		if (kvf_wait(pre, &ev, 1, 100, &n) != 0)
			break;
		if (!n || ev.type != KVF_EV_XFER_DONE)
			continue;
		if (ev.xfer == x) {
			c_ok = ev.status;
			continue;
		}
		int k = -1;
		for (int i = 0; i < N; i++)
			if (ids[i] == ev.xfer)
				k = i;
		if (k < 0) {
			bad++;
			continue;
		}
		if (count[k]++ == 0)
			seen++;
		if (ev.status != KVF_EPEER && ev.status != KVF_ETIMEDOUT &&
		    ev.status != 0) {
			bad++;
			diag("push %d: %s: %s", k, kvf_strerror(ev.status),
			     ev.message);
		}
		if (tp_now_ms() - t0 > DEADLINE_MS + 1000)
			late++;
	}
	diag("all %d ended %ld ms after the kill", seen, tp_now_ms() - t0);
	is_int(seen, N, "each of the %d pushes to the killed peer ended", N);
	is_int(late, 0, "within its %d ms deadline (+1 s slack)", DEADLINE_MS);
	is_int(bad, 0, "with KVF_EPEER or KVF_ETIMEDOUT");
	{
		int more = 0;
		long t1 = tp_now_ms();
		while (tp_now_ms() - t1 < 1000) {
			int n = 0;
			if (kvf_wait(pre, &ev, 1, 100, &n) != 0)
				break;
			more += n && ev.type == KVF_EV_XFER_DONE;
		}
		int once = 1;
		for (int i = 0; i < N; i++)
			once &= count[i] == 1;
		ok(once && more == 0, "none twice");
	}
	is_int(c_ok, 0, "the push to the other peer completed");
	kvf_close(db); /* its sidecar is gone: bounded by its timeout */
	ok(tp_wait_event(dc, KVF_EV_NOTIF, 5000, &ev, &tp_wait_quiet) &&
	   tp_pattern_ok(cbuf, 1 << 20, 11), "with its bytes in place");

	/* SIGSTOP C: a push times out within its deadline. */
	kill(c.pid, SIGSTOP);
	struct kvf_xfer_opts so = {.tag = "s", .tag_len = 1,
	                           .timeout_ms = 1500};
	t0 = tp_now_ms();
	kvf_submit(pre, KVF_WRITE, pc, &sc, 1, &so, &x);
	int got = tp_wait_event(pre, KVF_EV_XFER_DONE, 8000, &ev,
	                        &tp_wait_quiet);
	long took = tp_now_ms() - t0;
	ok(got == 1 && (ev.status == KVF_ETIMEDOUT || ev.status == KVF_EPEER),
	   "a push to a stopped peer fails: %s", kvf_strerror(ev.status));
	ok(took < 2500, "within its 1500 ms deadline (%ld ms)", took);
	kill(c.pid, SIGCONT);

	/* B restarted on the same URL: the same peer works again. */
	{
		static char url[64], sock[300], ctl[320];
		snprintf(url, sizeof url, "%s", b.peer_url);
		snprintf(sock, sizeof sock, "%s", b.engine_socket);
		snprintf(ctl, sizeof ctl, "%s", b.control_url);
		const char *again[] = {"--provider", "tcp", "--peer-url", url,
		                       "--engine-socket", sock,
		                       "--control-url", ctl, NULL};
		if (tp_daemon_start(&b, "b2", again, NULL) != 0)
			bail("B did not restart");
	}
	tp_engine_open("dec", &b, NULL, REGION, &db, &bbuf, &br);
	kvf_peer pb2;
	is_int(kvf_resolve_peer(pre, b.peer_url, "dec", 0, &pb2), 0,
	       "a fresh resolve of the restarted peer works");
	is_int(pb2, pb, "under the same peer id");
	tp_pattern_fill(pbuf, 1 << 20, 12);
	struct kvf_seg sb = {pr, br, 0, 0, 1 << 20};
	kvf_submit(pre, KVF_WRITE, pb2, &sb, 1, &co, &x);
	ok(tp_wait_event(db, KVF_EV_NOTIF, 10000, &ev, &tp_wait_quiet) &&
	   tp_pattern_ok(bbuf, 1 << 20, 12), "bytes reach the restarted peer");

	kvf_close(pre);
	kvf_close(db);
	kvf_close(dc);
	tp_daemon_stop(&a, SIGTERM, 5000);
	tp_daemon_stop(&b, SIGTERM, 5000);
	tp_daemon_stop(&c, SIGTERM, 5000);
	return tap_exit_status();
}
