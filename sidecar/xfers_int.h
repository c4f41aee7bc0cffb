/*
 * sidecar/xfers_int.h - the progress thread's private state and functions,
 * shared by the files of the host-memory RDMA path (sidecar/xfers.c, the
 * loop; xfer_view.c, xfer_accept.c, xfer_railpick.c, xfer_post.c,
 * xfer_reap.c, xfer_tail.c, xfer_report.c, xfer_deadline.c,
 * xfer_watch.c, xfer_snapshot.c) and by the GPU path's files, sidecar/gpu_*.c (GPU
 * memory: staged through pinned host buffers, or copied on the same host;
 * their own shared state is in sidecar/gpu_path_int.h). Everything here is
 * touched by the progress thread only, unless its comment says otherwise.
 */
#ifndef KVF_SIDECAR_XFERS_INT_H
#define KVF_SIDECAR_XFERS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ipc/doorbell.h"
#include "ipc/shm.h"
#include "ipc/wire.h"
#include "sidecar/idmap.h"
#include "sidecar/plan.h"
#include "sidecar/rails.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

struct sc_gpu;
struct sc_gpu_xfer;

#define CTX_POOL 4096u
/* Operations one extra rail may hold at once (its queue depth). */
#define RAIL_DEPTH 1024u
#define RING_BUDGET 64
#define COMP_BATCH 64
#define SPIN_TURNS 4000
#define REC_MAX (IPC_RING_MAX_BYTES / 2)
/* How long a sent notification may take to be confirmed past the
 * transfer's deadline before the transfer ends with KVF_EPEER. */
#define NOTIFY_GRACE_NS 500000000ull
/* Without a CQ wait fd (shm, efa) an idle progress thread polls at least
 * this often (microseconds): such providers move one-sided traffic aimed
 * at us (reads of our memory, small writes into it) only while we poll,
 * and nothing tells us it is coming. */
#define IDLE_POLL_MAX_US 20

/* What a fabric context belongs to (struct xfer_ctx.kind). */
enum {
	CTX_OP = 1,     /* an RDMA operation of a host transfer */
	CTX_NOTIFY = 2, /* the notification message of a transfer */
	CTX_GPU = 3,    /* something of sidecar/gpu_*.c */
	CTX_FENCE = 4,  /* the delivery check that ends a WRITE */
	CTX_RFENCE = 5, /* the same on a rail other than 0, before notifying */
	CTX_CTL = 6,    /* an answer or wake-up we sent: nothing waits */
};

struct sc_inline_pending;
struct sc_inline_asm;
struct sc_gone;

/* The keys of one remote region on every rail, for a multi-rail
 * transfer (copied at accept: the peer's table may be replaced). */
struct sc_rkeys {
	uint32_t region;
	uint64_t key[SC_RAILS];
};

struct sc_xfer {
	uint64_t xfer_id;
	struct sc_session *sess;
	uint32_t peer_id;
	struct sc_peer *peer; /* peers live as long as the registry */
	uint64_t fi_addr;
	uint64_t remote_session;
	uint64_t remote_epoch;
	uint8_t op;
	struct sc_plan plan;
	uint32_t next_post;
	uint32_t inflight;
	int status;
	bool notify_sent;
	bool reported; /* its completion went to the engine already */
	char msg[IPC_MSG_MAX];
	uint64_t deadline_ns;
	uint64_t start_ns;
	uint16_t tag_len;
	uint8_t tag[KVF_MAX_TAG];
	bool same_host;          /* the peer runs on this host */
	struct sc_gpu_xfer *gpu; /* set when GPU memory is involved */
	bool fence_sent;
	/* Its bytes travel inside the notification (xfer_inline.c), whose
	 * answer it waits for (counted in inflight) under this number. */
	bool inlined;
	bool ack_wait;
	uint64_t inline_seq;
	uint64_t inline_cookie;
	uint16_t inline_part; /* parts posted so far, when sent in parts */
	/* Rails: those it may use, the one a small transfer sticks to,
	 * whether its operations are spread, which rails carried writes
	 * (each needs its own delivery check), which checks are still to
	 * post, and the peer's address on each rail. */
	uint32_t nrails;
	uint32_t rail_mask;
	uint32_t rail;
	bool striped;
	uint32_t rails_used;
	uint32_t rfence_todo;
	bool rfence_init;
	uint64_t rail_fi[SC_RAILS];
	struct sc_rkeys *rkeys;
	uint32_t nrkeys;
	struct sc_region *lreg_hit; /* last local region found for an op */
	uint64_t assigned; /* bytes counted on rail, not yet posted */
	struct xfer_ctx fence_ctx;
	struct xfer_ctx notify_ctx;
	struct sc_notify_msg notify;
	struct sc_xfer *prev, *next; /* the active list */
};

