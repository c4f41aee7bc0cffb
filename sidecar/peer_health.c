/*
 * sidecar/peer_health.c - the health of remote sidecars. A heartbeat
 * thread sends each remote sidecar a Heartbeat every heartbeat_ms. Three
 * misses in a row mark its peers unhealthy (the progress thread then
 * fails their transfers at once instead of waiting for deadlines); an
 * answer with a new epoch means the remote sidecar restarted, and its
 * engines are handshaked again for new addresses and keys, without anyone
 * asking.
 */
#include "sidecar/peers_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "proto/peer.pb-c.h"
#include "proto/version.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"
#include "sidecar/registry.h"

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

void sc_peer_health_start(struct sc_peers *p)
{
	pthread_mutex_init(&p->hb_lock, NULL);
	pthread_cond_init(&p->hb_cond, NULL);
	if (p->d->cfg.heartbeat_ms &&
	    pthread_create(&p->hb_thread, NULL, heartbeat_main, p) == 0)
		p->hb_running = true;
}

void sc_peer_health_stop(struct sc_peers *p)
{
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
}
