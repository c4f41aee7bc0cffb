/* kvf_cancel: a cancelled 1 GiB push ends exactly once, KVF_ECANCELED (or 0 if it had finished), and notifies the peer only if it completed; 200 small transfers cancelled at random moments each end exactly once with the notification count matching the successes; cancelling an unknown or finished transfer changes nothing. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (32u << 20)
#define SMALL 200

int main(void)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", "tcp", NULL};
	kvf_client *pre = NULL, *dec = NULL;
	struct kvf_event ev;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x;
	int others = 0;

	plan(12);
	if (tp_daemon_start(&a, "a", args, NULL) != 0 ||
	    tp_daemon_start(&b, "b", args, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("pre", &a, NULL, REGION, &pre, &pbuf, &pr);
	tp_engine_open("dec", &b, NULL, REGION, &dec, &dbuf, &dr);
	if (kvf_resolve_peer(pre, b.peer_url, "dec", 0, &peer) != 0)
		bail("set-up: %s", kvf_last_error());

	/* One big push, cancelled while it runs. */
	struct kvf_seg big[32];
	for (int i = 0; i < 32; i++)
		big[i] = (struct kvf_seg){pr, dr, 0, 0, REGION};
	struct kvf_xfer_opts xo = {.tag = "big", .tag_len = 3};
	is_int(kvf_submit(pre, KVF_WRITE, peer, big, 32, &xo, &x), 0,
	       "a 1 GiB push is submitted");
	usleep(100 * 1000);
	long t0 = tp_now_ms();
	is_int(kvf_cancel(pre, x), 0, "kvf_cancel accepts it");
	int got = tp_wait_event(pre, KVF_EV_XFER_DONE, 30000, &ev,
	                        &tp_wait_quiet);
	long took = tp_now_ms() - t0;
	ok(got == 1 && ev.xfer == x &&
	   (ev.status == KVF_ECANCELED || ev.status == 0),
	   "it ends with %s after %ld ms", kvf_strerror(ev.status), took);
	int big_status = got == 1 ? ev.status : -1;
	int dones = 0, notifs = 0;
	t0 = tp_now_ms();
	while (tp_now_ms() - t0 < 1500) {
		int n = 0;
		if (kvf_wait(pre, &ev, 1, 50, &n) == 0 && n &&
		    ev.type == KVF_EV_XFER_DONE)
			dones++;
		n = 0;
		if (kvf_wait(dec, &ev, 1, 50, &n) == 0 && n &&
		    ev.type == KVF_EV_NOTIF)
			notifs++;
	}
	is_int(dones, 0, "and never a second time");
	is_int(notifs, big_status == 0 ? 1 : 0,
	       "decode notified only if it completed");
	is_int(kvf_cancel(pre, x), 0, "cancelling it again is accepted");
	is_int(kvf_cancel(pre, 999999), 0, "so is an unknown id");

	/* Small transfers, cancelled after a random short delay. */
	int per_id[SMALL + 1] = {0}, oks = 0, canc = 0, bad = 0;
	kvf_xfer ids[SMALL];
	srand(7);
	for (int i = 0; i < SMALL; i++) {
		struct kvf_seg s = {pr, dr, (uint64_t)i * 65536,
		                    (uint64_t)i * 65536,
		                    4096 + (uint64_t)(rand() % 60000)};
		char tag[16];
		int tl = snprintf(tag, sizeof tag, "s%d", i);
		struct kvf_xfer_opts so = {.tag = tag, .tag_len = (uint32_t)tl};
		if (kvf_submit(pre, KVF_WRITE, peer, &s, 1, &so, &ids[i]) != 0)
			bail("submit %d: %s", i, kvf_last_error());
		if (rand() % 3)
			usleep((useconds_t)(rand() % 300));
		kvf_cancel(pre, ids[i]);
	}
	t0 = tp_now_ms();
	int seen = 0;
	while (tp_now_ms() - t0 < 20000 && seen < SMALL) {
		int n = 0;
		if (kvf_wait(pre, &ev, 1, 100, &n) != 0)
			break;
		if (!n || ev.type != KVF_EV_XFER_DONE)
			continue;
		int k = -1;
		for (int i = 0; i < SMALL; i++)
			if (ids[i] == ev.xfer)
				k = i;
		if (k < 0) {
			bad++;
			continue;
		}
		per_id[k]++;
		seen++;
		if (ev.status == 0)
			oks++;
		else if (ev.status == KVF_ECANCELED)
			canc++;
		else
			bad++;
	}
	int once = 1;
	for (int i = 0; i < SMALL; i++)
		once &= per_id[i] == 1;
	ok(once, "each of %d cancelled transfers ended exactly once "
	   "(%d ok, %d cancelled)", SMALL, oks, canc);
	is_int(bad, 0, "no other status, no unknown id");
	notifs = 0;
	t0 = tp_now_ms();
	while (tp_now_ms() - t0 < 2000) {
		int n = 0;
		if (kvf_wait(dec, &ev, 1, 100, &n) != 0)
			break;
		if (n && ev.type == KVF_EV_NOTIF)
			notifs++;
		else if (n)
			others++;
	}
	is_int(notifs, oks, "decode got one notification per completed "
	       "transfer, none for the cancelled");
	(void)others;

	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0, "A stops cleanly");
	ok(tp_daemon_stop(&b, SIGTERM, 5000) == 0, "B stops cleanly");
	return tap_exit_status();
}