/* A peer as the progress thread plans with it (sidecar/xfer_view.c). */
struct sc_view_peer {
	struct sc_peer *shared; /* the registry's: health, statistics */
	struct sc_peer snap;    /* addresses, rails, inline size, regions */
	uint64_t version;       /* shared->version when copied */
};

/* The registry's tables as of generation, copied (sidecar/xfer_view.c). */
struct sc_view {
	uint64_t generation;
	struct sc_idmap sessions; /* id -> sc_session, held */
	struct sc_idmap regions;  /* id -> sc_region, held */
	struct sc_idmap peers;    /* id -> sc_view_peer */
	struct sc_idmap fabaddrs; /* src key -> rail 0 fi_addr + 1 */
};

/* Per-session state private to the progress thread. */
struct sess_slot {
	struct sc_session *s;
	struct sc_idmap xfers; /* xfer id -> sc_xfer */
	bool dropped;
};

struct sc_xfers {
	struct sc_daemon *d;
	struct sc_registry reg;
	struct xfer_fabric *fab;
	struct sc_gpu *gpu; /* sidecar/gpu_pool.c */
	uint8_t *fence_buf;       /* where delivery checks read into */
	struct xfer_mr *fence_mr;
	uint64_t max_op;
	uint32_t tx_limit;

	/* Rails: rail 0 is x->fab, driven here; the others by their own
	 * threads (sidecar/rails.c). Per rail: operations handed over and
	 * not reaped, the most allowed, bytes in flight (to pick the least
	 * busy), bytes posted in all (kvferryctl, metrics), the delivery
	 * check's registration. */
	uint32_t nrails;
	struct xfer_fabric *rail_fab[SC_RAILS];
	struct sc_rail *rail_thr[SC_RAILS];
	uint32_t rail_ops[SC_RAILS];
	uint32_t rail_cap[SC_RAILS];
	uint64_t rail_busy[SC_RAILS];
	_Atomic uint64_t rail_bytes[SC_RAILS];
	struct xfer_mr *rail_fence_mr[SC_RAILS];
	bool rail_kick[SC_RAILS];
	uint64_t stripe_min;
	uint64_t stripe_chunk;
	uint64_t inline_max; /* --inline-max: 0 = no inline writes */
	uint64_t inline_seq;
	uint64_t cookie_key; /* random per run: inline answers' cookies */
	uint64_t src_key;    /* names our rail 0 address at peers */
	struct sc_inline_asm *asms; /* parts received, being assembled */
	/* Answers to peers' inline writes that found the queue full. */
	struct sc_inline_pending *acks, *acks_tail;
	struct xfer_ctx ctl_ctx; /* kind CTX_CTL */
	/* Regions that went, oldest first: held a while, peers told. */
	struct sc_gone *gone_head, *gone_tail;
	/* Until when a peer's wake-up keeps us polling (xfer_wake.c); the
	 * rail threads read it too. */
	_Atomic uint64_t hot_until_ns;
	uint8_t *ctx_rail;  /* per context: the rail it went to */
	uint64_t *ctx_len;  /* and its bytes */

	struct ipc_shm bell_shm;
	struct ipc_doorbell *bell;

	pthread_t thread;
	pthread_t watcher;
	bool watcher_running;
	int epfd;
	int wait_fd;
	int watched[8]; /* more fds that wake us: wait_fd first */
	int nwatched;
	_Atomic int stop;

	/* Progress thread only. */
	struct sess_slot *slots;
	uint32_t nslots, capslots;
	struct sc_view view;
	uint64_t slots_generation; /* the view's, when slots were added */
	uint64_t seen_peer_generation;
	struct sc_xfer *active; /* transfers not yet finished, oldest first */
	struct sc_xfer *active_tail;
	struct xfer_ctx *ctxs;
	uint32_t *free_ctx;
	uint32_t nfree;
	uint8_t *recbuf;
	uint64_t turn_ns; /* CLOCK_MONOTONIC when the current turn began */
	uint64_t last_deadline_check;

