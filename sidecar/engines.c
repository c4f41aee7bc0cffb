/*
 * sidecar/engines.c - the engine control server on the engine socket:
 * hello (session and rings), region registration, peer resolution and
 * goodbye. A session is bound to the nng pipe (connection) its hello came
 * on: requests naming the session from another pipe are refused, and when
 * the pipe goes away (the engine exited or was killed) the session is torn
 * down: its transfers end, its regions are released once nothing is in
 * flight on them, and the other engines carry on.
 */
#include "sidecar/cuda_regions.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/wire.h"
#include "proto/engine.pb-c.h"
#include "proto/version.h"
#include "sidecar/auth.h"
#include "sidecar/daemon.h"
#include "sidecar/engine_watch.h"
#include "sidecar/gpu_path.h"
#include "sidecar/log.h"
#include "sidecar/modules.h"
#include "sidecar/peers.h"
#include "sidecar/registry.h"
#include "sidecar/rep_server.h"
#include "sidecar/xfers.h"
#include "xfer/cuda.h"
#include "xfer/fabric.h"
#include "xfer/topo.h"

#define WORKERS 4
#define MAX_SESSION_BYTES (256ull << 20)

struct sc_engines {
	struct sc_daemon *d;
	struct sc_rep_server *srv;
	struct sc_engine_watch *watch; /* pidfds: the second death signal */
};

struct reply {
	Kvf__Engine__Reply r;
	Kvf__Error err;
	char msg[512];
};

static Kvf__Engine__Reply *fail(struct reply *rp, int code, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));

static Kvf__Engine__Reply *fail(struct reply *rp, int code, const char *fmt,
                                ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rp->msg, sizeof rp->msg, fmt, ap);
	va_end(ap);
	kvf__error__init(&rp->err);
	rp->err.code = (uint32_t)code;
	rp->err.message = rp->msg;
	kvf__engine__reply__init(&rp->r);
	rp->r.body_case = KVF__ENGINE__REPLY__BODY_ERROR;
	rp->r.error = &rp->err;
	sc_info("engine request refused: %s (%s)", rp->msg, kvf_strerror(code));
	return &rp->r;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= KVF_MAX_NAME)
		return 0;
	for (; *s; s++)
		if (!isgraph((unsigned char)*s))
			return 0;
	return 1;
}

/* The session behind a request: it must exist and belong to this pipe.
 * Returns it held, or NULL with the reply filled in. */
static struct sc_session *session_of(struct sc_daemon *d, uint64_t id,
                                     nng_pipe pipe, struct reply *rp,
                                     Kvf__Engine__Reply **out)
{
	struct sc_registry *reg = d->registry;
	struct sc_session *s;

	pthread_mutex_lock(&reg->lock);
	s = sc_idmap_get(&reg->sessions, id);
	if (s && (s->pipe_id != (uint32_t)nng_pipe_id(pipe) || atomic_load(&s->closing)))
		s = NULL;
	if (s)
		sc_session_hold(s);
	pthread_mutex_unlock(&reg->lock);
	if (!s)
		*out = fail(rp, KVF_ENOENT,
		            "session %llu: no such session on this connection "
		            "(say hello first)",
		            (unsigned long long)id);
	return s;
}

