/*
 * client/xfer.c - the engine's fast path: transfers go onto the
 * shared-memory submission ring as one record each (segments copied in),
 * and events come back on the completion ring. While the sidecar is busy it
 * polls the ring, so a submission is a memcpy and a store; only when the
 * sidecar sleeps does the engine ring its doorbell (one futex wake).
 */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "ipc/cuda_ipc.h"
#include "ipc/wire.h"

static int check_opts(const struct kvf_xfer_opts *o)
{
	if (!o)
		return 0;
	if (o->tag_len > KVF_MAX_TAG)
		return client_fail(KVF_EINVAL, "tag of %u bytes (max %d)",
		                   o->tag_len, KVF_MAX_TAG);
	if (o->tag_len && !o->tag)
		return client_fail(KVF_EINVAL, "tag_len %u with a NULL tag",
		                   o->tag_len);
	return 0;
}

/* Export the engine's CUDA event into the record (called before the ring
 * lock is taken: it may call into CUDA). */
static int export_event(const struct kvf_xfer_opts *o,
                        struct ipc_cuda_event *ev)
{
	char err[200];
	int rc;
	if (!o || !o->cuda_event)
		return 0;
	rc = ipc_cuda_export_event(o->cuda_event, ev, err, sizeof err);
	if (rc != 0)
		return client_fail(rc, "cuda_event: %s", err);
	return 0;
}

/* Reserve and fill the header of a transfer record; the caller copies the
 * segments behind it and commits. Called with sub_lock held. */
static struct ipc_sub_xfer *begin(kvf_client *c, enum kvf_op op,
                                  kvf_peer peer, enum ipc_seg_mode mode,
                                  uint32_t nseg,
                                  const struct kvf_xfer_opts *o,
                                  const struct ipc_cuda_event *ev,
                                  void **segs_out)
{
	uint32_t tag_len = o ? o->tag_len : 0;
	size_t size = ipc_sub_xfer_size(tag_len, mode, nseg);
	struct ipc_sub_xfer *h;

	if (size > UINT32_MAX)
		return NULL;
	h = ipc_ring_reserve(&c->sub, IPC_SUB_XFER, (uint32_t)size);
	if (!h)
		return NULL;
	h->peer = peer;
	h->op = (uint8_t)op;
	h->mode = (uint8_t)mode;
	h->tag_len = (uint16_t)tag_len;
	h->nseg = nseg;
	h->timeout_ms = o ? o->timeout_ms : 0;
	h->local_region = 0;
	h->remote_region = 0;
	h->has_event = o && o->cuda_event ? 1 : 0;
	h->pad = 0;
	if (h->has_event)
		memcpy(h->cuda_event, ev->handle, IPC_CUDA_EVENT_BYTES);
	if (tag_len)
		memcpy(h + 1, o->tag, tag_len);
	*segs_out = (uint8_t *)(h + 1) + ((tag_len + 7u) & ~7u);
	return h;
}

static int finish(kvf_client *c, struct ipc_sub_xfer *h, kvf_xfer *out)
{
	uint64_t id = atomic_fetch_add_explicit(&c->next_xfer, 1,
	                                        memory_order_relaxed);
	h->xfer_id = id;
	ipc_ring_commit(&c->sub);
	pthread_mutex_unlock(&c->sub_lock);
	ipc_doorbell_ring(c->sidecar_bell);
	if (out)
		*out = id;
	return 0;
}

static int ring_full(kvf_client *c, uint32_t nseg, size_t seg_size)
{
	pthread_mutex_unlock(&c->sub_lock);
	if ((uint64_t)nseg * seg_size > c->sub.capacity / 2)
		return client_fail(KVF_EINVAL,
		                   "transfer of %u segments does not fit the "
		                   "%u-byte ring (raise ring_bytes or use "
		                   "kvf_submit_blocks)",
		                   nseg, c->sub.capacity);
	return client_fail(KVF_EAGAIN, "submission ring full");
}

