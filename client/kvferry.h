/*
 * kvferry.h - the engine library: move KV cache between serving engines
 * through a kvferry sidecar.
 *
 * The engine connects to its local sidecar (kvf_connect), hands it memory
 * (kvf_alloc_host for host KV, kvf_register_cuda for GPU KV), resolves the
 * remote engines it talks to (kvf_resolve_peer), then submits WRITE (push)
 * and READ (pull) transfers and collects events. No networking happens in
 * the engine: submissions travel through a shared-memory ring to the
 * sidecar, which does the RDMA; completions come back on another ring.
 *
 * Errors: every function returns 0 or a positive KVF_E* code;
 * kvf_strerror() names it and kvf_last_error() gives the sidecar's message
 * for the calling thread's last failure (what was wrong: region, segment,
 * peer). Output parameters are written only on success.
 *
 * Threads: a kvf_client may be used from any number of threads at once.
 * kvf_close must not race with other calls on the same client.
 *
 * Guarantees:
 * - Every submitted transfer yields exactly one KVF_EV_XFER_DONE event,
 *   with status 0 or the error that ended it; never none, never two.
 * - A KVF_EV_NOTIF event reaches the target engine only after every byte
 *   of the transfer that carried it is in the target's memory.
 * - Nothing is ever written outside a registered region: every segment is
 *   checked against both regions' bounds before anything is posted.
 * - Every transfer has a deadline (kvf_xfer_opts.timeout_ms, else the
 *   sidecar's --xfer-timeout-ms) and its event comes by then, also when the
 *   peer died or hangs; only a transfer whose notification was already on
 *   its way gets up to 0.5 s more for the target to confirm it, so that a
 *   notified peer never sees its sender report a timeout. A peer that
 *   misses three heartbeats fails its transfers at once with KVF_EPEER.
 * - After a transfer ends with an error (KVF_ETIMEDOUT, KVF_EPEER,
 *   KVF_ECANCELED, ...) the bytes it was writing are undefined: the remote
 *   range for a WRITE (its engine never got the notification), the local
 *   range for a READ. The sidecar keeps the memory registered until the
 *   provider has returned every operation it posted, so nothing lands in
 *   memory that was deregistered or unmapped; reuse the affected range only
 *   for a new transfer, whose success event vouches for its bytes.
 */
#ifndef KVFERRY_H
#define KVFERRY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVF_API __attribute__((visibility("default")))

/* The error codes. 0 is success. */
enum kvf_err {
	KVF_OK = 0,
	KVF_EINVAL,    /* bad argument */
	KVF_ENOMEM,    /* out of memory */
	KVF_ENOENT,    /* unknown region, peer, engine or object */
	KVF_ERANGE,    /* offset or length outside a region */
	KVF_ETIMEDOUT, /* deadline passed */
	KVF_ECLOSED,   /* the sidecar (or the engine session) is gone */
	KVF_EPROTO,    /* malformed or oversized message */
	KVF_EVERSION,  /* incompatible protocol version */
	KVF_EPEER,     /* the remote sidecar failed or is unreachable */
	KVF_EFABRIC,   /* libfabric reported an error */
	KVF_ECUDA,     /* CUDA reported an error */
	KVF_EBUSY,     /* resource in use, or the sidecar is draining */
	KVF_ECANCELED, /* cancelled by the engine */
	KVF_EAGAIN,    /* a queue is full; try again after polling events */
	KVF_ESYSTEM,   /* an operating-system call failed */
	KVF_EEXIST,    /* already exists (second sidecar on a socket, ...) */
	KVF_EPERM,     /* not allowed (credentials, authentication) */
	KVF_EIO,       /* I/O error on a file */
	KVF_ENOSPC,    /* no space left for a stored object */
	KVF_ECORRUPT,  /* a checksum or header did not verify */
	KVF_ENOTSUP,   /* not supported by this build, provider or memory */
	KVF_ECONFIG,   /* bad configuration value */
	KVF_ERR_COUNT
};

/* Names an error code; never returns NULL. */
KVF_API const char *kvf_strerror(int err);

/*
 * The message that came with the calling thread's last failed call (from
 * the sidecar or the library): what was wrong and which ids were involved.
 * Valid until the thread's next kvf_ call.
 */
KVF_API const char *kvf_last_error(void);

typedef struct kvf_client kvf_client;
typedef uint32_t kvf_region;
typedef uint32_t kvf_peer;
typedef uint64_t kvf_xfer;

/*
 * A KV layout: block b of layer l starts at
 * offset + l * layer_stride + b * block_stride and is block_bytes long.
 * A transfer that names blocks moves every layer of each block.
 */
struct kvf_layout {
	uint32_t num_layers;
	uint32_t num_blocks;
	uint64_t block_bytes;
	uint64_t layer_stride;
	uint64_t block_stride;
	uint64_t offset;
};

