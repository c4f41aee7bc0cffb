/* The segment planner: seeded random segment lists merged and split correctly, blocks expanded, bounds checked without overflow. */
#include <stdlib.h>
#include <string.h>

#include "sidecar/plan.h"
#include "tests/tap/tap.h"

#define NREG 3
#define RLEN (1u << 20)

static struct sc_region loc[NREG];
static struct sc_remote_region rem[NREG];
static uint8_t backing[NREG][RLEN];

static struct sc_region *get_local(void *arg, uint32_t id)
{
	(void)arg;
	return id >= 1 && id <= NREG ? &loc[id - 1] : NULL;
}

static const struct sc_remote_region *get_remote(void *arg, uint32_t id)
{
	(void)arg;
	return id >= 1 && id <= NREG ? &rem[id - 1] : NULL;
}

static uint64_t rng = 12345;
static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

/* Apply segments byte by byte to a model of the remote memory, and the
 * planned ops the same way; the two must agree, and the ops must respect
 * max_op and never straddle regions. */
static int check_round(uint64_t max_op, uint32_t nseg, int contiguous,
                       uint32_t *nops_out)
{
	static uint8_t model[NREG][RLEN], applied[NREG][RLEN];
	uint64_t buf[2048];
	struct ipc_sub_xfer *h = (void *)buf;
	struct kvf_seg *segs = (void *)(h + 1);
	struct sc_plan p;
	struct sc_plan_env env = {get_local, get_remote, NULL, max_op};
	struct ipc_xfer_view v;
	char err[200];
	uint64_t lo = rnd(RLEN / 2), ro = rnd(RLEN / 2);
	uint32_t lr = 1 + (uint32_t)rnd(NREG), rr = 1 + (uint32_t)rnd(NREG);
	int good = 1;

	memset(model, 0, sizeof model);
	memset(applied, 0, sizeof applied);
	memset(h, 0, sizeof *h);
	h->op = KVF_WRITE;
	h->nseg = nseg;
	for (uint32_t i = 0; i < nseg; i++) {
		uint64_t len = 1 + rnd(4000);
		if (!contiguous) {
			lr = 1 + (uint32_t)rnd(NREG);
			rr = 1 + (uint32_t)rnd(NREG);
			lo = rnd(RLEN - len);
			ro = rnd(RLEN - len);
		} else if (lo + len > RLEN || ro + len > RLEN) {
			lo = 0;
			ro = 0;
		}
		segs[i] = (struct kvf_seg){lr, rr, lo, ro, len};
		memcpy(&model[rr - 1][ro], &backing[lr - 1][lo], len);
		lo += len;
		ro += len;
	}
	if (ipc_wire_parse_xfer(h, ipc_sub_xfer_size(0, IPC_SEG_BYTES, nseg), &v,
	                        err, sizeof err) != 0)
		return 0;
	sc_plan_init(&p);
	if (sc_plan_build(&p, &env, &v, err, sizeof err) != 0) {
		diag("plan failed: %s", err);
		return 0;
	}
	for (uint32_t i = 0; i < p.nops; i++) {
		struct sc_op *op = &p.ops[i];
		uint32_t ri = (uint32_t)(op->rkey - 100);
		if (op->len > max_op || op->len == 0)
			good = 0;
		if (op->raddr + op->len > RLEN)
			good = 0;
		memcpy(&applied[ri][op->raddr], op->local, op->len);
	}
	if (memcmp(model, applied, sizeof model) != 0)
		good = 0;
	*nops_out = p.nops;
	sc_plan_fini(&p);
	return good;
}