static Kvf__Engine__Reply *on_hello(struct sc_daemon *d,
                                    const Kvf__Engine__Hello *h,
                                    nng_pipe pipe, struct reply *rp,
                                    Kvf__Engine__HelloReply *hr)
{
	struct sc_registry *reg = d->registry;
	struct sc_session *s, *other;
	char err[256];
	uint64_t uid = 0;
	int rc;

	/* Who is on the other end, from the kernel (SO_PEERCRED), not from
	 * the hello: only our uid and root, or anyone the socket's group
	 * lets in when --socket-group was set (sidecar/auth.h). */
	if ((rc = nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_UID, &uid)) != 0)
		return fail(rp, KVF_EPERM, "engine %.64s: peer credentials "
		            "unavailable: %s", h->engine_name, nng_strerror(rc));
	if (sc_auth_engine_uid((int)uid, d->cfg.socket_group[0] != 0, err,
	                       sizeof err) != 0)
		return fail(rp, KVF_EPERM, "engine %.64s: %s", h->engine_name,
		            err);
	if (h->proto_version != KVF_ENGINE_PROTO_VERSION)
		return fail(rp, KVF_EVERSION,
		            "engine protocol version %u is not supported: this "
		            "sidecar speaks version %u",
		            h->proto_version, KVF_ENGINE_PROTO_VERSION);
	if (!name_ok(h->engine_name))
		return fail(rp, KVF_EINVAL,
		            "engine name '%.80s' must be 1..%d printable bytes "
		            "without spaces",
		            h->engine_name, KVF_MAX_NAME - 1);
	if (h->ring_bytes == 0 || h->ring_bytes > MAX_SESSION_BYTES)
		return fail(rp, KVF_EINVAL,
		            "engine %s: session memory of %llu bytes (max %llu)",
		            h->engine_name, (unsigned long long)h->ring_bytes,
		            (unsigned long long)MAX_SESSION_BYTES);
	if (!(s = calloc(1, sizeof *s)))
		return fail(rp, KVF_ENOMEM, "out of memory");
	rc = ipc_shm_attach(h->ring_shm, h->ring_bytes, 1, &s->shm, err,
	                    sizeof err);
	if (rc == 0)
		rc = ipc_session_attach(s->shm.base, s->shm.len, &s->sub,
		                        &s->comp, err, sizeof err);
	if (rc != 0) {
		ipc_shm_unmap(&s->shm);
		free(s);
		return fail(rp, rc, "engine %s: %s", h->engine_name, err);
	}
	snprintf(s->name, sizeof s->name, "%s", h->engine_name);
	s->pid = h->pid;
	s->pipe_id = (uint32_t)nng_pipe_id(pipe);
	atomic_store(&s->refs, 1); /* the registry's */

	pthread_mutex_lock(&reg->lock);
	other = sc_registry_session_by_name(reg, s->name);
	if (other) {
		uint32_t pid = other->pid;
		pthread_mutex_unlock(&reg->lock);
		ipc_shm_unmap(&s->shm);
		free(s);
		return fail(rp, KVF_EEXIST,
		            "engine name '%s' is already connected (pid %u)",
		            h->engine_name, pid);
	}
	s->id = reg->next_session++;
	rc = sc_idmap_put(&reg->sessions, s->id, s);
	pthread_mutex_unlock(&reg->lock);
	if (rc != 0) {
		ipc_shm_unmap(&s->shm);
		free(s);
		return fail(rp, KVF_ENOMEM, "out of memory");
	}
	atomic_fetch_add(&d->counters.engines, 1);
	sc_xfers_registry_changed(d);
	{
		/* The pid from the kernel, not the hello's, for the pidfd. */
		uint64_t kpid = 0;
		if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &kpid) == 0 &&
		    d->engines)
			sc_engine_watch_add(d->engines->watch, (pid_t)kpid, s->id);
	}
	sc_info("engine %s (pid %u): connected as session %llu", s->name,
	        s->pid, (unsigned long long)s->id);

	kvf__engine__hello_reply__init(hr);
	hr->proto_version = KVF_ENGINE_PROTO_VERSION;
	hr->session_id = s->id;
	hr->sidecar_version = (char *)KVF_VERSION_STRING;
	hr->sidecar_id = d->sidecar_id;
	hr->provider = (char *)xfer_fabric_info(d->fabric)->provider;
	hr->doorbell_shm = (char *)sc_xfers_doorbell_name(d);
	kvf__engine__reply__init(&rp->r);
	rp->r.body_case = KVF__ENGINE__REPLY__BODY_HELLO;
	rp->r.hello = hr;
	return &rp->r;
}

/* The layout must place every block of every layer inside the region. */
static int layout_ok(const Kvf__KvLayout *l, uint64_t len, char *err,
                     size_t errlen)
{
	unsigned __int128 last;

	if (l->num_layers == 0 || l->num_blocks == 0 || l->block_bytes == 0) {
		snprintf(err, errlen, "layout needs layers, blocks and block "
		         "bytes > 0");
		return 0;
	}
	last = (unsigned __int128)l->offset +
	       (unsigned __int128)(l->num_layers - 1) * l->layer_stride +
	       (unsigned __int128)(l->num_blocks - 1) * l->block_stride +
	       l->block_bytes;
	if (last > len) {
		snprintf(err, errlen,
		         "layout reaches byte %llu, past the region's %llu bytes",
		         (unsigned long long)last, (unsigned long long)len);
		return 0;
	}
	return 1;
}

