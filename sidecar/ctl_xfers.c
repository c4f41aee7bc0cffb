/*
 * sidecar/ctl_xfers.c - the `xfers` and `drain` control commands: the
 * transfers in flight, and refusing new transfers while those finish.
 *
 * Both read the progress thread's snapshot (sc_xfers_snapshot), which it
 * answers between two turns, so what they list is consistent. Draining
 * only sets d->draining: the progress thread refuses every transfer
 * submitted after that with KVF_EBUSY and keeps serving the others. A
 * drain request then waits for the in-flight counter to reach zero, but
 * only for a bounded time per request (a control worker must not be held
 * for long); kvferryctl repeats it until the sidecar is drained or its own
 * deadline passes.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/kvferry.h"
#include "sidecar/ctl_server.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"
#include "sidecar/xfers.h"

#define SNAPSHOT_MS 1000
/* The longest one drain request holds a control worker. */
#define DRAIN_WAIT_MAX_MS 2000

/* Fill a malloc'ed array of XferInfo from a snapshot; 0 or KVF_ENOMEM. */
static int xfer_infos(const struct sc_xfer_info *xi, size_t n,
                      Kvf__Ctl__XferInfo ***out, size_t *nout)
{
	Kvf__Ctl__XferInfo **v = calloc(n + 1, sizeof(*v));

	*out = v;
	*nout = 0;
	if (!v)
		return KVF_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Kvf__Ctl__XferInfo *x = malloc(sizeof(*x));
		if (!x)
			return KVF_ENOMEM;
		kvf__ctl__xfer_info__init(x);
		v[(*nout)++] = x;
		x->xfer_id = xi[i].xfer_id;
		x->engine = sc_ctl_strdup(xi[i].engine);
		x->peer_id = xi[i].peer_id;
		x->op = sc_ctl_strdup(xi[i].op == KVF_WRITE ? "write" :
		    xi[i].op == KVF_READ ? "read" : "other");
		x->ops_total = xi[i].ops_total;
		x->ops_posted = xi[i].ops_posted;
		x->ops_in_flight = xi[i].ops_inflight;
		x->bytes = xi[i].bytes;
		x->age_us = xi[i].age_ns / 1000u;
		x->status = (uint32_t)xi[i].status;
	}
	return 0;
}

static int snapshot(struct sc_daemon *d, const char *cmd,
                    struct sc_xfer_info **xi, size_t *n, char *err,
                    size_t errlen)
{
	int rv = sc_xfers_snapshot(d, xi, n, SNAPSHOT_MS);

	if (rv != 0)
		snprintf(err, errlen, "%s: sc_xfers_snapshot() failed: %s "
		    "(the progress thread did not answer within %d ms)", cmd,
		    kvf_strerror(rv), SNAPSHOT_MS);
	return rv;
}

static int xfers(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                 Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	struct sc_xfer_info *xi = NULL;
	Kvf__Ctl__XfersReply *xr;
	size_t n = 0;
	int rv;

	if ((rv = snapshot(d, "xfers", &xi, &n, err, errlen)) != 0)
		return rv;
	if (!(xr = malloc(sizeof(*xr)))) {
		free(xi);
		snprintf(err, errlen, "xfers: out of memory");
		return KVF_ENOMEM;
	}
	kvf__ctl__xfers_reply__init(xr);
	rep->body_case = KVF__CTL__REPLY__BODY_XFERS;
	rep->xfers = xr;
	rv = xfer_infos(xi, n, &xr->xfers, &xr->n_xfers);
	free(xi);
	if (rv)
		snprintf(err, errlen, "xfers: out of memory");
	return rv;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int drain(struct sc_daemon *d, const Kvf__Ctl__Request *req,
                 Kvf__Ctl__Reply *rep, char *err, size_t errlen)
{
	const Kvf__Ctl__DrainRequest *dr = req->drain;
	struct sc_xfer_info *xi = NULL;
	Kvf__Ctl__DrainReply *r;
	uint64_t t0 = sc_now_ns(), left, wait_ms;
	size_t n = 0;
	int was, rv;

	if (!(r = malloc(sizeof(*r)))) {
		snprintf(err, errlen, "drain: out of memory");
		return KVF_ENOMEM;
	}
	kvf__ctl__drain_reply__init(r);
	rep->body_case = KVF__CTL__REPLY__BODY_DRAIN;
	rep->drain = r;
	if (dr && dr->cancel) {
		was = atomic_exchange(&d->draining, 0);
		if (was)
			sc_info("drain: cancelled by kvferryctl; accepting "
			    "transfers again");
		r->was_draining = was != 0;
		r->draining = false;
		r->in_flight = atomic_load(&d->counters.xfers_in_flight);
		return 0;
	}
	was = atomic_exchange(&d->draining, 1);
	r->was_draining = was != 0;
	r->draining = true;
	/* Snapshot after setting the flag: nothing new can join the list,
	 * so these are exactly the transfers the drain waits for. */
	if ((rv = snapshot(d, "drain", &xi, &n, err, errlen)) != 0)
		return rv;
	if (!was)
		sc_info("drain: requested by kvferryctl; new transfers are "
		    "refused (busy), %zu in flight", n);
	rv = xfer_infos(xi, n, &r->waiting, &r->n_waiting);
	free(xi);
	if (rv) {
		snprintf(err, errlen, "drain: out of memory");
		return rv;
	}
	wait_ms = dr ? dr->wait_ms : 0;
	if (wait_ms > DRAIN_WAIT_MAX_MS)
		wait_ms = DRAIN_WAIT_MAX_MS;
	/* Sleep-poll the counter: the progress thread has no signal to
	 * give us, and a few ms of lag does not matter to an operator. */
	for (;;) {
		left = atomic_load(&d->counters.xfers_in_flight);
		if (left == 0 || sc_now_ns() - t0 >= wait_ms * 1000000u ||
		    atomic_load(&d->stopping))
			break;
		sleep_ms(5);
	}
	r->in_flight = left;
	r->waited_ms = (sc_now_ns() - t0) / 1000000u;
	if (left == 0 && n)
		sc_info("drain: the %zu transfers in flight finished; the "
		    "sidecar is drained", n);
	return 0;
}

void sc_ctl_xfers_register(void)
{
	sc_ctl_register(KVF__CTL__REQUEST__BODY_XFERS, xfers);
	sc_ctl_register(KVF__CTL__REQUEST__BODY_DRAIN, drain);
}
