/*
 * sidecar/peer_resolve.c - the client side of the handshakes between
 * sidecars (sc_peers_resolve, for kvf_resolve_peer and for the heartbeat
 * thread when a remote sidecar restarted). It dials the remote peer URL
 * with a bounded wait, checks the reply (version, secret, addresses),
 * inserts the remote fabric address into the address vector once per
 * remote sidecar run (epoch), imports a same-host engine's GPU regions,
 * and records the peer. Resolving the same engine again refreshes its
 * regions and keys under the same peer id.
 */
#include "sidecar/peers_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "proto/peer.pb-c.h"
#include "proto/version.h"
#include "sidecar/auth.h"
#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "sidecar/xfers.h"
#include "xfer/fabric.h"

static int from_nng(int rv)
{
	return rv == NNG_ETIMEDOUT ? KVF_ETIMEDOUT : KVF_EPEER;
}

static int call(struct sc_daemon *d, const char *url, uint32_t timeout_ms,
                const Kvf__Peer__Request *req, Kvf__Peer__Reply **out,
                char *err, size_t errlen)
{
	nng_socket s;
	nng_msg *msg;
	int rv;

	(void)d;
	if ((rv = nng_req0_open(&s)) != 0) {
		snprintf(err, errlen, "nng_req0_open() failed: %s",
		         nng_strerror(rv));
		return KVF_ESYSTEM;
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, (int)timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, (int)timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 200);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 4 * (size_t)KVF_MAX_CONTROL_MSG);
	/* Non-blocking dial: a peer that is not up yet is retried until the
	 * receive timeout, which bounds the whole call. */
	if ((rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		nng_close(s);
		snprintf(err, errlen, "cannot dial %s: %s", url,
		         nng_strerror(rv));
		return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? KVF_EINVAL
		                                                 : KVF_EPEER;
	}
	if ((rv = nng_msg_alloc(&msg, kvf__peer__request__get_packed_size(req))) !=
	    0) {
		nng_close(s);
		snprintf(err, errlen, "out of memory");
		return KVF_ENOMEM;
	}
	kvf__peer__request__pack(req, nng_msg_body(msg));
	if ((rv = nng_sendmsg(s, msg, 0)) != 0) {
		nng_msg_free(msg);
		nng_close(s);
		snprintf(err, errlen, "no answer from %s within %u ms: %s", url,
		         timeout_ms, nng_strerror(rv));
		return from_nng(rv);
	}
	if ((rv = nng_recvmsg(s, &msg, 0)) != 0) {
		nng_close(s);
		snprintf(err, errlen, "no answer from %s within %u ms: %s", url,
		         timeout_ms, nng_strerror(rv));
		return from_nng(rv);
	}
	nng_close(s);
	*out = kvf__peer__reply__unpack(NULL, nng_msg_len(msg),
	                                nng_msg_body(msg));
	nng_msg_free(msg);
	if (!*out) {
		snprintf(err, errlen, "undecodable reply from %s", url);
		return KVF_EPROTO;
	}
	if ((*out)->body_case == KVF__PEER__REPLY__BODY_ERROR) {
		int code = (int)(*out)->error->code;
		snprintf(err, errlen, "%s", (*out)->error->message);
		kvf__peer__reply__free_unpacked(*out, NULL);
		*out = NULL;
		return code > 0 && code < KVF_ERR_COUNT ? code : KVF_EPEER;
	}
	return 0;
}

/* Same host: import the remote engine's GPU memory so the progress thread
 * can copy into it directly. A failure leaves the region reachable only
 * through the fabric (staged), and is logged. */
static void import_remote(struct sc_daemon *d, const Kvf__Peer__RegionDesc *rd,
                          struct sc_remote_region *rr, int near_dev)
{
	struct ipc_cuda_mem m;
	char err[200];

	memset(&m, 0, sizeof m);
	memcpy(m.handle, rd->cuda_ipc_handle.data, IPC_CUDA_HANDLE_LEN);
	memcpy(m.uuid, rd->cuda_device_uuid.data, IPC_CUDA_UUID_LEN);
	m.offset = rd->cuda_offset;
	m.alloc_len = rd->cuda_alloc_length;
	m.len = rd->length;
	m.device = -1;
	if (sc_gpu_hold_import(d, &m, near_dev, &rr->import, &rr->dptr,
	                       &rr->cuda_device, err, sizeof err) != 0) {
		sc_warn("peer region %u on this host: import failed: %s",
		        rr->id, err);
		return;
	}
	rr->addr = (uint64_t)(uintptr_t)rr->dptr;
}

void sc_peer_regions_free(struct sc_daemon *d, struct sc_remote_region *v,
                          uint32_t n)
{
	if (!v)
		return;
	for (uint32_t i = 0; i < n; i++)
		if (v[i].import)
			sc_gpu_rele_import(d, v[i].import);
	free(v);
}

