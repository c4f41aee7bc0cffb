/*
 * client/conn.c - the engine's control connection to its sidecar: connect
 * and say hello (version check, session rings), request/reply calls with a
 * bounded wait, peer resolution, and close. A removed nng pipe means the
 * sidecar died: every later call then fails fast with KVF_ECLOSED and
 * waiters on the completion ring are woken.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "client/client_int.h"
#include "ipc/wire.h"
#include "proto/version.h"

#define DEFAULT_SOCKET "/run/kvferry/engine.sock"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RING_BYTES (1u << 20)
/* About what the earlier fixed spin of 2000 pauses took on x86; on a
 * machine with cores to spare the notification of a small transfer comes
 * well within it. */
#define DEFAULT_WAIT_SPIN_US 50u
#define MAX_WAIT_SPIN_US 10000u

static _Thread_local char last_error[256];

const char *kvf_last_error(void)
{
	return last_error;
}

int client_fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	return err;
}

static int from_nng(int rv)
{
	switch (rv) {
	case NNG_ETIMEDOUT:
		return KVF_ETIMEDOUT;
	case NNG_ENOMEM:
		return KVF_ENOMEM;
	case NNG_ECONNREFUSED:
	case NNG_ECLOSED:
	case NNG_ECONNSHUT:
	case NNG_ECONNRESET:
	case NNG_ENOENT:
		return KVF_ECLOSED;
	case NNG_EMSGSIZE:
		return KVF_EPROTO;
	default:
		return KVF_ESYSTEM;
	}
}

static void on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	kvf_client *c = arg;
	(void)p;
	(void)ev;
	atomic_store(&c->dead, 1);
	/* Wake kvf_wait callers so they see the death at once. */
	atomic_fetch_add(&c->comp.sh->consumer_bell.seq, 1);
	ipc_doorbell_ring(&c->comp.sh->consumer_bell);
}

int client_call(kvf_client *c, const Kvf__Engine__Request *req,
                Kvf__Engine__Reply **reply)
{
	size_t len = kvf__engine__request__get_packed_size(req);
	nng_msg *msg = NULL;
	Kvf__Engine__Reply *rep;
	int rv;

	if (atomic_load(&c->dead))
		return client_fail(KVF_ECLOSED, "sidecar connection lost");
	if ((rv = nng_msg_alloc(&msg, len)) != 0)
		return client_fail(KVF_ENOMEM, "control message: %s",
		                   nng_strerror(rv));
	kvf__engine__request__pack(req, nng_msg_body(msg));

	pthread_mutex_lock(&c->ctl_lock);
	rv = nng_sendmsg(c->sock, msg, 0);
	if (rv != 0) {
		nng_msg_free(msg);
		msg = NULL;
	} else {
		rv = nng_recvmsg(c->sock, &msg, 0);
	}
	pthread_mutex_unlock(&c->ctl_lock);
	if (rv != 0)
		return client_fail(from_nng(rv),
		                   "sidecar did not answer: %s (waited up to "
		                   "%u ms)",
		                   nng_strerror(rv), c->timeout_ms);

	rep = kvf__engine__reply__unpack(NULL, nng_msg_len(msg),
	                                 nng_msg_body(msg));
	nng_msg_free(msg);
	if (!rep)
		return client_fail(KVF_EPROTO, "sidecar sent an undecodable "
		                               "reply");
	if (rep->body_case == KVF__ENGINE__REPLY__BODY_ERROR) {
		int code = (int)rep->error->code;
		if (code <= 0 || code >= KVF_ERR_COUNT)
			code = KVF_EPROTO;
		client_fail(code, "%s", rep->error->message);
		kvf__engine__reply__free_unpacked(rep, NULL);
		return code;
	}
	*reply = rep;
	return 0;
}

static const char *socket_path(const struct kvf_connect_opts *o)
{
	const char *p = o ? o->socket_path : NULL;
	if (!p || !p[0])
		p = getenv("KVFERRY_ENGINE_SOCKET");
	return p && p[0] ? p : DEFAULT_SOCKET;
}

