/*
 * tests/bench/kvferry_demo.c - `make demo`: disaggregated prefill/decode on
 * one machine. Two kvferryd sidecars on loopback (tcp;ofi_rxm unless
 * --provider says otherwise) in a temp dir; a "prefill" engine process
 * fills the KV blocks of one request in a Llama-3-8B-shaped layout (see
 * lib/kv_shape.h) and pushes them with kvf_submit_blocks to a "decode" engine
 * process through its sidecar. The decode engine picks its own blocks and
 * tells prefill which (over a pipe, as a router would), and when the
 * notification arrives checks every byte, and that nothing outside its
 * blocks was touched, and prints blocks, bytes, time and GB/s. Then the
 * sidecars get SIGTERM and must exit 0 within 5 s; the temp dir goes.
 *
 *   kvferry_demo [--provider NAME] [--tokens N]
 *
 * Exit status: 0 when every byte matched and everything stopped cleanly;
 * 1 on a mismatch or a failed step; 2 for bad usage.
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/kv_shape.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/proc.h"

#define SEED 0x6b76666572727921ull /* fixed: the demo is deterministic */
/* Decode blocks the request must not touch. */
#define SPARE_BLOCKS 8u
#define SENTINEL 0xa5
#define MAX_TOKENS 32768u          /* 4 GiB of KV per engine */
#define WAIT_MS 120000

#define PROG "kvferry_demo"

/* Each engine's waits: events passed over, a failure and a timeout go to
 * stderr named by the engine (stdout is the demo's report). */
static const struct tp_wait_opts decode_wait = {.say = TP_SAY_STDERR,
                                                .who = "decode"};
static const struct tp_wait_opts prefill_wait = {.say = TP_SAY_STDERR,
                                                 .who = "prefill"};

struct decode_hello {
	kvf_region region;
	uint32_t num_blocks;
	uint32_t nblocks;
};

#define FAIL(...)                                                      \
	do {                                                           \
		fprintf(stderr, __VA_ARGS__);                          \
		fputc('\n', stderr);                                   \
		goto out;                                              \
	} while (0)

/* The decode engine: allocate, tell prefill where to write, wait for the
 * notification, check. Returns the process exit status. */
