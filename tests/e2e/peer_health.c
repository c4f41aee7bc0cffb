/* A hung peer (SIGSTOP) and a dead peer (SIGKILL): transfers end within their deadline, heartbeats mark the peer dead, a restarted peer is handshaked again by itself. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

/* The completion of one transfer: its status, and how long it took; -1
 * when none came within limit_ms, -2 when kvf_wait failed. */
static int await_done(kvf_client *c, int limit_ms, long *took, char *msg)
{
	long t0 = tp_now_ms();
	struct kvf_event ev;
	int err = 0;
	struct tp_wait_opts o = {.say = TP_SAY_QUIET, .err = &err};

	if (!tp_wait_event(c, KVF_EV_XFER_DONE, limit_ms, &ev, &o))
		return err ? -2 : -1;
	*took = tp_now_ms() - t0;
	snprintf(msg, 160, "%s", ev.message);
	return ev.status;
}

int main(void)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", "tcp", "--heartbeat-ms", "300",
	                            NULL};
	struct kvf_connect_opts ob = {0};
	kvf_client *pre, *dec;
	uint8_t *pb, *db;
	kvf_region pr, dr;
	kvf_peer peer;
	char msg[160];
	long took;
	int rc;

	plan(12);
	if (tp_daemon_start(&a, "a", args, NULL) != 0 ||
	    tp_daemon_start(&b, "b", args, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("pre", &a, NULL, 1 << 20, &pre, &pb, &pr);
	tp_engine_open("dec", &b, NULL, 1 << 20, &dec, &db, &dr);
	if (kvf_resolve_peer(pre, b.peer_url, "dec", 0, &peer))
		bail("setup: %s", kvf_last_error());
	struct kvf_seg s = {pr, dr, 0, 0, 1 << 20};
	struct kvf_xfer_opts o = {.tag = "t", .tag_len = 1, .timeout_ms = 1500};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o, NULL);
	is_int(await_done(pre, 5000, &took, msg), 0, "transfer to a live peer");

	/* Hung peer: the transfer must end by its deadline or when the
	 * heartbeats give up, whichever is first. */
	kill(b.pid, SIGSTOP);
	usleep(100000);
	memset(pb, 7, 1 << 20);
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o, NULL);
	rc = await_done(pre, 6000, &took, msg);
	ok(rc == KVF_ETIMEDOUT || rc == KVF_EPEER,
	   "transfer to a stopped peer ends with %s", kvf_strerror(rc));
	ok(took < 3000, "within its 1.5 s deadline and heartbeat window "
	   "(%ld ms)", took);
	diag("%s", msg);
	usleep(1200000);
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o, NULL);
	rc = await_done(pre, 3000, &took, msg);
	is_int(rc, KVF_EPEER, "once heartbeats missed, new transfers fail at "
	       "once");
	ok(took < 500, "in %ld ms", took);
	like(msg, "heartbeats", "saying why: %s", msg);
	kill(b.pid, SIGCONT);
	usleep(900000);
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o, NULL);
	rc = await_done(pre, 5000, &took, msg);
	is_int(rc, 0, "after SIGCONT the peer is healthy again and transfers "
	       "work (%s)", msg);

	/* Dead peer, restarted on the same URL: handshaked again by the
	 * heartbeat thread, new keys, no kvf_resolve_peer needed. */
	kill(b.pid, SIGKILL);
	tp_daemon_wait(&b, 2000);
	kvf_close(dec);
	{
		char url[64];
		const char *const args2[] = {"--provider", "tcp",
		                             "--heartbeat-ms", "300", "--peer-url",
		                             url, NULL};
		snprintf(url, sizeof url, "%s", b.peer_url);
		if (tp_daemon_start(&b, "b2", args2, NULL) != 0)
			bail("restart failed");
	}
	ob.socket_path = b.engine_socket;
	is_int(kvf_connect("dec", &ob, &dec), 0, "engine reconnects to the "
	       "restarted sidecar");
	is_int(kvf_alloc_host(dec, 1 << 20, NULL, (void **)&db, &dr), 0,
	       "and registers again");
	usleep(1500000);
	s.remote_region = dr;
	memset(pb, 9, 1 << 20);
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o, NULL);
	rc = await_done(pre, 5000, &took, msg);
	is_int(rc, 0, "the same peer handle works with the new keys (%s)", msg);
	ok(db[0] == 9 && db[(1 << 20) - 1] == 9, "bytes arrived");
	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0, "both stop cleanly");
	return tap_exit_status();
}
