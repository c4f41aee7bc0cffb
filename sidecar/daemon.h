/*
 * sidecar/daemon.h - the kvferryd process: configuration, the three nng
 * sockets (engine, peer, control), the fabric rail and the counters the
 * control server reports. The modules that serve each socket take a
 * struct sc_daemon and keep their own state behind an opaque pointer.
 */
#ifndef KVF_SIDECAR_DAEMON_H
#define KVF_SIDECAR_DAEMON_H

#include <nng/nng.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sidecar/config.h"

struct xfer_fabric;
struct sc_engines;
struct sc_peers;
struct sc_xfers;
struct sc_registry;

struct sc_counters {
	_Atomic uint64_t engines;
	_Atomic uint64_t peers;
	_Atomic uint64_t regions;
	_Atomic uint64_t xfers_in_flight;
	_Atomic uint64_t xfers_total;
	_Atomic uint64_t xfers_failed;
	_Atomic uint64_t bytes_total;
};

struct sc_daemon {
	struct sc_config cfg;
	char sidecar_id[40];  /* random per start, hex */
	char host_id[80];     /* /etc/machine-id or the hostname: same host? */
	uint64_t epoch;       /* start time in ns: a restart changes it */
	uint64_t start_ns;    /* CLOCK_MONOTONIC at start */

	nng_socket engine_sock; /* rep0, listening on ipc://cfg.engine_socket */
	nng_socket peer_sock;   /* rep0, listening on cfg.peer_url */
	nng_socket ctl_sock;    /* rep0, listening on cfg.control_url */

	struct xfer_fabric *fabric;

	struct sc_engines *engines; /* sidecar/engines.c */
	struct sc_peers *peers;     /* sidecar/peers.c */
	struct sc_xfers *xfers;     /* sidecar/xfers.c */
	struct sc_registry *registry; /* sidecar/registry.c, made by xfers */

	struct sc_counters counters;
	_Atomic int stopping;
	_Atomic int draining; /* refuse new transfers, finish those in flight */
};

/* Monotonic clock in ns. */
uint64_t sc_now_ns(void);

#endif