static int check_common(kvf_client *c, enum kvf_op op, uint32_t nseg,
                        const struct kvf_xfer_opts *opts)
{
	if (!c)
		return client_fail(KVF_EINVAL, "NULL client");
	if (atomic_load_explicit(&c->dead, memory_order_relaxed))
		return client_fail(KVF_ECLOSED, "sidecar connection lost");
	if (op != KVF_WRITE && op != KVF_READ)
		return client_fail(KVF_EINVAL, "unknown op %d", (int)op);
	if (nseg == 0 || nseg > IPC_MAX_SEGS)
		return client_fail(KVF_EINVAL, "%u segments (want 1..%u)", nseg,
		                   IPC_MAX_SEGS);
	return check_opts(opts);
}

int kvf_submit(kvf_client *c, enum kvf_op op, kvf_peer peer,
               const struct kvf_seg *segs, uint32_t nseg,
               const struct kvf_xfer_opts *opts, kvf_xfer *out)
{
	struct ipc_sub_xfer *h;
	struct ipc_cuda_event ev;
	void *dst;
	int rc;

	if ((rc = check_common(c, op, nseg, opts)) != 0)
		return rc;
	if (!segs)
		return client_fail(KVF_EINVAL, "NULL segment list");
	if ((rc = export_event(opts, &ev)) != 0)
		return rc;
	pthread_mutex_lock(&c->sub_lock);
	h = begin(c, op, peer, IPC_SEG_BYTES, nseg, opts, &ev, &dst);
	if (!h)
		return ring_full(c, nseg, sizeof *segs);
	memcpy(dst, segs, (size_t)nseg * sizeof *segs);
	return finish(c, h, out);
}

int kvf_submit_blocks(kvf_client *c, enum kvf_op op, kvf_peer peer,
                      kvf_region local_region, kvf_region remote_region,
                      const uint32_t *local_blocks,
                      const uint32_t *remote_blocks, uint32_t nblocks,
                      const struct kvf_xfer_opts *opts, kvf_xfer *out)
{
	struct ipc_sub_xfer *h;
	struct ipc_block_pair *p;
	struct ipc_cuda_event ev;
	int rc;

	if ((rc = check_common(c, op, nblocks, opts)) != 0)
		return rc;
	if (!local_blocks || !remote_blocks)
		return client_fail(KVF_EINVAL, "NULL block list");
	if ((rc = export_event(opts, &ev)) != 0)
		return rc;
	pthread_mutex_lock(&c->sub_lock);
	h = begin(c, op, peer, IPC_SEG_BLOCKS, nblocks, opts, &ev,
	          (void **)&p);
	if (!h)
		return ring_full(c, nblocks, sizeof *p);
	h->local_region = local_region;
	h->remote_region = remote_region;
	for (uint32_t i = 0; i < nblocks; i++) {
		p[i].local = local_blocks[i];
		p[i].remote = remote_blocks[i];
	}
	return finish(c, h, out);
}

int kvf_cancel(kvf_client *c, kvf_xfer xfer)
{
	struct ipc_sub_cancel *m;

	if (!c)
		return client_fail(KVF_EINVAL, "NULL client");
	if (atomic_load(&c->dead))
		return client_fail(KVF_ECLOSED, "sidecar connection lost");
	pthread_mutex_lock(&c->sub_lock);
	m = ipc_ring_reserve(&c->sub, IPC_SUB_CANCEL, sizeof *m);
	if (!m) {
		pthread_mutex_unlock(&c->sub_lock);
		return client_fail(KVF_EAGAIN, "submission ring full");
	}
	m->xfer_id = xfer;
	ipc_ring_commit(&c->sub);
	pthread_mutex_unlock(&c->sub_lock);
	ipc_doorbell_ring(c->sidecar_bell);
	return 0;
}

static void to_event(uint32_t type, const void *rec, struct kvf_event *ev)
{
	memset(ev, 0, offsetof(struct kvf_event, tag));
	ev->message[0] = 0;
	ev->peer_engine[0] = 0;
	if (type == IPC_COMP_DONE) {
		const struct ipc_comp_done *d = rec;
		ev->type = KVF_EV_XFER_DONE;
		ev->status = d->status;
		ev->xfer = d->xfer_id;
		ev->bytes = d->bytes;
		memcpy(ev->message, d->message, sizeof ev->message);
		ev->message[sizeof ev->message - 1] = 0;
	} else {
		const struct ipc_comp_notif *n = rec;
		ev->type = KVF_EV_NOTIF;
		ev->tag_len = n->tag_len <= KVF_MAX_TAG ? n->tag_len : 0;
		memcpy(ev->tag, n->tag, ev->tag_len);
		memcpy(ev->peer_engine, n->peer_engine, KVF_MAX_NAME);
		ev->peer_engine[KVF_MAX_NAME - 1] = 0;
	}
}

