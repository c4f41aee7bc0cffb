/*
 * sidecar/peers.c - handshakes between sidecars. The server side answers a
 * Handshake with this sidecar's fabric address, epoch and the regions
 * (address, length, key, layout) of the engine asked for; keys leave the
 * sidecar only this way. The client side dials the remote peer URL with a
 * bounded wait, inserts the remote fabric address into the address vector
 * once per remote sidecar run (epoch), and records the peer. Resolving the
 * same engine again refreshes its regions and keys under the same peer id.
 *
 * Health: a heartbeat thread sends each remote sidecar a Heartbeat every
 * heartbeat_ms. Three misses in a row mark its peers unhealthy (the
 * progress thread then fails their transfers at once instead of waiting
 * for deadlines); an answer with a new epoch means the remote sidecar
 * restarted, and its engines are handshaked again for new addresses and
 * keys, without anyone asking.
 */
#include "sidecar/peers.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "proto/peer.pb-c.h"
#include "proto/version.h"
#include "sidecar/auth.h"
#include "sidecar/daemon.h"
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/modules.h"
#include "sidecar/registry.h"
#include "sidecar/rep_server.h"
#include "xfer/fabric.h"

#define WORKERS 2
#define HB_MISSES 3
#define HB_TARGETS_MAX 4096

/* One remote sidecar the heartbeat thread watches. */
struct hb_target {
	char url[256];
	nng_socket sock;
	uint64_t epoch;
	uint32_t misses;
	bool seen;
};

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

/* ---- server ------------------------------------------------------------ */

static int fabric_addr_of(struct sc_daemon *d, uint32_t rail,
                          const char *sidecar_id, uint64_t epoch,
                          const ProtobufCBinaryData *addr, uint64_t *fi_addr,
                          char *err, size_t errlen);

/* Our rails' endpoint addresses for a handshake, into bufs (SC_MAX_RAILS
 * entries). */
