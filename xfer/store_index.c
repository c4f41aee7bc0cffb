/*
 * xfer/store_index.c - the catalogue of stored objects: a chained hash
 * table by name for lookups and a doubly linked list for LRU order (head
 * newest, tail oldest), so finding, touching and evicting are O(1).
 *
 * The table doubles when it holds more entries than buckets; a prefix
 * cache may keep hundreds of thousands of objects.
 */
#include "xfer/store_index.h"

#include <stdlib.h>
#include <string.h>

struct xfer_store_index {
	struct xfer_store_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	uint64_t bytes;
	struct xfer_store_entry *newest, *oldest;
};

/* FNV-1a: names are short and this is not exposed to hash flooding by
 * anyone but the local engines. */
static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

struct xfer_store_index *xfer_store_index_alloc(void)
{
	struct xfer_store_index *ix = calloc(1, sizeof(*ix));

	if (!ix)
		return NULL;
	ix->nbuckets = 64;
	ix->buckets = calloc(ix->nbuckets, sizeof(*ix->buckets));
	if (!ix->buckets) {
		free(ix);
		return NULL;
	}
	return ix;
}

void xfer_store_index_free(struct xfer_store_index *ix)
{
	if (!ix)
		return;
	while (ix->oldest)
		xfer_store_index_remove(ix, ix->oldest);
	free(ix->buckets);
	free(ix);
}

struct xfer_store_entry *xfer_store_entry_alloc(const char *name)
{
	struct xfer_store_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	strncpy(e->name, name, XFER_STORE_NAME_MAX);
	e->refs = 1;
	return e;
}

void xfer_store_entry_hold(struct xfer_store_entry *e)
{
	e->refs++;
}

void xfer_store_entry_rele(struct xfer_store_entry *e)
{
	if (e && --e->refs == 0)
		free(e);
}

static int grow(struct xfer_store_index *ix)
{
	size_t n = ix->nbuckets * 2;
	struct xfer_store_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return KVF_ENOMEM;
	for (size_t i = 0; i < ix->nbuckets; i++) {
		struct xfer_store_entry *e = ix->buckets[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			size_t h = hash(e->name) & (n - 1);
			e->hnext = b[h];
			b[h] = e;
		}
	}
	free(ix->buckets);
	ix->buckets = b;
	ix->nbuckets = n;
	return 0;
}

static void lru_unlink(struct xfer_store_index *ix, struct xfer_store_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		ix->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		ix->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push_newest(struct xfer_store_index *ix,
                            struct xfer_store_entry *e)
{
	e->newer = NULL;
	e->older = ix->newest;
	if (ix->newest)
		ix->newest->newer = e;
	else
		ix->oldest = e;
	ix->newest = e;
}

int xfer_store_index_insert(struct xfer_store_index *ix,
                            struct xfer_store_entry *e,
                            struct xfer_store_entry **replaced)
{
	struct xfer_store_entry *old = xfer_store_index_find(ix, e->name);

	if (!old && ix->count >= ix->nbuckets && grow(ix) != 0)
		return KVF_ENOMEM;
	if (old) {
		/* Keep the index's reference for the caller. */
		xfer_store_entry_hold(old);
		xfer_store_index_remove(ix, old);
	}
	size_t h = hash(e->name) & (ix->nbuckets - 1);
	e->hnext = ix->buckets[h];
	ix->buckets[h] = e;
	e->listed = true;
	lru_push_newest(ix, e);
	ix->count++;
	ix->bytes += e->bytes;
	if (replaced)
		*replaced = old;
	else
		xfer_store_entry_rele(old);
	return 0;
}

struct xfer_store_entry *xfer_store_index_find(struct xfer_store_index *ix,
                                               const char *name)
{
	struct xfer_store_entry *e = ix->buckets[hash(name) &
	                                         (ix->nbuckets - 1)];

	for (; e; e = e->hnext)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

void xfer_store_index_remove(struct xfer_store_index *ix,
                             struct xfer_store_entry *e)
{
	struct xfer_store_entry **pp;

	if (!e->listed)
		return;
	pp = &ix->buckets[hash(e->name) & (ix->nbuckets - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	e->hnext = NULL;
	lru_unlink(ix, e);
	e->listed = false;
	ix->count--;
	ix->bytes -= e->bytes;
	xfer_store_entry_rele(e);
}

void xfer_store_index_touch(struct xfer_store_index *ix,
                            struct xfer_store_entry *e, uint64_t now_ns)
{
	e->last_use_ns = now_ns;
	if (!e->listed)
		return;
	lru_unlink(ix, e);
	lru_push_newest(ix, e);
}

struct xfer_store_entry *xfer_store_index_oldest(struct xfer_store_index *ix)
{
	return ix->oldest;
}

struct xfer_store_entry *xfer_store_index_newest(struct xfer_store_index *ix)
{
	return ix->newest;
}

struct xfer_store_entry *xfer_store_index_newer(struct xfer_store_entry *e)
{
	return e->newer;
}

struct xfer_store_entry *xfer_store_index_older(struct xfer_store_entry *e)
{
	return e->older;
}

uint64_t xfer_store_index_bytes(const struct xfer_store_index *ix)
{
	return ix->bytes;
}

size_t xfer_store_index_count(const struct xfer_store_index *ix)
{
	return ix->count;
}
