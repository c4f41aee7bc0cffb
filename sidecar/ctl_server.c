/*
 * sidecar/ctl_server.c - serves kvferryctl on the control socket.
 *
 * Two worker threads each own an nng context on the rep0 socket and loop:
 * receive a request, decode it, check its size and protocol version, look
 * its body case up in the handler table, pack the reply and send it. The
 * contexts let the two workers answer two clients at once without
 * tangling replies; running the handlers on our own threads (rather than
 * in nng aio callbacks) lets a handler take a lock or wait briefly.
 *
 * A request that does not decode, is larger than KVF_MAX_CONTROL_MSG or
 * speaks another protocol version gets an Error reply and one log line;
 * the worker then goes on serving. The socket's receive limit is set above
 * KVF_MAX_CONTROL_MSG (by the daemon) so that a slightly oversized request
 * is answered rather than cutting the client's connection.
 */
#include "sidecar/ctl_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>

#include "client/kvferry.h"
#include "proto/version.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"

#define CTL_WORKERS 2
#define CTL_MAX_BODY 64

struct worker {
	struct sc_ctl_server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	pthread_t thread;
	int ctx_open;
	int started;
};

struct sc_ctl_server {
	struct sc_daemon *d;
	struct worker w[CTL_WORKERS];
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static sc_ctl_fn table[CTL_MAX_BODY];

int sc_ctl_register(Kvf__Ctl__Request__BodyCase body, sc_ctl_fn fn)
{
	if ((int)body <= 0 || (int)body >= CTL_MAX_BODY)
		return KVF_EINVAL;
	pthread_mutex_lock(&table_lock);
	table[body] = fn;
	pthread_mutex_unlock(&table_lock);
	return 0;
}

static sc_ctl_fn lookup(Kvf__Ctl__Request__BodyCase body)
{
	sc_ctl_fn fn = NULL;

	if ((int)body <= 0 || (int)body >= CTL_MAX_BODY)
		return NULL;
	pthread_mutex_lock(&table_lock);
	fn = table[body];
	pthread_mutex_unlock(&table_lock);
	return fn;
}

char *sc_ctl_strdup(const char *s)
{
	return strdup(s ? s : "");
}

/* Turn rep into an Error reply, dropping whatever a handler had set. */
static void set_error(Kvf__Ctl__Reply *rep, int code, const char *msg)
{
	Kvf__Error *e;

	if (rep->body_case != KVF__CTL__REPLY__BODY__NOT_SET) {
		/* Free the handler's body by freeing a shell reply that
		 * owns it. */
		Kvf__Ctl__Reply *shell = malloc(sizeof(*shell));
		if (shell) {
			*shell = *rep;
			kvf__ctl__reply__free_unpacked(shell, NULL);
		}
		kvf__ctl__reply__init(rep);
		rep->proto_version = KVF_CTL_PROTO_VERSION;
	}
	e = malloc(sizeof(*e));
	if (!e)
		return;
	kvf__error__init(e);
	e->code = (uint32_t)code;
	e->message = sc_ctl_strdup(msg);
	rep->body_case = KVF__CTL__REPLY__BODY_ERROR;
	rep->error = e;
}

/* Decode, check and dispatch one request; fills rep. */
static void handle(struct sc_daemon *d, const uint8_t *buf, size_t len,
                   Kvf__Ctl__Reply *rep)
{
	Kvf__Ctl__Request *req;
	char err[512];
	sc_ctl_fn fn;
	int rv;

	if (len > KVF_MAX_CONTROL_MSG) {
		snprintf(err, sizeof(err),
		    "control request of %zu bytes is larger than the limit "
		    "of %u bytes", len, KVF_MAX_CONTROL_MSG);
		sc_warn("control: %s: refused (%s)", err,
		    kvf_strerror(KVF_EPROTO));
		set_error(rep, KVF_EPROTO, err);
		return;
	}
	req = kvf__ctl__request__unpack(NULL, len, buf);
	if (!req) {
		snprintf(err, sizeof(err),
		    "control request of %zu bytes does not decode as "
		    "kvf.ctl.Request", len);
		sc_warn("control: %s: refused (%s)", err,
		    kvf_strerror(KVF_EPROTO));
		set_error(rep, KVF_EPROTO, err);
		return;
	}
	if (req->proto_version != KVF_CTL_PROTO_VERSION) {
		snprintf(err, sizeof(err),
		    "control protocol version %u refused: this sidecar "
		    "(kvferry %s) speaks control protocol version %u",
		    req->proto_version, KVF_VERSION_STRING,
		    KVF_CTL_PROTO_VERSION);
		sc_warn("control: %s", err);
		set_error(rep, KVF_EVERSION, err);
		goto out;
	}
	if (req->body_case == KVF__CTL__REQUEST__BODY__NOT_SET) {
		set_error(rep, KVF_EINVAL, "control request carries no command");
		goto out;
	}
	fn = lookup(req->body_case);
	if (!fn) {
		snprintf(err, sizeof(err),
		    "control command %d is not supported by this sidecar "
		    "(kvferry %s)", (int)req->body_case, KVF_VERSION_STRING);
		set_error(rep, KVF_ENOTSUP, err);
		goto out;
	}
	err[0] = '\0';
	rv = fn(d, req, rep, err, sizeof(err));
	if (rv != 0) {
		if (!err[0])
			snprintf(err, sizeof(err), "%s", kvf_strerror(rv));
		sc_debug("control: command %d failed: %s (%s)",
		    (int)req->body_case, err, kvf_strerror(rv));
		set_error(rep, rv, err);
	}
out:
	kvf__ctl__request__free_unpacked(req, NULL);
}

/* Pack rep into a new message; NULL when out of memory. */
static nng_msg *pack(const Kvf__Ctl__Reply *rep)
{
	size_t n = kvf__ctl__reply__get_packed_size(rep);
	nng_msg *m;

	if (nng_msg_alloc(&m, n) != 0)
		return NULL;
	kvf__ctl__reply__pack(rep, nng_msg_body(m));
	return m;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sc_daemon *d = w->srv->d;

	for (;;) {
		Kvf__Ctl__Reply *rep;
		nng_msg *in, *out;
		int rv;

		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED ||
		    atomic_load(&d->stopping))
			break;
		if (rv != 0) {
			/* Not expected on a rep context; back off so a
			 * persistent failure cannot spin. */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			sc_warn("control: nng_ctx_recv() failed: %s",
			    nng_strerror(rv));
			nanosleep(&ts, NULL);
			continue;
		}
		in = nng_aio_get_msg(w->aio);
		rep = malloc(sizeof(*rep));
		if (!rep) {
			nng_msg_free(in);
			continue;
		}
		kvf__ctl__reply__init(rep);
		rep->proto_version = KVF_CTL_PROTO_VERSION;
		handle(d, nng_msg_body(in), nng_msg_len(in), rep);
		nng_msg_free(in);
		out = pack(rep);
		kvf__ctl__reply__free_unpacked(rep, NULL);
		if (!out) {
			sc_warn("control: no memory for a reply");
			continue;
		}
		nng_aio_set_msg(w->aio, out);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			nng_msg_free(out);
			if (rv == NNG_ECLOSED)
				break;
			sc_debug("control: nng_ctx_send() failed: %s",
			    nng_strerror(rv));
		}
	}
	return NULL;
}

