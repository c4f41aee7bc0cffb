/*
 * Regions that come and go while transfers run: a region is usable in the
 * first transfer after kvf_alloc_host returns and refused (KVF_ENOENT,
 * naming it) in the first after kvf_free_region returns; a region the
 * target freed is refused there, without a hang; one the target added
 * after the peer was resolved is found once the peer is resolved again;
 * and a second engine registering and freeing regions all the while
 * disturbs no transfer of the first. The progress thread reads the
 * registry from its own copy (sidecar/xfer_view.c): this is what that copy
 * must never get wrong. tcp;ofi_rxm and shm.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "client/kvferry.h"
#include "tests/tap/ctl.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REG (256u * 1024)
#define ROUNDS 60u
#define SMALL 4096u      /* inline where the target takes it */
#define LARGE (64u * 1024) /* RDMA writes */

/* Submit a WRITE of len bytes from (lr, loff) to (rr, roff) and wait for
 * its completion: its status, or -1000 when none came. */
static int push(kvf_client *c, kvf_peer peer, kvf_region lr, uint64_t loff,
                kvf_region rr, uint64_t roff, uint32_t len,
                struct kvf_event *ev)
{
	struct kvf_seg seg = {lr, rr, loff, roff, len};
	struct kvf_xfer_opts o = {.timeout_ms = 5000};
	kvf_xfer x;
	int rc = kvf_submit(c, KVF_WRITE, peer, &seg, 1, &o, &x);

	if (rc != 0) {
		diag("kvf_submit: %s", kvf_last_error());
		return rc;
	}
	if (!tp_wait_xfer(c, x, 15000, ev))
		return -1000;
	return ev->status;
}

struct churn {
	kvf_client *c;
	_Atomic int stop;
	unsigned cycles, failures;
};

/* A second engine on sidecar A: allocate, write into, free, again. */
static void *churn_main(void *arg)
{
	struct churn *ch = arg;

	while (!atomic_load(&ch->stop)) {
		uint8_t *p;
		kvf_region r;
		if (kvf_alloc_host(ch->c, 64 * 1024, NULL, (void **)&p, &r) !=
		    0) {
			ch->failures++;
			continue;
		}
		memset(p, 0x5a, 64 * 1024);
		if (kvf_free_region(ch->c, r) != 0)
			ch->failures++;
		ch->cycles++;
	}
	return NULL;
}

