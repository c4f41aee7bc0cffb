/*
 * sidecar/peer_server.c - the server side of the handshakes between
 * sidecars, run by the rep workers of the peer URL (sidecar/peers.c starts
 * them). A Handshake is answered with this sidecar's fabric address, epoch
 * and the regions (address, length, key, layout) of the engine asked for;
 * keys leave the sidecar only this way, and only to a caller that proves
 * the shared secret when one is configured. The caller's own addresses go
 * into our address vector on the way, so that every rail knows its peer.
 * A Heartbeat is answered with our epoch (peer_health.c sends them).
 */
#include "sidecar/peers_int.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "proto/peer.pb-c.h"
#include "proto/version.h"
#include "sidecar/auth.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"
#include "xfer/fabric.h"

static nng_msg *pack_reply(const Kvf__Peer__Reply *r)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, kvf__peer__reply__get_packed_size(r)) != 0)
		return NULL;
	kvf__peer__reply__pack(r, nng_msg_body(m));
	return m;
}

static nng_msg *error_reply(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static nng_msg *error_reply(int code, const char *fmt, ...)
{
	Kvf__Peer__Reply r = KVF__PEER__REPLY__INIT;
	Kvf__Error e = KVF__ERROR__INIT;
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sc_info("peer request refused: %s (%s)", msg, kvf_strerror(code));
	e.code = (uint32_t)code;
	e.message = msg;
	r.body_case = KVF__PEER__REPLY__BODY_ERROR;
	r.error = &e;
	return pack_reply(&r);
}

static nng_msg *on_handshake(struct sc_peers *p, const Kvf__Peer__Handshake *h)
{
	struct sc_daemon *d = p->d;
	const struct xfer_fabric_info *fi = xfer_fabric_info(d->fabric);
	struct sc_registry *reg = d->registry;
	Kvf__Peer__Reply r = KVF__PEER__REPLY__INIT;
	Kvf__Peer__HandshakeReply hr = KVF__PEER__HANDSHAKE_REPLY__INIT;
	Kvf__Peer__RegionDesc *descs = NULL, **dptrs = NULL;
	Kvf__KvLayout *layouts = NULL;
	struct sc_session *s;
	struct sc_region *rg;
	size_t n = 0, pos = 0;
	uint8_t mac[SC_SHA256_LEN];
	char aerr[256];
	nng_msg *out;
	bool same_host = strcmp(h->host_id, d->host_id) == 0;
	uint64_t caller_addr;
	char ferr[320];
	uint64_t *keys = NULL;
	ProtobufCBinaryData addrs[SC_MAX_RAILS];
	uint32_t nrails;

	/* Keys go only to a sidecar that proves the shared secret. */
	if (sc_auth_verify_handshake(p->auth, h, aerr, sizeof aerr) != 0)
		return error_reply(KVF_EPERM, "sidecar %.40s (engine %.64s): %s",
		                   h->sidecar_id, h->engine_name, aerr);
	if (h->proto_version != KVF_PEER_PROTO_VERSION)
		return error_reply(KVF_EVERSION,
		                   "peer protocol version %u is not supported: this "
		                   "sidecar speaks version %u",
		                   h->proto_version, KVF_PEER_PROTO_VERSION);
	if (strcmp(h->provider, fi->provider) != 0)
		return error_reply(KVF_EPEER,
		                   "sidecar %s uses provider '%s', this one '%s': "
		                   "they cannot reach each other",
		                   h->sidecar_id, h->provider, fi->provider);

	if (h->fabric_addr.len == 0 || h->fabric_addr.len > 256)
		return error_reply(KVF_EPROTO,
		                   "handshake from %s carries a fabric address "
		                   "of %zu bytes",
		                   h->sidecar_id, h->fabric_addr.len);
	if (sc_peer_rails_with(d, h->n_rail_addrs, h->rail_addrs,
	                       &nrails) != 0)
		return error_reply(KVF_EPROTO,
		                   "handshake from %s carries a bad rail address",
		                   h->sidecar_id);
	pthread_mutex_lock(&reg->lock);
	/* The caller's addresses, so that staged chunks can be read back
	 * from its slots and answered, and every rail knows its peer. */
	for (uint32_t i = 0; i < nrails; i++) {
		const ProtobufCBinaryData *a =
			i ? &h->rail_addrs[i] : &h->fabric_addr;
		int rc = sc_peer_fabric_addr(d, i, h->sidecar_id, h->epoch,
		                             a, &caller_addr, ferr,
		                             sizeof ferr);
		if (rc != 0) {
			pthread_mutex_unlock(&reg->lock);
			if (rc == KVF_EINVAL) /* the caller's doing */
				rc = KVF_EPROTO;
			return error_reply(rc, "sidecar %s cannot take the "
			                   "address of sidecar %s on rail "
			                   "%u: %s", d->sidecar_id,
			                   h->sidecar_id, i, ferr);
		}
	}
	s = sc_registry_session_by_name(reg, h->engine_name);
	if (!s) {
		pthread_mutex_unlock(&reg->lock);
		return error_reply(KVF_ENOENT,
		                   "no engine named '%.64s' is connected to "
		                   "sidecar %s",
		                   h->engine_name, d->sidecar_id);
	}
	descs = calloc(s->regions_count + 1, sizeof *descs);
	dptrs = calloc(s->regions_count + 1, sizeof *dptrs);
	layouts = calloc(s->regions_count + 1, sizeof *layouts);
	keys = calloc((s->regions_count + 1) * d->nrails, sizeof *keys);
	while (descs && dptrs && layouts && keys &&
	       (rg = sc_idmap_next(&reg->regions, &pos, NULL))) {
		if (rg->session_id != s->id || n >= s->regions_count)
			continue;
		Kvf__Peer__RegionDesc *rd = &descs[n];
		kvf__peer__region_desc__init(rd);
		rd->region_id = rg->id;
		rd->length = rg->len;
		rd->remote_addr = rg->remote_base;
		rd->key = rg->key;
		if (d->nrails > 1 && rg->nrails == d->nrails) {
			rd->rail_keys = &keys[n * d->nrails];
			rd->n_rail_keys = d->nrails;
			for (uint32_t i = 0; i < d->nrails; i++)
				rd->rail_keys[i] = rg->rail[i].key;
		}
		rd->mem_kind = rg->kind;
		if (rg->kind == XFER_MEM_CUDA && same_host) {
			/* Only a sidecar on this host can use the handle. */
			rd->cuda_ipc_handle.data = rg->cuda_mem.handle;
			rd->cuda_ipc_handle.len = IPC_CUDA_HANDLE_LEN;
			rd->cuda_device_uuid.data = rg->cuda_mem.uuid;
			rd->cuda_device_uuid.len = IPC_CUDA_UUID_LEN;
			rd->cuda_offset = rg->cuda_mem.offset;
			rd->cuda_alloc_length = rg->cuda_mem.alloc_len;
		}
		if (rg->has_layout) {
			Kvf__KvLayout *l = &layouts[n];
			kvf__kv_layout__init(l);
			l->num_layers = rg->layout.num_layers;
			l->num_blocks = rg->layout.num_blocks;
			l->block_bytes = rg->layout.block_bytes;
			l->layer_stride = rg->layout.layer_stride;
			l->block_stride = rg->layout.block_stride;
			l->offset = rg->layout.offset;
			rd->layout = l;
		}
		dptrs[n++] = rd;
	}
	hr.engine_session_id = s->id;
	pthread_mutex_unlock(&reg->lock);
	if (!descs || !dptrs || !layouts || !keys) {
		free(descs);
		free(dptrs);
		free(layouts);
		free(keys);
		return error_reply(KVF_ENOMEM, "out of memory");
	}
	hr.proto_version = KVF_PEER_PROTO_VERSION;
	hr.sidecar_id = d->sidecar_id;
	hr.host_id = d->host_id;
	hr.provider = (char *)fi->provider;
	hr.fabric_addr.data = (uint8_t *)fi->addr;
	hr.fabric_addr.len = fi->addr_len;
	if (d->nrails > 1) {
		hr.n_rail_addrs = sc_peer_rail_addrs(d, addrs);
		hr.rail_addrs = addrs;
	}
	hr.n_regions = n;
	hr.regions = dptrs;
	hr.epoch = d->epoch;
	hr.inline_msg_max = d->inline_msg_max;
	sc_auth_sign_reply(p->auth, h, &hr, mac);
	r.body_case = KVF__PEER__REPLY__BODY_HANDSHAKE;
	r.handshake = &hr;
	out = pack_reply(&r);
	sc_info("peer %s: handshake for engine %s answered (%zu regions)",
	        h->sidecar_id, h->engine_name, n);
	free(descs);
	free(dptrs);
	free(layouts);
	free(keys);
	return out;
}

nng_msg *sc_peer_handle(void *arg, nng_msg *req, nng_pipe pipe)
{
	struct sc_peers *p = arg;
	Kvf__Peer__Request *m;
	nng_msg *out;
	size_t len = nng_msg_len(req);

	(void)pipe;
	if (len > KVF_MAX_CONTROL_MSG)
		return error_reply(KVF_EPROTO,
		                   "peer message of %zu bytes exceeds the %u-byte "
		                   "limit",
		                   len, KVF_MAX_CONTROL_MSG);
	m = kvf__peer__request__unpack(NULL, len, nng_msg_body(req));
	if (!m)
		return error_reply(KVF_EPROTO,
		                   "undecodable peer message (%zu bytes)", len);
	switch (m->body_case) {
	case KVF__PEER__REQUEST__BODY_HANDSHAKE:
		out = on_handshake(p, m->handshake);
		break;
	case KVF__PEER__REQUEST__BODY_HEARTBEAT: {
		Kvf__Peer__Reply r = KVF__PEER__REPLY__INIT;
		Kvf__Peer__HeartbeatReply hb = KVF__PEER__HEARTBEAT_REPLY__INIT;
		hb.epoch = p->d->epoch;
		r.body_case = KVF__PEER__REPLY__BODY_HEARTBEAT;
		r.heartbeat = &hb;
		out = pack_reply(&r);
		break;
	}
	default:
		out = error_reply(KVF_EPROTO,
		                  "peer message with no known request (%d)",
		                  (int)m->body_case);
		break;
	}
	kvf__peer__request__free_unpacked(m, NULL);
	return out;
}