static int take(kvf_client *c, struct kvf_event *evs, int max, int *n)
{
	union {
		struct ipc_comp_done d;
		struct ipc_comp_notif nt;
	} rec;
	uint32_t type, len;
	int got = 0, rc = 0;

	pthread_mutex_lock(&c->comp_lock);
	while (got < max) {
		rc = ipc_ring_pop(&c->comp, &rec, sizeof rec, &type, &len);
		if (rc != 0)
			break;
		if ((type == IPC_COMP_DONE && len == sizeof rec.d) ||
		    (type == IPC_COMP_NOTIF && len == sizeof rec.nt))
			to_event(type, &rec, &evs[got++]);
	}
	pthread_mutex_unlock(&c->comp_lock);
	if (rc == KVF_EPROTO)
		return client_fail(KVF_EPROTO, "completion ring corrupt");
	*n = got;
	return 0;
}

int kvf_poll(kvf_client *c, struct kvf_event *evs, int max, int *n)
{
	int rc;
	if (!c || !evs || max <= 0 || !n)
		return client_fail(KVF_EINVAL, "kvf_poll: bad argument");
	rc = take(c, evs, max, n);
	if (rc == 0 && *n == 0 && atomic_load(&c->dead))
		return client_fail(KVF_ECLOSED, "sidecar connection lost");
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Spin up to budget ns for the completion ring to fill or the sidecar to
 * go. The clock is read every few pauses only; a pause takes 10 to 150
 * cycles depending on the CPU.
 */
static void spin_wait(kvf_client *c, uint32_t budget)
{
	uint64_t t0 = ipc_now_ns();

	for (;;) {
		for (int i = 0; i < 16; i++) {
			if (!ipc_ring_empty(&c->comp) || atomic_load(&c->dead))
				return;
			ipc_cpu_relax();
		}
		if (ipc_now_ns() - t0 >= budget)
			return;
	}
}

int kvf_wait(kvf_client *c, struct kvf_event *evs, int max, int timeout_ms,
             int *n)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	struct ipc_doorbell *bell;
	uint64_t t0 = 0;
	uint32_t budget = 0;
	int rc;

	if (!c || !evs || max <= 0 || !n)
		return client_fail(KVF_EINVAL, "kvf_wait: bad argument");
	bell = &c->comp.sh->consumer_bell;
	for (;;) {
		int64_t left;
		uint32_t seq;

		if ((rc = take(c, evs, max, n)) != 0 || *n > 0) {
			/* Tell the spin policy how long this wait took. */
			if (t0)
				ipc_spin_end(&c->wait_spin, budget,
				             rc == 0 ? ipc_now_ns() - t0
				                     : IPC_SPIN_NONE);
			return rc;
		}
		if (atomic_load(&c->dead))
			return client_fail(KVF_ECLOSED, "sidecar connection lost");
		/* Spin first: events often follow within microseconds
		 * ("auto": only where this client's waits taught that it
		 * pays, ipc/spin.h). */
		if (!t0 && timeout_ms != 0) {
			t0 = ipc_now_ns();
			budget = c->wait_adaptive
			                 ? ipc_spin_begin(&c->wait_spin)
			                 : c->wait_spin.max_ns;
			if (timeout_ms > 0 &&
			    budget > (uint64_t)timeout_ms * 1000000u)
				budget = (uint32_t)timeout_ms * 1000000u;
			if (budget) {
				spin_wait(c, budget);
				if (!ipc_ring_empty(&c->comp))
					continue;
			}
		}
		left = deadline < 0 ? 1000 : deadline - now_ms();
		if (left <= 0) {
			*n = 0;
			return 0;
		}
		seq = ipc_doorbell_prepare(bell);
		if (!ipc_ring_empty(&c->comp) || atomic_load(&c->dead)) {
			ipc_doorbell_cancel(bell);
			continue;
		}
		/* Sleep in slices so a lost sidecar is noticed even if its
		 * pipe event raced with us. */
		ipc_doorbell_wait(bell, seq, (left > 1000 ? 1000 : left) * 1000);
	}
}
