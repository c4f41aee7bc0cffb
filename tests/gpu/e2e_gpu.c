/* GPU KV end to end: engines register cudaMalloc'd KV (pool offsets), two sidecars move it staged and same-host, push and pull, bytes checked on the GPU; a transfer waits for the engine's CUDA event; a killed engine's imports are closed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#include "tests/gpu/gpu_util.h"

#define LAYERS 4
#define BLOCKS 64
#define BB (64u << 10) /* bytes of one layer-block */
#define REGION ((size_t)LAYERS * BLOCKS * BB)
#define POOL_OFF (1u << 20) /* regions start inside a bigger allocation */

static struct kvf_event ev;

struct side {
	kvf_client *c;
	uint8_t *pool; /* device */
	uint8_t *dev;  /* device: pool + POOL_OFF */
	kvf_region region;
	uint8_t *host; /* a host region of the same size */
	kvf_region hregion;
};

static void setup_side(struct side *s, const char *name,
                       const struct tp_daemon *d)
{
	struct kvf_connect_opts o = {.socket_path = d->engine_socket};
	struct kvf_layout l = {LAYERS, BLOCKS, BB, (uint64_t)BLOCKS * BB, BB, 0};
	CK(cudaMalloc((void **)&s->pool, REGION + 2 * POOL_OFF));
	s->dev = s->pool + POOL_OFF;
	CK(cudaMemset(s->pool, 0, REGION + 2 * POOL_OFF));
	if (kvf_connect(name, &o, &s->c) != 0)
		bail("%s: connect: %s", name, kvf_last_error());
	if (kvf_register_cuda(s->c, s->dev, REGION, &l, &s->region) != 0)
		bail("%s: register cuda: %s", name, kvf_last_error());
	if (kvf_alloc_host(s->c, REGION, &l, (void **)&s->host, &s->hregion))
		bail("%s: alloc host: %s", name, kvf_last_error());
}

