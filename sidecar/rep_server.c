/*
 * sidecar/rep_server.c - the request loop shared by the engine and peer
 * servers. nng 1.5 has no synchronous context receive, so each worker
 * drives one aio and waits on it; closing the contexts is what ends the
 * workers at shutdown.
 */
#include "sidecar/rep_server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/kvferry.h"
#include "sidecar/log.h"

struct worker {
	struct sc_rep_server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	pthread_t thread;
	int started;
};

struct sc_rep_server {
	sc_rep_handler fn;
	void *arg;
	char name[32];
	_Atomic int stop;
	int n;
	struct worker w[];
};

static void *work(void *p)
{
	struct worker *w = p;
	struct sc_rep_server *s = w->srv;

	while (!atomic_load(&s->stop)) {
		nng_msg *req, *rep;
		int rv;

		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			break;
		if (rv != 0)
			continue;
		req = nng_aio_get_msg(w->aio);
		rep = s->fn(s->arg, req, nng_msg_get_pipe(req));
		nng_msg_free(req);
		if (!rep)
			continue;
		nng_aio_set_msg(w->aio, rep);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if (nng_aio_result(w->aio) != 0)
			nng_msg_free(rep);
	}
	return NULL;
}

int sc_rep_server_start(nng_socket sock, int nworkers, sc_rep_handler fn,
                        void *arg, const char *name,
                        struct sc_rep_server **out)
{
	struct sc_rep_server *s;
	int rv;

	s = calloc(1, sizeof *s + (size_t)nworkers * sizeof s->w[0]);
	if (!s)
		return KVF_ENOMEM;
	s->fn = fn;
	s->arg = arg;
	s->n = nworkers;
	snprintf(s->name, sizeof s->name, "%s", name);
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &s->w[i];
		w->srv = s;
		if ((rv = nng_ctx_open(&w->ctx, sock)) != 0 ||
		    (rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0) {
			sc_error("%s server: nng_ctx_open() failed: %s", name,
			         nng_strerror(rv));
			sc_rep_server_stop(s);
			return KVF_ESYSTEM;
		}
		if (pthread_create(&w->thread, NULL, work, w) != 0) {
			sc_rep_server_stop(s);
			return KVF_ESYSTEM;
		}
		w->started = 1;
	}
	*out = s;
	return 0;
}

void sc_rep_server_stop(struct sc_rep_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, 1);
	for (int i = 0; i < s->n; i++)
		if (nng_ctx_id(s->w[i].ctx) > 0)
			nng_ctx_close(s->w[i].ctx);
	for (int i = 0; i < s->n; i++) {
		if (s->w[i].started)
			pthread_join(s->w[i].thread, NULL);
		if (s->w[i].aio)
			nng_aio_free(s->w[i].aio);
	}
	free(s);
}
