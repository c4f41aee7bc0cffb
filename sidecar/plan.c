/*
 * sidecar/plan.c - segment planning. Bounds are checked with subtraction,
 * never by adding offset and length, so a huge offset cannot wrap past the
 * check. Block transfers are expanded layer by layer: for each layer the
 * block pairs in the engine's order, so consecutive blocks of a layer that
 * are adjacent in both layouts merge into one operation.
 */
#include "sidecar/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sc_plan_init(struct sc_plan *p)
{
	memset(p, 0, sizeof *p);
}

void sc_plan_fini(struct sc_plan *p)
{
	free(p->ops);
	free(p->more_regions);
	sc_plan_init(p);
}

static int touch(struct sc_plan *p, struct sc_region *r)
{
	for (uint32_t i = 0; i < p->nregions; i++)
		if (p->regions[i] == r)
			return 0;
	for (uint32_t i = 0; i < p->nmore; i++)
		if (p->more_regions[i] == r)
			return 0;
	if (p->nregions < 8) {
		p->regions[p->nregions++] = r;
		return 0;
	}
	if (p->nmore == p->capmore) {
		uint32_t n = p->capmore ? p->capmore * 2 : 8;
		void *m = realloc(p->more_regions, n * sizeof *p->more_regions);
		if (!m)
			return KVF_ENOMEM;
		p->more_regions = m;
		p->capmore = n;
	}
	p->more_regions[p->nmore++] = r;
	return 0;
}

static int push(struct sc_plan *p, const struct sc_region *l,
                const struct sc_remote_region *r, uint64_t loff,
                uint64_t roff, uint64_t len, uint64_t max_op)
{
	struct sc_op *last = p->nops ? &p->ops[p->nops - 1] : NULL;
	uint8_t *local = l->base + loff;
	uint64_t raddr = r->addr + roff;

	p->bytes += len;
	if (l->kind || r->kind)
		p->any_cuda = true;
	if (last && last->desc == l->desc && last->rkey == r->key &&
	    last->rregion == r->id && last->lkind == l->kind &&
	    last->local + last->len == local && last->raddr + last->len == raddr &&
	    last->len + len <= max_op) {
		last->len += len;
		return 0;
	}
	while (len) {
		uint64_t n = len < max_op ? len : max_op;
		if (p->nops == p->cap) {
			uint32_t ncap = p->cap ? p->cap * 2 : 16;
			void *m = realloc(p->ops, ncap * sizeof *p->ops);
			if (!m)
				return KVF_ENOMEM;
			p->ops = m;
			p->cap = ncap;
		}
		p->ops[p->nops++] = (struct sc_op){
			local,  l->desc, n,       raddr,
			r->key, r->id,   roff,    (uint8_t)l->kind,
			(uint8_t)r->kind, (int16_t)r->cuda_device};
		local += n;
		raddr += n;
		roff += n;
		len -= n;
	}
	return 0;
}

