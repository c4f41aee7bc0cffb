/* The storage tier end to end: an engine saves Llama-shaped KV blocks through its sidecar into files and loads them back into other blocks; corruption, layout mismatch, missing objects, storage off, eviction seen by kvferryctl objects, concurrent engines, and an engine killed with saves in flight. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/kvferry.h"
#include "tests/tap/clock.h"
#include "tests/tap/events.h"
#include "tests/tap/pattern.h"
#include "tests/tap/proc.h"
#include "tests/tap/tap.h"

/* A small Llama-like cache: 4 layers, blocks of 6000 bytes (not a
 * multiple of 4096), layer-major like vLLM's per-layer tensors. */
#define L 4
#define BB 6000u

static struct kvf_event ev;

static struct kvf_layout layout(uint32_t nblocks, uint64_t bb,
                                uint64_t offset)
{
	struct kvf_layout l = {L, nblocks, bb, nblocks * bb, bb, offset};
	return l;
}

static uint8_t *blk(uint8_t *base, const struct kvf_layout *l, uint32_t layer,
                    uint32_t b)
{
	return base + l->offset + layer * l->layer_stride + b * l->block_stride;
}

static size_t region_len(const struct kvf_layout *l)
{
	return l->offset + l->num_layers * l->layer_stride;
}

/* Every layer of src block sb equals dst block db. */
static int same_blocks(uint8_t *src, const struct kvf_layout *ls,
                       const uint32_t *sb, uint8_t *dst,
                       const struct kvf_layout *ld, const uint32_t *db,
                       uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t l = 0; l < L; l++)
			if (memcmp(blk(src, ls, l, sb[i]), blk(dst, ld, l, db[i]),
			           ls->block_bytes)) {
				diag("block %u layer %u differs", db[i], l);
				return 0;
			}
	return 1;
}

static int count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, ".tmp.", 5))
			n++;
	closedir(d);
	return n;
}

static char *ctl(const struct tp_daemon *d, const char *cmd, int *status)
{
	struct tp_run r;
	const char *argv[] = {tp_bin("kvferryctl"), "-u", d->control_url,
	                      "-o", "json", cmd, NULL};
	char *out;
	if (tp_run(&r, 10000, NULL, argv) != 0)
		return NULL;
	*status = r.status;
	out = r.status == 0 ? strdup(r.out) : strdup(r.err);
	tp_run_free(&r);
	return out;
}

/* ---- concurrent engines ------------------------------------------- */

struct worker {
	const char *socket;
	int idx;
	int rounds;
	int failures;
	char why[200];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct kvf_connect_opts o = {.socket_path = w->socket};
	struct kvf_layout l = layout(32, BB, 0);
	kvf_client *c = NULL;
	struct kvf_event e;
	uint8_t *p;
	kvf_region r;
	char name[64];

	snprintf(name, sizeof name, "worker-%d", w->idx);
	if (kvf_connect(name, &o, &c) != 0 ||
	    kvf_alloc_host(c, region_len(&l), &l, (void **)&p, &r) != 0) {
		snprintf(w->why, sizeof w->why, "setup: %s", kvf_last_error());
		w->failures++;
		kvf_close(c);
		return NULL;
	}
	for (int i = 0; i < w->rounds; i++) {
		uint32_t sb[4], db[4];
		kvf_xfer xs[4], xl[4];
		for (int k = 0; k < 4; k++) {
			sb[k] = (uint32_t)(k * 4 + i % 4);
			db[k] = (uint32_t)(16 + k * 4 + (i + 1) % 4);
			for (uint32_t ly = 0; ly < L; ly++)
				tp_pattern_fill(blk(p, &l, ly, sb[k]), BB,
				        (uint32_t)(w->idx * 1000 + i * 10 + k));
		}
		/* Four saves in flight at once, then four loads. */
		for (int k = 0; k < 4; k++) {
			char on[64];
			snprintf(on, sizeof on, "w%d-r%d-%d", w->idx, i, k);
			if (kvf_save_blocks(c, r, &sb[k], 1, on, NULL, &xs[k]))
				goto bad;
		}
		if (!tp_wait_xfers(c, xs, 4, 20000, &e))
			goto bad;
		for (int k = 0; k < 4; k++) {
			char on[64];
			snprintf(on, sizeof on, "w%d-r%d-%d", w->idx, i, k);
			if (kvf_load_blocks(c, r, &db[k], 1, on, NULL, &xl[k]))
				goto bad;
		}
		if (!tp_wait_xfers(c, xl, 4, 20000, &e))
			goto bad;
		if (!same_blocks(p, &l, sb, p, &l, db, 4)) {
			snprintf(w->why, sizeof w->why, "round %d: bytes "
			         "differ", i);
			w->failures++;
		}
		continue;
bad:
		snprintf(w->why, sizeof w->why, "round %d: %s / %s", i,
		         kvf_last_error(), e.message);
		w->failures++;
		break;
	}
	kvf_close(c);
	return NULL;
}