/*
 * Register a region on every rail. GPU memory (GPUDirect) prefers the
 * rails whose NICs sit nearest its GPU on the PCI tree; host memory, and
 * rails of unknown position, use them all.
 */
static int register_on_rails(struct sc_daemon *d, struct sc_region *r,
                             char *err, size_t errlen)
{
	const char *paths[SC_MAX_RAILS];
	int rc;

	for (uint32_t i = 0; i < d->nrails; i++) {
		struct sc_region_rail *rr = &r->rail[i];
		rc = xfer_mr_reg(d->rails[i], r->base, r->len, r->kind,
		                 r->cuda_device, r->id, &rr->mr);
		if (rc != 0) {
			snprintf(err, errlen, "fabric registration on rail %u "
			         "(%s) failed: %s", i,
			         xfer_fabric_info(d->rails[i])->domain,
			         kvf_strerror(rc));
			return rc; /* sc_region_rele closes those made */
		}
		r->nrails = i + 1;
		rr->desc = xfer_mr_desc(rr->mr);
		rr->key = xfer_mr_key(rr->mr);
		paths[i] = xfer_fabric_info(d->rails[i])->pci_path;
	}
	r->mr = r->rail[0].mr;
	r->desc = r->rail[0].desc;
	r->key = r->rail[0].key;
	r->remote_base = xfer_mr_remote_base(r->mr);
	r->rail_mask = d->nrails >= 32 ? UINT32_MAX : (1u << d->nrails) - 1;
	if (r->kind == XFER_MEM_CUDA && d->nrails > 1) {
		char dev[256] = "";
		const char *bus =
			xfer_cuda_bus_id(sc_gpu_cuda(d, NULL, 0), r->cuda_device);
		if (bus[0])
			xfer_topo_pci_path(getenv("KVFERRY_SYSFS_ROOT"), bus,
			                   dev, sizeof dev);
		r->rail_mask = xfer_topo_nearest(dev, paths, (int)d->nrails);
		sc_info("region %u on GPU %d (%s): rails 0x%x are nearest",
		        r->id, r->cuda_device, bus[0] ? bus : "bus unknown",
		        r->rail_mask);
	}
	return 0;
}

static Kvf__Engine__Reply *on_register(struct sc_daemon *d,
                                       const Kvf__Engine__RegisterRegion *m,
                                       nng_pipe pipe, struct reply *rp,
                                       Kvf__Engine__RegisterReply *rr)
{
	struct sc_registry *reg = d->registry;
	Kvf__Engine__Reply *out = NULL;
	struct sc_session *s;
	struct sc_region *r;
	char err[256];
	int rc;

	if (!(s = session_of(d, m->session_id, pipe, rp, &out)))
		return out;
	if (m->layout && !layout_ok(m->layout, m->length, err, sizeof err)) {
		out = fail(rp, KVF_EINVAL, "engine %s: region of %llu bytes: %s",
		           s->name, (unsigned long long)m->length, err);
		goto done;
	}
	if (!(r = calloc(1, sizeof *r))) {
		out = fail(rp, KVF_ENOMEM, "out of memory");
		goto done;
	}
	atomic_store(&r->refs, 1);
	r->d = d;
	r->cuda_device = -1;
	r->session_id = s->id;
	r->len = m->length;
	if (m->layout) {
		r->has_layout = true;
		r->layout = (struct kvf_layout){
			m->layout->num_layers,   m->layout->num_blocks,
			m->layout->block_bytes,  m->layout->layer_stride,
			m->layout->block_stride, m->layout->offset};
	}
	pthread_mutex_lock(&reg->lock);
	r->id = reg->next_region++;
	pthread_mutex_unlock(&reg->lock);

	if (m->kind == KVF__ENGINE__MEM_KIND__MEM_HOST) {
		rc = ipc_shm_attach(m->shm_name, m->length, 1, &r->shm, err,
		                    sizeof err);
		if (rc == 0) {
			r->base = r->shm.base;
			r->kind = XFER_MEM_HOST;
		}
	} else if (m->kind == KVF__ENGINE__MEM_KIND__MEM_CUDA) {
		rc = sc_region_import_cuda(d, r, m, err, sizeof err);
	} else {
		rc = KVF_EINVAL;
		snprintf(err, sizeof err, "unknown memory kind %d", m->kind);
	}
	/* Host memory always goes to the fabric; GPU memory only when the
	 * provider registers it (GPUDirect), else it is staged. */
	if (rc == 0 && (r->kind == XFER_MEM_HOST ||
	                xfer_fabric_info(d->fabric)->hmem_cuda))
		rc = register_on_rails(d, r, err, sizeof err);
	if (rc != 0 && !err[0])
		snprintf(err, sizeof err, "fabric registration failed");
	if (rc != 0) {
		out = fail(rp, rc, "engine %s: region of %llu bytes: %s",
		           s->name, (unsigned long long)m->length, err);
		sc_region_rele(r);
		goto done;
	}

	pthread_mutex_lock(&reg->lock);
	if (atomic_load(&s->closing)) {
		rc = KVF_ECLOSED;
	} else {
		rc = sc_idmap_put(&reg->regions, r->id, r);
		if (rc == 0)
			s->regions_count++;
	}
	pthread_mutex_unlock(&reg->lock);
	if (rc != 0) {
		out = fail(rp, rc, "engine %s: region not added", s->name);
		sc_region_rele(r);
		goto done;
	}
	sc_xfers_registry_changed(d);
	atomic_fetch_add(&d->counters.regions, 1);
	sc_info("engine %s: region %u registered (%s, %llu bytes%s)", s->name,
	        r->id, r->kind == XFER_MEM_HOST ? "host" : "cuda",
	        (unsigned long long)r->len, r->has_layout ? ", KV layout" : "");
	kvf__engine__register_reply__init(rr);
	rr->region_id = r->id;
	kvf__engine__reply__init(&rp->r);
	rp->r.body_case = KVF__ENGINE__REPLY__BODY_REGISTER_REGION;
	rp->r.register_region = rr;
	out = &rp->r;
done:
	sc_session_rele(s);
	return out;
}