static size_t rail_addrs(struct sc_daemon *d, ProtobufCBinaryData *bufs)
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
static int rails_with(struct sc_daemon *d, size_t naddrs,
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
	if (rails_with(d, h->n_rail_addrs, h->rail_addrs, &nrails) != 0)
		return error_reply(KVF_EPROTO,
		                   "handshake from %s carries a bad rail address",
		                   h->sidecar_id);
	pthread_mutex_lock(&reg->lock);
	/* The caller's addresses, so that staged chunks can be read back
	 * from its slots and answered, and every rail knows its peer. */
	for (uint32_t i = 0; i < nrails; i++) {
		const ProtobufCBinaryData *a =
			i ? &h->rail_addrs[i] : &h->fabric_addr;
		int rc = fabric_addr_of(d, i, h->sidecar_id, h->epoch, a,
		                        &caller_addr, ferr, sizeof ferr);
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
		hr.n_rail_addrs = rail_addrs(d, addrs);
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

static nng_msg *handle(void *arg, nng_msg *req, nng_pipe pipe)
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

/* ---- heartbeats -------------------------------------------------------- */

static struct hb_target *target_for(struct sc_peers *p, const char *url)
{
	struct hb_target *t;
	int ms = (int)p->d->cfg.heartbeat_ms;

	for (size_t i = 0; i < p->ntargets; i++)
		if (strcmp(p->targets[i].url, url) == 0)
			return &p->targets[i];
	if (p->ntargets == HB_TARGETS_MAX)
		return NULL;
	t = realloc(p->targets, (p->ntargets + 1) * sizeof *t);
	if (!t)
		return NULL;
	p->targets = t;
	t = &p->targets[p->ntargets];
	memset(t, 0, sizeof *t);
	snprintf(t->url, sizeof t->url, "%s", url);
	if (nng_req0_open(&t->sock) != 0)
		return NULL;
	/* A heartbeat that is not answered within the interval is a miss;
	 * no resend: the next beat is the retry. */
	nng_socket_set_ms(t->sock, NNG_OPT_RECVTIMEO, ms);
	nng_socket_set_ms(t->sock, NNG_OPT_SENDTIMEO, ms);
	nng_socket_set_ms(t->sock, NNG_OPT_REQ_RESENDTIME, 0);
	nng_socket_set_ms(t->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(t->sock, NNG_OPT_RECONNMAXT, ms);
	if (nng_dial(t->sock, url, NULL, NNG_FLAG_NONBLOCK) != 0) {
		nng_close(t->sock);
		return NULL;
	}
	p->ntargets++;
	return t;
}

/* One heartbeat; returns 0 and the remote epoch, or an error. */
static int beat(struct sc_peers *p, struct hb_target *t, uint64_t *epoch,
                uint64_t *rtt_ns)
{
	Kvf__Peer__Request req = KVF__PEER__REQUEST__INIT;
	Kvf__Peer__Heartbeat hb = KVF__PEER__HEARTBEAT__INIT;
	Kvf__Peer__Reply *rep;
	uint64_t t0 = sc_now_ns();
	nng_msg *msg;
	int rv;

	hb.proto_version = KVF_PEER_PROTO_VERSION;
	hb.sidecar_id = p->d->sidecar_id;
	hb.epoch = p->d->epoch;
	req.body_case = KVF__PEER__REQUEST__BODY_HEARTBEAT;
	req.heartbeat = &hb;
	if (nng_msg_alloc(&msg, kvf__peer__request__get_packed_size(&req)))
		return KVF_ENOMEM;
	kvf__peer__request__pack(&req, nng_msg_body(msg));
	if ((rv = nng_sendmsg(t->sock, msg, 0)) != 0) {
		nng_msg_free(msg);
		return KVF_EPEER;
	}
	if ((rv = nng_recvmsg(t->sock, &msg, 0)) != 0)
		return KVF_EPEER;
	rep = kvf__peer__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	nng_msg_free(msg);
	if (!rep || rep->body_case != KVF__PEER__REPLY__BODY_HEARTBEAT) {
		if (rep)
			kvf__peer__reply__free_unpacked(rep, NULL);
		return KVF_EPROTO;
	}
	*epoch = rep->heartbeat->epoch;
	*rtt_ns = sc_now_ns() - t0;
	kvf__peer__reply__free_unpacked(rep, NULL);
	return 0;
}

/* Set the health of every peer behind url; returns the engines to
 * handshake again when the remote sidecar restarted. */
static void mark(struct sc_peers *p, const char *url, int healthy,
                 uint64_t rtt_ns, uint64_t epoch, char (*redo)[KVF_MAX_NAME],
                 size_t *nredo, size_t maxredo)
{
	struct sc_registry *reg = p->d->registry;
	size_t pos = 0;
	struct sc_peer *peer;
	bool changed = false;

	pthread_mutex_lock(&reg->lock);
	while ((peer = sc_idmap_next(&reg->peers, &pos, NULL))) {
		if (strcmp(peer->url, url) != 0)
			continue;
		if (atomic_load(&peer->healthy) != healthy) {
			changed = true;
			atomic_store(&peer->healthy, healthy);
			if (healthy)
				sc_info("peer %u (engine %s at %s): answering "
				        "again", peer->id, peer->engine, url);
			else
				sc_warn("peer %u (engine %s at %s): %d heartbeats "
				        "missed; its transfers fail now",
				        peer->id, peer->engine, url, HB_MISSES);
		}
		if (healthy) {
			atomic_store(&peer->rtt_ns, rtt_ns);
			peer->last_ok_ns = sc_now_ns();
			if (epoch != peer->epoch && *nredo < maxredo)
				snprintf(redo[(*nredo)++], KVF_MAX_NAME, "%s",
				         peer->engine);
		}
	}
	pthread_mutex_unlock(&reg->lock);
	if (changed)
		atomic_fetch_add(&reg->peer_generation, 1);
}

static void *heartbeat_main(void *arg)
{
	struct sc_peers *p = arg;
	struct sc_daemon *d = p->d;
	struct sc_registry *reg = d->registry;
	char (*urls)[256] = NULL;
	char redo[64][KVF_MAX_NAME];

	for (;;) {
		struct timespec ts;
		size_t nurls = 0, pos = 0, cap = 0;
		struct sc_peer *peer;
		uint64_t next = sc_now_ns() + d->cfg.heartbeat_ms * 1000000ull;

		/* The distinct remote sidecars, copied out of the lock. */
		pthread_mutex_lock(&reg->lock);
		cap = reg->peers.len;
		urls = realloc(urls, (cap + 1) * sizeof *urls);
		while (urls && (peer = sc_idmap_next(&reg->peers, &pos, NULL))) {
			bool dup = false;
			for (size_t i = 0; i < nurls && !dup; i++)
				dup = strcmp(urls[i], peer->url) == 0;
			if (!dup && nurls < cap)
				snprintf(urls[nurls++], sizeof urls[0], "%s",
				         peer->url);
		}
		pthread_mutex_unlock(&reg->lock);

		for (size_t i = 0; i < nurls; i++) {
			struct hb_target *t = target_for(p, urls[i]);
			uint64_t epoch = 0, rtt = 0;
			size_t nredo = 0;
			if (!t)
				continue;
			if (beat(p, t, &epoch, &rtt) == 0) {
				t->misses = 0;
				mark(p, t->url, 1, rtt, epoch, redo, &nredo, 64);
			} else if (++t->misses == HB_MISSES) {
				mark(p, t->url, 0, 0, 0, redo, &nredo, 0);
			}
			/* A new epoch: the sidecar restarted; new keys. */
			for (size_t k = 0; k < nredo; k++) {
				uint32_t id;
				char path[32], err[256];
				int rc = sc_peers_resolve(d, t->url, redo[k], 0, -2,
				                          &id,
				                          path, sizeof path, err,
				                          sizeof err);
				if (rc != 0)
					sc_warn("peer engine %s at %s restarted; "
					        "handshake again failed: %s",
					        redo[k], t->url, err);
			}
		}

		pthread_mutex_lock(&p->hb_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		{
			uint64_t now = sc_now_ns();
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec += (time_t)(wait / 1000000000ull);
			ts.tv_nsec += (long)(wait % 1000000000ull);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
		}
		while (!p->hb_stop &&
		       pthread_cond_timedwait(&p->hb_cond, &p->hb_lock, &ts) == 0)
			;
		bool stop = p->hb_stop;
		pthread_mutex_unlock(&p->hb_lock);
		if (stop)
			break;
	}
	free(urls);
	return NULL;
}

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
	rc = sc_rep_server_start(d->peer_sock, WORKERS, handle, p, "peer",
	                         &p->srv);
	if (rc != 0) {
		sc_auth_free(p->auth);
		free(p);
		return rc;
	}
	d->peers = p;
	pthread_mutex_init(&p->hb_lock, NULL);
	pthread_cond_init(&p->hb_cond, NULL);
	if (d->cfg.heartbeat_ms &&
	    pthread_create(&p->hb_thread, NULL, heartbeat_main, p) == 0)
		p->hb_running = true;
	return 0;
}

void sc_peers_stop(struct sc_daemon *d)
{
	struct sc_peers *p = d->peers;
	if (!p)
		return;
	if (p->hb_running) {
		pthread_mutex_lock(&p->hb_lock);
		p->hb_stop = true;
		pthread_cond_signal(&p->hb_cond);
		pthread_mutex_unlock(&p->hb_lock);
		pthread_join(p->hb_thread, NULL);
	}
	for (size_t i = 0; i < p->ntargets; i++)
		nng_close(p->targets[i].sock);
	free(p->targets);
	pthread_mutex_destroy(&p->hb_lock);
	pthread_cond_destroy(&p->hb_cond);
	sc_rep_server_stop(p->srv);
	pthread_mutex_destroy(&p->resolve_lock);
	sc_auth_free(p->auth);
	free(p);
	d->peers = NULL;
}

/* ---- client ------------------------------------------------------------ */

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

/* The fabric address of a remote sidecar run, inserted once. Called with
 * the registry lock held. On failure err has the provider's reason. */
static int fabric_addr_of(struct sc_daemon *d, uint32_t rail,
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
	if (rc == 0)
		sc_idmap_put(&reg->fabaddrs, key, (void *)(uintptr_t)(*fi_addr + 1));
	return rc;
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
		h.n_rail_addrs = rail_addrs(d, addrs);
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
	if (rails_with(d, hr->n_rail_addrs, hr->rail_addrs, &nrails) != 0) {
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
		rc = fabric_addr_of(d, rail, hr->sidecar_id, hr->epoch,
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
	*peer_id = p->id;
	pthread_mutex_unlock(&reg->lock);
	pthread_mutex_unlock(&ps->resolve_lock);
	/* The progress thread reads regions under the lock, so the old array
	 * is unused now. */
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
