/* tests/store/faults.c - corruption, layout mismatch, bad names, full
 * disk, capacity, a save killed half way, the directory lock. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#include "tests/store/store_test.h"

#define BL 65536u
#define NB 4u

static void *blk[64];
static void *out[64];

static void setup_blocks(void)
{
	for (int i = 0; i < 64; i++) {
		blk[i] = st_alloc(BL);
		out[i] = st_alloc(BL);
		tp_pattern_fill(blk[i], BL, i);
	}
}

/* Files in dir other than the lock: objects and temporaries. */
static int count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, ".lock") &&
		    (!prefix || !strncmp(de->d_name, prefix, strlen(prefix))))
			n++;
	closedir(d);
	return n;
}

static void flip(const char *dir, const char *name, off_t off)
{
	char path[600];
	unsigned char c;
	snprintf(path, sizeof(path), "%s/%s.kvs", dir, name);
	int fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, &c, 1, off) != 1)
		bail("open/pread %s: %s", path, strerror(errno));
	c ^= 0x20;
	if (pwrite(fd, &c, 1, off) != 1)
		bail("pwrite %s", path);
	close(fd);
}

static void corruption(const char *dir)
{
	struct xfer_store *s = st_open(dir, 0, XFER_STORE_DIRECT_AUTO,
	                               XFER_STORE_SYNC_NONE);
	const char *msg;
	int ret;

	is_int(st_save(s, "c1", NULL, blk, NB, BL, &msg), 0, "save c1");
	/* Page cache and O_DIRECT: drop both so the flip is what we read. */
	flip(dir, "c1", 4096 + 1 * BL + 100);
	ret = st_load(s, "c1", NULL, out, NB, BL, &msg);
	is_int(ret, KVF_ECORRUPT, "flipped data byte: KVF_ECORRUPT");
	like(msg, "load 'c1': block 1 of 4: checksum mismatch",
	     "message names the object and the block: %s", msg);

	is_int(st_save(s, "c2", NULL, blk, NB, BL, &msg), 0, "save c2");
	flip(dir, "c2", 512 + 4 * 2);
	ret = st_load(s, "c2", NULL, out, NB, BL, &msg);
	is_int(ret, KVF_ECORRUPT, "flipped header byte: KVF_ECORRUPT");
	like(msg, "header checksum mismatch", "message: %s", msg);

	is_int(st_save(s, "c3", NULL, blk, NB, BL, &msg), 0, "save c3");
	flip(dir, "c3", 0);
	ret = st_load(s, "c3", NULL, out, NB, BL, &msg);
	is_int(ret, KVF_ECORRUPT, "flipped magic: KVF_ECORRUPT (%s)", msg);
	xfer_store_close(s);

	/* Reopen: the damaged headers do not verify and are dropped, the
	 * damaged data is found only by a load. */
	s = st_open(dir, 0, XFER_STORE_DIRECT_AUTO, XFER_STORE_SYNC_NONE);
	size_t n;
	xfer_store_list(s, NULL, 0, &n);
	is_int(n, 1, "reopen keeps only c1 (headers of c2, c3 bad)");
	ret = st_load(s, "c2", NULL, out, NB, BL, &msg);
	is_int(ret, KVF_ENOENT, "c2 is gone: %s", msg);
	ret = st_load(s, "c1", NULL, out, NB, BL, &msg);
	is_int(ret, KVF_ECORRUPT, "c1 still fails its block checksum");
	xfer_store_close(s);
}

static void mismatch_and_names(const char *dir)
{
	struct xfer_store *s = st_open(dir, 0, XFER_STORE_DIRECT_AUTO,
	                               XFER_STORE_SYNC_NONE);
	struct kvf_layout l = { 32, 1000, 65536, 1000 * 65536, 65536, 0 };
	struct kvf_layout l2 = l;
	const char *msg;
	char longname[300];
	int ret;

	is_int(st_save(s, "lay", &l, blk, NB, BL, &msg), 0, "save with layout");
	l2.num_blocks = 77;
	l2.offset = 4096;
	ret = st_load(s, "lay", &l2, out, NB, BL, &msg);
	is_int(ret, 0, "load into a region of other size and offset");
	ok(ret == 0 && !memcmp(out[3], blk[3], BL), "bytes equal");
	l2.num_layers = 16;
	ret = st_load(s, "lay", &l2, out, NB, BL, &msg);
	is_int(ret, KVF_EINVAL, "other num_layers: KVF_EINVAL");
	like(msg, "layout mismatch: saved with {layers 32", "names saved "
	     "layout: %s", msg);
	like(msg, "loading into {layers 16", "names wanted layout");
	ret = st_load(s, "lay", &l, out, NB - 1, BL, &msg);
	is_int(ret, KVF_EINVAL, "other block count: KVF_EINVAL (%s)", msg);
	ret = st_load(s, "nothere", NULL, out, NB, BL, &msg);
	is_int(ret, KVF_ENOENT, "missing object: KVF_ENOENT");
	like(msg, "load 'nothere': no such object", "message: %s", msg);

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	const char *bad[] = { "a/b", "..", "x..y", ".hidden", "", "sp ace",
	                      longname };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ret = st_save(s, bad[i], NULL, blk, 1, BL, &msg);
		is_int(ret, KVF_EINVAL, "save name '%.20s': KVF_EINVAL (%s)",
		       bad[i], msg);
	}
	ret = st_load(s, "../etc/passwd", NULL, out, 1, BL, &msg);
	is_int(ret, KVF_EINVAL, "load '../etc/passwd': KVF_EINVAL");
	ret = st_save(s, "zero", NULL, blk, 0, BL, &msg);
	is_int(ret, KVF_EINVAL, "save of 0 blocks: KVF_EINVAL (%s)", msg);
	char err[300];
	is_int(xfer_store_remove(s, "lay", err, sizeof(err)), 0, "remove");
	is_int(xfer_store_remove(s, "lay", err, sizeof(err)), KVF_ENOENT,
	       "remove again: KVF_ENOENT (%s)", err);
	is_int(count_files(dir, NULL), 0, "no file left");

	struct xfer_store_config cfg = { .dir = dir };
	struct xfer_store *s2 = NULL;
	ret = xfer_store_open(&cfg, &s2, err, sizeof(err));
	is_int(ret, KVF_EBUSY, "second store on the directory: KVF_EBUSY");
	like(err, "another store uses this directory", "message: %s", err);
	cfg.dir = "/nonexistent/kvf";
	is_int(xfer_store_open(&cfg, &s2, err, sizeof(err)), KVF_ENOENT,
	       "missing directory: KVF_ENOENT");
	xfer_store_close(s);
}

