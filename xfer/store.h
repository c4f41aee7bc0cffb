/*
 * xfer/store.h - the KV storage tier: save lists of KV blocks from host
 * memory into files of a local directory and load them back, through
 * io_uring, with checksums, atomic saves and a capacity kept by
 * least-recently-used eviction.
 *
 * An object is a named list of blocks of equal length (one layer's block,
 * or a whole block) plus the saver's KV layout; see xfer/store_format.h for
 * the file. Saves and loads are asynchronous: they return at once and each
 * accepted one yields exactly one completion from xfer_store_poll, carrying
 * the caller's context pointer, a KVF_E* status and a message that names
 * the object and what was wrong.
 *
 * Waiting: xfer_store_fd() is an eventfd registered with the ring; it turns
 * readable when the kernel posts a completion (or the store queued one
 * itself), so the sidecar's progress loop can poll(2) it with its other
 * fds and call xfer_store_poll when it fires. xfer_store_wait() blocks on
 * the ring with a timeout instead, for loops that have nothing else.
 *
 * Threads: a store is driven by one thread at a time (the sidecar's
 * progress thread): every function here except the config helpers must be
 * called from it. Memory handed to a save or load must stay mapped and
 * untouched until its completion.
 *
 * The directory belongs to one store: open takes a lock on it (KVF_EBUSY
 * when another process holds it), removes temporary files a crash left,
 * and rebuilds the catalogue from the objects' headers.
 */
#ifndef KVF_XFER_STORE_H
#define KVF_XFER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "xfer/store_format.h"

struct xfer_store;

enum xfer_store_direct {
	XFER_STORE_DIRECT_AUTO = 0, /* O_DIRECT when the filesystem takes it */
	XFER_STORE_DIRECT_ON,       /* O_DIRECT or open fails (KVF_ENOTSUP) */
	XFER_STORE_DIRECT_OFF,      /* page-cache I/O */
};

enum xfer_store_sync {
	XFER_STORE_SYNC_NONE = 0, /* no fsync: a crash may lose saves; what
	                           * survives is still verified by checksum */
	XFER_STORE_SYNC_DATA,     /* fdatasync the object before the rename */
	XFER_STORE_SYNC_FULL,     /* fsync the object, rename, fsync the dir */
};

struct xfer_store_config {
	const char *dir;       /* existing directory, required */
	uint64_t capacity;     /* bytes of objects kept; 0: no limit but
	                        * the filesystem's */
	uint32_t queue_depth;  /* I/Os in flight; 0: 64, at most 4096 */
	enum xfer_store_direct direct;
	enum xfer_store_sync sync;
};

/* Parse "auto|on|off" and "none|data|full"; -1 when unknown. */
int xfer_store_direct_parse(const char *s);
int xfer_store_sync_parse(const char *s);

/*
 * Open a store on cfg->dir. Returns KVF_EINVAL / KVF_ECONFIG for a bad
 * config, KVF_ENOENT for a missing directory, KVF_EBUSY when another
 * store holds it, KVF_ENOTSUP when io_uring (or O_DIRECT with
 * XFER_STORE_DIRECT_ON) is unavailable, KVF_ESYSTEM / KVF_ENOMEM; the
 * reason goes into err. Blocks while it reads the headers. On success
 * *out owns the ring and the directory lock until xfer_store_close.
 */
int xfer_store_open(const struct xfer_store_config *cfg,
                    struct xfer_store **out, char *err, size_t errlen);

/*
 * Stop: saves and loads not finished are abandoned (their I/O is waited
 * for, bounded, temporary files removed) and their completions dropped.
 * Registered memory is released. Accepts NULL.
 */
void xfer_store_close(struct xfer_store *s);

/* Whether this store moves aligned blocks with O_DIRECT. */
bool xfer_store_direct(const struct xfer_store *s);

/*
 * Register [base, base + len) with the ring (io_uring_register_buffers) so
 * blocks inside it move with READ_FIXED / WRITE_FIXED and skip the
 * per-I/O page pinning. The kernel takes regions in pieces of at most
 * 1 GiB; a block that straddles two pieces moves with plain read/write.
 * *index names the registration for xfer_store_unregister_memory.
 * KVF_ENOSPC when the buffer table is full, KVF_ENOMEM / KVF_ESYSTEM when
 * the kernel refuses (locked-memory limit); the store works without it.
 */
