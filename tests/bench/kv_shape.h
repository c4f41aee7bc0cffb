/*
 * tests/bench/kv_shape.h - what the demo and kvferry-bench share: KV
 * layouts (the fixed Llama-3-8B one of the demo, and the model presets of
 * kvferry-bench -m kv split over tensor-parallel ranks), the deterministic
 * fill pattern, the block mapping the decode engine hands out, where the
 * binaries are, and clocks.
 *
 * Fixed layout (KV_* macros), per engine region: for each of 32 layers an
 * array [num_blocks][K,V][8 heads][16 tokens][128 dims] of bf16, so one
 * block of one layer is 2*8*16*128*2 = 64 KiB and block b of layer l
 * starts at l * num_blocks * 64 KiB + b * 64 KiB (layer_stride =
 * num_blocks * 64 KiB, block_stride = 64 KiB). A block, every layer, is 32
 * pieces of 64 KiB: 2 MiB, 128 KiB per token, 512 MiB for 4096 tokens.
 *
 * Presets (kv_preset_at): the same layout for any layer count, KV head
 * count and head size; a TP rank holds kv_heads/tp consecutive heads, so
 * its piece is [K,V][kv_heads/tp][block_tokens][head_dim]. MLA models
 * (kv_heads 0) cache one latent vector per token instead of K and V per
 * head, which TP does not split: every rank holds [block_tokens][latent].
 * The fill pattern is defined on the whole model's piece, so the bytes a
 * rank holds are the same whichever TP split put them there; at TP 1 the
 * Llama-3-8B preset gives exactly the fixed layout's bytes.
 *
 * Header-only (static functions) because each .c file in tests/bench is a
 * program of its own.
 */
#ifndef KVF_BENCH_KV_SHAPE_H
#define KVF_BENCH_KV_SHAPE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/kvferry.h"

#define KV_LAYERS 32u
#define KV_HEADS 8u
#define KV_HEAD_DIM 128u
#define KV_BLOCK_TOKENS 16u
#define KV_ELEM 2u /* bf16 */
#define KV_PIECE \
	((uint64_t)2 * KV_HEADS * KV_BLOCK_TOKENS * KV_HEAD_DIM * KV_ELEM)

static inline uint32_t kv_blocks_for(uint64_t tokens)
{
	return (uint32_t)((tokens + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS);
}

static inline struct kvf_layout kv_layout(uint32_t num_blocks)
{
	struct kvf_layout l = {
		.num_layers = KV_LAYERS,
		.num_blocks = num_blocks,
		.block_bytes = KV_PIECE,
		.layer_stride = (uint64_t)num_blocks * KV_PIECE,
		.block_stride = KV_PIECE,
		.offset = 0,
	};
	return l;
}

static inline uint64_t kv_region_bytes(uint32_t num_blocks)
{
	return (uint64_t)KV_LAYERS * num_blocks * KV_PIECE;
}

static inline uint8_t *kv_piece(uint8_t *base, uint32_t num_blocks,
                                uint32_t layer, uint32_t block)
{
	return base + (uint64_t)layer * num_blocks * KV_PIECE +
	       (uint64_t)block * KV_PIECE;
}

/* splitmix64: every 8-byte word of the request's KV gets a value from its
 * (layer, logical block, word) position, so a byte that lands in the wrong
 * place, layer or block cannot match. */
static inline uint64_t kv_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t kv_word(uint64_t seed, uint32_t layer, uint32_t lblock,
                               uint64_t word)
{
	return kv_mix(seed ^ ((uint64_t)layer << 56) ^ ((uint64_t)lblock << 32) ^
	              word);
}

static inline void kv_fill_piece(uint8_t *p, uint64_t seed, uint32_t layer,
                                 uint32_t lblock)
{
	uint64_t *w = (uint64_t *)(void *)p;

	for (uint64_t i = 0; i < KV_PIECE / 8; i++)
		w[i] = kv_word(seed, layer, lblock, i);
}

/* Index of the first wrong byte of a piece, or -1 when it is all right. */
static inline long kv_check_piece(const uint8_t *p, uint64_t seed,
                                  uint32_t layer, uint32_t lblock)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (uint64_t i = 0; i < KV_PIECE / 8; i++) {
		uint64_t want = kv_word(seed, layer, lblock, i);
		if (w[i] != want) {
			for (unsigned b = 0; b < 8; b++)
				if (((const uint8_t *)&w[i])[b] !=
				    ((const uint8_t *)&want)[b])
					return (long)(i * 8 + b);
		}
	}
	return -1;
}

