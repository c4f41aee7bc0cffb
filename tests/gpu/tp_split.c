/* Tensor parallelism across GPUs: a TP=2 prefill (one engine process per GPU, both on one sidecar) pushes its halves of the KV heads into a TP=1 decode engine's layout with byte segments, staged and same-host (rank 1 then crosses GPUs, a peer copy); the decode checks every byte on its GPU. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#include "tests/gpu/gpu_util.h"

/*
 * A Llama-3-8B-like shape: 8 KV heads, 16-token blocks, 128 dims, bf16.
 * Per layer-block, the decode (TP=1) holds [K,V][8 heads][16][128] = 64 KiB
 * and each prefill rank (TP=2) [K,V][4 heads][16][128] = 32 KiB.
 */
#define LAYERS 8
#define BLOCKS 48
#define HEADS 8
#define HEAD_BYTES (16u * 128u * 2u)           /* one head of one block */
#define HALF (HEADS / 2 * HEAD_BYTES)          /* a rank's K (or V) part */
#define DEC_KV (HEADS * HEAD_BYTES)            /* the decode's K part */
#define DEC_BB (2u * DEC_KV)                   /* decode layer-block */
#define PRE_BB (2u * HALF)                     /* prefill layer-block */
#define DEC_LEN ((size_t)LAYERS * BLOCKS * DEC_BB)
#define PRE_LEN ((size_t)LAYERS * BLOCKS * PRE_BB)
#define POOL_OFF (1u << 20) /* the prefill regions sit inside a pool */

/* Prefill block b lands in decode block dec_block(b): scattered. */
static uint32_t dec_block(uint32_t b)
{
	return (b * 7u + 3u) % BLOCKS; /* 7 is prime to 48: a permutation */
}

static size_t dec_off(uint32_t l, uint32_t b)
{
	return ((size_t)l * BLOCKS + b) * DEC_BB;
}

static size_t pre_off(uint32_t l, uint32_t b)
{
	return ((size_t)l * BLOCKS + b) * PRE_BB;
}

/* ---- a prefill rank: its own process, this program again ---------------- */

/*
 * rank R SOCKET PEER_URL DEC_REGION SEED: on GPU R, build this rank's half
 * of the heads from the decode's expected bytes, push it through SOCKET
 * into region DEC_REGION of engine "decode" at PEER_URL with two byte
 * segments per layer-block, wait for the completion. Prints one line,
 * "rank R: status S ..." on stdout; exits 0 when the push succeeded.
 */
static int prefill_rank(int argc, char **argv)
{
	if (argc != 7)
		return 2;
	int r = atoi(argv[2]);
	const char *sock = argv[3], *url = argv[4];
	kvf_region dreg = (kvf_region)strtoul(argv[5], NULL, 10);
	uint32_t seed = (uint32_t)strtoul(argv[6], NULL, 10);
	struct kvf_connect_opts o = {.socket_path = sock};
	struct kvf_layout lay = {LAYERS, BLOCKS, PRE_BB,
	                         (uint64_t)BLOCKS * PRE_BB, PRE_BB, 0};
	struct kvf_seg *segs = calloc((size_t)LAYERS * BLOCKS * 2, sizeof *segs);
	uint8_t *want = malloc(DEC_LEN), *mine = malloc(PRE_LEN), *pool;
	char name[32];
	kvf_client *c;
	kvf_region reg;
	kvf_peer peer;
	struct kvf_event ev;
	uint32_t n = 0;

	snprintf(name, sizeof name, "prefill-%d", r);
	if (!segs || !want || !mine) {
		printf("rank %d: out of memory\n", r);
		return 1;
	}
	CK(cudaSetDevice(r));
	tp_pattern_fill(want, DEC_LEN, seed);
	for (uint32_t l = 0; l < LAYERS; l++)
		for (uint32_t b = 0; b < BLOCKS; b++) {
			size_t d = dec_off(l, dec_block(b)), p = pre_off(l, b);
			memcpy(mine + p, want + d + r * HALF, HALF);
			memcpy(mine + p + HALF, want + d + DEC_KV + r * HALF,
			       HALF);
			segs[n++] = (struct kvf_seg){0, dreg, p,
			                             d + r * HALF, HALF};
			segs[n++] = (struct kvf_seg){0, dreg, p + HALF,
			                             d + DEC_KV + r * HALF, HALF};
		}
	CK(cudaMalloc((void **)&pool, PRE_LEN + 2 * POOL_OFF));
	CK(cudaMemset(pool, 0, PRE_LEN + 2 * POOL_OFF));
	CK(cudaMemcpy(pool + POOL_OFF, mine, PRE_LEN, cudaMemcpyHostToDevice));
	if (kvf_connect(name, &o, &c) != 0 ||
	    kvf_register_cuda(c, pool + POOL_OFF, PRE_LEN, &lay, &reg) != 0 ||
	    kvf_resolve_peer(c, url, "decode", 0, &peer) != 0) {
		printf("rank %d: set-up failed: %s\n", r, kvf_last_error());
		return 1;
	}
	for (uint32_t i = 0; i < n; i++)
		segs[i].local_region = reg;
	char tag[24];
	snprintf(tag, sizeof tag, "rank %d", r);
	struct kvf_xfer_opts xo = {.tag = tag,
	                           .tag_len = (uint32_t)strlen(tag),
	                           .timeout_ms = 30000};
	int err = 0;
	struct tp_wait_opts wo = {.say = TP_SAY_QUIET, .err = &err};
	long t0 = tp_now_ms();
	int rc = kvf_submit(c, KVF_WRITE, peer, segs, n, &xo, NULL);
	if (rc != 0) {
		printf("rank %d: submit: %s: %s\n", r, kvf_strerror(rc),
		       kvf_last_error());
		return 1;
	}
	if (!tp_wait_event(c, KVF_EV_XFER_DONE, 40000, &ev, &wo)) {
		if (err)
			printf("rank %d: wait: %s\n", r, kvf_last_error());
		else
			printf("rank %d: no completion in 40 s\n", r);
		return 1;
	}
	printf("rank %d: status %d (%s) %u segments, %zu bytes in %ld ms "
	       "%s\n", r, ev.status, kvf_strerror(ev.status), n,
	       (size_t)PRE_LEN, tp_now_ms() - t0, ev.message);
	fflush(stdout);
	kvf_close(c);
	CK(cudaFree(pool));
	return ev.status == 0 ? 0 : 1;
}

