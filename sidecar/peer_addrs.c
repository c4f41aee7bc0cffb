/*
 * sidecar/peer_addrs.c - the fabric addresses exchanged in a handshake,
 * used by both sides of it (peer_server.c, peer_resolve.c): ours, one per
 * rail, for the other sidecar; the rails the two sidecars share; and the
 * insertion of a remote sidecar's address into a rail's address vector,
 * done once per remote sidecar run (its id and epoch), whichever side of
 * a handshake sees it first.
 */
#include "sidecar/peers_int.h"

#include <stdint.h>

#include "client/kvferry.h"
#include "sidecar/daemon.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

/* Our rails' endpoint addresses for a handshake, into bufs (SC_MAX_RAILS
 * entries). */
size_t sc_peer_rail_addrs(struct sc_daemon *d, ProtobufCBinaryData *bufs)
{
	for (uint32_t i = 0; i < d->nrails; i++) {
		const struct xfer_fabric_info *fi = xfer_fabric_info(d->rails[i]);
		bufs[i].data = (uint8_t *)fi->addr;
		bufs[i].len = fi->addr_len;
	}
	return d->nrails;
}

/* Rails used with a remote sidecar that offered naddrs of them: ours up to
 * its count. The addresses must be sane: a bad one is refused. */
int sc_peer_rails_with(struct sc_daemon *d, size_t naddrs,
                       const ProtobufCBinaryData *addrs, uint32_t *n)
{
	*n = naddrs < d->nrails ? (uint32_t)naddrs : d->nrails;
	if (*n == 0)
		*n = 1; /* a one-rail sidecar sends no list */
	for (uint32_t i = 0; i < naddrs && i < *n; i++)
		if (addrs[i].len == 0 || addrs[i].len > 256)
			return KVF_EPROTO;
	return 0;
}

/* The fabric address of a remote sidecar run, inserted once. Called with
 * the registry lock held. On failure err has the provider's reason. */
int sc_peer_fabric_addr(struct sc_daemon *d, uint32_t rail,
                        const char *sidecar_id, uint64_t epoch,
                        const ProtobufCBinaryData *addr, uint64_t *fi_addr,
                        char *err, size_t errlen)
{
	struct sc_registry *reg = d->registry;
	uint64_t key = sc_hash_str(sidecar_id, epoch ^ ((uint64_t)rail << 56));
	uintptr_t v = (uintptr_t)sc_idmap_get(&reg->fabaddrs, key);
	int rc;

	if (v) {
		*fi_addr = (uint64_t)(v - 1);
		return 0;
	}
	rc = xfer_fabric_av_insert(d->rails[rail], addr->data, addr->len,
	                           fi_addr, err, errlen);
	if (rc == 0 &&
	    sc_idmap_put(&reg->fabaddrs, key,
	                 (void *)(uintptr_t)(*fi_addr + 1)) == 0) {
		if (rail == 0)
			sc_idmap_put(&reg->rail0_addrs, key,
			             (void *)(uintptr_t)(*fi_addr + 1));
		sc_xfers_registry_changed(d);
	}
	return rc;
}
