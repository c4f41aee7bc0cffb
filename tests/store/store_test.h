/*
 * tests/store/store_test.h - helpers shared by the store tests: temporary
 * directories, waiting for completions, small mounts (blocks are filled
 * with tests/tap/pattern.h).
 */
#ifndef KVF_TESTS_STORE_TEST_H
#define KVF_TESTS_STORE_TEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sidecar/log.h"

/* The store logs its INFO lines (objects found, O_DIRECT probes) through
 * the daemon's logger; under prove they are noise. KVF_TEST_LOG=1 keeps
 * them. */
__attribute__((constructor)) static void store_test_quiet(void)
{
	if (!getenv("KVF_TEST_LOG"))
		sc_log_set_level(SC_LOG_WARN);
}

#include "tests/tap/clock.h"
#include "tests/tap/pattern.h"
#include "tests/tap/tap.h"
#include "xfer/store.h"

static inline char *st_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(512);
	snprintf(p, 512, "%s/kvf-store-%s-XXXXXX", base ? base : "/tmp", tag);
	if (!mkdtemp(p))
		bail("mkdtemp(%s) failed: %s", p, strerror(errno));
	return p;
}

/* Remove the directory st_tmpdir made, and free its name. */
static inline void st_rmdir(char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	free(dir);
}

static inline void *st_alloc(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, len ? len : 1) != 0)
		bail("out of memory (%zu bytes)", len);
	return p;
}

/*
 * Wait for n completions (bounded: 20 s), collected into out (n entries).
 * Returns how many came.
 */
static inline int st_collect(struct xfer_store *s, struct xfer_store_done *out,
                             int n)
{
	int got = 0;
	double end = tp_now_s() + 20;
	while (got < n && tp_now_s() < end) {
		got += xfer_store_poll(s, out + got, n - got);
		if (got < n)
			xfer_store_wait(s, 100);
	}
	return got;
}

/* One operation's status; its message goes to *msg (static buffer). */
static inline int st_one(struct xfer_store *s, const char **msg)
{
	static struct xfer_store_done d;
	if (st_collect(s, &d, 1) != 1) {
		d.status = -1;
		snprintf(d.msg, sizeof(d.msg), "no completion in 20 s");
	}
	if (msg)
		*msg = d.msg;
	return d.status;
}

static inline int st_save(struct xfer_store *s, const char *name,
                          const struct kvf_layout *l, void **blocks,
                          uint32_t n, uint64_t len, const char **msg)
{
	int ret = xfer_store_save(s, name, l, blocks, n, len, NULL);
	if (ret)
		return ret;
	return st_one(s, msg);
}

static inline int st_load(struct xfer_store *s, const char *name,
                          const struct kvf_layout *l, void **blocks,
                          uint32_t n, uint64_t len, const char **msg)
{
	int ret = xfer_store_load(s, name, l, blocks, n, len, NULL);
	if (ret)
		return ret;
	return st_one(s, msg);
}

static inline struct xfer_store *st_open(const char *dir, uint64_t cap,
                                         enum xfer_store_direct direct,
                                         enum xfer_store_sync sync)
{
	struct xfer_store_config cfg = { .dir = dir, .capacity = cap,
		.queue_depth = 32, .direct = direct, .sync = sync };
	struct xfer_store *s = NULL;
	char err[400];
	int ret = xfer_store_open(&cfg, &s, err, sizeof(err));
	if (ret)
		bail("xfer_store_open(%s): %s (%s)", dir, err,
		     kvf_strerror(ret));
	return s;
}

/* Mount a filesystem of ours on dir: "tmpfs" of size bytes, or "ext4"
 * from a loop image img. 0 on success, else the reason in why. */
static inline int st_mount(const char *kind, const char *dir,
                           const char *img, size_t size, char *why,
                           size_t wl)
{
	char cmd[1200];
	if (geteuid() != 0) {
		snprintf(why, wl, "not root");
		return -1;
	}
	if (!strcmp(kind, "tmpfs")) {
		char opt[64];
		snprintf(opt, sizeof(opt), "size=%zu", size);
		if (mount("kvf-store-test", dir, "tmpfs", 0, opt) != 0) {
			snprintf(why, wl, "mount(tmpfs) failed: %s",
			         strerror(errno));
			return -1;
		}
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "truncate -s %zu '%s' && "
	         "mkfs.ext4 -q -F '%s' >/dev/null 2>&1 && "
	         "mount -o loop '%s' '%s' 2>/dev/null", size, img, img, img,
	         dir);
	if (system(cmd) != 0) {
		snprintf(why, wl, "mkfs.ext4 + mount -o loop failed");
		unlink(img);
		return -1;
	}
	return 0;
}

static inline void st_umount(const char *dir, const char *img)
{
	if (umount2(dir, MNT_DETACH) != 0)
		diag("umount %s: %s", dir, strerror(errno));
	if (img)
		unlink(img);
}

#endif
