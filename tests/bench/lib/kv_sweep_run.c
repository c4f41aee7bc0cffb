/*
 * tests/bench/lib/kv_sweep_run.c - requests in flight for kvferry-bench
 * -m kv. A request goes out as one transfer per rank pair and chunk
 * (kvf_submit_blocks of whole pieces when both sides have the same TP,
 * else kvf_submit of one segment per layer, block and K|V), tagged with
 * its id; it ends at the last decode rank's notification (WRITE) or the
 * decode ranks' last completion (READ), and only once every initiator's
 * completion came too. Events are taken from every engine; when none came
 * for a while the loop blocks up to 1 ms on the engine most likely to get
 * the next one, and no event for KVS_QUIET_S ends the run: never a hang.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/lib/cli.h"
#include "tests/bench/lib/kv_sweep_impl.h"
#include "tests/tap/clock.h"

static void kvs_add_out(struct kvs *K, uint32_t eng, kvf_xfer x, uint32_t req)
{
	if (K->nouts == K->capouts) {
		size_t cap = K->capouts ? K->capouts * 2 : 256;
		void *m = realloc(K->outs, cap * sizeof *K->outs);
		if (!m)
			bench_die("out of memory");
		K->outs = m;
		K->capouts = cap;
	}
	K->outs[K->nouts++] = (struct kvs_out){ eng, x, req };
}

static void kvs_complete(struct kvs *K, struct kvs_req *r)
{
	K->run_lat[K->run_done++] = r->t_dec - r->t0;
	if (r->t_dec > K->t_end)
		K->t_end = r->t_dec;
	K->busy[r->peer * K->slots + r->slot] = 0;
	K->used[r->peer * K->slots + r->slot] = 1;
	r->live = false;
	K->run_live--;
}

static void kvs_event(struct kvs *K, uint32_t e, const struct kvf_event *ev)
{
	struct kvs_req *r = NULL;
	double now = tp_now_s();

	if (ev->type == KVF_EV_XFER_DONE) {
		size_t i;

		for (i = 0; i < K->nouts; i++)
			if (K->outs[i].eng == e && K->outs[i].x == ev->xfer)
				break;
		if (i == K->nouts)
			bench_die("engine %s: completion of transfer %" PRIu64
				  " that it did not submit",
			    K->eng[e].name, (uint64_t)ev->xfer);
		r = &K->reqs[K->outs[i].req];
		if (ev->status != 0)
			bench_die("%s %s, %u blocks: request %" PRIu64
				  ", transfer %" PRIu64 " of engine %s "
				  "failed: %s (%d): %s",
			    K->o.preset->name, kvs_op(K), K->nb, r->id,
			    (uint64_t)ev->xfer, K->eng[e].name,
			    kvf_strerror(ev->status), ev->status, ev->message);
		K->outs[i] = K->outs[--K->nouts];
		r->done_left--;
		if (K->o.read) {
			K->rank_left[(r - K->reqs) * K->o.tp_d + e -
				     kvs_p0(K, r->peer)]--;
			if (--r->dec_left == 0)
				r->t_dec = now;
		}
	} else if (ev->type == KVF_EV_NOTIF) {
		uint64_t id;

		if (ev->tag_len != sizeof id)
			bench_die("engine %s: notification with a %u-byte tag",
			    K->eng[e].name, ev->tag_len);
		memcpy(&id, ev->tag, sizeof id);
		for (uint32_t i = 0; i < K->o.conc && !r; i++)
			if (K->reqs[i].live && K->reqs[i].id == id)
				r = &K->reqs[i];
		if (!r || K->o.read || e < kvs_p0(K, r->peer) ||
		    e >= kvs_p0(K, r->peer) + K->o.tp_d ||
		    K->rank_left[(r - K->reqs) * K->o.tp_d + e -
				 kvs_p0(K, r->peer)] == 0)
			bench_die(
			    "engine %s: notification for request %" PRIu64
			    " it should not get (from %s)",
			    K->eng[e].name, id, ev->peer_engine);
		K->rank_left[(r - K->reqs) * K->o.tp_d + e -
			     kvs_p0(K, r->peer)]--;
		if (--r->dec_left == 0)
			r->t_dec = now;
	} else {
		return;
	}
	if (r->dec_left == 0 && r->done_left == 0)
		kvs_complete(K, r);
}

/* The engine whose next event ends the oldest request's wait. */
static uint32_t kvs_expected(const struct kvs *K)
{
	const struct kvs_req *o = NULL;

	for (uint32_t i = 0; i < K->o.conc; i++)
		if (K->reqs[i].live && (!o || K->reqs[i].id < o->id))
			o = &K->reqs[i];
	if (!o || o->dec_left == 0)
		return 0; /* a WRITE's last completions, on the prefill side */
	for (uint32_t j = 0; j < K->o.tp_d; j++)
		if (K->rank_left[(o - K->reqs) * K->o.tp_d + j])
			return kvs_p0(K, o->peer) + j;
	return kvs_p0(K, o->peer);
}

