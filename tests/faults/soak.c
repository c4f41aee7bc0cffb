/* Soak: SOAK_TRANSFERS (default 10000) pushes of random sizes from four engines through two sidecars, with injected faults (bad segments, cancels, 1 ms deadlines, the remote sidecar SIGKILLed under a full window and restarted half way): every submitted transfer ends exactly once, every successful one has its bytes verified when its notification arrives, no notification for a failed one, and the sidecars' RSS and open fds stay flat between the first and the last thousand. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/engine.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define ENGINES 4
#define WINDOW 8
#define SLOT (64u << 10)
#define DEC_BYTES (ENGINES * WINDOW * SLOT)
#define NORMAL_TIMEOUT_MS 5000

enum fault { F_NONE, F_BADSEG, F_CANCEL, F_DEADLINE };

struct slot {
	int busy;
	kvf_xfer id;
	enum fault fault;
	uint32_t seed, len;
	int done, status, notified, doomed; /* doomed: B died under it */
};

struct eng {
	kvf_client *c;
	uint8_t *buf;
	kvf_region r;
	kvf_peer peer;
	struct slot s[WINDOW];
};

static struct eng eng[ENGINES];
static kvf_client *dec;
static uint8_t *dbuf;
static kvf_region dr;
static struct tp_daemon a, b;

static long submitted, completed, oks, failed, dups, unknown, bad_status,
	notifs, bytes_bad, stray, contradicted, late_deadline, undecided;
static uint32_t seed_next = 1;
/* Seeds of transfers that ended with KVF_ETIMEDOUT on a 1 ms deadline: a
 * notification for one of them is the known deadline race (see below),
 * counted apart from other contradictions. */
static uint8_t *timed_out_seed;
/* Seeds of transfers whose sidecar said the notification was sent but not
 * confirmed in time ("its engine may or may not have it", RELIABILITY.md
 * guarantee 3): either outcome at the peer is allowed, so a notification
 * arriving after the slot was freed is not a stray. Seen after B's
 * restart, when a 1 ms-deadline transfer's notification waited for the
 * new connection. */
static uint8_t *undecided_seed;
static long seed_cap;

