/* Small WRITEs with notifications, one at a time and in a burst, over tcp;ofi_rxm and shm: each notification finds its bytes, in order; kvf_wait's spin setting is checked and honoured. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/kvferry.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define SLOT 4096u
#define SLOTS 256u
#define REGION (SLOT * SLOTS)
#define SEQ 300u
#define BURST 64u

static long now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static void pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* The next event of the given type within ms; 0 when none came. */
static int next_event(kvf_client *c, enum kvf_event_type type,
                      struct kvf_event *ev, int ms)
{
	long until = now_us() + ms * 1000L;
	while (now_us() < until) {
		int n = 0;
		if (kvf_wait(c, ev, 1, 100, &n) != 0)
			return 0;
		if (n == 1 && ev->type == type)
			return 1;
		if (n == 1)
			diag("unexpected event type %d status %d (%s)",
			     ev->type, ev->status, ev->message);
	}
	return 0;
}

/* The seed of slot i's bytes in round r. */
static uint32_t seed_of(uint32_t r, uint32_t i)
{
	return r * 100003u + i;
}

static void run(const char *prov)
{
	struct tp_daemon a, b;
	const char *const args[] = {"--provider", prov, NULL};
	struct kvf_connect_opts oa = {0}, ob = {0};
	kvf_client *pre = NULL, *dec = NULL;
	uint8_t *pbuf = NULL, *dbuf = NULL, want[SLOT];
	kvf_region pr = 0, dr = 0;
	kvf_peer peer = 0;
	struct kvf_event ev;
	uint32_t bad_bytes = 0, bad_tags = 0, bad_done = 0, got;
	char name[32];
	int rc;

	diag("provider %s", prov);
	snprintf(name, sizeof name, "sw-a-%s", prov);
	if (tp_daemon_start(&a, name, args, NULL) != 0)
		bail("sidecar A did not start");
	snprintf(name, sizeof name, "sw-b-%s", prov);
	if (tp_daemon_start(&b, name, args, NULL) != 0)
		bail("sidecar B did not start");
	oa.socket_path = a.engine_socket;
	ob.socket_path = b.engine_socket;

	setenv("KVFERRY_WAIT_SPIN_US", "fifty", 1);
	is_int(kvf_connect("prefill", &oa, &pre), KVF_EINVAL,
	       "KVFERRY_WAIT_SPIN_US=fifty: KVF_EINVAL");
	like(kvf_last_error(), "KVFERRY_WAIT_SPIN_US", "message names it: %s",
	     kvf_last_error());
	setenv("KVFERRY_WAIT_SPIN_US", "10001", 1);
	is_int(kvf_connect("prefill", &oa, &pre), KVF_EINVAL,
	       "KVFERRY_WAIT_SPIN_US=10001 (past 10 ms): KVF_EINVAL");
	/* One engine never spins, the other learns whether to. */
	setenv("KVFERRY_WAIT_SPIN_US", "0", 1);
	is_int(kvf_connect("prefill", &oa, &pre), 0,
	       "prefill connects to A with KVFERRY_WAIT_SPIN_US=0");
	setenv("KVFERRY_WAIT_SPIN_US", "auto", 1);
	is_int(kvf_connect("decode", &ob, &dec), 0,
	       "decode connects to B with KVFERRY_WAIT_SPIN_US=auto");
	unsetenv("KVFERRY_WAIT_SPIN_US");
	if (!pre || !dec)
		bail("no connection: %s", kvf_last_error());
	rc = kvf_alloc_host(pre, REGION, NULL, (void **)&pbuf, &pr);
	if (rc == 0)
		rc = kvf_alloc_host(dec, REGION, NULL, (void **)&dbuf, &dr);
	if (rc == 0)
		rc = kvf_resolve_peer(pre, b.peer_url, "decode", 0, &peer);
	is_int(rc, 0, "regions of %u bytes on both sides, peer resolved",
	       REGION);
	if (rc != 0)
		bail("setup: %s", kvf_last_error());

	/* One at a time: submit, the notification, then the completion. */
	for (uint32_t i = 0; i < SEQ; i++) {
		uint32_t s = i % SLOTS;
		uint64_t tag = i;
		struct kvf_seg seg = {pr, dr, s * SLOT, s * SLOT, SLOT};
		struct kvf_xfer_opts o = {.tag = &tag, .tag_len = sizeof tag};
		kvf_xfer x;

		pattern(pbuf + s * SLOT, SLOT, seed_of(1, i));
		if (kvf_submit(pre, KVF_WRITE, peer, &seg, 1, &o, &x) != 0 ||
		    !next_event(dec, KVF_EV_NOTIF, &ev, 10000)) {
			diag("transfer %u: %s", i, kvf_last_error());
			break;
		}
		memcpy(&got, ev.tag, sizeof got);
		bad_tags += ev.tag_len != sizeof tag || got != i;
		pattern(want, SLOT, seed_of(1, i));
		bad_bytes += memcmp(dbuf + s * SLOT, want, SLOT) != 0;
		if (!next_event(pre, KVF_EV_XFER_DONE, &ev, 10000))
			break;
		bad_done += ev.status != 0 || ev.xfer != x ||
		            ev.bytes != SLOT;
	}
	is_int(bad_bytes, 0, "%u WRITEs of 4 KiB: each notification found "
	       "its bytes", SEQ);
	is_int(bad_tags, 0, "each notification had its transfer's tag");
	is_int(bad_done, 0, "each completion was ok, for its id and size");

	/* A burst: all submitted before any notification is taken; each
	 * notification must still find its own bytes. */
	bad_bytes = bad_tags = bad_done = 0;
	for (uint32_t i = 0; i < BURST; i++) {
		uint64_t tag = 1000 + i;
		struct kvf_seg seg = {pr, dr, i * SLOT, i * SLOT, SLOT};
		struct kvf_xfer_opts o = {.tag = &tag, .tag_len = sizeof tag};

		pattern(pbuf + i * SLOT, SLOT, seed_of(2, i));
		if (kvf_submit(pre, KVF_WRITE, peer, &seg, 1, &o, NULL) != 0)
			bad_done++;
	}
	for (uint32_t i = 0; i < BURST; i++) {
		if (!next_event(dec, KVF_EV_NOTIF, &ev, 10000)) {
			bad_tags += BURST - i;
			break;
		}
		memcpy(&got, ev.tag, sizeof got);
		got -= 1000;
		if (ev.tag_len != sizeof(uint64_t) || got >= BURST) {
			bad_tags++;
			continue;
		}
		pattern(want, SLOT, seed_of(2, got));
		bad_bytes += memcmp(dbuf + got * SLOT, want, SLOT) != 0;
	}
	for (uint32_t i = 0; i < BURST; i++)
		if (!next_event(pre, KVF_EV_XFER_DONE, &ev, 10000) ||
		    ev.status != 0)
			bad_done++;
	is_int(bad_bytes, 0, "burst of %u: each notification found its bytes",
	       BURST);
	is_int(bad_tags, 0, "every tag came, once");
	is_int(bad_done, 0, "every completion was ok");

	/* A 0 ms wait with nothing to take returns at once, spin or not. */
	{
		long t0 = now_us(), worst;
		int n = 1, n2 = 1;
		kvf_wait(pre, &ev, 1, 0, &n);
		worst = now_us() - t0;
		t0 = now_us();
		kvf_wait(dec, &ev, 1, 0, &n2);
		if (now_us() - t0 > worst)
			worst = now_us() - t0;
		ok(n == 0 && n2 == 0 && worst < 20000,
		   "kvf_wait(timeout 0) on idle clients: nothing, in %ld us",
		   worst);
	}

	kvf_close(pre);
	kvf_close(dec);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0,
	   "both sidecars stop cleanly");
}

int main(void)
{
	plan(28);
	run("tcp");
	run("shm");
	return tap_exit_status();
}
