/*
 * xfer/store_int.h - the inside of a store, shared by store.c (open,
 * close, progress), store_op.c (the life of a save or load), store_ring.c
 * (issuing I/O and handling completions), store_fixed.c (the ring's
 * registered buffer and file tables) and store_catalogue.c (the objects
 * on disk: names, the catalogue at open, eviction, queries). Nothing
 * outside xfer/store*.c includes this.
 */
#ifndef KVF_XFER_STORE_INT_H
#define KVF_XFER_STORE_INT_H

#include "xfer/store.h"

#include <limits.h>
#include <liburing.h>

#include "xfer/store_index.h"

/* Sparse tables registered at open. */
#define MAX_BUFS 256u
#define MAX_FILES 64u
#define MAX_REGS 64u

enum io_kind { IO_BLOCK, IO_HDR, IO_FSYNC, IO_DIRSYNC };

enum step {
	S_DATA,    /* blocks (and, for a load, the header) */
	S_HEADER,  /* save: the header */
	S_SYNC,    /* save: fdatasync / fsync */
	S_DIRSYNC, /* save: fsync of the directory after the rename */
	S_END,
};

struct op;

struct io_slot {
	struct op *op;
	enum io_kind kind;
	uint32_t block;
	uint64_t done; /* bytes of this I/O already moved */
	struct io_slot *next_free;
};

struct op {
	struct op *prev, *next; /* active list; next links the done list too */
	bool save;
	bool active;
	void *ctx;
	struct xfer_store_hdr hdr;
	void **blocks;
	int fd;
	int file_idx; /* slot in the registered file table or -1 */
	bool direct;
	enum step step;
	bool step_issued; /* the single I/O of S_HEADER/S_SYNC/S_DIRSYNC */
	bool hdr_issued;  /* load: header read queued */
	bool hdr_ok;      /* load: header in and verified */
	bool created;     /* save: the temporary file exists */
	bool renamed;     /* save: renamed into place */
	uint32_t next_block;
	uint32_t blocks_done;
	uint32_t inflight;
	uint8_t *hbuf;
	uint32_t *crcs;  /* save */
	uint8_t *landed; /* load: block in, not verified yet */
	struct xfer_store_entry *entry; /* load: held */
	uint64_t reserved;
	char tmp[64];
	int status;
	char msg[320];
};

struct mreg {
	bool used;
	uintptr_t base;
	size_t len;
	uint32_t first; /* buffer table slot of the first 1 GiB piece */
	uint32_t pieces;
};

struct xfer_store {
	char dir[PATH_MAX];
	int dirfd;
	int lockfd;
	int efd;
	struct io_uring ring;
	bool ring_ok;
	uint32_t qd;
	uint64_t capacity;
	uint64_t reserved; /* bytes of saves in progress */
	bool direct;
	bool warned_unaligned;
	enum xfer_store_sync sync;
	struct xfer_store_index *ix;
	struct io_slot *slots;
	struct io_slot *free_slots;
	uint32_t inflight;
	uint32_t queued; /* SQEs prepared, not submitted */
	struct op *act_head, *act_tail;
	struct op *done_head, *done_tail;
	uint32_t pending;
	bool buf_table;
	bool file_table;
	uint8_t buf_used[MAX_BUFS];
	uint8_t file_used[MAX_FILES];
	struct mreg regs[MAX_REGS];
	uint64_t seq;
};

/* store.c: CLOCK_REALTIME in nanoseconds, the clock of last use. */
uint64_t xfer_store_now_ns(void);
/* store.c: the KVF_E* code for an errno of a file operation. */
int xfer_store_errno_code(int e);

/* store_op.c: free an ended op and its buffers. */
void xfer_store_op_free(struct op *op);
/* store_op.c: make the eventfd readable for a completion the store made. */
void xfer_store_signal_fd(struct xfer_store *s);
/* store_op.c: record the first failure of op; later ones are ignored. */
__attribute__((format(printf, 3, 4))) void
xfer_store_op_fail(struct op *op, int code, const char *fmt, ...);
/* store_op.c: finish op (commit or clean up) and queue its completion. */
void xfer_store_op_end(struct xfer_store *s, struct op *op);
/* store_op.c: len bytes aligned for O_DIRECT, or NULL. */
void *xfer_store_aligned_buf(size_t len);

/* store_ring.c: put an I/O slot on the free list. */
void xfer_store_slot_put(struct xfer_store *s, struct io_slot *sl);
/* store_ring.c: queue the active ops' next I/O while slots last; submit. */
void xfer_store_issue(struct xfer_store *s);
/* store_ring.c: hand the queued SQEs to the kernel. */
void xfer_store_submit(struct xfer_store *s);
/* store_ring.c: handle every CQE the kernel has posted. */
void xfer_store_reap(struct xfer_store *s);

/* store_fixed.c: the buffer table slot holding [p, p + len), or -1. */
int xfer_store_find_buf(struct xfer_store *s, const void *p, uint64_t len);
/* store_fixed.c: put op's fd in the file table when that pays. */
void xfer_store_file_slot_take(struct xfer_store *s, struct op *op);
/* store_fixed.c: take op's fd out of the file table, if there. */
void xfer_store_file_slot_put(struct xfer_store *s, struct op *op);

/* store_catalogue.c: the file name of object name, "<name>.kvs". */
void xfer_store_file_name(const char *name, char *buf, size_t len);
/* store_catalogue.c: a finished save enters the catalogue. */
void xfer_store_save_commit(struct xfer_store *s, struct op *op);
/* store_catalogue.c: evict until need fits; KVF_ENOSPC fails op. */
int xfer_store_make_room(struct xfer_store *s, struct op *op, uint64_t need);
/* store_catalogue.c: rebuild the catalogue from the directory at open. */
int xfer_store_scan(struct xfer_store *s, char *err, size_t errlen);

#endif