int xfer_store_register_memory(struct xfer_store *s, void *base, size_t len,
                               uint32_t *index);
/* Release a registration. No save or load may be using it. */
int xfer_store_unregister_memory(struct xfer_store *s, uint32_t index);

/* One finished save or load. */
struct xfer_store_done {
	void *ctx;      /* as passed to save/load */
	int status;     /* 0 or KVF_E* */
	bool save;      /* true: a save, false: a load */
	uint64_t bytes; /* block bytes moved (0 on error) */
	char msg[320];  /* "" on success; else what failed, naming the object */
};

/*
 * Save nblocks blocks of block_len bytes each, blocks[i] the host address
 * of block i, as object name, replacing an object of that name when the
 * save completes. layout (may be NULL) is recorded for loads to compare.
 * The block list is copied; the blocks are read until the completion.
 * Room is made by evicting least recently used objects no load is
 * reading; an object larger than the capacity ends KVF_ENOSPC.
 *
 * Returns 0 when accepted: exactly one completion follows, and every
 * problem with the request (bad name KVF_EINVAL, KVF_ENOSPC, KVF_EIO ...)
 * comes in it. Returns KVF_EINVAL (NULL store or block list) or
 * KVF_ENOMEM without a completion.
 */
int xfer_store_save(struct xfer_store *s, const char *name,
                    const struct kvf_layout *layout, void *const *blocks,
                    uint32_t nblocks, uint64_t block_len, void *ctx);

/*
 * Load object name into blocks[0..nblocks), each block_len bytes. The
 * object must have this many blocks of this length and, when both sides
 * give a layout, the same num_layers and block_bytes (the region's own
 * num_blocks, strides and offset may differ): otherwise KVF_EINVAL with
 * both layouts in the message. Every block's checksum is verified
 * (KVF_ECORRUPT names the first bad block; the memory then holds what
 * the file held). KVF_ENOENT when there is no such object. Same return
 * and completion rules as xfer_store_save.
 */
int xfer_store_load(struct xfer_store *s, const char *name,
                    const struct kvf_layout *layout, void *const *blocks,
                    uint32_t nblocks, uint64_t block_len, void *ctx);

/*
 * Progress: reap the kernel's completions, issue more I/O, and hand out
 * up to max finished operations. Never blocks. Returns how many were
 * written to out.
 */
int xfer_store_poll(struct xfer_store *s, struct xfer_store_done *out,
                    int max);

/* The eventfd to wait on (see above). Read it empty is not needed:
 * xfer_store_poll drains it. */
int xfer_store_fd(const struct xfer_store *s);

/*
 * Block until a completion is ready or timeout_ms passes (-1 is refused:
 * every wait is bounded). 0 when something may be ready, KVF_ETIMEDOUT
 * otherwise; returns at once with KVF_ETIMEDOUT when nothing is in
 * flight.
 */
int xfer_store_wait(struct xfer_store *s, int timeout_ms);

/* Operations accepted and not yet handed out by xfer_store_poll. */
uint32_t xfer_store_pending(const struct xfer_store *s);

struct xfer_store_object {
	char name[XFER_STORE_NAME_MAX + 1];
	uint64_t bytes;       /* file size */
	uint64_t last_use_ns; /* CLOCK_REALTIME of the last save or load */
	uint32_t nblocks;
	uint64_t block_len;
};

/*
 * Copy up to max objects, most recently used first, into out; *count gets
 * the number of objects in the store (may exceed max).
 */
int xfer_store_list(struct xfer_store *s, struct xfer_store_object *out,
                    size_t max, size_t *count);

/* Bytes of objects stored and the capacity (0: no limit). */
void xfer_store_usage(const struct xfer_store *s, uint64_t *used,
                      uint64_t *capacity);

/*
 * Remove object name now. KVF_ENOENT when there is none, KVF_EINVAL for a
 * bad name, KVF_ESYSTEM when unlink fails; loads already reading it finish
 * from the open file. The reason goes into err.
 */
int xfer_store_remove(struct xfer_store *s, const char *name, char *err,
                      size_t errlen);

#endif
