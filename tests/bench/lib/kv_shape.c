/*
 * tests/bench/lib/kv_shape.c - the KV shapes the demo and kvferry-bench
 * move, and the pattern that proves the bytes arrived in the right place:
 * each 8-byte word is a hash of (seed, layer, logical block, word index
 * within the whole model's piece), so a rank's share of a piece can be
 * filled and checked without the other ranks' and a byte that landed in
 * the wrong layer, block or head cannot match. Also where kvferryd is and
 * the arguments our sidecars get. The layouts are described in
 * kv_shape.h.
 */
#include "tests/bench/lib/kv_shape.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/lib/cli.h"

uint32_t kv_blocks_for(uint64_t tokens)
{
	return (uint32_t)((tokens + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS);
}

struct kvf_layout kv_layout(uint32_t num_blocks)
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

uint64_t kv_region_bytes(uint32_t num_blocks)
{
	return (uint64_t)KV_LAYERS * num_blocks * KV_PIECE;
}

uint8_t *kv_piece(
    uint8_t *base, uint32_t num_blocks, uint32_t layer, uint32_t block)
{
	return base + (uint64_t)layer * num_blocks * KV_PIECE +
	       (uint64_t)block * KV_PIECE;
}

static inline uint64_t kv_word(
    uint64_t seed, uint32_t layer, uint32_t lblock, uint64_t word)
{
	return kv_mix(
	    seed ^ ((uint64_t)layer << 56) ^ ((uint64_t)lblock << 32) ^ word);
}

void kv_fill_piece(uint8_t *p, uint64_t seed, uint32_t layer, uint32_t lblock)
{
	uint64_t *w = (uint64_t *)(void *)p;

	for (uint64_t i = 0; i < KV_PIECE / 8; i++)
		w[i] = kv_word(seed, layer, lblock, i);
}

/* Index of the first byte of word w that is not the one of want. */
static long first_wrong(uint64_t at, uint64_t w, uint64_t want)
{
	for (unsigned b = 0; b < 8; b++)
		if (((const uint8_t *)&w)[b] != ((const uint8_t *)&want)[b])
			return (long)(at * 8 + b);
	return -1;
}

long kv_check_piece(
    const uint8_t *p, uint64_t seed, uint32_t layer, uint32_t lblock)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (uint64_t i = 0; i < KV_PIECE / 8; i++) {
		uint64_t want = kv_word(seed, layer, lblock, i);

		if (w[i] != want)
			return first_wrong(i, w[i], want);
	}
	return -1;
}

/* The table lives in a function so that it has one definition for every
 * program that links this file. */
const struct kv_preset *kv_preset_at(size_t i)
{
	static const struct kv_preset table[] = {
		{ "llama3-8b", "Llama-3-8B, GQA 32:8", 32, 8, 128, 2 },
		{ "llama3-70b", "Llama-3-70B, GQA 64:8", 80, 8, 128, 2 },
		{ "qwen2.5-32b", "Qwen2.5-32B, GQA 40:8", 64, 8, 128, 2 },
		{ "deepseek-v3", "DeepSeek-V3, MLA latent 512+64", 61, 0, 576,
		    2 },
	};

	return i < sizeof table / sizeof table[0] ? &table[i] : NULL;
}

const struct kv_preset *kv_preset_find(const char *name)
{
	const struct kv_preset *p;

	for (size_t i = 0; (p = kv_preset_at(i)) != NULL; i++)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

int kv_shape_init(struct kv_shape *s, const struct kv_preset *p,
    uint32_t block_tokens, uint32_t tp, uint32_t rank)
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

struct kvf_layout kv_shape_layout(
    const struct kv_shape *s, uint32_t num_blocks)
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

uint64_t kv_shape_region_bytes(const struct kv_shape *s, uint32_t num_blocks)
{
	return (uint64_t)s->layers * num_blocks * s->piece;
}

uint64_t kv_shape_offset(const struct kv_shape *s, uint32_t num_blocks,
    uint32_t layer, uint32_t block)
{
	return (uint64_t)layer * num_blocks * s->piece +
	       (uint64_t)block * s->piece;
}

/* Word offset, in the whole model's piece, of the first word of this
 * rank's head h (local) of kind k. */
static uint64_t kv_shape_word0(
    const struct kv_shape *s, uint32_t k, uint32_t h)
{
	return ((uint64_t)k * s->heads + s->head0 + h) * s->run / 8;
}

/* s->run is a multiple of 8 for every preset. */
void kv_shape_fill_piece(const struct kv_shape *s, uint8_t *p, uint64_t seed,
    uint32_t layer, uint32_t lblock)
{
	uint64_t *w = (uint64_t *)(void *)p, words = s->run / 8;

	for (uint32_t k = 0; k < s->kinds; k++)
		for (uint32_t h = 0; h < s->rank_heads; h++) {
			uint64_t g = kv_shape_word0(s, k, h);
			for (uint64_t i = 0; i < words; i++)
				*w++ = kv_word(seed, layer, lblock, g + i);
		}
}

long kv_shape_check_piece(const struct kv_shape *s, const uint8_t *p,
    uint64_t seed, uint32_t layer, uint32_t lblock)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	uint64_t words = s->run / 8, at = 0;

	for (uint32_t k = 0; k < s->kinds; k++)
		for (uint32_t h = 0; h < s->rank_heads; h++) {
			uint64_t g = kv_shape_word0(s, k, h);
			for (uint64_t i = 0; i < words; i++, at++) {
				uint64_t want =
				    kv_word(seed, layer, lblock, g + i);
				if (w[at] != want)
					return first_wrong(at, w[at], want);
			}
		}
	return -1;
}

uint32_t kv_decode_block(uint32_t num_blocks, uint32_t i)
{
	return num_blocks - 1 - i;
}

void kv_sidecar_args(const char **args, const char *prov, char *addr,
    size_t addr_len, const char *name, const char *const *extra,
    int nextra)
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
	for (int i = 0; i < nextra; i++)
		args[n++] = extra[i];
	args[n] = NULL;
}

static int kv_exists(const char *dir, const char *name)
{
	char p[PATH_MAX + 80];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	return access(p, X_OK) == 0;
}

int kv_find_build(void)
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
	bench_err("kvferryd not found in $KVF_BUILD/bin nor next to this "
		  "program (build it: make, or set KVF_BUILD)");
	return -1;
}
