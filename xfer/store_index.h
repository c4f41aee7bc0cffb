/*
 * xfer/store_index.h - the store's catalogue: the objects on disk by name,
 * in least-recently-used order, with the bytes they take.
 *
 * Entries are reference counted: the catalogue holds one reference while
 * an entry is listed, each load in progress holds another, so an entry a
 * load uses stays valid when a save replaces it or remove() drops it.
 * Not thread-safe: the store's progress thread owns it.
 */
#ifndef KVF_XFER_STORE_INDEX_H
#define KVF_XFER_STORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "xfer/store_format.h"

struct xfer_store_index;

struct xfer_store_entry {
	char name[XFER_STORE_NAME_MAX + 1];
	uint64_t bytes;       /* file size */
	uint64_t last_use_ns; /* CLOCK_REALTIME */
	uint32_t nblocks;
	uint32_t header_bytes;
	uint64_t block_len;
	struct kvf_layout layout;
	uint32_t refs;
	bool listed;
	/* Private to the index. */
	struct xfer_store_entry *hnext, *newer, *older;
};

/* On the heap; NULL when out of memory. */
struct xfer_store_index *xfer_store_index_alloc(void);
/* Drops every listed entry. Accepts NULL. */
void xfer_store_index_free(struct xfer_store_index *ix);

/* A new unlisted entry with one reference; NULL when out of memory. */
struct xfer_store_entry *xfer_store_entry_alloc(const char *name);
void xfer_store_entry_hold(struct xfer_store_entry *e);
/* Frees the entry with its last reference. Accepts NULL. */
void xfer_store_entry_rele(struct xfer_store_entry *e);

/*
 * List e as the most recently used object; the index takes the caller's
 * reference. A listed entry of the same name is unlisted first and
 * returned with its reference handed to the caller (NULL when none).
 * KVF_ENOMEM leaves e with the caller.
 */
int xfer_store_index_insert(struct xfer_store_index *ix,
                            struct xfer_store_entry *e,
                            struct xfer_store_entry **replaced);

/* The listed entry named name, or NULL; no reference taken. */
struct xfer_store_entry *xfer_store_index_find(struct xfer_store_index *ix,
                                               const char *name);

/* Unlist e and drop the index's reference. */
void xfer_store_index_remove(struct xfer_store_index *ix,
                             struct xfer_store_entry *e);

/* Mark e used now (most recent). */
void xfer_store_index_touch(struct xfer_store_index *ix,
                            struct xfer_store_entry *e, uint64_t now_ns);

/* Least recently used listed entry, or NULL; then ->newer ones via
 * xfer_store_index_newer. Most recent first: _newest / _older. */
struct xfer_store_entry *xfer_store_index_oldest(struct xfer_store_index *ix);
struct xfer_store_entry *xfer_store_index_newest(struct xfer_store_index *ix);
struct xfer_store_entry *xfer_store_index_newer(struct xfer_store_entry *e);
struct xfer_store_entry *xfer_store_index_older(struct xfer_store_entry *e);

uint64_t xfer_store_index_bytes(const struct xfer_store_index *ix);
size_t xfer_store_index_count(const struct xfer_store_index *ix);

#endif