static int hello(kvf_client *c, uint32_t ring_bytes)
{
	Kvf__Engine__Request req = KVF__ENGINE__REQUEST__INIT;
	Kvf__Engine__Hello h = KVF__ENGINE__HELLO__INIT;
	Kvf__Engine__Reply *rep = NULL;
	char err[200];
	int rc;

	h.proto_version = KVF_ENGINE_PROTO_VERSION;
	h.engine_name = c->name;
	h.pid = (uint32_t)getpid();
	h.ring_shm = c->session_shm.name;
	h.ring_bytes = c->session_shm.len;
	req.body_case = KVF__ENGINE__REQUEST__BODY_HELLO;
	req.hello = &h;
	(void)ring_bytes;
	if ((rc = client_call(c, &req, &rep)) != 0)
		return rc;
	if (rep->body_case != KVF__ENGINE__REPLY__BODY_HELLO) {
		kvf__engine__reply__free_unpacked(rep, NULL);
		return client_fail(KVF_EPROTO, "hello: unexpected reply");
	}
	c->session_id = rep->hello->session_id;
	rc = ipc_shm_attach(rep->hello->doorbell_shm, 4096, 0, &c->doorbell_shm,
	                    err, sizeof err);
	kvf__engine__reply__free_unpacked(rep, NULL);
	if (rc != 0)
		return client_fail(rc, "sidecar doorbell: %s", err);
	c->sidecar_bell = c->doorbell_shm.base;
	return 0;
}

/*
 * kvf_wait's spin before it sleeps, from $KVFERRY_WAIT_SPIN_US:
 * microseconds (default DEFAULT_WAIT_SPIN_US; 0 never spins: an engine
 * that shares few cores with its sidecar, or prefers CPU to latency), or
 * "auto": up to the default, but only while this client's waits show that
 * spinning shortens them (ipc/spin.h). Auto is not the default: on a
 * 16-core host it settled on sleeping and doubled shm's 4 KiB latency
 * (5 to 10 us), while a fixed spin wins wherever cores are to spare.
 */
static int wait_spin_ns(uint32_t *out, bool *adaptive)
{
	const char *v = getenv("KVFERRY_WAIT_SPIN_US");
	unsigned long us;
	char *end;

	*adaptive = false;
	if (!v || !v[0] || strcmp(v, "auto") == 0) {
		*out = DEFAULT_WAIT_SPIN_US * 1000u;
		*adaptive = v && v[0];
		return 0;
	}
	errno = 0;
	us = strtoul(v, &end, 10);
	if (errno || *end || v[0] == '-' || us > MAX_WAIT_SPIN_US)
		return client_fail(KVF_EINVAL,
		                   "kvf_connect: KVFERRY_WAIT_SPIN_US='%.32s' "
		                   "is not a number of microseconds in 0..%u "
		                   "or auto", v, MAX_WAIT_SPIN_US);
	*out = (uint32_t)us * 1000u;
	return 0;
}

int kvf_connect(const char *engine_name, const struct kvf_connect_opts *opts,
                kvf_client **out)
{
	const char *path = socket_path(opts);
	uint32_t ring = opts && opts->ring_bytes ? opts->ring_bytes
	                                         : DEFAULT_RING_BYTES;
	char url[256], err[200];
	uint32_t spin_ns = 0;
	bool spin_auto = false;
	kvf_client *c;
	int rv, rc;

	if (!engine_name || !engine_name[0] ||
	    strlen(engine_name) >= KVF_MAX_NAME || !out)
		return client_fail(KVF_EINVAL,
		                   "kvf_connect: engine name must be 1..%d bytes",
		                   KVF_MAX_NAME - 1);
	if (ring < IPC_RING_MIN_BYTES || ring > IPC_RING_MAX_BYTES ||
	    (ring & (ring - 1)))
		return client_fail(KVF_EINVAL,
		                   "kvf_connect: ring_bytes %u must be a power of "
		                   "two in %u..%u",
		                   ring, IPC_RING_MIN_BYTES, IPC_RING_MAX_BYTES);
	if (strlen(path) + 7 >= sizeof url)
		return client_fail(KVF_EINVAL, "kvf_connect: socket path too "
		                               "long");
	if ((rc = wait_spin_ns(&spin_ns, &spin_auto)) != 0)
		return rc;
	if (!(c = calloc(1, sizeof *c)))
		return client_fail(KVF_ENOMEM, "kvf_connect: out of memory");
	snprintf(c->name, sizeof c->name, "%s", engine_name);
	c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms
	                                         : DEFAULT_TIMEOUT_MS;
	pthread_mutex_init(&c->ctl_lock, NULL);
	pthread_mutex_init(&c->sub_lock, NULL);
	pthread_mutex_init(&c->comp_lock, NULL);
	pthread_mutex_init(&c->regions_lock, NULL);
	atomic_store(&c->next_xfer, 1);
	ipc_spin_init(&c->wait_spin, spin_ns);
	c->wait_adaptive = spin_auto;

	rc = ipc_shm_create("session", ipc_session_size(ring, ring),
	                    &c->session_shm, err, sizeof err);
	if (rc != 0) {
		client_fail(rc, "kvf_connect: %s", err);
		goto fail;
	}
	ipc_session_format(c->session_shm.base, ring, ring, &c->sub, &c->comp);

	snprintf(url, sizeof url, "ipc://%s", path);
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		rc = client_fail(KVF_ESYSTEM, "kvf_connect: nng_req0_open() "
		                 "failed: %s", nng_strerror(rv));
		goto fail;
	}
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, (int)c->timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, (int)c->timeout_ms);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, KVF_MAX_CONTROL_MSG);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe_removed, c);
	if ((rv = nng_dial(c->sock, url, NULL, 0)) != 0) {
		rc = client_fail(from_nng(rv),
		                 "kvf_connect: no sidecar at %s: %s (is kvferryd "
		                 "running? KVFERRY_ENGINE_SOCKET)",
		                 path, nng_strerror(rv));
		goto fail;
	}
	if ((rc = hello(c, ring)) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	{
		char keep[sizeof last_error];
		memcpy(keep, last_error, sizeof keep);
		ipc_shm_unlink(c->session_shm.name);
		kvf_close(c);
		memcpy(last_error, keep, sizeof keep);
	}
	return rc;
}

