/*
 * Multi-rail: two sidecars with two rails each (two endpoints on
 * loopback, tcp;ofi_rxm and shm), then a two-rail sidecar against a
 * one-rail one. Large transfers must be striped (both rails carry bytes),
 * many small ones spread, READs and KV block transfers too; the bytes are
 * checked at each notification, which on tcp is only sent after every
 * rail's writes were proven delivered. Bad rail options are refused by
 * name.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "client/kvferry.h"
#include "tests/tap/ctl.h"
#include "tests/tap/engine.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (64u << 20)
#define SMALL (64u << 10)
#define NSMALL 64

static struct kvf_event ev;

static void run(const char *prov)
{
	const char *const args[] = {"--provider", prov, "--fabric-addr",
	                            "127.0.0.1,127.0.0.1", NULL};
	struct tp_daemon a, b;
	kvf_client *pre = NULL, *dec = NULL;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x;
	long long a0, a1, b0, b1;

	diag("provider %s, two rails each", prov);
	if (tp_daemon_start(&a, strcmp(prov, "tcp") ? "a-shm" : "a-tcp", args,
	                    NULL) != 0 ||
	    tp_daemon_start(&b, strcmp(prov, "tcp") ? "b-shm" : "b-tcp", args,
	                    NULL) != 0)
		bail("sidecars with two rails did not start");
	is_int(tp_ctl_rails(&a, NULL, 0), 2, "sidecar A lists two rails");
	tp_engine_open("prefill", &a, NULL, REGION, &pre, &pbuf, &pr);
	tp_engine_open("decode", &b, NULL, REGION, &dec, &dbuf, &dr);
	is_int(kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer), 0,
	       "prefill resolves decode");
	{
		char *log = tp_daemon_log(&a);
		like(log, "2 rails", "A uses two rails with B");
		free(log);
		const char *argv[] = {tp_bin("kvferryctl"), "-u", a.control_url,
		                      "-o", "json", "peers", NULL};
		struct tp_run r;
		if (tp_run(&r, 10000, NULL, argv) == 0) {
			like(r.out, "\"rails\":2", "kvferryctl peers says 2 rails");
			tp_run_free(&r);
		} else {
			ok(0, "kvferryctl peers ran");
		}
	}

	/* One large WRITE: striped over both rails. */
	tp_pattern_fill(pbuf, REGION, 11);
	a0 = tp_ctl_rail_bytes(&a, 0);
	a1 = tp_ctl_rail_bytes(&a, 1);
	struct kvf_seg big = {pr, dr, 0, 0, 48u << 20};
	struct kvf_xfer_opts o = {.tag = "big", .tag_len = 3};
	is_int(kvf_submit(pre, KVF_WRITE, peer, &big, 1, &o, &x), 0,
	       "48 MiB WRITE submitted");
	ok(tp_wait_event(dec, KVF_EV_NOTIF, 30000, &ev, NULL),
	   "decode notified");
	is_blob(dbuf, pbuf, 48u << 20,
	        "every byte is there when the notification arrives");
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 30000, &ev, NULL) &&
	   ev.status == 0,
	   "the WRITE completed ok");
	a0 = tp_ctl_rail_bytes(&a, 0) - a0;
	a1 = tp_ctl_rail_bytes(&a, 1) - a1;
	diag("rail 0 carried %lld bytes, rail 1 %lld", a0, a1);
	ok(a0 > 0 && a1 > 0, "both rails carried part of it");
	is_int(a0 + a1, 48u << 20, "and together all of it, once");

	/* Many small WRITEs in flight at once: each goes whole to one rail,
	 * the least busy, so both rails are used. */
	tp_pattern_fill(pbuf, REGION, 12);
	memset(dbuf, 0, REGION);
	a0 = tp_ctl_rail_bytes(&a, 0);
	a1 = tp_ctl_rail_bytes(&a, 1);
	int submitted = 0, notified = 0, done = 0;
	for (int i = 0; i < NSMALL; i++) {
		struct kvf_seg s = {pr, dr, (uint64_t)i * SMALL * 3,
		                    (uint64_t)i * SMALL * 2, SMALL};
		struct kvf_xfer_opts so = {.tag = &i, .tag_len = 4};
		submitted += kvf_submit(pre, KVF_WRITE, peer, &s, 1, &so, &x) == 0;
	}
	is_int(submitted, NSMALL, "%d small WRITEs submitted", NSMALL);
	int good = 0;
	while (notified < NSMALL &&
	       tp_wait_event(dec, KVF_EV_NOTIF, 20000, &ev, NULL)) {
		int i;
		memcpy(&i, ev.tag, 4);
		notified++;
		good += i >= 0 && i < NSMALL &&
		        memcmp(dbuf + (uint64_t)i * SMALL * 2,
		               pbuf + (uint64_t)i * SMALL * 3, SMALL) == 0;
	}
	is_int(notified, NSMALL, "each was notified");
	is_int(good, NSMALL, "and its bytes were there at its notification");
	while (done < NSMALL &&
	       tp_wait_event(pre, KVF_EV_XFER_DONE, 20000, &ev, NULL))
		done += ev.status == 0;
	is_int(done, NSMALL, "each completed ok");
	a0 = tp_ctl_rail_bytes(&a, 0) - a0;
	a1 = tp_ctl_rail_bytes(&a, 1) - a1;
	diag("small: rail 0 carried %lld bytes, rail 1 %lld", a0, a1);
	ok(a0 + a1 == (long long)NSMALL * SMALL && a0 % SMALL == 0 &&
	   a1 % SMALL == 0, "whole transfers per rail, all bytes once");
	ok(a1 > 0, "the second rail took some of them");

	/* A READ striped over both rails. */
	memset(pbuf, 0, REGION);
	tp_pattern_fill(dbuf, REGION, 13);
	a1 = tp_ctl_rail_bytes(&a, 1);
	struct kvf_seg rs = {pr, dr, 4096, 8192, 20u << 20};
	is_int(kvf_submit(pre, KVF_READ, peer, &rs, 1, NULL, &x), 0,
	       "20 MiB READ submitted");
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 30000, &ev, NULL) &&
	   ev.status == 0,
	   "the READ completed ok");
	is_blob(pbuf + 4096, dbuf + 8192, 20u << 20, "the pulled bytes match");
	ok(pbuf[4095] == 0 && pbuf[4096 + (20u << 20)] == 0,
	   "nothing written around it");
	ok(tp_ctl_rail_bytes(&a, 1) - a1 > 0,
	   "rail 1 carried part of the READ");

	/* KV blocks: a layout on both sides, 32 layers x 64 blocks. */
	{
		struct kvf_layout l = {.num_layers = 32, .num_blocks = 64,
		                       .block_bytes = 16384,
		                       .layer_stride = 64 * 16384,
		                       .block_stride = 16384};
		uint8_t *kp, *kd;
		kvf_region kr, kdr;
		uint32_t src[40], dst[40];
		int same = 1;
		if (kvf_alloc_host(pre, 32u * 64 * 16384, &l, (void **)&kp,
		                   &kr) ||
		    kvf_alloc_host(dec, 32u * 64 * 16384, &l, (void **)&kd, &kdr))
			bail("no KV regions: %s", kvf_last_error());
		kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer);
		tp_pattern_fill(kp, 32u * 64 * 16384, 14);
		memset(kd, 0, 32u * 64 * 16384);
		for (int i = 0; i < 40; i++) {
			src[i] = (uint32_t)i;
			dst[i] = (uint32_t)(63 - i);
		}
		struct kvf_xfer_opts ko = {.tag = "kv", .tag_len = 2};
		is_int(kvf_submit_blocks(pre, KVF_WRITE, peer, kr, kdr, src, dst,
		                         40, &ko, &x), 0,
		       "40 blocks x 32 layers submitted");
		ok(tp_wait_event(dec, KVF_EV_NOTIF, 30000, &ev, NULL),
		   "decode notified");
		for (int ly = 0; ly < 32; ly++)
			for (int i = 0; i < 40; i++)
				same &= memcmp(kd + (uint64_t)ly * 64 * 16384 +
				                   (uint64_t)dst[i] * 16384,
				               kp + (uint64_t)ly * 64 * 16384 +
				                   (uint64_t)src[i] * 16384,
				               16384) == 0;
		ok(same, "every block of every layer landed where it belongs");
		ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 30000, &ev, NULL) &&
		   ev.status == 0,
		   "completed ok");
	}

	kvf_close(pre);
	kvf_close(dec);
	b0 = tp_ctl_rail_bytes(&b, 0);
	b1 = tp_ctl_rail_bytes(&b, 1);
	is_int(b0 + b1, 0, "B, the target, posted nothing itself");
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0,
	   "both sidecars stop cleanly");
}