static void run(const char *prov)
{
	const char *const args[] = {"--provider", prov, NULL};
	struct tp_pair P;
	kvf_client *pre, *dec, *churner;
	uint8_t *pbuf, *dbuf, *q;
	kvf_region pr, dr, r, r2;
	kvf_peer peer, peer2;
	struct kvf_event ev;
	unsigned bad = 0, bad_bytes = 0;
	char prefix[32];
	int rc;

	diag("provider %s", prov);
	snprintf(prefix, sizeof prefix, "churn-%s", prov);
	tp_pair_open(&P, prefix, args, args, REG);
	pre = P.pre;
	dec = P.dec;
	pbuf = P.pbuf;
	dbuf = P.dbuf;
	pr = P.pr;
	dr = P.dr;
	peer = P.peer;
	tp_engine_open("churner", &P.a, NULL, 0, &churner, NULL, NULL);

	/* Registered, then used at once; freed, then refused at once. */
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint32_t len = i % 2 ? LARGE : SMALL;
		uint64_t off = (uint64_t)(i % 4) * LARGE;
		if (kvf_alloc_host(pre, LARGE, NULL, (void **)&q, &r) != 0) {
			diag("alloc: %s", kvf_last_error());
			bad++;
			continue;
		}
		tp_pattern_fill_at(q, len, off, 1000 + i);
		if (push(pre, peer, r, 0, dr, off, len, &ev) != 0) {
			diag("round %u: new region %u: %d %s", i, r, ev.status,
			     ev.message);
			bad++;
		} else if (tp_pattern_mismatch_at(dbuf + off, len, off,
		                                  1000 + i) >= 0) {
			bad_bytes++;
		}
		kvf_free_region(pre, r);
	}
	is_int(bad, 0, "%u regions, each written from in the first transfer "
	       "after it was registered", ROUNDS);
	is_int(bad_bytes, 0, "their bytes arrived");

	bad = 0;
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint32_t len = i % 2 ? LARGE : SMALL;
		if (kvf_alloc_host(pre, LARGE, NULL, (void **)&q, &r) != 0 ||
		    kvf_free_region(pre, r) != 0) {
			diag("alloc/free: %s", kvf_last_error());
			bad++;
			continue;
		}
		rc = push(pre, peer, r, 0, dr, 0, len, &ev);
		if (rc != KVF_ENOENT || !strstr(ev.message, "region")) {
			diag("round %u: freed region %u: %d %s", i, r, rc,
			     rc == -1000 ? "(no completion)" : ev.message);
			bad++;
		}
	}
	is_int(bad, 0, "%u regions, each refused with KVF_ENOENT naming the "
	       "region in the first transfer after it was freed", ROUNDS);

	/* A region B adds after the resolve: unknown until resolved again. */
	if (kvf_alloc_host(dec, REG, NULL, (void **)&q, &r2) != 0)
		bail("alloc on B: %s", kvf_last_error());
	rc = push(pre, peer, pr, 0, r2, 0, SMALL, &ev);
	ok(rc == KVF_ENOENT, "a region B added after the resolve: "
	   "KVF_ENOENT (%d: %s)", rc, ev.message);
	if (kvf_resolve_peer(pre, P.b.peer_url, "decode", 0, &peer2) != 0)
		bail("resolve again: %s", kvf_last_error());
	is_int((int)peer2, (int)peer, "resolving again keeps the peer's id");
	tp_pattern_fill(pbuf, LARGE, 8);
	is_int(push(pre, peer, pr, 0, r2, 0, LARGE, &ev), 0,
	       "resolved again: a 64 KiB WRITE into it lands");
	ok(tp_pattern_mismatch_at(q, LARGE, 0, 8) < 0, "its bytes arrived");

	/* Another engine of sidecar A churns its regions meanwhile. */
	{
		struct churn ch = {.c = churner};
		pthread_t th;
		bad = bad_bytes = 0;
		if (pthread_create(&th, NULL, churn_main, &ch) != 0)
			bail("pthread_create");
		for (unsigned i = 0; i < 4 * ROUNDS; i++) {
			uint32_t len = i % 4 ? SMALL : LARGE;
			uint64_t off = (uint64_t)(i % 3) * LARGE;
			tp_pattern_fill_at(pbuf + off, len, off, 5000 + i);
			if (push(pre, peer, pr, off, dr, off, len, &ev) != 0) {
				diag("transfer %u: %d %s", i, ev.status,
				     ev.message);
				bad++;
			} else if (tp_pattern_mismatch_at(dbuf + off, len, off,
			                                  5000 + i) >= 0) {
				bad_bytes++;
			}
		}
		atomic_store(&ch.stop, 1);
		pthread_join(th, NULL);
		diag("the churner registered and freed %u regions meanwhile",
		     ch.cycles);
		ok(bad == 0 && bad_bytes == 0 && ch.cycles > 0 &&
		   ch.failures == 0,
		   "%u WRITEs while another engine registered and freed %u "
		   "regions: all completed, all bytes arrived (%u failed, %u "
		   "wrong, %u churn failures)",
		   4 * ROUNDS, ch.cycles, bad, bad_bytes, ch.failures);
	}

	/* The target frees a region the initiator still knows of: B tells
	 * A, which then refuses transfers into it itself; none reaches B's
	 * closed registration (that damaged the provider's link to B). */
	if (kvf_alloc_host(dec, REG, NULL, (void **)&q, &r2) != 0)
		bail("alloc on B: %s", kvf_last_error());
	if (kvf_resolve_peer(pre, P.b.peer_url, "decode", 0, &peer2) != 0)
		bail("resolve: %s", kvf_last_error());
	tp_pattern_fill(pbuf, LARGE, 7);
	is_int(push(pre, peer, pr, 0, r2, 0, LARGE, &ev), 0,
	       "B's new region %u: a 64 KiB WRITE lands", r2);
	ok(tp_pattern_mismatch_at(q, LARGE, 0, 7) < 0, "its bytes arrived");
	is_int(kvf_free_region(dec, r2), 0, "B frees region %u", r2);
	/* Until A has heard, a 4 KiB WRITE goes inline and B refuses it. */
	{
		int tries = 0;
		do {
			rc = push(pre, peer, pr, 0, r2, 0, SMALL, &ev);
		} while (rc == KVF_ENOENT && !strstr(ev.message, "freed") &&
		         ++tries < 500);
		ok(rc == KVF_ENOENT && strstr(ev.message, "freed"),
		   "A learns that B freed it: KVF_ENOENT (%d: %s), after %d "
		   "refusals by B", rc, rc == -1000 ? "no completion"
		                                    : ev.message, tries);
	}
	rc = push(pre, peer, pr, 0, r2, 0, LARGE, &ev);
	ok(rc == KVF_ENOENT && strstr(ev.message, "freed"),
	   "a 64 KiB WRITE into it: refused by A (%d: %s)", rc,
	   rc == -1000 ? "no completion" : ev.message);
	ok(tp_ctl_stats_field(&P.b, "regions_gone_sent") >= 1 &&
	   tp_ctl_stats_field(&P.a, "regions_gone_received") >= 1,
	   "kvferryctl stats counts the message on both sides (B sent %lld, "
	   "A received %lld)", tp_ctl_stats_field(&P.b, "regions_gone_sent"),
	   tp_ctl_stats_field(&P.a, "regions_gone_received"));
	tp_pattern_fill(pbuf, LARGE, 9);
	is_int(push(pre, peer, pr, 0, dr, 0, LARGE, &ev), 0,
	       "B's other region still takes 64 KiB WRITEs");
	ok(tp_pattern_mismatch_at(dbuf, LARGE, 0, 9) < 0, "their bytes arrived");

	/* Freed while WRITEs into it are on their way: each ends (landing
	 * in memory nobody reads, or refused), and the link to B stays. */
	if (kvf_alloc_host(dec, REG, NULL, (void **)&q, &r2) != 0 ||
	    kvf_resolve_peer(pre, P.b.peer_url, "decode", 0, &peer2) != 0)
		bail("alloc/resolve: %s", kvf_last_error());
	{
		kvf_xfer ids[8];
		unsigned ended = 0, landed = 0;
		for (unsigned i = 0; i < 8; i++) {
			struct kvf_seg seg = {pr, r2, 0,
			                      (uint64_t)(i % 4) * LARGE,
			                      LARGE};
			struct kvf_xfer_opts o = {.timeout_ms = 5000};
			if (kvf_submit(pre, KVF_WRITE, peer, &seg, 1, &o,
			               &ids[i]) != 0)
				bail("submit: %s", kvf_last_error());
		}
		kvf_free_region(dec, r2);
		for (unsigned i = 0; i < 8; i++)
			if (tp_wait_event(pre, KVF_EV_XFER_DONE, 15000, &ev,
			                  &tp_wait_quiet)) {
				ended++;
				landed += ev.status == 0;
				if (ev.status)
					diag("racing write: %d %s", ev.status,
					     ev.message);
			}
		is_int((int)ended, 8, "8 WRITEs racing B's free of their "
		       "region: each ended (%u before the free, or into "
		       "its grace)", landed);
	}
	tp_pattern_fill(pbuf, LARGE, 10);
	is_int(push(pre, peer, pr, 0, dr, 0, LARGE, &ev), 0,
	       "after them B's other region still takes 64 KiB WRITEs");
	ok(tp_pattern_mismatch_at(dbuf, LARGE, 0, 10) < 0,
	   "their bytes arrived");

	kvf_close(churner);
	ok(tp_pair_close(&P), "both sidecars stop cleanly");
}

int main(void)
{
	plan(2 * 20);
	run("tcp");
	run("shm");
	return tap_exit_status();
}