/*
 * Model presets for kvferry-bench -m kv. One line per model: adding one
 * is adding a line. kv_heads 0 marks MLA (head_dim is then the latent
 * width: DeepSeek-V3's kv_lora_rank 512 plus the 64 rope elements).
 */
struct kv_preset {
	const char *name;  /* what -M takes */
	const char *model; /* what it stands for */
	uint32_t layers;
	uint32_t kv_heads; /* 0: MLA, one latent vector per token */
	uint32_t head_dim; /* elements per head and token (MLA: latent) */
	uint32_t elem;     /* bytes per element */
};

/* The i-th preset, NULL past the last. (The table lives in a function so
 * that programs which include this header but use no preset get no
 * unused-variable warning.) */
static inline const struct kv_preset *kv_preset_at(size_t i)
{
	static const struct kv_preset table[] = {
		{"llama3-8b", "Llama-3-8B, GQA 32:8", 32, 8, 128, 2},
		{"llama3-70b", "Llama-3-70B, GQA 64:8", 80, 8, 128, 2},
		{"qwen2.5-32b", "Qwen2.5-32B, GQA 40:8", 64, 8, 128, 2},
		{"deepseek-v3", "DeepSeek-V3, MLA latent 512+64", 61, 0, 576,
		 2},
	};

	return i < sizeof table / sizeof table[0] ? &table[i] : NULL;
}

static inline const struct kv_preset *kv_preset_find(const char *name)
{
	const struct kv_preset *p;

	for (size_t i = 0; (p = kv_preset_at(i)) != NULL; i++)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* What one engine (one TP rank) of a preset holds. */
struct kv_shape {
	uint32_t layers;
	uint32_t block_tokens;
	uint32_t kinds;      /* 2: K and V; 1: an MLA latent */
	uint32_t heads;      /* heads of the whole model per kind (MLA: 1) */
	uint32_t rank_heads; /* heads this rank holds */
	uint32_t head0;      /* the first of them */
	uint64_t run;        /* bytes of one head of one kind in one block */
	uint64_t piece;      /* bytes of one layer of one block on this rank */
};

/* Rank rank of tp ranks. -1 when tp does not divide the KV heads (MLA:
 * every tp works, each rank holds the whole latent). */
static inline int kv_shape_init(struct kv_shape *s,
                                const struct kv_preset *p,
                                uint32_t block_tokens, uint32_t tp,
                                uint32_t rank)
{
	bool mla = p->kv_heads == 0;

	if (tp == 0 || rank >= tp || block_tokens == 0 ||
	    (!mla && p->kv_heads % tp != 0))
		return -1;
	s->layers = p->layers;
	s->block_tokens = block_tokens;
	s->kinds = mla ? 1 : 2;
	s->heads = mla ? 1 : p->kv_heads;
	s->rank_heads = mla ? 1 : p->kv_heads / tp;
	s->head0 = mla ? 0 : rank * s->rank_heads;
	s->run = (uint64_t)block_tokens * p->head_dim * p->elem;
	s->piece = (uint64_t)s->kinds * s->rank_heads * s->run;
	return 0;
}

static inline struct kvf_layout kv_shape_layout(const struct kv_shape *s,
                                                uint32_t num_blocks)
{
	struct kvf_layout l = {
		.num_layers = s->layers,
		.num_blocks = num_blocks,
		.block_bytes = s->piece,
		.layer_stride = (uint64_t)num_blocks * s->piece,
		.block_stride = s->piece,
		.offset = 0,
	};
	return l;
}

static inline uint64_t kv_shape_region_bytes(const struct kv_shape *s,
                                             uint32_t num_blocks)
{
	return (uint64_t)s->layers * num_blocks * s->piece;
}

/* Byte offset of (layer, block) in a region of num_blocks blocks. */
static inline uint64_t kv_shape_offset(const struct kv_shape *s,
                                       uint32_t num_blocks, uint32_t layer,
                                       uint32_t block)
{
	return (uint64_t)layer * num_blocks * s->piece +
	       (uint64_t)block * s->piece;
}

/* Word offset, in the whole model's piece, of the first word of this
 * rank's head h (local) of kind k. */
static inline uint64_t kv_shape_word0(const struct kv_shape *s, uint32_t k,
                                      uint32_t h)
{
	return ((uint64_t)k * s->heads + s->head0 + h) * s->run / 8;
}

/* Fill a piece with this rank's share of the whole model's pattern for
 * (layer, logical block). s->run is a multiple of 8 for every preset. */
static inline void kv_shape_fill_piece(const struct kv_shape *s, uint8_t *p,
                                       uint64_t seed, uint32_t layer,
                                       uint32_t lblock)
{
	uint64_t *w = (uint64_t *)(void *)p, words = s->run / 8;

	for (uint32_t k = 0; k < s->kinds; k++)
		for (uint32_t h = 0; h < s->rank_heads; h++) {
			uint64_t g = kv_shape_word0(s, k, h);
			for (uint64_t i = 0; i < words; i++)
				*w++ = kv_word(seed, layer, lblock, g + i);
		}
}

/* Byte index of the first wrong byte of a piece, or -1. */
static inline long kv_shape_check_piece(const struct kv_shape *s,
                                        const uint8_t *p, uint64_t seed,
                                        uint32_t layer, uint32_t lblock)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	uint64_t words = s->run / 8, at = 0;

	for (uint32_t k = 0; k < s->kinds; k++)
		for (uint32_t h = 0; h < s->rank_heads; h++) {
			uint64_t g = kv_shape_word0(s, k, h);
			for (uint64_t i = 0; i < words; i++, at++) {
				uint64_t want = kv_word(seed, layer, lblock,
				                        g + i);
				if (w[at] == want)
					continue;
				for (unsigned b = 0; b < 8; b++)
					if (((const uint8_t *)&w[at])[b] !=
					    ((const uint8_t *)&want)[b])
						return (long)(at * 8 + b);
			}
		}
	return -1;
}

