/* The storage tier with GPU regions: an engine saves cudaMalloc'd KV blocks through its sidecar (staged through pinned slabs) and loads them back into other blocks, into host memory and from host memory; objects that need several slabs, one piece larger than a slab, a request larger than the staging pool, saves queued for slabs, a corrupt object that must not reach the GPU, and an engine killed with a GPU save in flight. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

#include "tests/gpu/gpu_util.h"

#define LAYERS 4
/* Small region: 64 blocks of 64 KiB per layer (16 MiB). */
#define SB 64u
#define SBB (64u << 10)
#define SREGION ((size_t)LAYERS * SB * SBB)
/* Large region: 64 blocks of 1 MiB per layer (256 MiB, four slabs). */
#define LB 64u
#define LBB (1u << 20)
#define LREGION ((size_t)LAYERS * LB * LBB)
#define POOL_OFF (1u << 20) /* regions start inside a bigger allocation */

static struct kvf_event ev;

static struct kvf_layout mklayout(uint32_t nblocks, uint64_t bb)
{
	struct kvf_layout l = {LAYERS, nblocks, bb, nblocks * bb, bb, 0};
	return l;
}

/* Offset of layer l of block b in a layer-major region. */
static size_t boff(const struct kvf_layout *l, uint32_t layer, uint32_t b)
{
	return l->offset + layer * l->layer_stride + b * l->block_stride;
}

/* Every layer of block sb[i] of src equals block db[i] of dst (host
 * copies of the regions). */
static int same_blocks(const uint8_t *src, const uint8_t *dst,
                       const struct kvf_layout *l, const uint32_t *sb,
                       const uint32_t *db, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t ly = 0; ly < l->num_layers; ly++)
			if (memcmp(src + boff(l, ly, sb[i]),
			           dst + boff(l, ly, db[i]), l->block_bytes)) {
				diag("block %u layer %u differs from block %u",
				     db[i], ly, sb[i]);
				return 0;
			}
	return 1;
}

/* Bytes of region [0, len) on the GPU equal to v outside blocks db. */
static int untouched(const uint8_t *got, const struct kvf_layout *l,
                     const uint32_t *db, uint32_t n, uint8_t v)
{
	for (uint32_t b = 0; b < l->num_blocks; b++) {
		int listed = 0;
		for (uint32_t i = 0; i < n; i++)
			listed |= db[i] == b;
		if (listed)
			continue;
		for (uint32_t ly = 0; ly < l->num_layers; ly++) {
			const uint8_t *p = got + boff(l, ly, b);
			for (uint64_t k = 0; k < l->block_bytes; k++)
				if (p[k] != v) {
					diag("block %u layer %u byte %llu "
					     "changed", b, ly,
					     (unsigned long long)k);
					return 0;
				}
		}
	}
	return 1;
}

/* The engine that gets killed: a GPU save in flight when it dies. The
 * parent learns from the pipe that the save was submitted. */
