/* Eight engines over four sidecars at once, several submitting threads per engine; every notification's bytes checked when it arrives. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#define SIDECARS 4
#define ENGINES 8
#define THREADS 3
#define ROUNDS 40
#define SLICE (32u << 10)
#define REGION (THREADS * ROUNDS * SLICE * 2u)

struct engine {
	int idx;
	kvf_client *c;
	uint8_t *buf;
	kvf_region region;
	kvf_peer peer; /* the engine two places on */
	uint64_t done_ok, done_bad, notifs_ok, notifs_bad;
};

static struct engine eng[ENGINES];
static kvf_region remote_region[ENGINES];

struct tag {
	uint32_t seed;
	uint32_t off;
	uint32_t len;
};

struct job {
	struct engine *e;
	int thread;
};

static void *submitter(void *arg)
{
	struct job *j = arg;
	struct engine *e = j->e;
	int target = (e->idx + 2) % ENGINES;

	for (int r = 0; r < ROUNDS; r++) {
		uint32_t slot = (uint32_t)(j->thread * ROUNDS + r);
		uint32_t off = slot * SLICE;
		uint32_t len = SLICE - (slot * 97u) % 4096u;
		struct tag t = {((uint32_t)e->idx << 16) | slot, off, len};
		/* The local half holds what we send; the remote engine
		 * receives into the upper half of its region. */
		tp_pattern_fill(e->buf + off, len, t.seed);
		struct kvf_seg s = {e->region, remote_region[target], off,
		                    REGION / 2 + off, len};
		struct kvf_xfer_opts o = {&t, sizeof t, 0, NULL};
		int rc;
		while ((rc = kvf_submit(e->c, KVF_WRITE, e->peer, &s, 1, &o,
		                        NULL)) == KVF_EAGAIN)
			sched_yield();
		if (rc != 0)
			__atomic_fetch_add(&e->done_bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

int main(void)
{
	struct tp_daemon sc[SIDECARS];
	const char *const args[] = {"--provider", "tcp", NULL};
	pthread_t th[ENGINES][THREADS];
	struct job jobs[ENGINES][THREADS];
	char name[32];
	int good = 1;

	plan(8);
	for (int i = 0; i < SIDECARS; i++) {
		snprintf(name, sizeof name, "s%d", i);
		if (tp_daemon_start(&sc[i], name, args, NULL) != 0)
			bail("sidecar %d did not start", i);
	}
	for (int i = 0; i < ENGINES; i++) {
		struct kvf_connect_opts o = {.socket_path =
		                                     sc[i / 2].engine_socket};
		eng[i].idx = i;
		snprintf(name, sizeof name, "engine%d", i);
		if (kvf_connect(name, &o, &eng[i].c) != 0 ||
		    kvf_alloc_host(eng[i].c, REGION, NULL, (void **)&eng[i].buf,
		                   &eng[i].region) != 0) {
			diag("engine %d: %s", i, kvf_last_error());
			good = 0;
		}
		remote_region[i] = eng[i].region;
	}
	ok(good, "8 engines connected to 4 sidecars and allocated regions");
	good = 1;
	for (int i = 0; i < ENGINES; i++) {
		int t = (i + 2) % ENGINES;
		snprintf(name, sizeof name, "engine%d", t);
		if (kvf_resolve_peer(eng[i].c, sc[t / 2].peer_url, name, 0,
		                     &eng[i].peer) != 0) {
			diag("resolve %s: %s", name, kvf_last_error());
			good = 0;
		}
	}
	ok(good, "each engine resolved the engine on the next sidecar");

	for (int i = 0; i < ENGINES; i++)
		for (int k = 0; k < THREADS; k++) {
			jobs[i][k] = (struct job){&eng[i], k};
			pthread_create(&th[i][k], NULL, submitter, &jobs[i][k]);
		}

	/* One poller for all engines: completions and notifications. */
	uint64_t want_total = (uint64_t)ENGINES * THREADS * ROUNDS;
	uint64_t dones = 0, notifs = 0;
	long t0 = tp_now_ms();
	while (dones + notifs < 2 * want_total) {
		for (int i = 0; i < ENGINES; i++) {
			struct kvf_event evs[16];
			int n = 0;
			if (kvf_poll(eng[i].c, evs, 16, &n) != 0)
				continue;
			for (int k = 0; k < n; k++) {
				struct kvf_event *ev = &evs[k];
				if (ev->type == KVF_EV_XFER_DONE) {
					dones++;
					if (ev->status == 0)
						eng[i].done_ok++;
					else {
						eng[i].done_bad++;
						diag("engine %d: %s", i, ev->message);
					}
					continue;
				}
				struct tag t;
				notifs++;
				memcpy(&t, ev->tag, sizeof t);
				if (ev->tag_len == sizeof t && t.len <= SLICE &&
				    tp_pattern_ok(eng[i].buf + REGION / 2 + t.off,
				                  t.len, t.seed))
					eng[i].notifs_ok++;
				else
					eng[i].notifs_bad++;
			}
		}
		if (tp_now_ms() - t0 > 90000)
			break;
		sched_yield();
	}
	for (int i = 0; i < ENGINES; i++)
		for (int k = 0; k < THREADS; k++)
			pthread_join(th[i][k], NULL);

	uint64_t dok = 0, dbad = 0, nok = 0, nbad = 0;
	for (int i = 0; i < ENGINES; i++) {
		dok += eng[i].done_ok;
		dbad += eng[i].done_bad;
		nok += eng[i].notifs_ok;
		nbad += eng[i].notifs_bad;
	}
	is_int((long long)dones, (long long)want_total,
	       "exactly one completion per transfer (%llu)",
	       (unsigned long long)want_total);
	is_int((long long)dbad, 0, "none failed");
	is_int((long long)notifs, (long long)want_total,
	       "one notification per transfer");
	is_int((long long)nbad, 0,
	       "every notification found its bytes already in place");
	{
		int n = 0;
		struct kvf_event ev;
		usleep(200000);
		for (int i = 0; i < ENGINES; i++) {
			int m = 0;
			kvf_poll(eng[i].c, &ev, 1, &m);
			n += m;
		}
		is_int(n, 0, "no stray events afterwards");
	}
	for (int i = 0; i < ENGINES; i++)
		kvf_close(eng[i].c);
	good = 1;
	for (int i = 0; i < SIDECARS; i++)
		if (tp_daemon_stop(&sc[i], SIGTERM, 5000) != 0)
			good = 0;
	ok(good, "all sidecars stop cleanly");
	return tap_exit_status();
}
