/*
 * sidecar/xfer_report.c - what the progress thread tells an engine: the
 * records it writes on the engine's completion ring, and the one report
 * that ends each transfer. A record that does not fit while the engine is
 * slow to poll waits, in order, on the session's pending list and is
 * flushed on later turns; none is dropped. A transfer keeps its first
 * error (sc_xfer_fail), and sc_xfer_report_now tells the engine exactly
 * once, which may be before the transfer is freed (deadlines, dead peers).
 */
#include "sidecar/xfers_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/wire.h"
#include "sidecar/daemon.h"
#include "sidecar/log.h"

void sc_comp_put(struct sc_session *s, uint32_t type, const void *rec,
                 uint32_t len)
{
	void *p;

	if (atomic_load(&s->closing) || s->ring_broken)
		return;
	if (!s->pending_head && (p = ipc_ring_reserve(&s->comp, type, len))) {
		memcpy(p, rec, len);
		ipc_ring_commit(&s->comp);
		return;
	}
	/* The engine is slow to poll: keep the record, never drop it. */
	struct sc_pending_comp *pc = malloc(sizeof *pc + len);
	if (!pc) {
		sc_error("engine %s: completion lost: out of memory", s->name);
		return;
	}
	pc->type = type;
	pc->len = len;
	pc->next = NULL;
	memcpy(pc->data, rec, len);
	if (s->pending_tail)
		s->pending_tail->next = pc;
	else
		s->pending_head = pc;
	s->pending_tail = pc;
}

int sc_comp_flush(struct sc_session *s)
{
	int n = 0;
	while (s->pending_head) {
		struct sc_pending_comp *pc = s->pending_head;
		void *p = ipc_ring_reserve(&s->comp, pc->type, pc->len);
		if (!p)
			break;
		memcpy(p, pc->data, pc->len);
		ipc_ring_commit(&s->comp);
		s->pending_head = pc->next;
		if (!s->pending_head)
			s->pending_tail = NULL;
		free(pc);
		n++;
	}
	return n;
}

void sc_comp_report(struct sc_session *s, uint64_t xfer_id, int status,
                    uint64_t bytes, const char *msg)
{
	struct ipc_comp_done d;
	memset(&d, 0, sizeof d);
	d.xfer_id = xfer_id;
	d.status = status;
	d.bytes = bytes;
	if (msg)
		snprintf(d.message, sizeof d.message, "%s", msg);
	sc_comp_put(s, IPC_COMP_DONE, &d, sizeof d);
}

void sc_xfer_fail(struct sc_xfer *t, int status, const char *fmt, ...)
{
	va_list ap;
	if (t->status)
		return; /* the first error is the one reported */
	t->status = status;
	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof t->msg, fmt, ap);
	va_end(ap);
}

/* Tell the engine how the transfer ended: exactly once per transfer. */
void sc_xfer_report_now(struct sc_xfers *x, struct sc_xfer *t)
{
	struct sc_daemon *d = x->d;
	uint64_t el_us = (sc_now_ns() - t->start_ns) / 1000;

	if (t->reported)
		return;
	t->reported = true;
	sc_stats_xfer_done(&d->stats, t->op, t->plan.bytes,
	                   sc_now_ns() - t->start_ns, t->status);
	if (t->peer)
		atomic_fetch_add_explicit(t->status ? &t->peer->errors
		                                    : &t->peer->bytes,
		                          t->status ? 1 : t->plan.bytes,
		                          memory_order_relaxed);
	if (t->status == 0) {
		atomic_fetch_add(&d->counters.bytes_total, t->plan.bytes);
		sc_debug("xfer %llu of %s: done, %llu bytes in %llu us",
		         (unsigned long long)t->xfer_id, t->sess->name,
		         (unsigned long long)t->plan.bytes,
		         (unsigned long long)el_us);
	} else {
		atomic_fetch_add(&d->counters.xfers_failed, 1);
		sc_info("xfer %llu of %s (peer %u): %s: %s",
		        (unsigned long long)t->xfer_id, t->sess->name, t->peer_id,
		        kvf_strerror(t->status), t->msg);
	}
	/* Counted out before the engine hears of it, so that what it reads
	 * from kvferryctl or /metrics next never still shows it in flight. */
	atomic_fetch_sub(&d->counters.xfers_in_flight, 1);
	sc_comp_report(t->sess, t->xfer_id, t->status,
	               t->status ? 0 : t->plan.bytes,
	               t->status ? t->msg : NULL);
}

void sc_xfers_complete(struct sc_daemon *d, struct sc_session *s,
                       uint64_t xfer_id, int status, uint64_t bytes,
                       const char *msg)
{
	if (status)
		atomic_fetch_add(&d->counters.xfers_failed, 1);
	sc_comp_report(s, xfer_id, status, bytes, msg);
}