static Kvf__Engine__Reply *ok_reply(struct reply *rp, Kvf__Engine__Ok *ok)
{
	kvf__engine__ok__init(ok);
	kvf__engine__reply__init(&rp->r);
	rp->r.body_case = KVF__ENGINE__REPLY__BODY_OK;
	rp->r.ok = ok;
	return &rp->r;
}

static Kvf__Engine__Reply *on_deregister(struct sc_daemon *d,
                                         const Kvf__Engine__DeregisterRegion *m,
                                         nng_pipe pipe, struct reply *rp,
                                         Kvf__Engine__Ok *ok)
{
	struct sc_registry *reg = d->registry;
	Kvf__Engine__Reply *out = NULL;
	struct sc_session *s;
	struct sc_region *r;

	if (!(s = session_of(d, m->session_id, pipe, rp, &out)))
		return out;
	pthread_mutex_lock(&reg->lock);
	r = sc_idmap_get(&reg->regions, m->region_id);
	if (r && r->session_id == s->id) {
		sc_idmap_del(&reg->regions, r->id);
		s->regions_count--;
	} else {
		r = NULL;
	}
	pthread_mutex_unlock(&reg->lock);
	if (!r) {
		out = fail(rp, KVF_ENOENT, "engine %s: region %u is not registered "
		           "by this engine", s->name, m->region_id);
	} else {
		/* Transfers accepted from now on do not find it. */
		sc_xfers_registry_changed(d);
		atomic_fetch_sub(&d->counters.regions, 1);
		sc_info("engine %s: region %u deregistered", s->name, r->id);
		/* Transfers still using it hold their own references. */
		sc_region_rele(r);
		out = ok_reply(rp, ok);
	}
	sc_session_rele(s);
	return out;
}

/* Remove a session and its regions from the tables; the progress thread
 * ends its transfers. Safe to call twice. */
