/*
 * sidecar/xfer_snapshot.c - `kvferryctl xfers`: a copy of the transfers in
 * flight. Only the progress thread walks its active list, so a reader
 * raises a flag, wakes the thread, and waits, bounded, on a condition
 * variable for the copy the thread publishes under snap_lock at the end
 * of its next turn.
 */
#include "sidecar/xfers_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sidecar/daemon.h"

/* Answer a pending kvferryctl xfers request (progress thread). */
void sc_snapshot_answer(struct sc_xfers *x)
{
	uint64_t now = sc_now_ns();
	size_t n = 0, cap = 0;
	struct sc_xfer_info *v = NULL;

	if (!atomic_exchange(&x->snap_wanted, 0))
		return;
	for (struct sc_xfer *t = x->active; t; t = t->next)
		cap++;
	v = calloc(cap + 1, sizeof *v);
	for (struct sc_xfer *t = x->active; v && t; t = t->next) {
		struct sc_xfer_info *i = &v[n++];
		i->xfer_id = t->xfer_id;
		snprintf(i->engine, sizeof i->engine, "%s", t->sess->name);
		i->peer_id = t->peer_id;
		i->op = t->op;
		i->ops_total = t->plan.nops;
		i->ops_posted = t->next_post;
		i->ops_inflight = t->inflight;
		i->bytes = t->plan.bytes;
		i->age_ns = now - t->start_ns;
		i->status = t->status;
	}
	pthread_mutex_lock(&x->snap_lock);
	free(x->snap);
	x->snap = v;
	x->nsnap = v ? n : 0;
	x->snap_seq++;
	pthread_cond_broadcast(&x->snap_cond);
	pthread_mutex_unlock(&x->snap_lock);
}

int sc_xfers_snapshot(struct sc_daemon *d, struct sc_xfer_info **out,
                      size_t *n, int timeout_ms)
{
	struct sc_xfers *x = d->xfers;
	struct timespec ts;
	uint64_t seq;
	int rc = 0;

	if (!x)
		return KVF_ECLOSED;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&x->snap_lock);
	seq = x->snap_seq;
	atomic_store(&x->snap_wanted, 1);
	sc_xfers_kick(d);
	while (x->snap_seq == seq && rc == 0)
		rc = pthread_cond_timedwait(&x->snap_cond, &x->snap_lock, &ts);
	if (x->snap_seq == seq) {
		pthread_mutex_unlock(&x->snap_lock);
		return KVF_ETIMEDOUT;
	}
	*out = calloc(x->nsnap + 1, sizeof **out);
	if (*out) {
		memcpy(*out, x->snap, x->nsnap * sizeof **out);
		*n = x->nsnap;
	}
	pthread_mutex_unlock(&x->snap_lock);
	return *out ? 0 : KVF_ENOMEM;
}