static int doomed(const char *socket, int fd)
{
	struct kvf_connect_opts o = {.socket_path = socket};
	struct kvf_layout l = mklayout(LB, LBB);
	uint32_t all[LB];
	kvf_client *c;
	kvf_region r;
	kvf_xfer x;
	uint8_t *dev;

	for (uint32_t i = 0; i < LB; i++)
		all[i] = i;
	if (cudaMalloc((void **)&dev, LREGION) != cudaSuccess ||
	    cudaMemset(dev, 0x5a, LREGION) != cudaSuccess ||
	    cudaDeviceSynchronize() != cudaSuccess ||
	    kvf_connect("doomed", &o, &c) != 0 ||
	    kvf_register_cuda(c, dev, LREGION, &l, &r) != 0 ||
	    kvf_save_blocks(c, r, all, LB, "doomed-obj", NULL, &x) != 0)
		return 1;
	if (write(fd, "s", 1) != 1)
		return 1;
	for (;;)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	char why[200], store[512], path[600];
	struct tp_daemon a;
	struct kvf_connect_opts o = {0};
	struct kvf_layout sl = mklayout(SB, SBB), ll = mklayout(LB, LBB);
	kvf_client *c = NULL;
	kvf_region sreg, hreg, lreg;
	uint8_t *spool, *sdev, *ldev, *host, *want, *got;
	kvf_xfer x;
	uint32_t sb[SB / 4], db[SB / 4], all[LB], rev[LB];

	if (argc == 4 && strcmp(argv[1], "doomed") == 0)
		return doomed(argv[2], atoi(argv[3]));
	if (gpu_probe(why, sizeof why) != 0)
		skip_all("no CUDA device: %s", why);

	snprintf(store, sizeof store, "%s/store", tp_tmpdir());
	if (mkdir(store, 0700) != 0)
		bail("mkdir %s failed", store);
	{
		const char *args[] = {"--provider", "tcp", "--store-dir", store,
		                      NULL};
		if (tp_daemon_start(&a, "a", args, NULL) != 0)
			bail("sidecar did not start");
	}
	o.socket_path = a.engine_socket;
	if (kvf_connect("engine", &o, &c) != 0)
		bail("connect: %s", kvf_last_error());

	CK(cudaMalloc((void **)&spool, SREGION + 2 * POOL_OFF));
	sdev = spool + POOL_OFF;
	CK(cudaMalloc((void **)&ldev, LREGION));
	is_int(kvf_register_cuda(c, sdev, SREGION, &sl, &sreg), 0,
	       "small GPU region registered (%s)", kvf_last_error());
	is_int(kvf_register_cuda(c, ldev, LREGION, &ll, &lreg), 0,
	       "large GPU region registered (%s)", kvf_last_error());
	is_int(kvf_alloc_host(c, SREGION, &sl, (void **)&host, &hreg), 0,
	       "host region of the same layout");
	want = malloc(LREGION);
	got = malloc(LREGION);
	if (!want || !got)
		bail("out of memory");
	for (uint32_t i = 0; i < SB / 4; i++) {
		sb[i] = i * 3 + 1;   /* scattered */
		db[i] = SB - 1 - i;  /* elsewhere, reversed */
	}
	for (uint32_t i = 0; i < LB; i++) {
		all[i] = i;
		rev[i] = LB - 1 - i;
	}

	/* 1. GPU -> store -> other GPU blocks. */
	tp_pattern_fill(want, SREGION, 1);
	CK(cudaMemcpy(sdev, want, SREGION, cudaMemcpyHostToDevice));
	is_int(kvf_save_blocks(c, sreg, sb, SB / 4, "g1", NULL, &x), 0,
	       "save of 16 GPU blocks submitted");
	ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == 0 &&
	   ev.bytes == (uint64_t)SB / 4 * LAYERS * SBB,
	   "saved from GPU memory, 16 blocks x 4 layers x 64 KiB %s",
	   ev.message);
	CK(cudaMemset(spool, 0, SREGION + 2 * POOL_OFF));
	is_int(kvf_load_blocks(c, sreg, db, SB / 4, "g1", NULL, &x), 0,
	       "load into other GPU blocks submitted");
	ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == 0,
	   "loaded into GPU memory %s", ev.message);
	CK(cudaMemcpy(got, sdev, SREGION, cudaMemcpyDeviceToHost));
	ok(same_blocks(want, got, &sl, sb, db, SB / 4),
	   "every layer-block on the GPU equals the saved one");
	ok(untouched(got, &sl, db, SB / 4, 0),
	   "blocks not listed stayed zero");
	{
		uint8_t edge[2];
		CK(cudaMemcpy(&edge[0], sdev - 1, 1, cudaMemcpyDeviceToHost));
		CK(cudaMemcpy(&edge[1], sdev + SREGION, 1,
		              cudaMemcpyDeviceToHost));
		ok(edge[0] == 0 && edge[1] == 0,
		   "nothing written around the region in its allocation");
	}

	/* 2. Saved from GPU, loaded into host memory; and the reverse. */
	memset(host, 0, SREGION);
	kvf_load_blocks(c, hreg, db, SB / 4, "g1", NULL, &x);
	ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == 0 &&
	   same_blocks(want, host, &sl, sb, db, SB / 4),
	   "GPU-saved object loads into a host region %s", ev.message);
	tp_pattern_fill(host, SREGION, 2);
	kvf_save_blocks(c, hreg, sb, SB / 4, "h1", NULL, &x);
	ok(tp_wait_xfer(c, x, 20000, &ev) &&
	   ev.status == 0, "host region saved");
	CK(cudaMemset(sdev, 0, SREGION));
	kvf_load_blocks(c, sreg, db, SB / 4, "h1", NULL, &x);
	ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == 0,
	   "host-saved object loads into the GPU region %s", ev.message);
	CK(cudaMemcpy(got, sdev, SREGION, cudaMemcpyDeviceToHost));
	ok(same_blocks(host, got, &sl, sb, db, SB / 4),
	   "and its bytes are on the GPU");

	/* 3. 256 MiB: four slabs, more than the sidecar makes at start. */
	tp_pattern_fill(want, LREGION, 3);
	CK(cudaMemcpy(ldev, want, LREGION, cudaMemcpyHostToDevice));
	{
		long t0 = tp_now_ms(), ms;
		kvf_save_blocks(c, lreg, all, LB, "big", NULL, &x);
		ok(tp_wait_xfer(c, x, 60000, &ev) && ev.status == 0 &&
		   ev.bytes == LREGION, "256 MiB saved from GPU %s",
		   ev.message);
		ms = tp_now_ms() - t0;
		diag("save of 256 MiB from GPU: %ld ms (%.0f MiB/s)", ms,
		     ms ? 256000.0 / ms : 0.0);
		CK(cudaMemset(ldev, 0, LREGION));
		t0 = tp_now_ms();
		kvf_load_blocks(c, lreg, rev, LB, "big", NULL, &x);
		ok(tp_wait_xfer(c, x, 60000, &ev) && ev.status == 0,
		   "and loaded into the blocks reversed %s", ev.message);
		ms = tp_now_ms() - t0;
		diag("load of 256 MiB to GPU: %ld ms (%.0f MiB/s)", ms,
		     ms ? 256000.0 / ms : 0.0);
		CK(cudaMemcpy(got, ldev, LREGION, cudaMemcpyDeviceToHost));
		ok(same_blocks(want, got, &ll, all, rev, LB),
		   "all 256 layer-blocks of 1 MiB in place on the GPU");
	}

	/* 4. One byte range longer than a slab (100 MiB + 123): a slab of
	 * its own. */
	{
		uint64_t len = (100ull << 20) + 123, from = 4096 + 7,
		         to = 128ull << 20;
		tp_pattern_fill(want, LREGION, 4);
		CK(cudaMemcpy(ldev, want, LREGION, cudaMemcpyHostToDevice));
		kvf_save_bytes(c, lreg, &from, 1, len, "range", NULL, &x);
		ok(tp_wait_xfer(c, x, 60000, &ev) && ev.status == 0,
		   "100 MiB byte range saved from GPU %s", ev.message);
		CK(cudaMemset(ldev, 0, LREGION));
		kvf_load_bytes(c, lreg, &to, 1, len, "range", NULL, &x);
		ok(tp_wait_xfer(c, x, 60000, &ev) && ev.status == 0,
		   "and loaded at another offset %s", ev.message);
		CK(cudaMemcpy(got, ldev, LREGION, cudaMemcpyDeviceToHost));
		ok(memcmp(got + to, want + from, len) == 0 &&
		   got[to - 1] == 0 && got[to + len] == 0,
		   "bytes in place, nothing around them");
	}

	/* 5. More staging than the sidecar pins: refused, with the reason. */
	{
		uint64_t offs[11] = {0};
		kvf_save_bytes(c, lreg, offs, 11, 100ull << 20, "huge", NULL,
		               &x);
		ok(tp_wait_xfer(c, x, 10000, &ev) && ev.status == KVF_ENOSPC,
		   "11 x 100 MiB from GPU: KVF_ENOSPC");
		like(ev.message, "staging", "message says why: %s", ev.message);
	}

	/* 6. Five 256 MiB saves at once: 20 slabs, more than the pool holds,
	 * so some wait for others' slabs; each loads back intact. */
	{
		kvf_xfer xs[5];
		char name[32];
		int good = 1;
		tp_pattern_fill(want, LREGION, 6);
		CK(cudaMemcpy(ldev, want, LREGION, cudaMemcpyHostToDevice));
		for (int i = 0; i < 5; i++) {
			snprintf(name, sizeof name, "many-%d", i);
			good &= kvf_save_blocks(c, lreg, all, LB, name, NULL,
			                        &xs[i]) == 0;
		}
		ok(good && tp_wait_xfers(c, xs, 5, 120000, &ev),
		   "five concurrent 256 MiB GPU saves complete");
		for (int i = 0; i < 5; i += 4) {
			snprintf(name, sizeof name, "many-%d", i);
			CK(cudaMemset(ldev, 0, LREGION));
			kvf_load_blocks(c, lreg, all, LB, name, NULL, &x);
			ok(tp_wait_xfer(c, x, 60000, &ev) && ev.status == 0,
			   "%s loads %s", name, ev.message);
			CK(cudaMemcpy(got, ldev, LREGION,
			              cudaMemcpyDeviceToHost));
			ok(memcmp(got, want, LREGION) == 0, "%s intact", name);
		}
	}

	/* 7. A corrupt object: KVF_ECORRUPT, and the GPU memory keeps what
	 * it held (the slabs hold the bad bytes, the GPU never sees them). */
	snprintf(path, sizeof path, "%s/g1.kvs", store);
	{
		int fd = open(path, O_RDWR);
		uint8_t b = 0;
		ok(fd >= 0 && pread(fd, &b, 1, 4096 + 100) == 1 &&
		   (b ^= 0x40, pwrite(fd, &b, 1, 4096 + 100) == 1),
		   "one byte of %s flipped", path);
		if (fd >= 0)
			close(fd);
		CK(cudaMemset(sdev, 0xab, SREGION));
		kvf_load_blocks(c, sreg, db, SB / 4, "g1", NULL, &x);
		ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == KVF_ECORRUPT,
		   "load of the damaged object into GPU memory: KVF_ECORRUPT");
		like(ev.message, "g1", "message names the object: %s",
		     ev.message);
		CK(cudaMemcpy(got, sdev, SREGION, cudaMemcpyDeviceToHost));
		int same = 1;
		for (size_t i = 0; i < SREGION; i++)
			same &= got[i] == 0xab;
		ok(same, "the GPU region was not written at all");
	}
	/* Wrong layout into GPU memory: refused before any copy. */
	kvf_load_blocks(c, lreg, all, SB / 4, "g1", NULL, &x);
	ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == KVF_EINVAL,
	   "load into a layout of other block size: KVF_EINVAL (%s)",
	   ev.message);

	/* 8. An engine killed with a 256 MiB GPU save in flight: the sidecar
	 * keeps its memory imported until the copies end and serves on. */
	{
		int p[2];
		char fdarg[16], b = 0;
		if (pipe(p) != 0)
			bail("pipe failed");
		snprintf(fdarg, sizeof fdarg, "%d", p[1]);
		pid_t pid = fork();
		if (pid == 0) {
			if (!freopen("/dev/null", "w", stdout))
				_exit(126);
			close(p[0]);
			execl("/proc/self/exe", "store_gpu", "doomed",
			      a.engine_socket, fdarg, (char *)NULL);
			_exit(127);
		}
		close(p[1]);
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ok(read(p[0], &b, 1) == 1 && b == 's',
		   "the doomed engine submitted its GPU save");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(p[0]);
		usleep(1500000);
		char *log = tp_daemon_log(&a);
		ok(log && strstr(log, "doomed (session") &&
		   (strstr(log, "disconnected") || strstr(log, "process exited")), "the sidecar saw it go");
		free(log);
		tp_pattern_fill(want, SREGION, 8);
		CK(cudaMemcpy(sdev, want, SREGION, cudaMemcpyHostToDevice));
		kvf_save_blocks(c, sreg, sb, SB / 4, "after", NULL, &x);
		ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == 0,
		   "a save after the death works %s", ev.message);
		CK(cudaMemset(sdev, 0, SREGION));
		kvf_load_blocks(c, sreg, db, SB / 4, "after", NULL, &x);
		ok(tp_wait_xfer(c, x, 20000, &ev) && ev.status == 0,
		   "and its load %s", ev.message);
		CK(cudaMemcpy(got, sdev, SREGION, cudaMemcpyDeviceToHost));
		ok(same_blocks(want, got, &sl, sb, db, SB / 4),
		   "with the right bytes");
	}

	/* 9. Stop with a GPU save just submitted: a clean exit. */
	kvf_save_blocks(c, lreg, all, LB, "last", NULL, &x);
	kvf_close(c);
	ok(tp_daemon_stop(&a, SIGTERM, 15000) == 0,
	   "sidecar stops cleanly with a GPU save in flight");
	{
		char *log = tp_daemon_log(&a);
		ok(log && !strstr(log, "AddressSanitizer") &&
		   !strstr(log, "runtime error") &&
		   !strstr(log, "still running after"),
		   "no sanitizer report, no copy left running at stop");
		like(log, "staged through pinned slabs",
		     "the log says how GPU regions are staged");
		free(log);
	}
	CK(cudaFree(spool));
	CK(cudaFree(ldev));
	free(want);
	free(got);
	done_testing();
}
