/* tests/store/roundtrip.c - save then load, byte for byte, across layouts,
 * block sizes, alignment, registered memory, O_DIRECT on and off, on the
 * default temp dir, a tmpfs and an ext4 loop image. */
#include "tests/store/store_test.h"

struct shape {
	const char *name;
	uint32_t nblocks;
	uint64_t len;
	size_t misalign; /* added to each block's address */
	struct kvf_layout layout;
};

static const struct shape shapes[] = {
	{ "kv-64k", 8, 65536, 0, { 32, 8, 65536, 8 * 65536, 65536, 0 } },
	{ "odd-1000", 5, 1000, 0, { 2, 5, 500, 5000, 1000, 0 } },
	{ "misaligned-12k", 3, 12288, 1, { 1, 3, 12288, 0, 12288, 1 } },
	{ "one-3m", 1, 3 << 20, 0, { 1, 1, 3 << 20, 0, 3 << 20, 0 } },
	{ "many-4k", 300, 4096, 0, { 1, 300, 4096, 0, 4096, 0 } },
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))
#define POINTS_PER_RUN (NSHAPES * 2 + 3)

static void run_shape(struct xfer_store *s, const struct shape *sh,
                      const char *where)
{
	size_t span = sh->len + sh->misalign;
	char *src = st_alloc(span * sh->nblocks);
	char *dst = st_alloc(span * sh->nblocks);
	void **sb = calloc(sh->nblocks, sizeof(void *));
	void **db = calloc(sh->nblocks, sizeof(void *));
	const char *msg;
	int ret;

	for (uint32_t i = 0; i < sh->nblocks; i++) {
		sb[i] = src + i * span + sh->misalign;
		db[i] = dst + i * span + sh->misalign;
		tp_pattern_fill(sb[i], sh->len, i * 31 + sh->nblocks);
	}
	memset(dst, 0, span * sh->nblocks);
	ret = st_save(s, sh->name, &sh->layout, sb, sh->nblocks, sh->len,
	              &msg);
	is_int(ret, 0, "%s: save %s (%u x %llu bytes) %s", where, sh->name,
	       sh->nblocks, (unsigned long long)sh->len, msg);
	ret = st_load(s, sh->name, &sh->layout, db, sh->nblocks, sh->len,
	              &msg);
	int same = ret == 0;
	for (uint32_t i = 0; same && i < sh->nblocks; i++)
		same = memcmp(sb[i], db[i], sh->len) == 0;
	ok(same, "%s: load %s gives the same bytes (status %d %s)", where,
	   sh->name, ret, msg);
	free(src);
	free(dst);
	free(sb);
	free(db);
}

static void run_registered(struct xfer_store *s, const char *where)
{
	size_t blen = 65536, n = 16;
	char *region = st_alloc(blen * n * 2);
	void *sb[16], *db[16];
	uint32_t idx;
	const char *msg;
	int ret = xfer_store_register_memory(s, region, blen * n * 2, &idx);

	is_int(ret, 0, "%s: register 2 MiB region", where);
	for (size_t i = 0; i < n; i++) {
		sb[i] = region + i * blen;
		db[i] = region + (n + i) * blen;
		tp_pattern_fill(sb[i], blen, 1000 + i);
	}
	memset(region + n * blen, 0, n * blen);
	ret = st_save(s, "fixed", NULL, sb, n, blen, &msg);
	if (ret == 0)
		ret = st_load(s, "fixed", NULL, db, n, blen, &msg);
	ok(ret == 0 && memcmp(region, region + n * blen, n * blen) == 0,
	   "%s: save/load through registered buffers (status %d %s)", where,
	   ret, msg);
	is_int(xfer_store_unregister_memory(s, idx), 0, "%s: unregister",
	       where);
	free(region);
}

static void run_dir(const char *dir, const char *fsname)
{
	static const enum xfer_store_direct modes[] = {
		XFER_STORE_DIRECT_AUTO, XFER_STORE_DIRECT_OFF };

	for (int m = 0; m < 2; m++) {
		struct xfer_store *s = st_open(dir, 0, modes[m],
		                               XFER_STORE_SYNC_DATA);
		char where[80];
		snprintf(where, sizeof(where), "%s direct=%s", fsname,
		         xfer_store_direct(s) ? "on" : "off");
		for (size_t i = 0; i < NSHAPES; i++)
			run_shape(s, &shapes[i], where);
		run_registered(s, where);
		xfer_store_close(s);
	}
}

int main(void)
{
	char *dir = st_tmpdir("rt");
	char why[200];
	char img[600];

	plan(3 * 2 * POINTS_PER_RUN);
	run_dir(dir, "tmpdir");
	st_rmdir(dir);

	dir = st_tmpdir("rt-tmpfs");
	if (st_mount("tmpfs", dir, NULL, 64 << 20, why, sizeof(why)) == 0) {
		run_dir(dir, "tmpfs");
		st_umount(dir, NULL);
	} else {
		skip(2 * POINTS_PER_RUN, "tmpfs: %s", why);
	}
	st_rmdir(dir);

	dir = st_tmpdir("rt-ext4");
	snprintf(img, sizeof(img), "%s.img", dir);
	if (st_mount("ext4", dir, img, 64 << 20, why, sizeof(why)) == 0) {
		run_dir(dir, "ext4-loop");
		st_umount(dir, img);
	} else {
		skip(2 * POINTS_PER_RUN, "ext4: %s", why);
	}
	st_rmdir(dir);
	return tap_exit_status();
}