int kvf_resolve_peer(kvf_client *c, const char *sidecar_url,
                     const char *engine_name, uint32_t timeout_ms,
                     kvf_peer *out)
{
	Kvf__Engine__Request req = KVF__ENGINE__REQUEST__INIT;
	Kvf__Engine__ResolvePeer r = KVF__ENGINE__RESOLVE_PEER__INIT;
	Kvf__Engine__Reply *rep = NULL;
	int rc;

	if (!c || !sidecar_url || !engine_name || !out)
		return client_fail(KVF_EINVAL, "kvf_resolve_peer: NULL argument");
	r.session_id = c->session_id;
	r.sidecar_url = (char *)sidecar_url;
	r.engine_name = (char *)engine_name;
	r.timeout_ms = timeout_ms ? timeout_ms : c->timeout_ms;
	req.body_case = KVF__ENGINE__REQUEST__BODY_RESOLVE_PEER;
	req.resolve_peer = &r;
	if ((rc = client_call(c, &req, &rep)) != 0)
		return rc;
	if (rep->body_case != KVF__ENGINE__REPLY__BODY_RESOLVE_PEER) {
		kvf__engine__reply__free_unpacked(rep, NULL);
		return client_fail(KVF_EPROTO, "resolve: unexpected reply");
	}
	*out = rep->resolve_peer->peer_id;
	kvf__engine__reply__free_unpacked(rep, NULL);
	return 0;
}

void kvf_close(kvf_client *c)
{
	struct client_region *r, *next;

	if (!c)
		return;
	if (c->session_id && !atomic_load(&c->dead)) {
		Kvf__Engine__Request req = KVF__ENGINE__REQUEST__INIT;
		/* A sidecar that just died may not have dropped the pipe
		 * yet: do not wait the full timeout for its goodbye. */
		nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO,
		                  c->timeout_ms < 500 ? (int)c->timeout_ms : 500);
		Kvf__Engine__Goodbye g = KVF__ENGINE__GOODBYE__INIT;
		Kvf__Engine__Reply *rep = NULL;
		g.session_id = c->session_id;
		req.body_case = KVF__ENGINE__REQUEST__BODY_GOODBYE;
		req.goodbye = &g;
		if (client_call(c, &req, &rep) == 0)
			kvf__engine__reply__free_unpacked(rep, NULL);
	}
	if (nng_socket_id(c->sock) > 0)
		nng_close(c->sock);
	for (r = c->regions; r; r = next) {
		next = r->next;
		ipc_shm_unmap(&r->shm);
		free(r);
	}
	ipc_shm_unmap(&c->doorbell_shm);
	ipc_shm_unmap(&c->session_shm);
	pthread_mutex_destroy(&c->ctl_lock);
	pthread_mutex_destroy(&c->sub_lock);
	pthread_mutex_destroy(&c->comp_lock);
	pthread_mutex_destroy(&c->regions_lock);
	free(c);
}
