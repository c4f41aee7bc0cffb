/*
 * xfer/store_catalogue.c - the objects on disk: an object's file name,
 * the catalogue entry of a finished save, eviction of least recently used
 * objects to keep the capacity, the queries (list, usage, remove), and
 * the rebuild at open, which reads every object's header, removes what
 * does not verify and what temporaries a crash left, and orders the rest
 * by last use (the file's mtime). The in-memory catalogue itself is
 * store_index.c; the file format store_format.c.
 */
#include "xfer/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sidecar/log.h"

/* ---- object files ---------------------------------------------------- */

void xfer_store_file_name(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", name, XFER_STORE_SUFFIX);
}

static void entry_from_hdr(struct xfer_store_entry *e,
                           const struct xfer_store_hdr *h)
{
	e->bytes = h->total_bytes;
	e->nblocks = h->nblocks;
	e->header_bytes = h->header_bytes;
	e->block_len = h->block_len;
	e->layout = h->layout;
}

/* A finished save enters the catalogue. */
void xfer_store_save_commit(struct xfer_store *s, struct op *op)
{
	struct xfer_store_entry *e = xfer_store_entry_alloc(op->hdr.name);
	struct xfer_store_entry *old = NULL;

	if (e) {
		entry_from_hdr(e, &op->hdr);
		e->last_use_ns = xfer_store_now_ns();
	}
	if (!e || xfer_store_index_insert(s->ix, e, &old) != 0) {
		char fn[XFER_STORE_NAME_MAX + 8];
		xfer_store_entry_rele(e);
		xfer_store_file_name(op->hdr.name, fn, sizeof(fn));
		unlinkat(s->dirfd, fn, 0);
		xfer_store_op_fail(op, KVF_ENOMEM, "save '%s': catalogue "
		                   "entry: out of memory; object removed",
		                   op->hdr.name);
		return;
	}
	xfer_store_entry_rele(old);
}

/* ---- capacity -------------------------------------------------------- */

static void evict(struct xfer_store *s, struct xfer_store_entry *e,
                  const char *why)
{
	char fn[XFER_STORE_NAME_MAX + 8];

	xfer_store_file_name(e->name, fn, sizeof(fn));
	if (unlinkat(s->dirfd, fn, 0) != 0 && errno != ENOENT)
		sc_warn("store %s: evict '%s': unlink() failed: %s",
		        s->dir, e->name, strerror(errno));
	sc_debug("store %s: evicted '%s' (%" PRIu64 " bytes, least recently "
	         "used) %s", s->dir, e->name, e->bytes, why);
	xfer_store_index_remove(s->ix, e);
}

/* Evict least recently used objects no load holds until need fits. */
int xfer_store_make_room(struct xfer_store *s, struct op *op, uint64_t need)
{
	while (s->capacity && xfer_store_index_bytes(s->ix) + s->reserved +
	                              need > s->capacity) {
		struct xfer_store_entry *e = xfer_store_index_oldest(s->ix);
		while (e && e->refs > 1)
			e = xfer_store_index_newer(e);
		if (!e) {
			xfer_store_op_fail(op, KVF_ENOSPC, "save '%s': needs %"
			                   PRIu64 " bytes; capacity %" PRIu64
			                   " has %" PRIu64 " in objects being "
			                   "loaded and %" PRIu64 " in saves "
			                   "in progress", op->hdr.name, need,
			                   s->capacity,
			                   xfer_store_index_bytes(s->ix),
			                   s->reserved);
			return KVF_ENOSPC;
		}
		evict(s, e, "to make room");
	}
	return 0;
}

/* ---- catalogue queries ------------------------------------------------ */

int xfer_store_list(struct xfer_store *s, struct xfer_store_object *out,
                    size_t max, size_t *count)
{
	size_t n = 0;

	if (!s || !count || (max && !out))
		return KVF_EINVAL;
	for (struct xfer_store_entry *e = xfer_store_index_newest(s->ix);
	     e && n < max; e = xfer_store_index_older(e), n++) {
		memcpy(out[n].name, e->name, sizeof(out[n].name));
		out[n].bytes = e->bytes;
		out[n].last_use_ns = e->last_use_ns;
		out[n].nblocks = e->nblocks;
		out[n].block_len = e->block_len;
	}
	*count = xfer_store_index_count(s->ix);
	return 0;
}

void xfer_store_usage(const struct xfer_store *s, uint64_t *used,
                      uint64_t *capacity)
{
	if (used)
		*used = s ? xfer_store_index_bytes(s->ix) : 0;
	if (capacity)
		*capacity = s ? s->capacity : 0;
}

int xfer_store_remove(struct xfer_store *s, const char *name, char *err,
                      size_t errlen)
{
	struct xfer_store_entry *e;
	char why[200], fn[XFER_STORE_NAME_MAX + 8];

	if (!s)
		return KVF_EINVAL;
	if (xfer_store_name_check(name, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "remove: %s", why);
		return KVF_EINVAL;
	}
	e = xfer_store_index_find(s->ix, name);
	if (!e) {
		snprintf(err, errlen, "remove '%s': no such object in %s",
		         name, s->dir);
		return KVF_ENOENT;
	}
	xfer_store_file_name(name, fn, sizeof(fn));
	if (unlinkat(s->dirfd, fn, 0) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "remove '%s': unlink() of %s/%s failed: "
		         "%s", name, s->dir, fn, strerror(errno));
		return KVF_ESYSTEM;
	}
	xfer_store_index_remove(s->ix, e);
	return 0;
}