/*
 * The decode engine's blocks for the request's logical block i: handed out
 * from the top of its region downwards, as a block allocator that has been
 * running a while would, so no two consecutive blocks are adjacent on both
 * sides and the sidecar cannot merge them: one 64 KiB operation per layer
 * and block, the worst case for the data path.
 */
static inline uint32_t kv_decode_block(uint32_t num_blocks, uint32_t i)
{
	return num_blocks - 1 - i;
}

static inline double kv_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t kv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * kvferryd's arguments for a sidecar of ours: provider, quiet log and, for
 * shm, a fabric address of its own. shm names its endpoint after the
 * fabric address, which defaults to the peer URL's host, so two sidecars
 * on 127.0.0.1 would both claim "127.0.0.1" and the second fails with
 * EBUSY in fi_enable(). args needs 7 slots; name must stay valid.
 */
static inline void kv_sidecar_args(const char **args, const char *prov,
                                   char *addr, size_t addr_len,
                                   const char *name)
{
	int n = 0;

	args[n++] = "--provider";
	args[n++] = prov;
	args[n++] = "--log-level";
	args[n++] = "warn";
	if (strcmp(prov, "shm") == 0) {
		snprintf(addr, addr_len, "kvf-%d-%s", (int)getpid(), name);
		args[n++] = "--fabric-addr";
		args[n++] = addr;
	}
	args[n] = NULL;
}

static inline int kv_exists(const char *dir, const char *name)
{
	char p[PATH_MAX + 80];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	return access(p, X_OK) == 0;
}

/*
 * Make $KVF_BUILD point at the build tree holding kvferryd (the process
 * helpers run $KVF_BUILD/bin/kvferryd): kept when set and right, else
 * found from our own binary, which sits in <build>/tests/bench or
 * <build>/bin. Returns 0, or -1 with a message on stderr.
 */
static inline int kv_find_build(const char *prog)
{
	const char *env = getenv("KVF_BUILD");
	char exe[PATH_MAX], bin[PATH_MAX];
	ssize_t n;

	if (env && env[0]) {
		snprintf(bin, sizeof bin, "%s/bin", env);
		if (kv_exists(bin, "kvferryd"))
			return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		for (int up = 0; up < 3; up++) {
			char *slash = strrchr(exe, '/');
			if (!slash)
				break;
			*slash = '\0';
			if (strlen(exe) + 5 > sizeof bin)
				break;
			memcpy(bin, exe, strlen(exe));
			memcpy(bin + strlen(exe), "/bin", 5);
			if (exe[0] && kv_exists(bin, "kvferryd")) {
				setenv("KVF_BUILD", exe, 1);
				return 0;
			}
		}
	}
	fprintf(stderr,
	        "%s: kvferryd not found in $KVF_BUILD/bin nor next to this "
	        "program (build it: make, or set KVF_BUILD)\n",
	        prog);
	return -1;
}

#endif