int sc_ctl_server_start(struct sc_daemon *d, struct sc_ctl_server **out,
                        char *err, size_t errlen)
{
	struct sc_ctl_server *s = calloc(1, sizeof(*s));
	int rv;

	if (!s) {
		snprintf(err, errlen, "control server: out of memory");
		return KVF_ENOMEM;
	}
	s->d = d;
	sc_ctl_builtin_register();
	for (int i = 0; i < CTL_WORKERS; i++) {
		struct worker *w = &s->w[i];
		w->srv = s;
		if ((rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0 ||
		    (rv = nng_ctx_open(&w->ctx, d->ctl_sock)) != 0) {
			snprintf(err, errlen,
			    "control server: nng_ctx_open() failed: %s",
			    nng_strerror(rv));
			sc_ctl_server_stop(s);
			return KVF_ESYSTEM;
		}
		w->ctx_open = 1;
		if ((rv = pthread_create(&w->thread, NULL, worker_main, w))) {
			snprintf(err, errlen,
			    "control server: pthread_create() failed: %s",
			    strerror(rv));
			sc_ctl_server_stop(s);
			return KVF_ESYSTEM;
		}
		w->started = 1;
	}
	*out = s;
	return 0;
}

void sc_ctl_server_stop(struct sc_ctl_server *s)
{
	if (!s)
		return;
	/* Closing a context fails its pending receive with NNG_ECLOSED and
	 * every later operation on it too, so the worker leaves its loop
	 * whichever step it is at. */
	for (int i = 0; i < CTL_WORKERS; i++)
		if (s->w[i].ctx_open)
			nng_ctx_close(s->w[i].ctx);
	for (int i = 0; i < CTL_WORKERS; i++) {
		if (s->w[i].started)
			pthread_join(s->w[i].thread, NULL);
		if (s->w[i].aio)
			nng_aio_free(s->w[i].aio);
	}
	free(s);
}