/* ---- the engine that gets killed ------------------------------------ */

/* Child: connect, submit saves of 32 MiB blocks, say so on fd 1, wait to
 * be killed. */
static int child_main(const char *socket)
{
	struct kvf_connect_opts o = {.socket_path = socket};
	struct kvf_layout l = {2, 8, 2u << 20, 8 * (2u << 20), 2u << 20, 0};
	kvf_client *c;
	kvf_region r;
	uint8_t *p;
	uint32_t b[8] = {0, 1, 2, 3, 4, 5, 6, 7};
	int n = 0;

	if (kvf_connect("doomed", &o, &c) != 0 ||
	    kvf_alloc_host(c, region_len(&l), &l, (void **)&p, &r) != 0)
		return 1;
	memset(p, 0x5a, region_len(&l));
	for (int i = 0; i < 12; i++) {
		char name[32];
		snprintf(name, sizeof name, "doomed-%d", i);
		if (kvf_save_blocks(c, r, b, 8, name, NULL, NULL) == 0)
			n++;
	}
	printf("submitted %d\n", n);
	fflush(stdout);
	sleep(30);
	return 0;
}

int main(int argc, char **argv)
{
	struct tp_daemon a, b, cap;
	char store[400], capdir[400], dir[300], path[600];
	struct kvf_connect_opts oa = {0}, ob = {0}, oc = {0};
	kvf_client *e1 = NULL, *e2 = NULL, *e3 = NULL;
	struct kvf_layout ls = layout(16, BB, 0), ld = layout(24, BB, 4096);
	struct kvf_layout lm = {2, 16, BB, 16 * BB, BB, 0};
	struct kvf_layout la = layout(8, 8192, 0);
	uint8_t *src, *dst, *mis, *al;
	kvf_region rs, rd, rm, ra;
	kvf_xfer x;
	int st;
	char *out;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	plan(65);

	snprintf(store, sizeof store, "%s/store", tp_tmpdir());
	snprintf(capdir, sizeof capdir, "%s/capstore", tp_tmpdir());
	mkdir(store, 0755);
	mkdir(capdir, 0755);

	/* Configuration is checked by name. */
	{
		struct tp_daemon bad;
		const char *args[] = {"--provider", "tcp", "--store-capacity",
		                      "12X", NULL};
		char *log;
		tp_daemon_spawn(&bad, "badcap", args, NULL);
		ok(tp_daemon_wait(&bad, 10000) == 0 &&
		   WIFEXITED(bad.status) && WEXITSTATUS(bad.status) == 2,
		   "--store-capacity 12X: kvferryd exits 2");
		log = tp_daemon_log(&bad);
		like(log, "--store-capacity '12X'", "and names the option");
		free(log);
		snprintf(dir, sizeof dir, "%s/nowhere", tp_tmpdir());
		const char *args2[] = {"--provider", "tcp", "--store-dir", dir,
		                       NULL};
		tp_daemon_spawn(&bad, "baddir", args2, NULL);
		ok(tp_daemon_wait(&bad, 10000) == 0 &&
		   WIFEXITED(bad.status) && WEXITSTATUS(bad.status) == 1,
		   "--store-dir of a missing directory: start-up fails");
		log = tp_daemon_log(&bad);
		like(log, "--store-dir", "and the log names the option");
		free(log);
	}

	{
		const char *args[] = {"--provider", "tcp", "--store-dir", store,
		                      "--store-capacity", "64M", NULL};
		const char *nargs[] = {"--provider", "tcp", NULL};
		const char *cargs[] = {"--provider", "tcp", "--store-dir",
		                       capdir, "--store-capacity", "320K",
		                       NULL};
		if (tp_daemon_start(&a, "a", args, NULL) != 0 ||
		    tp_daemon_start(&b, "b", nargs, NULL) != 0 ||
		    tp_daemon_start(&cap, "cap", cargs, NULL) != 0)
			bail("sidecars did not start");
	}
	oa.socket_path = a.engine_socket;
	ob.socket_path = b.engine_socket;
	oc.socket_path = cap.engine_socket;
	is_int(kvf_connect("prefill", &oa, &e1), 0, "engine connects to A");
	is_int(kvf_connect("nostore", &ob, &e2), 0, "engine connects to B");
	is_int(kvf_connect("small", &oc, &e3), 0, "engine connects to C");
	if (!e1 || !e2 || !e3)
		bail("no connection: %s", kvf_last_error());
	is_int(kvf_alloc_host(e1, region_len(&ls), &ls, (void **)&src, &rs), 0,
	       "source region: 4 layers x 16 blocks of %u bytes", BB);
	is_int(kvf_alloc_host(e1, region_len(&ld), &ld, (void **)&dst, &rd), 0,
	       "target region: 24 blocks, offset 4096");
	is_int(kvf_alloc_host(e1, region_len(&lm), &lm, (void **)&mis, &rm), 0,
	       "region of another layout (2 layers)");
	is_int(kvf_alloc_host(e1, region_len(&la), &la, (void **)&al, &ra), 0,
	       "aligned region (blocks of 8192)");
	if (!src || !dst || !mis || !al)
		bail("no regions: %s", kvf_last_error());
	tp_pattern_fill(src, region_len(&ls), 7);
	memset(dst, 0, region_len(&ld));

	/* Save three blocks, load them into three others. */
	uint32_t sb[3] = {3, 7, 15}, db[3] = {20, 0, 5};
	is_int(kvf_save_blocks(e1, rs, sb, 3, "req-1", NULL, &x), 0,
	       "save of blocks 3, 7, 15 submitted");
	ok(tp_wait_xfer(e1, x, 10000, &ev), "save completed");
	is_int(ev.status, 0, "save status ok (%s)", ev.message);
	is_int((long long)ev.bytes, 3 * L * BB, "bytes: 3 blocks x 4 layers");
	is_int(kvf_load_blocks(e1, rd, db, 3, "req-1", NULL, &x), 0,
	       "load into blocks 20, 0, 5 of the other region submitted");
	ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0, "load ok (%s)",
	   ev.message);
	ok(same_blocks(src, &ls, sb, dst, &ld, db, 3),
	   "every layer of every block arrived where asked");
	{
		uint32_t nz = 0;
		for (uint32_t l = 0; l < L; l++)
			for (uint32_t bk = 0; bk < 24; bk++) {
				if (bk == 20 || bk == 0 || bk == 5)
					continue;
				uint8_t *q = blk(dst, &ld, l, bk);
				for (uint32_t i = 0; i < BB; i++)
					nz += q[i] != 0;
			}
		for (uint32_t i = 0; i < 4096; i++)
			nz += dst[i] != 0;
		is_int(nz, 0, "no other byte of the target changed");
	}

	/* Aligned blocks (O_DIRECT where the filesystem takes it). */
	{
		uint32_t s2[2] = {1, 6}, d2[2] = {2, 0};
		tp_pattern_fill(al, region_len(&la) / 2, 9);
		kvf_save_blocks(e1, ra, s2, 2, "aligned", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0,
		   "save of 8192-byte blocks ok (%s)", ev.message);
		kvf_load_blocks(e1, ra, d2, 2, "aligned", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0,
		   "load ok (%s)", ev.message);
		ok(same_blocks(al, &la, s2, al, &la, d2, 2),
		   "aligned blocks round-trip");
	}

	/* Byte ranges. */
	{
		uint64_t so[2] = {100, 50001}, dof[2] = {200000, 7};
		kvf_save_bytes(e1, rs, so, 2, 12345, "ranges", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0,
		   "save of two 12345-byte ranges ok (%s)", ev.message);
		kvf_load_bytes(e1, rd, dof, 2, 12345, "ranges", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0,
		   "load of the ranges ok (%s)", ev.message);
		ok(!memcmp(dst + 200000, src + 100, 12345) &&
		   !memcmp(dst + 7, src + 50001, 12345), "range bytes match");
		kvf_load_bytes(e1, rd, dof, 2, 12344, "ranges", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == KVF_EINVAL,
		   "load with another range length: KVF_EINVAL");
		uint64_t far = region_len(&ld) - 10;
		kvf_load_bytes(e1, rd, &far, 1, 12345, "ranges", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == KVF_ERANGE,
		   "range past the region: KVF_ERANGE");
		like(ev.message, "outside region", "message: %s", ev.message);
	}

	/* Refusals. */
	{
		uint32_t mb[3] = {1, 2, 3};
		kvf_load_blocks(e1, rm, mb, 3, "req-1", NULL, &x);
	}
	ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == KVF_EINVAL,
	   "load into a 2-layer layout: KVF_EINVAL");
	like(ev.message, "layers 4", "message names the saved layout: %s",
	     ev.message);
	like(ev.message, "layers 2", "and the target's");
	kvf_load_blocks(e1, rd, db, 3, "never-saved", NULL, &x);
	ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == KVF_ENOENT,
	   "unknown object: KVF_ENOENT");
	like(ev.message, "never-saved", "message names it");
	{
		uint32_t badb = 16;
		kvf_save_blocks(e1, rs, &badb, 1, "x", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == KVF_ERANGE,
		   "block id 16 of 16: KVF_ERANGE");
		like(ev.message, "block id 16", "message: %s", ev.message);
		kvf_save_blocks(e1, rs + 100, sb, 1, "x", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == KVF_ENOENT,
		   "unknown region: KVF_ENOENT");
		kvf_save_blocks(e1, rs, sb, 1, "a/b", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == KVF_EINVAL,
		   "name with a slash: KVF_EINVAL (%s)", ev.message);
		is_int(kvf_save_blocks(e1, rs, sb, 1, "", NULL, &x), KVF_EINVAL,
		       "empty name refused by the library");
	}

	/* Corruption: flip one byte of block 0's data in the file. */
	snprintf(path, sizeof path, "%s/req-1.kvs", store);
	{
		int fd = open(path, O_RDWR);
		uint8_t c = 0;
		ok(fd >= 0 && pread(fd, &c, 1, 4096 + 100) == 1,
		   "object file %s is there", path);
		c ^= 0x40;
		ok(fd >= 0 && pwrite(fd, &c, 1, 4096 + 100) == 1,
		   "one byte flipped");
		if (fd >= 0)
			close(fd);
		kvf_load_blocks(e1, rd, db, 3, "req-1", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) &&
		   ev.status == KVF_ECORRUPT,
		   "load of the damaged object: KVF_ECORRUPT");
		like(ev.message, "req-1", "message names the object: %s",
		     ev.message);
	}

	/* Storage off. */
	{
		uint8_t *p;
		kvf_region r;
		struct kvf_layout l = layout(4, BB, 0);
		kvf_alloc_host(e2, region_len(&l), &l, (void **)&p, &r);
		kvf_save_blocks(e2, r, sb, 1, "nope", NULL, &x);
		ok(tp_wait_xfer(e2, x, 10000, &ev) && ev.status == KVF_ENOTSUP,
		   "sidecar without --store-dir: KVF_ENOTSUP");
		like(ev.message, "--store-dir", "message says how to turn it "
		     "on: %s", ev.message);
		out = ctl(&b, "objects", &st);
		ok(st == 3 && out && strstr(out, "--store-dir"),
		   "kvferryctl objects there exits 3 and says why");
		free(out);
	}

	/* Eviction: objects of 102400 bytes in 320 KiB: three fit. */
	{
		uint8_t *p;
		kvf_region r;
		uint32_t three[3] = {0, 1, 2};
		struct kvf_layout l = layout(4, BB, 0);
		int good = 1;
		kvf_alloc_host(e3, region_len(&l), &l, (void **)&p, &r);
		for (int i = 0; i < 4; i++) {
			char name[16];
			snprintf(name, sizeof name, "ev-%d", i);
			kvf_save_blocks(e3, r, three, 3, name, NULL, &x);
			if (!tp_wait_xfer(e3, x, 10000, &ev) || ev.status) {
				diag("save %s: %s", name, ev.message);
				good = 0;
			}
		}
		ok(good, "four saves into a store that holds three");
		out = ctl(&cap, "objects", &st);
		is_int(st, 0, "kvferryctl objects answers");
		ok(out && strstr(out, "\"count\":3") &&
		   strstr(out, "\"capacity_bytes\":327680") &&
		   strstr(out, "\"used_bytes\":307200"),
		   "three objects, 307200 of 327680 bytes");
		ok(out && !strstr(out, "\"ev-0\"") && strstr(out, "\"ev-3\"") &&
		   strstr(out, "\"ev-1\""),
		   "the least recently used (ev-0) was evicted");
		if (out)
			diag("%s", out);
		free(out);
		kvf_load_blocks(e3, r, three, 3, "ev-0", NULL, &x);
		ok(tp_wait_xfer(e3, x, 10000, &ev) && ev.status == KVF_ENOENT,
		   "loading the evicted object: KVF_ENOENT");
		{
			struct tp_run rr;
			const char *av[] = {tp_bin("kvferryctl"), "-u",
			                    cap.control_url, "objects", NULL};
			tp_run(&rr, 10000, NULL, av);
			ok(rr.status == 0 && strstr(rr.out, "ev-3") &&
			   strstr(rr.out, "3 objects"),
			   "text form lists them too");
			tp_run_free(&rr);
		}
	}

	/* Concurrent engines on A. */
	{
		struct worker w[4];
		pthread_t t[4];
		int fails = 0;
		for (int i = 0; i < 4; i++) {
			w[i] = (struct worker){a.engine_socket, i, 6, 0, ""};
			pthread_create(&t[i], NULL, worker_main, &w[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			if (w[i].failures)
				diag("worker %d: %s", i, w[i].why);
			fails += w[i].failures;
		}
		is_int(fails, 0, "4 engines x 6 rounds x 4 saves and loads at "
		       "once, bytes checked");
	}

	/* An engine killed with saves in flight. */
	{
		int pfd[2];
		pid_t pid;
		char buf[64] = "";
		ssize_t n;
		long t0;
		if (pipe(pfd) != 0)
			bail("pipe");
		pid = fork();
		if (pid == 0) {
			dup2(pfd[1], 1);
			close(pfd[0]);
			execl("/proc/self/exe", argv[0], "--child",
			      a.engine_socket, (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		n = read(pfd[0], buf, sizeof buf - 1);
		close(pfd[0]);
		ok(n > 0 && !strncmp(buf, "submitted 12", 12),
		   "child engine submitted 12 saves of 32 MiB");
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		ok(WIFSIGNALED(st), "and was killed");
		t0 = tp_now_ms();
		while (count_tmp(store) != 0 && tp_now_ms() - t0 < 20000)
			usleep(50000);
		is_int(count_tmp(store), 0, "no temporary files are left");
		/* The sidecar learns of the death asynchronously (its
		 * connection, its pidfd): give it a moment. */
		t0 = tp_now_ms();
		for (;;) {
			out = ctl(&a, "status", &st);
			if ((st == 0 && out && strstr(out, "\"engines\":1")) ||
			    tp_now_ms() - t0 > 5000)
				break;
			free(out);
			usleep(50000);
		}
		ok(st == 0 && out && strstr(out, "\"engines\":1"),
		   "sidecar serves; the dead engine is gone");
		free(out);
		out = ctl(&a, "status", &st);
		kvf_save_blocks(e1, rs, sb, 3, "after", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0,
		   "and still saves for the live engine");
		kvf_load_blocks(e1, rd, db, 3, "after", NULL, &x);
		ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0 &&
		   same_blocks(src, &ls, sb, dst, &ld, db, 3),
		   "and loads, bytes checked");
		free(out);
	}

	/* The catalogue of A survives a restart. The source memory goes with
	 * its engine: keep a copy to compare with. */
	{
		uint8_t *keep = malloc(region_len(&ls));
		memcpy(keep, src, region_len(&ls));
		src = keep;
	}
	kvf_close(e1);
	kvf_close(e2);
	kvf_close(e3);
	ok(tp_daemon_stop(&a, SIGTERM, 10000) == 0, "A stops cleanly");
	{
		char *log = tp_daemon_log(&a);
		ok(log && !strstr(log, "AddressSanitizer") &&
		   !strstr(log, "runtime error"), "A's log has no sanitizer "
		   "report");
		free(log);
	}
	{
		const char *args[] = {"--provider", "tcp", "--store-dir", store,
		                      NULL};
		ok(tp_daemon_start(&a, "a2", args, NULL) == 0,
		   "A restarts on the same directory");
		out = ctl(&a, "objects", &st);
		ok(st == 0 && out && strstr(out, "\"after\"") &&
		   strstr(out, "\"aligned\""), "its objects are still listed");
		free(out);
		oa.socket_path = a.engine_socket;
		e1 = NULL;
		kvf_connect("decode", &oa, &e1);
		if (e1 &&
		    kvf_alloc_host(e1, region_len(&ld), &ld, (void **)&dst,
		                   &rd) == 0) {
			kvf_load_blocks(e1, rd, db, 3, "after", NULL, &x);
			ok(tp_wait_xfer(e1, x, 10000, &ev) && ev.status == 0 &&
			   same_blocks(src, &ls, sb, dst, &ld, db, 3),
			   "another engine loads what the first saved");
		} else {
			ok(0, "engine on the restarted sidecar: %s",
			   kvf_last_error());
		}
		kvf_close(e1);
	}
	ok(tp_daemon_stop(&a, SIGTERM, 10000) == 0 &&
	   tp_daemon_stop(&b, SIGTERM, 10000) == 0 &&
	   tp_daemon_stop(&cap, SIGTERM, 10000) == 0,
	   "sidecars stop cleanly");
	{
		char *l1 = tp_daemon_log(&a), *l2 = tp_daemon_log(&b),
		     *l3 = tp_daemon_log(&cap);
		int clean = 1;
		const char *bad[] = {"AddressSanitizer", "runtime error",
		                     "ThreadSanitizer"};
		for (size_t i = 0; i < 3; i++)
			if ((l1 && strstr(l1, bad[i])) ||
			    (l2 && strstr(l2, bad[i])) ||
			    (l3 && strstr(l3, bad[i])))
				clean = 0;
		ok(clean, "no sanitizer report in any sidecar's log");
		free(l1);
		free(l2);
		free(l3);
	}
	free(src);
	return tap_exit_status();
}