static int decode_main(const char *sock, uint32_t nblocks, int to_pre,
                       int from_pre)
{
	struct kvf_connect_opts o = {.socket_path = sock};
	uint32_t num = nblocks + SPARE_BLOCKS, *blocks = NULL;
	struct kvf_layout lay = kv_layout(num);
	struct decode_hello h;
	struct kvf_event ev;
	kvf_client *c = NULL;
	uint8_t *buf;
	double t_submit, t_notif;
	uint64_t bad = 0, bytes;
	int rc, status = 1;

	if ((rc = kvf_connect("decode", &o, &c)) != 0)
		FAIL("decode: kvf_connect() failed: %s (%d): %s",
		     kvf_strerror(rc), rc, kvf_last_error());
	rc = kvf_alloc_host(c, kv_region_bytes(num), &lay, (void **)&buf,
	                    &h.region);
	if (rc != 0)
		FAIL("decode: kvf_alloc_host(%llu bytes) failed: %s (%d): %s",
		     (unsigned long long)kv_region_bytes(num),
		     kvf_strerror(rc), rc, kvf_last_error());
	memset(buf, SENTINEL, kv_region_bytes(num));
	blocks = malloc(nblocks * sizeof *blocks);
	if (!blocks)
		FAIL("decode: out of memory");
	for (uint32_t i = 0; i < nblocks; i++)
		blocks[i] = kv_decode_block(num, i);
	h.num_blocks = num;
	h.nblocks = nblocks;
	if (tp_write_full(to_pre, &h, sizeof h, 10000) != 0 ||
	    tp_write_full(to_pre, blocks, nblocks * sizeof *blocks,
	                  10000) != 0)
		FAIL("decode: cannot reach prefill over the pipe");

	if (!tp_wait_event(c, KVF_EV_NOTIF, WAIT_MS, &ev, &decode_wait))
		goto out;
	t_notif = tp_now_s();
	if (ev.tag_len != 6 || memcmp(ev.tag, "req-42", 6) != 0 ||
	    strcmp(ev.peer_engine, "prefill") != 0)
		FAIL("decode: notification with tag '%.*s' from '%s', want "
		     "'req-42' from 'prefill'",
		     (int)ev.tag_len, (const char *)ev.tag, ev.peer_engine);
	if (tp_read_full(from_pre, &t_submit, sizeof t_submit, 10000) != 0)
		FAIL("decode: prefill never said when it submitted");

	/* Every byte of every layer of every block. */
	for (uint32_t i = 0; i < nblocks; i++) {
		for (uint32_t l = 0; l < KV_LAYERS; l++) {
			const uint8_t *p = kv_piece(buf, num, l, blocks[i]);
			long at = kv_check_piece(p, SEED, l, i);
			if (at >= 0 && bad++ < 5)
				fprintf(stderr,
				        "decode: MISMATCH: request block %u "
				        "(decode block %u) layer %u byte "
				        "%ld\n",
				        i, blocks[i], l, at);
		}
	}
	/* And nothing outside the request's blocks changed. */
	for (uint32_t b = 0; b < num - nblocks; b++) {
		for (uint32_t l = 0; l < KV_LAYERS; l++) {
			const uint8_t *p = kv_piece(buf, num, l, b);
			for (uint64_t k = 0; k < KV_PIECE; k++) {
				if (p[k] != SENTINEL) {
					if (bad++ < 5)
						fprintf(stderr, "decode: "
						    "spare block %u layer %u "
						    "byte %llu was "
						    "overwritten\n", b, l,
						    (unsigned long long)k);
					break;
				}
			}
		}
	}
	bytes = (uint64_t)nblocks * KV_LAYERS * KV_PIECE;
	printf("decode:  notification '%.*s' from %s; checked %u blocks x %u "
	       "layers = %llu bytes: %s\n",
	       (int)ev.tag_len, (const char *)ev.tag, ev.peer_engine, nblocks,
	       KV_LAYERS, (unsigned long long)bytes,
	       bad ? "MISMATCH" : "all match, spare blocks untouched");
	printf("result:  %u blocks, %llu bytes in %.3f ms (submit -> "
	       "notification): %.3f GB/s\n",
	       nblocks, (unsigned long long)bytes,
	       (t_notif - t_submit) * 1e3,
	       (double)bytes / (t_notif - t_submit) / 1e9);
	fflush(stdout);
	status = bad ? 1 : 0;
out:
	free(blocks);
	kvf_close(c);
	return status;
}

