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
#include "sidecar/stats.h"

struct xfer_fabric;

/* Rails a sidecar can drive (rail masks are 32 bits). */
#define SC_MAX_RAILS 32
struct sc_engines;
struct sc_peers;
struct sc_xfers;
struct sc_registry;
struct sc_ctl_server;
struct sc_metrics;

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

	/* The rails: one endpoint per NIC (or per --fabric-addr address),
	 * all of one provider; fabric is rails[0], which also carries the
	 * notifications and the GPU staging traffic. */
	struct xfer_fabric *fabric;
	struct xfer_fabric *rails[SC_MAX_RAILS];
	uint32_t nrails;
	/* The largest inline WRITE message rail 0's receive slots hold, as
	 * peers are told in the handshake; 0 with --inline-max 0. */
	uint32_t inline_msg_max;

	struct sc_engines *engines; /* sidecar/engines.c */
	struct sc_peers *peers;     /* sidecar/peers.c */
	struct sc_xfers *xfers;     /* sidecar/xfers.c */
	struct sc_registry *registry; /* sidecar/registry.c, made by xfers */

	struct sc_counters counters;
	struct sc_stats stats;
	_Atomic int stopping;
	_Atomic int draining; /* refuse new transfers, finish those in flight */

	/* What peers are told to dial back (sc_config_advertise). */
	char advertise_url[SC_URL_MAX];

	/* Owned by sidecar/daemon.c. */
	struct sc_ctl_server *ctl;
	struct sc_metrics *metrics; /* sidecar/metrics.c */
	int engine_lock_fd;  /* flock on <engine_socket>.lock, or -1 */
	int ctl_lock_fd;     /* flock on <control ipc path>.lock, or -1 */
	unsigned opened;     /* which of the above are up, for stop */
};

/* Monotonic clock in ns. */
uint64_t sc_now_ns(void);

/*
 * Bring the daemon up from cfg (copied into d->cfg): lock and check the
 * socket paths, listen on the engine, peer and control sockets, open the
 * fabric, start the modules (sidecar/modules.h) and the control server.
 * Returns 0, or a KVF_E* code with a one-line reason in err naming the
 * option (as the user gave it) and why; everything done so far is undone.
 * Main thread only.
 */
int sc_daemon_start(struct sc_daemon *d, const struct sc_config *cfg,
                    char *err, size_t errlen);

/*
 * Stop the control server and the modules (reverse order), close the
 * sockets and the fabric, remove the socket and lock files. Accepts a
 * daemon whose start failed half way. Main thread only.
 */
void sc_daemon_stop(struct sc_daemon *d);

#endif
