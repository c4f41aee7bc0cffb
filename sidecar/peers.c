/*
 * sidecar/peers.c - the peer module: handshakes between sidecars over nng
 * (the peer URL), started and stopped with the daemon (sidecar/modules.h).
 * Start loads the shared secret (--secret-file), starts the rep workers
 * that answer other sidecars (sidecar/peer_server.c) and the heartbeat
 * thread that watches the remote sidecars we resolved
 * (sidecar/peer_health.c); stop undoes that in reverse. Resolving a remote
 * engine for a local one is sidecar/peer_resolve.c; the fabric addresses
 * both sides exchange are sidecar/peer_addrs.c.
 */
#include "sidecar/peers_int.h"

#include <pthread.h>
#include <stdlib.h>

#include <nng/nng.h>

#include "client/kvferry.h"
#include "proto/version.h"
#include "sidecar/auth.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"
#include "sidecar/modules.h"
#include "sidecar/rep_server.h"

#define WORKERS 2

int sc_peers_start(struct sc_daemon *d)
{
	struct sc_peers *p = calloc(1, sizeof *p);
	int rc;

	if (!p)
		return KVF_ENOMEM;
	p->d = d;
	{
		char aerr[512];
		rc = sc_auth_load(d->cfg.secret_file, &p->auth, aerr,
		                  sizeof aerr);
		if (rc != 0) {
			sc_error("%s", aerr);
			free(p);
			return rc;
		}
	}
	pthread_mutex_init(&p->resolve_lock, NULL);
	nng_socket_set_size(d->peer_sock, NNG_OPT_RECVMAXSZ,
	                    4 * (size_t)KVF_MAX_CONTROL_MSG);
	rc = sc_rep_server_start(d->peer_sock, WORKERS, sc_peer_handle, p,
	                         "peer", &p->srv);
	if (rc != 0) {
		sc_auth_free(p->auth);
		free(p);
		return rc;
	}
	d->peers = p;
	sc_peer_health_start(p);
	return 0;
}

void sc_peers_stop(struct sc_daemon *d)
{
	struct sc_peers *p = d->peers;
	if (!p)
		return;
	sc_peer_health_stop(p);
	sc_rep_server_stop(p->srv);
	pthread_mutex_destroy(&p->resolve_lock);
	sc_auth_free(p->auth);
	free(p);
	d->peers = NULL;
}