/* The prefill engine: fill, learn decode's blocks, push, wait. */
static int prefill_main(const char *sock, const char *decode_url,
                        uint32_t nblocks, int from_dec, int to_dec)
{
	struct kvf_connect_opts o = {.socket_path = sock};
	struct kvf_layout lay = kv_layout(nblocks);
	struct kvf_xfer_opts xo = {.tag = "req-42", .tag_len = 6,
	                           .timeout_ms = WAIT_MS};
	uint32_t *local = NULL, *remote = NULL;
	struct decode_hello h;
	struct kvf_event ev;
	kvf_client *c = NULL;
	kvf_region region;
	kvf_peer peer;
	kvf_xfer x;
	uint8_t *buf;
	double t0, t1;
	int rc, status = 1;

	if ((rc = kvf_connect("prefill", &o, &c)) != 0)
		FAIL("prefill: kvf_connect() failed: %s (%d): %s",
		     kvf_strerror(rc), rc, kvf_last_error());
	rc = kvf_alloc_host(c, kv_region_bytes(nblocks), &lay, (void **)&buf,
	                    &region);
	if (rc != 0)
		FAIL("prefill: kvf_alloc_host(%llu bytes) failed: %s (%d): %s",
		     (unsigned long long)kv_region_bytes(nblocks),
		     kvf_strerror(rc), rc, kvf_last_error());
	/* "Prefill": the request's KV, block i in local block i. */
	for (uint32_t i = 0; i < nblocks; i++)
		for (uint32_t l = 0; l < KV_LAYERS; l++)
			kv_fill_piece(kv_piece(buf, nblocks, l, i), SEED, l,
			              i);

	if (tp_read_full(from_dec, &h, sizeof h, 30000) != 0 ||
	    h.nblocks != nblocks)
		FAIL("prefill: decode did not send its blocks");
	local = malloc(nblocks * sizeof *local);
	remote = malloc(nblocks * sizeof *remote);
	if (!local || !remote)
		FAIL("prefill: out of memory");
	if (tp_read_full(from_dec, remote, nblocks * sizeof *remote,
	                 10000) != 0)
		FAIL("prefill: decode's block list was cut short");
	for (uint32_t i = 0; i < nblocks; i++)
		local[i] = i;
	rc = kvf_resolve_peer(c, decode_url, "decode", 10000, &peer);
	if (rc != 0)
		FAIL("prefill: kvf_resolve_peer(%s, decode) failed: %s (%d): "
		     "%s", decode_url, kvf_strerror(rc), rc, kvf_last_error());

	t0 = tp_now_s();
	rc = kvf_submit_blocks(c, KVF_WRITE, peer, region, h.region, local,
	                       remote, nblocks, &xo, &x);
	if (rc != 0)
		FAIL("prefill: kvf_submit_blocks(%u blocks) failed: %s (%d): "
		     "%s", nblocks, kvf_strerror(rc), rc, kvf_last_error());
	if (tp_write_full(to_dec, &t0, sizeof t0, 10000) != 0)
		FAIL("prefill: cannot reach decode over the pipe");
	if (!tp_wait_event(c, KVF_EV_XFER_DONE, WAIT_MS, &ev, &prefill_wait))
		goto out;
	t1 = tp_now_s();
	if (ev.xfer != x || ev.status != 0)
		FAIL("prefill: transfer %llu ended with %s: %s",
		     (unsigned long long)ev.xfer, kvf_strerror(ev.status),
		     ev.message);
	printf("prefill: pushed %u blocks (%llu bytes) with kvf_submit_blocks;"
	       " completion after %.3f ms\n",
	       nblocks, (unsigned long long)ev.bytes, (t1 - t0) * 1e3);
	fflush(stdout);
	status = 0;
out:
	free(local);
	free(remote);
	kvf_close(c);
	return status;
}

/* Reap pid within ms (SIGKILL after); its exit status, or -1 (said on
 * stderr) when it had to be killed or a signal ended it. */
static int reap(pid_t pid, int ms, const char *who)
{
	int code = tp_reap(pid, ms);

	if (code < 0)
		bench_err("%s did not finish in %d ms; killed", who, ms);
	else if (code > 128)
		bench_err("%s died of signal %d", who, code - 128);
	return code > 128 ? -1 : code;
}

