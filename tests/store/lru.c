/* tests/store/lru.c - capacity by LRU eviction (loads pin their object),
 * listing, usage, order across a reopen, many saves and loads in flight. */
#include "tests/store/store_test.h"

#define BL 65536u
#define NB 4u
#define OBJ (4096u + NB * BL) /* file size of one object */

static void *blk[NB], *out[NB];

static int listed(struct xfer_store *s, char names[][16], size_t max)

{
	struct xfer_store_object o[16];
	size_t n;
	xfer_store_list(s, o, max < 16 ? max : 16, &n);
	for (size_t i = 0; i < n && i < max; i++)
		snprintf(names[i], 16, "%.15s", o[i].name);
	return (int)n;
}

static void lru(const char *dir)
{
	struct xfer_store *s = st_open(dir, 3 * OBJ, XFER_STORE_DIRECT_AUTO,
	                               XFER_STORE_SYNC_NONE);
	char names[8][16];
	const char *msg;
	uint64_t used, cap;

	ok(!st_save(s, "a", NULL, blk, NB, BL, &msg) &&
	   !st_save(s, "b", NULL, blk, NB, BL, &msg) &&
	   !st_save(s, "c", NULL, blk, NB, BL, &msg), "save a, b, c");
	xfer_store_usage(s, &used, &cap);
	ok(used == 3 * OBJ && cap == 3 * OBJ, "usage %llu of %llu",
	   (unsigned long long)used, (unsigned long long)cap);
	is_int(st_load(s, "a", NULL, out, NB, BL, &msg), 0, "load a");
	is_int(st_save(s, "d", NULL, blk, NB, BL, &msg), 0, "save d");
	is_int(listed(s, names, 8), 3, "three objects kept");
	ok(!strcmp(names[0], "d") && !strcmp(names[1], "a") &&
	   !strcmp(names[2], "c"), "b, least recently used, was evicted: "
	   "list is %s %s %s", names[0], names[1], names[2]);

	/* c is the oldest now; a load in flight pins it. */
	is_int(xfer_store_load(s, "c", NULL, out, NB, BL, (void *)1), 0,
	       "load c started");
	is_int(xfer_store_save(s, "e", NULL, blk, NB, BL, (void *)2), 0,
	       "save e started while c loads");
	struct xfer_store_done d[2];
	int n = st_collect(s, d, 2);
	ok(n == 2 && d[0].status == 0 && d[1].status == 0,
	   "both completed (%s / %s)", d[0].msg, d[1].msg);
	listed(s, names, 8);
	/* c and e end in the same round, in either order. */
	ok(!strcmp(names[2], "d") && ((!strcmp(names[0], "c") &&
	   !strcmp(names[1], "e")) || (!strcmp(names[0], "e") &&
	   !strcmp(names[1], "c"))), "a was evicted instead of the pinned "
	   "c: %s %s %s", names[0], names[1], names[2]);

	/* Order survives a reopen (mtimes are coarse: space the uses). */
	usleep(30000);
	st_load(s, "d", NULL, out, NB, BL, &msg);
	xfer_store_close(s);
	s = st_open(dir, 3 * OBJ, XFER_STORE_DIRECT_AUTO,
	            XFER_STORE_SYNC_NONE);
	is_int(listed(s, names, 8), 3, "reopen finds three objects");
	is_str(names[0], "d", "the last used is still the newest");
	xfer_store_close(s);

	/* Lower capacity at open: evicts down to it, oldest first. */
	s = st_open(dir, OBJ, XFER_STORE_DIRECT_AUTO, XFER_STORE_SYNC_NONE);
	is_int(listed(s, names, 8), 1, "reopen with room for one keeps one");
	is_str(names[0], "d", "the newest");
	xfer_store_close(s);
}

#define MANY 64

static void many(const char *dir)
{
	struct xfer_store *s = st_open(dir, 0, XFER_STORE_DIRECT_AUTO,
	                               XFER_STORE_SYNC_DATA);
	static void *src[MANY][8], *dst[MANY][8];
	struct xfer_store_done d[2 * MANY];
	int seen[2 * MANY] = {0}, bad = 0, n;
	char name[32];

	for (int i = 0; i < MANY; i++)
		for (int b = 0; b < 8; b++) {
			src[i][b] = st_alloc(BL);
			dst[i][b] = st_alloc(BL);
			tp_pattern_fill(src[i][b], BL, i * 8 + b);
			memset(dst[i][b], 0, BL);
		}
	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "obj-%d", i);
		if (xfer_store_save(s, name, NULL, src[i], 8, BL,
		                    (void *)(intptr_t)(i + 1)))
			bad++;
	}
	ok(bad == 0 && xfer_store_pending(s) == MANY, "%d saves in flight "
	   "at once (pending %u)", MANY, xfer_store_pending(s));
	n = st_collect(s, d, MANY);
	for (int i = 0; i < n; i++) {
		intptr_t c = (intptr_t)d[i].ctx;
		if (d[i].status || c < 1 || c > MANY || seen[c - 1]++)
			bad++;
	}
	ok(n == MANY && bad == 0, "%d completions, each context once, all "
	   "ok", n);
	/* Loads of every object, and new saves, all in flight together. */
	bad = 0;
	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "obj-%d", i);
		bad += !!xfer_store_load(s, name, NULL, dst[i], 8, BL,
		                         (void *)(intptr_t)(i + 1));
		snprintf(name, sizeof(name), "new-%d", i);
		bad += !!xfer_store_save(s, name, NULL, src[i], 8, BL,
		                         (void *)(intptr_t)(MANY + i + 1));
	}
	n = st_collect(s, d, 2 * MANY);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < n; i++) {
		intptr_t c = (intptr_t)d[i].ctx;
		if (d[i].status || c < 1 || c > 2 * MANY || seen[c - 1]++)
			bad++;
	}
	ok(n == 2 * MANY && bad == 0, "%d loads and %d saves interleaved: "
	   "%d completions, all ok", MANY, MANY, n);
	bad = 0;
	for (int i = 0; i < MANY; i++)
		for (int b = 0; b < 8; b++)
			bad += memcmp(src[i][b], dst[i][b], BL) != 0;
	is_int(bad, 0, "every loaded block equals its saved block");
	size_t cnt;
	xfer_store_list(s, NULL, 0, &cnt);
	is_int(cnt, 2 * MANY, "catalogue lists %d objects", 2 * MANY);
	int r = xfer_store_wait(s, 10);
	is_int(r, KVF_ETIMEDOUT, "wait with nothing in flight returns at once");
	xfer_store_close(s);
	for (int i = 0; i < MANY; i++)
		for (int b = 0; b < 8; b++) {
			free(src[i][b]);
			free(dst[i][b]);
		}
}

int main(void)
{
	char *dir = st_tmpdir("lru");

	for (unsigned i = 0; i < NB; i++) {
		blk[i] = st_alloc(BL);
		out[i] = st_alloc(BL);
		tp_pattern_fill(blk[i], BL, i);
	}
	lru(dir);
	st_rmdir(dir);
	dir = st_tmpdir("many");
	many(dir);
	st_rmdir(dir);
	done_testing();
}