/* Take every engine's events; when none came for a while, block up to
 * 1 ms on the engine most likely to get the next one (two cores cannot
 * afford a busy loop beside the sidecars' own). */
static void kvs_progress(struct kvs *K)
{
	struct kvf_event ev[64];
	int total = 0, n, rc;

	for (uint32_t e = 0; e < K->neng; e++) {
		n = 0;
		rc = kvf_poll(K->eng[e].c, ev, 64, &n);
		if (rc != 0)
			bench_die("engine %s: kvf_poll() failed: %s (%d): %s",
			    K->eng[e].name, kvf_strerror(rc), rc,
			    kvf_last_error());
		for (int i = 0; i < n; i++)
			kvs_event(K, e, &ev[i]);
		total += n;
	}
	if (total == 0 && ++K->idle > 16) {
		uint32_t e = kvs_expected(K);

		n = 0;
		rc = kvf_wait(K->eng[e].c, ev, 64, 1, &n);
		if (rc != 0)
			bench_die("engine %s: kvf_wait() failed: %s (%d): %s",
			    K->eng[e].name, kvf_strerror(rc), rc,
			    kvf_last_error());
		for (int i = 0; i < n; i++)
			kvs_event(K, e, &ev[i]);
		total += n;
	}
	if (total > 0) {
		K->idle = 0;
		K->last_event = tp_now_s();
	} else if (tp_now_s() - K->last_event > KVS_QUIET_S) {
		bench_die("%s %s, %u blocks: no event for %.0f s (%u requests "
			  "in flight, %zu transfers outstanding)",
		    K->o.preset->name, kvs_op(K), K->nb, KVS_QUIET_S,
		    K->run_live, K->nouts);
	}
}