static void show_log(const struct tp_daemon *d, const char *name)
{
	char *log = tp_daemon_log(d);

	fprintf(stderr, "---- %s sidecar log (%s) ----\n%s", name,
	        d->log_path, log);
	free(log);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " [--provider NAME] [--tokens N]\n"
	        "  --provider NAME  libfabric provider for both sidecars "
	        "(default tcp, i.e. tcp;ofi_rxm; also shm)\n"
	        "  --tokens N       request length in tokens, 1..%u "
	        "(default 4096)\n",
	        MAX_TOKENS);
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"provider", required_argument, NULL, 'p'},
		{"tokens", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *prov = "tcp";
	unsigned long tokens = 4096;
	struct tp_daemon a, b;
	int d2p[2], p2d[2], c, st_pre, st_dec, rc = 1;
	uint32_t nblocks;
	pid_t pre, dec;

	bench_init(PROG, 2);
	while ((c = getopt_long(argc, argv, "p:t:h", longs, NULL)) != -1) {
		switch (c) {
		case 'p':
			prov = optarg;
			break;
		case 't':
			tokens = bench_opt_u32("--tokens", optarg, 1,
			                       MAX_TOKENS);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		bench_err("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (kv_find_build() != 0)
		return 1;
	nblocks = kv_blocks_for(tokens);

	printf("kvferry demo: Llama-3-8B-shaped KV, %lu tokens = %u blocks of "
	       "%u tokens, provider %s\n",
	       tokens, nblocks, KV_BLOCK_TOKENS, prov);
	printf("layout:  per layer [num_blocks][K,V][%u heads][%u tokens][%u "
	       "dims] bf16; %u layers\n",
	       KV_HEADS, KV_BLOCK_TOKENS, KV_HEAD_DIM, KV_LAYERS);
	printf("         block_bytes %llu (one layer of one block), "
	       "block_stride %llu, layer_stride num_blocks x %llu;\n"
	       "         a block = %u pieces = %llu bytes; request = %llu "
	       "bytes\n",
	       (unsigned long long)KV_PIECE, (unsigned long long)KV_PIECE,
	       (unsigned long long)KV_PIECE, KV_LAYERS,
	       (unsigned long long)(KV_LAYERS * KV_PIECE),
	       (unsigned long long)nblocks * KV_LAYERS * KV_PIECE);
	printf("         prefill holds the request in blocks 0..%u; decode "
	       "(%u blocks) receives it in blocks %u..%u, top down\n",
	       nblocks - 1, nblocks + SPARE_BLOCKS, nblocks + SPARE_BLOCKS - 1,
	       SPARE_BLOCKS);
	fflush(stdout);

	const char *args[8];
	char addr[64];
	kv_sidecar_args(args, prov, addr, sizeof addr, "prefill", NULL, 0);
	if (tp_daemon_start(&a, "prefill-sidecar", args, NULL) != 0) {
		bench_err("the prefill sidecar did not start");
		return 1;
	}
	kv_sidecar_args(args, prov, addr, sizeof addr, "decode", NULL, 0);
	if (tp_daemon_start(&b, "decode-sidecar", args, NULL) != 0) {
		bench_err("the decode sidecar did not start");
		tp_daemon_stop(&a, SIGTERM, 5000);
		return 1;
	}
	printf("sidecars: prefill pid %d (peer %s), decode pid %d (peer %s), "
	       "in %s\n",
	       (int)a.pid, a.peer_url, (int)b.pid, b.peer_url, tp_tmpdir());
	fflush(stdout);

	if (pipe(d2p) != 0 || pipe(p2d) != 0) {
		perror("kvferry_demo: pipe");
		goto stop;
	}
	/* Children leave with _exit: the temp dir and the sidecars belong
	 * to the parent's exit handlers. */
	dec = fork();
	if (dec == 0) {
		close(d2p[0]);
		close(p2d[1]);
		_exit(decode_main(b.engine_socket, nblocks, d2p[1], p2d[0]));
	}
	pre = dec > 0 ? fork() : -1;
	if (pre == 0) {
		close(d2p[1]);
		close(p2d[0]);
		_exit(prefill_main(a.engine_socket, b.peer_url, nblocks,
		                   d2p[0], p2d[1]));
	}
	close(d2p[0]);
	close(d2p[1]);
	close(p2d[0]);
	close(p2d[1]);
	if (dec < 0 || pre < 0) {
		perror("kvferry_demo: fork");
		if (dec > 0) {
			kill(dec, SIGKILL);
			waitpid(dec, NULL, 0);
		}
		goto stop;
	}
	st_pre = reap(pre, WAIT_MS + 30000, "the prefill engine");
	st_dec = reap(dec, WAIT_MS + 30000, "the decode engine");
	rc = st_pre == 0 && st_dec == 0 ? 0 : 1;
stop:;
	int sa = tp_daemon_stop(&a, SIGTERM, 5000);
	int sb = tp_daemon_stop(&b, SIGTERM, 5000);
	int clean = sa == 0 && sb == 0 && WIFEXITED(a.status) &&
	            WEXITSTATUS(a.status) == 0 && WIFEXITED(b.status) &&
	            WEXITSTATUS(b.status) == 0;
	if (!clean || rc != 0) {
		show_log(&a, "prefill");
		show_log(&b, "decode");
	}
	if (!clean) {
		bench_err("a sidecar did not stop cleanly on SIGTERM");
		rc = 1;
	} else {
		printf("stopped: both sidecars exited 0 on SIGTERM; temp dir "
		       "removed at exit\n");
	}
	printf("%s\n", rc == 0 ? "demo: OK" : "demo: FAILED");
	return rc;
}