	/* kvferryctl xfers: a reader asks, the progress thread answers. */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cond;
	_Atomic int snap_wanted;
	uint64_t snap_seq;
	struct sc_xfer_info *snap;
	size_t nsnap;
};


/* ---- sidecar/xfer_view.c: the registry, read without its lock ---- */

void sc_view_init(struct sc_xfers *x);
/* Copy the registry again if it changed since the view was taken;
 * whether it did. Progress thread; takes the registry lock only then. */
bool sc_view_sync(struct sc_xfers *x);
/* Lookups, no lock; NULL (0) when absent. Call sc_view_sync once at the
 * start of the operation, not between its lookups: what they return is
 * valid until the next sync (hold it to keep it longer). */
struct sc_session *sc_view_session(struct sc_xfers *x, uint64_t id);
/* Region id, if session_id registered it. */
struct sc_region *sc_view_region(struct sc_xfers *x, uint64_t session_id,
                                 uint32_t id);
struct sc_view_peer *sc_view_peer(struct sc_xfers *x, uint32_t id);
/* The fi_addr + 1 of the sidecar whose rail 0 address src_key names. */
uint64_t sc_view_fabaddr(struct sc_xfers *x, uint64_t src_key);
void sc_view_fini(struct sc_xfers *x);

/* ---- sidecar/xfer_gone.c: telling peers that a region went ---- */

/* r left the view (its engine freed it or is gone): every sidecar we
 * exchanged a handshake with is told, and r (our reference, taken over)
 * stays registered a grace period for writes already on their way. */
void sc_gone_region(struct sc_xfers *x, struct sc_region *r);
/* Post the messages that wait; let go of regions past their grace; how
 * many were posted. Each turn. */
int sc_gone_flush(struct sc_xfers *x, uint64_t now);
/* A peer's region went: mark it in that peer's table. */
void sc_gone_received(struct sc_xfers *x, const void *data, size_t len);
/* Let go of every region still held (shutdown). */
void sc_gone_fini(struct sc_xfers *x);

/* ---- sidecar/xfer_report.c: what the engine is told ---- */

/* Put one record on s's completion ring, or queue it behind the records
 * already waiting when the ring is full; dropped once s is closing. */
void sc_comp_put(struct sc_session *s, uint32_t type, const void *rec,
                 uint32_t len);
/* Move s's waiting records onto its ring while they fit; how many moved. */
int sc_comp_flush(struct sc_session *s);
/* The completion record of request xfer_id (msg may be NULL). */
void sc_comp_report(struct sc_session *s, uint64_t xfer_id, int status,
                    uint64_t bytes, const char *msg);
/* Fail the transfer with status and a message; only the first error
 * counts. */