/* Submit one transfer of request r: rank pair pr, blocks [b0, b1). */
static void kvs_submit_xfer(struct kvs *K, uint32_t ri,
    const struct kvs_pair *pr, uint32_t b0, uint32_t b1)
{
	struct kvs_req *r = &K->reqs[ri];
	uint32_t pe = pr->i, de = kvs_p0(K, r->peer) + pr->j;
	uint32_t ini = K->o.read ? de : pe, tgt = K->o.read ? pe : de;
	struct kvs_engine *P = &K->eng[pe], *D = &K->eng[de];
	struct kvs_engine *I = &K->eng[ini], *T = &K->eng[tgt];
	enum kvf_op op = K->o.read ? KVF_READ : KVF_WRITE;
	uint64_t tag = r->id;
	struct kvf_xfer_opts xo = { .timeout_ms = KVS_XFER_TIMEOUT_MS };
	uint32_t n = 0;
	kvf_xfer x;
	int rc;

	if (!K->o.read) {
		xo.tag = &tag;
		xo.tag_len = sizeof tag;
	}
	if (pr->blocks) {
		for (uint32_t b = b0; b < b1; b++, n++) {
			uint32_t db = kvs_dblock(K, r->slot, b);
			K->lb[n] = K->o.read ? db : b;
			K->rb[n] = K->o.read ? b : db;
		}
	} else {
		const struct kv_shape *ps = &P->sh, *ds = &D->sh;
		uint64_t len = (pr->h_hi - pr->h_lo) * ps->run;

		for (uint32_t l = 0; l < ps->layers; l++)
			for (uint32_t b = b0; b < b1; b++) {
				uint64_t po =
				    kv_shape_offset(ps, P->nblocks, l, b);
				uint64_t dof = kv_shape_offset(ds, D->nblocks,
				    l, kvs_dblock(K, r->slot, b));

				for (uint32_t k = 0; k < ps->kinds; k++, n++) {
					uint64_t pk =
					    po +
					    ((uint64_t)k * ps->rank_heads +
						pr->h_lo - ps->head0) *
						ps->run;
					uint64_t dk =
					    dof +
					    ((uint64_t)k * ds->rank_heads +
						pr->h_lo - ds->head0) *
						ds->run;
					K->segs[n] = (struct kvf_seg){ I->reg,
						T->reg, K->o.read ? dk : pk,
						K->o.read ? pk : dk, len };
				}
			}
	}
	for (;;) {
		if (pr->blocks)
			rc = kvf_submit_blocks(I->c, op, I->to[tgt], I->reg,
			    T->reg, K->lb, K->rb, n, &xo, &x);
		else
			rc = kvf_submit(
			    I->c, op, I->to[tgt], K->segs, n, &xo, &x);
		if (rc != KVF_EAGAIN)
			break;
		kvs_progress(K); /* the ring is full: let the sidecar drain */
	}
	if (rc != 0)
		bench_die("engine %s: %s(%s to %s, %u %s) failed: %s (%d): %s",
		    I->name, pr->blocks ? "kvf_submit_blocks" : "kvf_submit",
		    kvs_op(K), T->name, n, pr->blocks ? "blocks" : "segments",
		    kvf_strerror(rc), rc, kvf_last_error());
	kvs_add_out(K, ini, x, ri);
}

static void kvs_submit(struct kvs *K, uint32_t ri)
{
	struct kvs_req *r = &K->reqs[ri];

	/* Both counts are known before the first transfer goes, so events
	 * of early transfers cannot end the request too soon. */
	r->dec_left = r->done_left = K->req_xfers;
	memcpy(&K->rank_left[ri * K->o.tp_d], K->rank_xfers,
	    K->o.tp_d * sizeof *K->rank_xfers);
	r->t0 = tp_now_s();
	for (uint32_t q = 0; q < K->npairs; q++) {
		uint32_t ch = kvs_chunk(K, &K->pairs[q]);

		for (uint32_t b0 = 0; b0 < K->nb; b0 += ch)
			kvs_submit_xfer(K, ri, &K->pairs[q], b0,
			    b0 + ch < K->nb ? b0 + ch : K->nb);
	}
}

/* n requests, up to -c in flight, round-robin over the peers; lat gets
 * each one's seconds. Returns the seconds from the first submit to the
 * last decode-side event. */
double kvs_run(struct kvs *K, uint32_t n, double *lat)
{
	uint32_t next = 0;
	double t0 = tp_now_s();

	K->run_done = K->run_live = 0;
	K->run_lat = lat;
	K->t_end = t0;
	K->last_event = t0;
	while (K->run_done < n) {
		while (next < n && K->run_live < K->o.conc) {
			uint32_t k = next % K->o.peers, s, ri;

			for (s = 0; s < K->slots; s++)
				if (!K->busy[k * K->slots + s])
					break;
			if (s == K->slots)
				break; /* that peer's slots are all in flight
					*/
			for (ri = 0; K->reqs[ri].live; ri++)
				;
			K->busy[k * K->slots + s] = 1;
			K->reqs[ri] = (struct kvs_req){ .id = ++K->next_id,
				.peer = k,
				.slot = s,
				.live = true };
			K->run_live++;
			next++;
			kvs_submit(K, ri);
		}
		kvs_progress(K);
	}
	return K->t_end - t0;
}