/* ---- the decode engine and the test -------------------------------------- */

static pid_t spawn_rank(int r, const struct tp_daemon *a,
                        const struct tp_daemon *b, kvf_region dreg,
                        uint32_t seed, const char *out)
{
	char rs[16], regs[16], seeds[16];
	snprintf(rs, sizeof rs, "%d", r);
	snprintf(regs, sizeof regs, "%u", dreg);
	snprintf(seeds, sizeof seeds, "%u", seed);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* CUDA does not survive fork: a fresh process. Its one line
		 * of output goes to a file, not into our TAP stream. */
		if (!freopen(out, "w", stdout))
			_exit(126);
		execl("/proc/self/exe", "tp_split", "rank", rs,
		      a->engine_socket, b->peer_url, regs, seeds, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static char *ctl_peers(const struct tp_daemon *d)
{
	struct tp_run r;
	const char *argv[] = {tp_bin("kvferryctl"), "-u", d->control_url,
	                      "peers", NULL};
	if (tp_run(&r, 10000, NULL, argv) != 0)
		return strdup("");
	char *out = r.out;
	r.out = NULL;
	tp_run_free(&r);
	return out ? out : strdup("");
}

/* Describe where decode offset off lies in the layout. */
static void where(size_t off, char *buf, size_t len)
{
	size_t lb = off / DEC_BB, in = off % DEC_BB;
	snprintf(buf, len, "layer %zu block %zu %s head %zu token %zu "
	         "byte %zu", lb / BLOCKS, lb % BLOCKS,
	         in < DEC_KV ? "K" : "V", (in % DEC_KV) / HEAD_BYTES,
	         (in % HEAD_BYTES) / 256, in % 256);
}

static void run_mode(const char *mode, const struct tp_daemon *a,
                     const struct tp_daemon *b, uint32_t seed,
                     const char *path)
{
	struct kvf_connect_opts o = {.socket_path = b->engine_socket};
	struct kvf_layout lay = {LAYERS, BLOCKS, DEC_BB,
	                         (uint64_t)BLOCKS * DEC_BB, DEC_BB, 0};
	uint8_t *want = malloc(DEC_LEN), *got = malloc(DEC_LEN), *dev;
	kvf_client *c;
	kvf_region dreg;
	pid_t pid[2];
	char out[2][400];
	int seen[2] = {0, 0};

	if (!want || !got)
		bail("out of memory");
	CK(cudaSetDevice(0));
	CK(cudaMalloc((void **)&dev, DEC_LEN));
	/* Not zeros: a byte no rank wrote shows. */
	CK(cudaMemset(dev, 0xee, DEC_LEN));
	if (kvf_connect("decode", &o, &c) != 0 ||
	    kvf_register_cuda(c, dev, DEC_LEN, &lay, &dreg) != 0)
		bail("%s: decode set-up: %s", mode, kvf_last_error());

	long t0 = tp_now_ms();
	for (int r = 0; r < 2; r++) {
		snprintf(out[r], sizeof out[r], "%s/%s-rank%d.out",
		         tp_tmpdir(), mode, r);
		pid[r] = spawn_rank(r, a, b, dreg, seed, out[r]);
		ok(pid[r] > 0, "%s: prefill rank %d started on GPU %d", mode, r,
		   r);
	}
	/* Both notifications, each naming its rank's engine. */
	while ((!seen[0] || !seen[1]) && tp_now_ms() - t0 < 60000) {
		struct kvf_event ev;
		int n = 0;
		if (kvf_wait(c, &ev, 1, 200, &n) != 0)
			break;
		if (!n)
			continue;
		if (ev.type != KVF_EV_NOTIF) {
			diag("%s: decode got event type %d status %d %s", mode,
			     ev.type, ev.status, ev.message);
			continue;
		}
		for (int r = 0; r < 2; r++) {
			char name[32], tag[24];
			snprintf(name, sizeof name, "prefill-%d", r);
			snprintf(tag, sizeof tag, "rank %d", r);
			if (strcmp(ev.peer_engine, name) == 0 &&
			    ev.tag_len == strlen(tag) &&
			    memcmp(ev.tag, tag, ev.tag_len) == 0)
				seen[r]++;
		}
	}
	long ms = tp_now_ms() - t0;
	for (int r = 0; r < 2; r++)
		is_int(seen[r], 1, "%s: one notification from prefill-%d with "
		       "its tag", mode, r);
	for (int r = 0; r < 2; r++) {
		int code = tp_reap(pid[r], 30000);
		char *line = tp_read_file(out[r]);
		if (line)
			line[strcspn(line, "\n")] = 0;
		is_int(code, 0, "%s: rank %d pushed its heads: %s", mode, r,
		       line ? line : "(no output)");
		free(line);
	}

	tp_pattern_fill(want, DEC_LEN, seed);
	CK(cudaMemcpy(got, dev, DEC_LEN, cudaMemcpyDeviceToHost));
	size_t bad = DEC_LEN, nbad = 0;
	for (size_t i = 0; i < DEC_LEN; i++)
		if (got[i] != want[i] && nbad++ == 0)
			bad = i;
	char loc[120] = "";
	if (nbad)
		where(bad, loc, sizeof loc);
	ok(nbad == 0, "%s: every byte of the decode's %zu-byte KV (%u "
	   "layers x %u blocks x [K,V][%u heads]) is right on GPU 0 after "
	   "both notifications (%ld ms)%s%s", mode, (size_t)DEC_LEN, LAYERS,
	   BLOCKS, HEADS, ms, nbad ? "; first wrong byte at " : "", loc);
	if (nbad)
		diag("%zu wrong bytes", nbad);

	char *peers = ctl_peers(a);
	like(peers, path, "%s: sidecar A's peer table says path %s", mode,
	     path);
	if (!strstr(peers, path))
		diag("%s", peers);
	free(peers);

	kvf_close(c);
	CK(cudaFree(dev));
	free(want);
	free(got);
}

int main(int argc, char **argv)
{
	char why[200];
	int ndev = 0;
	struct tp_daemon a1, b1, a2, b2;

	if (argc >= 2 && strcmp(argv[1], "rank") == 0)
		return prefill_rank(argc, argv);
	if (gpu_probe(why, sizeof why) != 0)
		skip_all("no CUDA device: %s", why);
	CK(cudaGetDeviceCount(&ndev));
	if (ndev < 2)
		skip_all("tensor parallelism across GPUs needs 2 CUDA devices, "
		         "this machine shows %d", ndev);

	const char *const sa[] = {"--provider", "tcp", "--host-id", "hostA",
	                          NULL};
	const char *const sb[] = {"--provider", "tcp", "--host-id", "hostB",
	                          NULL};
	const char *const ss[] = {"--provider", "tcp", "--host-id", "same",
	                          NULL};
	if (tp_daemon_start(&a1, "a1", sa, NULL) ||
	    tp_daemon_start(&b1, "b1", sb, NULL) ||
	    tp_daemon_start(&a2, "a2", ss, NULL) ||
	    tp_daemon_start(&b2, "b2", ss, NULL))
		bail("sidecars did not start");

	run_mode("staged", &a1, &b1, 41, "staged");
	run_mode("same-host", &a2, &b2, 42, "same-host");

	char *log = tp_daemon_log(&a2);
	ok(log && strstr(log, "engine prefill-0") &&
	   strstr(log, "engine prefill-1"), "both ranks registered with the "
	   "one sidecar A");
	free(log);
	ok(tp_daemon_stop(&a1, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&b1, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&a2, SIGTERM, 8000) == 0 &&
	   tp_daemon_stop(&b2, SIGTERM, 8000) == 0,
	   "all sidecars stop cleanly");
	done_testing();
}