struct kvf_connect_opts {
	/* The sidecar's engine socket; NULL: $KVFERRY_ENGINE_SOCKET, then
	 * /run/kvferry/engine.sock. */
	const char *socket_path;
	/* How long control calls wait for the sidecar (ms); 0: 5000. */
	uint32_t timeout_ms;
	/* Bytes of each shared-memory ring; 0: 1 MiB. */
	uint32_t ring_bytes;
};

/*
 * Connect to the local sidecar as engine_name (unique per sidecar,
 * at most 63 bytes). Blocks up to the timeout. On success *out owns the
 * connection; release it with kvf_close. KVF_EINVAL also when
 * $KVFERRY_WAIT_SPIN_US (see kvf_wait) is not a number in 0..10000 or
 * "auto".
 */
KVF_API int kvf_connect(const char *engine_name,
                        const struct kvf_connect_opts *opts, kvf_client **out);

/*
 * Deregister everything and disconnect. Transfers still in flight end with
 * KVF_ECLOSED on the sidecar side. Accepts NULL.
 */
KVF_API void kvf_close(kvf_client *c);

/*
 * Allocate len bytes of host memory the sidecar can reach (shared memory,
 * registered with the fabric) and register it as a region. layout may be
 * NULL. *ptr is the engine's mapping; kvf_free_region unmaps it.
 */
KVF_API int kvf_alloc_host(kvf_client *c, size_t len,
                           const struct kvf_layout *layout, void **ptr,
                           kvf_region *out);

/*
 * Register len bytes of CUDA device memory at dptr (anywhere inside a
 * cudaMalloc allocation, e.g. a caching-allocator pool). The sidecar imports
 * it by CUDA IPC. KVF_ENOTSUP in a build without CUDA, or for memory that
 * cannot be exported (the message says why).
 */
KVF_API int kvf_register_cuda(kvf_client *c, void *dptr, size_t len,
                              const struct kvf_layout *layout,
                              kvf_region *out);

/*
 * Deregister a region (and unmap it if kvf_alloc_host made it). Transfers
 * submitted after this returns are refused with KVF_ENOENT. Peer sidecars
 * this sidecar exchanged handshakes with are told at once and refuse
 * transfers into it from then on; the sidecar keeps a host region
 * registered 2 s for writes already on their way, which land in memory no
 * engine reads (GPU memory is let go at once: it may be registered again).
 * Free a region only when no peer should still write into it.
 */
KVF_API int kvf_free_region(kvf_client *c, kvf_region region);

/*
 * Resolve a remote engine: the remote sidecar's peer URL
 * (tcp://host:port) and the engine's name. The sidecars handshake once and
 * cache the result. Blocks up to timeout_ms (0: the connection's timeout);
 * KVF_EPEER or KVF_ETIMEDOUT when the peer is not there, KVF_ENOENT when
 * the remote sidecar has no such engine.
 */
KVF_API int kvf_resolve_peer(kvf_client *c, const char *sidecar_url,
                             const char *engine_name, uint32_t timeout_ms,
                             kvf_peer *out);

enum kvf_op {
	KVF_WRITE = 1, /* local -> remote (push) */
	KVF_READ = 2,  /* remote -> local (pull) */
};

/* One piece of a transfer, in bytes. */
struct kvf_seg {
	kvf_region local_region;
	kvf_region remote_region;
	uint64_t local_offset;
	uint64_t remote_offset;
	uint64_t length;
};

#define KVF_MAX_TAG 192
#define KVF_MAX_NAME 64

struct kvf_xfer_opts {
	/* Delivered to the remote engine as a KVF_EV_NOTIF event once all
	 * the transfer's bytes are in place; tag_len 0: no notification. */
	const void *tag;
	uint32_t tag_len;
	/* Deadline in ms from submission; 0: the sidecar's default. */
	uint32_t timeout_ms;
	/* A cudaEvent_t (created with cudaEventInterprocess) the sidecar
	 * waits for before it reads the local memory; NULL: none. */
	void *cuda_event;
};

/*
 * Submit a transfer of nseg byte segments to or from peer. Segments are
 * copied; the call does not wait for the network and makes no system call
 * while the sidecar is busy. KVF_EAGAIN when the ring is full: poll events
 * and retry. opts may be NULL.
 */
KVF_API int kvf_submit(kvf_client *c, enum kvf_op op, kvf_peer peer,
                       const struct kvf_seg *segs, uint32_t nseg,
                       const struct kvf_xfer_opts *opts, kvf_xfer *out);

/*
 * Submit a transfer of whole KV blocks, every layer of each: local block
 * local_blocks[i] <-> remote block remote_blocks[i]. Both regions need a
 * layout with equal block_bytes and num_layers.
 */
KVF_API int kvf_submit_blocks(kvf_client *c, enum kvf_op op, kvf_peer peer,
                              kvf_region local_region,
                              kvf_region remote_region,
                              const uint32_t *local_blocks,
                              const uint32_t *remote_blocks, uint32_t nblocks,
                              const struct kvf_xfer_opts *opts,
                              kvf_xfer *out);

