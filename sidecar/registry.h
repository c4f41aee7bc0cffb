/*
 * sidecar/registry.h - the sidecar's tables: engine sessions, their
 * registered regions, and the remote engines (peers) resolved by them,
 * under one lock. Control threads (engine and peer servers) add and remove
 * entries; the progress thread looks them up in its own copy
 * (sidecar/xfer_view.c), taken under the lock when generation moves.
 *
 * Lifetimes: regions and sessions are reference-counted. A transfer holds a
 * reference on every local region it touches, so a region deregistered (or
 * an engine that died) while RDMA is in flight stays mapped and registered
 * until the provider has completed every operation on it.
 */
#ifndef KVF_SIDECAR_REGISTRY_H
#define KVF_SIDECAR_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "ipc/cuda_ipc.h"
#include "ipc/ring.h"
#include "ipc/shm.h"
#include "sidecar/idmap.h"

struct sc_daemon;
struct xfer_mr;

/* Rails a sidecar can drive (sidecar/daemon.h says the same). */
#define SC_RAILS 32

/* A region's registration on one rail (rail 0's is also in mr/desc/key). */
struct sc_region_rail {
	struct xfer_mr *mr;
	void *desc;
	uint64_t key;
};

struct sc_region {
	uint32_t id;
	_Atomic int refs;
	uint64_t session_id; /* the engine session that registered it */
	uint32_t kind;       /* enum xfer_mem */
	uint8_t *base;       /* the sidecar's address of byte 0 */
	uint64_t len;
	bool has_layout;
	struct kvf_layout layout;
	struct xfer_mr *mr;
	void *desc;
	uint64_t key;
	uint64_t remote_base;
	/* Every rail's registration ([0] is mr/desc/key again) and the rails
	 * nearest the memory (GPU memory: its GPU's NICs; host: all). */
	struct sc_region_rail rail[SC_RAILS];
	uint32_t nrails;
	uint32_t rail_mask;
	struct ipc_shm shm; /* host regions: the engine's shared memory */
	void *cuda;         /* CUDA regions: the import (xfer/cuda.h) */
	void (*cuda_close)(void *cuda);
	int cuda_device;             /* the sidecar's ordinal */
	struct ipc_cuda_mem cuda_mem; /* what the engine exported */
	struct sc_daemon *d;
};

/* A completion the engine's ring had no room for yet. */
struct sc_pending_comp {
	uint32_t type;
	uint32_t len;
	struct sc_pending_comp *next;
	uint64_t data[]; /* the record */
};

struct sc_session {
	uint64_t id;
	char name[KVF_MAX_NAME];
	uint32_t pid;
	uint32_t pipe_id;
	_Atomic int refs;
	_Atomic int closing; /* goodbye or engine gone: the progress thread
	                        fails its work and drops it */
	struct ipc_shm shm;
	struct ipc_ring sub;  /* the progress thread consumes */
	struct ipc_ring comp; /* the progress thread produces */
	/* Progress thread only. */
	struct sc_pending_comp *pending_head, *pending_tail;
	uint32_t inflight;
	bool ring_broken;
	uint64_t regions_count; /* under the registry lock */
};

struct sc_remote_region {
	uint32_t id;
	uint32_t kind;
	uint64_t len;
	uint64_t addr; /* what goes into fi_write's addr for offset 0 */
	uint64_t key;
	/* The key on each rail the peer shares with us ([0] == key). */
	uint64_t rail_key[SC_RAILS];
	bool has_layout;
	struct kvf_layout layout;
	/* Same-host CUDA regions: our import of the remote engine's memory,
	 * so the progress thread copies GPU to GPU directly. */
	uint8_t *dptr;
	int cuda_device;
	void *import; /* struct sc_cuda_ref, released with the array */
	/* Its engine freed it (the peer told us, sidecar/xfer_gone.c):
	 * transfers into it are refused. */
	bool gone;
};

struct sc_peer {
	uint32_t id;
	char url[256];
	char engine[KVF_MAX_NAME];
	char sidecar_id[40];
	char host_id[80];
	char provider[64];
	uint64_t epoch;
	uint64_t remote_session;
	uint64_t fi_addr;
	/* Rails used with this peer: our rail i talks to its rail i, for i
	 * below the smaller of the two rail counts ([0] == fi_addr). */
	uint64_t rail_fi_addr[SC_RAILS];
	uint32_t nrails;
	/* The largest inline WRITE message it takes (0: none). */
	uint32_t inline_msg_max;
	/* When the progress thread last sent it a wake-up (its only). */
	uint64_t wake_sent_ns;
	struct sc_remote_region *regions; /* replaced on each handshake */
	uint32_t nregions;
	/* Bumped (lock held) whenever a handshake changes the fields above;
	 * the progress thread's copy follows it (sidecar/xfer_view.c). */
	uint64_t version;
	bool same_host;
	int near_dev; /* GPU our same-host imports of it are mapped on */
	/* Health (heartbeats, transfers). */
	_Atomic uint64_t bytes;
	_Atomic uint64_t errors;
	_Atomic uint64_t rtt_ns;
	_Atomic int healthy;
	uint64_t last_ok_ns;
	uint32_t misses; /* heartbeat thread only */
};

struct sc_registry {
	pthread_mutex_t lock;
	struct sc_idmap sessions; /* id -> sc_session */
	struct sc_idmap regions;  /* id -> sc_region */
	struct sc_idmap peers;    /* id -> sc_peer */
	struct sc_idmap fabaddrs; /* hash(sidecar id, epoch ^ rail << 56) ->
	                           * that rail's fi_addr + 1 */
	/* hash(sidecar id, epoch) -> rail 0 fi_addr + 1: every sidecar run
	 * we exchanged a handshake with (the src_key of its messages). */
	struct sc_idmap rail0_addrs;
	uint64_t next_session;
	uint32_t next_region;
	uint32_t next_peer;
	/* Bumped (sc_xfers_registry_changed) after every change to
	 * sessions, regions, peers or fabaddrs: the progress thread works
	 * from a copy of them (sidecar/xfer_view.c), taken again when this
	 * moves, so its lookups take no lock. */
	_Atomic uint64_t generation;
	/* Bumped whenever a peer's health changes, so the progress thread
	 * fails transfers to a dead peer at once. */
	_Atomic uint64_t peer_generation;
};

int sc_registry_init(struct sc_registry *r);
void sc_registry_fini(struct sc_registry *r);

/* Session references. sc_session_rele frees the session (unmaps its
 * rings) when the last reference goes. */
void sc_session_hold(struct sc_session *s);
void sc_session_rele(struct sc_session *s);

/* Region references; the last one closes the MR and unmaps. */
void sc_region_hold(struct sc_region *r);
void sc_region_rele(struct sc_region *r);

/* Find a session by engine name (caller holds the lock). */
struct sc_session *sc_registry_session_by_name(struct sc_registry *r,
                                               const char *name);

/* 64-bit hash of a string, for keys built from names. */
uint64_t sc_hash_str(const char *s, uint64_t seed);

#endif