static struct sc_peer *find_peer(struct sc_registry *reg, const char *url,
                                 const char *engine)
{
	size_t pos = 0;
	struct sc_peer *p;
	while ((p = sc_idmap_next(&reg->peers, &pos, NULL)))
		if (strcmp(p->url, url) == 0 && strcmp(p->engine, engine) == 0)
			return p;
	return NULL;
}

int sc_peers_resolve(struct sc_daemon *d, const char *url,
                     const char *engine_name, uint32_t timeout_ms,
                     int near_dev,
                     uint32_t *peer_id, char *path, size_t pathlen,
                     char *err, size_t errlen)
{
	const struct xfer_fabric_info *fi = xfer_fabric_info(d->fabric);
	struct sc_registry *reg = d->registry;
	struct sc_peers *ps = d->peers;
	Kvf__Peer__Request req = KVF__PEER__REQUEST__INIT;
	Kvf__Peer__Handshake h = KVF__PEER__HANDSHAKE__INIT;
	uint8_t mac[SC_SHA256_LEN];
	Kvf__Peer__Reply *rep = NULL;
	Kvf__Peer__HandshakeReply *hr;
	struct sc_remote_region *regions = NULL, *old;
	uint32_t nold;
	struct sc_peer *p;
	bool fresh = false, same_host;
	ProtobufCBinaryData addrs[SC_MAX_RAILS];
	uint64_t rail_fi[SC_MAX_RAILS];
	uint32_t nrails = 1, rail;
	char ferr[320];
	int rc;

	if (strlen(url) >= sizeof p->url || strlen(engine_name) >= KVF_MAX_NAME ||
	    !engine_name[0]) {
		snprintf(err, errlen, "peer URL or engine name too long or empty");
		return KVF_EINVAL;
	}
	if (strncmp(url, "tcp://", 6) != 0 && strncmp(url, "ipc://", 6) != 0 &&
	    strncmp(url, "tls+tcp://", 10) != 0) {
		snprintf(err, errlen, "peer URL '%s' must be tcp://host:port", url);
		return KVF_EINVAL;
	}
	if (!timeout_ms)
		timeout_ms = d->cfg.handshake_timeout_ms;
	h.proto_version = KVF_PEER_PROTO_VERSION;
	h.sidecar_id = d->sidecar_id;
	h.host_id = d->host_id;
	h.provider = (char *)fi->provider;
	h.fabric_addr.data = (uint8_t *)fi->addr;
	h.fabric_addr.len = fi->addr_len;
	h.engine_name = (char *)engine_name;
	h.epoch = d->epoch;
	if (d->nrails > 1) {
		h.n_rail_addrs = sc_peer_rail_addrs(d, addrs);
		h.rail_addrs = addrs;
	}
	sc_auth_sign_handshake(ps->auth, &h, mac);
	req.body_case = KVF__PEER__REQUEST__BODY_HANDSHAKE;
	req.handshake = &h;
	if ((rc = call(d, url, timeout_ms, &req, &rep, err, errlen)) != 0)
		return rc;
	if (rep->body_case != KVF__PEER__REPLY__BODY_HANDSHAKE) {
		snprintf(err, errlen, "unexpected reply from %s", url);
		rc = KVF_EPROTO;
		goto out;
	}
	hr = rep->handshake;
	if (hr->proto_version != KVF_PEER_PROTO_VERSION) {
		snprintf(err, errlen,
		         "peer speaks protocol version %u, this sidecar %u",
		         hr->proto_version, KVF_PEER_PROTO_VERSION);
		rc = KVF_EVERSION;
		goto out;
	}
	if ((rc = sc_auth_verify_reply(ps->auth, &h, hr, err, errlen)) != 0)
		goto out;
	if (hr->fabric_addr.len == 0 || hr->fabric_addr.len > 256) {
		snprintf(err, errlen, "peer sent a fabric address of %zu bytes",
		         hr->fabric_addr.len);
		rc = KVF_EPROTO;
		goto out;
	}
	if (sc_peer_rails_with(d, hr->n_rail_addrs, hr->rail_addrs,
	                       &nrails) != 0) {
		snprintf(err, errlen, "peer sent a bad rail address");
		rc = KVF_EPROTO;
		goto out;
	}
	same_host = strcmp(hr->host_id, d->host_id) == 0;
	if (near_dev == -2) {
		/* A re-handshake: map as the peer's first resolve did. */
		pthread_mutex_lock(&reg->lock);
		p = find_peer(reg, url, engine_name);
		near_dev = p ? p->near_dev : -1;
		pthread_mutex_unlock(&reg->lock);
	}
	regions = calloc(hr->n_regions + 1, sizeof *regions);
	if (!regions) {
		rc = KVF_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < hr->n_regions; i++) {
		const Kvf__Peer__RegionDesc *rd = hr->regions[i];
		struct sc_remote_region *rr = &regions[i];
		rr->id = rd->region_id;
		rr->kind = rd->mem_kind;
		rr->cuda_device = -1; /* not imported */
		rr->len = rd->length;
		rr->addr = rd->remote_addr;
		rr->key = rd->key;
		rr->rail_key[0] = rd->key;
		/* Every region is registered on every rail; a region without
		 * its keys would be unreachable there: use rail 0 only. */
		if (nrails > 1 && rd->n_rail_keys < nrails) {
			sc_warn("peer %s: region %u has %zu rail keys for %u "
			        "rails; using one rail", hr->sidecar_id,
			        rd->region_id, rd->n_rail_keys, nrails);
			nrails = 1;
		}
		for (uint32_t k = 1; k < rd->n_rail_keys && k < SC_RAILS; k++)
			rr->rail_key[k] = rd->rail_keys[k];
		if (rd->layout) {
			rr->has_layout = true;
			rr->layout = (struct kvf_layout){
				rd->layout->num_layers,   rd->layout->num_blocks,
				rd->layout->block_bytes,  rd->layout->layer_stride,
				rd->layout->block_stride, rd->layout->offset};
		}
		if (same_host && rr->kind == XFER_MEM_CUDA &&
		    rd->cuda_ipc_handle.len == IPC_CUDA_HANDLE_LEN &&
		    rd->cuda_device_uuid.len == IPC_CUDA_UUID_LEN)
			import_remote(d, rd, rr, near_dev);
	}

	pthread_mutex_lock(&ps->resolve_lock);
	pthread_mutex_lock(&reg->lock);
	p = find_peer(reg, url, engine_name);
	if (!p) {
		if (!(p = calloc(1, sizeof *p))) {
			pthread_mutex_unlock(&reg->lock);
			pthread_mutex_unlock(&ps->resolve_lock);
			rc = KVF_ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		p->id = reg->next_peer++;
		snprintf(p->url, sizeof p->url, "%s", url);
		snprintf(p->engine, sizeof p->engine, "%s", engine_name);
		fresh = true;
	}
	for (rail = 0; rail < nrails; rail++) {
		rc = sc_peer_fabric_addr(d, rail, hr->sidecar_id, hr->epoch,
		                         rail ? &hr->rail_addrs[rail]
		                              : &hr->fabric_addr,
		                         &rail_fi[rail], ferr, sizeof ferr);
		if (rc != 0)
			break;
	}
	if (rc != 0) {
		pthread_mutex_unlock(&reg->lock);
		pthread_mutex_unlock(&ps->resolve_lock);
		if (fresh)
			free(p);
		/* An address we cannot take is the peer's doing. */
		if (rc == KVF_EINVAL)
			rc = KVF_EPROTO;
		snprintf(err, errlen, "peer sidecar %s at %s: its address on "
		         "rail %u: %s", hr->sidecar_id, url, rail, ferr);
		goto out;
	}
	if (fresh && sc_idmap_put(&reg->peers, p->id, p) != 0) {
		pthread_mutex_unlock(&reg->lock);
		pthread_mutex_unlock(&ps->resolve_lock);
		free(p);
		rc = KVF_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (p->epoch && p->epoch != hr->epoch)
		sc_info("peer %u (%s at %s): sidecar restarted; new keys",
		        p->id, engine_name, url);
	snprintf(p->sidecar_id, sizeof p->sidecar_id, "%s", hr->sidecar_id);
	snprintf(p->host_id, sizeof p->host_id, "%s", hr->host_id);
	snprintf(p->provider, sizeof p->provider, "%s", hr->provider);
	p->epoch = hr->epoch;
	p->fi_addr = rail_fi[0];
	memcpy(p->rail_fi_addr, rail_fi, nrails * sizeof rail_fi[0]);
	p->nrails = nrails;
	p->inline_msg_max = hr->inline_msg_max;
	p->remote_session = hr->engine_session_id;
	p->near_dev = near_dev;
	old = p->regions;
	nold = p->nregions;
	p->regions = regions;
	p->nregions = (uint32_t)hr->n_regions;
	p->same_host = same_host;
	regions = NULL;
	atomic_store(&p->healthy, 1);
	p->last_ok_ns = sc_now_ns();
	p->version++;
	*peer_id = p->id;
	pthread_mutex_unlock(&reg->lock);
	pthread_mutex_unlock(&ps->resolve_lock);
	sc_xfers_registry_changed(d);
	/* The progress thread plans from its own copy of the table, taken
	 * under the lock (sidecar/xfer_view.c), and copies the new one
	 * before its next lookup. */
	sc_peer_regions_free(d, old, nold);
	if (fresh)
		atomic_fetch_add(&d->counters.peers, 1);
	snprintf(path, pathlen, "%s",
	         strcmp(hr->host_id, d->host_id) == 0 ? "host (same host)"
	                                              : "host");
	sc_info("peer %u: engine %s at %s (sidecar %s), %zu regions, %u "
	        "rail%s", *peer_id, engine_name, url, hr->sidecar_id,
	        hr->n_regions, nrails, nrails == 1 ? "" : "s");
	rc = 0;
out:
	if (regions)
		sc_peer_regions_free(d, regions, (uint32_t)hr->n_regions);
	if (rep)
		kvf__peer__reply__free_unpacked(rep, NULL);
	return rc;
}