/* ---- open ------------------------------------------------------------ */

/* Read and check the header of an object file found at open. */
static struct xfer_store_entry *read_entry(struct xfer_store *s,
                                           const char *fn, const char *stem)
{
	struct xfer_store_hdr h;
	struct xfer_store_entry *e = NULL;
	struct stat st;
	uint8_t *buf = NULL;
	char why[XFER_STORE_NAME_MAX + 64] = "";
	ssize_t got;
	int fd;

	fd = openat(s->dirfd, fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		sc_warn("store %s: %s: open() failed: %s; skipped", s->dir, fn,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc(XFER_STORE_ALIGN);
	if (!buf)
		goto out;
	got = pread(fd, buf, XFER_STORE_ALIGN, 0);
	if (xfer_store_hdr_decode(buf, got > 0 ? (size_t)got : 0, &h, why,
	                          sizeof(why)) != 0)
		goto bad;
	if (h.header_bytes > XFER_STORE_ALIGN) {
		uint8_t *nb = realloc(buf, h.header_bytes);
		if (!nb)
			goto out;
		buf = nb;
		got = pread(fd, buf, h.header_bytes, 0);
		if (got != (ssize_t)h.header_bytes) {
			snprintf(why, sizeof(why), "header truncated");
			goto bad;
		}
	}
	if (xfer_store_hdr_verify(&h, buf, why, sizeof(why)) != 0)
		goto bad;
	if (strcmp(h.name, stem) != 0) {
		snprintf(why, sizeof(why), "header names '%s'", h.name);
		goto bad;
	}
	if ((uint64_t)st.st_size != h.total_bytes) {
		snprintf(why, sizeof(why), "file has %" PRIu64 " bytes, the "
		         "header says %" PRIu64, (uint64_t)st.st_size,
		         h.total_bytes);
		goto bad;
	}
	e = xfer_store_entry_alloc(stem);
	if (e) {
		entry_from_hdr(e, &h);
		e->last_use_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
		                 (uint64_t)st.st_mtim.tv_nsec;
	}
	goto out;
bad:
	/* It could never load; keeping it would only hold space. */
	sc_warn("store %s: %s does not verify (%s): removed", s->dir, fn, why);
	unlinkat(s->dirfd, fn, 0);
out:
	free(buf);
	close(fd);
	return e;
}

static int by_last_use(const void *a, const void *b)
{
	const struct xfer_store_entry *x =
		*(struct xfer_store_entry *const *)a;
	const struct xfer_store_entry *y =
		*(struct xfer_store_entry *const *)b;
	return x->last_use_ns < y->last_use_ns ? -1 :
	       x->last_use_ns > y->last_use_ns;
}

int xfer_store_scan(struct xfer_store *s, char *err, size_t errlen)
{
	struct xfer_store_entry **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int fd = dup(s->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	int ret = 0;

	if (!d) {
		snprintf(err, errlen, "store %s: opendir() failed: %s", s->dir,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return KVF_ESYSTEM;
	}
	while ((de = readdir(d))) {
		const char *fn = de->d_name;
		size_t len = strlen(fn), sl = strlen(XFER_STORE_SUFFIX);
		char stem[XFER_STORE_NAME_MAX + 1], why[200];
		struct xfer_store_entry *e;

		if (!strncmp(fn, XFER_STORE_TMP_PREFIX,
		             strlen(XFER_STORE_TMP_PREFIX))) {
			/* We hold the directory lock: no live save owns it. */
			unlinkat(s->dirfd, fn, 0);
			sc_info("store %s: removed %s, left by an interrupted "
			        "save", s->dir, fn);
			continue;
		}
		if (len <= sl || len - sl > XFER_STORE_NAME_MAX ||
		    strcmp(fn + len - sl, XFER_STORE_SUFFIX) != 0)
			continue;
		memcpy(stem, fn, len - sl);
		stem[len - sl] = '\0';
		if (xfer_store_name_check(stem, why, sizeof(why)) != 0)
			continue;
		e = read_entry(s, fn, stem);
		if (!e)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				xfer_store_entry_rele(e);
				ret = KVF_ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n++] = e;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), by_last_use);
	for (size_t i = 0; i < n; i++) {
		if (ret == 0 &&
		    xfer_store_index_insert(s->ix, v[i], NULL) == 0)
			continue;
		ret = KVF_ENOMEM;
		xfer_store_entry_rele(v[i]);
	}
	free(v);
	if (ret) {
		snprintf(err, errlen, "store %s: out of memory reading the "
		         "catalogue", s->dir);
		return ret;
	}
	while (s->capacity && xfer_store_index_bytes(s->ix) > s->capacity)
		evict(s, xfer_store_index_oldest(s->ix),
		      "to fit the configured capacity");
	sc_info("store %s: %zu objects, %" PRIu64 " bytes", s->dir,
	        xfer_store_index_count(s->ix), xfer_store_index_bytes(s->ix));
	return 0;
}
