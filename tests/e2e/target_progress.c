/*
 * tests/e2e/target_progress.c - a sidecar that is only the target of RDMA
 * keeps moving its peer's bytes (sidecar/xfer_wake.c), over tcp;ofi_rxm
 * and shm, whose data progress is manual: a 32 MiB WRITE in 512 pieces,
 * a window of 64 WRITEs of 64 KiB, and an 8 MiB READ, each checked byte
 * for byte, and the wake-ups counted by kvferryctl stats on both sides:
 * the side with operations in flight sends them, the target receives
 * them, and never the other way round.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "tests/tap/ctl.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (40u << 20)
#define BIG (32u << 20)
#define PIECE (64u << 10)
#define WINDOW 64u
#define READ_BYTES (8u << 20)

static void run(const char *prov)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", prov, NULL};
	kvf_client *pre, *dec;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	struct kvf_event ev;
	struct kvf_seg *segs = calloc(BIG / PIECE, sizeof *segs);
	kvf_xfer ids[WINDOW], x;
	uint64_t tag = 7;
	struct kvf_xfer_opts o = {.tag = &tag, .tag_len = sizeof tag};
	char na[32], nb[32];
	long long sent, got, back;
	int rc;

	diag("provider %s", prov);
	snprintf(na, sizeof na, "tp-a-%s", prov);
	snprintf(nb, sizeof nb, "tp-b-%s", prov);
	if (!segs || tp_daemon_start(&a, na, args, NULL) != 0 ||
	    tp_daemon_start(&b, nb, args, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("prefill", &a, NULL, REGION, &pre, &pbuf, &pr);
	tp_engine_open("decode", &b, NULL, REGION, &dec, &dbuf, &dr);
	if (kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer) != 0)
		bail("resolve: %s", kvf_last_error());

	/* One WRITE of 512 pieces, shuffled (piece i to slot 7i mod 512)
	 * so the planner cannot merge them into one operation. */
	tp_pattern_fill(pbuf, BIG, 1);
	memset(dbuf, 0, BIG);
	for (uint32_t i = 0; i < BIG / PIECE; i++) {
		uint64_t off = (uint64_t)i * PIECE;
		uint64_t roff = (uint64_t)((i * 7u) % (BIG / PIECE)) * PIECE;
		segs[i] = (struct kvf_seg){pr, dr, off, roff, PIECE};
	}
	rc = kvf_submit(pre, KVF_WRITE, peer, segs, BIG / PIECE, &o, &x);
	ok(rc == 0 && tp_wait_event(dec, KVF_EV_NOTIF, 60000, &ev, NULL) &&
	   tp_wait_xfer(pre, x, 60000, &ev) && ev.status == 0,
	   "a 32 MiB WRITE in %u pieces: notified and completed",
	   BIG / PIECE);
	{
		int bad = 0;
		for (uint32_t i = 0; i < BIG / PIECE; i++)
			bad += memcmp(pbuf + segs[i].local_offset,
			              dbuf + segs[i].remote_offset,
			              PIECE) != 0;
		is_int(bad, 0, "every piece landed where it was aimed");
	}

	/* A window of small WRITEs, no notifications. */
	tp_pattern_fill(pbuf, WINDOW * PIECE, 2);
	for (uint32_t i = 0; i < WINDOW; i++) {
		struct kvf_seg s = {pr, dr, i * PIECE, i * PIECE, PIECE};
		if (kvf_submit(pre, KVF_WRITE, peer, &s, 1, NULL, &ids[i]))
			bail("submit %u: %s", i, kvf_last_error());
	}
	ok(tp_wait_xfers(pre, ids, WINDOW, 60000, &ev),
	   "a window of %u WRITEs of 64 KiB completed", WINDOW);
	ok(tp_pattern_mismatch_at(dbuf, WINDOW * PIECE, 0, 2) < 0,
	   "their bytes are at the target");

	/* A READ: the target serves it from its memory. */
	tp_pattern_fill(dbuf + BIG, READ_BYTES, 3);
	{
		struct kvf_seg s = {pr, dr, BIG, BIG, READ_BYTES};
		rc = kvf_submit(pre, KVF_READ, peer, &s, 1, NULL, &x);
	}
	ok(rc == 0 && tp_wait_xfer(pre, x, 60000, &ev) && ev.status == 0 &&
	   tp_pattern_mismatch_at(pbuf + BIG, READ_BYTES, 0, 3) < 0,
	   "an 8 MiB READ from the target brought its bytes");

	sent = tp_ctl_stats_field(&a, "wakeups_sent");
	got = tp_ctl_stats_field(&b, "wakeups_received");
	back = tp_ctl_stats_field(&b, "wakeups_sent");
	ok(sent >= 1, "the initiator sent wake-ups (%lld)", sent);
	ok(got >= 1 && got <= sent, "the target received them (%lld)", got);
	is_int((int)back, 0, "the target, with nothing in flight, sent none");
	is_int((int)tp_ctl_stats_field(&a, "wakeups_received"), 0,
	       "and the initiator received none");

	free(segs);
	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0, "both stop cleanly");
}

int main(void)
{
	plan(2 * 10);
	run("tcp");
	run("shm");
	return tap_exit_status();
}
