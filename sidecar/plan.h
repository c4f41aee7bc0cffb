/*
 * sidecar/plan.h - turn a transfer's segments (bytes or KV blocks) into
 * provider operations: every segment checked against both regions' bounds
 * first, contiguous neighbours merged, anything longer than the provider's
 * largest message split. Pure computation: no locks, no fabric calls.
 */
#ifndef KVF_SIDECAR_PLAN_H
#define KVF_SIDECAR_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"
#include "ipc/wire.h"
#include "sidecar/registry.h"

/* One provider operation: len bytes between local and remote. */
struct sc_op {
	uint8_t *local;
	void *desc;
	uint64_t len;
	uint64_t raddr;
	uint64_t rkey;
};

struct sc_plan_env {
	/* Local regions of the submitting session, remote ones of the peer;
	 * NULL when the id is unknown (or not the session's). */
	struct sc_region *(*local)(void *arg, uint32_t id);
	const struct sc_remote_region *(*remote)(void *arg, uint32_t id);
	void *arg;
	uint64_t max_op; /* split operations longer than this */
};

struct sc_plan {
	struct sc_op *ops;
	uint32_t nops;
	uint32_t cap;
	uint64_t bytes;
	/* Distinct local regions the plan reads or writes, for references. */
	struct sc_region *regions[8];
	uint32_t nregions;
	struct sc_region **more_regions;
	uint32_t nmore, capmore;
};

void sc_plan_init(struct sc_plan *p);
void sc_plan_fini(struct sc_plan *p);

/*
 * Plan a parsed transfer record. On failure returns KVF_ENOENT (unknown
 * region), KVF_ERANGE (outside a region), KVF_EINVAL (zero length, layouts
 * that do not match) or KVF_ENOMEM, with err naming the segment.
 */
int sc_plan_build(struct sc_plan *p, const struct sc_plan_env *env,
                  const struct ipc_xfer_view *v, char *err, size_t errlen);

#endif
