/*
 * tests/bench/lib/kv_shape.h - what the demo and kvferry-bench share: KV
 * layouts (the fixed Llama-3-8B one of the demo, and the model presets of
 * kvferry-bench -m kv split over tensor-parallel ranks), the deterministic
 * fill pattern, the block mapping the decode engine hands out, and where
 * the binaries are.
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
 */
#ifndef KVF_BENCH_KV_SHAPE_H
#define KVF_BENCH_KV_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "client/kvferry.h"

#define KV_LAYERS 32u
#define KV_HEADS 8u
#define KV_HEAD_DIM 128u
#define KV_BLOCK_TOKENS 16u
#define KV_ELEM 2u /* bf16 */
#define KV_PIECE                                                              \
	((uint64_t)2 * KV_HEADS * KV_BLOCK_TOKENS * KV_HEAD_DIM * KV_ELEM)

/* ---- the fixed layout --------------------------------------------------- */

/* Blocks of KV_BLOCK_TOKENS that hold tokens. */
uint32_t kv_blocks_for(uint64_t tokens);

/* The layout and the bytes of a region of num_blocks blocks. */
struct kvf_layout kv_layout(uint32_t num_blocks);
uint64_t kv_region_bytes(uint32_t num_blocks);

/* Where (layer, block) starts in such a region at base. */
uint8_t *kv_piece(
    uint8_t *base, uint32_t num_blocks, uint32_t layer, uint32_t block);

/* splitmix64: every 8-byte word of the request's KV gets a value from its
 * (layer, logical block, word) position, so a byte that lands in the
 * wrong place, layer or block cannot match. Inline: the fill loops of
 * more than one program call it once per word. */
static inline uint64_t kv_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Fill a KV_PIECE piece with the pattern of (layer, logical block); the
 * index of the first wrong byte of one, or -1 when it is all right. */
void kv_fill_piece(uint8_t *p, uint64_t seed, uint32_t layer, uint32_t lblock);
long kv_check_piece(
    const uint8_t *p, uint64_t seed, uint32_t layer, uint32_t lblock);

/* ---- model presets ------------------------------------------------------ */

/*
 * Model presets for kvferry-bench -m kv. One line per model in
 * kv_preset_at(): adding one is adding a line. kv_heads 0 marks MLA
 * (head_dim is then the latent width: DeepSeek-V3's kv_lora_rank 512
 * plus the 64 rope elements).
 */
struct kv_preset {
	const char *name;  /* what -M takes */
	const char *model; /* what it stands for */
	uint32_t layers;
	uint32_t kv_heads; /* 0: MLA, one latent vector per token */
	uint32_t head_dim; /* elements per head and token (MLA: latent) */
	uint32_t elem;     /* bytes per element */
};

/* The i-th preset, NULL past the last; the one named name, or NULL. */
const struct kv_preset *kv_preset_at(size_t i);
const struct kv_preset *kv_preset_find(const char *name);

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

/* Rank rank of tp ranks: 0, or -1 when tp does not divide the KV heads
 * (MLA: every tp works, each rank holds the whole latent). */
int kv_shape_init(struct kv_shape *s, const struct kv_preset *p,
    uint32_t block_tokens, uint32_t tp, uint32_t rank);

/* The layout and the bytes of a region of num_blocks blocks. */
struct kvf_layout kv_shape_layout(
    const struct kv_shape *s, uint32_t num_blocks);
uint64_t kv_shape_region_bytes(const struct kv_shape *s, uint32_t num_blocks);

/* Byte offset of (layer, block) in a region of num_blocks blocks. */
uint64_t kv_shape_offset(const struct kv_shape *s, uint32_t num_blocks,
    uint32_t layer, uint32_t block);

/* Fill a piece with this rank's share of the whole model's pattern for
 * (layer, logical block); the byte index of the first wrong byte of one,
 * or -1. */
void kv_shape_fill_piece(const struct kv_shape *s, uint8_t *p, uint64_t seed,
    uint32_t layer, uint32_t lblock);
long kv_shape_check_piece(const struct kv_shape *s, const uint8_t *p,
    uint64_t seed, uint32_t layer, uint32_t lblock);

/* ---- decode blocks, clock, sidecars ------------------------------------- */

/*
 * The decode engine's blocks for the request's logical block i: handed out
 * from the top of its region downwards, as a block allocator that has been
 * running a while would, so no two consecutive blocks are adjacent on both
 * sides and the sidecar cannot merge them: one 64 KiB operation per layer
 * and block, the worst case for the data path.
 */
uint32_t kv_decode_block(uint32_t num_blocks, uint32_t i);

/*
 * kvferryd's arguments for a sidecar of ours: provider, quiet log and, for
 * shm, a fabric address of its own. shm names its endpoint after the
 * fabric address, which defaults to the peer URL's host, so two sidecars
 * on 127.0.0.1 would both claim "127.0.0.1" and the second fails with
 * EBUSY in fi_enable(). Then the nextra words of extra (-A). args needs
 * 7 + nextra slots; name, addr and extra must stay valid while args is
 * used.
 */
void kv_sidecar_args(const char **args, const char *prov, char *addr,
    size_t addr_len, const char *name, const char *const *extra,
    int nextra);

/*
 * Make $KVF_BUILD point at the build tree holding kvferryd (the process
 * helpers run $KVF_BUILD/bin/kvferryd): kept when set and right, else
 * found from our own binary, which sits in <build>/tests/bench or
 * <build>/bin. Returns 0, or -1 with a message (bench_err) on stderr.
 */
int kv_find_build(void);

#endif
