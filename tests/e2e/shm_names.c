/*
 * Two sidecars over shm whose endpoint names differ in length resolve each
 * other both ways and move bytes both ways. shm names an endpoint after its
 * process ("fi_shm://<pid>:<uid>:<n>"), so the fabric address of a sidecar
 * whose pid has one digit more is one byte longer; a sidecar once refused
 * such a peer ("fi_av_insert of the peer's address failed") whenever the
 * pids of a run straddled 1000, 10000 or 100000. As root the test places
 * the sidecars on both sides of 10000 through
 * /proc/sys/kernel/ns_last_pid; elsewhere those cases say skip and only
 * the pair as started runs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define REGION (1u << 20)
#define PAIR_TESTS 10

static int ndigits(long v)
{
	int n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Start a sidecar on shm, its pid first placed above at when at >= 0. */
static int start(struct tp_daemon *d, const char *name, long at)
{
	const char *const args[] = {"--provider", "shm", NULL};

	if (at >= 0 && tp_place_next_pid(at) != 0)
		return -1;
	return tp_daemon_start(d, name, args, NULL);
}

/* Resolve, then WRITE a pattern from src to dst and check it landed. */
static void one_way(const char *what, kvf_client *src, kvf_region sr,
                    const char *dst_url, const char *dst_name,
                    kvf_client *dst, kvf_region dr, uint8_t *dbuf,
                    uint64_t seed)
{
	struct kvf_event ev;
	struct kvf_seg s = {sr, dr, 0, 0, REGION};
	struct kvf_xfer_opts o = {.tag = what,
	                         .tag_len = (uint32_t)strlen(what)};
	kvf_peer peer = 0;
	int rc;

	rc = kvf_resolve_peer(src, dst_url, dst_name, 5000, &peer);
	if (!is_int(rc, 0, "%s: resolve %s", what, dst_name))
		diag("kvf_resolve_peer: %s", kvf_last_error());
	if (rc != 0) {
		skip(2, "%s: no peer", what);
		return;
	}
	memset(dbuf, 0, REGION);
	rc = kvf_submit(src, KVF_WRITE, peer, &s, 1, &o, NULL);
	ok(rc == 0 && tp_wait_event(dst, KVF_EV_NOTIF, 10000, &ev, NULL),
	   "%s: WRITE of %u bytes notified %s", what, REGION, dst_name);
	ok(tp_pattern_ok(dbuf, REGION, seed), "%s: and the bytes landed",
	   what);
}

/* One pair; at_a, at_b: where to place each pid (-1: as it comes). */
static void pair(const char *what, long at_a, long at_b, int want_a,
                 int want_b)
{
	struct tp_daemon a, b;
	struct kvf_connect_opts oa = {0}, ob = {0};
	kvf_client *ca = NULL, *cb = NULL;
	uint8_t *pa = NULL, *pb = NULL;
	kvf_region ra = 0, rb = 0;
	char na[32], nb[32];

	diag("%s", what);
	snprintf(na, sizeof na, "%s-a", what);
	snprintf(nb, sizeof nb, "%s-b", what);
	if (start(&a, na, at_a) != 0 || start(&b, nb, at_b) != 0)
		bail("%s: sidecars did not start", what);
	diag("sidecar pids %d and %d", (int)a.pid, (int)b.pid);
	if (want_a)
		ok(ndigits(a.pid) == want_a && ndigits(b.pid) == want_b,
		   "%s: pids of %d and %d digits (%d, %d)", what, want_a,
		   want_b, (int)a.pid, (int)b.pid);
	else
		ok(1, "%s: pids %d and %d", what, (int)a.pid, (int)b.pid);
	oa.socket_path = a.engine_socket;
	ob.socket_path = b.engine_socket;
	is_int(kvf_connect("eng-a", &oa, &ca), 0, "%s: engine on A", what);
	is_int(kvf_connect("eng-b", &ob, &cb), 0, "%s: engine on B", what);
	if (!ca || !cb)
		bail("%s: no engine connection: %s", what, kvf_last_error());
	if (kvf_alloc_host(ca, REGION, NULL, (void **)&pa, &ra) != 0 ||
	    kvf_alloc_host(cb, REGION, NULL, (void **)&pb, &rb) != 0)
		bail("%s: kvf_alloc_host: %s", what, kvf_last_error());
	tp_pattern_fill(pa, REGION, 11);
	one_way(what, ca, ra, b.peer_url, "eng-b", cb, rb, pb, 11);
	tp_pattern_fill(pb, REGION, 12);
	one_way(what, cb, rb, a.peer_url, "eng-a", ca, ra, pa, 12);
	kvf_close(ca);
	kvf_close(cb);
	ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 5000) == 0,
	   "%s: both sidecars stop on SIGTERM", what);
}

int main(void)
{
	long pid_max = read_long("/proc/sys/kernel/pid_max");
	const char *why = NULL;

	plan(3 * PAIR_TESTS);
	pair("as-started", -1, -1, 0, 0);
	if (pid_max <= 10500)
		why = "pid_max is below 10500";
	else if (tp_place_next_pid(read_long(TP_LAST_PID)) != 0)
		why = "cannot write " TP_LAST_PID " (not root?)";
	if (why) {
		skip(2 * PAIR_TESTS, "placing pids: %s", why);
		return tap_exit_status();
	}
	/* A's name one byte shorter than B's, then the other way round. */
	pair("short-long", 9000, 10000, 4, 5);
	pair("long-short", 10000, 9000, 5, 4);
	return tap_exit_status();
}