static void teardown(struct sc_daemon *d, struct sc_session *s,
                     const char *why)
{
	struct sc_registry *reg = d->registry;
	struct sc_region **dead = NULL;
	size_t ndead = 0, pos = 0;
	struct sc_region *r;

	pthread_mutex_lock(&reg->lock);
	if (sc_idmap_get(&reg->sessions, s->id) != s) {
		pthread_mutex_unlock(&reg->lock);
		return;
	}
	sc_idmap_del(&reg->sessions, s->id);
	atomic_store(&s->closing, 1);
	if (d->engines)
		sc_engine_watch_remove(d->engines->watch, s->id);
	dead = calloc(s->regions_count + 1, sizeof *dead);
	while (dead && (r = sc_idmap_next(&reg->regions, &pos, NULL))) {
		if (r->session_id == s->id && ndead < s->regions_count)
			dead[ndead++] = r;
	}
	for (size_t i = 0; i < ndead; i++)
		sc_idmap_del(&reg->regions, dead[i]->id);
	s->regions_count = 0;
	pthread_mutex_unlock(&reg->lock);

	sc_xfers_registry_changed(d);
	atomic_fetch_sub(&d->counters.engines, 1);
	atomic_fetch_sub(&d->counters.regions, ndead);
	sc_info("engine %s (session %llu): %s; %zu regions released", s->name,
	        (unsigned long long)s->id, why, ndead);
	for (size_t i = 0; i < ndead; i++)
		sc_region_rele(dead[i]);
	free(dead);
	sc_xfers_kick(d);
	sc_session_rele(s); /* the registry's reference */
}

static Kvf__Engine__Reply *on_goodbye(struct sc_daemon *d,
                                      const Kvf__Engine__Goodbye *m,
                                      nng_pipe pipe, struct reply *rp,
                                      Kvf__Engine__Ok *ok)
{
	Kvf__Engine__Reply *out = NULL;
	struct sc_session *s = session_of(d, m->session_id, pipe, rp, &out);
	if (!s)
		return out;
	teardown(d, s, "said goodbye");
	sc_session_rele(s);
	return ok_reply(rp, ok);
}

/* The GPU of the session's first CUDA region, or -1: where a same-host
 * peer's memory is best mapped for copies from this engine's. */
static int engine_gpu(struct sc_daemon *d, const struct sc_session *s)
{
	struct sc_registry *reg = d->registry;
	struct sc_region *r;
	size_t pos = 0;
	int dev = -1;

	pthread_mutex_lock(&reg->lock);
	while (dev < 0 && (r = sc_idmap_next(&reg->regions, &pos, NULL)))
		if (r->session_id == s->id && r->kind == XFER_MEM_CUDA)
			dev = r->cuda_device;
	pthread_mutex_unlock(&reg->lock);
	return dev;
}

static Kvf__Engine__Reply *on_resolve(struct sc_daemon *d,
                                      const Kvf__Engine__ResolvePeer *m,
                                      nng_pipe pipe, struct reply *rp,
                                      Kvf__Engine__ResolvePeerReply *pr,
                                      char *path, size_t pathlen)
{
	Kvf__Engine__Reply *out = NULL;
	struct sc_session *s;
	char err[400];
	uint32_t peer_id;
	int rc;

	if (!(s = session_of(d, m->session_id, pipe, rp, &out)))
		return out;
	rc = sc_peers_resolve(d, m->sidecar_url, m->engine_name, m->timeout_ms,
	                      engine_gpu(d, s),
	                      &peer_id, path, pathlen, err, sizeof err);
	if (rc != 0) {
		out = fail(rp, rc, "engine %s: resolve %s at %s: %s", s->name,
		           m->engine_name, m->sidecar_url, err);
	} else {
		kvf__engine__resolve_peer_reply__init(pr);
		pr->peer_id = peer_id;
		pr->path = path;
		kvf__engine__reply__init(&rp->r);
		rp->r.body_case = KVF__ENGINE__REPLY__BODY_RESOLVE_PEER;
		rp->r.resolve_peer = pr;
		out = &rp->r;
	}
	sc_session_rele(s);
	return out;
}