int main(void)
{
	uint32_t nops = 0;
	int good = 1, merged = 0, split = 0;

	plan(12);
	for (int i = 0; i < NREG; i++) {
		for (uint32_t k = 0; k < RLEN; k++)
			backing[i][k] = (uint8_t)(k * 7 + i * 13 + k / 251);
		loc[i].id = (uint32_t)i + 1;
		loc[i].base = backing[i];
		loc[i].len = RLEN;
		loc[i].desc = (void *)(uintptr_t)(i + 1);
		rem[i].id = (uint32_t)i + 1;
		rem[i].len = RLEN;
		rem[i].addr = 0;
		rem[i].key = 100 + (uint64_t)i;
	}
	for (int round = 0; round < 200 && good; round++) {
		good = check_round(1u << 20, 1 + (uint32_t)rnd(300), 0, &nops);
	}
	ok(good, "200 seeded random segment lists: planned ops write exactly "
	   "the model's bytes");
	good = 1;
	for (int round = 0; round < 100 && good; round++) {
		uint32_t nseg = 2 + (uint32_t)rnd(200);
		good = check_round(1u << 30, nseg, 1, &nops);
		if (nops < nseg)
			merged++;
	}
	ok(good, "contiguous segment lists: bytes exact");
	ok(merged == 100, "contiguous segments were merged in every round "
	   "(%d of 100)", merged);
	good = 1;
	for (int round = 0; round < 100 && good; round++) {
		uint32_t nseg = 2 + (uint32_t)rnd(200);
		good = check_round(1000, nseg, 1, &nops);
		if (nops > 1)
			split++;
	}
	ok(good, "with a 1000-byte largest op: bytes exact, no op larger");
	ok(split == 100, "long operations were split");

	/* Bounds and ids. */
	uint64_t buf[64];
	struct ipc_sub_xfer *h = (void *)buf;
	struct kvf_seg *s = (void *)(h + 1);
	struct ipc_xfer_view v;
	struct sc_plan p;
	struct sc_plan_env env = {get_local, get_remote, NULL, 1u << 20};
	char err[200];
	memset(buf, 0, sizeof buf);
	h->op = KVF_WRITE;
	h->nseg = 1;
	ipc_wire_parse_xfer(h, ipc_sub_xfer_size(0, IPC_SEG_BYTES, 1), &v, err,
	                    sizeof err);
	sc_plan_init(&p);
	*s = (struct kvf_seg){1, 1, UINT64_MAX - 5, 0, 10};
	is_int(sc_plan_build(&p, &env, &v, err, sizeof err), KVF_ERANGE,
	       "offset near 2^64 does not wrap past the check");
	*s = (struct kvf_seg){1, 1, 0, RLEN, 1};
	is_int(sc_plan_build(&p, &env, &v, err, sizeof err), KVF_ERANGE,
	       "remote offset at the end refused");
	*s = (struct kvf_seg){1, 9, 0, 0, 1};
	is_int(sc_plan_build(&p, &env, &v, err, sizeof err), KVF_ENOENT,
	       "unknown remote region");
	like(err, "remote region 9", "message names it");

	/* Blocks: 4 layers x 8 blocks of 1000 bytes, layer-major. */
	loc[0].has_layout = true;
	loc[0].layout = (struct kvf_layout){4, 8, 1000, 8000, 1000, 0};
	rem[1].has_layout = true;
	rem[1].layout = (struct kvf_layout){4, 8, 1000, 8000, 1000, 100};
	struct ipc_block_pair *bp = (void *)(h + 1);
	h->mode = IPC_SEG_BLOCKS;
	h->local_region = 1;
	h->remote_region = 2;
	h->nseg = 3;
	bp[0] = (struct ipc_block_pair){2, 5};
	bp[1] = (struct ipc_block_pair){3, 6};
	bp[2] = (struct ipc_block_pair){7, 0};
	ipc_wire_parse_xfer(h, ipc_sub_xfer_size(0, IPC_SEG_BLOCKS, 3), &v, err,
	                    sizeof err);
	is_int(sc_plan_build(&p, &env, &v, err, sizeof err), 0,
	       "block transfer planned");
	ok(p.nops == 8 && p.bytes == 12000 && p.ops[0].len == 2000 &&
	   p.ops[0].local == backing[0] + 2000 && p.ops[0].raddr == 5100 &&
	   p.ops[1].raddr == 100 && p.ops[2].local == backing[0] + 10000,
	   "adjacent blocks merged per layer, offsets right (%u ops)", p.nops);
	bp[2] = (struct ipc_block_pair){8, 0};
	is_int(sc_plan_build(&p, &env, &v, err, sizeof err), KVF_ERANGE,
	       "block id past num_blocks refused");
	sc_plan_fini(&p);
	return tap_exit_status();
}
