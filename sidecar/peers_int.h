/*
 * sidecar/peers_int.h - the peer module's private state and the functions
 * its files share: sidecar/peers.c (start and stop), peer_server.c (the
 * handshake server), peer_resolve.c (the resolving client), peer_health.c
 * (heartbeats) and peer_addrs.c (fabric addresses of remote sidecars).
 */
#ifndef KVF_SIDECAR_PEERS_INT_H
#define KVF_SIDECAR_PEERS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "proto/peer.pb-c.h"
#include "sidecar/peers.h"

struct hb_target;
struct sc_auth;
struct sc_daemon;
struct sc_rep_server;

struct sc_peers {
	struct sc_daemon *d;
	struct sc_rep_server *srv;
	pthread_mutex_t resolve_lock; /* one peer entry per url+engine */
	struct sc_auth *auth; /* NULL: no --secret-file */
	pthread_t hb_thread;
	bool hb_running;
	pthread_mutex_t hb_lock;
	pthread_cond_t hb_cond;
	bool hb_stop;
	struct hb_target *targets;
	size_t ntargets;
};

/* Answer one request of another sidecar (a rep worker of the peer URL). */
nng_msg *sc_peer_handle(void *arg, nng_msg *req, nng_pipe pipe);

/* Start the heartbeat thread, when heartbeat_ms is set (main thread). */
void sc_peer_health_start(struct sc_peers *p);

/* Join the heartbeat thread and close its sockets (main thread). */
void sc_peer_health_stop(struct sc_peers *p);

/* Our rails' endpoint addresses for a handshake; returns how many. */
size_t sc_peer_rail_addrs(struct sc_daemon *d, ProtobufCBinaryData *bufs);

/* The rails usable with a remote sidecar, or KVF_EPROTO on a bad address. */
int sc_peer_rails_with(struct sc_daemon *d, size_t naddrs,
                       const ProtobufCBinaryData *addrs, uint32_t *n);

/* A remote sidecar run's fi_addr on a rail, inserted once (registry lock). */
int sc_peer_fabric_addr(struct sc_daemon *d, uint32_t rail,
                        const char *sidecar_id, uint64_t epoch,
                        const ProtobufCBinaryData *addr, uint64_t *fi_addr,
                        char *err, size_t errlen);

#endif