static nng_msg *handle(void *arg, nng_msg *req, nng_pipe pipe)
{
	struct sc_engines *e = arg;
	struct sc_daemon *d = e->d;
	Kvf__Engine__Request *m = NULL;
	Kvf__Engine__Reply *out;
	struct reply rp;
	Kvf__Engine__HelloReply hr;
	Kvf__Engine__RegisterReply rr;
	Kvf__Engine__ResolvePeerReply pr;
	Kvf__Engine__Ok ok;
	char path[32] = "";
	nng_msg *rep;
	size_t len = nng_msg_len(req);

	if (len > KVF_MAX_CONTROL_MSG) {
		out = fail(&rp, KVF_EPROTO,
		           "engine message of %zu bytes exceeds the %u-byte limit",
		           len, KVF_MAX_CONTROL_MSG);
	} else if (!(m = kvf__engine__request__unpack(NULL, len,
	                                              nng_msg_body(req)))) {
		out = fail(&rp, KVF_EPROTO,
		           "undecodable engine message (%zu bytes)", len);
	} else {
		switch (m->body_case) {
		case KVF__ENGINE__REQUEST__BODY_HELLO:
			out = on_hello(d, m->hello, pipe, &rp, &hr);
			break;
		case KVF__ENGINE__REQUEST__BODY_REGISTER_REGION:
			out = on_register(d, m->register_region, pipe, &rp, &rr);
			break;
		case KVF__ENGINE__REQUEST__BODY_DEREGISTER_REGION:
			out = on_deregister(d, m->deregister_region, pipe, &rp,
			                    &ok);
			break;
		case KVF__ENGINE__REQUEST__BODY_RESOLVE_PEER:
			out = on_resolve(d, m->resolve_peer, pipe, &rp, &pr,
			                 path, sizeof path);
			break;
		case KVF__ENGINE__REQUEST__BODY_GOODBYE:
			out = on_goodbye(d, m->goodbye, pipe, &rp, &ok);
			break;
		default:
			out = fail(&rp, KVF_EPROTO,
			           "engine message with no known request (%d)",
			           (int)m->body_case);
			break;
		}
	}
	if (nng_msg_alloc(&rep, kvf__engine__reply__get_packed_size(out)) == 0)
		kvf__engine__reply__pack(out, nng_msg_body(rep));
	else
		rep = NULL;
	if (m)
		kvf__engine__request__free_unpacked(m, NULL);
	return rep;
}

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct sc_daemon *d = arg;
	struct sc_registry *reg = d->registry;
	struct sc_session *s, *found = NULL;
	size_t pos = 0;

	if (ev != NNG_PIPE_EV_REM_POST || !reg)
		return;
	pthread_mutex_lock(&reg->lock);
	while ((s = sc_idmap_next(&reg->sessions, &pos, NULL))) {
		if (s->pipe_id == (uint32_t)nng_pipe_id(p)) {
			found = s;
			sc_session_hold(s);
			break;
		}
	}
	pthread_mutex_unlock(&reg->lock);
	if (found) {
		teardown(d, found, "disconnected");
		sc_session_rele(found);
	}
}

/* The pidfd of session_id's process became readable: it exited. */
static void on_exit_pid(void *arg, uint64_t session_id)
{
	struct sc_daemon *d = arg;
	struct sc_registry *reg = d->registry;
	struct sc_session *s;

	pthread_mutex_lock(&reg->lock);
	s = sc_idmap_get(&reg->sessions, session_id);
	if (s)
		sc_session_hold(s);
	pthread_mutex_unlock(&reg->lock);
	if (s) {
		teardown(d, s, "process exited");
		sc_session_rele(s);
	}
}

int sc_engines_start(struct sc_daemon *d)
{
	struct sc_engines *e = calloc(1, sizeof *e);
	int rc;

	if (!e)
		return KVF_ENOMEM;
	e->d = d;
	/* Accept somewhat more than the limit so an oversized request gets
	 * an error reply instead of a dropped connection. */
	nng_socket_set_size(d->engine_sock, NNG_OPT_RECVMAXSZ,
	                    4 * (size_t)KVF_MAX_CONTROL_MSG);
	nng_pipe_notify(d->engine_sock, NNG_PIPE_EV_REM_POST, on_pipe, d);
	if (sc_engine_watch_start(on_exit_pid, d, &e->watch) != 0)
		sc_warn("engines: no pidfd watcher; engine deaths are seen "
		        "through their connections only");
	d->engines = e;
	rc = sc_rep_server_start(d->engine_sock, WORKERS, handle, e, "engine",
	                         &e->srv);
	if (rc != 0) {
		d->engines = NULL;
		sc_engine_watch_stop(e->watch);
		free(e);
		return rc;
	}
	return 0;
}

void sc_engines_stop(struct sc_daemon *d)
{
	struct sc_engines *e = d->engines;
	if (!e)
		return;
	nng_pipe_notify(d->engine_sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
	sc_rep_server_stop(e->srv);
	sc_engine_watch_stop(e->watch);
	/* Sessions still open are closed by the progress thread's stop. */
	d->engines = NULL;
	free(e);
}
