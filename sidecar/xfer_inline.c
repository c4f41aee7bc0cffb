/*
 * sidecar/xfer_inline.c - small WRITEs carried inside their notification.
 *
 * A WRITE of a few KiB into host memory costs, on the RDMA path, one write
 * (with delivery-complete where the provider does not order sends after
 * writes), a notification message, and on ordered providers a one-byte
 * delivery check: two or three provider operations and, on shm, a wait
 * for the target to complete the write before the notification may leave.
 * For such transfers the initiator instead sends one message holding the
 * notification, the segments' remote addresses and the bytes (the eager
 * protocol of MPI libraries), and the target's progress thread copies the
 * bytes into the engine's region before it hands the notification on.
 *
 * The target checks what the NIC would have checked for an RDMA write, and
 * more: every segment must name a registered host region of the notified
 * engine, carry that region's key and stay inside it; a message failing
 * any check is dropped whole (no byte copied) and logged with the reason.
 * Either way the target answers the sender (an sc_inline_ack, sent after
 * the engine was notified, so off the latency path), and the sender's
 * transfer ends on that answer: successful only once the bytes are in the
 * target's memory, as after an RDMA write with delivery-complete, and
 * failed with the target's reason otherwise. No answer by the deadline
 * (plus the notification's grace) fails it as an unconfirmed notification.
 *
 * Both sides agree in the handshake: a sidecar advertises the largest
 * inline message its receive slots hold (0: none), and the initiator
 * inlines a WRITE only when it fits that and its own --inline-max.
 */
#include "sidecar/xfers_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "sidecar/daemon.h"
#include "sidecar/log.h"

bool sc_inline_fits(const struct sc_xfers *x, const struct sc_xfer *t,
                    const struct sc_peer *peer)
{
	const struct sc_plan *p = &t->plan;
	size_t msg;

	if (t->op != KVF_WRITE || !x->inline_max || p->any_cuda ||
	    p->nops == 0 || p->nops > SC_INLINE_SEGS ||
	    p->bytes > x->inline_max)
		return false;
	msg = sizeof(struct sc_inline_msg) +
	      p->nops * sizeof(struct sc_inline_seg) + p->bytes;
	return msg <= peer->inline_msg_max &&
	       msg <= xfer_fabric_info(x->fab)->msg_max;
}

/* An answer's cookie for message seq: splitmix64 of it under the run's
 * random key. Not a MAC: unguessable to whoever cannot read our traffic,
 * which is all it has to be (sidecar/xfers.h). */