static int in_bounds(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

struct cache {
	uint32_t lid, rid;
	struct sc_region *l;
	const struct sc_remote_region *r;
};

static int resolve(const struct sc_plan_env *env, struct cache *c,
                   uint32_t lid, uint32_t rid, uint32_t i, char *err,
                   size_t errlen)
{
	if (!c->l || c->lid != lid) {
		c->l = env->local(env->arg, lid);
		c->lid = lid;
		if (!c->l) {
			snprintf(err, errlen,
			         "segment %u: local region %u is not registered "
			         "by this engine",
			         i, lid);
			return KVF_ENOENT;
		}
	}
	if (!c->r || c->rid != rid) {
		c->r = env->remote(env->arg, rid);
		c->rid = rid;
		if (!c->r) {
			snprintf(err, errlen,
			         "segment %u: remote region %u is unknown to "
			         "this peer (registered after the handshake? "
			         "resolve the peer again)",
			         i, rid);
			return KVF_ENOENT;
		}
		if (c->r->gone) {
			snprintf(err, errlen,
			         "segment %u: remote region %u was freed by "
			         "the peer's engine", i, rid);
			c->r = NULL;
			return KVF_ENOENT;
		}
	}
	return 0;
}

static int plan_bytes(struct sc_plan *p, const struct sc_plan_env *env,
                      const struct ipc_xfer_view *v, char *err,
                      size_t errlen)
{
	struct cache c = {0};
	int rc;

	for (uint32_t i = 0; i < v->hdr->nseg; i++) {
		const struct kvf_seg *s = &v->segs[i];
		if ((rc = resolve(env, &c, s->local_region, s->remote_region, i,
		                  err, errlen)) != 0)
			return rc;
		if (s->length == 0) {
			snprintf(err, errlen, "segment %u: length 0", i);
			return KVF_EINVAL;
		}
		if (!in_bounds(s->local_offset, s->length, c.l->len)) {
			snprintf(err, errlen,
			         "segment %u: local region %u offset %llu + "
			         "length %llu is outside its %llu bytes",
			         i, s->local_region,
			         (unsigned long long)s->local_offset,
			         (unsigned long long)s->length,
			         (unsigned long long)c.l->len);
			return KVF_ERANGE;
		}
		if (!in_bounds(s->remote_offset, s->length, c.r->len)) {
			snprintf(err, errlen,
			         "segment %u: remote region %u offset %llu + "
			         "length %llu is outside its %llu bytes",
			         i, s->remote_region,
			         (unsigned long long)s->remote_offset,
			         (unsigned long long)s->length,
			         (unsigned long long)c.r->len);
			return KVF_ERANGE;
		}
		if ((rc = touch(p, c.l)) != 0 ||
		    (rc = push(p, c.l, c.r, s->local_offset, s->remote_offset,
		               s->length, env->max_op)) != 0)
			return rc;
	}
	return 0;
}

/* Offset of (layer, block) in a layout, or UINT64_MAX when the block lies
 * outside the region. */
static uint64_t block_off(const struct kvf_layout *l, uint64_t len,
                          uint32_t layer, uint32_t block)
{
	unsigned __int128 off = (unsigned __int128)l->offset +
	                        (unsigned __int128)layer * l->layer_stride +
	                        (unsigned __int128)block * l->block_stride;
	if (off > len || l->block_bytes > len - (uint64_t)off)
		return UINT64_MAX;
	return (uint64_t)off;
}

static int plan_blocks(struct sc_plan *p, const struct sc_plan_env *env,
                       const struct ipc_xfer_view *v, char *err,
                       size_t errlen)
{
	const struct ipc_sub_xfer *h = v->hdr;
	struct cache c = {0};
	const struct kvf_layout *ll, *rl;
	int rc;

	if ((rc = resolve(env, &c, h->local_region, h->remote_region, 0, err,
	                  errlen)) != 0)
		return rc;
	if (!c.l->has_layout || !c.r->has_layout) {
		snprintf(err, errlen,
		         "block transfer: %s region %u has no KV layout",
		         c.l->has_layout ? "remote" : "local",
		         c.l->has_layout ? h->remote_region : h->local_region);
		return KVF_EINVAL;
	}
	ll = &c.l->layout;
	rl = &c.r->layout;
	if (ll->block_bytes != rl->block_bytes ||
	    ll->num_layers != rl->num_layers || ll->block_bytes == 0) {
		snprintf(err, errlen,
		         "block transfer: layouts differ: local region %u has %u "
		         "layers of %llu-byte blocks, remote region %u %u layers "
		         "of %llu-byte blocks",
		         h->local_region, ll->num_layers,
		         (unsigned long long)ll->block_bytes, h->remote_region,
		         rl->num_layers, (unsigned long long)rl->block_bytes);
		return KVF_EINVAL;
	}
	if ((rc = touch(p, c.l)) != 0)
		return rc;
	for (uint32_t i = 0; i < h->nseg; i++) {
		const struct ipc_block_pair *bp = &v->pairs[i];
		if (bp->local >= ll->num_blocks || bp->remote >= rl->num_blocks) {
			snprintf(err, errlen,
			         "block pair %u: block %u of %s region %u is past "
			         "its %u blocks",
			         i, bp->local >= ll->num_blocks ? bp->local : bp->remote,
			         bp->local >= ll->num_blocks ? "local" : "remote",
			         bp->local >= ll->num_blocks ? h->local_region
			                                     : h->remote_region,
			         bp->local >= ll->num_blocks ? ll->num_blocks
			                                     : rl->num_blocks);
			return KVF_ERANGE;
		}
	}
	for (uint32_t layer = 0; layer < ll->num_layers; layer++) {
		for (uint32_t i = 0; i < h->nseg; i++) {
			const struct ipc_block_pair *bp = &v->pairs[i];
			uint64_t lo = block_off(ll, c.l->len, layer, bp->local);
			uint64_t ro = block_off(rl, c.r->len, layer, bp->remote);
			if (lo == UINT64_MAX || ro == UINT64_MAX) {
				snprintf(err, errlen,
				         "block pair %u layer %u: the %s layout "
				         "places the block outside region %u",
				         i, layer, lo == UINT64_MAX ? "local" : "remote",
				         lo == UINT64_MAX ? h->local_region
				                          : h->remote_region);
				return KVF_ERANGE;
			}
			if ((rc = push(p, c.l, c.r, lo, ro, ll->block_bytes,
			               env->max_op)) != 0)
				return rc;
		}
	}
	return 0;
}

int sc_plan_build(struct sc_plan *p, const struct sc_plan_env *env,
                  const struct ipc_xfer_view *v, char *err, size_t errlen)
{
	p->nops = 0;
	p->bytes = 0;
	p->any_cuda = false;
	p->nregions = 0;
	p->nmore = 0;
	if (v->hdr->mode == IPC_SEG_BLOCKS)
		return plan_blocks(p, env, v, err, errlen);
	return plan_bytes(p, env, v, err, errlen);
}