static void full_disk(void)
{
	char *dir = st_tmpdir("full");
	char why[200];
	const char *msg;
	int ret;

	if (st_mount("tmpfs", dir, NULL, 1 << 20, why, sizeof(why)) != 0) {
		skip(6, "full disk needs a 1 MiB tmpfs: %s", why);
		st_rmdir(dir);
		return;
	}
	struct xfer_store *s = st_open(dir, 0, XFER_STORE_DIRECT_AUTO,
	                               XFER_STORE_SYNC_DATA);
	ret = st_save(s, "big", NULL, blk, 32, BL, &msg);
	is_int(ret, KVF_ENOSPC, "2 MiB on a 1 MiB tmpfs: KVF_ENOSPC");
	like(msg, "save 'big': fallocate() of", "message: %s", msg);
	is_int(count_files(dir, NULL), 0, "no object, no temporary file");
	ret = st_save(s, "small", NULL, blk, 4, BL, &msg);
	is_int(ret, 0, "a 256 KiB save still fits (%s)", msg);
	ret = st_load(s, "small", NULL, out, 4, BL, &msg);
	ok(ret == 0 && !memcmp(out[2], blk[2], BL), "and loads");
	ret = st_load(s, "big", NULL, out, 32, BL, &msg);
	is_int(ret, KVF_ENOENT, "the failed save left nothing to load");
	xfer_store_close(s);
	st_umount(dir, NULL);
	st_rmdir(dir);
}

static void capacity(const char *dir)
{
	struct xfer_store *s = st_open(dir, 1 << 20, XFER_STORE_DIRECT_AUTO,
	                               XFER_STORE_SYNC_NONE);
	const char *msg;
	int ret = st_save(s, "huge", NULL, blk, 32, BL, &msg);
	is_int(ret, KVF_ENOSPC, "object above capacity: KVF_ENOSPC");
	like(msg, "more than the store's capacity", "message: %s", msg);
	is_int(count_files(dir, NULL), 0, "nothing written");
	xfer_store_close(s);
}

static void crash(const char *dir)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct xfer_store_config cfg = { .dir = dir, .queue_depth = 2,
			.direct = XFER_STORE_DIRECT_OFF };
		struct xfer_store *s;
		struct xfer_store_done d;
		char err[200];
		if (xfer_store_open(&cfg, &s, err, sizeof(err)) != 0)
			_exit(2);
		/* 64 blocks, 2 in flight: the kill lands mid-save. */
		if (xfer_store_save(s, "victim", NULL, blk, 64, BL, NULL))
			_exit(3);
		xfer_store_wait(s, 1000);
		xfer_store_poll(s, &d, 1);
		raise(SIGKILL);
		_exit(4);
	}
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "child killed mid-save (status 0x%x)", status);
	is_int(count_files(dir, ".tmp."), 1, "it left a temporary file");
	is_int(count_files(dir, "victim"), 0, "and no object file");

	/* A renamed file whose header never reached the disk. */
	char path[600];
	snprintf(path, sizeof(path), "%s/ghost.kvs", dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0 || ftruncate(fd, 8192 + BL) != 0)
		bail("ghost file: %s", strerror(errno));
	close(fd);

	struct xfer_store *s = st_open(dir, 0, XFER_STORE_DIRECT_AUTO,
	                               XFER_STORE_SYNC_NONE);
	const char *msg;
	is_int(count_files(dir, NULL), 0, "open removed the temporary file "
	       "and the headerless file");
	is_int(st_load(s, "victim", NULL, out, 64, BL, &msg), KVF_ENOENT,
	       "the killed save does not load");
	is_int(st_load(s, "ghost", NULL, out, 1, BL, &msg), KVF_ENOENT,
	       "nor the headerless file");
	xfer_store_close(s);
}

int main(void)
{
	char *dir = st_tmpdir("faults");

	setup_blocks();
	corruption(dir);
	st_rmdir(dir);
	dir = st_tmpdir("faults");
	mismatch_and_names(dir);
	capacity(dir);
	crash(dir);
	st_rmdir(dir);
	full_disk();
	done_testing();
}