static uint64_t cookie_of(const struct sc_xfers *x, uint64_t seq)
{
	uint64_t z = x->cookie_key ^ (seq * 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Parts: only where the provider's inject size is worth aiming at (not
 * tcp;ofi_rxm's 64 bytes, not EFA's 32). */
#define INLINE_SPLIT_MIN 1024u

/* The number of parts t's message of total bytes goes in: 1 (whole)
 * unless it exceeds the provider's inject size and fits the parts. */
static uint32_t parts_for(const struct sc_xfers *x, size_t total)
{
	size_t inj = xfer_fabric_info(x->fab)->inject_size;
	size_t slice;
	uint32_t n;

	if (inj < INLINE_SPLIT_MIN || total <= inj)
		return 1;
	slice = inj - sizeof(struct sc_inline_part);
	n = (uint32_t)((total + slice - 1) / slice);
	return n <= SC_INLINE_PARTS ? n : 1;
}

/* The pieces of bytes [off, off + len) of the message that iov[0..niov)
 * gathers, into out (room for max); returns how many, or -1 if more. */
static int iov_slice(const struct iovec *iov, int niov, size_t off,
                     size_t len, struct iovec *out, int max)
{
	int n = 0;

	for (int k = 0; k < niov && len; k++) {
		size_t l = iov[k].iov_len, take;
		if (off >= l) {
			off -= l;
			continue;
		}
		take = l - off < len ? l - off : len;
		if (n == max)
			return -1;
		out[n++] = (struct iovec){(uint8_t *)iov[k].iov_base + off,
		                          take};
		len -= take;
		off = 0;
	}
	return n;
}

/* Post parts from t->inline_part on: 0, KVF_EAGAIN (the rest on a later
 * turn) or the error. Each posted part is one more completion. A part
 * is gathered from the message's own pieces (the engine's bytes) into
 * the send slot: no copy of the whole message first. */
static int post_parts(struct sc_xfers *x, struct sc_xfer *t,
                      const struct iovec *iov, int niov, size_t total,
                      uint32_t nparts)
{
	size_t slice = xfer_fabric_info(x->fab)->inject_size -
	               sizeof(struct sc_inline_part);

	while (t->inline_part < nparts) {
		uint32_t i = t->inline_part;
		size_t off = (size_t)i * slice;
		struct sc_inline_part h = {
			.magic = SC_INLINE_PART_MAGIC,
			.version = SC_INLINE_VERSION,
			.index = (uint16_t)i, .nparts = (uint16_t)nparts,
			.len = (uint32_t)(total - off < slice ? total - off
			                                      : slice),
			.offset = (uint32_t)off, .total = (uint32_t)total,
			.src_key = x->src_key, .seq = t->inline_seq};
		struct iovec pv[1 + 2 + SC_INLINE_SEGS] = {{&h, sizeof h}};
		int n = iov_slice(iov, niov, off, h.len, pv + 1,
		                  (int)(sizeof pv / sizeof pv[0]) - 1);
		int rc;

		if (n < 0)
			return KVF_EINVAL; /* cannot be: niov bounds it */
		rc = xfer_post_sendv(x->fab, pv, 1 + n, t->fi_addr, false,
		                     &t->notify_ctx);
		if (rc != 0)
			return rc;
		t->inline_part++;
		t->inflight++;
		t->notify_sent = true;
	}
	return 0;
}

int sc_inline_post(struct sc_xfers *x, struct sc_xfer *t)
{
	const struct sc_plan *p = &t->plan;
	struct sc_inline_msg m;
	struct sc_inline_seg segs[SC_INLINE_SEGS];
	struct iovec iov[2 + SC_INLINE_SEGS];
	size_t total;
	uint32_t nparts;
	int rc;

	if (!t->inline_seq) {
		t->inline_seq = ++x->inline_seq;
		t->inline_cookie = cookie_of(x, t->inline_seq);
	}
	memset(&m, 0, sizeof m);
	m.magic = SC_INLINE_MAGIC;
	m.version = SC_INLINE_VERSION;
	m.tag_len = t->tag_len;
	m.target_session = t->remote_session;
	m.target_epoch = t->remote_epoch;
	snprintf(m.src_engine, sizeof m.src_engine, "%s", t->sess->name);
	m.nsegs = p->nops;
	m.bytes = (uint32_t)p->bytes;
	m.src_key = x->src_key;
	m.src_session = t->sess->id;
	m.xfer_id = t->xfer_id;
	m.seq = t->inline_seq;
	m.cookie = t->inline_cookie;
	memcpy(m.tag, t->tag, t->tag_len);
	iov[0] = (struct iovec){ &m, sizeof m };
	iov[1] = (struct iovec){ segs, p->nops * sizeof segs[0] };
	for (uint32_t i = 0; i < p->nops; i++) {
		const struct sc_op *op = &p->ops[i];
		segs[i] = (struct sc_inline_seg){
			.raddr = op->raddr, .rkey = op->rkey,
			.region = op->rregion, .len = (uint32_t)op->len};
		iov[2 + i] = (struct iovec){ op->local, op->len };
	}
	total = sizeof m + p->nops * sizeof segs[0] + p->bytes;
	nparts = parts_for(x, total);
	t->notify_ctx.owner = t;
	t->notify_ctx.kind = CTX_NOTIFY;
	/* No delivery-complete: the target's answer says more, later. */
	if (nparts > 1) {
		rc = post_parts(x, t, iov, 2 + (int)p->nops, total, nparts);
	} else {
		rc = xfer_post_sendv(x->fab, iov, 2 + (int)p->nops,
		                     t->fi_addr, false, &t->notify_ctx);
		if (rc == 0) {
			t->inflight++;
			t->notify_sent = true;
		}
	}
	if (rc == KVF_EAGAIN)
		return rc; /* retried (from the next part) on the next turn */
	t->next_post = p->nops;
	t->rails_used = 1;
	if (rc != 0) {
		t->notify_sent = true; /* cancel must not pretend otherwise */
		sc_xfer_fail(t, KVF_EPEER, "inline write to peer %u (%llu "
		             "bytes): post failed: %s", t->peer_id,
		             (unsigned long long)p->bytes, kvf_strerror(rc));
		sc_xfer_advance(x, t);
		return rc;
	}
	t->inflight++; /* the answer */
	t->ack_wait = true;
	atomic_fetch_add_explicit(&x->rail_bytes[0], p->bytes,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&x->d->stats.notifs_sent, 1,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&x->d->stats.inline_sent, 1,
	                          memory_order_relaxed);
	return 0;
}

/* ---- the target ------------------------------------------------------- */

/* Check one segment against the region it names (registry lock held);
 * NULL when it may be written, else why not (and the KVF_E* code). */
static const char *seg_refused(const struct sc_inline_seg *g,
                               const struct sc_region *r, uint64_t session,
                               int *status, char *why, size_t whylen)
{
	uint64_t off;

	*status = KVF_ENOENT;
	if (!r) {
		snprintf(why, whylen, "region %u is not registered here",
		         g->region);
		return why;
	}
	*status = KVF_EPERM;
	if (r->session_id != session) {
		snprintf(why, whylen, "region %u belongs to another engine "
		         "than session %llu", g->region,
		         (unsigned long long)session);
		return why;
	}
	if (r->kind != XFER_MEM_HOST) {
		*status = KVF_ENOTSUP;
		snprintf(why, whylen, "region %u is GPU memory (inline writes "
		         "go to host memory only)", g->region);
		return why;
	}
	if (g->rkey != r->key) {
		snprintf(why, whylen, "the key does not match region %u's",
		         g->region);
		return why;
	}
	*status = KVF_ERANGE;
	if (g->raddr < r->remote_base) {
		snprintf(why, whylen, "address %#llx lies before region %u "
		         "(%#llx)", (unsigned long long)g->raddr, g->region,
		         (unsigned long long)r->remote_base);
		return why;
	}
	off = g->raddr - r->remote_base;
	if (off > r->len || g->len > r->len - off) {
		snprintf(why, whylen, "bytes [%llu, %llu) fall outside region "
		         "%u (%llu bytes)", (unsigned long long)off,
		         (unsigned long long)off + g->len, g->region,
		         (unsigned long long)r->len);
		return why;
	}
	return NULL;
}

/* The header's own consistency; NULL when sound, else why not. */
static const char *msg_refused(const struct sc_inline_msg *m, size_t len,
                               const struct sc_inline_seg *segs,
                               char *why, size_t whylen)
{
	uint64_t sum = 0;

	if (len < sizeof *m)
		return "shorter than its header";
	if (m->version != SC_INLINE_VERSION) {
		snprintf(why, whylen, "version %u, this sidecar speaks %u",
		         m->version, SC_INLINE_VERSION);
		return why;
	}
	if (m->tag_len > KVF_MAX_TAG)
		return "tag longer than KVF_MAX_TAG";
	if (m->nsegs == 0 || m->nsegs > SC_INLINE_SEGS) {
		snprintf(why, whylen, "%u segments (1..%u allowed)", m->nsegs,
		         SC_INLINE_SEGS);
		return why;
	}
	if (len != sizeof *m + m->nsegs * sizeof *segs + (uint64_t)m->bytes) {
		snprintf(why, whylen, "%zu bytes where its header says %zu",
		         len, sizeof *m + m->nsegs * sizeof *segs +
		                      (size_t)m->bytes);
		return why;
	}
	for (uint32_t i = 0; i < m->nsegs; i++)
		sum += segs[i].len;
	if (sum != m->bytes) {
		snprintf(why, whylen, "segments add up to %llu bytes, the "
		         "header says %u", (unsigned long long)sum, m->bytes);
		return why;
	}
	return NULL;
}

/* ---- answers ----------------------------------------------------------- */

struct sc_inline_pending {
	struct sc_inline_pending *next;
	uint64_t fi_addr;
	struct sc_inline_ack ack;
};

static int post_ack(struct sc_xfers *x, uint64_t fi_addr,
                    const struct sc_inline_ack *a)
{
	struct iovec iov = { (void *)a, sizeof *a };

	x->ctl_ctx.kind = CTX_CTL;
	x->ctl_ctx.owner = NULL;
	return xfer_post_sendv(x->fab, &iov, 1, fi_addr, false, &x->ctl_ctx);
}

/* Answer the sender of m: at once, or queued when the queue is full. */
static void answer(struct sc_xfers *x, const struct sc_inline_msg *m,
                   int status, const char *why)
{
	struct sc_inline_pending *p;
	struct sc_inline_ack a;
	uintptr_t addr;
	int rc;

	addr = (uintptr_t)sc_view_fabaddr(x, m->src_key);
	if (!addr) {
		/* It never handshaked with us: no way back. Its transfer
		 * ends unconfirmed at its deadline. */
		sc_warn("fabric: inline write from %.*s: no address to answer "
		        "(the sender never handshaked with this sidecar)",
		        KVF_MAX_NAME, m->src_engine);
		return;
	}
	memset(&a, 0, sizeof a);
	a.magic = SC_INLINE_ACK_MAGIC;
	a.version = SC_INLINE_VERSION;
	a.status = status;
	a.src_session = m->src_session;
	a.xfer_id = m->xfer_id;
	a.seq = m->seq;
	a.cookie = m->cookie;
	if (why)
		snprintf(a.msg, sizeof a.msg, "%s", why);
	if (!x->acks && (rc = post_ack(x, addr - 1, &a)) != KVF_EAGAIN) {
		if (rc != 0)
			sc_warn("fabric: answer to an inline write from %.*s: "
			        "post failed: %s", KVF_MAX_NAME, m->src_engine,
			        kvf_strerror(rc));
		return;
	}
	if (!(p = malloc(sizeof *p))) {
		sc_warn("fabric: answer to an inline write from %.*s lost: "
		        "out of memory", KVF_MAX_NAME, m->src_engine);
		return;
	}
	p->next = NULL;
	p->fi_addr = addr - 1;
	p->ack = a;
	if (x->acks_tail)
		x->acks_tail->next = p;
	else
		x->acks = p;
	x->acks_tail = p;
}

void sc_inline_flush_acks(struct sc_xfers *x)
{
	while (x->acks) {
		struct sc_inline_pending *p = x->acks;
		int rc = post_ack(x, p->fi_addr, &p->ack);
		if (rc == KVF_EAGAIN)
			return;
		if (rc != 0)
			sc_warn("fabric: answer to an inline write: post "
			        "failed: %s", kvf_strerror(rc));
		x->acks = p->next;
		if (!x->acks)
			x->acks_tail = NULL;
		free(p);
	}
}

void sc_inline_fini(struct sc_xfers *x)
{
	while (x->acks) {
		struct sc_inline_pending *p = x->acks;
		x->acks = p->next;
		free(p);
	}
	x->acks_tail = NULL;
}

void sc_inline_forget_ack(struct sc_xfer *t)
{
	if (!t->ack_wait)
		return;
	t->ack_wait = false;
	t->inflight--;
}

void sc_inline_on_ack(struct sc_xfers *x, const void *data, size_t len)
{
	const struct sc_inline_ack *a = data;
	struct sc_xfer *t = NULL;

	if (len != sizeof *a || a->version != SC_INLINE_VERSION) {
		sc_warn("fabric: malformed answer to an inline write (%zu "
		        "bytes) dropped", len);
		return;
	}
	for (uint32_t i = 0; i < x->nslots && !t; i++)
		if (x->slots[i].s->id == a->src_session)
			t = sc_idmap_get(&x->slots[i].xfers, a->xfer_id);
	if (t && t->ack_wait && t->inline_seq == a->seq &&
	    t->inline_cookie != a->cookie) {
		sc_warn("fabric: answer to inline write %llu of session %llu "
		        "with the wrong cookie dropped (forged, or from "
		        "another run)", (unsigned long long)a->xfer_id,
		        (unsigned long long)a->src_session);
		return;
	}
	if (!t || !t->ack_wait || t->inline_seq != a->seq) {
		/* Given up on already (deadline, closed session). */
		sc_debug("fabric: late answer to inline write %llu of session "
		         "%llu dropped", (unsigned long long)a->xfer_id,
		         (unsigned long long)a->src_session);
		return;
	}
	sc_inline_forget_ack(t);
	if (a->status != 0) {
		int st = a->status > 0 && a->status < KVF_ERR_COUNT
		                 ? a->status
		                 : KVF_EPEER;
		sc_xfer_fail(t, st, "peer %u refused the inline write: %.*s",
		             t->peer_id, (int)sizeof a->msg, a->msg);
	}
	sc_xfer_advance(x, t);
}

/* ---- the target, on receipt ------------------------------------------- */

static void dropped(struct sc_xfers *x, const struct sc_inline_msg *m,
                    int status, const char *why)
{
	atomic_fetch_add_explicit(&x->d->stats.inline_dropped, 1,
	                          memory_order_relaxed);
	sc_warn("fabric: inline write from %.*s for session %llu dropped: %s",
	        KVF_MAX_NAME, m->src_engine,
	        (unsigned long long)m->target_session, why);
	answer(x, m, status, why);
}

void sc_inline_deliver(struct sc_xfers *x, const void *data, size_t len)
{
	const struct sc_inline_msg *m = data;
	const struct sc_inline_seg *segs =
		(const void *)((const uint8_t *)data + sizeof *m);
	struct sc_region *regs[SC_INLINE_SEGS];
	struct sc_session *s;
	const uint8_t *src;
	const char *no = NULL;
	char why[200];
	uint32_t held = 0;
	int status = KVF_EINVAL;

	sc_view_sync(x); /* for the lookups below and the answer */
	if ((no = msg_refused(m, len, segs, why, sizeof why))) {
		if (len >= sizeof *m) {
			dropped(x, m, KVF_EPROTO, no);
			return;
		}
		atomic_fetch_add_explicit(&x->d->stats.inline_dropped, 1,
		                          memory_order_relaxed);
		sc_warn("fabric: malformed inline write (%zu bytes) dropped: "
		        "%s", len, no);
		return;
	}
	if (m->target_epoch != x->d->epoch) {
		snprintf(why, sizeof why, "meant for an earlier run of this "
		         "sidecar (epoch %llu): resolve the peer again",
		         (unsigned long long)m->target_epoch);
		dropped(x, m, KVF_EPEER, why);
		return;
	}
	s = sc_view_session(x, m->target_session);
	if (!s) {
		no = "the session is gone (its engine disconnected)";
		status = KVF_ENOENT;
	}
	for (uint32_t i = 0; !no && i < m->nsegs; i++) {
		struct sc_region *r = sc_idmap_get(&x->view.regions,
		                                   segs[i].region);
		no = seg_refused(&segs[i], r, m->target_session, &status,
		                 why, sizeof why);
		if (!no) {
			sc_region_hold(r);
			regs[held++] = r;
		}
	}
	if (!no)
		sc_session_hold(s);
	if (no) {
		/* Nothing copied: a message is applied whole or not at all. */
		char seg[220];
		if (s)
			snprintf(seg, sizeof seg, "segment %u: %s", held, no);
		else
			snprintf(seg, sizeof seg, "%s", no);
		for (uint32_t i = 0; i < held; i++)
			sc_region_rele(regs[i]);
		dropped(x, m, status, seg);
		return;
	}
	src = (const uint8_t *)(segs + m->nsegs);
	for (uint32_t i = 0; i < m->nsegs; i++) {
		struct sc_region *r = regs[i];
		memcpy(r->base + (segs[i].raddr - r->remote_base), src,
		       segs[i].len);
		src += segs[i].len;
		sc_region_rele(r);
	}
	atomic_fetch_add_explicit(&x->d->stats.inline_received, 1,
	                          memory_order_relaxed);
	if (m->tag_len)
		sc_xfers_notify_engine(x, s, m->src_engine, m->tag,
		                       m->tag_len);
	sc_session_rele(s);
	answer(x, m, 0, NULL);
}
