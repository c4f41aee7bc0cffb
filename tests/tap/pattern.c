/*
 * tests/tap/pattern.c - byte patterns (see pattern.h). Byte i of a pattern
 * is byte i % 8 (least significant first) of the 64-bit word number i / 8,
 * and that word is the counter i / 8 mixed with the seed through the
 * splitmix64 finalizer. A counter rather than a running generator makes
 * every slice computable without the bytes before it, and a word per step
 * fills a 64 MiB region in a few tens of milliseconds, which matters on
 * the 2-core machines the tests share.
 */
#include "tests/tap/pattern.h"

#include <string.h>

static uint64_t word(uint64_t k, uint64_t seed)
{
	uint64_t z = seed * 0xd1342543de82ef95ull +
	             (k + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The word's bytes in pattern order (least significant first), whatever
 * the host's byte order; on a little-endian host one store. */
static void word_bytes(uint64_t w, uint8_t b[8])
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(b, &w, 8);
#else
	for (int j = 0; j < 8; j++)
		b[j] = (uint8_t)(w >> (8 * j));
#endif
}

uint8_t tp_pattern_byte(uint64_t i, uint64_t seed)
{
	return (uint8_t)(word(i / 8, seed) >> (8 * (i % 8)));
}

void tp_pattern_fill_at(void *p, size_t n, uint64_t first, uint64_t seed)
{
	uint8_t *out = p, b[8];
	size_t i = 0;

	/* A head up to a word boundary of the stream, whole words, a tail. */
	for (; i < n && (first + i) % 8; i++)
		out[i] = tp_pattern_byte(first + i, seed);
	for (; n - i >= 8; i += 8) {
		word_bytes(word((first + i) / 8, seed), b);
		memcpy(out + i, b, 8);
	}
	for (; i < n; i++)
		out[i] = tp_pattern_byte(first + i, seed);
}

void tp_pattern_fill(void *p, size_t n, uint64_t seed)
{
	tp_pattern_fill_at(p, n, 0, seed);
}

long long tp_pattern_mismatch_at(const void *p, size_t n, uint64_t first,
                                 uint64_t seed)
{
	const uint8_t *in = p;
	uint8_t b[8];
	size_t i = 0;

	for (; i < n && (first + i) % 8; i++)
		if (in[i] != tp_pattern_byte(first + i, seed))
			return (long long)i;
	for (; n - i >= 8; i += 8) {
		word_bytes(word((first + i) / 8, seed), b);
		if (memcmp(in + i, b, 8) == 0)
			continue;
		for (int j = 0; j < 8; j++)
			if (in[i + j] != b[j])
				return (long long)(i + j);
	}
	for (; i < n; i++)
		if (in[i] != tp_pattern_byte(first + i, seed))
			return (long long)i;
	return -1;
}

int tp_pattern_ok(const void *p, size_t n, uint64_t seed)
{
	return tp_pattern_mismatch_at(p, n, 0, seed) < 0;
}