/* A two-rail sidecar and a one-rail one agree on one rail. */
static void mixed(void)
{
	const char *const two[] = {"--fabric-addr", "127.0.0.1,127.0.0.1",
	                           NULL};
	struct tp_daemon a, b;
	kvf_client *pre = NULL, *dec = NULL;
	uint8_t *pbuf, *dbuf;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x;

	if (tp_daemon_start(&a, "mix-a", two, NULL) != 0 ||
	    tp_daemon_start(&b, "mix-b", NULL, NULL) != 0)
		bail("sidecars did not start");
	tp_engine_open("prefill", &a, NULL, 8u << 20, &pre, &pbuf, &pr);
	tp_engine_open("decode", &b, NULL, 8u << 20, &dec, &dbuf, &dr);
	is_int(kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer), 0,
	       "two rails resolve a one-rail peer");
	tp_pattern_fill(pbuf, 8u << 20, 21);
	long long a1 = tp_ctl_rail_bytes(&a, 1);
	struct kvf_seg s = {pr, dr, 0, 0, 8u << 20};
	struct kvf_xfer_opts o = {.tag = "m", .tag_len = 1};
	kvf_submit(pre, KVF_WRITE, peer, &s, 1, &o, &x);
	ok(tp_wait_event(dec, KVF_EV_NOTIF, 20000, &ev, NULL),
	   "decode notified");
	is_blob(dbuf, pbuf, 8u << 20, "the bytes landed");
	ok(tp_ctl_rail_bytes(&a, 1) == a1, "over rail 0 only");
	/* And the other way: the one-rail side pushes to the two-rail one. */
	kvf_peer back;
	is_int(kvf_resolve_peer(dec, a.peer_url, "prefill", 0, &back), 0,
	       "one rail resolves a two-rail peer");
	tp_pattern_fill(dbuf, 8u << 20, 22);
	kvf_submit(dec, KVF_WRITE, back, &(struct kvf_seg){dr, pr, 0, 0,
	                                                   8u << 20},
	           1, &o, &x);
	ok(tp_wait_event(pre, KVF_EV_NOTIF, 20000, &ev, NULL),
	   "prefill notified");
	is_blob(pbuf, dbuf, 8u << 20, "the bytes landed");
	kvf_close(pre);
	kvf_close(dec);
	tp_daemon_stop(&a, SIGTERM, 5000);
	tp_daemon_stop(&b, SIGTERM, 5000);
}

static void refused(const char *const *args, const char *why,
                    const char *name, const char *expect)
{
	struct tp_daemon d;
	char *log;

	if (tp_daemon_spawn(&d, name, args, NULL) != 0) {
		ok(0, "%s: could not spawn", why);
		ok(0, "%s: no log", why);
		return;
	}
	ok(tp_daemon_wait(&d, 10000) == 0 && WIFEXITED(d.status) &&
	   WEXITSTATUS(d.status) != 0, "%s: refused", why);
	log = tp_daemon_log(&d);
	like(log, expect, "%s: the reason says '%s'", why, expect);
	free(log);
}

int main(void)
{
	plan(2 * 27 + 7 + 6);
	run("tcp");
	run("shm");
	mixed();
	refused((const char *const[]){"--rails", "32", NULL},
	        "more NICs than the provider offers", "r1", "--rails 32");
	refused((const char *const[]){"--rails", "2", "--fabric-addr",
	                              "127.0.0.1,127.0.0.1", NULL},
	        "--rails with several addresses", "r2", "name the rails one way");
	refused((const char *const[]){"--fabric-addr", "127.0.0.1,,", NULL},
	        "an empty address in the list", "r3", "empty address");
	return tap_exit_status();
}
