/*
 * sidecar/peers.h - sidecar-to-sidecar handshakes over nng: the server that
 * answers other sidecars on the peer URL (our fabric address and the
 * regions of the engine they ask for), and the client side that resolves a
 * remote engine for a local one and caches the result as a peer.
 */
#ifndef KVF_SIDECAR_PEERS_H
#define KVF_SIDECAR_PEERS_H

#include <stddef.h>
#include <stdint.h>

struct sc_daemon;

/*
 * Handshake with the sidecar at url for its engine engine_name (blocking up
 * to timeout_ms, 0: the configured handshake timeout) and return the peer
 * id, the same one each time for the same url and engine; the cached
 * regions and keys are refreshed on every call. path gets the data path
 * ("host", "same-host", ...). near_dev: the GPU the resolving engine's
 * memory is on (same-host imports are mapped there), -1 when none, -2 to
 * keep what the peer had. Errors: KVF_EPEER/KVF_ETIMEDOUT (no answer),
 * KVF_ENOENT (no such engine there), KVF_EVERSION, KVF_EPERM, with err
 * saying which.
 */
int sc_peers_resolve(struct sc_daemon *d, const char *url,
                     const char *engine_name, uint32_t timeout_ms,
                     int near_dev,
                     uint32_t *peer_id, char *path, size_t pathlen,
                     char *err, size_t errlen);

struct sc_remote_region;

/* Free a peer's region array, releasing same-host GPU imports. */
void sc_peer_regions_free(struct sc_daemon *d, struct sc_remote_region *v,
                          uint32_t n);

#endif
