/*
 * sidecar/xfers.h - the progress thread: it drains every engine's
 * submission ring, plans and posts the RDMA operations, reaps the fabric's
 * completions, sends notifications once a transfer's bytes are delivered,
 * enforces deadlines and writes exactly one completion per transfer.
 */
#ifndef KVF_SIDECAR_XFERS_H
#define KVF_SIDECAR_XFERS_H

#include <stdint.h>

#include "client/kvferry.h"

struct sc_daemon;

/* Create the registry and the doorbell, start the threads. 0 or KVF_E*. */
int sc_xfers_start(struct sc_daemon *d);
/* Stop the threads; transfers still in flight end with KVF_ECLOSED. */
void sc_xfers_stop(struct sc_daemon *d);

/* The shared-memory name of the sidecar-wide doorbell engines ring. */
const char *sc_xfers_doorbell_name(struct sc_daemon *d);

/* Wake the progress thread (a session was added or is closing). */
void sc_xfers_kick(struct sc_daemon *d);

/* A control thread changed the registry's sessions, regions, peers or
 * fabric addresses: the progress thread copies them again before its
 * next lookup (sidecar/xfer_view.c), and is woken to let go of what went.
 * With or without the registry lock held. */
void sc_xfers_registry_changed(struct sc_daemon *d);

struct sc_region;

/* Progress thread only: region id if engine session session_id
 * registered it, from the thread's own copy of the registry (no lock);
 * NULL if not. Valid until the thread's next lookup: hold it to keep it. */
struct sc_region *sc_xfers_region(struct sc_daemon *d, uint64_t session_id,
                                  uint32_t id);

struct sc_session;

/*
 * Progress thread only: end request xfer_id of session s (a storage
 * operation, say) with one completion record on the engine's ring.
 */
void sc_xfers_complete(struct sc_daemon *d, struct sc_session *s,
                       uint64_t xfer_id, int status, uint64_t bytes,
                       const char *msg);

/*
 * Progress thread only: also wake the progress thread when fd becomes
 * readable while it sleeps (e.g. a storage ring's eventfd). 0 or KVF_E*.
 */
int sc_xfers_watch_fd(struct sc_daemon *d, int fd);

/* Bytes of RDMA operations posted on a rail since start (any thread). */
uint64_t sc_xfers_rail_bytes(struct sc_daemon *d, uint32_t rail);

/* One in-flight transfer, as kvferryctl xfers shows it. */
struct sc_xfer_info {
	uint64_t xfer_id;
	char engine[KVF_MAX_NAME];
	uint32_t peer_id;
	uint8_t op; /* enum kvf_op */
	uint32_t ops_total;
	uint32_t ops_posted;
	uint32_t ops_inflight;
	uint64_t bytes;
	uint64_t age_ns;
	int status; /* 0 while healthy, else the error it will end with */
};

/*
 * Copy the transfers in flight (any thread; waits up to timeout_ms for the
 * progress thread). *out is malloc'ed, free it. 0, KVF_ETIMEDOUT or
 * KVF_ENOMEM.
 */
int sc_xfers_snapshot(struct sc_daemon *d, struct sc_xfer_info **out,
                      size_t *n, int timeout_ms);

/* The notification message one sidecar sends another over the fabric
 * once every byte of a transfer is delivered. */
#define SC_NOTIFY_MAGIC 0x6b76666eu /* "kvfn" */
#define SC_NOTIFY_VERSION 1u

struct sc_notify_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t tag_len;
	uint64_t target_session;
	uint64_t target_epoch;
	char src_engine[KVF_MAX_NAME];
	uint8_t tag[KVF_MAX_TAG];
};

/*
 * A small WRITE carried inside its notification (sidecar/xfer_inline.c):
 * the header, nsegs segments, then their bytes in segment order. Each
 * segment names what an RDMA write would (the remote address and key of
 * rail 0) plus the region id; the target checks all of them against its
 * own registrations before it copies a byte, then answers with an
 * sc_inline_ack to the sender's address (src_key, as in its handshake).
 */
