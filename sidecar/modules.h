/*
 * sidecar/modules.h - the daemon's three activity modules: transfers
 * (sidecar/xfers.c), peers (sidecar/peers.c) and engine sessions
 * (sidecar/engines.c).
 *
 * sc_daemon_start calls the start functions in the order xfers, peers,
 * engines, once the engine, peer and control sockets listen and the fabric
 * is open; sc_daemon_stop calls the stop functions in reverse order before
 * it closes the sockets. Each start returns 0 or a KVF_E* code and logs
 * its reason; each stop accepts a module that never started or failed half
 * way. Both run on the main thread.
 */
#ifndef KVF_SIDECAR_MODULES_H
#define KVF_SIDECAR_MODULES_H

struct sc_daemon;

int sc_xfers_start(struct sc_daemon *d);
void sc_xfers_stop(struct sc_daemon *d);

int sc_peers_start(struct sc_daemon *d);
void sc_peers_stop(struct sc_daemon *d);

int sc_engines_start(struct sc_daemon *d);
void sc_engines_stop(struct sc_daemon *d);

#endif
