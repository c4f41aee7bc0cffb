/*
 * sidecar/xfer_railpick.c - which rail carries each operation of a host
 * transfer (the rails' own threads are sidecar/rails.c). At accept a
 * transfer learns the rails both sidecars have, narrowed to those near its
 * local memory, with the peer's address and its remote regions' keys on
 * each. A large transfer then spreads its pieces over the least busy of
 * them, a small one goes whole to one. An operation for a rail other than
 * 0 is handed to that rail's thread with that rail's registrations, and
 * the rail threads given work in a turn are woken once, at its end.
 */
#include "sidecar/xfers_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/registry.h"

/* The key of op's remote region on a rail (rail 0: the op's own). */
uint64_t sc_xfer_op_rkey(const struct sc_xfer *t, const struct sc_op *op,
                         uint32_t rail)
{
	if (rail == 0)
		return op->rkey;
	for (uint32_t i = 0; i < t->nrkeys; i++)
		if (t->rkeys[i].region == op->rregion)
			return t->rkeys[i].key[rail];
	return op->rkey;
}

/* The local region an op's memory lies in (one of the plan's). */
static struct sc_region *op_region(struct sc_xfer *t, const uint8_t *p)
{
	struct sc_region *r = t->lreg_hit;

	if (r && p >= r->base && p < r->base + r->len)
		return r;
	for (uint32_t i = 0; i < t->plan.nregions + t->plan.nmore; i++) {
		r = i < t->plan.nregions
			? t->plan.regions[i]
			: t->plan.more_regions[i - t->plan.nregions];
		if (p >= r->base && p < r->base + r->len)
			return t->lreg_hit = r;
	}
	return NULL;
}

/*
 * Under the registry lock, once planned: the rails this transfer may use
 * (both sides have them, and the nearest to its local memory where that
 * is GPU memory), the peer's address on each, and its remote regions'
 * keys on each.
 */
int sc_xfer_rails_of(struct sc_xfers *x, struct sc_xfer *t,
                     const struct sc_peer *peer, char *err, size_t errlen)
{
	uint32_t n = peer->nrails < x->nrails ? peer->nrails : x->nrails;
	uint32_t all, mask;

	if (n <= 1) {
		t->nrails = 1;
		t->rail_mask = 1;
		return 0;
	}
	all = n >= 32 ? UINT32_MAX : (1u << n) - 1;
	mask = all;
	for (uint32_t i = 0; i < t->plan.nregions + t->plan.nmore; i++) {
		const struct sc_region *r =
			i < t->plan.nregions
				? t->plan.regions[i]
				: t->plan.more_regions[i - t->plan.nregions];
		if (mask & r->rail_mask)
			mask &= r->rail_mask;
	}
	t->nrails = n;
	t->rail_mask = mask;
	memcpy(t->rail_fi, peer->rail_fi_addr, n * sizeof t->rail_fi[0]);
	for (uint32_t i = 0; i < t->plan.nops; i++) {
		const struct sc_op *op = &t->plan.ops[i];
		uint32_t k;
		if (t->nrkeys && t->rkeys[t->nrkeys - 1].region == op->rregion)
			continue;
		for (k = 0; k < t->nrkeys; k++)
			if (t->rkeys[k].region == op->rregion)
				break;
		if (k < t->nrkeys)
			continue;
		const struct sc_remote_region *rr = NULL;
		for (uint32_t j = 0; j < peer->nregions; j++)
			if (peer->regions[j].id == op->rregion)
				rr = &peer->regions[j];
		struct sc_rkeys *nk =
			realloc(t->rkeys, (t->nrkeys + 1) * sizeof *nk);
		if (!rr || !nk) {
			if (nk)
				t->rkeys = nk;
			snprintf(err, errlen, "sidecar out of memory");
			return KVF_ENOMEM;
		}
		t->rkeys = nk;
		nk[t->nrkeys].region = rr->id;
		memcpy(nk[t->nrkeys].key, rr->rail_key, sizeof rr->rail_key);
		t->nrkeys++;
	}
	return 0;
}

/* The least busy rail of mask with room for one more operation, or -1. */
int sc_least_busy_rail(const struct sc_xfers *x, uint32_t mask)
{
	int best = -1;

	for (uint32_t r = 0; r < x->nrails; r++) {
		if (!(mask & (1u << r)) || x->rail_ops[r] >= x->rail_cap[r])
			continue;
		if (best < 0 || x->rail_busy[r] < x->rail_busy[best])
			best = (int)r;
	}
	return best;
}

/* Large transfers spread their pieces over the rails; small ones go
 * whole to the least busy rail (GPU staging and same-host copies use
 * rail 0 or no rail at all). */
void sc_xfer_pick_rails(struct sc_xfers *x, struct sc_xfer *t)
{
	int r;

	if (t->gpu) {
		t->nrails = 1;
		t->rail_mask = 1;
	}
	t->striped = t->nrails > 1 &&
	             __builtin_popcount(t->rail_mask) > 1 &&
	             t->plan.bytes >= x->stripe_min;
	if (t->striped)
		return;
	r = sc_least_busy_rail(x, t->rail_mask);
	if (r < 0) /* all full now: the first of its rails */
		r = __builtin_ctz(t->rail_mask);
	t->rail = (uint32_t)r;
	/* Its bytes count against the rail from now on, so the transfers
	 * accepted next in the same turn pick other rails. */
	if (t->nrails > 1) {
		t->assigned = t->plan.bytes;
		x->rail_busy[r] += t->assigned;
	}
}

/* Hand one operation to the thread of rail (> 0), with the local and
 * remote registrations of that rail. */
int sc_xfer_post_on_rail(struct sc_xfers *x, struct sc_xfer *t,
                         const struct sc_op *op, uint32_t rail,
                         struct xfer_ctx *ctx)
{
	struct sc_region *lr = op_region(t, op->local);
	struct sc_rail_op ro;

	if (!lr || rail >= lr->nrails)
		return KVF_EINVAL;
	ro = (struct sc_rail_op){
		.ctx = ctx, .buf = op->local, .desc = lr->rail[rail].desc,
		.len = op->len, .fi_addr = t->rail_fi[rail],
		.raddr = op->raddr, .rkey = sc_xfer_op_rkey(t, op, rail),
		.read = t->op == KVF_READ};
	if (sc_rail_post(x->rail_thr[rail], &ro) != 0)
		return KVF_EAGAIN;
	x->rail_kick[rail] = true;
	return 0;
}

void sc_kick_rails(struct sc_xfers *x)
{
	for (uint32_t r = 1; r < x->nrails; r++)
		if (x->rail_kick[r]) {
			x->rail_kick[r] = false;
			sc_rail_kick(x->rail_thr[r]);
		}
}
