/*
 * tests/bench/plan_bench.c - how fast the sidecar turns segments into
 * provider operations: the planner (bounds checks, merging, splitting) on
 * a Llama-3-70B TP=8-shaped request — 80 layers x 256 blocks of one rank's
 * 8 KiB layer-block, 20,480 segments — as byte segments and as a block
 * list, with blocks scattered (nothing merges) and in order (layers of
 * adjacent blocks merge). Prints segments per second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/plan.h"
#include "tests/bench/lib/cli.h"
#include "tests/tap/clock.h"

#define LAYERS 80u
#define BLOCKS 256u
#define PIECE (8u << 10)

static struct sc_region loc;
static struct sc_remote_region rem;

static struct sc_region *get_l(void *a, uint32_t id)
{
	(void)a;
	return id == 1 ? &loc : NULL;
}

static const struct sc_remote_region *get_r(void *a, uint32_t id)
{
	(void)a;
	return id == 2 ? &rem : NULL;
}

static void run(const char *name, const struct ipc_xfer_view *v,
                uint64_t nseg)
{
	struct sc_plan_env env = {get_l, get_r, NULL, 1ull << 30};
	struct sc_plan p;
	char err[160];
	int iters = 200;
	double t0;

	sc_plan_init(&p);
	sc_plan_build(&p, &env, v, err, sizeof err); /* warm-up */
	t0 = tp_now_s();
	for (int i = 0; i < iters; i++)
		if (sc_plan_build(&p, &env, v, err, sizeof err) != 0)
			bench_die("%s: %s", name, err);
	double dt = (tp_now_s() - t0) / iters;
	printf("%-28s %8llu segments -> %6u ops  %8.1f us  %6.1f M "
	       "segments/s\n", name, (unsigned long long)nseg, p.nops,
	       dt * 1e6, (double)nseg / dt / 1e6);
	sc_plan_fini(&p);
}

int main(void)
{
	uint64_t len = (uint64_t)LAYERS * BLOCKS * PIECE;
	struct kvf_layout l = {LAYERS, BLOCKS, PIECE,
	                       (uint64_t)BLOCKS * PIECE, PIECE, 0};
	size_t nseg = (size_t)LAYERS * BLOCKS;
	size_t bytes = ipc_sub_xfer_size(0, IPC_SEG_BYTES, (uint32_t)nseg);
	struct ipc_sub_xfer *h = calloc(1, bytes);
	struct ipc_xfer_view v;
	char err[160];

	bench_init("plan_bench", 2);
	loc = (struct sc_region){.id = 1, .base = malloc(len), .len = len,
	                         .has_layout = true, .layout = l};
	rem = (struct sc_remote_region){.id = 2, .len = len, .key = 7,
	                                .has_layout = true, .layout = l};
	/* Byte segments, blocks scattered: block b goes to 255 - b. */
	h->op = KVF_WRITE;
	h->nseg = (uint32_t)nseg;
	struct kvf_seg *s = (struct kvf_seg *)(h + 1);
	for (uint32_t ly = 0, i = 0; ly < LAYERS; ly++)
		for (uint32_t b = 0; b < BLOCKS; b++, i++)
			s[i] = (struct kvf_seg){1, 2,
			    ((uint64_t)ly * BLOCKS + b) * PIECE,
			    ((uint64_t)ly * BLOCKS + 255 - b) * PIECE, PIECE};
	if (ipc_wire_parse_xfer(h, bytes, &v, err, sizeof err))
		bench_die("byte segments: ipc_wire_parse_xfer() failed: %s",
		          err);
	run("byte segments, scattered", &v, nseg);
	for (uint32_t ly = 0, i = 0; ly < LAYERS; ly++)
		for (uint32_t b = 0; b < BLOCKS; b++, i++)
			s[i].remote_offset = s[i].local_offset;
	run("byte segments, in order", &v, nseg);

	/* Block pairs: 256 pairs expand to 20,480 layer-block segments. */
	size_t hbytes = ipc_sub_xfer_size(0, IPC_SEG_BLOCKS, BLOCKS);
	struct ipc_sub_xfer *hb = calloc(1, hbytes);
	hb->op = KVF_WRITE;
	hb->mode = IPC_SEG_BLOCKS;
	hb->nseg = BLOCKS;
	hb->local_region = 1;
	hb->remote_region = 2;
	struct ipc_block_pair *bp = (struct ipc_block_pair *)(hb + 1);
	for (uint32_t b = 0; b < BLOCKS; b++)
		bp[b] = (struct ipc_block_pair){b, BLOCKS - 1 - b};
	if (ipc_wire_parse_xfer(hb, hbytes, &v, err, sizeof err))
		bench_die("block list: ipc_wire_parse_xfer() failed: %s",
		          err);
	run("block list, scattered", &v, nseg);
	for (uint32_t b = 0; b < BLOCKS; b++)
		bp[b].remote = b;
	run("block list, in order", &v, nseg);
	printf("goal: at least 5 M segments/s turned into provider "
	       "operations\n");
	free(h);
	free(hb);
	free(loc.base);
	return 0;
}