/* Push blocks of src's GPU region into dst's, check dst on the GPU. */
static void push_blocks(struct side *src, struct side *dst, kvf_peer peer,
                        const char *what, uint32_t seed)
{
	uint32_t lb[BLOCKS / 2], rb[BLOCKS / 2];
	uint8_t *want = malloc(REGION), *got = malloc(REGION);
	struct kvf_xfer_opts o = {.tag = what, .tag_len = (uint32_t)strlen(what)};
	int bad = 0;

	tp_pattern_fill(want, REGION, seed);
	CK(cudaMemcpy(src->dev, want, REGION, cudaMemcpyHostToDevice));
	CK(cudaMemset(dst->dev, 0, REGION));
	for (uint32_t i = 0; i < BLOCKS / 2; i++) {
		lb[i] = i * 2;                /* every other block: */
		rb[i] = BLOCKS - 1 - i;       /* scattered, reversed */
	}
	long t0 = tp_now_ms();
	is_int(kvf_submit_blocks(src->c, KVF_WRITE, peer, src->region,
	                         dst->region, lb, rb, BLOCKS / 2, &o, NULL),
	       0, "%s: block WRITE submitted", what);
	ok(tp_wait_event(dst->c, KVF_EV_NOTIF, 20000, &ev, NULL),
	   "%s: notification", what);
	long ms = tp_now_ms() - t0;
	CK(cudaMemcpy(got, dst->dev, REGION, cudaMemcpyDeviceToHost));
	for (uint32_t l = 0; l < LAYERS && !bad; l++)
		for (uint32_t i = 0; i < BLOCKS / 2 && !bad; i++) {
			size_t so = ((size_t)l * BLOCKS + lb[i]) * BB;
			size_t dof = ((size_t)l * BLOCKS + rb[i]) * BB;
			if (memcmp(got + dof, want + so, BB) != 0)
				bad = 1;
		}
	ok(!bad, "%s: every layer-block in the destination GPU memory when "
	   "the notification came (%.1f MiB in %ld ms)", what,
	   (double)LAYERS * BLOCKS / 2 * BB / 1048576.0, ms);
	ok(tp_wait_event(src->c, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
	   ev.status == 0,
	   "%s: completion ok (%s)", what, ev.message);
	free(want);
	free(got);
}

/* The engine that gets killed: registers GPU memory, then waits. */
static int doomed(const char *socket)
{
	struct tp_daemon fake;
	struct side k;
	memset(&fake, 0, sizeof fake);
	snprintf(fake.engine_socket, sizeof fake.engine_socket, "%s", socket);
	setup_side(&k, "doomed", &fake);
	for (;;)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	char why[200];
	struct tp_daemon a, b, c, d;
	struct side pre, dec, pre2, dec2;
	kvf_peer ab, cd;

	if (argc == 3 && strcmp(argv[1], "doomed") == 0)
		return doomed(argv[2]);
	if (gpu_probe(why, sizeof why) != 0)
		skip_all("no CUDA device: %s", why);


	/* A and B claim different hosts: staged. C and D: same host. */
	const char *const sa[] = {"--provider", "tcp", "--host-id", "hostA",
	                          NULL};
	const char *const sb[] = {"--provider", "tcp", "--host-id", "hostB",
	                          NULL};
	const char *const sc[] = {"--provider", "tcp", "--host-id", "same",
	                          NULL};
	if (tp_daemon_start(&a, "a", sa, NULL) || tp_daemon_start(&b, "b", sb, NULL) ||
	    tp_daemon_start(&c, "c", sc, NULL) || tp_daemon_start(&d, "d", sc, NULL))
		bail("sidecars did not start");
	setup_side(&pre, "prefill", &a);
	setup_side(&dec, "decode", &b);
	is_int(kvf_resolve_peer(pre.c, b.peer_url, "decode", 0, &ab), 0,
	       "staged pair resolved");

	/* 1. Staged GPU -> GPU push, blocks scattered. */
	push_blocks(&pre, &dec, ab, "staged gpu->gpu", 11);

	/* 2. Staged host -> GPU and GPU -> host with byte segments. */
	{
		uint8_t *got = malloc(REGION);
		tp_pattern_fill(pre.host, REGION, 12);
		CK(cudaMemset(dec.dev, 0, REGION));
		struct kvf_seg s = {pre.hregion, dec.region, 4096, 8192,
		                    REGION - 3 * 4096 - 5};
		struct kvf_xfer_opts o = {.tag = "h2g", .tag_len = 3};
		kvf_submit(pre.c, KVF_WRITE, ab, &s, 1, &o, NULL);
		ok(tp_wait_event(dec.c, KVF_EV_NOTIF, 20000, &ev, NULL),
		   "host->gpu: notified");
		CK(cudaMemcpy(got, dec.dev, REGION, cudaMemcpyDeviceToHost));
		ok(memcmp(got + 8192, pre.host + 4096, s.length) == 0 &&
		   got[8191] == 0 && got[8192 + s.length] == 0,
		   "host->gpu: bytes in GPU memory, nothing around them");
		ok(tp_wait_event(pre.c, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
		   ev.status == 0,
		   "host->gpu: completion ok");

		tp_pattern_fill(got, REGION, 13);
		CK(cudaMemcpy(pre.dev, got, REGION, cudaMemcpyHostToDevice));
		memset(dec.host, 0, REGION);
		s = (struct kvf_seg){pre.region, dec.hregion, 0, 0, REGION};
		kvf_submit(pre.c, KVF_WRITE, ab, &s, 1, &o, NULL);
		ok(tp_wait_event(dec.c, KVF_EV_NOTIF, 20000, &ev, NULL),
		   "gpu->host: notified");
		ok(memcmp(dec.host, got, REGION) == 0, "gpu->host: bytes");
		ok(tp_wait_event(pre.c, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
		   ev.status == 0,
		   "gpu->host: completion ok");

		/* Pull into GPU memory from the peer's host region. */
		tp_pattern_fill(dec.host, REGION, 14);
		CK(cudaMemset(pre.dev, 0, REGION));
		s = (struct kvf_seg){pre.region, dec.hregion, 0, 0, REGION};
		kvf_submit(pre.c, KVF_READ, ab, &s, 1, NULL, NULL);
		ok(tp_wait_event(pre.c, KVF_EV_XFER_DONE, 20000, &ev, NULL) &&
		   ev.status == 0,
		   "READ host->local gpu: ok (%s)", ev.message);
		CK(cudaMemcpy(got, pre.dev, REGION, cudaMemcpyDeviceToHost));
		ok(memcmp(got, dec.host, REGION) == 0, "READ: bytes in GPU");
		/* Pull from a remote GPU region: refused with a reason. */
		s = (struct kvf_seg){pre.region, dec.region, 0, 0, 4096};
		kvf_submit(pre.c, KVF_READ, ab, &s, 1, NULL, NULL);
		ok(tp_wait_event(pre.c, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
		   ev.status == KVF_ENOTSUP, "READ from a remote GPU across "
		   "hosts: KVF_ENOTSUP (%s)", ev.message);
		free(got);
	}

	/* 3. The transfer waits for the engine's CUDA event: a kernel that
	 * writes the KV 200 ms later, an event recorded after it. */
	{
		cudaStream_t st;
		cudaEvent_t e;
		uint32_t *got = malloc(BB);
		CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
		CK(cudaEventCreateWithFlags(&e, cudaEventInterprocess |
		                                        cudaEventDisableTiming));
		CK(cudaMemset(pre.dev, 0, REGION));
		CK(cudaMemset(dec.dev, 0, REGION));
		CK(spin_fill(st, pre.dev, BB / 4, 0xfeedbeef, 200000000ull));
		CK(cudaEventRecord(e, st));
		struct kvf_seg s = {pre.region, dec.region, 0, 0, BB};
		struct kvf_xfer_opts o = {.tag = "ev", .tag_len = 2,
		                          .cuda_event = e};
		is_int(kvf_submit(pre.c, KVF_WRITE, ab, &s, 1, &o, NULL), 0,
		       "event-ordered WRITE submitted (%s)", kvf_last_error());
		ok(tp_wait_event(dec.c, KVF_EV_NOTIF, 20000, &ev, NULL),
		   "event: notified");
		CK(cudaMemcpy(got, dec.dev, BB, cudaMemcpyDeviceToHost));
		int all = 1;
		for (uint32_t i = 0; i < BB / 4; i++)
			all &= got[i] == 0xfeedbeef;
		ok(all, "the bytes the kernel wrote after 200 ms arrived, not "
		   "the zeros before");
		ok(tp_wait_event(pre.c, KVF_EV_XFER_DONE, 5000, &ev, NULL) &&
		   ev.status == 0,
		   "event: completion ok");
		CK(cudaStreamSynchronize(st));
		free(got);
	}

	/* 4. Same host: GPU to GPU without the network. */
	setup_side(&pre2, "prefill2", &c);
	setup_side(&dec2, "decode2", &d);
	is_int(kvf_resolve_peer(pre2.c, d.peer_url, "decode2", 0, &cd), 0,
	       "same-host pair resolved");
	push_blocks(&pre2, &dec2, cd, "same-host gpu->gpu", 21);
	{
		/* Pull on the same host: D2D the other way. */
		uint8_t *want = malloc(REGION), *got = malloc(REGION);
		tp_pattern_fill(want, REGION, 22);
		CK(cudaMemcpy(dec2.dev, want, REGION, cudaMemcpyHostToDevice));
		CK(cudaMemset(pre2.dev, 0, REGION));
		struct kvf_seg s = {pre2.region, dec2.region, 0, 0, REGION};
		kvf_submit(pre2.c, KVF_READ, cd, &s, 1, NULL, NULL);
		ok(tp_wait_event(pre2.c, KVF_EV_XFER_DONE, 20000, &ev, NULL) &&
		   ev.status == 0,
		   "same-host READ ok");
		CK(cudaMemcpy(got, pre2.dev, REGION, cudaMemcpyDeviceToHost));
		ok(memcmp(got, want, REGION) == 0, "same-host READ bytes");
		free(want);
		free(got);
	}

	/* 5. An engine process killed while registered: the sidecar closes
	 * its imports and keeps serving the others. */
	{
		/* CUDA does not survive fork: the engine is a fresh
		 * process, this program again with "doomed SOCKET". */
		pid_t pid = fork();
		if (pid == 0) {
			/* Its TAP output would mix with ours. */
			if (!freopen("/dev/null", "w", stdout))
				_exit(126);
			execl("/proc/self/exe", "e2e_gpu", "doomed",
			      b.engine_socket, (char *)NULL);
			_exit(127);
		}
		usleep(1500000);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		usleep(500000);
		char *log = tp_daemon_log(&b);
		like(log, "engine doomed", "sidecar B saw the engine and its "
		     "death");
		ok(log && strstr(log, "doomed (session") &&
		   (strstr(log, "disconnected") || strstr(log, "process exited")), "and released its session");
		free(log);
		push_blocks(&pre, &dec, ab, "after a death", 31);
	}

	kvf_close(pre.c);
	kvf_close(dec.c);
	kvf_close(pre2.c);
	kvf_close(dec2.c);
	ok(tp_daemon_stop(&a, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&c, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&d, SIGTERM, 8000) == 0,
	   "all sidecars stop cleanly");
	done_testing();
}