static uint64_t rnd(void)
{
	static uint64_t x = 0x2545f4914f6cdd1dull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void submit(int e, int k, int allow_faults)
{
	struct eng *g = &eng[e];
	struct slot *s = &g->s[k];
	uint64_t off = (uint64_t)(e * WINDOW + k) * SLOT;
	uint32_t r = (uint32_t)(rnd() % 100);
	struct kvf_seg seg;
	uint8_t tag[12];
	struct kvf_xfer_opts o = {.tag = tag, .tag_len = sizeof tag,
	                          .timeout_ms = NORMAL_TIMEOUT_MS};
	int rc;

	memset(s, 0, sizeof *s);
	s->seed = seed_next++;
	s->len = 1 + (uint32_t)(rnd() % SLOT);
	s->fault = !allow_faults ? F_NONE
	           : r < 2      ? F_BADSEG
	           : r < 4      ? F_CANCEL
	           : r < 6      ? F_DEADLINE
	                        : F_NONE;
	tp_pattern_fill(g->buf + (uint64_t)k * SLOT, s->len, s->seed);
	seg = (struct kvf_seg){g->r, dr, (uint64_t)k * SLOT, off, s->len};
	if (s->fault == F_BADSEG)
		seg.remote_offset = DEC_BYTES - s->len / 2 - 1 + 1; /* past end */
	if (s->fault == F_BADSEG && s->len < 4)
		seg.remote_offset = DEC_BYTES;
	if (s->fault == F_DEADLINE)
		o.timeout_ms = 1;
	tag[0] = (uint8_t)e;
	tag[1] = (uint8_t)k;
	memcpy(tag + 4, &s->seed, 4);
	memcpy(tag + 8, &s->len, 4);
	while ((rc = kvf_submit(g->c, KVF_WRITE, g->peer, &seg, 1, &o,
	                        &s->id)) == KVF_EAGAIN)
		usleep(100);
	if (rc != 0)
		bail("submit: %s", kvf_last_error());
	if (s->fault == F_CANCEL)
		kvf_cancel(g->c, s->id);
	s->busy = 1;
	submitted++;
}

/* A slot is free once its completion came and, for a success, its
 * notification too (unless B died under it: nobody is left to notify). */
static int slot_free(const struct slot *s)
{
	return !s->busy ||
	       (s->done && (s->status != 0 || s->notified || s->doomed));
}

static void on_done(int e, const struct kvf_event *ev)
{
	struct slot *s = NULL;
	for (int k = 0; k < WINDOW; k++)
		if (eng[e].s[k].busy && eng[e].s[k].id == ev->xfer)
			s = &eng[e].s[k];
	if (!s) {
		unknown++;
		return;
	}
	if (s->done) {
		dups++;
		return;
	}
	s->done = 1;
	s->status = ev->status;
	completed++;
	if (ev->status == 0)
		oks++;
	else
		failed++;
	int maybe = ev->status == KVF_EPEER &&
	            strstr(ev->message, "not confirmed") != NULL;
	int okst = ev->status == 0 || maybe ||
	           (s->fault == F_BADSEG && ev->status == KVF_ERANGE) ||
	           (s->fault == F_CANCEL && ev->status == KVF_ECANCELED) ||
	           (s->fault == F_DEADLINE && ev->status == KVF_ETIMEDOUT) ||
	           (s->doomed && (ev->status == KVF_EPEER ||
	                          ev->status == KVF_ETIMEDOUT ||
	                          ev->status == KVF_ECANCELED));
	if (s->fault == F_BADSEG && ev->status == 0)
		okst = 0;
	if (!okst) {
		if (bad_status++ < 5)
			diag("transfer %llu (fault %d%s): %s: %s",
			     (unsigned long long)ev->xfer, s->fault,
			     s->doomed ? ", peer killed" : "",
			     kvf_strerror(ev->status), ev->message);
	}
	if (ev->status == KVF_ETIMEDOUT && s->seed < seed_cap)
		timed_out_seed[s->seed] = 1;
	if (maybe && s->seed < seed_cap) {
		undecided_seed[s->seed] = 1;
		if (undecided++ < 5)
			diag("transfer %llu: %s (either outcome is allowed)",
			     (unsigned long long)ev->xfer, ev->message);
	}
	if (ev->status == KVF_ETIMEDOUT && s->notified &&
	    s->fault == F_DEADLINE) {
		late_deadline++;
	} else if (ev->status != 0 && s->notified && !s->doomed && !maybe) {
		/* A doomed transfer may have been notified by B just before
		 * B was killed, too late to confirm it: the sender cannot
		 * know (RELIABILITY.md, guarantee 3). */
		if (contradicted++ < 5)
			diag("transfer %llu failed with %s but the peer was "
			     "notified", (unsigned long long)ev->xfer,
			     kvf_strerror(ev->status));
	}
}

static void on_notif(const struct kvf_event *ev)
{
	uint32_t seed, len;
	int e, k;

	notifs++;
	if (ev->tag_len != 12) {
		stray++;
		return;
	}
	e = ev->tag[0];
	k = ev->tag[1];
	memcpy(&seed, ev->tag + 4, 4);
	memcpy(&len, ev->tag + 8, 4);
	if (seed < seed_cap && timed_out_seed[seed] &&
	    (e >= ENGINES || k >= WINDOW || eng[e].s[k].seed != seed)) {
		late_deadline++;
		return;
	}
	if (seed < seed_cap && undecided_seed[seed] &&
	    (e >= ENGINES || k >= WINDOW || !eng[e].s[k].busy ||
	     eng[e].s[k].seed != seed))
		return; /* the undecided transfer was delivered after all */
	if (e >= ENGINES || k >= WINDOW || !eng[e].s[k].busy ||
	    eng[e].s[k].seed != seed) {
		if (stray++ < 5)
			diag("notification for engine %d slot %d seed %u with "
			     "no such transfer pending", e, k, seed);
		return;
	}
	struct slot *s = &eng[e].s[k];
	if (s->notified)
		dups++;
	s->notified = 1;
	if (s->done && s->status == KVF_ETIMEDOUT && s->fault == F_DEADLINE)
		late_deadline++;
	else if (s->done && s->status != 0 && !s->doomed &&
	         !undecided_seed[s->seed] && contradicted++ < 5)
		diag("notification after a %s completion",
		     kvf_strerror(s->status));
	if (!tp_pattern_ok(dbuf + (uint64_t)(e * WINDOW + k) * SLOT, len,
	                   seed))
		bytes_bad++;
}

/* Take every event there is; wait up to ms for the first. */
static void pump(int ms)
{
	struct kvf_event ev[64];
	int n, any = 0;

	for (int e = 0; e < ENGINES; e++) {
		n = 0;
		if (kvf_poll(eng[e].c, ev, 64, &n) != 0)
			bail("poll: %s", kvf_last_error());
		for (int i = 0; i < n; i++)
			if (ev[i].type == KVF_EV_XFER_DONE)
				on_done(e, &ev[i]);
		any += n;
	}
	n = 0;
	if (dec && kvf_wait(dec, ev, 64, any ? 0 : ms, &n) == 0)
		for (int i = 0; i < n; i++)
			if (ev[i].type == KVF_EV_NOTIF)
				on_notif(&ev[i]);
}

static int busy_count(void)
{
	int n = 0;
	for (int e = 0; e < ENGINES; e++)
		for (int k = 0; k < WINDOW; k++)
			n += eng[e].s[k].busy && !slot_free(&eng[e].s[k]);
	return n;
}

static void drain(long limit_ms)
{
	long t0 = tp_now_ms();
	while (busy_count() && tp_now_ms() - t0 < limit_ms)
		pump(5);
}

static void connect_dec(void)
{
	tp_engine_open("dec", &b, NULL, DEC_BYTES, &dec, &dbuf, &dr);
}

struct sample {
	long rss_a, rss_b;
	int fds_a, fds_b;
};

static void sample(struct sample *s)
{
	s->rss_a = tp_proc_rss_kb(a.pid);
	s->rss_b = tp_proc_rss_kb(b.pid);
	s->fds_a = tp_proc_fds(a.pid);
	s->fds_b = tp_proc_fds(b.pid);
}

int main(void)
{
	const char *const args[] = {"--provider", "tcp", "--heartbeat-ms", "200",
	                            NULL};
#if defined(__SANITIZE_ADDRESS__)
	/* Under ASan (the daemons are built like this test) freed memory
	 * sits in a quarantine that grows RSS by tens of MB; keep it small
	 * so the RSS check still measures what the sidecar holds. */
	const char *const env[] = {"ASAN_OPTIONS=quarantine_size_mb=1", NULL};
#else
	const char *const *env = NULL;
#endif
	long total = getenv("SOAK_TRANSFERS") ? atol(getenv("SOAK_TRANSFERS"))
	                                      : 10000;
	long limit_s = getenv("SOAK_SECONDS") && atol(getenv("SOAK_SECONDS"))
	                       ? atol(getenv("SOAK_SECONDS"))
	                       : 150;
	struct sample first_a = {0}, last = {0}, first_b = {0};
	long restart_at = total / 2, t0;
	int restarted = 0, sampled_a = 0, sampled_b = 0, all = 1;

	if (total < 3000)
		total = 3000;
	seed_cap = total + ENGINES * WINDOW * 2 + 16;
	undecided_seed = calloc((size_t)seed_cap, 1);
	if (!(timed_out_seed = calloc((size_t)seed_cap, 1)) || !undecided_seed)
		bail("out of memory");
	plan(16);
	if (tp_daemon_start(&a, "a", args, env) != 0 ||
	    tp_daemon_start(&b, "b", args, env) != 0)
		bail("sidecars did not start");
	connect_dec();
	for (int e = 0; e < ENGINES; e++) {
		char name[16];
		snprintf(name, sizeof name, "pre%d", e);
		tp_engine_open(name, &a, NULL, WINDOW * SLOT, &eng[e].c,
		               &eng[e].buf, &eng[e].r);
		if (kvf_resolve_peer(eng[e].c, b.peer_url, "dec", 0,
		                     &eng[e].peer) != 0)
			bail("engine %s: %s", name, kvf_last_error());
	}

	t0 = tp_now_ms();
	while (submitted < total && tp_now_ms() - t0 < limit_s * 1000) {
		if (!restarted && submitted >= restart_at) {
			/* A full window in flight, then B dies. */
			for (int e = 0; e < ENGINES; e++)
				for (int k = 0; k < WINDOW; k++)
					if (slot_free(&eng[e].s[k]))
						submit(e, k, 0);
			for (int e = 0; e < ENGINES; e++)
				for (int k = 0; k < WINDOW; k++)
					eng[e].s[k].doomed = 1;
			tp_daemon_stop(&b, SIGKILL, 5000);
			kvf_close(dec);
			dec = NULL;
			drain(NORMAL_TIMEOUT_MS + 5000);
			/* Copies: tp_daemon_start clears b first. */
			static char url[sizeof b.peer_url],
				sock[sizeof b.engine_socket],
				ctl[sizeof b.control_url];
			snprintf(url, sizeof url, "%s", b.peer_url);
			snprintf(sock, sizeof sock, "%s", b.engine_socket);
			snprintf(ctl, sizeof ctl, "%s", b.control_url);
			const char *again[] = {"--provider", "tcp",
			                       "--heartbeat-ms", "200",
			                       "--peer-url", url,
			                       "--engine-socket", sock,
			                       "--control-url", ctl, NULL};
			if (tp_daemon_start(&b, "b2", again, env) != 0)
				bail("B did not restart");
			connect_dec();
			for (int e = 0; e < ENGINES; e++) {
				kvf_peer p;
				if (kvf_resolve_peer(eng[e].c, b.peer_url, "dec", 0,
				                     &p) != 0)
					bail("re-resolve: %s", kvf_last_error());
				if (p != eng[e].peer)
					diag("peer id changed %u -> %u",
					     eng[e].peer, p);
				eng[e].peer = p;
			}
			restarted = 1;
			diag("B restarted at %ld transfers", submitted);
		}
		for (int e = 0; e < ENGINES && submitted < total; e++)
			for (int k = 0; k < WINDOW && submitted < total; k++)
				if (slot_free(&eng[e].s[k]))
					submit(e, k, 1);
		pump(2);
		if (!sampled_a && completed >= 1000) {
			sample(&first_a);
			sampled_a = 1;
		}
		if (restarted && !sampled_b && completed >= restart_at + 1000) {
			sample(&first_b);
			sampled_b = 1;
		}
	}
	drain(NORMAL_TIMEOUT_MS + 5000);
	sample(&last);
	long took = tp_now_ms() - t0;
	diag("%ld transfers in %.1f s: %ld ok, %ld failed (faults and the "
	     "restart), %ld notifications",
	     submitted, took / 1000.0, oks, failed, notifs);
	diag("A: RSS %ld -> %ld kB, fds %d -> %d; B (after restart): RSS %ld "
	     "-> %ld kB, fds %d -> %d",
	     first_a.rss_a, last.rss_a, first_a.fds_a, last.fds_a,
	     first_b.rss_b, last.rss_b, first_b.fds_b, last.fds_b);

	all &= ok(submitted >= total, "%ld of %ld transfers submitted within %ld s",
	   submitted, total, limit_s);
	all &= is_int(completed, submitted, "every submitted transfer completed");
	all &= is_int(dups, 0, "none completed (or notified) twice");
	all &= is_int(unknown, 0, "no completion for an unknown id");
	all &= is_int(busy_count(), 0, "nothing left pending");
	all &= is_int(bad_status, 0, "each status fits its fault");
	all &= is_int(stray, 0, "no notification without its transfer");
	all &= is_int(contradicted, 0, "no failed transfer notified its peer");
	all &= ok(undecided <= submitted / 100, "notifications left undecided "
	          "by their sidecar stay rare (%ld)", undecided);
	/* A deadline that passes after the notification was posted must
	 * not report KVF_ETIMEDOUT: the peer may have the notification. */
	all &= ok(late_deadline == 0, "no 1 ms-deadline transfer reported "
	          "timed out after notifying its peer (%ld did)",
	          late_deadline);
	all &= is_int(bytes_bad, 0, "every notification found its bytes in place "
	       "(%ld checked)", notifs);
	all &= ok(oks > submitted / 2, "most transfers succeeded (%ld)", oks);
	all &= ok(sampled_a && last.rss_a - first_a.rss_a < 16 * 1024,
	   "A's RSS flat: %+ld kB", last.rss_a - first_a.rss_a);
	all &= ok(sampled_a && last.fds_a - first_a.fds_a <= 2,
	   "A's fds flat: %d -> %d", first_a.fds_a, last.fds_a);
	all &= ok(sampled_b && last.rss_b - first_b.rss_b < 16 * 1024 &&
	   last.fds_b - first_b.fds_b <= 2,
	   "B's RSS (%+ld kB) and fds (%d -> %d) flat",
	   last.rss_b - first_b.rss_b, first_b.fds_b, last.fds_b);

	for (int e = 0; e < ENGINES; e++)
		kvf_close(eng[e].c);
	kvf_close(dec);
	free(timed_out_seed);
	free(undecided_seed);
	all &= ok(tp_daemon_stop(&a, SIGTERM, 5000) == 0 &&
	          tp_daemon_stop(&b, SIGTERM, 5000) == 0,
	          "both sidecars stop");
	return all ? tap_exit_status() : 1;
}