#define SC_INLINE_MAGIC 0x6b766669u /* "kvfi" */
#define SC_INLINE_ACK_MAGIC 0x6b766661u /* "kvfa" */
#define SC_INLINE_VERSION 1u
/* Most segments one inline message carries. */
#define SC_INLINE_SEGS 64u

struct sc_inline_seg {
	uint64_t raddr;
	uint64_t rkey;
	uint32_t region;
	uint32_t len;
};

struct sc_inline_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t tag_len; /* 0: no notification for the engine */
	uint64_t target_session;
	uint64_t target_epoch;
	char src_engine[KVF_MAX_NAME];
	uint32_t nsegs;
	uint32_t bytes;
	/* Where the answer goes, and what it names: the sender's address
	 * key, its engine session, the transfer and a sequence number. */
	uint64_t src_key;
	uint64_t src_session;
	uint64_t xfer_id;
	uint64_t seq;
	/* Unguessable (derived from a per-run random key): the answer must
	 * echo it, so a host that can reach our endpoint but not read our
	 * traffic cannot complete the transfer with a forged answer. */
	uint64_t cookie;
	uint8_t tag[KVF_MAX_TAG];
};

/*
 * A region went (sidecar/xfer_gone.c): the sender's engine session freed
 * it, or the engine is gone. The receiver refuses transfers into it.
 */
#define SC_GONE_MAGIC 0x6b766667u /* "kvfg" */

struct sc_gone_msg {
	uint32_t magic;
	uint32_t version; /* SC_INLINE_VERSION */
	uint64_t src_key; /* the sender's rail 0 address key */
	uint64_t session; /* the engine session that had the region */
	uint32_t region;
	uint32_t pad;
};

/*
 * A wake-up (sidecar/xfer_wake.c): the sender has RDMA operations in
 * flight to us, and on providers with manual data progress (tcp, shm)
 * their bytes move only while our progress thread polls.
 */
#define SC_WAKE_MAGIC 0x6b766677u /* "kvfw" */

struct sc_wake_msg {
	uint32_t magic;
	uint32_t version; /* SC_INLINE_VERSION */
};

/*
 * An inline message sent in parts, where the provider moves messages up
 * to its inject size much faster than larger ones (shm: 4 KiB, above
 * which it copies across processes and answers): each part is this
 * header and len bytes of the whole message at offset; the target
 * assembles the whole (sidecar/xfer_inline_parts.c), in any order.
 */
#define SC_INLINE_PART_MAGIC 0x6b766670u /* "kvfp" */
/* Most parts of one message. */
#define SC_INLINE_PARTS 4u

struct sc_inline_part {
	uint32_t magic;
	uint16_t version;
	uint16_t index;  /* 0..nparts-1 */
	uint16_t nparts;
	uint16_t reserved;
	uint32_t len;    /* bytes of the whole message in this part */
	uint32_t offset; /* where they go in it */
	uint32_t total;  /* the whole message's length */
	uint64_t src_key;
	uint64_t seq;    /* the whole message's */
};

/* The target's answer: status 0 once the bytes are in the region and the
 * engine is notified, else a KVF_E* code and why. */
struct sc_inline_ack {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved;
	int32_t status;
	uint32_t reserved2;
	uint64_t src_session;
	uint64_t xfer_id;
	uint64_t seq;
	uint64_t cookie; /* the message's */
	char msg[200];
};

/* The receive slot that holds an inline message of inline_max bytes in
 * SC_INLINE_SEGS segments; 0 when inline_max is 0. */
#define SC_INLINE_MSG_SIZE(inline_max)                                  \
	((inline_max) ? sizeof(struct sc_inline_msg) +                   \
	                SC_INLINE_SEGS * sizeof(struct sc_inline_seg) +  \
	                (size_t)(inline_max)                             \
	              : 0)

#endif