/*
 * Ask the sidecar to cancel a transfer. Its KVF_EV_XFER_DONE event still
 * comes, with KVF_ECANCELED unless it had already finished.
 */
KVF_API int kvf_cancel(kvf_client *c, kvf_xfer xfer);

enum kvf_event_type {
	KVF_EV_XFER_DONE = 1, /* a transfer of ours ended */
	KVF_EV_NOTIF = 2,     /* a remote engine's transfer to us landed */
};

struct kvf_event {
	enum kvf_event_type type;
	int status;    /* XFER_DONE: 0 or a KVF_E* code */
	kvf_xfer xfer; /* XFER_DONE: the id kvf_submit returned */
	uint64_t bytes;
	uint32_t tag_len; /* NOTIF: the tag the remote engine sent */
	uint8_t tag[KVF_MAX_TAG];
	char peer_engine[KVF_MAX_NAME]; /* NOTIF: the remote engine's name */
	/* XFER_DONE with an error: what failed (segment, region, peer). */
	char message[160];
};

/* Take up to max events without blocking; *n gets the count. */
KVF_API int kvf_poll(kvf_client *c, struct kvf_event *evs, int max, int *n);

/*
 * Take up to max events, waiting up to timeout_ms (-1: forever) for the
 * first one. *n is 0 on timeout. KVF_ECLOSED when the sidecar is gone.
 * Before it sleeps, a wait spins up to $KVFERRY_WAIT_SPIN_US microseconds
 * (read by kvf_connect; default 50, 0: never). "auto" spins only while
 * earlier waits on this client showed that spinning shortens them: where
 * cores are short, a spinning engine delays the sidecars it waits for.
 */
KVF_API int kvf_wait(kvf_client *c, struct kvf_event *evs, int max,
                     int timeout_ms, int *n);

/*
 * The storage tier: a sidecar started with --store-dir keeps KV objects in
 * files of a local directory, up to --store-capacity bytes (least recently
 * used objects are evicted to make room). A save copies memory into a
 * named object, replacing an object of that name once it is complete; a
 * load copies an object back into memory, verifying every block's
 * checksum. Like transfers, each accepted save or load yields exactly one
 * KVF_EV_XFER_DONE event with the returned id and 0 or the error in its
 * status and message: KVF_ENOENT (no such object), KVF_ECORRUPT (a block
 * or header did not verify; the memory then holds what the file held),
 * KVF_EINVAL (layout or size mismatch, bad name: names are 1..200 bytes
 * of printable ASCII without '/', not starting with '.'), KVF_ENOSPC,
 * KVF_EIO, KVF_ENOTSUP (the sidecar has no storage directory). The
 * memory must not be touched until the event. GPU regions are staged
 * through the sidecar's pinned host buffers (at most 1 GiB of staging
 * per request: larger ones get KVF_ENOSPC, split them); a load into GPU
 * memory writes it only after every checksum verified. Storage requests
 * do not wait for CUDA events: synchronise the engine's GPU work first.
 *
 * opts may be NULL; storage requests carry no tag or CUDA event
 * (KVF_EINVAL when given) and have no deadline: they end when the disk
 * is done. KVF_EAGAIN when the submission ring is full.
 */

/*
 * Save blocks[0..nblocks) of region (every layer of each block of the
 * region's layout) as object name. The region needs a layout.
 */
KVF_API int kvf_save_blocks(kvf_client *c, kvf_region region,
                            const uint32_t *blocks, uint32_t nblocks,
                            const char *name,
                            const struct kvf_xfer_opts *opts, kvf_xfer *out);

/*
 * Load object name into blocks[0..nblocks) of region. The object must
 * hold nblocks blocks saved from a layout with the same num_layers and
 * block_bytes (the number of blocks, strides and offset may differ);
 * otherwise KVF_EINVAL naming both layouts.
 */
KVF_API int kvf_load_blocks(kvf_client *c, kvf_region region,
                            const uint32_t *blocks, uint32_t nblocks,
                            const char *name,
                            const struct kvf_xfer_opts *opts, kvf_xfer *out);

/*
 * Byte-range forms: n ranges of length bytes each, at offsets[i] in
 * region (any region, with or without a layout). A load needs an object
 * of n ranges of that length.
 */
KVF_API int kvf_save_bytes(kvf_client *c, kvf_region region,
                           const uint64_t *offsets, uint32_t n,
                           uint64_t length, const char *name,
                           const struct kvf_xfer_opts *opts, kvf_xfer *out);
KVF_API int kvf_load_bytes(kvf_client *c, kvf_region region,
                           const uint64_t *offsets, uint32_t n,
                           uint64_t length, const char *name,
                           const struct kvf_xfer_opts *opts, kvf_xfer *out);

#ifdef __cplusplus
}
#endif

#endif