void sc_xfer_fail(struct sc_xfer *t, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Report the transfer's end to its engine now (once). */
void sc_xfer_report_now(struct sc_xfers *x, struct sc_xfer *t);

/* ---- sidecar/xfer_inline.c: WRITEs carried inside their notification */

/* Whether planned transfer t goes inline to peer (its view copy). */
bool sc_inline_fits(const struct sc_xfers *x, const struct sc_xfer *t,
                    const struct sc_peer *peer);
/* Post t's one message (it replaces its operations and notification):
 * 0, KVF_EAGAIN (post again on a later turn), or an error t now has. */
int sc_inline_post(struct sc_xfers *x, struct sc_xfer *t);
/* The target: check and apply one received inline message, notify the
 * engine, answer the sender; refused messages are dropped whole, logged
 * and answered with the reason. */
void sc_inline_deliver(struct sc_xfers *x, const void *data, size_t len);
/* The sender: a target's answer ends the transfer it names. */
void sc_inline_on_ack(struct sc_xfers *x, const void *data, size_t len);
/* Stop waiting for t's answer (deadline, dead peer, closed session, the
 * message failed to go). */
void sc_inline_forget_ack(struct sc_xfer *t);
/* Post the answers that found the queue full; each turn. */
void sc_inline_flush_acks(struct sc_xfers *x);
/* Free what is left at shutdown. */
void sc_inline_fini(struct sc_xfers *x);
/* sidecar/xfer_inline_parts.c: a part of an inline message arrived. */
void sc_inline_on_part(struct sc_xfers *x, const void *data, size_t len);
/* Drop assemblies whose parts stopped coming (their sender's transfer
 * ends unconfirmed); each deadline check. */
void sc_inline_parts_expire(struct sc_xfers *x, uint64_t now);
/* Free every assembly (shutdown). */
void sc_inline_parts_fini(struct sc_xfers *x);

/* ---- sidecar/xfer_wake.c: keeping a target's progress thread polling */

/* t has RDMA operations in flight to its peer: send the peer a wake-up
 * unless one went recently (providers with manual data progress only). */
void sc_wake_peer(struct sc_xfers *x, struct sc_xfer *t);
/* A peer's wake-up arrived: poll, do not sleep, for a while. */
void sc_wake_received(struct sc_xfers *x);
/* Whether a peer's wake-up still keeps us polling at now. */
bool sc_wake_hot(struct sc_xfers *x, uint64_t now);

/* ---- sidecar/xfer_tail.c: delivery checks, notification, the end ---- */

/* Decide what the transfer needs next once its in-flight count moved;
 * may finish (and free) it. */
void sc_xfer_advance(struct sc_xfers *x, struct sc_xfer *t);
/* Something of the transfer's tail (delivery check, notification) is
 * still to be posted. */
bool sc_xfer_tail_pending(struct sc_xfers *x, const struct sc_xfer *t);
/* The tail may go with the last write, before the writes complete
 * (ordered providers, rail 0 only). */
bool sc_xfer_tail_early(struct sc_xfers *x, const struct sc_xfer *t);
/* Drop the region references the plan holds. */
void sc_xfer_release_regions(struct sc_plan *p);

/* ---- sidecar/xfer_railpick.c: which rail an operation takes ---- */

/* At accept, from the view's copy of peer: the rails t may use with it,
 * the peer's address and t's remote keys on each. 0 or KVF_ENOMEM (err set). */
int sc_xfer_rails_of(struct sc_xfers *x, struct sc_xfer *t,
                     const struct sc_peer *peer, char *err, size_t errlen);
/* Whether t spreads over its rails or sticks to one (which one). */
void sc_xfer_pick_rails(struct sc_xfers *x, struct sc_xfer *t);
/* The least busy rail of mask with room for one more operation, or -1. */
int sc_least_busy_rail(const struct sc_xfers *x, uint32_t mask);
/* The key of op's remote region on a rail. */
uint64_t sc_xfer_op_rkey(const struct sc_xfer *t, const struct sc_op *op,
                         uint32_t rail);
/* Hand op to the thread of rail (> 0). 0, KVF_EAGAIN (its queue is full)
 * or KVF_EINVAL (no registration of the local memory on that rail). */
int sc_xfer_post_on_rail(struct sc_xfers *x, struct sc_xfer *t,
                         const struct sc_op *op, uint32_t rail,
                         struct xfer_ctx *ctx);
/* Wake the rail threads given operations since the last call. */
void sc_kick_rails(struct sc_xfers *x);

/* ---- the steps of a turn, in their order ---- */

/* sidecar/xfer_accept.c: take up to RING_BUDGET records off the session's
 * submission ring; how many were taken. */
int sc_drain_ring(struct sc_xfers *x, struct sess_slot *sl);
/* sidecar/xfer_post.c: post operations of the active transfers while
 * contexts and queue slots last; how many were posted. */
int sc_post_some(struct sc_xfers *x);
/* sidecar/xfer_reap.c: handle the completions of every rail; how many. */
int sc_poll_fabric(struct sc_xfers *x);
/* Also there: hand a notification from engine src_engine of a peer to
 * session s's engine (a completion record on its ring). */
void sc_xfers_notify_engine(struct sc_xfers *x, struct sc_session *s,
                            const char *src_engine, const uint8_t *tag,
                            uint16_t tag_len);
/* sidecar/xfer_snapshot.c: answer a pending kvferryctl xfers request. */
void sc_snapshot_answer(struct sc_xfers *x);
/* sidecar/xfer_deadline.c: end the transfers past their deadline, ... */
void sc_check_deadlines(struct sc_xfers *x, uint64_t now);
/* ... and those of peers the heartbeat thread declared dead. */
void sc_check_peers(struct sc_xfers *x);

/* ---- sidecar/xfers.c ---- */

/* The progress thread's slot of session s, or NULL. */
struct sess_slot *sc_slot_of(struct sc_xfers *x, struct sc_session *s);

/* ---- sidecar/xfer_watch.c: the watcher thread ---- */

/* The watcher thread's body (arg: the struct sc_xfers); runs until
 * x->stop. */
void *sc_watch_main(void *arg);
/* Re-arm the one-shot watches before the progress thread sleeps. */
void sc_arm_watcher(struct sc_xfers *x);

#endif
