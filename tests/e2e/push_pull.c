/* Two sidecars, two engines, over tcp;ofi_rxm and shm: push and pull host KV bytes, notifications only after the bytes landed, and every bad segment refused by name. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (8u << 20)

static struct kvf_event ev;

static void run(const char *prov)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", prov, NULL};
	struct kvf_connect_opts oa = {0}, ob = {0};
	kvf_client *pre = NULL, *dec = NULL;
	uint8_t *pbuf, *dbuf, *want;
	kvf_region pr, dr;
	kvf_peer peer;
	kvf_xfer x;
	int n;

	diag("provider %s", prov);
	if (tp_daemon_start(&a, prov, args, NULL) != 0 ||
	    tp_daemon_start(&b, strcmp(prov, "tcp") ? "b-shm" : "b-tcp", args,
	                    NULL) != 0)
		bail("sidecars did not start");
	oa.socket_path = a.engine_socket;
	ob.socket_path = b.engine_socket;
	is_int(kvf_connect("prefill", &oa, &pre), 0, "prefill connects to A");
	is_int(kvf_connect("decode", &ob, &dec), 0, "decode connects to B");
	if (!pre || !dec)
		bail("no connection: %s", kvf_last_error());
	is_int(kvf_alloc_host(pre, REGION, NULL, (void **)&pbuf, &pr), 0,
	       "prefill allocates %u bytes", REGION);
	is_int(kvf_alloc_host(dec, REGION, NULL, (void **)&dbuf, &dr), 0,
	       "decode allocates %u bytes", REGION);
	want = malloc(REGION);

	/* Unknown engine and dead URL first: errors within bounded time. */
	is_int(kvf_resolve_peer(pre, b.peer_url, "nobody", 2000, &peer),
	       KVF_ENOENT, "resolving an engine the peer lacks: KVF_ENOENT");
	like(kvf_last_error(), "nobody", "message names the missing engine");
	{
		char url[64];
		snprintf(url, sizeof url, "tcp://127.0.0.1:%d", tp_free_port());
		long t0 = tp_now_ms();
		int rc = kvf_resolve_peer(pre, url, "decode", 500, &peer);
		long ms = tp_now_ms() - t0;
		ok(rc == KVF_ETIMEDOUT || rc == KVF_EPEER,
		   "no sidecar at the URL: %s", kvf_strerror(rc));
		ok(ms < 3000, "and the answer came in %ld ms", ms);
	}
	is_int(kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer), 0,
	       "prefill resolves decode through B");

	/* Push: three segments, one notification. */
	tp_pattern_fill(pbuf, REGION, 1);
	struct kvf_seg segs[3] = {
		{pr, dr, 0, 4096, 1 << 20},
		{pr, dr, 1 << 20, (1 << 20) + 4096, 1 << 20},
		{pr, dr, 5u << 20, 6u << 20, 12345},
	};
	struct kvf_xfer_opts o = {.tag = "req-1", .tag_len = 5};
	is_int(kvf_submit(pre, KVF_WRITE, peer, segs, 3, &o, &x), 0,
	       "WRITE of 3 segments submitted");
	ok(tp_wait_event(dec, KVF_EV_NOTIF, 10000, &ev, NULL),
	   "decode got a notification");
	is_blob(ev.tag, "req-1", 5, "with the tag");
	is_str(ev.peer_engine, "prefill", "naming the sender");
	is_blob(dbuf + 4096, pbuf, 2u << 20,
	        "first two segments' bytes are there when it arrives");
	is_blob(dbuf + (6u << 20), pbuf + (5u << 20), 12345,
	        "third segment's bytes too");
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 10000, &ev, NULL),
	   "prefill got its completion");
	is_int(ev.status, 0, "status ok");
	ok(ev.xfer == x, "for the right transfer id");
	is_int((long long)ev.bytes, (2 << 20) + 12345, "bytes counted");

	/* Pull: read decode's bytes back into another place. */
	memset(pbuf, 0, REGION);
	tp_pattern_fill(dbuf, REGION, 2);
	struct kvf_seg rs = {pr, dr, 123, 456, 3u << 20};
	is_int(kvf_submit(pre, KVF_READ, peer, &rs, 1, NULL, &x), 0,
	       "READ submitted");
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 10000, &ev, NULL) &&
	   ev.status == 0,
	   "READ completed ok");
	is_blob(pbuf + 123, dbuf + 456, 3u << 20, "pulled bytes match");
	ok(pbuf[122] == 0 && pbuf[123 + (3u << 20)] == 0,
	   "nothing written around the segment");

	/* Bad segments: each refused with the right code and a message. */
	struct kvf_seg bad = {pr, dr, REGION - 10, 0, 20};
	kvf_submit(pre, KVF_WRITE, peer, &bad, 1, NULL, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == KVF_ERANGE,
	   "local segment past the region: KVF_ERANGE");
	like(ev.message, "outside", "message: %s", ev.message);
	bad = (struct kvf_seg){pr, dr, 0, REGION - 1, 2};
	memcpy(want, dbuf, REGION);
	kvf_submit(pre, KVF_WRITE, peer, &bad, 1, NULL, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == KVF_ERANGE,
	   "remote segment past the region: KVF_ERANGE");
	like(ev.message, "remote region", "message names the remote region");
	bad = (struct kvf_seg){pr, dr, UINT64_MAX - 1, 0, 4};
	kvf_submit(pre, KVF_WRITE, peer, &bad, 1, NULL, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == KVF_ERANGE,
	   "offset that would wrap around: KVF_ERANGE");
	bad = (struct kvf_seg){pr + 100, dr, 0, 0, 4};
	kvf_submit(pre, KVF_WRITE, peer, &bad, 1, NULL, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == KVF_ENOENT,
	   "unknown local region: KVF_ENOENT");
	like(ev.message, "local region", "message: %s", ev.message);
	bad = (struct kvf_seg){pr, dr + 100, 0, 0, 4};
	kvf_submit(pre, KVF_WRITE, peer, &bad, 1, NULL, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == KVF_ENOENT,
	   "unknown remote region: KVF_ENOENT");
	bad = (struct kvf_seg){pr, dr, 0, 0, 4};
	kvf_submit(pre, KVF_WRITE, peer + 77, &bad, 1, NULL, &x);
	ok(tp_wait_event(pre, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == KVF_ENOENT,
	   "unknown peer: KVF_ENOENT");
	is_blob(dbuf, want, REGION, "no refused transfer changed a byte");
	n = 0;
	kvf_poll(dec, &ev, 1, &n);
	is_int(n, 0, "and none of them notified decode");

	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0,
	   "both sidecars stop cleanly");
	free(want);
}

int main(void)
{
	plan(70);
	run("tcp");
	run("shm");
	return tap_exit_status();
}
