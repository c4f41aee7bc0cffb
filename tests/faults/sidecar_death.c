/* The engine's sidecar SIGKILLed: kvf_wait, kvf_submit, kvf_resolve_peer and kvf_alloc_host return KVF_ECLOSED within a bounded time, none hangs; a sidecar restarted on the same socket takes a new kvf_connect and transfers again, bytes checked. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (4u << 20)

int main(void)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", "tcp", NULL};
	struct kvf_connect_opts oa = {.timeout_ms = 2000};
	kvf_client *pre = NULL, *dec = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x;
	long t0, took;
	int rc, n;

	plan(17);
	if (tp_daemon_start(&a, "a", args, NULL) != 0 ||
	    tp_daemon_start(&b, "b", args, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("pre", &a, &oa, REGION, &pre, &pbuf, &pr);
	tp_engine_open("dec", &b, NULL, REGION, &dec, &dbuf, &dr);
	if (kvf_resolve_peer(pre, b.peer_url, "dec", 0, &peer) != 0)
		bail("set-up: %s", kvf_last_error());

	/* A large push in flight, then the sidecar dies under it. */
	struct kvf_seg big[16];
	for (int i = 0; i < 16; i++)
		big[i] = (struct kvf_seg){pr, dr, 0, 0, REGION};
	is_int(kvf_submit(pre, KVF_WRITE, peer, big, 16, NULL, &x), 0,
	       "a push is submitted");
	tp_daemon_stop(&a, SIGKILL, 5000);

	t0 = tp_now_ms();
	rc = 0;
	n = 0;
	/* kvf_wait(-1) would be forever if the death went unnoticed; the
	 * test's own alarm bounds it. */
	alarm(30);
	while (rc == 0 && tp_now_ms() - t0 < 10000)
		rc = kvf_wait(pre, &ev, 1, -1, &n);
	took = tp_now_ms() - t0;
	is_int(rc, KVF_ECLOSED, "kvf_wait(forever) returns KVF_ECLOSED");
	ok(took < 3000, "within %ld ms of the SIGKILL", took);
	like(kvf_last_error(), "sidecar", "message: %s", kvf_last_error());
	t0 = tp_now_ms();
	is_int(kvf_submit(pre, KVF_WRITE, peer, big, 1, NULL, &x), KVF_ECLOSED,
	       "kvf_submit: KVF_ECLOSED");
	is_int(kvf_cancel(pre, x), KVF_ECLOSED, "kvf_cancel: KVF_ECLOSED");
	is_int(kvf_resolve_peer(pre, b.peer_url, "dec", 0, &peer), KVF_ECLOSED,
	       "kvf_resolve_peer: KVF_ECLOSED");
	{
		void *p;
		kvf_region r;
		is_int(kvf_alloc_host(pre, 4096, NULL, &p, &r), KVF_ECLOSED,
		       "kvf_alloc_host: KVF_ECLOSED");
	}
	n = 1;
	is_int(kvf_poll(pre, &ev, 1, &n), KVF_ECLOSED, "kvf_poll: KVF_ECLOSED");
	ok(tp_now_ms() - t0 < 1000, "all of them at once (%ld ms)",
	   tp_now_ms() - t0);
	alarm(0);
	kvf_close(pre);
	pre = NULL;

	/* Restart on the same engine socket and control URL. */
	{
		const char *const again[] = {"--provider", "tcp",
		                             "--engine-socket", a.engine_socket,
		                             "--control-url", a.control_url,
		                             NULL};
		struct tp_daemon a2;
		is_int(tp_daemon_start(&a2, "a2", again, NULL), 0,
		       "a sidecar restarts on the same socket");
		a = a2;
	}
	oa.socket_path = a.engine_socket;
	is_int(kvf_connect("pre", &oa, &pre), 0,
	       "the engine connects again under the same name (%s)",
	       kvf_last_error());
	if (!pre)
		bail("no connection");
	is_int(kvf_alloc_host(pre, REGION, NULL, (void **)&pbuf, &pr), 0,
	       "allocates again");
	is_int(kvf_resolve_peer(pre, b.peer_url, "dec", 0, &peer), 0,
	       "resolves decode again");
	tp_pattern_fill(pbuf, REGION, 5);
	struct kvf_seg s = {pr, dr, 0, 0, REGION};
	struct kvf_xfer_opts xo = {.tag = "again", .tag_len = 5};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &xo, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 20000, &ev, &tp_wait_quiet) &&
	   ev.status == 0, "a push through the new sidecar completes (%s)",
	   ev.message);
	ok(tp_wait_event(dec, KVF_EV_NOTIF, 10000, &ev, &tp_wait_quiet) &&
	   ev.tag_len == 5 && !memcmp(ev.tag, "again", 5) &&
	   tp_pattern_ok(dbuf, REGION, 5),
	   "decode's notification comes with the bytes in place");

	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0, "both sidecars stop");
	return tap_exit_status();
}
